"""What is wrong with a virtual switch the user is about to create or change, in the user's words.

:func:`switch_problems` gathers the facts once (the server's switches, one netlink dump of the
host's network, read only) and applies Hyper-V's rules and the host's limits:

- the name: 1-100 characters, not blank, no ``/`` or control characters, unique (ignoring case);
- External: an existing network adapter, not the loopback, not a bridge, tap or macvtap, not a port
  of another bridge, and not bound to another External switch (one per host adapter);
- Internal and NAT: the host's address on the switch, an IPv4 interface with a prefix of 8-30 whose
  subnet overlaps no host address or route and no other switch's subnet;
- the management OS's VLAN ID: 1-4094, only where the host is on the switch, and only on a kernel
  with 802.1Q (:mod:`kernel_features`);
- minimum bandwidth mode: chosen at creation only, on a switch whose bridge libvirt makes.

:func:`require_default_route_confirmation` raises :class:`ConfirmationNeeded` when the change binds
the adapter that carries the host's default route.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Any

from hvmanager.backend import kernel_features
from hvmanager.backend.errors import HvError
from hvmanager.backend.host_adapters import HostNetwork, bound_adapters, bridge_of_switch, read_host_network
from hvmanager.backend.network_models import SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.switch_errors import ConfirmationNeeded
from hvmanager.backend.switch_inventory import list_switches

MAX_NAME_LENGTH = 100
MIN_PREFIX, MAX_PREFIX = 8, 30
MIN_VLAN, MAX_VLAN = 1, 4094
_NOTES_CONTROLS_ALLOWED = {"\n", "\t", "\r"}


def _has_controls(text: str, allowed: set[str] | None = None) -> bool:
    return any(unicodedata.category(ch) == "Cc" and ch not in (allowed or set()) for ch in text)


def name_problems(name: str, switches: list[SwitchInfo], current: str | None) -> list[str]:
    """The name's rules: length, characters, uniqueness against the other switches."""
    if not name.strip():
        return ["The virtual switch needs a name."]
    if len(name) > MAX_NAME_LENGTH:
        return [f"A virtual switch name has at most {MAX_NAME_LENGTH} characters (this one has {len(name)})."]
    if "/" in name:
        return ["A virtual switch name cannot contain '/'."]
    if _has_controls(name):
        return ["A virtual switch name cannot contain control characters."]
    for switch in switches:
        if switch.name.casefold() == name.casefold() and switch.name != current:
            return [f"A virtual switch named '{switch.name}' already exists."]
    return []


def adapter_problems(
    spec: SwitchSpec, switches: list[SwitchInfo], current: SwitchInfo | None, host: HostNetwork
) -> list[str]:
    """An External switch's host adapter: there, an adapter, free (one External switch each)."""
    name = spec.host_adapter
    if not name:
        return ["An External switch needs the host network adapter it is bound to."]
    link = host.link(name)
    if link is None:
        return [f"The host has no network adapter named '{name}'."]
    if name == "lo":
        return ["The loopback interface 'lo' cannot be bound to an External switch."]
    if not link.adapter_like:
        return [f"'{name}' is not a network adapter ({link.kind or 'not Ethernet'}): a bridge, tap or "
                "virtual device of libvirt or hvmanager cannot be bound to an External switch."]  # fmt: skip
    others = [switch for switch in switches if current is None or switch.name != current.name]
    bound = bound_adapters(others).get(name)
    if bound is not None:
        return [f"The network adapter '{name}' is already bound to the External switch '{bound}' "
                "(one External switch per host adapter)."]  # fmt: skip
    ours = bridge_of_switch([current], host) if current is not None else set()
    if link.master is not None and link.master not in ours:
        bridge = host.name_of(link.master)
        return [f"The network adapter '{name}' is already a port of the bridge '{bridge}'."]
    return []


def _address_rule_problems(text: str | None) -> tuple[ipaddress.IPv4Interface | None, list[str]]:
    if not text:
        return None, ["The host's address on the switch is needed (for example 192.168.150.1/24)."]
    try:
        interface = ipaddress.IPv4Interface(text.strip())
    except ValueError:
        return None, [f"'{text}' is not an IPv4 address with a prefix length (for example 192.168.150.1/24)."]
    if "/" not in text or not MIN_PREFIX <= interface.network.prefixlen <= MAX_PREFIX:
        return None, [f"The prefix length of '{text}' must be from {MIN_PREFIX} to {MAX_PREFIX}."]
    ip, network = interface.ip, interface.network
    if ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_reserved:
        return None, [f"{ip} cannot be the host's address on a switch (it is multicast, loopback, "
                      "link-local or reserved)."]  # fmt: skip
    if ip in (network.network_address, network.broadcast_address):
        return None, [f"{ip} is the network or broadcast address of {network}, not a host's address."]
    return interface, []


def _subnet_of(text: str | None) -> ipaddress.IPv4Network | None:
    try:
        return ipaddress.IPv4Interface(text).network if text else None
    except ValueError:
        return None


