"""A virtual switch as libvirt network XML, and back.

hvmanager's facts that libvirt's network XML cannot say (the Hyper-V type, notes, the host adapter
and whether the host shares it, the management OS's VLAN, the bandwidth mode) live in the network's
``<metadata>`` in :data:`SWITCH_NAMESPACE`. A network hvmanager did not make has no such metadata;
its type is inferred: no ``<forward>`` and no ``<ip>`` is Private, an ``<ip>`` without forwarding is
Internal, NAT (or routed/open) forwarding is NAT, bridge/macvtap/hostdev forwarding is External.

Editing keeps what the user's spec does not speak about: the UUID, the bridge name and MAC of a
bridge libvirt makes, DNS and other settings, IPv6 addresses and a DHCP section whose address is
unchanged. All parsing goes through defusedxml.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET

from hvmanager.backend.network_models import SWITCH_NAMESPACE, SwitchInfo, SwitchSpec, SwitchType

_HV = f"{{{SWITCH_NAMESPACE}}}"
ET.register_namespace("hvswitch", SWITCH_NAMESPACE)

# Elements the spec decides; anything else at the top level of an edited network is kept.
_OWNED = {"name", "uuid", "metadata", "forward", "bridge", "ip", "bandwidth", "mac", "title", "description"}
_BRIDGE_MAKING = {SwitchType.PRIVATE, SwitchType.INTERNAL, SwitchType.NAT}
_EXTERNAL_MODES = {"bridge", "private", "vepa", "passthrough", "hostdev"}
# Room a minimum-bandwidth switch offers adapters' reservations: 10 Gbit/s, in libvirt's KiB/s.
SWITCH_CAPACITY_KIB = 1_250_000


@dataclass(frozen=True)
class HostBridge:
    """The host bridge a shared External switch made: its adapter, and whether that was up."""

    bridge: str
    adapter: str
    adapter_was_up: bool


def normalized(spec: SwitchSpec) -> SwitchSpec:
    """The spec without the fields its type ignores (NAT always has DHCP)."""
    external = spec.type is SwitchType.EXTERNAL
    addressed = spec.type in (SwitchType.INTERNAL, SwitchType.NAT)
    return SwitchSpec(
        name=spec.name,
        type=spec.type,
        notes=spec.notes,
        host_adapter=spec.host_adapter if external else None,
        share_with_host=spec.share_with_host if external else True,
        host_address=spec.host_address if addressed else None,
        dhcp=spec.type is SwitchType.NAT or (spec.dhcp and addressed),
        vlan_id=spec.vlan_id,
        minimum_bandwidth=spec.minimum_bandwidth,
    )


def dhcp_range(host_address: str) -> tuple[str, str]:
    """The DHCP range of a switch: the half of its subnet the host's own address is not in."""
    interface = ipaddress.IPv4Interface(host_address)
    network = interface.network
    first, last = network.network_address + 1, network.broadcast_address - 1
    half = (int(last) - int(first) + 1) // 2
    if interface.ip < first + half:
        return str(first + half), str(last)
    return str(first), str(first + half - 1)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _metadata(root: ET.Element, spec: SwitchSpec, host_bridge: HostBridge | None) -> None:
    info = _sub(_sub(root, "metadata"), f"{_HV}switch")
    _sub(info, f"{_HV}type", spec.type.value)
    if spec.notes:
        _sub(info, f"{_HV}notes", spec.notes)
    if spec.type is SwitchType.EXTERNAL and spec.host_adapter:
        shared = {"share": "yes" if spec.share_with_host else "no"}
        if host_bridge is not None:
            shared["adapter-was-up"] = "yes" if host_bridge.adapter_was_up else "no"
        _sub(info, f"{_HV}host-adapter", spec.host_adapter, **shared)
    if spec.vlan_id is not None:
        _sub(info, f"{_HV}vlan", str(spec.vlan_id))
    if spec.minimum_bandwidth:
        _sub(info, f"{_HV}minimum-bandwidth")


def _address(root: ET.Element, spec: SwitchSpec, old_ip: ET.Element | None) -> None:
    assert spec.host_address is not None
    interface = ipaddress.IPv4Interface(spec.host_address)
    ip = _sub(root, "ip", address=str(interface.ip), prefix=str(interface.network.prefixlen))
    if not spec.dhcp:
        return
    old_dhcp = old_ip.find("dhcp") if old_ip is not None else None
    same_address = old_ip is not None and _ip_text(old_ip) == spec.host_address
    if old_dhcp is not None and same_address:
        ip.append(old_dhcp)  # keeps its reservations and the range the user may have tuned
        return
    start, end = dhcp_range(spec.host_address)
    _sub(_sub(ip, "dhcp"), "range", start=start, end=end)


def _forward(root: ET.Element, spec: SwitchSpec, bridge: str | None) -> None:
    if spec.type is SwitchType.NAT:
        _sub(root, "forward", mode="nat")
    elif spec.type is SwitchType.EXTERNAL:
        forward = _sub(root, "forward", mode="bridge")
        if spec.share_with_host:
            _sub(root, "bridge", name=bridge or "")
        else:
            _sub(forward, "interface", dev=spec.host_adapter or "")
    if spec.type in _BRIDGE_MAKING:
        attrs = {"name": bridge} if bridge else {}
        _sub(root, "bridge", stp="off", delay="0", **attrs)


