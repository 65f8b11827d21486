"""Virtual switches carrying real traffic between test guests, the host and outside networks.

The guests (busybox test guests under TCG) get a static address (``hvtest.ip``) and ping their
peers once a second (``hvtest.ping``), printing ``HVTEST: ping <addr> up|down`` on their serial
console when the result changes. The host side is observed with ``busybox ping -I <device>``,
``ip -d link`` and ``virsh``. Six guests boot in this module:

- Private: two guests reach each other; the host cannot reach them; the switch renamed under
  them keeps them connected; removing it (confirmed) leaves their adapters "Not connected".
- Internal: the host and a guest reach each other, also after the switch was rebuilt under it.
- External, shared: a guest reaches the outside network (a namespace behind a veth pair) and the
  host reaches the guest through the host bridge.
- External, not shared (macvtap): the guest reaches the outside network, the host cannot reach the
  guest; turning sharing on plugs the guest's adapter into the new host bridge.
- NAT: a guest reaches an address the host routes to, in a namespace that has no route back to the
  NAT subnet: the replies prove the masquerading.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend import creation, external_bridge, switches
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec
from hvmanager.backend.network_models import SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.paths import vm_folders
from tests.conftest import vm_name
from tests.network.conftest import (
    OutsideNetwork,
    free_subnet,
    host_in,
    host_ping,
    link_info,
    make_outside_network,
    our_networks,
    remove_outside_network,
    remove_test_switches,
    run,
    switch_name,
)
from tests.vm.helpers import serial_text, virsh, wait_serial

pytestmark = pytest.mark.vm

BOOT_TIMEOUT = 120


@dataclass(frozen=True)
class Guest:
    """A running test guest: its domain, name, adapter MAC and serial log."""

    dom: Any
    name: str
    mac: str
    serial_log: Path

    def wait_ping(self, address: str, state: str = "up", after: int = 0) -> None:
        wait_serial(self.serial_log, f"HVTEST: ping {address} {state}", timeout=BOOT_TIMEOUT, after=after)

    def last_ping_state(self, address: str) -> str | None:
        states = [line.split()[-1] for line in serial_text(self.serial_log).splitlines()
                  if line.startswith(f"HVTEST: ping {address} ")]  # fmt: skip
        return states[-1] if states else None


class Guests:
    """Makes test guests on a switch and removes them (domain and folder)."""

    def __init__(self, server: Server, location: Path, test_guest: Any) -> None:
        self.server, self.location, self.test_guest = server, location, test_guest
        self.made: list[Guest] = []

    def boot(self, label: str, switch: str, options: str) -> Guest:
        guest = self.test_guest
        spec = VmSpec(
            name=vm_name(f"sw-{label}"),
            location=str(self.location),
            memory=MemoryConfig(256),
            network=switch,
            install=KernelBoot(str(guest.kernel), str(guest.initrd), f"{guest.cmdline} {options}"),
        )
        uuid = creation.create_vm(self.server, spec, creation.decide_acceleration(self.server, "tcg"))
        dom = self.server.conn.lookupByUUIDString(uuid)
        mac = virsh("domiflist", spec.name).splitlines()[-1].split()[-1]
        made = Guest(dom, spec.name, mac, vm_folders(self.location, spec.name).serial_log)
        self.made.append(made)
        dom.create()
        return made

    def remove_all(self) -> None:
        for guest in self.made:
            try:
                if guest.dom.isActive():
                    guest.dom.destroy()
                guest.dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError:
                pass  # already gone
        self.made.clear()


@pytest.fixture(scope="module")
def server(libvirtd: str) -> Iterator[Server]:
    srv = Server(libvirtd)
    srv.open()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def guest_folder(test_root: Path) -> Iterator[Path]:
    location = test_root / f"switch-traffic-{os.getpid()}"
    shutil.rmtree(location, ignore_errors=True)
    location.mkdir(parents=True)
    yield location
    shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="module")
def module_guests(server: Server, guest_folder: Path, test_guest: Any) -> Iterator[Guests]:
    """Guests shared by the tests of a module-scoped switch (removed at the end, then the switches)."""
    made = Guests(server, guest_folder, test_guest)
    yield made
    made.remove_all()
    remove_test_switches(server.conn)


def remove_switches_made_since(conn: Any, before: set[str]) -> None:
    """Remove the test switches that are not in ``before`` (and their host bridges)."""
    for name in our_networks() - before:
        switches.remove_switch(conn, name, disconnect_users=True)


@pytest.fixture
def guests(server: Server, guest_folder: Path, test_guest: Any) -> Iterator[Guests]:
    """Guests of one test, removed after it, then the switches the test made (list it after
    ``outside`` so that this runs before the outside networks go)."""
    before = our_networks()
    made = Guests(server, guest_folder, test_guest)
    yield made
    made.remove_all()
    remove_switches_made_since(server.conn, before)


def tap_of(guest: Guest) -> str:
    """The host device of the guest's adapter (``virsh domiflist``)."""
    return virsh("domiflist", guest.name).splitlines()[-1].split()[0]


