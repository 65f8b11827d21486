"""Domain XML -> ``StorageLayout``: read a VM's drives with their addresses, and the target names
of its disks (pure: no libvirt).

Reading works on any domain XML, also of VMs hvmanager did not create: a drive's place comes from
its ``<address type='drive'>``, or, when it has none, from its target name as libvirt derives it
(``hdX``: index ``i`` is IDE controller ``i // 2``, location ``i % 2``; ``sdX``: SCSI controller
``i // 7``, unit ``i % 7``). Drives on other buses (virtio, SATA, USB), floppies and LUNs are not
part of the layout and are never touched.

Editing is ``storage_xml_edit``'s; it finds the drives and controllers to keep with
``drive_elements`` and ``scsi_controller_elements``, and names new drives with ``free_target``.
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


def drive_elements(root: ET.Element) -> list[tuple[Drive, str, ET.Element]]:
    """Each IDE/SCSI drive of a parsed domain XML: (drive, target name, its ``<disk>`` element)."""
    found = []
    for disk in root.findall("devices/disk"):
        read = _drive_of(disk)
        if read is not None:
            found.append((read[0], read[1], disk))
    return found


def scsi_controller_elements(root: ET.Element) -> dict[int, ET.Element]:
    """The ``<controller type='scsi'>`` elements of a parsed domain XML, by index."""
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
    indexes = scsi_controller_elements(root)
    scsi = max(indexes) + 1 if indexes else 0
    drives = tuple(drive for drive, _name, _element in drive_elements(root))
    return normalized(StorageLayout(generation, scsi, drives))


def read_drive_elements(xml: str) -> list[DriveElement]:
    """Each drive of a domain XML with its target name and its ``<disk>`` element."""
    root = SafeET.fromstring(xml)
    return [DriveElement(d, name, ET.tostring(e, encoding="unicode")) for d, name, e in drive_elements(root)]


def target_names(xml: str) -> set[str]:
    """The target names of every disk of a domain XML (any bus)."""
    root = SafeET.fromstring(xml)
    return {t.get("dev", "") for t in root.findall("devices/disk/target")}
