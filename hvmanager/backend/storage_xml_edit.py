"""``StorageLayout`` -> domain XML: edit a VM's XML to a new layout, and the ``<disk>`` elements of
new drives and of new DVD media (pure: no libvirt).

Editing keeps every element and attribute of a drive that stays (a drive that only moves keeps
them too, with a new address; a DVD drive whose media changes keeps them, with a new source). New
drives get the driver type of their format, cache and discard settings that work on any host file
system and under TCG (``cache='writeback'``: O_DIRECT would fail on tmpfs; ``discard='unmap'`` so
that a guest's trim frees space in the image), a target name no other disk of the domain has and
an explicit ``<address type='drive'>`` (so libvirt never guesses, nor adds an LSI controller).
SCSI controllers are ``virtio-scsi`` with index N. Drives on other buses are never touched.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET

from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout
from hvmanager.backend.storage_xml import drive_elements, free_target, scsi_controller_elements

NEW_DISK_DRIVER = {"cache": "writeback", "discard": "unmap"}
SCSI_CONTROLLER_MODEL = "virtio-scsi"


def _set_address(disk: ET.Element, drive: Drive) -> None:
    address = disk.find("address")
    if address is None:
        address = ET.SubElement(disk, "address")
    address.attrib.clear()
    if drive.bus is Bus.IDE:
        controller, channel = 0, drive.controller  # one IDE controller of two buses (i440fx)
    else:
        controller, channel = drive.controller, 0
    address.attrib.update(
        type="drive", controller=str(controller), bus=str(channel), target="0", unit=str(drive.location)
    )


def _set_media(disk: ET.Element, drive: Drive) -> None:
    """Point a drive at its file, device or nothing (an empty DVD drive has no ``<source>``)."""
    for old in disk.findall("source") + disk.findall("backingStore"):
        disk.remove(old)
    driver = disk.find("driver")
    if driver is None:
        driver = ET.Element("driver", name="qemu")
        disk.insert(0, driver)
    disk.set("type", "block" if drive.passthrough else "file")
    driver.set("type", "raw" if drive.passthrough else drive.format or "raw")
    if drive.path is not None:
        source = ET.Element("source", {"dev" if drive.passthrough else "file": drive.path})
        disk.insert(list(disk).index(driver) + 1, source)


def _set_target(disk: ET.Element, drive: Drive, name: str) -> None:
    target = disk.find("target")
    if target is None:
        target = ET.SubElement(disk, "target")
    target.set("dev", name)
    target.set("bus", drive.bus.value)


def new_disk_element(drive: Drive, target: str) -> ET.Element:
    """The ``<disk>`` element of a new drive with target name ``target``."""
    disk = ET.Element("disk", type="file", device=drive.kind.value)
    driver = ET.SubElement(disk, "driver", name="qemu", type=drive.format or "raw")
    if drive.kind is DriveKind.HARD_DISK and not drive.passthrough:
        driver.attrib.update(NEW_DISK_DRIVER)
    _set_media(disk, drive)
    _set_target(disk, drive, target)
    if drive.kind is DriveKind.DVD:
        ET.SubElement(disk, "readonly")
    _set_address(disk, drive)
    return disk


def new_disk_xml(drive: Drive, target: str) -> str:
    """``new_disk_element`` as XML (for ``attachDeviceFlags``)."""
    return ET.tostring(new_disk_element(drive, target), encoding="unicode")


def media_xml(element_xml: str, drive: Drive) -> str:
    """A DVD drive's ``<disk>`` element with the media of ``drive`` (for ``updateDeviceFlags``)."""
    disk = SafeET.fromstring(element_xml)
    _set_media(disk, drive)
    return ET.tostring(disk, encoding="unicode")


def _same_media(a: Drive, b: Drive) -> bool:
    return (a.kind, a.path, a.format, a.passthrough) == (b.kind, b.path, b.format, b.passthrough)


def _match(new: StorageLayout, current: list[tuple[Drive, str, ET.Element]]) -> list[ET.Element | None]:
    """For each new drive, the current ``<disk>`` element it keeps (None: a new element)."""
    unused = list(current)
    matched: list[ET.Element | None] = [None] * len(new.drives)
    rules = (
        lambda d, c: d == c,  # unchanged
        _same_media,  # moved to another place
        lambda d, c: d.kind is c.kind is DriveKind.DVD and d.slot == c.slot,  # new media
    )
    for rule in rules:
        for position, drive in enumerate(new.drives):
            if matched[position] is not None:
                continue
            found = next((entry for entry in unused if rule(drive, entry[0])), None)
            if found is not None:
                unused.remove(found)
                matched[position] = found[2]
    return matched


def _insert_position(devices: ET.Element) -> int:
    children = list(devices)
    disks = [i for i, child in enumerate(children) if child.tag == "disk"]
    if disks:
        return disks[-1] + 1
    emulator = [i for i, child in enumerate(children) if child.tag == "emulator"]
    return emulator[0] + 1 if emulator else 0


def _edit_controllers(devices: ET.Element, root: ET.Element, count: int) -> None:
    existing = scsi_controller_elements(root)
    for index, element in existing.items():
        if index >= count:
            devices.remove(element)
    for index in range(count):
        if index not in existing:
            children = list(devices)
            after = [i for i, child in enumerate(children) if child.tag == "controller"]
            position = after[-1] + 1 if after else _insert_position(devices)
            element = ET.Element("controller", type="scsi", index=str(index), model=SCSI_CONTROLLER_MODEL)
            devices.insert(position, element)


def edit_layout(xml: str, new: StorageLayout) -> str:
    """The domain XML with the drives and SCSI controllers of ``new`` (check ``layout_problems``
    first: this does not refuse anything)."""
    root = SafeET.fromstring(xml)
    devices = root.find("devices")
    if devices is None:
        devices = ET.SubElement(root, "devices")
    current = drive_elements(root)
    matched = _match(new, current)
    kept = {id(element) for element in matched if element is not None}
    for _drive, _name, element in current:
        if id(element) not in kept:
            devices.remove(element)
    old_names = {id(el): name for _d, name, el in current}
    used = {t.get("dev", "") for t in devices.findall("disk/target")}
    for drive, match in zip(new.drives, matched, strict=True):
        if match is None:
            element = new_disk_element(drive, free_target(drive, used))
            devices.insert(_insert_position(devices), element)
        else:
            element = match
            old = next(d for d, _n, el in current if el is element)
            if old.bus is not drive.bus:
                used.discard(old_names[id(element)])
                _set_target(element, drive, free_target(drive, used))
            if old.slot != drive.slot:
                _set_address(element, drive)
            if not _same_media(old, drive):
                _set_media(element, drive)
        target = element.find("target")
        used.add(target.get("dev", "") if target is not None else "")
    _edit_controllers(devices, root, new.scsi_controllers)
    return ET.tostring(root, encoding="unicode")
