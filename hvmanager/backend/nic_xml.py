"""A VM network adapter (``AdapterSpec``) as a libvirt ``<interface>`` element, and back.

- Connected to a switch: ``type='network'`` with ``<source network='<switch>'/>``.
- "Not connected" in the persistent configuration: ``type='user'`` with ``<link state='down'/>``
  (domxml's convention: an adapter that reaches nothing on the host). A *running* VM's adapter is
  disconnected by taking its link down and keeping its source (``live_disconnect``), because
  libvirt can re-point a ``network`` interface live but can't turn a ``user`` one into it.
- Synthetic adapter: model ``virtio``; legacy adapter (Generation 1): ``tulip``, QEMU's DEC 21140.
- VMQ with N > 1 queues: virtio-net multiqueue, ``<driver queues='N'/>`` (libvirt opens N tap
  queues; the guest uses as many queue pairs as it has processors). No driver name is forced:
  libvirt uses vhost-net where the host has ``/dev/vhost-net`` and falls back to QEMU's own
  virtio-net, multiqueue included, where it has not (as on these machines).
- Maximum bandwidth: ``<bandwidth>`` inbound and outbound ``average``; minimum bandwidth: the
  inbound ``floor`` (only on a network that has an inbound ``<bandwidth>`` itself).
  libvirt's unit is "kilobytes per second" and reaches tc as ``kbps``, which tc reads as
  1000 bytes/s, so 1 Mbit/s is exactly 125 of them.
- VLAN ID: ``<vlan><tag id='N'/></vlan>``.

What libvirt has no place for (the adapter's name, whether its MAC is dynamic, VMQ on with one
queue, the minimum bandwidth while not connected) is kept in the domain's ``<metadata>`` under
``ADAPTER_NAMESPACE``, one ``<adapter>`` per MAC address. Elements are edited in place, so settings
hvmanager does not know (boot order, ROM, filters) survive.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from copy import deepcopy
from dataclasses import dataclass

from hvmanager.backend.network_models import (
    ADAPTER_NAMESPACE,
    LEGACY_ADAPTER_NAME,
    SYNTHETIC_ADAPTER_NAME,
    AdapterSpec,
)

ADAPTER_PREFIX = "hvnet"
ET.register_namespace(ADAPTER_PREFIX, ADAPTER_NAMESPACE)

KBYTES_PER_MBPS = 125  # libvirt "kilobytes"/s as tc applies them (1000 bytes) per Mbit/s
SYNTHETIC_MODEL = "virtio"
LEGACY_MODEL = "tulip"
_LIVE_SOURCE_ATTRIBUTES = ("portid", "bridge")  # written by libvirt into the running XML only
# Interface types libvirt can move to another switch (bridge) in place while the VM runs.
LIVE_SWITCHABLE_TYPES = ("network", "bridge")


def _ns(tag: str) -> str:
    return f"{{{ADAPTER_NAMESPACE}}}{tag}"


@dataclass(frozen=True)
class AdapterExtras:
    """The Hyper-V settings of one adapter that libvirt's ``<interface>`` can't hold."""

    name: str
    dynamic_mac: bool
    vmq: bool
    minimum_mbps: int = 0

    @staticmethod
    def of(spec: AdapterSpec) -> AdapterExtras:
        """The extras of an adapter."""
        return AdapterExtras(spec.name, spec.dynamic_mac, spec.vmq, spec.minimum_mbps)


def normalized(spec: AdapterSpec) -> AdapterSpec:
    """The spec as it reads back from XML: no queues without VMQ, no VMQ on a legacy adapter."""
    vmq = spec.vmq and not spec.legacy
    queues = spec.queues if vmq else 1
    if (vmq, queues) == (spec.vmq, spec.queues):
        return spec
    return AdapterSpec(
        switch=spec.switch, mac=spec.mac, dynamic_mac=spec.dynamic_mac, legacy=spec.legacy, vmq=vmq,
        queues=queues, minimum_mbps=spec.minimum_mbps, maximum_mbps=spec.maximum_mbps,
        vlan_id=spec.vlan_id, name=spec.name,
    )  # fmt: skip


# --- metadata -----------------------------------------------------------------------------------


def read_extras(root: ET.Element) -> dict[str, AdapterExtras]:
    """The adapters' extras in a domain XML's ``<metadata>``, by MAC address."""
    found: dict[str, AdapterExtras] = {}
    for entry in root.findall(f"metadata/{_ns('adapters')}/{_ns('adapter')}"):
        mac = entry.get("mac", "").lower()
        minimum = entry.get("minimum-mbps", "0")
        found[mac] = AdapterExtras(
            name=entry.get("name", ""),
            dynamic_mac=entry.get("dynamic-mac") == "yes",
            vmq=entry.get("vmq") == "yes",
            minimum_mbps=int(minimum) if minimum.isdigit() else 0,
        )
    return found


def extras_element(extras: dict[str, AdapterExtras]) -> ET.Element:
    """The ``<adapters>`` metadata element for these extras (sorted by MAC, for stable XML)."""
    adapters = ET.Element(_ns("adapters"))
    for mac in sorted(extras):
        entry = extras[mac]
        ET.SubElement(
            adapters,
            _ns("adapter"),
            {
                "mac": mac,
                "name": entry.name,
                "dynamic-mac": "yes" if entry.dynamic_mac else "no",
                "vmq": "yes" if entry.vmq else "no",
                "minimum-mbps": str(entry.minimum_mbps),
            },
        )
    return adapters


def extras_xml(extras: dict[str, AdapterExtras]) -> str:
    """The metadata element as text, for ``virDomainSetMetadata``: in the namespace as the default
    one (libvirt puts it under its own prefix and fails to declare a prefix the element has)."""
    element = extras_element(extras)
    for node in element.iter():
        node.tag = node.tag.removeprefix(f"{{{ADAPTER_NAMESPACE}}}")
    element.set("xmlns", ADAPTER_NAMESPACE)  # ElementTree's default_namespace refuses attributes
    return ET.tostring(element, encoding="unicode")


def write_extras(root: ET.Element, extras: dict[str, AdapterExtras]) -> None:
    """Replace the adapters' extras in a domain XML's ``<metadata>``."""
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        name = root.find("name")
        root.insert(list(root).index(name) + 1 if name is not None else 0, metadata)
    for old in metadata.findall(_ns("adapters")):
        metadata.remove(old)
    metadata.append(extras_element(extras))


# --- reading ------------------------------------------------------------------------------------


def interfaces(root: ET.Element) -> list[ET.Element]:
    """The ``<interface>`` elements of a domain XML."""
    return root.findall("devices/interface")


def interface_mac(element: ET.Element) -> str:
    """An interface's MAC address (lower case; empty when it has none)."""
    mac = element.find("mac")
    return mac.get("address", "").lower() if mac is not None else ""


