"""Virtual switches without booted guests: create, read, change, rename and remove each type on the
real libvirt daemon and host network, observed with ``virsh net-dumpxml``/``net-info`` and
``ip -d``; failures part-way rolled back; host bridges re-made after a restart; the VMs defined on
a switch following a rename and blocking a retype until confirmed. (What is refused, and why:
test_switch_checks.py; real traffic: test_switch_traffic.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt
import pytest

from hvmanager.backend import creation, external_bridge, kernel_features, switches
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.host_adapters import host_adapters
from hvmanager.backend.models import MemoryConfig, VmSpec
from hvmanager.backend.network_models import SwitchSpec, SwitchType
from tests.conftest import vm_name
from tests.network.conftest import (
    OutsideNetwork,
    free_subnet,
    host_in,
    ipv4_of,
    link_info,
    our_devices,
    our_networks,
    run,
    switch_name,
)

pytestmark = pytest.mark.usefixtures("switch_cleanup")


def virsh(*args: str) -> str:
    return run("virsh", "-c", "qemu:///system", *args).stdout.strip()


def net_xml(name: str) -> Any:
    """The network's persistent definition, parsed."""
    return SafeET.fromstring(virsh("net-dumpxml", "--inactive", name))


def net_info(name: str) -> dict[str, str]:
    info = {}
    for line in virsh("net-info", name).splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def assert_running_persistent_autostart(name: str) -> None:
    info = net_info(name)
    assert (info["Active"], info["Persistent"], info["Autostart"]) == ("yes", "yes", "yes")


def bridge_kind(name: str) -> str | None:
    link = link_info(name)
    return link["linkinfo"]["info_kind"] if link is not None and "linkinfo" in link else None


def ifindex(name: str | None) -> int:
    link = link_info(name or "")
    assert link is not None, f"no device {name}"
    return int(link["ifindex"])


def assert_deleted(name: str | None, index: int) -> None:
    """The device is gone (libvirt may already have given its virbrN name to another network)."""
    link = link_info(name or "")
    assert link is None or int(link["ifindex"]) != index


def master_of(name: str) -> str | None:
    link = link_info(name)
    return link.get("master") if link is not None else None


# --- each type: create, read back, remove -----------------------------------------------------


def test_private_switch(conn: Any) -> None:
    name = switch_name("priv")
    info = switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE, notes="lab only"))
    root = net_xml(name)
    assert root.find("forward") is None and root.find("ip") is None
    assert root.find("bridge").get("name") == info.bridge
    assert_running_persistent_autostart(name)
    assert bridge_kind(info.bridge) == "bridge"
    index = ifindex(info.bridge)
    assert ipv4_of(info.bridge) == []  # the host has no address on a private switch
    assert switches.get_switch(conn, name).spec == SwitchSpec(name, SwitchType.PRIVATE, notes="lab only")
    assert name in [switch.name for switch in switches.list_switches(conn)]
    switches.remove_switch(conn, name)
    assert name not in virsh("net-list", "--all", "--name").split()
    assert_deleted(info.bridge, index)
    with pytest.raises(HvError, match=f"There is no virtual switch named '{name}'"):
        switches.get_switch(conn, name)


def test_internal_switch_with_dhcp(conn: Any) -> None:
    name, subnet = switch_name("int"), free_subnet()
    spec = SwitchSpec(name, SwitchType.INTERNAL, host_address=host_in(subnet, 1), dhcp=True)
    info = switches.create_switch(conn, spec)
    ip = net_xml(name).find("ip")
    assert (ip.get("address"), ip.get("prefix")) == (host_in(subnet, 1, False), "24")
    dhcp_range = ip.find("dhcp/range")
    assert (dhcp_range.get("start"), dhcp_range.get("end")) == (
        host_in(subnet, 128, False),
        host_in(subnet, 254, False),
    )
    assert net_xml(name).find("forward") is None
    assert_running_persistent_autostart(name)
    assert ipv4_of(info.bridge) == [host_in(subnet, 1)]
    assert info.spec == spec and info.managed and info.active
    index = ifindex(info.bridge)
    switches.remove_switch(conn, name)
    assert_deleted(info.bridge, index)
    assert name not in our_networks()


def test_nat_switch(conn: Any, ip_forward: str) -> None:
    name, subnet = switch_name("nat"), free_subnet()
    info = switches.create_switch(conn, SwitchSpec(name, SwitchType.NAT, host_address=host_in(subnet, 1)))
    root = net_xml(name)
    assert root.find("forward").get("mode") == "nat"
    assert root.find("ip/dhcp/range") is not None  # NAT always hands out addresses
    assert info.spec.dhcp and info.spec.type is SwitchType.NAT
    assert ipv4_of(info.bridge) == [host_in(subnet, 1)]
    assert_running_persistent_autostart(name)
    index = ifindex(info.bridge)
    switches.remove_switch(conn, name)
    assert_deleted(info.bridge, index)


