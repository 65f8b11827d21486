"""Live switch counters with a real guest: its adapter's port, the switch totals, the MAC table.

One test guest (``hvtest.ip``) on an Internal switch made with ``switches.create_switch``. The
host sends a known number of pings of a known size; the port and switch counters must have grown
by at least that traffic, and agree with ``virsh domifstat`` and with the kernel's own counters of
the tap, turned around (what the tap sent is what the VM received). A burst of raw frames that the
guest does not answer shows the direction. The MAC table must list the guest's MAC on its tap, as
``bridge fdb show`` does. A live reconnection (libvirt ``updateDeviceFlags``) to a Private switch
shows at the next sample, a running adapter made "Not connected" (``vm_network``) is on no switch,
and a macvtap adapter on a non-shared External switch (bound to a veth
of the test's own) is a port of that switch, counting from the VM's side too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend import creation, switches, vm_network
from hvmanager.backend.bridge_netlink import bridge_ports
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec, VmStats
from hvmanager.backend.network_models import MacEntry, PortCounters, PortStats, SwitchSpec, SwitchType
from hvmanager.backend.paths import vm_folders
from hvmanager.backend.stats import StatsSampler
from hvmanager.backend.switch_stats import mac_table, switch_totals
from tests.conftest import vm_name
from tests.network.conftest import device_name, free_subnet, host_in, pings_answered, switch_name
from tests.vm.helpers import virsh, wait_serial

pytestmark = pytest.mark.vm

PINGS, PING_SIZE = 40, 1000
WIRE_OVERHEAD = 14 + 20 + 8  # Ethernet, IPv4 and ICMP headers around the ping's data
EXPERIMENTAL_ETHERTYPE = 0x88B5  # IEEE 802 local experimental: the guest drops it unanswered


@dataclass(frozen=True)
class Setup:
    """The switches and the running guest the tests share."""

    internal: str
    bridge: str
    private: str
    guest: str
    uuid: str
    mac: str
    guest_ip: str


def _remove_network(conn: Any, name: str) -> None:
    """Remove a switch with the product's own call; whatever it leaves (it failed) goes too."""
    with contextlib.suppress(Exception):
        switches.remove_switch(conn, name, disconnect_users=True)
    with contextlib.suppress(libvirt.libvirtError):
        network = conn.networkLookupByName(name)
        if network.isActive():
            network.destroy()
        if network.isPersistent():
            network.undefine()


def _remove_domain(conn: Any, name: str) -> None:
    with contextlib.suppress(libvirt.libvirtError):
        dom = conn.lookupByName(name)
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)


@pytest.fixture(scope="module")
def setup(libvirtd: str, test_root: Path, test_guest: Any) -> Iterator[Setup]:
    internal, private = switch_name("statsint"), switch_name("statspriv")
    guest = vm_name("switch-stats")
    subnet = free_subnet()
    guest_ip = host_in(subnet, 2)
    folder = test_root / f"switch-stats-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    server = Server(libvirtd)
    server.open()
    conn = server.conn
    try:
        info = switches.create_switch(
            conn, SwitchSpec(internal, SwitchType.INTERNAL, host_address=host_in(subnet, 1))
        )
        switches.create_switch(conn, SwitchSpec(private, SwitchType.PRIVATE))
        assert info.bridge, "an Internal switch has a bridge"
        boot = KernelBoot(
            str(test_guest.kernel), str(test_guest.initrd), f"{test_guest.cmdline} hvtest.ip={guest_ip}"
        )
        spec = VmSpec(
            name=guest, location=str(folder), memory=MemoryConfig(256), network=internal, install=boot
        )
        uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
        server.lookup(uuid).create()
        wait_serial(vm_folders(folder, guest).serial_log, f"HVTEST: ip {guest_ip}", timeout=120)
        mac = virsh("domiflist", guest).splitlines()[-1].split()[-1]
        yield Setup(internal, info.bridge, private, guest, uuid, mac, guest_ip.split("/")[0])
    finally:
        _remove_domain(conn, guest)
        for name in (internal, private):
            _remove_network(conn, name)
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


