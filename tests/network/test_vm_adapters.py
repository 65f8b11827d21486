"""Network adapters of VMs that are off, on the real libvirt daemon: add, remove, connect and set
them with ``hvmanager.backend.vm_network`` and observe the result with ``virsh domiflist`` and
``virsh dumpxml`` (never through the backend's own reading); every refusal names the rule and
leaves the domain XML exactly as it was.

The switches are Private switches made with ``switches.create_switch`` (removed afterwards); new
dynamic MAC addresses come from a range of this process's own.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest

from hvmanager.backend import creation, kernel_features, switches, vm_network
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.models import MemoryConfig, VmSpec
from hvmanager.backend.network_models import (
    ADAPTER_NAMESPACE,
    LEGACY_ADAPTER_NAME,
    AdapterSpec,
    MacRange,
    SwitchSpec,
    SwitchType,
)
from hvmanager.backend.settings import AppSettings, save_settings
from tests.conftest import vm_name
from tests.network.conftest import run, switch_name

pytestmark = pytest.mark.usefixtures("switch_cleanup")

PID = os.getpid()
RANGE = MacRange(f"00:15:5d:fe:{PID % 256:02x}:00", f"00:15:5d:fe:{PID % 256:02x}:ff")


# --- observers ----------------------------------------------------------------------------------


def virsh(*args: str) -> str:
    return run("virsh", "-c", "qemu:///system", *args).stdout


def config_xml(name: str) -> str:
    """``virsh dumpxml --inactive``: the persistent definition."""
    return virsh("dumpxml", "--inactive", name)


def iflist(name: str) -> list[tuple[str, str, str, str]]:
    """``virsh domiflist --inactive``: (type, source, model, mac) of each adapter, in order."""
    rows = []
    for line in virsh("domiflist", "--inactive", name).splitlines()[2:]:
        fields = line.split()
        if len(fields) == 5:
            rows.append((fields[1], fields[2], fields[3], fields[4]))
    return rows


def interface(name: str, mac: str) -> Any:
    """The persistent ``<interface>`` element with this MAC address, parsed."""
    root = SafeET.fromstring(config_xml(name))
    return next(i for i in root.findall("devices/interface") if i.find("mac").get("address") == mac)


def metadata_entry(name: str, mac: str) -> dict[str, str]:
    root = SafeET.fromstring(config_xml(name))
    entries = root.findall(f"metadata/{{{ADAPTER_NAMESPACE}}}adapters/{{{ADAPTER_NAMESPACE}}}adapter")
    return dict(next(e for e in entries if e.get("mac") == mac).attrib)


def in_range(mac: str) -> bool:
    return RANGE.minimum <= mac <= RANGE.maximum


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def server(clean_domains: str) -> Iterator[Server]:
    srv = Server(clean_domains)
    srv.open()
    yield srv
    srv.close()


@pytest.fixture
def make_vm(server: Server, vm_location: Path) -> Callable[..., Any]:
    """``make_vm(label, generation=1, processors=1)``: a VM that is off (128 MB, no disk)."""

    def make(label: str, generation: int = 1, processors: int = 1, mac_range: MacRange | None = RANGE) -> Any:
        spec = VmSpec(
            name=vm_name(label),
            location=str(vm_location),
            memory=MemoryConfig(128),
            generation=generation,
            processors=processors,
        )
        decision = creation.decide_acceleration(server, "tcg")
        return server.lookup(creation.create_vm(server, spec, decision, mac_range))

    return make


@pytest.fixture
def two_switches(conn: Any) -> tuple[str, str]:
    first, second = switch_name("adpa"), switch_name("adpb")
    for name in (first, second):
        switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))
    return first, second


# --- new VMs ------------------------------------------------------------------------------------


def _free_root_ports(xml: str) -> int:
    """Empty pcie-root-port controllers, counted from the XML (what a hot-plugged device needs)."""
    root = SafeET.fromstring(xml)
    buses = {int(a.get("bus"), 16) for a in root.iter("address") if a.get("type") == "pci"}
    ports = root.findall("devices/controller[@model='pcie-root-port']")
    return sum(int(p.get("index")) not in buses for p in ports)


def test_new_vms_take_dynamic_macs_from_the_configured_range(make_vm: Callable[..., Any]) -> None:
    save_settings(AppSettings(mac_minimum=RANGE.minimum.replace(":", "-").upper(), mac_maximum=RANGE.maximum))
    first = make_vm("mac-first", mac_range=None)
    second = make_vm("mac-second", generation=2, mac_range=None)
    assert iflist(first.name()) == [("user", "-", "virtio", RANGE.minimum)]  # "Not connected"
    assert iflist(second.name()) == [("user", "-", "virtio", RANGE.minimum[:-2] + "01")]
    assert [a.dynamic_mac for a in vm_network.adapters(first)] == [True]
    assert metadata_entry(first.name(), RANGE.minimum)["dynamic-mac"] == "yes"
    # Generation 2 (q35): spare PCIe root ports so adapters can be hot-added later.
    assert _free_root_ports(config_xml(second.name())) >= 4
    assert _free_root_ports(config_xml(first.name())) == 0  # i440fx: slots of the PCI bus instead


# --- add, connect, set, remove ------------------------------------------------------------------


def test_add_connect_set_and_remove(make_vm: Callable[..., Any], two_switches: tuple[str, str]) -> None:
    conn_switch, other = two_switches
    dom = make_vm("lifecycle", processors=2)
    name = dom.name()
    (first,) = iflist(name)
    added = vm_network.add_adapter(dom.connect(), dom, AdapterSpec(switch=conn_switch), RANGE)
    assert added.mac is not None and in_range(added.mac) and added.dynamic_mac
    assert iflist(name) == [first, ("network", conn_switch, "virtio", added.mac)]

    vm_network.connect_adapter(dom.connect(), dom, added.mac, other)
    assert iflist(name)[1] == ("network", other, "virtio", added.mac)
    vm_network.connect_adapter(dom.connect(), dom, added.mac.upper().replace(":", "-"), None)
    assert iflist(name)[1] == ("user", "-", "virtio", added.mac)
    assert interface(name, added.mac).find("link").get("state") == "down"

    wanted = dataclasses.replace(
        added,
        switch=conn_switch,
        vmq=True,
        queues=2,
        name="Backend",
        mac="00:15:5D:EE:00:01",
        dynamic_mac=False,
    )
    result = vm_network.set_adapter(dom.connect(), dom, added.mac, wanted)
    assert result == dataclasses.replace(wanted, mac="00:15:5d:ee:00:01")
    assert iflist(name)[1] == ("network", conn_switch, "virtio", "00:15:5d:ee:00:01")
    assert interface(name, "00:15:5d:ee:00:01").find("driver").get("queues") == "2"
    assert metadata_entry(name, "00:15:5d:ee:00:01") == {
        "mac": "00:15:5d:ee:00:01", "name": "Backend", "dynamic-mac": "no", "vmq": "yes", "minimum-mbps": "0",
    }  # fmt: skip

    legacy = vm_network.add_adapter(
        dom.connect(), dom, AdapterSpec(switch=other, legacy=True, name=LEGACY_ADAPTER_NAME), RANGE
    )
    assert iflist(name)[2] == ("network", other, "tulip", legacy.mac)
    assert interface(name, legacy.mac or "").find("driver") is None  # no virtio queues on tulip

    vm_network.remove_adapter(dom.connect(), dom, "00:15:5d:ee:00:01")
    vm_network.remove_adapter(dom.connect(), dom, legacy.mac or "")
    assert iflist(name) == [first]
    assert f"{ADAPTER_NAMESPACE}" in config_xml(name) and "00:15:5d:ee:00:01" not in config_xml(name)


def test_queues_without_vmq_and_vmq_with_one_queue(make_vm: Callable[..., Any]) -> None:
    dom = make_vm("vmq-one", processors=2)
    (adapter,) = vm_network.adapters(dom)
    assert adapter.mac is not None
    vm_network.set_adapter(dom.connect(), dom, adapter.mac, dataclasses.replace(adapter, vmq=True, queues=1))
    assert interface(dom.name(), adapter.mac).find("driver") is None
    assert metadata_entry(dom.name(), adapter.mac)["vmq"] == "yes"
    assert vm_network.adapters(dom)[0].vmq
    vm_network.set_adapter(dom.connect(), dom, adapter.mac, dataclasses.replace(adapter, vmq=True, queues=2))
    assert interface(dom.name(), adapter.mac).find("driver").get("queues") == "2"
    vm_network.set_adapter(dom.connect(), dom, adapter.mac, dataclasses.replace(adapter, vmq=False, queues=2))
    assert interface(dom.name(), adapter.mac).find("driver") is None  # queues only with VMQ
    assert vm_network.adapters(dom)[0].queues == 1


# --- refusals -----------------------------------------------------------------------------------

Case = Callable[[str, str], AdapterSpec]  # (a switch, the VM's own MAC) -> the adapter to add

REFUSALS: list[tuple[str, Case, str]] = [
    ("queues-cpus", lambda s, m: AdapterSpec(s, vmq=True, queues=2), "at most 1 queue: one per"),
    ("queues-16", lambda s, m: AdapterSpec(s, vmq=True, queues=17), "at most 16 queues"),
    ("queues-0", lambda s, m: AdapterSpec(s, vmq=True, queues=0), "at least 1 queue"),
    ("legacy-vmq", lambda s, m: AdapterSpec(s, legacy=True, vmq=True, queues=2), "no virtual machine queue"),
    ("max-bw", lambda s, m: AdapterSpec(s, maximum_mbps=100_001), "0 (not set) or 1 to 100000 Mbps"),
    ("neg-bw", lambda s, m: AdapterSpec(s, minimum_mbps=-1), "0 (not set) or 1 to 100000 Mbps"),
    ("min-max", lambda s, m: AdapterSpec(s, minimum_mbps=20, maximum_mbps=10), "is above the maximum"),
    ("min-switch", lambda s, m: AdapterSpec(s, minimum_mbps=10), "not created with minimum bandwidth"),
    ("bad-mac", lambda s, m: AdapterSpec(s, mac="00:15:5d:zz:00:01"), "is not a MAC address"),
    ("multicast", lambda s, m: AdapterSpec(s, mac="01-00-5E-00-00-01"), "is a multicast address"),
    ("zero-mac", lambda s, m: AdapterSpec(s, mac="00:00:00:00:00:00"), "all zeros"),
    ("dup-mac", lambda s, m: AdapterSpec(s, mac=m.upper()), "Another network adapter of this virtual"),
    ("no-switch", lambda s, m: AdapterSpec(f"hvt-nosuch-{PID}"), "There is no virtual switch named"),
    ("vlan-range", lambda s, m: AdapterSpec(s, vlan_id=4095), "VLAN ID must be between 1 and 4094"),
    ("no-name", lambda s, m: AdapterSpec(s, name="  "), "needs a name"),
]


def _assert_refused(dom: Any, spec: AdapterSpec, expected: str, label: str) -> None:
    before = config_xml(dom.name())
    with pytest.raises(ValidationError) as caught:
        vm_network.add_adapter(dom.connect(), dom, spec, RANGE)
    assert expected in caught.value.message, f"{label}: {caught.value.message}"
    assert config_xml(dom.name()) == before, f"{label}: the domain XML changed"


def test_add_refusals_leave_the_domain_unchanged(
    make_vm: Callable[..., Any], two_switches: tuple[str, str]
) -> None:
    dom = make_vm("refusals")
    own_mac = iflist(dom.name())[0][3]
    for label, case, expected in REFUSALS:
        _assert_refused(dom, case(two_switches[0], own_mac), expected, label)
    gen2 = make_vm("refusals-gen2", generation=2)
    _assert_refused(gen2, AdapterSpec(two_switches[0], legacy=True), "exist only in Generation 1", "legacy")


def test_change_refusals_leave_the_domain_unchanged(
    make_vm: Callable[..., Any], two_switches: tuple[str, str]
) -> None:
    other_vm = make_vm("refuse-owner")
    other_mac = iflist(other_vm.name())[0][3]
    dom = make_vm("refuse-change")
    (adapter,) = vm_network.adapters(dom)
    assert adapter.mac is not None
    before = config_xml(dom.name())
    attempts: list[tuple[Callable[[], object], str]] = [
        (
            lambda: vm_network.connect_adapter(dom.connect(), dom, adapter.mac or "", f"hvt-nosuch-{PID}"),
            "There is no virtual switch named",
        ),
        (
            lambda: vm_network.set_adapter(
                dom.connect(), dom, adapter.mac or "", dataclasses.replace(adapter, legacy=True)
            ),
            "can't become a legacy one",
        ),
        (
            lambda: vm_network.set_adapter(
                dom.connect(), dom, adapter.mac or "", dataclasses.replace(adapter, mac=other_mac)
            ),
            f"already used by the virtual machine '{other_vm.name()}'",
        ),
        (
            lambda: vm_network.add_adapter(dom.connect(), dom, AdapterSpec(two_switches[0], mac=other_mac)),
            f"already used by the virtual machine '{other_vm.name()}'",
        ),
        (
            lambda: vm_network.remove_adapter(dom.connect(), dom, "00:15:5d:ab:cd:ef"),
            "has no network adapter",
        ),
        (
            lambda: vm_network.add_adapter(
                dom.connect(), dom, AdapterSpec(None), MacRange(adapter.mac or "", adapter.mac or "")
            ),
            "(1 addresses) is in use",
        ),
    ]
    for attempt, expected in attempts:
        with pytest.raises(ValidationError) as caught:
            attempt()
        assert expected in caught.value.message
    assert config_xml(dom.name()) == before


def test_vlan_id_follows_the_host_kernel(make_vm: Callable[..., Any], two_switches: tuple[str, str]) -> None:
    dom = make_vm("vlan")
    before = config_xml(dom.name())
    problem = kernel_features.adapter_vlan_problem()
    if problem is not None:  # these machines: no bridge VLAN filtering
        with pytest.raises(ValidationError) as caught:
            vm_network.add_adapter(dom.connect(), dom, AdapterSpec(two_switches[0], vlan_id=10), RANGE)
        assert "can't have a VLAN ID on this host" in caught.value.message and problem in caught.value.message
        assert config_xml(dom.name()) == before
    else:
        added = vm_network.add_adapter(dom.connect(), dom, AdapterSpec(two_switches[0], vlan_id=10), RANGE)
        assert interface(dom.name(), added.mac or "").find("vlan/tag").get("id") == "10"


def test_bandwidth_follows_the_host_kernel(
    make_vm: Callable[..., Any], two_switches: tuple[str, str]
) -> None:
    dom = make_vm("bandwidth")
    before = config_xml(dom.name())
    problem = kernel_features.bandwidth_problem()
    spec = AdapterSpec(two_switches[0], maximum_mbps=100)
    if problem is not None:  # these machines: no sfq queueing discipline
        with pytest.raises(ValidationError) as caught:
            vm_network.add_adapter(dom.connect(), dom, spec, RANGE)
        assert "Bandwidth management is not possible on this host" in caught.value.message
        assert problem in caught.value.message
        assert config_xml(dom.name()) == before
    else:
        added = vm_network.add_adapter(dom.connect(), dom, spec, RANGE)
        bandwidth = interface(dom.name(), added.mac or "").find("bandwidth")
        # 100 Mbit/s = 12 500 libvirt "kilobytes" (tc kbps: 1000 bytes) per second, both ways.
        assert (
            bandwidth.find("inbound").get("average") == bandwidth.find("outbound").get("average") == "12500"
        )


# --- limits and the Settings dialog's diff --------------------------------------------------------


def test_adapter_limits_and_undo(make_vm: Callable[..., Any], two_switches: tuple[str, str]) -> None:
    dom = make_vm("limits")
    name = dom.name()
    current = vm_network.adapters(dom)
    before = config_xml(name)
    wanted = (
        current
        + tuple(AdapterSpec(two_switches[0]) for _ in range(63))
        + tuple(AdapterSpec(two_switches[1], legacy=True, name=LEGACY_ADAPTER_NAME) for _ in range(4))
    )
    notes, undo = vm_network.apply_adapters_undoable(dom.connect(), dom, wanted, RANGE)
    assert notes == []
    rows = iflist(name)
    assert len(rows) == 68 and sum(model == "tulip" for _t, _s, model, _m in rows) == 4
    assert len({mac for *_rest, mac in rows}) == 68 and all(in_range(mac) for *_rest, mac in rows)
    full = config_xml(name)
    with pytest.raises(ValidationError, match="at most 64 network adapters"):
        vm_network.add_adapter(dom.connect(), dom, AdapterSpec(two_switches[0]), RANGE)
    with pytest.raises(ValidationError, match="at most 4 legacy network adapters"):
        vm_network.add_adapter(dom.connect(), dom, AdapterSpec(two_switches[0], legacy=True), RANGE)
    assert config_xml(name) == full
    undo()
    assert iflist(name) == [("user", "-", "virtio", current[0].mac)]
    assert config_xml(name) == before


def test_apply_adapters_diff(make_vm: Callable[..., Any], two_switches: tuple[str, str]) -> None:
    first_switch, second_switch = two_switches
    dom = make_vm("diff", processors=2)
    name = dom.name()
    keep = vm_network.add_adapter(dom.connect(), dom, AdapterSpec(first_switch, name="Keep"), RANGE)
    drop = vm_network.add_adapter(dom.connect(), dom, AdapterSpec(first_switch, name="Drop"), RANGE)
    (original,) = [a for a in vm_network.adapters(dom) if a.mac not in (keep.mac, drop.mac)]
    changed = dataclasses.replace(original, switch=second_switch, name="Front", vmq=True, queues=2)
    new = AdapterSpec(second_switch, name="New")
    before = config_xml(name)
    notes, undo = vm_network.apply_adapters_undoable(dom.connect(), dom, (changed, keep, new), RANGE)
    assert notes == []
    rows = iflist(name)
    assert rows[:2] == [
        ("network", second_switch, "virtio", original.mac),
        ("network", first_switch, "virtio", keep.mac),
    ]
    assert len(rows) == 3 and rows[2][:3] == ("network", second_switch, "virtio") and in_range(rows[2][3])
    assert drop.mac not in config_xml(name)
    assert metadata_entry(name, original.mac or "")["name"] == "Front"
    assert interface(name, original.mac or "").find("driver").get("queues") == "2"
    undo()
    assert config_xml(name) == before
