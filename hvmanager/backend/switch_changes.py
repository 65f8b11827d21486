"""Creating, changing and removing virtual switches: libvirt networks plus, for a shared External
switch, the host bridge. Every operation is all or nothing: a failure part-way undoes the steps
already done (the network, the bridge, the VMs' adapters), newest first.

A switch's network is persistent, started and set to autostart. A change the running network
cannot take (type, addresses, adapter, VLAN) stops it, redefines it and starts it again; renaming
does the same under the new name (libvirt cannot rename a network) and keeps its UUID. The VMs on
the switch stay connected through it all (their adapters re-pointed to the new name, or their taps
put back on the new bridge), except when the type changes or the switch goes: then they end "Not
connected", and only when the caller said so (else :class:`SwitchInUseError`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from hvmanager.backend import external_bridge
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.network_models import SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.rollback import Rollback
from hvmanager.backend.switch_checks import require_default_route_confirmation, switch_problems
from hvmanager.backend.switch_errors import SwitchInUseError
from hvmanager.backend.switch_inventory import definition_xml, get_switch, list_switches, lookup_network
from hvmanager.backend.switch_users import (
    SwitchUser,
    Unplugged,
    connect_back,
    connect_each,
    plug,
    plug_back,
    reattach_taps,
    unplug,
    unplug_again,
    users_of_switch,
    vm_names,
)
from hvmanager.backend.switch_xml import (
    HostBridge,
    host_bridge,
    network_xml,
    normalized,
    parse_network,
    with_metadata,
)

log = logging.getLogger(__name__)

_BRIDGE_MAKING = (SwitchType.PRIVATE, SwitchType.INTERNAL, SwitchType.NAT)


@dataclass
class _Followers:
    """The VM adapters brought along so far: re-pointed to a new name, unplugged, plugged in."""

    moved: list[SwitchUser] = field(default_factory=list)
    unplugged: list[Unplugged] = field(default_factory=list)
    plugged: list[Unplugged] = field(default_factory=list)


@contextmanager
def _all_or_nothing() -> Iterator[Rollback]:
    rollback = Rollback("a virtual switch change")
    try:
        yield rollback
    except BaseException:
        rollback.run()
        raise


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ValidationError("\n".join(problems))


def _make_host_bridge(spec: SwitchSpec, rollback: Rollback, confirmed: bool) -> HostBridge | None:
    if spec.type is not SwitchType.EXTERNAL or not spec.share_with_host or not spec.host_adapter:
        return None
    adapter = spec.host_adapter
    bridge = external_bridge.bridge_name(adapter)
    was_up = external_bridge.attach(adapter, bridge, move_default_route=confirmed)
    rollback.push(lambda: external_bridge.detach(adapter, bridge, was_up))
    return HostBridge(bridge, adapter, was_up)


def _remove_host_bridge(host: HostBridge, rollback: Rollback) -> None:
    external_bridge.detach(host.adapter, host.bridge, host.adapter_was_up)
    rollback.push(lambda: external_bridge.attach(host.adapter, host.bridge, move_default_route=True))


def _start(net: Any, rollback: Rollback) -> None:
    net.create()
    rollback.push(net.destroy)
    net.setAutostart(1)


def _apply_vlan(spec: SwitchSpec, info: SwitchInfo) -> None:
    # Only reached where switch_checks found the kernel able to (802.1Q and bridge VLAN filtering).
    if spec.vlan_id is None or info.bridge is None:
        return
    uplink = spec.host_adapter if spec.type is SwitchType.EXTERNAL else None
    external_bridge.set_management_vlan(info.bridge, spec.vlan_id, uplink)


def create_switch(conn: Any, spec: SwitchSpec, confirm_default_route: bool = False) -> SwitchInfo:
    """Create a switch (ValidationError listing every problem; nothing is left on failure)."""
    spec = normalized(spec)
    _refuse(switch_problems(conn, spec))
    require_default_route_confirmation(conn, spec, None, confirm_default_route)
    with _all_or_nothing() as rollback, libvirt_errors(f"Creating the virtual switch '{spec.name}'"):
        host = _make_host_bridge(spec, rollback, confirm_default_route)
        net = conn.networkDefineXML(network_xml(spec, host.bridge if host else None, host_bridge=host))
        rollback.push(net.undefine)
        _start(net, rollback)
        info = get_switch(conn, spec.name)
        _apply_vlan(spec, info)
    return info


def _needs_rebuild(old: SwitchSpec, new: SwitchSpec) -> bool:
    """Whether the running network must be stopped and started again (anything but the notes)."""

    def network_part(spec: SwitchSpec) -> tuple[Any, ...]:
        return (
            spec.type,
            spec.host_adapter,
            spec.share_with_host,
            spec.host_address,
            spec.dhcp,
            spec.vlan_id,
        )

    return network_part(old) != network_part(new)


def set_switch(
    conn: Any, current_name: str, spec: SwitchSpec, confirm_default_route: bool = False,
    disconnect_users: bool = False,
) -> SwitchInfo:  # fmt: skip
    """Change (and maybe rename) the switch ``current_name`` to ``spec``."""
    spec = normalized(spec)
    net = lookup_network(conn, current_name)
    with libvirt_errors(f"Reading the virtual switch '{current_name}'"):
        old_xml = definition_xml(net)
        old = parse_network(old_xml, bool(net.isActive()))
    _refuse(switch_problems(conn, spec, current_name))
    require_default_route_confirmation(conn, spec, current_name, confirm_default_route)
    if old.managed and normalized(old.spec) == spec:
        return old
    users = users_of_switch(conn, current_name)
    retype = spec.type is not old.spec.type
    if retype and users and not disconnect_users:
        raise SwitchInUseError(current_name, vm_names(users))
    if spec.name == current_name and not _needs_rebuild(normalized(old.spec), spec):
        with libvirt_errors(f"Changing the virtual switch '{current_name}'"):
            conn.networkDefineXML(with_metadata(old_xml, spec, host_bridge(old_xml)))
        return get_switch(conn, spec.name)
    with _all_or_nothing() as rollback, libvirt_errors(f"Changing the virtual switch '{current_name}'"):
        _rebuild(conn, net, old_xml, old, spec, users if not retype else [], users if retype else [],
                 rollback, confirm_default_route)  # fmt: skip
        info = get_switch(conn, spec.name)
        _apply_vlan(spec, info)
    return info


def _bridge_backed(spec: SwitchSpec) -> bool:
    return spec.type in _BRIDGE_MAKING or (spec.type is SwitchType.EXTERNAL and spec.share_with_host)


def _kind_changes(old: SwitchInfo, new: SwitchSpec) -> bool:
    """Whether running VMs' devices must change kind or parent: tap on a bridge <-> macvtap, or a
    macvtap binding moving to another adapter."""
    if bool(old.bridge) != _bridge_backed(new):
        return True
    return not old.bridge and old.spec.host_adapter != new.host_adapter


def _rebuild(
    conn: Any, net: Any, old_xml: str, old: SwitchInfo, spec: SwitchSpec, keep: list[SwitchUser],
    cut: list[SwitchUser], rollback: Rollback, confirmed: bool,
) -> None:  # fmt: skip
    """Stop the network, re-plumb the host bridge, define the new network, start it, and bring the
    adapters in ``keep`` along (those in ``cut`` end "Not connected")."""
    followed = _Followers()
    disconnected: list[SwitchUser] = []
    # Registered first so they run last: the adapters need the old network back to return to it.
    rollback.push(lambda: connect_back(conn, followed.moved, old.name))
    rollback.push(lambda: plug_back(followed.unplugged, old.name))
    rollback.push(lambda: connect_back(conn, disconnected, old.name))
    connect_each(conn, cut, None, disconnected)
    running = [user for user in keep if user.device]
    replug = _kind_changes(old, spec)
    if replug:
        unplug(running, followed.unplugged)
    if net.isActive():
        net.destroy()
        rollback.push(net.create)
    old_host = host_bridge(old_xml)
    keep_host = old_host is not None and spec.share_with_host and spec.host_adapter == old_host.adapter
    if old_host is not None and not keep_host:
        _remove_host_bridge(old_host, rollback)
    host = old_host if keep_host else _make_host_bridge(spec, rollback, confirmed)
    bridge = (
        host.bridge if host else (old.bridge if {old.spec.type, spec.type} <= set(_BRIDGE_MAKING) else None)
    )
    new_xml = network_xml(spec, bridge, old_xml, host)
    if spec.name != old.name:
        autostart = bool(net.autostart())
        net.undefine()
        rollback.push(lambda: conn.networkDefineXML(old_xml).setAutostart(int(autostart)))
        new_net = conn.networkDefineXML(new_xml)
        rollback.push(new_net.undefine)
    else:
        new_net = conn.networkDefineXML(new_xml)
        rollback.push(lambda: conn.networkDefineXML(old_xml))
    _start(new_net, rollback)
    new = get_switch(conn, spec.name)
    if spec.name != old.name:
        connect_each(conn, keep, new.name, followed.moved)  # config, and live where still plugged in
    if replug:
        rollback.push(lambda: unplug_again(followed.plugged))
        plug(followed.unplugged, new.name, followed.plugged)
    elif spec.name == old.name and new.bridge:
        reattach_taps(running, new.bridge)  # what libvirt does on a restart: taps back on the bridge


def remove_switch(conn: Any, name: str, disconnect_users: bool = False) -> None:
    """Remove a switch (and its host bridge); its VMs' adapters end "Not connected" if allowed."""
    net = lookup_network(conn, name)
    users = users_of_switch(conn, name)
    if users and not disconnect_users:
        raise SwitchInUseError(name, vm_names(users))
    with _all_or_nothing() as rollback, libvirt_errors(f"Removing the virtual switch '{name}'"):
        old_xml = definition_xml(net)
        disconnected: list[SwitchUser] = []
        rollback.push(lambda: connect_back(conn, disconnected, name))
        connect_each(conn, users, None, disconnected)
        if net.isActive():
            net.destroy()
            rollback.push(net.create)
        host = host_bridge(old_xml)
        if host is not None:
            _remove_host_bridge(host, rollback)
        if net.isPersistent():
            net.undefine()


def restore_host_bridges(conn: Any) -> list[str]:
    """Re-make the host bridges of shared External switches that are missing (after a host restart:
    kernel bridges do not survive it, libvirt networks do). Returns what was done, one line each."""
    done = []
    for switch in list_switches(conn):
        net = lookup_network(conn, switch.name)
        host = host_bridge(definition_xml(net))
        if host is None or external_bridge.bridge_exists(host.bridge):
            continue
        try:
            external_bridge.attach(host.adapter, host.bridge, move_default_route=True)
        except HvError as exc:
            done.append(f"Could not re-make the host bridge {host.bridge} of '{switch.name}': {exc.message}")
            continue
        done.append(f"Re-made the host bridge {host.bridge} of '{switch.name}' on {host.adapter}.")
        if switch.spec.vlan_id is not None:
            _apply_vlan(switch.spec, switch)
    return done
