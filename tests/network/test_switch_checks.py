"""What keeps a virtual switch from being made, on the real host and libvirt daemon: bad names,
adapters and address ranges refused with a clear message and nothing left behind; the management
OS's VLAN refused with the kernel's own reason; the default-route confirmation and the host bridge
that moves the default route, in a namespace of the test's own; the type of networks hvmanager did
not make, and what an edit of one keeps."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest

from hvmanager.backend import external_bridge, kernel_features, switches
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.host_adapters import host_adapters
from hvmanager.backend.network_models import SwitchSpec, SwitchType
from hvmanager.backend.switch_checks import require_default_route_confirmation
from hvmanager.backend.switch_xml import dhcp_range, network_xml, parse_network
from tests.network.conftest import (
    OutsideNetwork,
    free_subnet,
    host_in,
    ip_json,
    ipv4_of,
    link_info,
    our_devices,
    our_networks,
    switch_name,
)

pytestmark = pytest.mark.usefixtures("switch_cleanup")


# --- bad input: refused, nothing made -----------------------------------------------------------


def _refused(conn: Any, spec: SwitchSpec, *expected: str) -> None:
    networks, devices = our_networks(), our_devices()
    with pytest.raises(ValidationError) as refused:
        switches.create_switch(conn, spec)
    for text in expected:
        assert text in refused.value.message
    assert our_networks() == networks and our_devices() == devices


def test_duplicate_name_ignoring_case(conn: Any) -> None:
    name = switch_name("dup")
    switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))
    _refused(
        conn, SwitchSpec(name.upper(), SwitchType.PRIVATE), f"A virtual switch named '{name}' already exists."
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("   ", "The virtual switch needs a name."),
        ("x" * 101, "at most 100 characters"),
        ("a/b", "cannot contain '/'"),
        ("tab\there", "control characters"),
    ],
)
def test_bad_names(conn: Any, name: str, message: str) -> None:
    assert any(
        message in problem for problem in switches.switch_problems(conn, SwitchSpec(name, SwitchType.PRIVATE))
    )


def test_unknown_and_unfit_adapters(conn: Any) -> None:
    _refused(conn, SwitchSpec(switch_name("unk"), SwitchType.EXTERNAL, host_adapter="hvtnone0"),
             "The host has no network adapter named 'hvtnone0'.")  # fmt: skip
    _refused(conn, SwitchSpec(switch_name("lo"), SwitchType.EXTERNAL, host_adapter="lo"), "loopback")
    private = switches.create_switch(conn, SwitchSpec(switch_name("brg"), SwitchType.PRIVATE))
    _refused(conn, SwitchSpec(switch_name("onbr"), SwitchType.EXTERNAL, host_adapter=private.bridge),
             f"'{private.bridge}' is not a network adapter (bridge)")  # fmt: skip


def test_adapter_already_bound(conn: Any, outside_network: Callable[..., OutsideNetwork]) -> None:
    outside = outside_network("bnd")
    first = switch_name("bnd1")
    switches.create_switch(conn, SwitchSpec(first, SwitchType.EXTERNAL, host_adapter=outside.adapter))
    for share in (True, False):
        spec = SwitchSpec(
            switch_name("bnd2"), SwitchType.EXTERNAL, host_adapter=outside.adapter, share_with_host=share
        )
        _refused(
            conn,
            spec,
            f"already bound to the External switch '{first}'",
            "one External switch per host adapter",
        )


def test_address_range_overlapping_another_switch(conn: Any) -> None:
    subnet = free_subnet()
    first = switch_name("ovl1")
    switches.create_switch(conn, SwitchSpec(first, SwitchType.INTERNAL, host_address=host_in(subnet, 1)))
    half = f"{host_in(subnet, 77, False)}/25"  # the lower half of the first switch's /24
    _refused(conn, SwitchSpec(switch_name("ovl2"), SwitchType.INTERNAL, host_address=half),
             f"overlaps the range {subnet} of the virtual switch '{first}'")  # fmt: skip


def test_address_range_overlapping_a_host_address(
    conn: Any, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("hov", host_address=True)
    spec = SwitchSpec(switch_name("hov"), SwitchType.NAT, host_address=host_in(outside.subnet, 50))
    _refused(conn, spec, f"overlaps the host's address {outside.host_address} on '{outside.adapter}'")


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (None, "The host's address on the switch is needed"),
        ("10.1.2.3", "prefix length of '10.1.2.3' must be from 8 to 30"),
        ("10.1.2.3/31", "must be from 8 to 30"),
        ("10.1.2.0/24", "network or broadcast address"),
        ("224.1.2.3/24", "multicast"),
        ("not an address", "is not an IPv4 address"),
    ],
)
def test_bad_host_addresses(conn: Any, address: str | None, message: str) -> None:
    problems = switches.switch_problems(
        conn, SwitchSpec(switch_name("adr"), SwitchType.INTERNAL, host_address=address)
    )
    assert any(message in problem for problem in problems), problems


# --- VLAN: the kernel's own refusal -------------------------------------------------------------


def test_vlan_for_the_management_os_fails_with_the_kernels_reason(conn: Any) -> None:
    problem = kernel_features.vlan_problem()
    assert problem is not None, "these machines' kernel has no 802.1Q; the refusal is what is tested"
    assert "802.1Q" in problem and "creating a VLAN interface failed" in problem
    subnet = free_subnet()
    spec = SwitchSpec(switch_name("vlan"), SwitchType.INTERNAL, host_address=host_in(subnet, 1), vlan_id=42)
    _refused(conn, spec, problem)
    out_of_range = SwitchSpec(
        switch_name("vlan"), SwitchType.INTERNAL, host_address=host_in(subnet, 1), vlan_id=4095
    )
    _refused(conn, out_of_range, "The VLAN ID must be from 1 to 4094.")
    _refused(conn, SwitchSpec(switch_name("vlan"), SwitchType.PRIVATE, vlan_id=7), "needs an Internal switch")


def test_adapter_vlan_probe_reports_bridge_vlan_filtering() -> None:
    problem = kernel_features.adapter_vlan_problem()
    assert problem is not None and "vlan_filtering" in problem


# --- the default-route adapter, in a namespace of the test's own ---------------------------------


def test_binding_the_default_route_adapter_needs_confirmation(
    conn: Any, default_route_namespace: OutsideNetwork
) -> None:
    ns, adapter = default_route_namespace.netns, default_route_namespace.adapter
    listed = {item.name: item for item in host_adapters(conn, netns=ns)}
    assert listed[adapter].default_route and listed[adapter].addresses == (
        default_route_namespace.host_address,
    )
    spec = SwitchSpec(switch_name("dfl"), SwitchType.EXTERNAL, host_adapter=adapter)
    assert switches.switch_problems(conn, spec, netns=ns) == []
    with pytest.raises(switches.ConfirmationNeeded) as asked:
        require_default_route_confirmation(conn, spec, None, confirmed=False, netns=ns)
    assert "default route" in asked.value.message and "connectivity" in asked.value.message
    require_default_route_confirmation(conn, spec, None, confirmed=True, netns=ns)


def test_host_bridge_moves_the_default_route_and_puts_it_back(
    default_route_namespace: OutsideNetwork,
) -> None:
    ns, adapter = default_route_namespace.netns, default_route_namespace.adapter
    bridge = external_bridge.bridge_name(adapter)
    routes_before = ip_json("-4", "route", "show", netns=ns)
    with pytest.raises(switches.ConfirmationNeeded):
        external_bridge.attach(adapter, bridge, move_default_route=False, netns=ns)
    assert link_info(bridge, netns=ns) is None
    was_up = external_bridge.attach(adapter, bridge, move_default_route=True, netns=ns)
    default = [route for route in ip_json("-4", "route", "show", netns=ns) if route["dst"] == "default"]
    assert [(route["dev"], route["gateway"]) for route in default] == [
        (bridge, default_route_namespace.far_address)
    ]
    assert ipv4_of(bridge, netns=ns) == [default_route_namespace.host_address]
    assert link_info(adapter, netns=ns)["master"] == bridge
    external_bridge.detach(adapter, bridge, was_up, netns=ns)
    assert link_info(bridge, netns=ns) is None
    assert ip_json("-4", "route", "show", netns=ns) == routes_before
    assert ipv4_of(adapter, netns=ns) == [default_route_namespace.host_address]


# --- networks hvmanager did not make -------------------------------------------------------------


@pytest.mark.parametrize(
    ("xml", "kind", "adapter", "address"),
    [
        ("<network><name>a</name><bridge name='br9'/></network>", SwitchType.PRIVATE, None, None),
        ("<network><name>a</name><ip address='10.9.0.1' netmask='255.255.0.0'/></network>",
         SwitchType.INTERNAL, None, "10.9.0.1/16"),
        ("<network><name>a</name><forward mode='nat'/><ip address='10.9.0.1' prefix='24'/></network>",
         SwitchType.NAT, None, "10.9.0.1/24"),
        ("<network><name>a</name><forward/><ip address='10.9.0.1' prefix='24'/></network>",
         SwitchType.NAT, None, "10.9.0.1/24"),
        ("<network><name>a</name><forward mode='bridge'><interface dev='eno1'/></forward></network>",
         SwitchType.EXTERNAL, "eno1", None),
        ("<network><name>a</name><forward mode='passthrough' dev='eno2'/></network>",
         SwitchType.EXTERNAL, "eno2", None),
    ],
)  # fmt: skip
def test_type_of_a_foreign_network_is_inferred(
    xml: str, kind: SwitchType, adapter: str | None, address: str | None
) -> None:
    info = parse_network(xml)
    assert (info.spec.type, info.spec.host_adapter, info.spec.host_address, info.managed) == (
        kind,
        adapter,
        address,
        False,
    )


def test_an_edited_foreign_network_keeps_what_the_spec_does_not_cover() -> None:
    old = (
        "<network><name>lab</name><uuid>0b4e3c5e-8d0e-4f4e-9a53-6a3c1f2d9e10</uuid>"
        "<forward mode='nat'/><bridge name='virbr7'/><mac address='52:54:00:aa:bb:cc'/>"
        "<domain name='lab.example'/><ip address='10.9.0.1' prefix='24'><dhcp>"
        "<range start='10.9.0.50' end='10.9.0.60'/><host mac='52:54:00:00:00:01' ip='10.9.0.55'/>"
        "</dhcp></ip></network>"
    )
    spec = replace(parse_network(old).spec, notes="kept")
    root = SafeET.fromstring(network_xml(spec, "virbr7", old))
    assert root.findtext("uuid") == "0b4e3c5e-8d0e-4f4e-9a53-6a3c1f2d9e10"
    assert root.find("domain").get("name") == "lab.example"
    assert root.find("mac").get("address") == "52:54:00:aa:bb:cc"
    assert root.find("ip/dhcp/host").get("ip") == "10.9.0.55"  # reservations survive
    assert parse_network(ET.tostring(root, encoding="unicode")).spec == spec


@pytest.mark.parametrize(
    ("address", "dhcp"),
    [
        ("192.168.5.1/24", ("192.168.5.128", "192.168.5.254")),
        ("192.168.5.254/24", ("192.168.5.1", "192.168.5.127")),
        ("10.0.0.1/30", ("10.0.0.2", "10.0.0.2")),
    ],
)
def test_dhcp_range_is_the_half_without_the_host(address: str, dhcp: tuple[str, str]) -> None:
    assert dhcp_range(address) == dhcp


def test_notes_on_a_foreign_network_change_nothing_else(conn: Any) -> None:
    """Notes on a network hvmanager did not make (a copy of libvirt's stock NAT network) add its
    metadata and leave the rest as the daemon had it: NAT port range, STP, netmask."""
    name = switch_name("foreign")
    subnet = free_subnet()
    stock = (
        f"<network><name>{name}</name><forward mode='nat'><nat><port start='1024' end='65535'/></nat>"
        f"</forward><bridge stp='on' delay='0'/><ip address='{host_in(subnet, 1, False)}' "
        f"netmask='{subnet.netmask}'/></network>"
    )
    conn.networkDefineXML(stock)
    before = SafeET.fromstring(conn.networkLookupByName(name).XMLDesc(0))
    switches.set_switch(conn, name, replace(switches.get_switch(conn, name).spec, notes="lab uplink"))
    after = SafeET.fromstring(conn.networkLookupByName(name).XMLDesc(0))
    assert switches.get_switch(conn, name).spec.notes == "lab uplink"
    after.remove(after.find("metadata"))
    assert _canonical(after) == _canonical(before)


def _canonical(root: ET.Element) -> str:
    return ET.canonicalize(ET.tostring(root, encoding="unicode"), strip_text=True)


def test_kernel_probes_also_run_from_a_thread_with_a_running_event_loop() -> None:
    """The GUI thread runs an asyncio loop (qasync), where pyroute2's synchronous calls fail: the
    probe then runs on a thread of its own and gives the same answer."""

    async def probe_inside_a_loop() -> str | None:
        return kernel_features._off_any_event_loop(kernel_features._make_vlan_link)

    outside = kernel_features._off_any_event_loop(kernel_features._make_vlan_link)
    loop = asyncio.new_event_loop()  # not asyncio.run: it would unset the thread's loop (qasync's)
    try:
        assert loop.run_until_complete(probe_inside_a_loop()) == outside
    finally:
        loop.close()
