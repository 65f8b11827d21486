"""The ``hvctl`` networking verbs: new-/get-/set-/remove-vmswitch, add-/remove-/connect-/get-/
set-vmnetworkadapter and get-vmswitchstatistics.

The first tests are fast (no daemon): the command lines argparse accepts and refuses, and the
default-route confirmation (back end stubbed). The others run hvctl against the real
``qemu:///system`` (in this process, and once as the installed executable) and check each effect
with independent observers: ``virsh net-list``, ``virsh net-dumpxml``, ``virsh domiflist``/
``dumpxml`` and, on one booted test guest, the guest's serial console, ``busybox ping`` from the
host and ``virsh domifstat``/``domif-getlink``. Bad input must exit with
status 1, say why on stderr, and leave ``virsh net-list --all`` (and the VM's definition) as they
were. Everything is named ``hvt-cli<what>-<pid>`` (switches), ``hvtc<pid>`` (links) or
``hvtest-...-<pid>`` (VMs) and removed afterwards; the host's own adapter is never touched.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import kernel_features, switches
from hvmanager.backend.network_models import SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.switch_errors import ConfirmationNeeded
from hvmanager.cli.hvctl import main, parse_args
from tests.conftest import SYSTEM_URI, vm_name
from tests.vm.helpers import virsh, wait_serial
from tests.vm.test_hvctl import hvctl, new_vm

PID = os.getpid()
SWITCH_PREFIX = "hvt-cli"
ICMP_PACKET_BYTES = 84  # IPv4 header + ICMP header + busybox ping's 56 data bytes


def switch_name(what: str) -> str:
    return f"{SWITCH_PREFIX}{what}-{PID}"


def subnet(index: int) -> str:
    """A /24 of this run's own (``10.<180 + index>.<pid % 250>``): its first three octets."""
    return f"10.{180 + index}.{PID % 250}"


# --- fast tests: the command lines --------------------------------------------------------------


def test_the_verbs_parse_their_options() -> None:
    args = parse_args(
        ["new-vmswitch", "lab", "--switch-type", "internal", "--host-address", "10.1.2.1/24", "--dhcp"]
    )
    assert (args.name, args.switch_type, args.host_address, args.dhcp) == (
        "lab",
        SwitchType.INTERNAL,
        "10.1.2.1/24",
        True,
    )
    args = parse_args(
        ["new-vmswitch", "--name", "up", "--net-adapter-name", "eth9", "--allow-management-os", "$false"]
    )
    assert (args.name_option, args.net_adapter_name, args.allow_management_os) == ("up", "eth9", False)
    assert parse_args(["new-vmswitch", "x", "--switch-type", "NAT"]).minimum_bandwidth_mode == "None"
    assert parse_args(["set-vmswitch", "lab", "--no-dhcp"]).dhcp is False
    assert parse_args(["set-vmswitch", "lab", "--notes", "n"]).dhcp is None
    args = parse_args(
        ["set-vmnetworkadapter", "--vm-name", "web", "--mac", "00-15-5D-00-00-01", "--vmq-queues", "0"]
    )
    assert (args.vm_name, args.mac, args.vmq_queues, args.vlan_id) == ("web", "00-15-5D-00-00-01", 0, None)
    args = parse_args(["get-vmswitchstatistics", "lab", "--count", "2", "--interval", "0.5", "--mac-table"])
    assert (args.switch, args.count, args.interval, args.watch, args.mac_table) == (
        "lab",
        2,
        0.5,
        False,
        True,
    )
    assert parse_args(["get-vmnetworkadapter", "--vm-name", "a", "b*"]).vm_name == ["a", "b*"]