def _guest_ports(stats: dict[str, VmStats], uuid: str) -> tuple[PortStats, ...]:
    return stats[uuid].ports


def _tap_counters(device: str) -> PortCounters:
    """The kernel's own counters of a host device (the host's side of it)."""
    base = Path("/sys/class/net") / device / "statistics"
    read = {name: int((base / name).read_text()) for name in os.listdir(base)}
    return PortCounters(
        read["rx_bytes"], read["rx_packets"], read["rx_errors"], read["rx_dropped"],
        read["tx_bytes"], read["tx_packets"], read["tx_errors"], read["tx_dropped"],
    )  # fmt: skip


def _domifstat(guest: str, device: str) -> dict[str, int]:
    values = {}
    for line in virsh("domifstat", guest, device).splitlines():
        _dev, key, value = line.split()
        values[key] = int(value)
    return values


def _send_frames(device: str, destination: str, count: int, size: int) -> None:
    """Send ``count`` raw Ethernet frames of ``size`` bytes out of a host device to one MAC."""
    header = bytes.fromhex(destination.replace(":", "")) + bytes.fromhex("02aabbccdd01")
    frame = header + EXPERIMENTAL_ETHERTYPE.to_bytes(2, "big")
    frame += b"\x00" * (size - len(frame))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((device, 0))
        for _ in range(count):
            sock.send(frame)


def test_pings_show_on_the_port_and_the_switch_and_agree_with_virsh_and_the_kernel(
    setup: Setup, conn: Any
) -> None:
    sampler = StatsSampler(host_cpus=1)
    (before,) = _guest_ports(sampler.sample(conn), setup.uuid)
    assert before.switch == setup.internal and before.mac == setup.mac and before.queues == 1
    assert before.device == virsh("domiflist", setup.guest).splitlines()[-1].split()[0]
    assert bridge_ports()[before.device][0] == setup.bridge == _bridge_link_master(before.device)
    totals_before = switch_totals(sampler.sample(conn))[setup.internal]

    replies = pings_answered(setup.bridge, setup.guest_ip, PINGS, PING_SIZE)
    assert replies > 0
    stats = sampler.sample(conn)
    (after,) = _guest_ports(stats, setup.uuid)
    grown = _minus(after.counters, before.counters)
    # The VM received every request and sent every reply it answered (its side, as Hyper-V shows it).
    assert grown.rx_packets >= PINGS and grown.rx_bytes >= PINGS * (PING_SIZE + WIRE_OVERHEAD)
    assert grown.tx_packets >= replies and grown.tx_bytes >= replies * (PING_SIZE + WIRE_OVERHEAD)
    assert after.rates is not None and after.rates.rx_bytes > 0 and after.rates.tx_packets > 0
    totals = switch_totals(stats)[setup.internal]
    switch_grown = _minus(totals.counters, totals_before.counters)
    assert totals.ports == 1
    assert switch_grown.rx_packets >= PINGS and switch_grown.tx_bytes >= replies * (PING_SIZE + WIRE_OVERHEAD)

    # virsh domifstat and the kernel's tap counters (turned around), read between two samples.
    observed_virsh = _domifstat(setup.guest, after.device)
    kernel = _tap_counters(after.device)
    (later,) = _guest_ports(sampler.sample(conn), setup.uuid)
    for ours, key in ((after.counters, "rx_packets"), (after.counters, "tx_bytes")):
        assert getattr(ours, key) <= observed_virsh[key] <= getattr(later.counters, key)
    assert after.counters.rx_packets <= kernel.tx_packets <= later.counters.rx_packets
    assert after.counters.rx_bytes <= kernel.tx_bytes <= later.counters.rx_bytes
    assert after.counters.tx_packets <= kernel.rx_packets <= later.counters.tx_packets


