"""The host's network as the switch checks see it: adapters, addresses and routes (read only).

One netlink dump of links, IPv4 addresses and IPv4 routes (pyroute2) makes a :class:`HostNetwork`
snapshot; nothing here changes the host. :func:`host_adapters` lists what an External switch can be
bound to: Ethernet devices that are physical or physical-like (veth, bond, team, VLAN), not the
loopback, not bridges, taps or macvtaps (libvirt's or ours), and not ports of someone else's
bridge. Every function takes an optional network namespace so tests can point them at their own.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from hvmanager.backend.errors import HvError
from hvmanager.backend.external_bridge import BRIDGE_PREFIX
from hvmanager.backend.network_models import HostAdapter, SwitchInfo, SwitchType
from hvmanager.backend.switch_inventory import list_switches

_ARPHRD_ETHER = 1
_IFF_UP = 1
_MAIN_TABLE = 254
_LOCAL_TABLE = 255
# Link kinds that stand for a network adapter; anything else (bridge, tun, macvtap, ifb, ...) is not.
ADAPTER_KINDS = frozenset({None, "veth", "bond", "team", "vlan", "dummy"})


@dataclass(frozen=True)
class HostLink:
    """One network device of the host."""

    index: int
    name: str
    kind: str | None
    mac: str
    up: bool
    ethernet: bool
    master: int | None

    @property
    def adapter_like(self) -> bool:
        """Whether it can stand for a network adapter (its kind, not whether it is free)."""
        return self.ethernet and self.kind in ADAPTER_KINDS and not self.name.startswith(BRIDGE_PREFIX)


@dataclass(frozen=True)
class HostRoute:
    """An IPv4 route of the host (main and other tables but the local one)."""

    network: ipaddress.IPv4Network
    device: int | None

    @property
    def is_default(self) -> bool:
        return self.network.prefixlen == 0


@dataclass(frozen=True)
class HostNetwork:
    """A snapshot of the host's links, IPv4 addresses (per device index) and IPv4 routes."""

    links: dict[int, HostLink]
    addresses: dict[int, tuple[ipaddress.IPv4Interface, ...]]
    routes: tuple[HostRoute, ...]

    def link(self, name: str) -> HostLink | None:
        """The device named ``name``, if the host has one."""
        return next((link for link in self.links.values() if link.name == name), None)

    def name_of(self, index: int | None) -> str:
        """A device's name (``?`` for one that vanished meanwhile)."""
        link = self.links.get(index) if index is not None else None
        return link.name if link is not None else "?"

    def carries_default_route(self, link: HostLink) -> bool:
        """Whether the main default route leaves through ``link`` or the bridge it is a port of."""
        devices = {link.index, link.master}
        return any(route.is_default and route.device in devices for route in self.routes)


def _kind(msg: Any) -> str | None:
    kind = msg.get(("linkinfo", "kind"))
    return str(kind) if kind else None


def _links(ipr: Any) -> dict[int, HostLink]:
    links = {}
    for msg in ipr.get_links():
        index = int(msg["index"])
        links[index] = HostLink(
            index=index, name=msg.get("ifname"), kind=_kind(msg), mac=msg.get("address") or "",
            up=bool(msg["flags"] & _IFF_UP), ethernet=msg["ifi_type"] == _ARPHRD_ETHER,
            master=msg.get("master") or None,
        )  # fmt: skip
    return links


def _addresses(ipr: Any) -> dict[int, tuple[ipaddress.IPv4Interface, ...]]:
    found: dict[int, list[ipaddress.IPv4Interface]] = {}
    for msg in ipr.addr("dump", family=socket.AF_INET):
        found.setdefault(int(msg["index"]), []).append(
            ipaddress.IPv4Interface(f"{msg.get('address')}/{msg['prefixlen']}")
        )
    return {index: tuple(addresses) for index, addresses in found.items()}


def _routes(ipr: Any) -> tuple[HostRoute, ...]:
    routes = []
    for msg in ipr.route("dump", family=socket.AF_INET):
        if msg.get("table") == _LOCAL_TABLE or msg["type"] != 1:  # RTN_UNICAST only
            continue
        network = ipaddress.IPv4Network(f"{msg.get('dst') or '0.0.0.0'}/{msg['dst_len']}", strict=False)
        routes.append(HostRoute(network, msg.get("oif")))
    return tuple(routes)


def read_host_network(netns: str | None = None) -> HostNetwork:
    """Dump the host's (or ``netns``'s) links, addresses and routes."""
    try:
        with IPRoute(netns=netns, flags=0) if netns else IPRoute() as ipr:
            return HostNetwork(_links(ipr), _addresses(ipr), _routes(ipr))
    except (NetlinkError, OSError) as exc:
        raise HvError(f"Reading the host's network adapters failed: {exc}") from exc


def bound_adapters(switches: Iterable[SwitchInfo]) -> dict[str, str]:
    """Host adapter name -> the External switch bound to it."""
    return {
        switch.spec.host_adapter: switch.name
        for switch in switches
        if switch.spec.type is SwitchType.EXTERNAL and switch.spec.host_adapter
    }


def bridge_of_switch(switches: Iterable[SwitchInfo], host: HostNetwork) -> set[int]:
    """Indexes of the bridges behind the given switches (an adapter enslaved to one is ours)."""
    names = {switch.bridge for switch in switches if switch.bridge}
    return {link.index for link in host.links.values() if link.name in names}


def adapters_from(host: HostNetwork, switches: list[SwitchInfo]) -> list[HostAdapter]:
    """The host adapters a switch can be bound to, sorted by name, with what binds them now."""
    bound = bound_adapters(switches)
    ours = bridge_of_switch(switches, host)
    result = []
    for link in host.links.values():
        if not link.adapter_like or (link.master is not None and link.master not in ours):
            continue
        addresses = tuple(str(address) for address in host.addresses.get(link.index, ()))
        result.append(HostAdapter(
            name=link.name, mac=link.mac, addresses=addresses, up=link.up,
            default_route=host.carries_default_route(link), bound_to=bound.get(link.name),
        ))  # fmt: skip
    return sorted(result, key=lambda adapter: adapter.name)


def host_adapters(conn: Any, netns: str | None = None) -> list[HostAdapter]:
    """The host's network adapters (pyroute2), with the External switch bound to each."""
    return adapters_from(read_host_network(netns), list_switches(conn))
