"""Network adapters of running test guests (three boots): VMQ queues seen by the guest, live
reconnection between switches proven by the guest's pings, hot-add and hot-remove seen on the
guest's serial console (Generation 1: ACPI hot-plug; Generation 2: PCIe root ports), and failures
that leave the running VM and its configuration as they were.

The guests print ``HVTEST: net eth0=<mac>/<rx queues> ...`` whenever their set of network devices
changes (``hvtest.watchnet``) and ``HVTEST: ping <addr> up|down`` when reaching the host's address
on an Internal switch changes (``hvtest.ping``). libvirt's own view comes from ``virsh domiflist``
and ``virsh domif-getlink``, the host's from ``ip -j link``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation, switches, vm_network
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, InvalidStateError
from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec
from hvmanager.backend.network_models import AdapterSpec, MacRange, SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.paths import vm_folders
from hvmanager.backend.vm_network_rules import LIVE_QUEUES_REASON
from tests.conftest import vm_name
from tests.network.conftest import free_subnet, host_in, host_ping, link_info, run, switch_name
from tests.vm.helpers import serial_text, wait_serial

pytestmark = [pytest.mark.vm, pytest.mark.usefixtures("switch_cleanup")]

PID = os.getpid()
RANGE = MacRange(f"00:15:5d:fd:{PID % 256:02x}:00", f"00:15:5d:fd:{PID % 256:02x}:ff")
WAIT_S = 180.0  # a Generation 2 guest boots through OVMF under TCG: slow on a busy host


# --- observers ----------------------------------------------------------------------------------


def virsh(*args: str) -> str:
    return run("virsh", "-c", "qemu:///system", *args).stdout


def domiflist(name: str, inactive: bool = False) -> list[tuple[str, str, str, str, str]]:
    """``virsh domiflist``: (device, type, source, model, mac) of each adapter."""
    rows = []
    for line in virsh("domiflist", *(["--inactive"] if inactive else []), name).splitlines()[2:]:
        fields = line.split()
        if len(fields) == 5:
            rows.append((fields[0], fields[1], fields[2], fields[3], fields[4]))
    return rows


def row_of(name: str, mac: str, inactive: bool = False) -> tuple[str, str, str, str, str]:
    return next(row for row in domiflist(name, inactive) if row[4] == mac)


def net_lines(log: Path, after: int = 0) -> list[str]:
    """The guest's ``HVTEST: net ...`` lines after offset ``after``."""
    return [line.strip() for line in serial_text(log)[after:].splitlines() if line.startswith("HVTEST: net")]


def wait_net(log: Path, expected: str | Callable[[str], bool], after: int = 0) -> None:
    """Wait until the guest's latest ``HVTEST: net`` line is ``expected`` (or satisfies it)."""
    check = expected if callable(expected) else expected.__eq__
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        lines = net_lines(log, after)
        if lines and check(lines[-1]):
            return
        time.sleep(0.2)
    tail = "\n".join(serial_text(log).splitlines()[-8:])
    raise AssertionError(
        f"the guest's network devices never became {expected!r} in {WAIT_S:.0f} s: "
        f"{net_lines(log, after)}\nlast serial lines:\n{tail}"
    )


def net_line(*adapters: tuple[str, int]) -> str:
    """The watchnet line for eth0, eth1, ... with these (mac, queues)."""
    return " ".join(["HVTEST: net", *(f"eth{i}={mac}/{queues}" for i, (mac, queues) in enumerate(adapters))])


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def server(clean_domains: str) -> Iterator[Server]:
    srv = Server(clean_domains)
    srv.open()
    yield srv
    srv.close()


@pytest.fixture
def make_guest(server: Server, vm_location: Path, test_guest: Any) -> Callable[..., tuple[Any, Path]]:
    """``make_guest(label, options, processors=1, generation=1)``: a VM (not started) booting the
    test guest with ``hvtest.*`` options, its one adapter "Not connected"; returns it and its serial log."""

    def make(label: str, options: str, processors: int = 1, generation: int = 1) -> tuple[Any, Path]:
        name = vm_name(label)
        spec = VmSpec(
            name=name,
            location=str(vm_location),
            memory=MemoryConfig(256),
            processors=processors,
            generation=generation,
            install=KernelBoot(
                str(test_guest.kernel), str(test_guest.initrd), f"{test_guest.cmdline} {options}"
            ),
        )
        uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"), RANGE)
        return server.lookup(uuid), vm_folders(vm_location, name).serial_log

    return make


