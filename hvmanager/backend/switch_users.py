"""Which VMs use a virtual switch, and keeping them connected (or not) while the switch changes.

A VM uses a switch when one of its network adapters names the switch's libvirt network, in its
persistent configuration or in the running VM, and is connected (not user networking, link up).
Re-pointing and disconnecting adapters goes through :func:`vm_network.connect_adapter` (live and
config). :func:`reattach_taps` does what libvirt does for running VMs when its daemon restarts: a
network that was stopped and started again has a new bridge, and the running VMs' taps are put
back on it. :func:`unplug` and :func:`plug` take running adapters out and in again around a change
of their device's kind (a tap on a bridge <-> macvtap), which libvirt cannot make in place.
"""

from __future__ import annotations

import copy
import logging
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from hvmanager.backend import external_bridge
from hvmanager.backend.connection import libvirt_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SwitchUser:
    """One VM adapter on a switch: the VM, the adapter's MAC and, while it runs, its host device."""

    dom: Any
    vm_name: str
    mac: str
    device: str | None


def _connected(interface: ET.Element) -> bool:
    # "Not connected" is user networking, or (live) a link taken down that keeps its old source.
    link = interface.find("link")
    return interface.get("type") != "user" and (link is None or link.get("state", "up") != "down")


def _adapters_on(xml: str, network: str) -> list[tuple[str, str | None]]:
    found = []
    for interface in SafeET.fromstring(xml).iter("interface"):
        source, mac = interface.find("source"), interface.find("mac")
        if source is None or mac is None or source.get("network") != network or not _connected(interface):
            continue
        target = interface.find("target")
        found.append((mac.get("address", "").lower(), target.get("dev") if target is not None else None))
    return found


def _users_of(dom: Any, network: str) -> list[SwitchUser]:
    name = dom.name()
    users: dict[str, SwitchUser] = {}
    if dom.isActive():
        for mac, device in _adapters_on(dom.XMLDesc(0), network):
            users[mac] = SwitchUser(dom, name, mac, device)
    if dom.isPersistent():
        for mac, _device in _adapters_on(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), network):
            users.setdefault(mac, SwitchUser(dom, name, mac, None))
    return list(users.values())


def users_of_switch(conn: Any, network: str) -> list[SwitchUser]:
    """Every VM adapter connected to the switch, in the server's VM order."""
    users = []
    with libvirt_errors(f"Listing the virtual machines on the switch '{network}'"):
        for dom in conn.listAllDomains(0):
            try:
                users += _users_of(dom, network)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise  # a VM deleted meanwhile uses nothing
    return users


def switch_users(conn: Any, name: str) -> list[tuple[str, str]]:
    """(VM name, adapter MAC) of every adapter connected to the switch ``name``."""
    return [(user.vm_name, user.mac) for user in users_of_switch(conn, name)]


def vm_names(users: list[SwitchUser]) -> list[str]:
    """The VMs among ``users``, each once, in order."""
    return list(dict.fromkeys(user.vm_name for user in users))


def connect_each(conn: Any, users: list[SwitchUser], switch: str | None, done: list[SwitchUser]) -> None:
    """Connect every adapter in ``users`` to ``switch`` (None: "Not connected"), live and config.

    Each adapter is appended to ``done`` once connected, so the caller can put exactly those back
    (:func:`connect_back`) when this or a later step fails.
    """
    if not users:
        return
    from hvmanager.backend.vm_network import connect_adapter  # (it reads switches: no import cycle)

    for user in users:
        connect_adapter(conn, user.dom, user.mac, switch)
        done.append(user)


def connect_back(conn: Any, done: list[SwitchUser], switch: str | None) -> None:
    """Best-effort undo of :func:`connect_each`: those adapters back on ``switch``."""
    if not done:
        return
    from hvmanager.backend.vm_network import connect_adapter

    for user in reversed(done):
        try:
            connect_adapter(conn, user.dom, user.mac, switch)
        except Exception:  # the others must still be tried; the first error is what the user sees
            log.exception("Putting the adapter %s of %s back on '%s' failed", user.mac, user.vm_name, switch)
    done.clear()