def test_external_shared_switch_moves_the_adapter_onto_a_host_bridge(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("exs", host_address=True)
    name = switch_name("exs")
    info = switches.create_switch(conn, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=outside.adapter))
    bridge = external_bridge.bridge_name(outside.adapter)
    assert info.bridge == bridge and info.spec.share_with_host
    root = net_xml(name)
    assert root.find("forward").get("mode") == "bridge" and root.find("bridge").get("name") == bridge
    assert_running_persistent_autostart(name)
    # The adapter is a port of the bridge, which took its address and its MAC.
    assert bridge_kind(bridge) == "bridge" and master_of(outside.adapter) == bridge
    assert ipv4_of(bridge) == [outside.host_address] and ipv4_of(outside.adapter) == []
    assert link_info(bridge)["address"] == link_info(outside.adapter)["address"]
    adapters = {adapter.name: adapter for adapter in host_adapters(conn)}
    assert adapters[outside.adapter].bound_to == name
    switches.remove_switch(conn, name)
    assert link_info(bridge) is None and master_of(outside.adapter) is None
    assert ipv4_of(outside.adapter) == [outside.host_address]


def test_external_not_shared_switch_binds_with_macvtap(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("exm", host_address=True)
    name = switch_name("exm")
    spec = SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=outside.adapter, share_with_host=False)
    info = switches.create_switch(conn, spec)
    forward = net_xml(name).find("forward")
    assert forward.get("mode") == "bridge" and forward.find("interface").get("dev") == outside.adapter
    assert info.bridge is None and info.spec == spec
    assert master_of(outside.adapter) is None and ipv4_of(outside.adapter) == [outside.host_address]
    assert_running_persistent_autostart(name)
    switches.remove_switch(conn, name)
    assert name not in our_networks()


# --- changes ------------------------------------------------------------------------------------


def test_notes_change_keeps_the_network_running(conn: Any) -> None:
    name = switch_name("notes")
    info = switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))
    changed = switches.set_switch(
        conn, name, SwitchSpec(name, SwitchType.PRIVATE, notes="second floor\nrack 4")
    )
    assert changed.uuid == info.uuid and changed.bridge == info.bridge
    notes = net_xml(name).find("metadata/{https://hvmanager.dev/xmlns/switch/1}switch")
    assert "second floor\nrack 4" in SafeET.tostring(notes, encoding="unicode")
    assert switches.get_switch(conn, name).spec.notes == "second floor\nrack 4"
    assert_running_persistent_autostart(name)


def test_rename_and_retype_keep_the_uuid(conn: Any, ip_forward: str) -> None:
    old, new, subnet = switch_name("ren1"), switch_name("ren2"), free_subnet()
    info = switches.create_switch(conn, SwitchSpec(old, SwitchType.INTERNAL, host_address=host_in(subnet, 1)))
    renamed = switches.set_switch(
        conn, old, SwitchSpec(new, SwitchType.INTERNAL, host_address=host_in(subnet, 1))
    )
    assert old not in our_networks() and new in our_networks()
    assert renamed.uuid == info.uuid and net_xml(new).findtext("uuid") == info.uuid
    assert_running_persistent_autostart(new)
    assert ipv4_of(renamed.bridge) == [host_in(subnet, 1)]
    # A new address and then a new type: the network is rebuilt, still running at autostart.
    moved = switches.set_switch(
        conn, new, SwitchSpec(new, SwitchType.INTERNAL, host_address=host_in(subnet, 9))
    )
    assert ipv4_of(moved.bridge) == [host_in(subnet, 9)]
    nat = switches.set_switch(conn, new, SwitchSpec(new, SwitchType.NAT, host_address=host_in(subnet, 9)))
    assert net_xml(new).find("forward").get("mode") == "nat" and nat.spec.type is SwitchType.NAT
    private = switches.set_switch(conn, new, SwitchSpec(new, SwitchType.PRIVATE))
    assert net_xml(new).find("ip") is None and ipv4_of(private.bridge) == []
    assert private.uuid == info.uuid
    assert_running_persistent_autostart(new)


def test_sharing_toggle_replumbs_the_adapter(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("tgl", host_address=True)
    name = switch_name("tgl")
    bridge = external_bridge.bridge_name(outside.adapter)
    spec = SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=outside.adapter, share_with_host=False)
    switches.create_switch(conn, spec)
    shared = switches.set_switch(
        conn, name, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=outside.adapter)
    )
    assert shared.bridge == bridge and master_of(outside.adapter) == bridge
    assert ipv4_of(bridge) == [outside.host_address]
    switches.set_switch(conn, name, spec)
    assert link_info(bridge) is None and ipv4_of(outside.adapter) == [outside.host_address]
    assert net_xml(name).find("forward/interface").get("dev") == outside.adapter


