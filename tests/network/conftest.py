"""Fixtures for virtual switch tests on the real host network (root, system libvirt daemon).

Everything made here carries the project prefix and this process's id, and is removed afterwards:
libvirt networks ``hvt-<what>-<pid>``, Linux devices ``hvt<short><pid % 10000>`` (at most 11
characters, so the host bridge ``hvx-`` + adapter still fits in 15), network namespaces
``hvt-<what>-<pid>``. The host's own adapter (eth0), its addresses and routes are never touched,
and test traffic only goes to addresses inside namespaces and bridges the tests made.

- :func:`outside_network`: a veth pair standing for a host network adapter, its far end in a
  namespace of its own with an address (the "outside network" of an External switch);
- :func:`ip_forward`: snapshots ``net.ipv4.ip_forward`` and restores it (a NAT switch sets it);
- :func:`switch_cleanup`: removes this run's test switches (and their host bridges) by prefix;
- :func:`free_subnet`: a /24 no host address, route or libvirt network uses yet.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt
import pytest

from hvmanager.backend import external_bridge
from hvmanager.backend.switch_xml import host_bridge

PID = os.getpid()
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def switch_name(what: str) -> str:
    """A test switch (libvirt network) name: ``hvt-<what>-<pid>``."""
    return f"hvt-{what}-{PID}"


def device_name(short: str) -> str:
    """A test device name: ``hvt<short><pid % 10000>`` (``short`` at most 4 characters)."""
    assert len(short) <= 4
    return f"hvt{short}{PID % 10000}"


def namespace_name(what: str) -> str:
    """A test network namespace name: ``hvt-<what>-<pid>``."""
    return f"hvt-{what}-{PID}"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool (argument list); fail the test with its message when ``check`` and it fails."""
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    """``ip -j -d <args>`` (in ``netns``) as parsed JSON."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    out = run(*prefix, "-j", "-d", *args).stdout
    return list(json.loads(out)) if out.strip() else []


def link_info(name: str, netns: str | None = None) -> dict[str, Any] | None:
    """``ip -d link show <name>`` as JSON, or None when there is no such device."""
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    done = run(*prefix, "-j", "-d", "link", "show", name, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 and done.stdout.strip() else None


def ipv4_of(name: str, netns: str | None = None) -> list[str]:
    """The IPv4 addresses (``a.b.c.d/n``) of a device, from ``ip -j addr``."""
    entries = ip_json("-4", "addr", "show", "dev", name, netns=netns)
    return [f"{a['local']}/{a['prefixlen']}" for e in entries for a in e.get("addr_info", [])]


def our_devices() -> set[str]:
    """This run's devices on the host: ``hvt...<pid%10000>`` and the host bridges made on them."""
    tag = str(PID % 10000)
    names = {entry["ifname"] for entry in ip_json("link", "show")}
    return {name for name in names if name.startswith(("hvt", "hvx-hvt")) and tag in name}


def our_networks() -> set[str]:
    """This run's libvirt networks (``virsh net-list --all``)."""
    out = run("virsh", "-c", "qemu:///system", "net-list", "--all", "--name").stdout
    return {name.strip() for name in out.splitlines() if name.strip().endswith(f"-{PID}")}


def host_ping(address: str, device: str, count: int = 2) -> bool:
    """Whether the host reaches ``address`` with pings bound to ``device`` (busybox ping)."""
    done = run("busybox", "ping", "-c", str(count), "-W", "1", "-I", device, address, check=False)
    return done.returncode == 0


def pings_answered(bridge: str, address: str, count: int, size: int) -> int:
    """Ping ``address`` ``count`` times with ``size``-byte payloads through ``bridge`` (busybox
    ping, adaptive: one after the other); returns how many replies came back."""
    done = run(
        "busybox", "ping", "-A", "-I", bridge, "-c", str(count), "-s", str(size), "-W", "5", address,
        check=False,
    )  # fmt: skip
    found = re.search(r"(\d+) packets received", done.stdout)
    assert found, f"ping printed no summary: {done.stdout}{done.stderr}"
    return int(found.group(1))


@pytest.fixture(scope="session")
def conn(libvirtd: str) -> Iterator[Any]:
    """A libvirt connection to the system daemon."""
    connection = libvirt.open(libvirtd)
    yield connection
    connection.close()


def _remove_switch_by_force(conn: Any, name: str) -> None:
    """Stop and undefine a test network and undo its host bridge (no backend logic on the way)."""
    try:
        net = conn.networkLookupByName(name)
    except libvirt.libvirtError:
        return
    xml = net.XMLDesc(libvirt.VIR_NETWORK_XML_INACTIVE if net.isPersistent() else 0)
    if net.isActive():
        net.destroy()
    if net.isPersistent():
        net.undefine()
    bridge = host_bridge(xml)
    if bridge is not None:
        external_bridge.detach(bridge.adapter, bridge.bridge, bridge.adapter_was_up)


def remove_test_switches(conn: Any) -> None:
    """Remove this run's test switches, and those a finished run left behind."""
    for net in conn.listAllNetworks(0):
        name = net.name()
        if not name.startswith("hvt-"):
            continue
        suffix = name.rsplit("-", 1)[-1]
        if suffix.isdigit() and (int(suffix) == PID or not Path(f"/proc/{suffix}").exists()):
            _remove_switch_by_force(conn, name)
    for device in our_devices():
        if device.startswith(external_bridge.BRIDGE_PREFIX):  # a host bridge whose switch is gone
            external_bridge.detach(device.removeprefix(external_bridge.BRIDGE_PREFIX), device)


@pytest.fixture
def switch_cleanup(conn: Any) -> Iterator[Any]:
    """Removes this run's test switches before and after the test; yields the connection."""
    remove_test_switches(conn)
    yield conn
    remove_test_switches(conn)