@pytest.mark.parametrize(
    "argv",
    [
        ["new-vmswitch", "x", "--switch-type", "bridge"],
        ["new-vmswitch", "x", "--net-adapter-name", "e", "--allow-management-os", "maybe"],
        ["remove-vmnetworkadapter", "--vm-name", "web"],  # neither --mac nor --name
        ["connect-vmnetworkadapter", "--vm-name", "web"],  # neither a switch nor --disconnect
        ["connect-vmnetworkadapter", "--vm-name", "web", "--switch-name", "s", "--disconnect"],
        ["get-vmnetworkadapter"],  # neither --vm-name nor --all
        ["set-vmnetworkadapter", "--vm-name", "w", "--static-mac-address", "m", "--dynamic-mac-address"],
        ["set-vmnetworkadapter", "--vm-name", "w", "--vmq-queues", "-1"],
        ["get-vmswitchstatistics", "--interval", "0"],
        ["get-vmswitchstatistics", "--count", "0"],
    ],
)
def test_incomplete_command_lines_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["new-vmswitch", "x"], "give --switch-type"),
        (["new-vmswitch", "x", "--switch-type", "External"], "needs --net-adapter-name"),
        (["new-vmswitch", "x", "--name", "y", "--switch-type", "Private"], "two names given"),
        (
            ["new-vmswitch", "x", "--switch-type", "Private", "--host-address", "10.0.0.1/24"],
            "--host-address is for",
        ),
        (["new-vmswitch", "x", "--switch-type", "NAT", "--no-dhcp"], "always gives"),
        (["set-vmswitch", "x"], "nothing to change"),
    ],
)
def test_option_combinations_the_verbs_refuse_are_usage_errors(
    argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before the server is asked anything (test:/// has no such switch either)."""
    assert main(["--connect", "test:///default", *argv]) == 2
    err = capsys.readouterr().err
    assert reason in err and "usage:" in err


def test_binding_the_default_route_adapter_needs_force(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The back end's refusal reaches the user with the option that confirms; --force confirms.
    (The back end is stubbed: a real attempt would bind the host's own adapter.)"""
    created: list[SwitchSpec] = []

    def create_switch(_conn: Any, spec: SwitchSpec, confirm_default_route: bool = False) -> SwitchInfo:
        if not confirm_default_route:
            raise ConfirmationNeeded(spec.host_adapter or "")
        created.append(spec)
        return SwitchInfo(spec, "00000000-0000-0000-0000-000000000001", None, True)

    monkeypatch.setattr(switches, "switch_problems", lambda *_a, **_k: [])
    monkeypatch.setattr(switches, "create_switch", create_switch)
    monkeypatch.setattr(switches, "switch_users", lambda *_a: [])
    argv = ["--connect", "test:///default", "new-vmswitch", "up", "--net-adapter-name", "eth0"]

    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "carries this host's default route" in err and "hvctl: hint: Give --force" in err
    assert created == []
    assert main([*argv, "--force", "--allow-management-os", "false"]) == 0
    assert capsys.readouterr().out.splitlines()[2].split() == ["up", "External", "eth0"]
    assert [(s.type, s.host_adapter, s.share_with_host) for s in created] == [
        (SwitchType.EXTERNAL, "eth0", False)
    ]


# --- hvctl, the observers and clean-up ----------------------------------------------------------


def run(*args: str) -> tuple[int, str, str]:
    """``hvctl --connect qemu:///system ARGS`` in this process (the installed executable is run
    once, in the first switch test; starting Python for every call would make these tests slow):
    (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["--connect", SYSTEM_URI, *args])
    assert "Traceback" not in err.getvalue(), err.getvalue()
    return code, out.getvalue(), err.getvalue()


def ok(*args: str) -> str:
    """Run hvctl, require success, return its standard output."""
    code, out, err = run(*args)
    assert code == 0, f"hvctl {' '.join(args)} failed:\n{err}"
    return out


def our_networks() -> list[list[str]]:
    """``virsh net-list --all`` rows of this run's switches, as cells (others' tests run meanwhile,
    and their names change the column widths)."""
    return [line.split() for line in virsh("net-list", "--all").splitlines() if f"-{PID} " in f"{line} "]


def net_xml(name: str) -> ET.Element:
    return ET.fromstring(virsh("net-dumpxml", name))


def bridge_of(name: str) -> str:
    for line in virsh("net-info", name).splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Bridge":
            return value.strip()
    raise AssertionError(f"{name} has no bridge")


def domiflist(vm: str) -> dict[str, tuple[str, str, str]]:
    """{mac: (type, source, model)} from ``virsh domiflist --inactive``."""
    rows = {}
    for line in virsh("domiflist", vm, "--inactive").splitlines()[2:]:
        cells = line.split()
        if len(cells) == 5:
            _interface, kind, source, model, mac = cells
            rows[mac.lower()] = (kind, source, model)
        elif len(cells) == 4:  # an unconnected adapter may have no source
            _interface, kind, model, mac = cells
            rows[mac.lower()] = (kind, "", model)
    return rows


def refused(*args: str, vm: str | None = None) -> str:
    """Run a verb that must fail: exit status 1, our networks (and the VM) unchanged; returns stderr."""
    networks = our_networks()
    before = virsh("dumpxml", "--inactive", vm) if vm else ""
    code, out, err = run(*args)
    assert code == 1, out + err
    assert err.startswith("hvctl: error: "), err
    assert our_networks() == networks
    if vm:
        assert virsh("dumpxml", "--inactive", vm) == before
    return err


def _remove_our_networks() -> None:
    for name in virsh("net-list", "--all", "--name").split():
        if name.startswith(SWITCH_PREFIX) and name.endswith(f"-{PID}"):
            virsh("net-destroy", name, check=False)
            virsh("net-undefine", name, check=False)


@pytest.fixture
def clean_switches(clean_domains: str) -> Iterator[None]:
    """Removes this run's switches before and after (VMs first, by ``clean_domains``), and puts
    back the host's IPv4 forwarding, which a NAT switch turns on."""
    forwarding = Path("/proc/sys/net/ipv4/ip_forward")
    previous = forwarding.read_text()
    _remove_our_networks()
    yield
    _remove_our_networks()
    forwarding.write_text(previous)


@pytest.fixture
def outside_adapter() -> Iterator[str]:
    """A veth pair playing a host adapter; its far end sits in a namespace of its own."""
    near, far, namespace = f"hvtc{PID % 10000}a", f"hvtc{PID % 10000}b", f"hvt-cliext-{PID}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "link", "add", near, "type", "veth", "peer", "name", far], check=True)
        subprocess.run(["ip", "link", "set", far, "netns", namespace], check=True)
        subprocess.run(["ip", "link", "set", near, "up"], check=True)
        yield near
    finally:
        subprocess.run(["ip", "link", "del", near], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], check=False)


# --- switches -----------------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_switches")
def test_switches_of_each_type_are_created_listed_changed_and_removed(outside_adapter: str) -> None:
    private, internal, nat, external = (switch_name(w) for w in ("priv", "int", "nat", "ext"))
    address = f"{subnet(0)}.1/24"

    done = hvctl("new-vmswitch", private, "--switch-type", "private", "--notes", "first")  # the executable
    assert done.returncode == 0, done.stderr
    table = done.stdout.splitlines()
    assert table[0].split() == ["Name", "SwitchType", "NetAdapterInterfaceDescription"]
    assert table[2].split() == [private, "Private"]
    assert net_xml(private).find("ip") is None and net_xml(private).find("forward") is None

    record = json.loads(
        ok(
            "new-vmswitch",
            "--name",
            internal,
            "--switch-type",
            "Internal",
            "--host-address",
            address,
            "--dhcp",
            "--json",
        )
    )
    assert (record["name"], record["switch_type"], record["host_address"], record["dhcp"]) == (
        internal,
        "Internal",
        address,
        True,
    )
    ip = net_xml(internal).find("ip")
    assert ip is not None and ip.get("address") == f"{subnet(0)}.1" and ip.find("dhcp/range") is not None
    assert net_xml(internal).find("forward") is None

    ok("new-vmswitch", nat, "--switch-type", "NAT", "--host-address", f"{subnet(1)}.1/24")
    forward = net_xml(nat).find("forward")
    assert forward is not None and forward.get("mode") == "nat"

    ok("new-vmswitch", external, "--net-adapter-name", outside_adapter, "--allow-management-os", "false")
    forward = net_xml(external).find("forward")
    assert forward is not None and forward.get("mode") == "bridge"
    assert [i.get("dev") for i in forward.findall("interface")] == [outside_adapter]

    listed = {r["name"]: r for r in json.loads(ok("get-vmswitch", "--json"))}
    assert {private, internal, nat, external} <= set(listed)
    assert (listed[external]["switch_type"], listed[external]["net_adapter_name"]) == (
        "External",
        outside_adapter,
    )
    assert listed[external]["allow_management_os"] is False
    assert listed[private]["notes"] == "first" and listed[private]["connected_adapters"] == []
    rows = [line.split() for line in ok("get-vmswitch", f"{SWITCH_PREFIX}*-{PID}").splitlines()[2:]]
    assert sorted(rows) == sorted(
        [[private, "Private"], [internal, "Internal"], [nat, "NAT"], [external, "External", outside_adapter]]
    )
    only = json.loads(ok("get-vmswitch", f"{SWITCH_PREFIX}*-{PID}", "--switch-type", "nat", "--json"))
    assert [r["name"] for r in only] == [nat]

    renamed = switch_name("priv2")
    record = json.loads(ok("set-vmswitch", private, "--new-name", renamed, "--notes", "second", "--json"))
    assert (record["name"], record["notes"]) == (renamed, "second")
    names = virsh("net-list", "--all", "--name").split()
    assert renamed in names and private not in names

    record = json.loads(ok("set-vmswitch", internal, "--switch-type", "Private", "--json"))
    assert (record["switch_type"], record["host_address"], record["dhcp"]) == ("Private", None, False)
    assert net_xml(internal).find("ip") is None

    for name in (renamed, internal, nat, external):
        assert ok("remove-vmswitch", name).strip() == f"Removed the virtual switch '{name}'."
    assert our_networks() == []


@pytest.mark.usefixtures("clean_switches")
def test_bad_switch_input_exits_1_and_creates_nothing(outside_adapter: str) -> None:
    first, second = switch_name("dup"), switch_name("ov")
    ok("new-vmswitch", first, "--switch-type", "Internal", "--host-address", f"{subnet(2)}.1/24")
    ok(
        "new-vmswitch",
        switch_name("bound"),
        "--net-adapter-name",
        outside_adapter,
        "--allow-management-os",
        "false",
    )

    assert first in refused("new-vmswitch", first, "--switch-type", "Private")  # duplicate name
    missing = f"hvtnope{PID % 10000}"
    assert missing in refused("new-vmswitch", switch_name("nope"), "--net-adapter-name", missing)
    err = refused("new-vmswitch", switch_name("bound2"), "--net-adapter-name", outside_adapter)
    assert switch_name("bound") in err  # the adapter is already bound to that switch
    err = refused(
        "new-vmswitch", second, "--switch-type", "Internal", "--host-address", f"{subnet(2)}.129/25"
    )
    assert "overlap" in err.lower() and first in err

    vlan_message = kernel_features.vlan_problem()
    assert vlan_message is not None, "this host's kernel has no 802.1Q: the VLAN refusal is expected"
    err = refused(
        "new-vmswitch", switch_name("vlan"), "--switch-type", "Internal",
        "--host-address", f"{subnet(3)}.1/24", "--vlan-id", "10",
    )  # fmt: skip
    assert vlan_message in err
    before = virsh("net-dumpxml", first)
    assert vlan_message in refused("set-vmswitch", first, "--vlan-id", "10")
    assert virsh("net-dumpxml", first) == before

    assert "There is no virtual switch named" in refused("remove-vmswitch", switch_name("none"))
    assert "There is no virtual switch named" in refused("get-vmswitch", switch_name("none"))


# --- network adapters on VMs that are off -------------------------------------------------------


@pytest.mark.usefixtures("clean_switches")
def test_adapters_are_added_connected_changed_and_removed(vm_location: Path) -> None:
    vm = vm_name("cli-nic")
    new_vm(vm, vm_location, "--processors", "2")
    first_switch, second_switch = switch_name("nic"), switch_name("nic2")
    ok("new-vmswitch", first_switch, "--switch-type", "Private")
    ok("new-vmswitch", second_switch, "--switch-type", "Private")
    (initial,) = json.loads(ok("get-vmnetworkadapter", "--vm-name", vm, "--json"))  # as New-VM makes
    assert (initial["name"], initial["switch_name"], initial["connected"]) == ("Network Adapter", None, False)
    assert initial["mac_address"] in domiflist(vm)

    synthetic = json.loads(
        ok("add-vmnetworkadapter", "--vm-name", vm, "--switch-name", first_switch, "--json")
    )
    mac = synthetic["mac_address"]
    assert mac.startswith("00:15:5d:") and synthetic["dynamic_mac_address_enabled"] is True
    assert (synthetic["name"], synthetic["switch_name"], synthetic["status"]) == (
        "Network Adapter",
        first_switch,
        "",
    )
    assert domiflist(vm)[mac] == ("network", first_switch, "virtio")

    static = json.loads(
        ok(
            "add-vmnetworkadapter",
            "--vm-name",
            vm,
            "--static-mac-address",
            "00-15-5D-AA-BB-CC",
            "--name",
            "Second",
            "--json",
        )
    )
    assert (static["mac_address"], static["switch_name"], static["dynamic_mac_address_enabled"]) == (
        "00:15:5d:aa:bb:cc",
        None,
        False,
    )
    assert "00:15:5d:aa:bb:cc" in domiflist(vm)
    legacy = json.loads(
        ok("add-vmnetworkadapter", "--vm-name", vm, "--is-legacy", "--switch-name", first_switch, "--json")
    )
    assert legacy["is_legacy"] is True and legacy["name"] == "Legacy Network Adapter"
    assert domiflist(vm)[legacy["mac_address"]][2] == "tulip"

    table = ok("get-vmnetworkadapter", "--vm-name", vm).splitlines()
    assert table[0].split() == ["Name", "VMName", "SwitchName", "MacAddress", "Status", "IPAddresses"]
    assert len(table) == 6
    records = json.loads(ok("get-vmnetworkadapter", "--vm-name", vm, "--json"))
    assert sorted(r["mac_address"] for r in records) == sorted(
        [initial["mac_address"], mac, "00:15:5d:aa:bb:cc", legacy["mac_address"]]
    )
    assert any(r["vm_name"] == vm for r in json.loads(ok("get-vmnetworkadapter", "--all", "--json")))

    ok("connect-vmnetworkadapter", "--vm-name", vm, "--name", "Second", "--switch-name", second_switch)
    assert domiflist(vm)["00:15:5d:aa:bb:cc"][:2] == ("network", second_switch)
    record = json.loads(
        ok("connect-vmnetworkadapter", "--vm-name", vm, "--mac", mac, "--disconnect", "--json")
    )
    assert record["switch_name"] is None and record["connected"] is False
    assert domiflist(vm)[mac][1] != first_switch
    ok(
        "connect-vmnetworkadapter",
        "--vm-name",
        vm,
        "--mac",
        mac.upper().replace(":", "-"),
        "--switch-name",
        first_switch,
    )
    assert domiflist(vm)[mac][:2] == ("network", first_switch)
    assert "4 network adapters" in refused("connect-vmnetworkadapter", "--vm-name", vm, "--disconnect", vm=vm)

    record = json.loads(
        ok("set-vmnetworkadapter", "--vm-name", vm, "--mac", mac, "--vmq-queues", "2", "--json")
    )
    assert (record["vmq_enabled"], record["queues"]) == (True, 2)
    driver = _interface(vm, mac).find("driver")
    assert driver is not None and driver.get("queues") == "2"
    limit = ("set-vmnetworkadapter", "--vm-name", vm, "--mac", mac, "--maximum-bandwidth", "100")
    shaping = kernel_features.bandwidth_problem()
    if shaping is None:  # a kernel with htb/sfq: libvirt shapes the adapter's traffic
        assert json.loads(ok(*limit, "--json"))["maximum_bandwidth_mbps"] == 100
        assert _interface(vm, mac).find("bandwidth/outbound") is not None
    else:  # this machine's kernel: a clear refusal, nothing changed
        assert shaping in refused(*limit, vm=vm)
    ok(
        "set-vmnetworkadapter",
        "--vm-name",
        vm,
        "--name",
        "Second",
        "--static-mac-address",
        "00:15:5d:aa:bb:dd",
    )
    assert "00:15:5d:aa:bb:dd" in domiflist(vm) and "00:15:5d:aa:bb:cc" not in domiflist(vm)
    record = json.loads(
        ok("set-vmnetworkadapter", "--vm-name", vm, "--name", "Second", "--dynamic-mac-address", "--json")
    )
    assert record["dynamic_mac_address_enabled"] is True

    assert "--force" in refused("remove-vmswitch", first_switch, vm=vm) and vm in refused(
        "remove-vmswitch", first_switch
    )
    assert vm in refused(
        "set-vmswitch",
        second_switch,
        "--switch-type",
        "Internal",
        "--host-address",
        f"{subnet(4)}.1/24",
        vm=vm,
    )
    ok(
        "set-vmswitch",
        second_switch,
        "--switch-type",
        "Internal",
        "--host-address",
        f"{subnet(4)}.1/24",
        "--force",
    )
    assert domiflist(vm)["00:15:5d:aa:bb:dd"][1] != second_switch
    removed = ok("remove-vmswitch", first_switch, "--force", "--json")
    assert {a["mac_address"] for a in json.loads(removed)["disconnected_adapters"]} == {
        mac,
        legacy["mac_address"],
    }
    by_mac = {r["mac_address"]: r for r in json.loads(ok("get-vmnetworkadapter", "--vm-name", vm, "--json"))}
    assert by_mac[mac]["switch_name"] is None and by_mac[legacy["mac_address"]]["switch_name"] is None
    assert all(source != first_switch for _kind, source, _model in domiflist(vm).values())

    ok("remove-vmnetworkadapter", "--vm-name", vm, "--name", "Second")
    ok("remove-vmnetworkadapter", "--vm-name", vm, "--mac", legacy["mac_address"])
    assert sorted(domiflist(vm)) == sorted([initial["mac_address"], mac])


def _interface(vm: str, mac: str) -> ET.Element:
    root = ET.fromstring(virsh("dumpxml", "--inactive", vm))
    for interface in root.findall("devices/interface"):
        address = interface.find("mac")
        if address is not None and address.get("address", "").lower() == mac:
            return interface
    raise AssertionError(f"{vm} has no adapter {mac}")


@pytest.mark.usefixtures("clean_switches")
def test_bad_adapter_input_exits_1_and_changes_nothing(vm_location: Path) -> None:
    vm = vm_name("cli-badnic")
    new_vm(vm, vm_location)
    switch = switch_name("badnic")
    ok("new-vmswitch", switch, "--switch-type", "Private")
    mac = json.loads(ok("add-vmnetworkadapter", "--vm-name", vm, "--switch-name", switch, "--json"))[
        "mac_address"
    ]

    assert "There is no virtual switch named" in refused(
        "add-vmnetworkadapter", "--vm-name", vm, "--switch-name", switch_name("none"), vm=vm
    )
    assert "not-a-mac" in refused(
        "add-vmnetworkadapter", "--vm-name", vm, "--static-mac-address", "not-a-mac", vm=vm
    )
    assert "no network adapter with the MAC address 00:15:5d:99:99:99" in refused(
        "remove-vmnetworkadapter", "--vm-name", vm, "--mac", "00:15:5d:99:99:99", vm=vm
    )
    vlan_message = kernel_features.adapter_vlan_problem()
    assert vlan_message is not None, "this host's bridges can't filter VLANs: the refusal is expected"
    assert vlan_message in refused(
        "set-vmnetworkadapter", "--vm-name", vm, "--mac", mac, "--vlan-id", "5", vm=vm
    )
    assert "No virtual machine named" in refused("get-vmnetworkadapter", "--vm-name", vm_name("cli-none"))


# --- a running guest: live adapters, addresses and the switch's counters ------------------------


@pytest.fixture
def switched_guest(
    vm_location: Path, test_guest: Any, clean_switches: None
) -> Iterator[tuple[str, str, Path]]:
    """A booted test guest at ``<subnet>.2`` on an Internal switch where the host is ``.1``:
    (VM name, switch name, serial log)."""
    from hvmanager.backend.connection import Server
    from hvmanager.backend.paths import vm_folders
    from tests.vm.conftest import create_guest_vm

    switch, guest = switch_name("stat"), vm_name("cli-netstat")
    ok("new-vmswitch", switch, "--switch-type", "Internal", "--host-address", f"{subnet(5)}.1/24")
    server = Server(SYSTEM_URI)
    server.open()
    try:
        create_guest_vm(
            server, vm_location, guest, test_guest, f"hvtest.ip={subnet(5)}.2/24 hvtest.watchnet hvtest.agent"
        )
    finally:
        server.close()
    # The VM has the one unconnected adapter New-VM gives; without --mac/--name it is the one.
    ok("connect-vmnetworkadapter", "--vm-name", guest, "--switch-name", switch)
    ok("start-vm", guest)
    serial = vm_folders(vm_location, guest).serial_log
    wait_serial(serial, "HVTEST: ready", 120)
    yield guest, switch, serial
    virsh("destroy", guest, check=False)


def host_ping(bridge: str, address: str, count: int) -> int:
    """Ping from the host out of ``bridge`` only; returns the replies received."""
    done = subprocess.run(
        ["busybox", "ping", "-c", str(count), "-W", "2", "-I", bridge, address],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"(\d+) packets received", done.stdout)
    return int(found.group(1)) if found else 0


def domifstat(vm: str, device: str) -> dict[str, int]:
    stats = {}
    for line in virsh("domifstat", vm, device).splitlines():
        _device, key, value = line.split()
        stats[key] = int(value)
    return stats


def one_sample(switch: str, *extra: str) -> dict[str, Any]:
    document = json.loads(ok("get-vmswitchstatistics", switch, "--interval", "0.5", "--json", *extra))
    assert isinstance(document, dict)
    return document


@pytest.mark.vm
def test_a_running_guest_on_an_internal_switch(switched_guest: tuple[str, str, Path]) -> None:
    guest, switch, serial = switched_guest
    address, bridge, pings = f"{subnet(5)}.2", bridge_of(switch), 10
    (adapter,) = json.loads(ok("get-vmnetworkadapter", "--vm-name", guest, "--json"))
    mac = adapter["mac_address"]
    assert adapter["status"] == "Ok" and adapter["switch_name"] == switch
    wait_serial(serial, f"HVTEST: ip {address}/24", 60)
    assert any(host_ping(bridge, address, 1) for _ in range(30)), "the guest never answered"

    before = one_sample(switch)
    (port,) = before["ports"]
    device = port["device"]
    stat_before = domifstat(guest, device)
    assert host_ping(bridge, address, pings) == pings
    after = one_sample(switch, "--mac-table")
    stat_after = domifstat(guest, device)

    (port,) = after["ports"]
    assert (port["vm_name"], port["mac_address"], port["switch"], port["queues"]) == (guest, mac, switch, 1)
    for direction in ("rx", "tx"):  # the guest received the requests and sent the replies
        grown = port[f"{direction}_packets"] - before["ports"][0][f"{direction}_packets"]
        assert grown >= pings, (direction, grown)
        assert (
            port[f"{direction}_bytes"] - before["ports"][0][f"{direction}_bytes"] >= pings * ICMP_PACKET_BYTES
        )
        virsh_key = f"{direction}_packets"
        assert stat_before[virsh_key] <= port[f"{direction}_packets"] <= stat_after[virsh_key]
    assert port["rates"] is not None
    (totals,) = after["switches"]
    assert (totals["name"], totals["switch_type"], totals["ports"]) == (switch, "Internal", 1)
    assert totals["rx_packets"] == port["rx_packets"] and totals["tx_bytes"] == port["tx_bytes"]
    assert {"switch": switch, "mac_address": mac, "port": device, "vm_name": guest, "local": False} in after[
        "mac_table"
    ]
    # No DHCP lease, and libvirt 9.0 can't read this kernel's ARP table: the guest agent tells.
    wait_serial(serial, "HVTEST: agent started", 60)
    (adapter,) = json.loads(ok("get-vmnetworkadapter", "--vm-name", guest, "--json"))
    assert address in adapter["ip_addresses"]

    lines = ok("get-vmswitchstatistics", switch, "--watch", "--count", "2", "--interval", "0.5", "--json")
    samples = [json.loads(line) for line in lines.splitlines()]
    assert len(samples) == 2 and all(s["ports"][0]["mac_address"] == mac for s in samples)
    assert samples[1]["ports"][0]["rx_packets"] >= samples[0]["ports"][0]["rx_packets"] >= port["rx_packets"]
    text = ok("get-vmswitchstatistics", switch, "--count", "2", "--interval", "0.5").splitlines()
    assert [line.split()[:2] for line in text if line.startswith("Sample ")] == [
        ["Sample", "1"],
        ["Sample", "2"],
    ]
    assert sum(1 for line in text if line.split()[:3] == [switch, guest, mac]) == 2

    # Hot-add, reconnect and hot-remove on the running guest.
    added = json.loads(ok("add-vmnetworkadapter", "--vm-name", guest, "--switch-name", switch, "--json"))
    wait_serial(serial, f"={added['mac_address']}/", 60)
    record = json.loads(
        ok("connect-vmnetworkadapter", "--vm-name", guest, "--mac", mac, "--disconnect", "--json")
    )
    assert record["switch_name"] is None
    assert virsh("domif-getlink", guest, mac).split()[-1] == "down"  # the running VM's link is cut
    # A Not connected adapter is no port of the switch any more (as in Hyper-V).
    assert [p["mac_address"] for p in one_sample(switch)["ports"]] == [added["mac_address"]]
    ok("connect-vmnetworkadapter", "--vm-name", guest, "--mac", mac, "--switch-name", switch)
    assert sorted(p["mac_address"] for p in one_sample(switch)["ports"]) == sorted(
        [mac, added["mac_address"]]
    )
    offset = len(serial.read_text(errors="replace"))
    ok("remove-vmnetworkadapter", "--vm-name", guest, "--mac", added["mac_address"])
    assert added["mac_address"] not in domiflist(guest)
    assert net_line_without(serial, added["mac_address"], offset), "the guest still has the removed adapter"


def net_line_without(serial: Path, mac: str, offset: int, timeout: float = 60) -> bool:
    """Whether the guest prints a ``HVTEST: net`` line without ``mac`` after ``offset`` in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = serial.read_text(errors="replace")[offset:].splitlines()
        if any(line.startswith("HVTEST: net") and mac not in line for line in lines):
            return True
        time.sleep(0.2)
    return False
