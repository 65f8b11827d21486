"""Edits of a whole domain XML for network adapters: add, remove or change one adapter together
with its entry in the adapters' ``<metadata>`` (text in, text out; no libvirt).

The persistent configuration of a VM is changed this way, whether it runs or not, and defined in
one call, so it is either all changed or not at all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from copy import deepcopy

import defusedxml.ElementTree as SafeET

from hvmanager.backend import nic_xml
from hvmanager.backend.network_models import AdapterSpec
from hvmanager.backend.nic_xml import AdapterExtras


def read_adapters(xml: str) -> tuple[AdapterSpec, ...]:
    """The adapters of a domain XML, in device order."""
    return nic_xml.read_adapters(SafeET.fromstring(xml))


def _devices(root: ET.Element) -> ET.Element:
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    return devices


def _element_of(root: ET.Element, mac: str) -> ET.Element:
    element = nic_xml.find_interface(root, mac)
    if element is None:
        raise KeyError(mac)
    return element


def with_added(xml: str, spec: AdapterSpec, floor: bool, address: ET.Element | None = None) -> str:
    """The domain XML with a new adapter (``spec.mac`` set) after the last one it has; ``address``
    puts it at that PCI address (the one it got in the running VM)."""
    assert spec.mac, "a new adapter's MAC address is chosen before it is added"
    root = SafeET.fromstring(xml)
    devices = _devices(root)
    element = nic_xml.new_interface(spec, floor)
    if address is not None:
        element.append(deepcopy(address))
    existing = nic_xml.interfaces(root)
    position = list(devices).index(existing[-1]) + 1 if existing else len(devices)
    devices.insert(position, element)
    extras = nic_xml.read_extras(root)
    extras[spec.mac] = AdapterExtras.of(spec)
    nic_xml.write_extras(root, extras)
    return ET.tostring(root, encoding="unicode")


def with_removed(xml: str, mac: str) -> str:
    """The domain XML without the adapter with this MAC address (KeyError when it has none)."""
    root = SafeET.fromstring(xml)
    _devices(root).remove(_element_of(root, mac))
    extras = nic_xml.read_extras(root)
    extras.pop(mac.lower(), None)
    nic_xml.write_extras(root, extras)
    return ET.tostring(root, encoding="unicode")


def with_changed(xml: str, mac: str, spec: AdapterSpec, floor: bool, live_disconnect: bool = False) -> str:
    """The domain XML with the adapter ``mac`` set to ``spec`` (a new ``spec.mac`` changes its
    address; None keeps it). KeyError when it has no such adapter."""
    root = SafeET.fromstring(xml)
    nic_xml.apply_spec(_element_of(root, mac), spec, floor, live_disconnect)
    extras = nic_xml.read_extras(root)
    extras.pop(mac.lower(), None)
    extras[(spec.mac or mac).lower()] = AdapterExtras.of(spec)
    nic_xml.write_extras(root, extras)
    return ET.tostring(root, encoding="unicode")


def interface_xml(xml: str, mac: str) -> str | None:
    """The ``<interface>`` of this MAC address as device XML (for attach/detach/update), or None."""
    element = nic_xml.find_interface(SafeET.fromstring(xml), mac)
    return nic_xml.device_xml(element) if element is not None else None


def changed_interface_xml(
    xml: str, mac: str, spec: AdapterSpec, floor: bool, live_disconnect: bool = False
) -> str | None:
    """The ``<interface>`` of this MAC address set to ``spec``, as device XML, or None."""
    element = nic_xml.find_interface(SafeET.fromstring(xml), mac)
    if element is None:
        return None
    nic_xml.apply_spec(element, spec, floor, live_disconnect)
    return nic_xml.device_xml(element)


def interface_address(xml: str, mac: str) -> ET.Element | None:
    """The PCI ``<address>`` of the adapter with this MAC address."""
    element = nic_xml.find_interface(SafeET.fromstring(xml), mac)
    address = element.find("address") if element is not None else None
    return address if address is not None and address.get("type") == "pci" else None


def interface_type(xml: str, mac: str) -> str | None:
    """The libvirt type (``network``, ``user``, ...) of the adapter with this MAC address."""
    element = nic_xml.find_interface(SafeET.fromstring(xml), mac)
    return element.get("type") if element is not None else None


def extras_of(xml: str) -> dict[str, AdapterExtras]:
    """The adapters' metadata of a domain XML."""
    return nic_xml.read_extras(SafeET.fromstring(xml))


def with_extras(xml: str, extras: dict[str, AdapterExtras]) -> str:
    """The domain XML with these adapters' metadata entries added (or replaced)."""
    root = SafeET.fromstring(xml)
    nic_xml.write_extras(root, nic_xml.read_extras(root) | extras)
    return ET.tostring(root, encoding="unicode")