@pytest.fixture
def ip_forward() -> Iterator[str]:
    """Snapshots ``net.ipv4.ip_forward`` and puts it back afterwards (a NAT switch turns it on)."""
    before = IP_FORWARD.read_text(encoding="ascii").strip()
    yield before
    IP_FORWARD.write_text(before + "\n", encoding="ascii")


_TAKEN: set[ipaddress.IPv4Network] = set()


def _subnets_in_use() -> list[ipaddress.IPv4Network]:
    used = []
    for entry in ip_json("-4", "addr", "show"):
        for addr in entry.get("addr_info", []):
            used.append(ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}").network)
    for route in ip_json("-4", "route", "show", "table", "all"):
        dst = route.get("dst", "default")
        if dst not in ("default", "broadcast", "local") and route.get("type", "unicast") == "unicast":
            used.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    out = run("virsh", "-c", "qemu:///system", "net-list", "--all", "--name").stdout
    for name in filter(None, (line.strip() for line in out.splitlines())):
        xml = run("virsh", "-c", "qemu:///system", "net-dumpxml", name, check=False).stdout
        for ip in SafeET.fromstring(xml).findall("ip") if xml.strip() else []:
            if ip.get("family", "ipv4") == "ipv4" and ip.get("address"):
                prefix = ip.get("prefix") or ip.get("netmask") or "24"
                used.append(ipaddress.IPv4Interface(f"{ip.get('address')}/{prefix}").network)
    return used


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 under 10.236.0.0/14 that nothing on the host uses yet (and this run has not handed out)."""
    used = _subnets_in_use()
    for second in range(236, 240):
        for step in range(256):
            third = (PID + step * 37) % 256
            candidate = ipaddress.IPv4Network(f"10.{second}.{third}.0/24")
            if candidate not in _TAKEN and not any(candidate.overlaps(other) for other in used):
                _TAKEN.add(candidate)
                return candidate
    raise AssertionError("no free /24 under 10.236.0.0/14 for a test network")


def host_in(subnet: ipaddress.IPv4Network, index: int, with_prefix: bool = True) -> str:
    """The ``index``-th host address of ``subnet`` (``a.b.c.d/24`` unless ``with_prefix`` is False)."""
    address = subnet.network_address + index
    return f"{address}/{subnet.prefixlen}" if with_prefix else str(address)


@dataclass(frozen=True)
class OutsideNetwork:
    """A veth pair: ``adapter`` on the host (the "physical" adapter), ``far_end`` in ``netns``
    with ``far_address``; ``host_address`` is on ``adapter`` when the test asked for one."""

    adapter: str
    netns: str
    far_end: str
    far_address: str
    host_address: str | None
    subnet: ipaddress.IPv4Network


def make_outside_network(short: str, host_address: bool) -> OutsideNetwork:
    """Make the veth pair and namespace (see :class:`OutsideNetwork`)."""
    subnet = free_subnet()
    adapter, far_end, netns = device_name(short), device_name(short[:3] + "p"), namespace_name(short)
    run("ip", "netns", "add", netns)
    run("ip", "link", "add", adapter, "type", "veth", "peer", "name", far_end, "netns", netns)
    run("ip", "-n", netns, "link", "set", "lo", "up")
    run("ip", "-n", netns, "addr", "add", host_in(subnet, 2), "dev", far_end)
    run("ip", "-n", netns, "link", "set", far_end, "up")
    address = host_in(subnet, 1) if host_address else None
    if address:
        run("ip", "addr", "add", address, "dev", adapter)
    run("ip", "link", "set", adapter, "up")
    return OutsideNetwork(adapter, netns, far_end, host_in(subnet, 2, False), address, subnet)


def remove_outside_network(outside: OutsideNetwork) -> None:
    """Remove the namespace (which takes the veth pair with it) and the host end if still there."""
    run("ip", "netns", "del", outside.netns, check=False)
    if link_info(outside.adapter) is not None:
        run("ip", "link", "del", outside.adapter, check=False)


@pytest.fixture
def outside_network(conn: Any) -> Iterator[Callable[..., OutsideNetwork]]:
    """Factory ``outside_network(short, host_address=False)``: a veth pair whose far end, in a
    namespace of its own, has ``.far_address``; removed after the test (this run's switches first,
    so that a host bridge gives the adapter back before it goes)."""
    made: list[OutsideNetwork] = []

    def make(short: str, host_address: bool = False) -> OutsideNetwork:
        outside = make_outside_network(short, host_address)
        made.append(outside)
        return outside

    yield make
    remove_test_switches(conn)
    for outside in reversed(made):
        remove_outside_network(outside)


@pytest.fixture
def default_route_namespace() -> Iterator[OutsideNetwork]:
    """A namespace of the test's own holding a veth with an address and the namespace's default
    route through it: what binding "the adapter that carries the default route" is about, without
    touching the host's."""
    subnet = free_subnet()
    netns, adapter, peer = namespace_name("dfl"), device_name("dfl"), device_name("dflp")
    run("ip", "netns", "add", netns)
    try:
        run("ip", "-n", netns, "link", "add", adapter, "type", "veth", "peer", "name", peer)
        run("ip", "-n", netns, "addr", "add", host_in(subnet, 2), "dev", adapter)
        run("ip", "-n", netns, "link", "set", adapter, "up")
        run("ip", "-n", netns, "link", "set", peer, "up")
        run("ip", "-n", netns, "route", "add", "default", "via", host_in(subnet, 1, False), "dev", adapter)
        yield OutsideNetwork(adapter, netns, peer, host_in(subnet, 1, False), host_in(subnet, 2), subnet)
    finally:
        run("ip", "netns", "del", netns, check=False)
