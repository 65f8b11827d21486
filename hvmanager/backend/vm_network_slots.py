"""PCI slots of a VM for devices added while it runs (network adapters, controllers).

A running VM takes a new PCI device only in a free slot that can be hot-plugged:

- i440fx (Generation 1): the 31 slots of the PCI root bus (slot 0 is the host bridge), and those of
  any ``pci-bridge``;
- q35 (Generation 2): a PCIe device needs an empty ``pcie-root-port`` of its own (the root complex
  itself can't hot-plug). libvirt makes exactly as many root ports as the devices it is given need,
  so a new Generation 2 VM gets ``SPARE_ROOT_PORTS`` more (``with_spare_root_ports``).

A VM that is off has no such limit: libvirt adds bridges and root ports as devices need them, as
long as a slot for the bridge is left (``with_room_for_one_more`` keeps one).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET

SPARE_ROOT_PORTS = 4
_SLOTS_PER_BUS = range(1, 32)  # slot 0 of a PCI bus is the host bridge or the bridge itself
_ONE_SLOT_PORTS = ("pcie-root-port", "pcie-switch-downstream-port")
_MULTI_SLOT_BUSES = ("pci-root", "pci-bridge", "pcie-to-pci-bridge")


def _int(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        return None


def _used_slots(root: ET.Element) -> set[tuple[int, int]]:
    used = set()
    for address in root.iter("address"):
        if address.get("type") != "pci":
            continue
        bus, slot = _int(address.get("bus")), _int(address.get("slot"))
        if bus is not None and slot is not None:
            used.add((bus, slot))
    return used


def _hotpluggable(controller: ET.Element) -> bool:
    target = controller.find("target")
    return target is None or target.get("hotplug", "on") != "off"


def free_hotplug_slots(xml: str) -> int:
    """How many more PCI devices the running VM of this (live) XML can take."""
    root = SafeET.fromstring(xml)
    used = _used_slots(root)
    free = 0
    for controller in root.findall("devices/controller[@type='pci']"):
        index = _int(controller.get("index"))
        if index is None or not _hotpluggable(controller):
            continue
        model = controller.get("model", "")
        if model in _ONE_SLOT_PORTS:
            free += (index, 0) not in used
        elif model in _MULTI_SLOT_BUSES:
            free += sum((index, slot) not in used for slot in _SLOTS_PER_BUS)
    return free


def address_free(xml: str, address: ET.Element) -> bool:
    """Whether no device of the domain XML sits at this PCI address already."""
    bus, slot = _int(address.get("bus")), _int(address.get("slot"))
    return bus is not None and slot is not None and (bus, slot) not in _used_slots(SafeET.fromstring(xml))


def is_pcie_machine(xml: str) -> bool:
    """Whether the VM is a PCI Express (q35) machine."""
    root = SafeET.fromstring(xml)
    if root.find("devices/controller[@model='pcie-root']") is not None:
        return True
    machine = root.find("os/type")
    return machine is not None and "q35" in machine.get("machine", "")


def with_spare_root_ports(xml: str, spare: int = SPARE_ROOT_PORTS) -> str | None:
    """The (defined, addressed) XML of a q35 VM with empty root ports added until ``spare`` are free;
    None when it has enough already or is not a q35 machine."""
    if not is_pcie_machine(xml):
        return None
    missing = spare - free_hotplug_slots(xml)
    if missing <= 0:
        return None
    root = SafeET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        return None
    controllers = devices.findall("controller")
    position = list(devices).index(controllers[-1]) + 1 if controllers else 0
    for offset in range(missing):
        devices.insert(position + offset, ET.Element("controller", type="pci", model="pcie-root-port"))
    return ET.tostring(root, encoding="unicode")


def with_room_for_one_more(xml: str) -> str:
    """The (defined, addressed) XML of a VM that is off, with a ``pci-bridge`` added when its PCI
    buses have less than two free slots: libvirt places a new device on a bridge it adds itself, but
    only while a slot for that bridge is left, so one is added before the last slot goes."""
    if is_pcie_machine(xml) or free_hotplug_slots(xml) >= 2:
        return xml
    root = SafeET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        return xml
    devices.append(ET.Element("controller", type="pci", model="pci-bridge"))
    return ET.tostring(root, encoding="unicode")