def test_frames_the_guest_does_not_answer_count_as_received_only(setup: Setup, conn: Any) -> None:
    sampler = StatsSampler(host_cpus=1)
    (before,) = _guest_ports(sampler.sample(conn), setup.uuid)
    _send_frames(before.device, setup.mac, 200, 300)
    time.sleep(0.5)  # let the guest take them off the tap's queue
    (after,) = _guest_ports(sampler.sample(conn), setup.uuid)
    grown = _minus(after.counters, before.counters)
    assert grown.rx_packets >= 200 and grown.rx_bytes >= 200 * 300
    assert grown.tx_packets < 100  # a swapped view would show the 200 frames as sent


def test_mac_table_lists_the_guest_on_its_tap_as_bridge_fdb_does(setup: Setup, conn: Any) -> None:
    # The guest's replies teach the bridge where its MAC is.
    pings_answered(setup.bridge, setup.guest_ip, PINGS, PING_SIZE)
    ports = [p for vm in StatsSampler(host_cpus=1).sample(conn).values() for p in vm.ports]
    (tap,) = [p for p in ports if p.vm_uuid == setup.uuid]
    first = set(mac_table(conn, setup.internal, ports))
    observed = _bridge_fdb(setup.bridge)
    second = set(mac_table(conn, setup.internal, ports))
    assert MacEntry(setup.mac, tap.device, setup.guest, local=False) in first & second
    bridge_own = [e for e in first if e.port == setup.bridge]
    assert bridge_own and all(e.local and e.vm_name is None for e in bridge_own)
    assert all(e.vm_name is None for e in first if e.local)
    plain = {(e.mac, e.port, e.local) for e in first & second}
    assert plain <= observed <= {(e.mac, e.port, e.local) for e in first | second}


def test_a_live_reconnection_shows_at_the_next_sample(setup: Setup, conn: Any) -> None:
    sampler = StatsSampler(host_cpus=1)
    (before,) = _guest_ports(sampler.sample(conn), setup.uuid)
    dom = conn.lookupByUUIDString(setup.uuid)
    try:
        dom.updateDeviceFlags(_network_nic(setup.mac, setup.private), libvirt.VIR_DOMAIN_AFFECT_LIVE)
        stats = sampler.sample(conn)
        (moved,) = _guest_ports(stats, setup.uuid)
        assert (moved.device, moved.switch) == (before.device, setup.private)
        assert _bridge_link_master(moved.device) != setup.bridge
        assert moved.counters.rx_packets >= before.counters.rx_packets and moved.rates is not None
        totals = switch_totals(stats)
        assert totals[setup.private].ports == 1 and setup.internal not in totals
    finally:
        dom.updateDeviceFlags(_network_nic(setup.mac, setup.internal), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    (back,) = _guest_ports(sampler.sample(conn), setup.uuid)
    assert back.switch == setup.internal


def test_a_running_adapter_made_not_connected_is_on_no_switch(setup: Setup, conn: Any) -> None:
    # vm_network disconnects a running adapter by taking its link down: the tap stays on the bridge.
    sampler = StatsSampler(host_cpus=1)
    (before,) = _guest_ports(sampler.sample(conn), setup.uuid)
    dom = conn.lookupByUUIDString(setup.uuid)
    try:
        vm_network.connect_adapter(conn, dom, setup.mac, None)
        sampler.adapters_changed(setup.uuid)
        stats = sampler.sample(conn)
        (port,) = _guest_ports(stats, setup.uuid)
        assert virsh("domif-getlink", setup.guest, port.device).split()[-1] == "down"
        assert _bridge_link_master(port.device) == setup.bridge  # still there, as libvirt leaves it
        assert port.device == before.device and port.switch is None
        assert setup.internal not in switch_totals(stats)
    finally:
        vm_network.connect_adapter(conn, dom, setup.mac, setup.internal)
    sampler.adapters_changed(setup.uuid)
    (back,) = _guest_ports(sampler.sample(conn), setup.uuid)
    assert back.switch == setup.internal


@pytest.fixture
def external(setup: Setup, conn: Any) -> Iterator[tuple[str, str]]:
    """A non-shared (macvtap) External switch bound to one end of a veth pair of this test;
    yields (switch, the veth's other end, which plays the outside network)."""
    lower, outside = device_name("sxa"), device_name("sxb")
    name = switch_name("statsext")
    subprocess.run(["ip", "link", "add", lower, "type", "veth", "peer", "name", outside], check=True)
    try:
        for device in (lower, outside):
            subprocess.run(["ip", "link", "set", device, "up"], check=True)
        switches.create_switch(
            conn, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=lower, share_with_host=False)
        )
        yield name, outside
    finally:
        _remove_network(conn, name)
        subprocess.run(["ip", "link", "del", lower], check=False)