def network_xml(
    spec: SwitchSpec, bridge: str | None = None, old_xml: str | None = None,
    host_bridge: HostBridge | None = None,
) -> str:  # fmt: skip
    """The libvirt network XML of ``spec``.

    ``bridge`` is the host bridge of a shared External switch (hvmanager makes it), or the name to
    keep for a bridge libvirt makes (None lets libvirt choose). ``old_xml`` is the network being
    edited: its UUID and the settings the spec does not cover are kept.
    """
    spec = normalized(spec)
    old = SafeET.fromstring(old_xml) if old_xml else None
    root = ET.Element("network")
    _sub(root, "name", spec.name)
    if old is not None and old.findtext("uuid"):
        _sub(root, "uuid", old.findtext("uuid"))
    _metadata(root, spec, host_bridge)
    _forward(root, spec, bridge)
    old_type = parse_network(old_xml).spec.type if old_xml else None
    if old is not None and old_type in _BRIDGE_MAKING and spec.type in _BRIDGE_MAKING:
        mac = old.find("mac")
        if mac is not None:
            root.append(mac)
    if spec.minimum_bandwidth and spec.type in _BRIDGE_MAKING:
        bandwidth = _sub(root, "bandwidth")
        _sub(bandwidth, "inbound", average=str(SWITCH_CAPACITY_KIB))
        _sub(bandwidth, "outbound", average=str(SWITCH_CAPACITY_KIB))
    if spec.host_address is not None:
        _address(root, spec, _ipv4(old) if old is not None else None)
    if old is not None and old_type is spec.type:
        _keep_unowned(root, old)
    return ET.tostring(root, encoding="unicode")


def with_metadata(old_xml: str, spec: SwitchSpec, host_bridge: HostBridge | None) -> str:
    """``old_xml`` with only hvmanager's metadata replaced by ``spec``'s (a notes-only change):
    everything else, including what hvmanager would write differently, is kept as it is."""
    old = SafeET.fromstring(old_xml)
    fresh = ET.Element("network")
    _metadata(fresh, spec, host_bridge)
    metadata = old.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        old.insert(0, metadata)
    for stale in metadata.findall(f"{_HV}switch"):
        metadata.remove(stale)
    metadata.extend(fresh.findall(f"metadata/{_HV}switch"))
    return ET.tostring(old, encoding="unicode")


def _keep_unowned(root: ET.Element, old: ET.Element) -> None:
    """Keep what the spec does not cover (DNS, MTU, port groups, IPv6 addresses) of a network whose
    type stays the same; a new type starts afresh, as those settings may not apply to it."""
    for child in old:
        if child.tag not in _OWNED or (child.tag == "ip" and child.get("family") == "ipv6"):
            root.append(child)


def _ipv4(root: ET.Element) -> ET.Element | None:
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") == "ipv4" and ip.get("address"):
            return ip
    return None


def _ip_text(ip: ET.Element) -> str | None:
    address, prefix, netmask = ip.get("address"), ip.get("prefix"), ip.get("netmask")
    if address is None:
        return None
    if prefix is None and netmask is not None:
        prefix = str(ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen)
    return f"{address}/{prefix}" if prefix is not None else address


def _inferred_type(root: ET.Element) -> SwitchType:
    forward = root.find("forward")
    if forward is None:
        return SwitchType.INTERNAL if _ipv4(root) is not None else SwitchType.PRIVATE
    return SwitchType.EXTERNAL if forward.get("mode", "nat") in _EXTERNAL_MODES else SwitchType.NAT


def _inferred_adapter(root: ET.Element) -> str | None:
    forward = root.find("forward")
    if forward is None:
        return None
    interface = forward.find("interface")
    return forward.get("dev") or (interface.get("dev") if interface is not None else None)


def _type_of(text: str | None, root: ET.Element) -> SwitchType:
    try:
        return SwitchType(text)
    except ValueError:
        return _inferred_type(root)


def parse_network(xml: str, active: bool = False) -> SwitchInfo:
    """The switch a libvirt network XML describes."""
    root = SafeET.fromstring(xml)
    info = root.find(f"metadata/{_HV}switch")
    managed = info is not None
    kind = _type_of(info.findtext(f"{_HV}type") if info is not None else None, root)
    adapter_element = info.find(f"{_HV}host-adapter") if info is not None else None
    ip = _ipv4(root)
    vlan_text = info.findtext(f"{_HV}vlan") if info is not None else None
    bridge = root.find("bridge")
    spec = SwitchSpec(
        name=root.findtext("name", ""),
        type=kind,
        notes=(info.findtext(f"{_HV}notes") or "") if info is not None else "",
        host_adapter=adapter_element.text if adapter_element is not None else _inferred_adapter(root),
        share_with_host=(
            adapter_element.get("share", "yes") == "yes" if adapter_element is not None
            else bridge is not None and bool(bridge.get("name"))
        ),
        host_address=_ip_text(ip) if ip is not None else None,
        dhcp=ip is not None and ip.find("dhcp") is not None,
        vlan_id=int(vlan_text) if vlan_text and vlan_text.isdigit() else None,
        minimum_bandwidth=info is not None and info.find(f"{_HV}minimum-bandwidth") is not None,
    )  # fmt: skip
    return SwitchInfo(
        spec=spec,
        uuid=root.findtext("uuid", ""),
        bridge=bridge.get("name") if bridge is not None and bridge.get("name") else None,
        active=active,
        managed=managed,
    )


def host_bridge(xml: str) -> HostBridge | None:
    """The host bridge hvmanager made for a shared External switch (None for any other switch)."""
    root = SafeET.fromstring(xml)
    adapter = root.find(f"metadata/{_HV}switch/{_HV}host-adapter")
    bridge = root.find("bridge")
    if adapter is None or adapter.get("share") != "yes" or bridge is None or not adapter.text:
        return None
    return HostBridge(bridge.get("name", ""), adapter.text, adapter.get("adapter-was-up", "yes") == "yes")