def reattach_taps(users: list[SwitchUser], bridge: str) -> None:
    """Put the running VMs' taps back on ``bridge`` (after their network was restarted)."""
    for user in users:
        if user.device:
            external_bridge.enslave(user.device, bridge)


_DETACH_TIMEOUT = 15.0
_LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


@dataclass(frozen=True)
class Unplugged:
    """A running VM's adapter taken out, with the interface to plug in again (``{network}`` to fill)."""

    user: SwitchUser
    interface: ET.Element


def _live_interface(dom: Any, mac: str) -> ET.Element | None:
    root: ET.Element = SafeET.fromstring(dom.XMLDesc(0))
    for interface in root.iter("interface"):
        found = interface.find("mac")
        if found is not None and found.get("address", "").lower() == mac:
            return interface
    return None


def _plug_xml(interface: ET.Element, network: str) -> str:
    """The interface as it is plugged in again: same MAC, model and PCI address, on ``network``
    (libvirt picks the tap or macvtap device anew)."""
    fresh = copy.deepcopy(interface)
    for tag in ("target", "alias", "source"):
        for child in fresh.findall(tag):
            fresh.remove(child)
    fresh.set("type", "network")
    fresh.insert(0, ET.Element("source", network=network))
    return ET.tostring(fresh, encoding="unicode")


def _detach(dom: Any, mac: str, interface: ET.Element) -> None:
    dom.detachDeviceFlags(ET.tostring(interface, encoding="unicode"), _LIVE)
    deadline = time.monotonic() + _DETACH_TIMEOUT
    while _live_interface(dom, mac) is not None and time.monotonic() < deadline:
        time.sleep(0.1)  # the guest acknowledges the unplug asynchronously


def unplug(users: list[SwitchUser], done: list[Unplugged]) -> None:
    """Take the running VMs' adapters out (appending each to ``done``), before their switch turns
    from a bridge into a macvtap binding or back (or moves to another adapter): libvirt can't change
    the kind of a running interface, and an adapter with macvtap devices can't join a bridge."""
    for user in users:
        interface = _live_interface(user.dom, user.mac)
        if interface is None:
            continue
        with libvirt_errors(f"Unplugging the network adapter {user.mac} of '{user.vm_name}'"):
            _detach(user.dom, user.mac, interface)
        done.append(Unplugged(user, interface))


def plug(unplugged: list[Unplugged], network: str, done: list[Unplugged]) -> None:
    """Plug the adapters in again on ``network`` (same MAC and PCI slot; the guest sees them
    removed and added), appending each to ``done``."""
    for item in unplugged:
        user = item.user
        with libvirt_errors(f"Plugging in the network adapter {user.mac} of '{user.vm_name}'"):
            user.dom.attachDeviceFlags(_plug_xml(item.interface, network), _LIVE)
        done.append(item)


def unplug_again(plugged: list[Unplugged]) -> None:
    """Best-effort undo of :func:`plug`."""
    for item in reversed(plugged):
        try:
            interface = _live_interface(item.user.dom, item.user.mac)
            if interface is not None:
                _detach(item.user.dom, item.user.mac, interface)
        except Exception:  # the others must still be tried; the first error is what the user sees
            log.exception("Unplugging the adapter %s of %s failed", item.user.mac, item.user.vm_name)
    plugged.clear()


def plug_back(unplugged: list[Unplugged], network: str) -> None:
    """Best-effort: plug the adapters in again on their old ``network`` (once it is back)."""
    for item in unplugged:
        try:
            plug([item], network, [])
        except Exception:  # the others must still be tried
            log.exception("Plugging the adapter %s of %s back in failed", item.user.mac, item.user.vm_name)
    unplugged.clear()