@pytest.fixture
def lab(conn: Any) -> dict[str, Any]:
    """A Private switch, an Internal switch with a host address (the guests' ping peer) and the
    addresses on it: ``private``, ``internal`` (SwitchInfo), ``host_ip``, ``guest_ip`` (with prefix)."""
    subnet = free_subnet()
    private = switches.create_switch(conn, SwitchSpec(switch_name("adlp"), SwitchType.PRIVATE))
    internal = switches.create_switch(
        conn, SwitchSpec(switch_name("adli"), SwitchType.INTERNAL, host_address=host_in(subnet, 1))
    )
    return {
        "private": private,
        "internal": internal,
        "host_ip": host_in(subnet, 1, with_prefix=False),
        "guest_ip": host_in(subnet, 5),
    }


def _tap_master(name: str, mac: str) -> str | None:
    """The bridge the running adapter's tap is enslaved to (``ip -j link``)."""
    device = row_of(name, mac)[0]
    link = link_info(device)
    return link.get("master") if link is not None else None


# --- VMQ and live reconnection --------------------------------------------------------------------


def test_vmq_queues_and_live_reconnection(
    make_guest: Callable[..., tuple[Any, Path]], lab: dict[str, Any]
) -> None:
    private: SwitchInfo = lab["private"]
    internal: SwitchInfo = lab["internal"]
    host_ip, guest_ip = lab["host_ip"], lab["guest_ip"]
    dom, log = make_guest(
        "vmq-reconnect", f"hvtest.watchnet hvtest.ip={guest_ip} hvtest.ping={host_ip}", processors=2
    )
    name = dom.name()
    conn = dom.connect()
    (adapter,) = vm_network.adapters(dom)
    mac = adapter.mac or ""
    vm_network.set_adapter(
        conn, dom, mac, dataclasses.replace(adapter, switch=private.name, vmq=True, queues=2)
    )
    dom.create()

    # VMQ: two queue pairs, and the guest (2 vCPUs) sees two rx queues on eth0.
    wait_net(log, net_line((mac, 2)))
    assert vm_network.adapters(dom, live=True)[0].queues == 2
    # QEMU fixes the queues when the adapter is plugged in: changing them live is refused.
    before = virsh("dumpxml", "--inactive", name)
    with pytest.raises(InvalidStateError) as refused:
        vm_network.set_adapter(conn, dom, mac, dataclasses.replace(vm_network.adapters(dom)[0], queues=1))
    assert refused.value.message == LIVE_QUEUES_REASON
    assert virsh("dumpxml", "--inactive", name) == before
    wait_serial(log, f"HVTEST: ping {host_ip} down", WAIT_S)  # the private switch has no host
    assert _tap_master(name, mac) == private.bridge

    steps = [(internal.name, "up"), (None, "down"), (internal.name, "up"), (private.name, "down")]
    for switch, expected in steps:
        offset = len(serial_text(log))
        vm_network.connect_adapter(conn, dom, mac, switch)
        wait_serial(log, f"HVTEST: ping {host_ip} {expected}", WAIT_S, after=offset)
        if switch is None:
            assert "down" in virsh("domif-getlink", name, mac)
            assert row_of(name, mac, inactive=True)[1:3] == ("user", "-")  # "Not connected" to come
        else:
            assert row_of(name, mac)[1:3] == ("network", switch)
            assert row_of(name, mac, inactive=True)[1:3] == ("network", switch)
            assert "up" in virsh("domif-getlink", name, mac)
            assert _tap_master(name, mac) == (internal if switch == internal.name else private).bridge
        if switch == internal.name:
            assert host_ping(guest_ip.split("/")[0], internal.bridge or "")
    assert net_lines(log)[-1] == net_line((mac, 2))  # the same device all along: no re-plug
    assert vm_network.adapters(dom, live=True)[0].switch == private.name

    # Deleting the switch it is on leaves the adapter "Not connected"; it then joins another live.
    with pytest.raises(switches.SwitchInUseError):
        switches.remove_switch(conn, private.name)
    switches.remove_switch(conn, private.name, disconnect_users=True)
    assert "down" in virsh("domif-getlink", name, mac)
    assert row_of(name, mac, inactive=True)[1:3] == ("user", "-")
    offset = len(serial_text(log))
    vm_network.connect_adapter(conn, dom, mac, internal.name)
    wait_serial(log, f"HVTEST: ping {host_ip} up", WAIT_S, after=offset)
    assert row_of(name, mac)[1:3] == row_of(name, mac, inactive=True)[1:3] == ("network", internal.name)
    assert net_lines(log)[-1] == net_line((mac, 2))


# --- hot add and remove, re-plug, failures --------------------------------------------------------