def test_minimum_bandwidth_only_at_creation(conn: Any) -> None:
    name = switch_name("bw")
    problem = kernel_features.bandwidth_problem()
    spec = SwitchSpec(name, SwitchType.PRIVATE, minimum_bandwidth=True)
    if problem is not None:  # these machines: no sfq qdisc; the kernel's reason is the message
        with pytest.raises(ValidationError) as refused:
            switches.create_switch(conn, spec)
        assert problem in refused.value.message and "sfq" in refused.value.message
        assert name not in our_networks()
        switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))
    else:
        switches.create_switch(conn, spec)
        assert net_xml(name).find("bandwidth/inbound") is not None
    flipped = SwitchSpec(name, SwitchType.PRIVATE, minimum_bandwidth=problem is not None)
    assert switches.switch_problems(conn, flipped, current=name) == [
        "The minimum bandwidth mode can only be chosen when the virtual switch is created."
    ]


# --- failures part-way roll back -----------------------------------------------------------------


class _FailingDefine:
    """A connection on which defining the network named ``name`` fails (the undo's definitions of
    other networks go through)."""

    def __init__(self, conn: Any, name: str) -> None:
        self._conn, self._name = conn, name

    def networkDefineXML(self, xml: str) -> Any:  # noqa: N802 (libvirt's name)
        if SafeET.fromstring(xml).findtext("name") == self._name:
            raise libvirt.libvirtError("injected failure")
        return self._conn.networkDefineXML(xml)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_failed_creation_undoes_the_host_bridge(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("rbk", host_address=True)
    devices, networks = our_devices(), our_networks()
    with pytest.raises(HvError, match="injected failure"):
        spec = SwitchSpec(switch_name("rbk"), SwitchType.EXTERNAL, host_adapter=outside.adapter)
        switches.create_switch(_FailingDefine(conn, spec.name), spec)
    assert our_devices() == devices and our_networks() == networks
    assert master_of(outside.adapter) is None and ipv4_of(outside.adapter) == [outside.host_address]


def test_restore_host_bridges_after_a_restart(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("rst", host_address=True)
    name = switch_name("rst")
    switches.create_switch(conn, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=outside.adapter))
    bridge = external_bridge.bridge_name(outside.adapter)
    external_bridge.detach(outside.adapter, bridge)  # what a host restart leaves: no kernel bridge
    assert link_info(bridge) is None
    notes = switches.restore_host_bridges(conn)
    assert any(bridge in note and name in note for note in notes)
    assert master_of(outside.adapter) == bridge and ipv4_of(bridge) == [outside.host_address]
    assert switches.restore_host_bridges(conn) == []  # nothing left to do


def test_failed_change_puts_the_switch_back(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("rbc", host_address=True)
    name = switch_name("rbc")
    before = switches.create_switch(conn, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=outside.adapter))
    not_shared = SwitchSpec(
        switch_name("rbc2"), SwitchType.EXTERNAL, host_adapter=outside.adapter, share_with_host=False
    )
    with pytest.raises(HvError, match="injected failure"):
        switches.set_switch(_FailingDefine(conn, switch_name("rbc2")), name, not_shared)
    assert switches.get_switch(conn, name) == before  # same name, UUID, bridge, running
    assert_running_persistent_autostart(name)
    assert master_of(outside.adapter) == before.bridge and ipv4_of(before.bridge or "") == [
        outside.host_address
    ]
    assert switch_name("rbc2") not in our_networks()


# --- switches VMs use (defined, not booted) -------------------------------------------------------


def _vm_on(conn_uri: str, location: Any, label: str, switch: str) -> str:
    server = Server(conn_uri)
    server.open()
    try:
        spec = VmSpec(name=vm_name(label), location=str(location), memory=MemoryConfig(64), network=switch)
        creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    finally:
        server.close()
    return spec.name


def _switch_in_config(vm: str) -> str | None:
    interface = SafeET.fromstring(virsh("dumpxml", "--inactive", vm)).find("devices/interface")
    source = interface.find("source")
    down = interface.find("link") is not None and interface.find("link").get("state") == "down"
    return None if interface.get("type") == "user" or down or source is None else source.get("network")


def test_users_follow_a_rename_and_block_a_retype_until_confirmed(
    conn: Any, clean_domains: str, vm_location: Any
) -> None:
    name = switch_name("usr")
    switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))
    vm = _vm_on(clean_domains, vm_location, "switch-user", name)
    mac = virsh("domiflist", vm).splitlines()[-1].split()[-1]
    assert switches.switch_users(conn, name) == [(vm, mac)]
    renamed = switch_name("usr2")
    switches.set_switch(conn, name, SwitchSpec(renamed, SwitchType.PRIVATE, notes="moved"))
    assert _switch_in_config(vm) == renamed and switches.switch_users(conn, renamed) == [(vm, mac)]
    subnet = free_subnet()
    internal = SwitchSpec(renamed, SwitchType.INTERNAL, host_address=host_in(subnet, 1))
    with pytest.raises(switches.SwitchInUseError) as asked:
        switches.set_switch(conn, renamed, internal)
    assert asked.value.users == [vm] and vm in asked.value.message
    assert switches.get_switch(conn, renamed).spec.type is SwitchType.PRIVATE  # untouched
    switches.set_switch(conn, renamed, internal, disconnect_users=True)
    assert _switch_in_config(vm) is None and switches.switch_users(conn, renamed) == []
    assert switches.get_switch(conn, renamed).spec.type is SwitchType.INTERNAL