def master_of(device: str) -> str | None:
    link = link_info(device)
    return link.get("master") if link is not None else None


# --- Private ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivatePair:
    switch: SwitchInfo
    first: Guest
    second: Guest
    first_address: str
    second_address: str


@pytest.fixture(scope="module")
def private_pair(server: Server, module_guests: Guests) -> PrivatePair:
    subnet = free_subnet()
    a, b = host_in(subnet, 2, False), host_in(subnet, 3, False)
    switch = switches.create_switch(server.conn, SwitchSpec(switch_name("tpriv"), SwitchType.PRIVATE))
    first = module_guests.boot("priv-a", switch.name, f"hvtest.ip={a}/24 hvtest.ping={b}")
    second = module_guests.boot("priv-b", switch.name, f"hvtest.ip={b}/24 hvtest.ping={a}")
    return PrivatePair(switch, first, second, a, b)


def test_private_guests_reach_each_other_and_not_the_host(private_pair: PrivatePair) -> None:
    pair = private_pair
    pair.first.wait_ping(pair.second_address)
    pair.second.wait_ping(pair.first_address)
    assert master_of(tap_of(pair.first)) == pair.switch.bridge == master_of(tap_of(pair.second))
    # The host has no address on a private switch: even pinging out of its bridge reaches nobody.
    assert not host_ping(pair.first_address, pair.switch.bridge or "")
    assert not host_ping(pair.second_address, pair.switch.bridge or "")


def test_renaming_a_switch_keeps_its_running_guests_connected(
    server: Server, private_pair: PrivatePair
) -> None:
    pair = private_pair
    pair.first.wait_ping(pair.second_address)
    new_name = switch_name("tpriv2")
    renamed = switches.set_switch(server.conn, pair.switch.name, SwitchSpec(new_name, SwitchType.PRIVATE))
    assert pair.switch.name not in virsh("net-list", "--all", "--name").split()
    for guest in (pair.first, pair.second):
        assert virsh("domiflist", guest.name).splitlines()[-1].split()[2] == new_name  # live
        assert f"network='{new_name}'" in virsh("dumpxml", "--inactive", guest.name)  # config
        assert master_of(tap_of(guest)) == renamed.bridge
    assert sorted(switches.switch_users(server.conn, new_name)) == sorted(
        [(pair.first.name, pair.first.mac), (pair.second.name, pair.second.mac)]
    )
    time.sleep(3)  # a ping round or two after the switch moved: any outage would have shown
    assert pair.first.last_ping_state(pair.second_address) == "up"
    assert pair.second.last_ping_state(pair.first_address) == "up"


def test_removing_a_used_switch_asks_then_disconnects(server: Server, private_pair: PrivatePair) -> None:
    pair = private_pair
    name = switch_name("tpriv2")
    with pytest.raises(switches.SwitchInUseError) as asked:
        switches.remove_switch(server.conn, name)
    assert sorted(asked.value.users) == sorted([pair.first.name, pair.second.name])
    assert name in virsh("net-list", "--all", "--name").split()
    offset = len(serial_text(pair.first.serial_log))
    switches.remove_switch(server.conn, name, disconnect_users=True)
    assert name not in virsh("net-list", "--all", "--name").split()
    for guest in (pair.first, pair.second):
        assert virsh("domif-getlink", guest.name, guest.mac).split()[-1] == "down"
        assert f"network='{name}'" not in virsh("dumpxml", "--inactive", guest.name)
    pair.first.wait_ping(pair.second_address, "down", after=offset)


# --- Internal -----------------------------------------------------------------------------------


def test_internal_host_and_guest_reach_each_other(server: Server, guests: Guests) -> None:
    subnet = free_subnet()
    host_address, guest_address = host_in(subnet, 1, False), host_in(subnet, 5, False)
    name = switch_name("tint")
    spec = SwitchSpec(name, SwitchType.INTERNAL, host_address=host_in(subnet, 1))
    switch = switches.create_switch(server.conn, spec)
    guest = guests.boot("int", name, f"hvtest.ip={guest_address}/24 hvtest.ping={host_address}")
    guest.wait_ping(host_address)
    assert host_ping(guest_address, switch.bridge or "")
    # A change the running network cannot take (DHCP on) rebuilds it: the guest's tap follows.
    with_dhcp = SwitchSpec(name, SwitchType.INTERNAL, host_address=host_in(subnet, 1), dhcp=True)
    rebuilt = switches.set_switch(server.conn, name, with_dhcp)
    assert master_of(tap_of(guest)) == rebuilt.bridge
    assert host_ping(guest_address, rebuilt.bridge or "")


