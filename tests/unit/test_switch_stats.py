"""Switch ports from bulk stats records: counters, rates, where each port is, totals, MAC tables.

Records are crafted as libvirt's ``getAllDomainStats`` returns them (INTERFACE group); the live
XML is a string; the switch directory reads a stand-in for the networks. The MAC table of a
macvtap switch and the "no such switch" error use libvirt's test driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import libvirt
import pytest

from hvmanager.backend.errors import HvError
from hvmanager.backend.models import VmStats
from hvmanager.backend.network_models import MacEntry, PortCounters, PortRates, PortStats, SwitchTotals
from hvmanager.backend.port_map import (
    REFRESH_S,
    AdapterFacts,
    NetworkDevices,
    SwitchDirectory,
    adapter_facts,
    local_switch_lookup,
    network_devices,
    switch_from_xml,
)
from hvmanager.backend.stats import StatsSampler
from hvmanager.backend.switch_stats import interface_counters, mac_table, switch_totals

RUNNING = libvirt.VIR_DOMAIN_RUNNING


def _nic(kind: str, device: str | None, mac: str, source: str = "", queues: int | None = None) -> str:
    target = f"<target dev='{device}'/>" if device else ""
    driver = f"<driver name='qemu' queues='{queues}'/>" if queues else ""
    return f"<interface type='{kind}'><mac address='{mac}'/>{source}{target}{driver}</interface>"


TAP = _nic("network", "vnet7", "00:15:5D:01:02:03", "<source network='sw-int' bridge='hvtbr1'/>", 4)
MACVTAP = _nic(
    "direct", "macvtap2", "00:15:5d:01:02:04", "<source network='sw-ext' dev='hvtup' mode='bridge'/>"
)
UNPLUGGED = "<interface type='user'><mac address='00:15:5d:01:02:05'/><link state='down'/></interface>"


@dataclass
class FakeDom:
    """What the sampler needs of a virDomain, with a live XML whose adapters can change."""

    uuid: str
    vm_name: str = "vm1"
    nics: list[str] = field(default_factory=lambda: [TAP, MACVTAP, UNPLUGGED])
    xml_reads: int = 0

    def UUIDString(self) -> str:  # noqa: N802 (libvirt's name)
        return self.uuid

    def name(self) -> str:
        return self.vm_name

    def XMLDesc(self, _flags: int) -> str:  # noqa: N802 (libvirt's name)
        self.xml_reads += 1
        return f"<domain><name>{self.vm_name}</name><devices>{''.join(self.nics)}</devices></domain>"


def _record(*ports: tuple[str | None, tuple[int, ...]]) -> dict[str, Any]:
    """A bulk record of a running VM; each port is (device or None, 8 counters in libvirt order)."""
    record: dict[str, Any] = {"state.state": RUNNING, "net.count": len(ports)}
    keys = ("rx.bytes", "rx.pkts", "rx.errs", "rx.drop", "tx.bytes", "tx.pkts", "tx.errs", "tx.drop")
    for index, (device, counters) in enumerate(ports):
        if device is None:
            continue  # libvirt gives no name or counters for an adapter without a host device
        record[f"net.{index}.name"] = device
        record.update({f"net.{index}.{key}": value for key, value in zip(keys, counters, strict=True)})
    return record


def _where(device: str, facts: AdapterFacts) -> str | None:
    """A tick's switch lookup: the tap is on 'sw-int', the macvtap's switch from its facts."""
    return "sw-int" if device == "vnet7" else facts.network


def test_counters_of_adapters_with_a_host_device_only() -> None:
    record = _record(("vnet7", (1, 2, 3, 4, 5, 6, 7, 8)), (None, ()), ("vnet9", (0,) * 8))
    del record["net.2.rx.bytes"]  # libvirt could not read this device's counters this time
    assert interface_counters(record) == [("vnet7", PortCounters(1, 2, 3, 4, 5, 6, 7, 8))]
    assert interface_counters({"state.state": RUNNING}) == []


def test_adapter_facts_from_the_live_xml() -> None:
    facts = adapter_facts(f"<domain><devices>{TAP}{MACVTAP}{UNPLUGGED}</devices></domain>")
    assert facts == {
        "vnet7": AdapterFacts("00:15:5d:01:02:03", 4, "network", "sw-int", None),
        "macvtap2": AdapterFacts("00:15:5d:01:02:04", 1, "direct", "sw-ext", "hvtup"),
    }


def test_a_live_not_connected_adapter_is_on_no_switch_once_its_vm_is_marked_changed() -> None:
    # Live, "Not connected" is the link taken down: the tap stays on its bridge, no device changes.
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a", nics=[TAP])
    on_bridge = local_switch_lookup(None, SwitchDirectory(FakeNetworks()), {"vnet7": ("hvtbr1", 40)})
    record = _record(("vnet7", (1,) * 8))
    assert (
        sampler.digest([(dom, record)], now=1.0, wall=1.0, switch_of=on_bridge)["a"].ports[0].switch
        == "sw-int"
    )
    dom.nics = [TAP.replace("</interface>", "<link state='down'/></interface>")]
    sampler.adapters_changed("a")
    port = sampler.digest([(dom, record)], now=2.0, wall=2.0, switch_of=on_bridge)["a"].ports[0]
    assert port.switch is None and dom.xml_reads == 2
    assert sampler.digest([(dom, record)], now=3.0, wall=3.0, switch_of=on_bridge)["a"].ports[0] == port
    assert dom.xml_reads == 2  # read once per change, not per tick
    assert switch_from_xml("vnet7", AdapterFacts(network="sw-int", link_up=False)) is None


def test_ports_rates_and_one_xml_read_while_the_devices_stay() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a")
    first = sampler.digest(
        [(dom, _record(("vnet7", (1000, 10, 0, 0, 500, 5, 0, 0)), ("macvtap2", (0,) * 8), (None, ())))],
        now=10.0,
        wall=10.0,
        switch_of=_where,
    )["a"]
    tap, macvtap = first.ports
    assert tap == PortStats(
        "a",
        "vm1",
        "00:15:5d:01:02:03",
        "vnet7",
        "sw-int",
        PortCounters(1000, 10, 0, 0, 500, 5, 0, 0),
        None,
        4,
    )
    assert (macvtap.device, macvtap.switch, macvtap.queues, macvtap.rates) == ("macvtap2", "sw-ext", 1, None)
    second = sampler.digest(
        [(dom, _record(("vnet7", (3000, 30, 1, 2, 900, 9, 0, 1)), ("macvtap2", (0,) * 8), (None, ())))],
        now=12.0,
        wall=12.0,
        switch_of=_where,
    )["a"]
    assert second.ports[0].rates == PortRates(
        rx_bytes=1000.0, tx_bytes=200.0, rx_packets=10.0, tx_packets=2.0
    )
    assert second.ports[0].counters.rx_errors == 1 and second.ports[0].counters.tx_drops == 1
    assert second.ports[1].rates == PortRates(0.0, 0.0, 0.0, 0.0)
    assert dom.xml_reads == 1 and sampler.ports.xml_reads == 1


def test_unchanged_ports_give_the_same_object() -> None:
    sampler = StatsSampler(host_cpus=1, start_time_of=lambda _name: 1.0)
    dom = FakeDom("a")
    record = _record(("vnet7", (100, 1, 0, 0, 100, 1, 0, 0)))
    sampler.digest([(dom, record)], now=1.0, wall=1.0, switch_of=_where)
    idle = sampler.digest([(dom, record)], now=2.0, wall=2.0, switch_of=_where)["a"]
    assert sampler.digest([(dom, record)], now=3.0, wall=3.0, switch_of=_where)["a"] is idle
    # A live reconnection: same device, another switch at the next tick, without an XML read.
    moved = sampler.digest([(dom, record)], now=4.0, wall=4.0, switch_of=lambda _d, _f: "sw-other")["a"]
    assert moved is not idle and moved.ports[0].switch == "sw-other" and dom.xml_reads == 1


def test_a_new_device_reads_the_xml_again_and_counters_that_went_back_give_no_rate() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a", nics=[TAP])
    sampler.digest([(dom, _record(("vnet7", (500,) * 8)))], now=1.0, wall=1.0, switch_of=_where)
    dom.nics = [TAP, _nic("network", "vnet8", "00:15:5d:01:02:06", "<source network='sw-int'/>")]
    hot_added = sampler.digest(
        [(dom, _record(("vnet7", (10,) * 8), ("vnet8", (0,) * 8)))], now=2.0, wall=2.0, switch_of=_where
    )["a"]
    assert dom.xml_reads == 2
    assert [(p.device, p.mac, p.rates) for p in hot_added.ports] == [
        ("vnet7", "00:15:5d:01:02:03", None),  # went back: no negative rate
        ("vnet8", "00:15:5d:01:02:06", None),  # first sample
    ]


def test_a_vm_that_stops_is_forgotten_and_a_tick_without_interface_figures_keeps_the_ports() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a", nics=[TAP])
    record = _record(("vnet7", (1,) * 8))
    first = sampler.digest([(dom, record)], now=1.0, wall=1.0, switch_of=_where)["a"]
    no_net = {"state.state": RUNNING}
    assert sampler.digest([(dom, no_net)], now=2.0, wall=2.0)["a"].ports == first.ports
    sampler.digest([(dom, {"state.state": libvirt.VIR_DOMAIN_SHUTOFF})], now=3.0, wall=3.0)
    again = sampler.digest([(dom, record)], now=4.0, wall=4.0, switch_of=_where)["a"]
    assert again.ports[0].rates is None and dom.xml_reads == 2


class FakeNetworks:
    """Stands in for reading the libvirt networks; counts the reads."""

    def __init__(self) -> None:
        self.devices = NetworkDevices({"hvtbr1": "sw-int"}, {"hvtup": "sw-ext"})
        self.reads = 0

    def __call__(self, _conn: Any) -> NetworkDevices:
        self.reads += 1
        return self.devices


def test_where_ports_are_and_when_the_networks_are_read_again() -> None:
    networks, clock = FakeNetworks(), [0.0]
    directory = SwitchDirectory(networks, clock=lambda: clock[0])
    bridges = {"vnet7": ("hvtbr1", 40), "vnet8": ("hvthost", 41)}
    switch_of = local_switch_lookup(None, directory, bridges)
    assert switch_of("vnet7", AdapterFacts(kind="network", network="stale")) == "sw-int"
    assert switch_of("vnet8", AdapterFacts(kind="bridge")) is None  # a bridge that is no switch
    assert switch_of("vnet9", AdapterFacts(kind="network", network="sw-int")) is None  # on no bridge
    assert switch_of("macvtap0", AdapterFacts(kind="direct", network="sw-ext", lower="hvtup")) == "sw-ext"
    assert switch_of("macvtap1", AdapterFacts(kind="direct", lower="hvtup")) == "sw-ext"
    assert networks.reads == 3  # hvtbr1, hvthost, hvtup: each read once when first seen
    for _ in range(5):
        switch_of("vnet7", AdapterFacts())
        switch_of("vnet8", AdapterFacts())
    assert networks.reads == 3
    # The switch is made again: its bridge comes back with a new index, under a new name.
    networks.devices = NetworkDevices({"hvtbr1": "sw-renamed"}, {})
    again = local_switch_lookup(None, directory, {"vnet7": ("hvtbr1", 52)})
    assert again("vnet7", AdapterFacts()) == "sw-renamed" and networks.reads == 4
    # A host bridge that stays while its switch is re-made is seen after REFRESH_S at most.
    networks.devices = NetworkDevices({"hvthost": "sw-ext-shared"}, {})
    clock[0] = REFRESH_S + 1
    assert switch_of("vnet8", AdapterFacts()) == "sw-ext-shared" and networks.reads == 5
    assert switch_from_xml("vnet7", AdapterFacts(network="sw-int")) == "sw-int"


def _port(
    vm: str, device: str, switch: str | None, counters: PortCounters, rates: PortRates | None
) -> PortStats:
    return PortStats(f"uuid-{vm}", vm, f"00:15:5d:00:00:{len(device):02x}", device, switch, counters, rates)


def test_switch_totals_over_the_ports_on_each_switch() -> None:
    a = PortCounters(100, 1, 0, 0, 200, 2, 0, 1)
    b = PortCounters(1000, 10, 1, 0, 2000, 20, 0, 0)
    stats = {
        "uuid-vm1": VmStats(
            "uuid-vm1",
            ports=(
                _port("vm1", "vnet1", "sw-b", a, PortRates(10.0, 20.0, 1.0, 2.0)),
                _port("vm1", "vnet2", None, b, PortRates(5.0, 5.0, 5.0, 5.0)),  # not connected
            ),
        ),
        "uuid-vm2": VmStats(
            "uuid-vm2",
            ports=(
                _port("vm2", "vnet3", "sw-b", b, None),  # first tick: no rate yet
                _port("vm2", "vnet4", "sw-a", a, PortRates(1.0, 1.0, 1.0, 1.0)),
            ),
        ),
        "uuid-vm3": VmStats("uuid-vm3"),
    }
    totals = switch_totals(stats)
    assert list(totals) == ["sw-a", "sw-b"]
    assert totals["sw-b"] == SwitchTotals("sw-b", 2, a + b, PortRates(10.0, 20.0, 1.0, 2.0))
    assert totals["sw-a"] == SwitchTotals("sw-a", 1, a, PortRates(1.0, 1.0, 1.0, 1.0))
    assert switch_totals({}) == {}


@pytest.fixture
def test_conn() -> Any:
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


def test_mac_table_of_a_switch_without_a_local_bridge_is_its_ports(test_conn: Any) -> None:
    # The test driver is not this machine: its switch's table can only be the ports' addresses.
    zero = PortCounters()
    ports = [
        PortStats("u2", "vm2", "00:15:5d:00:00:09", "vnet9", "default", zero, None),
        PortStats("u1", "vm1", "00:15:5d:00:00:01", "vnet1", "default", zero, None),
        PortStats("u3", "vm3", "00:15:5d:00:00:03", "vnet3", "other", zero, None),
    ]
    assert mac_table(test_conn, "default", ports) == [
        MacEntry("00:15:5d:00:00:01", "vnet1", "vm1"),
        MacEntry("00:15:5d:00:00:09", "vnet9", "vm2"),
    ]
    with pytest.raises(HvError, match="There is no virtual switch named 'nope'"):
        mac_table(test_conn, "nope", ports)


def test_network_devices_of_the_test_driver_and_a_network_removed_meanwhile(test_conn: Any) -> None:
    class Gone:
        def name(self) -> str:
            raise libvirt.libvirtError("no network with matching uuid")

    class Conn:
        def listAllNetworks(self, flags: int) -> list[Any]:  # noqa: N802 (libvirt's name)
            return [*test_conn.listAllNetworks(flags), Gone()]

    assert network_devices(Conn()) == NetworkDevices({"virbr0": "default"}, {})