def find_interface(root: ET.Element, mac: str) -> ET.Element | None:
    """The interface with this MAC address."""
    return next((e for e in interfaces(root) if interface_mac(e) == mac.lower()), None)


def link_up(element: ET.Element) -> bool:
    """Whether the interface's link is up (libvirt's default)."""
    link = element.find("link")
    return link is None or link.get("state", "up") != "down"


def connected_switch(element: ET.Element) -> str | None:
    """The switch (libvirt network, or bridge/device for foreign VMs) the interface is on; None when
    it is not connected (``user`` networking or link down)."""
    source = element.find("source")
    if source is None or element.get("type") == "user" or not link_up(element):
        return None
    return source.get("network") or source.get("bridge") or source.get("dev")


def _kbytes_to_mbps(value: str | None) -> int:
    return round(int(value) / KBYTES_PER_MBPS) if value and value.isdigit() else 0


def read_adapter(element: ET.Element, extras: AdapterExtras | None) -> AdapterSpec:
    """The adapter an ``<interface>`` element describes."""
    model = element.find("model")
    legacy = (model.get("type", SYNTHETIC_MODEL) if model is not None else SYNTHETIC_MODEL) != SYNTHETIC_MODEL
    driver = element.find("driver")
    queues_text = driver.get("queues", "1") if driver is not None else "1"
    queues = int(queues_text) if queues_text.isdigit() and int(queues_text) > 0 else 1
    inbound = element.find("bandwidth/inbound")
    tag = element.find("vlan/tag")
    vlan = tag.get("id", "") if tag is not None else ""
    floor = _kbytes_to_mbps(inbound.get("floor")) if inbound is not None else 0
    return AdapterSpec(
        switch=connected_switch(element),
        mac=interface_mac(element) or None,
        dynamic_mac=extras.dynamic_mac if extras else False,
        legacy=legacy,
        vmq=extras.vmq if extras else queues > 1,
        queues=queues,
        minimum_mbps=extras.minimum_mbps if extras else floor,
        maximum_mbps=_kbytes_to_mbps(inbound.get("average")) if inbound is not None else 0,
        vlan_id=int(vlan) if vlan.isdigit() else None,
        name=(extras.name if extras and extras.name else None)
        or (LEGACY_ADAPTER_NAME if legacy else SYNTHETIC_ADAPTER_NAME),
    )


