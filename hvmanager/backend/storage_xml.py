"""Domain XML <-> ``StorageLayout``: read a VM's drives with their addresses, and edit the XML to a
new layout (pure: no libvirt).

Reading works on any domain XML, also of VMs hvmanager did not create: a drive's place comes from
its ``<address type='drive'>``, or, when it has none, from its target name as libvirt derives it
(``hdX``: index ``i`` is IDE controller ``i // 2``, location ``i % 2``; ``sdX``: SCSI controller
``i // 7``, unit ``i % 7``). Drives on other buses (virtio, SATA, USB), floppies and LUNs are not
part of the layout and are never touched.

Editing keeps every element and attribute of a drive that stays (a drive that only moves keeps
them too, with a new address; a DVD drive whose media changes keeps them, with a new source). New
drives get the driver type of their format, cache and discard settings that work on any host file
system and under TCG (``cache='writeback'``: O_DIRECT would fail on tmpfs; ``discard='unmap'`` so
that a guest's trim frees space in the image), a target name no other disk of the domain has and
an explicit ``<address type='drive'>`` (so libvirt never guesses, nor adds an LSI controller).
SCSI controllers are ``virtio-scsi`` with index N.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml.ElementTree as SafeET

from hvmanager.backend import domxml
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout, normalized

_KINDS = {"disk": DriveKind.HARD_DISK, "cdrom": DriveKind.DVD}
_BUSES = {"ide": Bus.IDE, "scsi": Bus.SCSI}
_PREFIX = {Bus.IDE: "hd", Bus.SCSI: "sd"}
_SCSI_UNITS_PER_NAME = 7  # libvirt's derivation of a SCSI address from sdX (controller, unit)
NEW_DISK_DRIVER = {"cache": "writeback", "discard": "unmap"}
SCSI_CONTROLLER_MODEL = "virtio-scsi"


@dataclass(frozen=True)
class DriveElement:
    """A drive read from a domain XML, with its target name and its ``<disk>`` element as XML."""

    drive: Drive
    target: str
    xml: str


# --- target names -------------------------------------------------------------------------------


def disk_name_index(name: str) -> int | None:
    """The index of a disk name as libvirt counts (``hda``/``sda`` 0, ``sdz`` 25, ``sdaa`` 26)."""
    letters = name[2:]
    if len(name) < 3 or not letters.isascii() or not letters.isalpha() or not letters.islower():
        return None
    index = 0
    for position, letter in enumerate(letters):
        index = (index + (1 if position else 0)) * 26 + ord(letter) - ord("a")
    return index


def disk_name(prefix: str, index: int) -> str:
    """The disk name of an index (inverse of ``disk_name_index``): ``disk_name("sd", 26) == "sdaa"``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return prefix + letters


def free_target(drive: Drive, used: set[str]) -> str:
    """A target name for a new drive that no disk in ``used`` has: the name libvirt would give its
    IDE location when free (``hda``-``hdd``), else the first free ``hdX``/``sdX``."""
    prefix = _PREFIX[drive.bus]
    if drive.bus is Bus.IDE:
        preferred = disk_name(prefix, drive.controller * 2 + drive.location)
        if preferred not in used:
            return preferred
    index = 0
    while disk_name(prefix, index) in used:
        index += 1
    return disk_name(prefix, index)


# --- reading ------------------------------------------------------------------------------------


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _slot(disk: ET.Element, bus: Bus, target: str) -> tuple[int, int] | None:
    """(controller, location) from the drive address, else from the target name."""
    address = disk.find("address")
    if address is not None and address.get("type") == "drive":
        controller, channel, unit = (_int(address.get(a, "0")) for a in ("controller", "bus", "unit"))
        if controller is not None and channel is not None and unit is not None:
            return (controller * 2 + channel, unit) if bus is Bus.IDE else (controller, unit)
    index = disk_name_index(target)
    if index is None:
        return None
    if bus is Bus.IDE:
        return index // 2, index % 2
    return index // _SCSI_UNITS_PER_NAME, index % _SCSI_UNITS_PER_NAME


def _media(disk: ET.Element) -> tuple[str | None, str | None, bool]:
    """(path, format, passthrough) of a ``<disk>``."""
    source = disk.find("source")
    driver = disk.find("driver")
    driver_type = driver.get("type") if driver is not None else None
    source_type = disk.get("type", "file")
    path = None
    if source is not None:
        path = source.get("file") or source.get("dev") or source.get("name") or source.get("volume")
    if path is None:
        return None, None, False
    if source_type == "block":  # a host device: a physical disk (or CD/DVD drive)
        return path, None, True
    return path, driver_type or "raw", False


def _drive_of(disk: ET.Element) -> tuple[Drive, str] | None:
    """The drive of a ``<disk>`` element and its target name, or None when not IDE/SCSI."""
    kind = _KINDS.get(disk.get("device", "disk"))
    target = disk.find("target")
    if kind is None or target is None:
        return None
    bus = _BUSES.get(target.get("bus", ""))
    name = target.get("dev", "")
    if bus is None:
        return None
    slot = _slot(disk, bus, name)
    if slot is None:
        return None
    path, fmt, passthrough = _media(disk)
    return Drive(kind, bus, slot[0], slot[1], path, fmt, passthrough), name


def _drives(root: ET.Element) -> list[tuple[Drive, str, ET.Element]]:
    found = []
    for disk in root.findall("devices/disk"):
        read = _drive_of(disk)
        if read is not None:
            found.append((read[0], read[1], disk))
    return found


def _scsi_controllers(root: ET.Element) -> dict[int, ET.Element]:
    controllers = {}
    for element in root.findall("devices/controller[@type='scsi']"):
        index = _int(element.get("index", "0"))
        if index is not None:
            controllers[index] = element
    return controllers


def read_layout(xml: str) -> StorageLayout:
    """The ``StorageLayout`` of a domain XML."""
    root = SafeET.fromstring(xml)
    generation = domxml.parse_domain_xml(xml).generation or 1
    indexes = _scsi_controllers(root)
    scsi = max(indexes) + 1 if indexes else 0
    return normalized(StorageLayout(generation, scsi, tuple(drive for drive, _name, _el in _drives(root))))


def read_drive_elements(xml: str) -> list[DriveElement]:
    """Each drive of a domain XML with its target name and its ``<disk>`` element."""
    root = SafeET.fromstring(xml)
    return [DriveElement(d, name, ET.tostring(el, encoding="unicode")) for d, name, el in _drives(root)]


def target_names(xml: str) -> set[str]:
    """The target names of every disk of a domain XML (any bus)."""
    root = SafeET.fromstring(xml)
    return {t.get("dev", "") for t in root.findall("devices/disk/target")}


# --- building and editing -----------------------------------------------------------------------


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
    existing = _scsi_controllers(root)
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
    current = _drives(root)
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