# --- External -----------------------------------------------------------------------------------


@pytest.fixture
def outside(server: Server) -> Iterator[Callable[[str], OutsideNetwork]]:
    """Factory of outside networks (veth pair + namespace, the host end with an address)."""
    before = our_networks()
    made: list[OutsideNetwork] = []

    def make(short: str) -> OutsideNetwork:
        made.append(make_outside_network(short, host_address=True))
        return made[-1]

    yield make
    remove_switches_made_since(server.conn, before)
    for network in made:
        remove_outside_network(network)


def test_external_shared_guest_reaches_the_outside_and_the_host_reaches_it(
    server: Server, outside: Callable[[str], OutsideNetwork], guests: Guests
) -> None:
    network = outside("tes")
    guest_address = host_in(network.subnet, 7, False)
    name = switch_name("tes")
    switch = switches.create_switch(
        server.conn, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=network.adapter)
    )
    guest = guests.boot("ext-shared", name, f"hvtest.ip={guest_address}/24 hvtest.ping={network.far_address}")
    guest.wait_ping(network.far_address)
    assert master_of(tap_of(guest)) == switch.bridge == external_bridge.bridge_name(network.adapter)
    assert host_ping(guest_address, switch.bridge or "")  # the management OS shares the adapter


def test_external_not_shared_host_cannot_reach_the_guest_until_sharing_is_on(
    server: Server, outside: Callable[[str], OutsideNetwork], guests: Guests
) -> None:
    network = outside("tem")
    guest_address = host_in(network.subnet, 7, False)
    name = switch_name("tem")
    spec = SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=network.adapter, share_with_host=False)
    switches.create_switch(server.conn, spec)
    options = f"hvtest.ip={guest_address}/24 hvtest.ping={network.far_address} hvtest.watchnet"
    guest = guests.boot("ext-macvtap", name, options)
    guest.wait_ping(network.far_address)
    device = tap_of(guest)
    assert link_info(device)["linkinfo"]["info_kind"] == "macvtap"
    assert host_ping(network.far_address, network.adapter)  # the host's own path out works ...
    assert not host_ping(guest_address, network.adapter)  # ... but a macvtap guest is out of its reach
    # Sharing on: the adapter moves onto a host bridge and the running guest's adapter is plugged
    # into it (the guest sees it removed and added, with the same MAC).
    offset = len(serial_text(guest.serial_log))
    shared = switches.set_switch(
        server.conn, name, SwitchSpec(name, SwitchType.EXTERNAL, host_adapter=network.adapter)
    )
    assert master_of(tap_of(guest)) == shared.bridge == external_bridge.bridge_name(network.adapter)
    wait_serial(guest.serial_log, "HVTEST: net\n", timeout=30, after=offset)
    wait_serial(guest.serial_log, f"={guest.mac}/", timeout=30, after=offset + 1)


# --- NAT ----------------------------------------------------------------------------------------


def test_nat_guest_reaches_a_routed_network_through_masquerading(
    server: Server, ip_forward: str, outside: Callable[[str], OutsideNetwork], guests: Guests
) -> None:
    network = outside("tnt")  # x.1 on the host's veth end, x.2 in the namespace
    routes = run("ip", "-n", network.netns, "-4", "route", "show").stdout
    assert "default" not in routes  # the namespace knows only its own subnet: no way back to the NAT one
    nat_subnet = free_subnet()
    name = switch_name("tnt")
    switch = switches.create_switch(
        server.conn, SwitchSpec(name, SwitchType.NAT, host_address=host_in(nat_subnet, 1))
    )
    # The test guest has no gateway option: it takes a /8 so the outside address is on-link for it,
    # and the host answers its ARP for it on the NAT bridge (proxy ARP on our own test bridge).
    Path(f"/proc/sys/net/ipv4/conf/{switch.bridge}/proxy_arp").write_text("1\n", encoding="ascii")
    guest_address = host_in(nat_subnet, 9, False)
    guest = guests.boot("nat", name, f"hvtest.ip={guest_address}/8 hvtest.ping={network.far_address}")
    guest.wait_ping(network.far_address)
    # Without masquerading the namespace could not answer: it has no route to the guest's subnet.
    unreachable = run("ip", "netns", "exec", network.netns, "busybox", "ping", "-c", "1", "-W", "1",
                      guest_address, check=False)  # fmt: skip
    assert unreachable.returncode != 0
