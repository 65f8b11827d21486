"""Live switch counters: every running VM adapter as a switch port, totals per switch, MAC tables.

A port's counters come from the tick's one bulk ``getAllDomainStats`` call (the ``net.<i>.*``
fields of the INTERFACE group). They are from the VM adapter's side, as Hyper-V shows them:
*received* is what reached the VM. libvirt turns a tap's counters around (what the host's tap sent
is what the VM received; checked for bridged and ``ethernet`` taps with libvirt 9.0), and a
macvtap counts from the VM's side by itself. Rates are taken between two ticks.

The MAC address table of a bridged switch is the bridge's forwarding database (one netlink dump,
``bridge_netlink.forwarding_database``: what ``bridge fdb show br <bridge>`` lists); a
macvtap-based External switch has no bridge, so its table is the ports' own addresses.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import libvirt
from defusedxml import ElementTree as SafeET

from hvmanager.backend.bridge_netlink import forwarding_database
from hvmanager.backend.connection import is_local_uri, libvirt_errors
from hvmanager.backend.errors import HvError
from hvmanager.backend.models import VmStats
from hvmanager.backend.network_models import (
    MacEntry,
    PortCounters,
    PortRates,
    PortStats,
    SwitchTotals,
)
from hvmanager.backend.port_map import AdapterFacts, SwitchOf, adapter_facts

# libvirt's per-adapter fields, in PortCounters' order.
_NET_KEYS = ("rx.bytes", "rx.pkts", "rx.errs", "rx.drop", "tx.bytes", "tx.pkts", "tx.errs", "tx.drop")
_NO_FACTS = AdapterFacts()


def interface_counters(stats: Mapping[str, Any]) -> list[tuple[str, PortCounters]]:
    """Each adapter with a host device in a bulk stats record: (device, counters as libvirt gives
    them). Adapters without a device ("Not connected", user-mode) have no ``name`` and are left
    out, as is a device whose counters libvirt could not read this time."""
    ports = []
    for index in range(int(stats.get("net.count", 0))):
        prefix = f"net.{index}."
        device = stats.get(prefix + "name")
        if not device or prefix + "rx.bytes" not in stats:
            continue
        counters = PortCounters(*(int(stats.get(prefix + key, 0)) for key in _NET_KEYS))
        ports.append((str(device), counters))
    return ports


def port_rates(
    before: tuple[float, PortCounters] | None, now: float, counters: PortCounters
) -> PortRates | None:
    """Bytes and packets per second since ``before`` (None: no earlier sample, or the counters went
    back, as when a device was made again)."""
    if before is None or now <= before[0]:
        return None
    old = before[1]
    pairs = (
        (counters.rx_bytes, old.rx_bytes),
        (counters.tx_bytes, old.tx_bytes),
        (counters.rx_packets, old.rx_packets),
        (counters.tx_packets, old.tx_packets),
    )
    if any(new < previous for new, previous in pairs):
        return None
    elapsed = now - before[0]
    return PortRates(*((new - previous) / elapsed for new, previous in pairs))


class PortTracker:
    """Turns each tick's adapter counters of the running VMs into ``PortStats``.

    A VM's adapters' MAC address, queue count, type and link state come from its live XML, read
    only when the VM's set of devices changes (first sight, hot add or remove, a reconnection that
    made a new device) or after :meth:`invalidate`, not on every tick.
    """

    def __init__(self) -> None:
        self._facts: dict[str, tuple[tuple[str, ...], dict[str, AdapterFacts]]] = {}
        self._previous: dict[str, dict[str, tuple[float, PortCounters]]] = {}
        self._stale: set[str] = set()
        self.xml_reads = 0  # how often a live XML was read (for tests and the benchmark)

    def invalidate(self, uuid: str) -> None:
        """The VM's adapters changed in a way that keeps its devices (a link taken down or up: a
        live "Not connected"): read its live XML again at the next tick. Safe from any thread."""
        self._stale.add(uuid)

    def ports(
        self, dom: Any, uuid: str, stats: Mapping[str, Any], now: float, switch_of: SwitchOf
    ) -> tuple[PortStats, ...]:
        """The VM's ports at monotonic time ``now``; ``switch_of`` says where each device is."""
        interfaces = interface_counters(stats)
        facts = self._facts_for(dom, uuid, tuple(device for device, _ in interfaces))
        previous = self._previous.get(uuid, {})
        current: dict[str, tuple[float, PortCounters]] = {}
        ports = []
        vm_name = dom.name() if interfaces else ""
        for device, counters in interfaces:
            fact = facts.get(device, _NO_FACTS)
            current[device] = (now, counters)
            rates = port_rates(previous.get(device), now, counters)
            switch = switch_of(device, fact)
            ports.append(PortStats(uuid, vm_name, fact.mac, device, switch, counters, rates, fact.queues))
        self._previous[uuid] = current
        return tuple(ports)

    def forget_all_but(self, running: set[str]) -> None:
        """Drop what is kept for VMs that no longer run."""
        for memory in (self._facts, self._previous):
            for gone in set(memory) - running:
                del memory[gone]

    def _facts_for(self, dom: Any, uuid: str, devices: tuple[str, ...]) -> dict[str, AdapterFacts]:
        known = self._facts.get(uuid)
        if uuid in self._stale:
            self._stale.discard(uuid)  # before the read: a change made during it marks it again
            known = None
        if known is not None and known[0] == devices:
            return known[1]
        if not devices:
            facts: dict[str, AdapterFacts] = {}
        else:
            try:
                xml = dom.XMLDesc(0)
            except libvirt.libvirtError:
                return {}  # the VM went away in between: try again next tick
            self.xml_reads += 1
            facts = adapter_facts(xml)
        self._facts[uuid] = (devices, facts)
        return facts