def read_adapters(root: ET.Element) -> tuple[AdapterSpec, ...]:
    """Every adapter of a (parsed) domain XML, in device order."""
    extras = read_extras(root)
    return tuple(read_adapter(e, extras.get(interface_mac(e))) for e in interfaces(root))


# --- writing ------------------------------------------------------------------------------------


def _replace(element: ET.Element, tag: str) -> ET.Element:
    for old in element.findall(tag):
        element.remove(old)
    return ET.SubElement(element, tag)


def _remove(element: ET.Element, tag: str) -> None:
    for old in element.findall(tag):
        element.remove(old)


def _set_connection(element: ET.Element, switch: str | None, live_disconnect: bool) -> None:
    if switch is not None:
        element.set("type", "network")
        _replace(element, "source").set("network", switch)
        _remove(element, "link")
    elif live_disconnect and element.get("type") in LIVE_SWITCHABLE_TYPES:
        _replace(element, "link").set("state", "down")  # the source stays: device_xml cleans it
    else:
        element.set("type", "user")
        _remove(element, "source")
        _replace(element, "link").set("state", "down")


def _set_model(element: ET.Element, spec: AdapterSpec) -> None:
    model = element.find("model")
    current = model.get("type", SYNTHETIC_MODEL) if model is not None else SYNTHETIC_MODEL
    if spec.legacy == (current != SYNTHETIC_MODEL) and model is not None:
        return  # keeps an emulated model it already has (e1000 of a foreign VM, say)
    _replace(element, "model").set("type", LEGACY_MODEL if spec.legacy else SYNTHETIC_MODEL)
    driver = element.find("driver")
    if spec.legacy and driver is not None:
        element.remove(driver)  # virtio-only attributes


def _set_queues(element: ET.Element, spec: AdapterSpec) -> None:
    if spec.legacy:
        return
    driver = element.find("driver")
    if spec.vmq and spec.queues > 1:
        if driver is None:
            driver = ET.SubElement(element, "driver")
        driver.set("queues", str(spec.queues))
    elif driver is not None:
        driver.attrib.pop("queues", None)
        if not driver.attrib and not list(driver):
            element.remove(driver)


def _set_bandwidth(element: ET.Element, spec: AdapterSpec, floor: bool) -> None:
    _remove(element, "bandwidth")
    minimum = spec.minimum_mbps if floor and spec.switch is not None else 0
    if not (spec.maximum_mbps or minimum):
        return
    bandwidth = ET.SubElement(element, "bandwidth")
    inbound = ET.SubElement(bandwidth, "inbound")
    if spec.maximum_mbps:
        average = str(spec.maximum_mbps * KBYTES_PER_MBPS)
        inbound.set("average", average)
        ET.SubElement(bandwidth, "outbound", average=average)
    if minimum:
        inbound.set("floor", str(minimum * KBYTES_PER_MBPS))


def _set_vlan(element: ET.Element, vlan_id: int | None) -> None:
    _remove(element, "vlan")
    if vlan_id is not None:
        ET.SubElement(ET.SubElement(element, "vlan"), "tag", id=str(vlan_id))


def apply_spec(element: ET.Element, spec: AdapterSpec, floor: bool, live_disconnect: bool = False) -> None:
    """Make an ``<interface>`` element say ``spec`` (its MAC, PCI address and anything else it has
    stay). ``floor``: the switch guarantees minimum bandwidth, so ``minimum_mbps`` becomes an
    inbound floor. ``live_disconnect``: "Not connected" for a running VM (link down, source kept)."""
    if spec.mac:
        mac = element.find("mac")
        if mac is None:
            mac = ET.Element("mac")
            element.insert(0, mac)
        mac.set("address", spec.mac)
    _set_connection(element, spec.switch, live_disconnect)
    _set_model(element, spec)
    _set_queues(element, spec)
    _set_bandwidth(element, spec, floor)
    _set_vlan(element, spec.vlan_id)


def new_interface(spec: AdapterSpec, floor: bool) -> ET.Element:
    """A new ``<interface>`` element for an adapter (whose MAC address is known)."""
    element = ET.Element("interface", type="network")
    apply_spec(element, spec, floor)
    return element


def device_xml(element: ET.Element) -> str:
    """An interface element as text for attach/detach/update calls, without the names libvirt gives
    a running device (tap name, alias, network port), which it would refuse or mismatch."""
    copy = deepcopy(element)
    _remove(copy, "alias")
    target = copy.find("target")
    if target is not None and target.get("dev", "").startswith(("vnet", "macvtap")):
        copy.remove(target)
    source = copy.find("source")
    if source is not None and copy.get("type") == "network":
        for attribute in _LIVE_SOURCE_ATTRIBUTES:
            source.attrib.pop(attribute, None)
    return ET.tostring(copy, encoding="unicode")
