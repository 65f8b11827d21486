"""A VM's network adapters: read, check, add, remove, connect and change them (Hyper-V's Network
Adapter pages and ``*-VMNetworkAdapter`` cmdlets).

Every change is checked first (``adapter_problems`` and the VM's state: nothing is touched when it
is refused), then made on the running VM (hot-plug, live reconnection) and in its persistent
configuration. When a step fails, the steps before it are undone, so the VM ends as it was.

What can change while the VM runs: adding and removing (synthetic) adapters, the switch ("Not
connected" takes the link down), bandwidth, name. A VLAN applies at the next start. Queues (VMQ),
legacy adapters and MAC addresses change only while it is off (QEMU sets an adapter's queues when
it is plugged in).

All functions block (run them in an executor).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from hvmanager.backend import mac_pool, vm_network_config, vm_network_ops
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.network_models import AdapterSpec, MacRange
from hvmanager.backend.nic_xml import normalized
from hvmanager.backend.vm_network_live import Steps
from hvmanager.backend.vm_network_ops import CONFIG_XML_FLAGS, Vm
from hvmanager.backend.vm_network_rules import adapter_problems

__all__ = [
    "adapter_problems",
    "adapters",
    "add_adapter",
    "apply_adapters_undoable",
    "connect_adapter",
    "remove_adapter",
    "set_adapter",
]

_T = TypeVar("_T")


def adapters(dom: Any, live: bool = False) -> tuple[AdapterSpec, ...]:
    """The VM's network adapters: of its persistent configuration, or with ``live`` of the running
    VM (as it runs now: a switch change shows at once, queues as it started)."""
    with libvirt_errors("Reading the network adapters of a virtual machine"):
        persistent = bool(dom.isPersistent())
        xml = str(dom.XMLDesc(0 if live or not persistent else CONFIG_XML_FLAGS))
    return vm_network_config.read_adapters(xml)


def _run(action: Callable[[Steps], _T]) -> tuple[_T, Steps]:
    """Run ``action``; when it fails, undo its steps and raise."""
    steps = Steps()
    try:
        result = action(steps)
    except BaseException:
        steps.undo_all()
        raise
    return result, steps


def _configured(vm: Vm, mac: str) -> AdapterSpec:
    found = next((a for a in vm.adapters() if a.mac == mac), None)
    if found is None:
        raise ValidationError(f"'{vm.name}' has no network adapter with the MAC address {mac}.")
    return found


def add_adapter(conn: Any, dom: Any, spec: AdapterSpec, mac_range: MacRange | None = None) -> AdapterSpec:
    """Add a network adapter (hot-plugged too when the VM runs); returns it with its MAC address.

    ``spec.mac`` None takes the next free address of ``mac_range`` (by default the range of the
    settings). Raises ``ValidationError`` / ``InvalidStateError`` when refused (nothing changed).
    """
    vm = Vm.read(conn, dom)
    added, _steps = _run(
        lambda steps: vm_network_ops.add(vm, vm_network_ops.with_mac(vm, spec, mac_range), steps)
    )
    return added


def remove_adapter(conn: Any, dom: Any, mac: str) -> None:
    """Remove the network adapter with this MAC address (hot-unplugged too when the VM runs)."""
    vm = Vm.read(conn, dom)
    _run(lambda steps: vm_network_ops.remove(vm, mac_pool.normalize_mac(mac), steps))


def connect_adapter(conn: Any, dom: Any, mac: str, switch: str | None) -> None:
    """Connect the adapter to ``switch``, or None for "Not connected", in the configuration and,
    when the VM runs, live."""
    vm = Vm.read(conn, dom)
    known = mac_pool.normalize_mac(mac)
    wanted = dataclasses.replace(_configured(vm, known), switch=switch)
    _run(lambda steps: vm_network_ops.change(vm, known, wanted, steps))


def set_adapter(conn: Any, dom: Any, mac: str, spec: AdapterSpec) -> AdapterSpec:
    """Give the adapter with MAC address ``mac`` the settings of ``spec`` (``spec.mac`` a new static
    address, or None to keep it); returns the adapter as now configured."""
    vm = Vm.read(conn, dom)
    known = _configured(vm, mac_pool.normalize_mac(mac)).mac or ""
    _run(lambda steps: vm_network_ops.change(vm, known, spec, steps))
    new_mac = mac_pool.normalize_mac(spec.mac or known)
    return next(a for a in vm.adapters() if a.mac == new_mac)


# --- the Settings dialog ------------------------------------------------------------------------


def _with_macs(vm: Vm, wanted: tuple[AdapterSpec, ...], mac_range: MacRange | None) -> list[AdapterSpec]:
    """The wanted adapters, new dynamic ones with an address of the range (none the others have)."""
    static = [vm_network_ops.with_mac(vm, spec, mac_range) if spec.mac else spec for spec in wanted]
    taken = {spec.mac for spec in static if spec.mac}
    resolved = []
    for spec in static:
        if spec.mac is None:
            spec = vm_network_ops.with_mac(vm, spec, mac_range, taken)
            taken.add(spec.mac or "")
        resolved.append(spec)
    return resolved


def _check_all(vm: Vm, wanted: list[AdapterSpec]) -> None:
    problems: list[str] = []
    for index, spec in enumerate(wanted):
        others = tuple(wanted[:index] + wanted[index + 1 :])
        for problem in adapter_problems(spec, vm.generation, vm.processors, others, vm.switches):
            if problem not in problems:
                problems.append(problem)
    if problems:
        raise ValidationError(" ".join(problems))


def apply_adapters_undoable(
    conn: Any, dom: Any, wanted: tuple[AdapterSpec, ...], mac_range: MacRange | None
) -> tuple[list[str], Callable[[], None]]:
    """Make the VM's adapters those of ``wanted`` (the Settings dialog's list; an adapter without
    MAC address is a new one): removes, then changes, then additions. Returns notes for the user
    and a function that undoes it all (for a dialog whose later part fails). Everything is checked
    before anything changes."""
    vm = Vm.read(conn, dom)
    resolved = _with_macs(vm, wanted, mac_range)
    _check_all(vm, resolved)
    current = {a.mac: a for a in vm.adapters()}
    kept = {s.mac: s for s in resolved if s.mac in current and s.legacy == current[s.mac].legacy}
    removed = [mac for mac in current if mac not in kept]
    changed = [s for mac, s in kept.items() if normalized(s) != current[mac]]
    added = [s for s in resolved if s.mac not in kept]

    def apply(steps: Steps) -> list[str]:
        notes: list[str] = []
        for mac in removed:
            vm_network_ops.remove(vm, mac or "", steps)
        for spec in changed:
            notes += vm_network_ops.change(vm, spec.mac or "", spec, steps)
        for spec in added:
            vm_network_ops.add(vm, spec, steps)
        return notes

    notes, steps = _run(apply)
    return notes, steps.undo_all
