"""Where each VM adapter plugs in: its host device, the bridge that device is on, and the switch.

A running VM's adapter is a host device: a tap (``vnet3``) enslaved to the Linux bridge of a
libvirt network, or a macvtap (``macvtap0``) on a host adapter for a non-shared External switch.
A live reconnection moves the tap to another bridge without renaming it, so which switch a port
is on is read from the kernel on every tick: one netlink dump of the host's bridge ports
(``bridge_netlink.bridge_ports``). A macvtap cannot be moved live (libvirt refuses), so its switch
comes from the VM's live XML, read when the VM's devices change.

The bridge → switch map (libvirt networks) is kept, and read again only when a bridge not seen
before shows up (a new bridge, or one made again with a new interface index, as when a switch is
re-created), and otherwise at most every ``REFRESH_S`` seconds (a switch re-made on a host bridge
that stays, an External switch renamed, keeps its bridge).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import libvirt
from defusedxml import ElementTree as SafeET

from hvmanager.backend.connection import libvirt_errors

REFRESH_S = 30.0
_SEEN_LIMIT = 4096

BridgePorts = Mapping[str, tuple[str, int]]
"""Bridge port device → (its bridge's name, the bridge's interface index)."""


@dataclass(frozen=True)
class AdapterFacts:
    """What the live XML says about one running adapter (read when the VM's devices change).

    ``kind`` is the interface type of the live XML (``network``, ``bridge``, ``direct``,
    ``ethernet``, ...; a network adapter whose network is macvtap-based shows as ``direct``),
    ``network`` the libvirt network it was connected through, ``lower`` the host adapter under a
    macvtap. ``link_up`` is False for an adapter "Not connected" while its VM runs: libvirt can't
    take a tap off its bridge live, so that is a link taken down (the tap stays on the bridge).
    """

    mac: str = ""
    queues: int = 1
    kind: str = ""
    network: str | None = None
    lower: str | None = None
    link_up: bool = True


def adapter_facts(xml: str) -> dict[str, AdapterFacts]:
    """Each adapter with a host device in a VM's live XML, by device name (``<target dev>``)."""
    facts = {}
    for nic in SafeET.fromstring(xml).findall("devices/interface"):
        target = nic.find("target")
        device = target.get("dev") if target is not None else None
        if not device:
            continue
        mac, source, driver, link = nic.find("mac"), nic.find("source"), nic.find("driver"), nic.find("link")
        queues = driver.get("queues", "1") if driver is not None else "1"
        facts[device] = AdapterFacts(
            mac=(mac.get("address", "") if mac is not None else "").lower(),
            queues=int(queues) if queues.isdigit() and int(queues) > 0 else 1,
            kind=nic.get("type", ""),
            network=source.get("network") if source is not None else None,
            lower=source.get("dev") if source is not None else None,
            link_up=link is None or link.get("state", "up") != "down",
        )
    return facts


# --- the switches behind bridges and host adapters ------------------------------------------------


@dataclass(frozen=True)
class NetworkDevices:
    """The host devices of the libvirt networks: bridge name → network, macvtap lower → network."""

    by_bridge: Mapping[str, str]
    by_lower: Mapping[str, str]


def network_devices(conn: Any) -> NetworkDevices:
    """Read every libvirt network's bridge, or the host adapters its macvtap ports use."""
    by_bridge: dict[str, str] = {}
    by_lower: dict[str, str] = {}
    with libvirt_errors("Reading the virtual switches"):
        listed = conn.listAllNetworks(0)
    networks = []
    for network in listed:
        try:
            networks.append((network.name(), network.XMLDesc(0)))
        except libvirt.libvirtError:
            continue  # removed since it was listed
    for name, xml in networks:
        root = SafeET.fromstring(xml)
        bridge = root.find("bridge")
        if bridge is not None and bridge.get("name"):
            by_bridge[bridge.get("name", "")] = name
            continue
        forward = root.find("forward")
        if forward is None:
            continue
        lowers = [forward.get("dev")] + [i.get("dev") for i in forward.findall("interface")]
        for lower in lowers:
            if lower:
                by_lower.setdefault(lower, name)
    return NetworkDevices(by_bridge, by_lower)


class SwitchDirectory:
    """Which switch (libvirt network) a bridge or a macvtap's host adapter belongs to, cached.

    The networks are read again when a bridge (by name and interface index) or a host adapter
    not seen since the last read shows up, and at most every ``REFRESH_S`` seconds otherwise, so
    that a switch re-made on the same host bridge under another name is seen too.

    Args:
        read: reads the networks' devices (``network_devices``; a stand-in in unit tests).
        clock: monotonic seconds.
    """

    def __init__(
        self,
        read: Callable[[Any], NetworkDevices] = network_devices,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._clock = clock
        self._devices = NetworkDevices({}, {})
        self._read_at: float | None = None
        self._seen: set[tuple[str, str, int]] = set()
        self.refreshes = 0  # how often the networks were read (for tests and the benchmark)

    def for_bridge(self, conn: Any, bridge: str, index: int) -> str | None:
        """The switch whose bridge this is (by name and interface index), or None."""
        self._refresh_for(conn, ("bridge", bridge, index))
        return self._devices.by_bridge.get(bridge)

    def for_lower(self, conn: Any, lower: str) -> str | None:
        """The macvtap-based switch bound to this host adapter, or None."""
        self._refresh_for(conn, ("lower", lower, 0))
        return self._devices.by_lower.get(lower)

    def _refresh_for(self, conn: Any, key: tuple[str, str, int]) -> None:
        now = self._clock()
        if key in self._seen and self._read_at is not None and now - self._read_at < REFRESH_S:
            return
        self._devices = self._read(conn)
        self._read_at = now
        if len(self._seen) > _SEEN_LIMIT:  # bridges come and go: don't keep every one ever seen
            self._seen.clear()
        self._seen.add(key)
        self.refreshes += 1


SwitchOf = Callable[[str, AdapterFacts], "str | None"]
"""For one tick: the switch a port device is on now (None: not connected), given its facts."""


def switch_from_xml(_device: str, facts: AdapterFacts) -> str | None:
    """The switch a port was connected to when its VM's live XML was read (remote servers, where
    this machine's kernel knows nothing of the ports)."""
    return facts.network if facts.link_up else None


def local_switch_lookup(conn: Any, directory: SwitchDirectory, bridges: BridgePorts) -> SwitchOf:
    """The switch of each port of this host, from this tick's bridge ports."""

    def switch_of(device: str, facts: AdapterFacts) -> str | None:
        if not facts.link_up:
            return None  # "Not connected" while running: its link is down, on whatever bridge
        bridge = bridges.get(device)
        if bridge is not None:
            return directory.for_bridge(conn, bridge[0], bridge[1])
        if facts.kind == "direct":
            if facts.network:
                return facts.network
            return directory.for_lower(conn, facts.lower) if facts.lower else None
        return None  # a tap on no bridge: not connected

    return switch_of