# --- per switch -----------------------------------------------------------------------------------


def switch_totals(stats: Mapping[str, VmStats]) -> dict[str, SwitchTotals]:
    """Each switch's totals over the ports on it now, by switch name (sorted). A switch without a
    running VM's port is not in the result; ports "Not connected" count nowhere. A port's rates
    count from its second tick on."""
    grouped: dict[str, list[PortStats]] = {}
    for vm in stats.values():
        for port in vm.ports:
            if port.switch is not None:
                grouped.setdefault(port.switch, []).append(port)
    return {name: _totals(name, grouped[name]) for name in sorted(grouped)}


def _totals(switch: str, ports: list[PortStats]) -> SwitchTotals:
    counters = PortCounters()
    rx_bytes = tx_bytes = rx_packets = tx_packets = 0.0
    for port in ports:
        counters = counters + port.counters
        if port.rates is not None:
            rx_bytes += port.rates.rx_bytes
            tx_bytes += port.rates.tx_bytes
            rx_packets += port.rates.rx_packets
            tx_packets += port.rates.tx_packets
    return SwitchTotals(switch, len(ports), counters, PortRates(rx_bytes, tx_bytes, rx_packets, tx_packets))


def mac_table(conn: Any, switch_name: str, ports: Iterable[PortStats]) -> list[MacEntry]:
    """The switch's MAC address table, sorted by port then address (blocking: netlink, libvirt).

    For a bridged switch of this machine: the bridge's forwarding database, each entry's port
    device named with the VM that owns it (from ``ports``), the bridge's own addresses flagged
    ``local``. For a macvtap-based External switch (no bridge), or a switch of another machine
    (whose kernel this one can't ask): the addresses of the ports on it.
    Raises HvError when there is no such switch.
    """
    ports = list(ports)
    bridge = _switch_bridge(conn, switch_name)
    with libvirt_errors("Reading the server's address"):
        local = is_local_uri(str(conn.getURI()))
    if bridge is None or not local:
        entries = [MacEntry(p.mac, p.device, p.vm_name) for p in ports if p.switch == switch_name and p.mac]
    else:
        owners = {port.device: port.vm_name for port in ports}
        entries = list(_forwarding_database(switch_name, bridge, owners))
    return sorted(entries, key=lambda e: (e.port, e.mac))


def _switch_bridge(conn: Any, switch_name: str) -> str | None:
    """The bridge of a switch (None for a macvtap-based one)."""
    try:
        network = conn.networkLookupByName(switch_name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            raise HvError(f"There is no virtual switch named '{switch_name}'.") from exc
        raise HvError(f"Reading the virtual switch '{switch_name}' failed: {exc}") from exc
    with libvirt_errors(f"Reading the virtual switch '{switch_name}'"):
        xml = network.XMLDesc(0)
    bridge = SafeET.fromstring(xml).find("bridge")
    return bridge.get("name") if bridge is not None and bridge.get("name") else None


def _forwarding_database(switch_name: str, bridge: str, owners: Mapping[str, str]) -> Iterator[MacEntry]:
    """The entries of a bridge's forwarding database (none when the bridge doesn't exist: the
    switch is not started)."""
    try:
        index = socket.if_nametoindex(bridge)
    except OSError:
        return
    try:
        entries = forwarding_database(index)
    except OSError as exc:
        raise HvError(f"Reading the MAC address table of switch '{switch_name}' failed: {exc}") from exc
    for entry in entries:
        try:
            port = socket.if_indextoname(entry.port_index)
        except OSError:
            continue  # the port went away meanwhile
        yield MacEntry(entry.mac, port, None if entry.local else owners.get(port), entry.local)
