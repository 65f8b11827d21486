"""The host bridge behind an External switch the management OS shares.

Sharing a host adapter with the VMs (Hyper-V's "Allow management operating system to share this
network adapter") means the adapter becomes a port of a Linux bridge and the host keeps using the
network through that bridge: the adapter's IPv4 addresses, and the routes through it, move to the
bridge, which takes the adapter's MAC address so the network sees the same host. :func:`attach`
does that all-or-nothing; :func:`detach` moves everything back and deletes the bridge. Both work on
a network namespace of the caller's choosing (the tests' own), the host's by default.

Routes are moved before the addresses: deleting an address makes the kernel drop the gateway
routes that relied on it, so they are read first and re-added once the bridge has the address.
Only IPv4 is moved (an IPv6 network's router advertisements configure the bridge by themselves),
and addresses move as they are: a DHCP client still watching the adapter is not told.
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hvmanager.backend.errors import HvError
from hvmanager.backend.rollback import Rollback
from hvmanager.backend.switch_errors import ConfirmationNeeded

BRIDGE_PREFIX = "hvx-"
_IFNAMSIZ = 15
_MAIN_TABLE = 254
_PROTO_KERNEL = 2  # routes the kernel derives from an address move with it by themselves


def bridge_name(adapter: str) -> str:
    """The host bridge's name for an adapter: ``hvx-`` and a short form of the adapter's name."""
    room = _IFNAMSIZ - len(BRIDGE_PREFIX)
    if len(adapter) <= room:
        return BRIDGE_PREFIX + adapter
    # Long names (enp0s20f0u1u2) keep their start plus a checksum so that two never collide.
    return f"{BRIDGE_PREFIX}{adapter[: room - 5]}{zlib.crc32(adapter.encode()) & 0xFFFFF:05x}"


@dataclass(frozen=True)
class _Address:
    address: str
    prefixlen: int
    broadcast: str | None
    scope: int


@dataclass(frozen=True)
class _Route:
    dst: str | None
    dst_len: int
    gateway: str | None
    priority: int | None
    proto: int
    scope: int

    @property
    def is_default(self) -> bool:
        return self.dst_len == 0


@contextmanager
def _netlink(netns: str | None) -> Iterator[Any]:
    try:
        with IPRoute(netns=netns, flags=0, ext_ack=True) if netns else IPRoute(ext_ack=True) as ipr:
            yield ipr
    except NetlinkError as exc:
        text = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else ""
        raise HvError(f"Changing the host's network adapters failed: {text or exc}") from exc


def _index(ipr: Any, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise HvError(f"The host has no network adapter named '{name}'.")
    return int(found[0])


def _addresses(ipr: Any, index: int) -> list[_Address]:
    return [
        _Address(msg.get("address"), msg["prefixlen"], msg.get("broadcast"), msg["scope"])
        for msg in ipr.addr("dump", family=socket.AF_INET, index=index)
    ]


def _routes(ipr: Any, index: int) -> list[_Route]:
    """The main table's IPv4 routes through a device, but those the kernel made from an address."""
    return [
        _Route(msg.get("dst"), msg["dst_len"], msg.get("gateway"), msg.get("priority"), msg["proto"],
               msg["scope"])
        for msg in ipr.route("dump", family=socket.AF_INET, table=_MAIN_TABLE)
        if msg.get("oif") == index and msg["proto"] != _PROTO_KERNEL
    ]  # fmt: skip


def has_default_route(adapter: str, netns: str | None = None) -> bool:
    """Whether the main routing table's default route goes out through ``adapter``."""
    with _netlink(netns) as ipr:
        return any(route.is_default for route in _routes(ipr, _index(ipr, adapter)))


def _add_address(ipr: Any, index: int, addr: _Address) -> None:
    extra = {"broadcast": addr.broadcast} if addr.broadcast else {}
    ipr.addr("add", index=index, address=addr.address, prefixlen=addr.prefixlen, scope=addr.scope, **extra)


def _del_address(ipr: Any, index: int, addr: _Address) -> None:
    ipr.addr("del", index=index, address=addr.address, prefixlen=addr.prefixlen)


def _route_args(route: _Route, index: int) -> dict[str, Any]:
    args: dict[str, Any] = {
        "dst": f"{route.dst}/{route.dst_len}" if route.dst_len else "default",
        "oif": index, "table": _MAIN_TABLE, "proto": route.proto, "scope": route.scope,
    }  # fmt: skip
    if route.gateway:
        args["gateway"] = route.gateway
    if route.priority is not None:
        args["priority"] = route.priority
    return args


def _route(ipr: Any, command: str, route: _Route, index: int) -> None:
    ipr.route(command, **_route_args(route, index))


