"""The rules a VM's network adapter must follow (Hyper-V's limits, and this host's kernel).

Pure: no libvirt, so the Settings dialog can check an adapter page as it is typed. The limits:

- at most ``MAX_SYNTHETIC`` network adapters and ``MAX_LEGACY`` legacy ones per VM (Hyper-V 2019+);
  legacy (emulated) adapters only in Generation 1 VMs;
- a static MAC address must be a unicast address no other adapter of the VM has;
- VMQ queues: 1 to ``min(processors, MAX_QUEUES)``. The guest's virtio-net driver uses only as many
  queue pairs as the VM has processors, so more would only hold host resources; 16 keeps the tap
  device's file descriptors reasonable. Legacy adapters have no VMQ;
- bandwidth: 0 (unset) or 1 to ``MAX_MBPS`` Mbit/s, minimum not above maximum; a minimum only on a
  switch made to guarantee minimum bandwidth; and the host kernel must shape traffic
  (``kernel_features.bandwidth_problem``);
- VLAN ID 1 to 4094, and only when the host's bridges can filter VLANs
  (``kernel_features.adapter_vlan_problem``).
"""

from __future__ import annotations

from collections.abc import Mapping

from hvmanager.backend import kernel_features
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.mac_pool import normalize_mac, unicast_problem
from hvmanager.backend.network_models import AdapterSpec, SwitchInfo

MAX_SYNTHETIC = 64
MAX_LEGACY = 4
MAX_QUEUES = 16

LIVE_QUEUES_REASON = (
    "The virtual machine queue of an attached network adapter can't be changed while the virtual "
    "machine is running: QEMU sets an adapter's queues when the adapter is plugged in. Shut down the "
    "virtual machine first, or add a new adapter."
)
MAX_MBPS = 100_000  # 100 Gbit/s
VLAN_RANGE = (1, 4094)
MAX_NAME = 100


def _count_problem(spec: AdapterSpec, others: tuple[AdapterSpec, ...]) -> str | None:
    same_kind = sum(1 for other in others if other.legacy == spec.legacy) + 1
    if spec.legacy and same_kind > MAX_LEGACY:
        return f"A virtual machine can have at most {MAX_LEGACY} legacy network adapters."
    if not spec.legacy and same_kind > MAX_SYNTHETIC:
        return f"A virtual machine can have at most {MAX_SYNTHETIC} network adapters (besides legacy ones)."
    return None


def _mac_problem(spec: AdapterSpec, others: tuple[AdapterSpec, ...]) -> str | None:
    if spec.mac is None:
        return None
    try:
        mac = normalize_mac(spec.mac)
    except ValidationError as exc:
        return exc.message
    problem = unicast_problem(mac)
    if problem:
        return problem
    if any(other.mac and other.mac.lower() == mac for other in others):
        return f"Another network adapter of this virtual machine has the MAC address {mac}."
    return None


def _queues_problem(spec: AdapterSpec, processors: int) -> str | None:
    if not spec.vmq:
        return None
    if spec.legacy:
        return "A legacy network adapter has no virtual machine queue (VMQ): use a network adapter."
    most = max(1, min(processors, MAX_QUEUES))
    if 1 <= spec.queues <= most:
        return None
    if spec.queues > MAX_QUEUES:
        return f"A network adapter can have at most {MAX_QUEUES} queues."
    if spec.queues < 1:
        return "A network adapter needs at least 1 queue."
    return (
        f"The network adapter can have at most {most} queue{'s' if most > 1 else ''}: one per virtual "
        f"processor of the virtual machine, which has {processors}. Give it more processors first."
    )


def _bandwidth_problems(spec: AdapterSpec, switches: Mapping[str, SwitchInfo]) -> list[str]:
    found = []
    for label, value in (("minimum", spec.minimum_mbps), ("maximum", spec.maximum_mbps)):
        if not 0 <= value <= MAX_MBPS:
            found.append(f"The {label} bandwidth must be 0 (not set) or 1 to {MAX_MBPS} Mbps.")
    if found:
        return found
    if spec.maximum_mbps and spec.minimum_mbps > spec.maximum_mbps:
        found.append(
            f"The minimum bandwidth ({spec.minimum_mbps} Mbps) is above the maximum "
            f"({spec.maximum_mbps} Mbps)."
        )
    switch = switches.get(spec.switch) if spec.switch is not None else None
    if spec.minimum_mbps and switch is not None and not switch.spec.minimum_bandwidth:
        found.append(
            f"The virtual switch '{switch.name}' was not created with minimum bandwidth management, "
            "so an adapter on it can't reserve a minimum bandwidth."
        )
    if spec.maximum_mbps or (spec.minimum_mbps and switch is not None):
        problem = kernel_features.bandwidth_problem()
        if problem:
            found.append(
                "Bandwidth management is not possible on this host: libvirt limits and reserves an "
                f"adapter's bandwidth with traffic-control queueing disciplines. {problem}"
            )
    return found


def _vlan_problem(spec: AdapterSpec) -> str | None:
    if spec.vlan_id is None:
        return None
    low, high = VLAN_RANGE
    if not low <= spec.vlan_id <= high:
        return f"The VLAN ID must be between {low} and {high}."
    problem = kernel_features.adapter_vlan_problem()
    return f"A network adapter can't have a VLAN ID on this host. {problem}" if problem else None


def _name_problem(spec: AdapterSpec) -> str | None:
    if not spec.name.strip():
        return "The network adapter needs a name."
    if len(spec.name) > MAX_NAME:
        return f"The network adapter's name can have at most {MAX_NAME} characters."
    return None


def adapter_problems(
    spec: AdapterSpec,
    generation: int | None,
    processors: int,
    others: tuple[AdapterSpec, ...],
    switches: Mapping[str, SwitchInfo],
) -> list[str]:
    """Why ``spec`` can't be an adapter of a VM of this generation and processor count, beside its
    ``others`` adapters, on the server's ``switches`` (by name); empty when it can.

    ``generation`` None is a VM hvmanager did not make (treated as Generation 1 unless it is 2).
    """
    found: list[str | None] = []
    if spec.legacy and generation == 2:
        found.append(
            "Legacy network adapters exist only in Generation 1 virtual machines: use a network adapter."
        )
    found.append(_count_problem(spec, others))
    found.append(_mac_problem(spec, others))
    if spec.switch is not None and spec.switch not in switches:
        found.append(f"There is no virtual switch named '{spec.switch}'.")
    found.append(_queues_problem(spec, processors))
    found.extend(_bandwidth_problems(spec, switches))
    found.append(_vlan_problem(spec))
    found.append(_name_problem(spec))
    return [problem for problem in found if problem]