def test_hot_add_remove_and_failures_roll_back(
    make_guest: Callable[..., tuple[Any, Path]], lab: dict[str, Any], conn: Any
) -> None:
    internal: SwitchInfo = lab["internal"]
    stopped = switches.create_switch(conn, SwitchSpec(switch_name("adls"), SwitchType.PRIVATE))
    virsh("net-destroy", stopped.name)  # a switch whose network is down: attaching to it fails live
    dom, log = make_guest("hotplug", "hvtest.watchnet")
    name = dom.name()
    (first,) = vm_network.adapters(dom)
    mac0 = first.mac or ""
    dom.create()
    wait_net(log, net_line((mac0, 1)))

    added = vm_network.add_adapter(dom.connect(), dom, AdapterSpec(internal.name, name="Hot"), RANGE)
    assert added.mac is not None
    wait_net(log, net_line((mac0, 1), (added.mac, 1)))
    assert row_of(name, added.mac)[1:] == ("network", internal.name, "virtio", added.mac)
    assert row_of(name, added.mac, inactive=True)[1:] == ("network", internal.name, "virtio", added.mac)
    assert _tap_master(name, added.mac) == internal.bridge
    assert [a.name for a in vm_network.adapters(dom, live=True)] == ["Network Adapter", "Hot"]

    offset = len(serial_text(log))
    vm_network.remove_adapter(dom.connect(), dom, added.mac)
    wait_net(log, net_line((mac0, 1)), after=offset)
    assert [row[4] for row in domiflist(name)] == [mac0]
    assert [row[4] for row in domiflist(name, inactive=True)] == [mac0]

    # eth0 started "Not connected" (user networking): connecting it re-plugs it onto the switch.
    notes, _undo = vm_network.apply_adapters_undoable(
        dom.connect(), dom, (dataclasses.replace(first, switch=internal.name),), RANGE
    )
    assert any("plugged in again" in note for note in notes)
    assert row_of(name, mac0)[1:3] == ("network", internal.name)
    assert _tap_master(name, mac0) == internal.bridge
    wait_net(log, net_line((mac0, 1)), after=offset)

    # Failures: nothing changes, live or in the configuration.
    live_before, config_before = domiflist(name), virsh("dumpxml", "--inactive", name)
    with pytest.raises(HvError, match="is not active"):
        vm_network.add_adapter(dom.connect(), dom, AdapterSpec(stopped.name), RANGE)
    wanted = (*vm_network.adapters(dom), AdapterSpec(internal.name), AdapterSpec(stopped.name))
    with pytest.raises(HvError, match="is not active"):
        vm_network.apply_adapters_undoable(dom.connect(), dom, wanted, RANGE)  # the first add is undone
    with pytest.raises(InvalidStateError, match="only while the virtual machine is off"):
        vm_network.add_adapter(dom.connect(), dom, AdapterSpec(internal.name, legacy=True), RANGE)
    with pytest.raises(InvalidStateError, match="only while the virtual machine is off"):
        vm_network.set_adapter(dom.connect(), dom, mac0, dataclasses.replace(first, mac="00:15:5d:fc:00:01"))
    assert domiflist(name) == live_before
    assert virsh("dumpxml", "--inactive", name) == config_before
    wait_net(log, net_line((mac0, 1)), after=offset)


def test_generation2_hot_add_uses_spare_root_ports(
    make_guest: Callable[..., tuple[Any, Path]], lab: dict[str, Any]
) -> None:
    private: SwitchInfo = lab["private"]
    dom, log = make_guest("gen2-hotplug", "hvtest.watchnet", generation=2)
    (first,) = vm_network.adapters(dom)
    dom.create()
    wait_net(log, net_line((first.mac or "", 1)))
    macs = [first.mac or ""]
    for _ in range(4):  # a new Generation 2 VM has four spare PCIe root ports
        added = vm_network.add_adapter(dom.connect(), dom, AdapterSpec(private.name), RANGE)
        macs.append(added.mac or "")
    wait_net(log, lambda line: all(f"={mac}/1" in line for mac in macs))
    config_before = virsh("dumpxml", "--inactive", dom.name())
    with pytest.raises(InvalidStateError) as caught:
        vm_network.add_adapter(dom.connect(), dom, AdapterSpec(private.name), RANGE)
    assert "no free PCI slot" in caught.value.message and "root port" in caught.value.message
    assert "Shut the virtual machine down" in caught.value.hint
    assert virsh("dumpxml", "--inactive", dom.name()) == config_before
    assert sorted(row[4] for row in domiflist(dom.name())) == sorted(macs)