def _move(ipr: Any, undo: Rollback, source: int, target: int) -> None:
    """Move the IPv4 addresses and routes of device ``source`` to device ``target``."""
    addresses, routes = _addresses(ipr, source), _routes(ipr, source)
    for route in routes:
        _route(ipr, "del", route, source)
        undo.push(partial(_route, ipr, "add", route, source))
    for addr in addresses:
        _del_address(ipr, source, addr)
        undo.push(partial(_add_address, ipr, source, addr))
    for addr in addresses:
        _add_address(ipr, target, addr)
        undo.push(partial(_del_address, ipr, target, addr))
    for route in routes:
        _route(ipr, "add", route, target)
        undo.push(partial(_route, ipr, "del", route, target))


def attach(adapter: str, bridge: str, move_default_route: bool, netns: str | None = None) -> bool:
    """Make ``bridge``, enslave ``adapter`` to it and move the adapter's IPv4 set-up onto it.

    Returns whether the adapter was up before (so :func:`detach` can leave it as it was). Refuses
    an adapter that carries the default route unless ``move_default_route``; on any failure
    everything done so far is undone.
    """
    with _netlink(netns) as ipr:
        index = _index(ipr, adapter)
        link = ipr.link("get", index=index)[0]
        if link.get("master"):
            raise HvError(f"The network adapter '{adapter}' is already a port of another bridge.")
        if not move_default_route and any(route.is_default for route in _routes(ipr, index)):
            raise ConfirmationNeeded(adapter)
        was_up = bool(link["flags"] & 1)
        undo = Rollback("a host bridge change")
        try:
            ipr.link("add", ifname=bridge, kind="bridge", address=link.get("address"),
                     br_stp_state=0, br_forward_delay=0)  # fmt: skip
            target = _index(ipr, bridge)
            undo.push(lambda: ipr.link("del", index=target))
            ipr.link("set", index=target, state="up")
            ipr.link("set", index=index, master=target)
            undo.push(lambda: ipr.link("set", index=index, master=0))
            if not was_up:
                ipr.link("set", index=index, state="up")
                undo.push(lambda: ipr.link("set", index=index, state="down"))
            _move(ipr, undo, index, target)
        except BaseException:
            undo.run()
            raise
        return was_up


def detach(adapter: str, bridge: str, adapter_was_up: bool = True, netns: str | None = None) -> None:
    """Undo :func:`attach`: addresses and routes back to ``adapter``, adapter freed, bridge deleted.

    A bridge that is already gone (a host restart) leaves nothing to undo; an adapter that is gone
    leaves only the bridge to delete. A failure part-way puts back what was moved.
    """
    with _netlink(netns) as ipr:
        found = ipr.link_lookup(ifname=bridge)
        if not found:
            return
        target = int(found[0])
        if not ipr.link_lookup(ifname=adapter):
            ipr.link("del", index=target)  # the adapter is gone (unplugged): nothing to give back
            return
        index = _index(ipr, adapter)
        undo = Rollback("a host bridge change")
        try:
            _move(ipr, undo, target, index)
            ipr.link("set", index=index, master=0)
            undo.push(lambda: ipr.link("set", index=index, master=target))
            if not adapter_was_up:
                ipr.link("set", index=index, state="down")
                undo.push(lambda: ipr.link("set", index=index, state="up"))
            ipr.link("del", index=target)
        except BaseException:
            undo.run()
            raise


def bridge_exists(bridge: str, netns: str | None = None) -> bool:
    """Whether the host (or ``netns``) has a device named ``bridge``."""
    with _netlink(netns) as ipr:
        return bool(ipr.link_lookup(ifname=bridge))


def enslave(device: str, bridge: str, netns: str | None = None) -> None:
    """Make ``device`` (a running VM's tap) a port of ``bridge`` again."""
    with _netlink(netns) as ipr:
        ipr.link("set", index=_index(ipr, device), master=_index(ipr, bridge))


def set_management_vlan(
    bridge: str, vlan_id: int, uplink: str | None = None, netns: str | None = None
) -> None:
    """Put the host's own port of ``bridge`` in VLAN ``vlan_id`` (untagged for the host, tagged on
    ``uplink``, the shared adapter), with VLAN filtering on the bridge.

    Needs a kernel with bridge VLAN filtering (``kernel_features.adapter_vlan_problem()`` None).
    """
    with _netlink(netns) as ipr:
        index = _index(ipr, bridge)
        ipr.link("set", index=index, kind="bridge", br_vlan_filtering=1)
        ipr.vlan_filter("del", index=index, vlan_info={"vid": 1}, vlan_flags="self")
        ipr.vlan_filter("add", index=index, vlan_info={"vid": vlan_id, "pvid": True}, vlan_flags="self")
        if uplink:
            ipr.vlan_filter("add", index=_index(ipr, uplink), vlan_info={"vid": vlan_id})