def test_a_macvtap_port_of_an_external_switch(setup: Setup, conn: Any, external: tuple[str, str]) -> None:
    name, outside = external
    mac = "00:15:5d:fe:00:01"
    dom = conn.lookupByUUIDString(setup.uuid)
    dom.attachDeviceFlags(_network_nic(mac, name), libvirt.VIR_DOMAIN_AFFECT_LIVE)
    try:
        sampler = StatsSampler(host_cpus=1)
        ports = _guest_ports(sampler.sample(conn), setup.uuid)
        (port,) = [p for p in ports if p.mac == mac]
        assert port.switch == name and port.device.startswith("macvtap")
        assert port.device in virsh("domiflist", setup.guest)
        assert mac_table(conn, name, ports) == [MacEntry(mac, port.device, setup.guest)]
        _send_frames(outside, mac, 50, 200)
        time.sleep(0.5)
        (after,) = [p for p in _guest_ports(sampler.sample(conn), setup.uuid) if p.mac == mac]
        grown = _minus(after.counters, port.counters)
        assert grown.rx_packets >= 50 and grown.rx_bytes >= 50 * 200 and grown.tx_packets < 25
        assert switch_totals({setup.uuid: VmStats(setup.uuid, ports=(after,))})[name].ports == 1
    finally:
        dom.detachDeviceFlags(_network_nic(mac, name), libvirt.VIR_DOMAIN_AFFECT_LIVE)


# --- observers ------------------------------------------------------------------------------------


def _minus(a: PortCounters, b: PortCounters) -> PortCounters:
    return PortCounters(
        a.rx_bytes - b.rx_bytes, a.rx_packets - b.rx_packets, a.rx_errors - b.rx_errors,
        a.rx_drops - b.rx_drops, a.tx_bytes - b.tx_bytes, a.tx_packets - b.tx_packets,
        a.tx_errors - b.tx_errors, a.tx_drops - b.tx_drops,
    )  # fmt: skip


def _network_nic(mac: str, network: str) -> str:
    return (
        f"<interface type='network'><mac address='{mac}'/><source network='{network}'/>"
        "<model type='virtio'/></interface>"
    )


def _bridge_link_master(device: str) -> str | None:
    """The bridge ``bridge link show`` puts a device on (None: on none)."""
    done = subprocess.run(["bridge", "-j", "link", "show", "dev", device], capture_output=True, text=True)
    entries = json.loads(done.stdout or "[]")
    return entries[0].get("master") if entries else None


def _bridge_fdb(bridge: str) -> set[tuple[str, str, bool]]:
    """(mac, port, local) of the bridge's own forwarding entries, as ``bridge fdb show`` lists them
    (the ports' "self" address lists are no part of the switch's table)."""
    out = subprocess.run(
        ["bridge", "fdb", "show", "br", bridge], capture_output=True, text=True, check=True
    ).stdout
    entries = set()
    for line in out.splitlines():
        words = line.split()
        if "master" not in words or words[words.index("master") + 1] != bridge:
            continue
        entries.add((words[0].lower(), words[words.index("dev") + 1], "permanent" in words))
    return entries