def address_problems(
    spec: SwitchSpec, switches: list[SwitchInfo], current: SwitchInfo | None, host: HostNetwork
) -> list[str]:
    """The host's address on an Internal or NAT switch, and the overlap of its subnet."""
    interface, problems = _address_rule_problems(spec.host_address)
    if interface is None:
        return problems
    subnet = interface.network
    for switch in switches:
        other = _subnet_of(switch.spec.host_address)
        if (current is None or switch.name != current.name) and other is not None and other.overlaps(subnet):
            return [f"The address range {subnet} overlaps the range {other} of the virtual switch "
                    f"'{switch.name}'."]  # fmt: skip
    skip = bridge_of_switch([current], host) if current is not None else set()
    for index, addresses in host.addresses.items():
        for address in addresses:
            if index not in skip and address.network.overlaps(subnet):
                device = host.name_of(index)
                return [f"The address range {subnet} overlaps the host's address {address} on '{device}'."]
    for route in host.routes:
        if not route.is_default and route.device not in skip and route.network.overlaps(subnet):
            return [f"The address range {subnet} overlaps the host's route to {route.network} "
                    f"via '{host.name_of(route.device)}'."]  # fmt: skip
    return []


def vlan_problems(spec: SwitchSpec) -> list[str]:
    """The management OS's VLAN ID: its range, a switch the host is on, and the kernel's 802.1Q."""
    if spec.vlan_id is None:
        return []
    if not MIN_VLAN <= spec.vlan_id <= MAX_VLAN:
        return [f"The VLAN ID must be from {MIN_VLAN} to {MAX_VLAN}."]
    shared_external = spec.type is SwitchType.EXTERNAL and spec.share_with_host
    if spec.type is not SwitchType.INTERNAL and not shared_external:
        return ["A VLAN ID for the management operating system needs an Internal switch or an External "
                "switch the management operating system shares."]  # fmt: skip
    problem = kernel_features.vlan_problem() or kernel_features.adapter_vlan_problem()
    return [problem] if problem else []


def bandwidth_problems(spec: SwitchSpec, current: SwitchInfo | None) -> list[str]:
    """Minimum bandwidth mode: only at creation, on a bridge libvirt shapes, with the kernel's qdiscs."""
    if current is not None:
        if current.spec.minimum_bandwidth != spec.minimum_bandwidth:
            return ["The minimum bandwidth mode can only be chosen when the virtual switch is created."]
        return []
    if not spec.minimum_bandwidth:
        return []
    if spec.type is SwitchType.EXTERNAL:
        return ["Minimum bandwidth can only be reserved on Private, Internal and NAT switches (libvirt "
                "shapes traffic on the bridges it makes itself)."]  # fmt: skip
    problem = kernel_features.bandwidth_problem()
    return [problem] if problem else []


def _binding_unchanged(spec: SwitchSpec, current: SwitchInfo | None) -> bool:
    """An External switch keeping its binding (say, only its notes change) is not re-checked: it
    may be a network hvmanager did not make, bridged to a device it would not offer."""
    if current is None or current.spec.type is not SwitchType.EXTERNAL:
        return False
    old = current.spec
    return (old.host_adapter, old.share_with_host) == (spec.host_adapter, spec.share_with_host)


def spec_problems(
    spec: SwitchSpec, switches: list[SwitchInfo], current: SwitchInfo | None, host: HostNetwork
) -> list[str]:
    """Every rule against facts already read (no I/O but the cached kernel probes)."""
    problems = name_problems(spec.name, switches, current.name if current else None)
    if _has_controls(spec.notes, _NOTES_CONTROLS_ALLOWED):
        problems.append("The notes cannot contain control characters.")
    if spec.type is SwitchType.EXTERNAL and not _binding_unchanged(spec, current):
        problems += adapter_problems(spec, switches, current, host)
    if spec.type in (SwitchType.INTERNAL, SwitchType.NAT):
        problems += address_problems(spec, switches, current, host)
    problems += vlan_problems(spec)
    problems += bandwidth_problems(spec, current)
    return problems


def _current(switches: list[SwitchInfo], name: str | None) -> SwitchInfo | None:
    if name is None:
        return None
    found = next((switch for switch in switches if switch.name == name), None)
    if found is None:
        raise HvError(f"There is no virtual switch named '{name}'.")
    return found


def switch_problems(
    conn: Any, spec: SwitchSpec, current: str | None = None, netns: str | None = None
) -> list[str]:
    """What keeps ``spec`` from being created (or, with ``current``, from replacing that switch).

    ``netns`` points the host checks at another network namespace (tests).
    """
    switches = list_switches(conn)
    return spec_problems(spec, switches, _current(switches, current), read_host_network(netns))


def binds_default_route_adapter(spec: SwitchSpec, current: SwitchInfo | None, host: HostNetwork) -> bool:
    """Whether the change newly binds (or re-plumbs) the adapter carrying the default route."""
    if spec.type is not SwitchType.EXTERNAL or not spec.host_adapter:
        return False
    link = host.link(spec.host_adapter)
    if link is None or not host.carries_default_route(link):
        return False
    old = current.spec if current is not None else None
    unchanged = (
        old is not None and old.type is SwitchType.EXTERNAL and old.host_adapter == spec.host_adapter
        and old.share_with_host == spec.share_with_host
    )  # fmt: skip
    return not unchanged


def require_default_route_confirmation(
    conn: Any, spec: SwitchSpec, current: str | None, confirmed: bool, netns: str | None = None
) -> None:
    """Raise ConfirmationNeeded when the change binds the default-route adapter unconfirmed."""
    if confirmed or spec.type is not SwitchType.EXTERNAL:
        return
    switches = list_switches(conn)
    if binds_default_route_adapter(spec, _current(switches, current), read_host_network(netns)):
        raise ConfirmationNeeded(spec.host_adapter or "")
