"""A VM's storage as Hyper-V shows it: IDE controllers 0 and 1, SCSI controllers 0-3, and the drives
at their locations (pure data; no libvirt, no Qt: the Settings pages use it).

Mapping to libvirt (Generation 1 is i440fx with its one IDE controller of two buses):
- IDE Controller C, Location L  -> ``<target bus='ide'>`` with ``<address type='drive' controller='0'
  bus='C' target='0' unit='L'/>`` (device names hda, hdb, hdc, hdd).
- SCSI Controller N -> ``<controller type='scsi' index='N' model='virtio-scsi'/>``; Location L on it ->
  ``<target bus='scsi'>`` with ``<address type='drive' controller='N' bus='0' target='0' unit='L'/>``.
- A physical (pass-through) hard disk is ``<disk type='block'>`` with ``<source dev=...>``; a DVD
  drive is ``device='cdrom'``, with or without a ``<source file=...>`` ISO.
- Drives on other buses (virtio, SATA, USB) and floppies are not part of the layout; edits leave
  them alone (``storage_xml``).

``storage_xml`` reads and edits the XML, ``storage_rules`` says which layouts and changes Hyper-V's
rules allow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hvmanager.backend import limits

IDE_CONTROLLERS = 2
IDE_LOCATIONS = 2
SCSI_CONTROLLERS_MAX = 4
SCSI_LOCATIONS = 64


class Bus(enum.Enum):
    """A virtual storage controller type."""

    IDE = "ide"
    SCSI = "scsi"


class DriveKind(enum.Enum):
    """What sits at a controller location."""

    HARD_DISK = "disk"
    DVD = "cdrom"


@dataclass(frozen=True)
class Drive:
    """One drive at (bus, controller, location).

    ``path`` is the virtual disk file, the host block device of a physical disk (``passthrough``),
    the ISO image of a DVD drive, or None for an empty DVD drive. ``format`` is the qemu-img format
    of a file (None for a physical disk or an empty drive).
    """

    kind: DriveKind
    bus: Bus
    controller: int
    location: int
    path: str | None
    format: str | None = None
    passthrough: bool = False

    @property
    def slot(self) -> tuple[Bus, int, int]:
        """Where the drive sits."""
        return (self.bus, self.controller, self.location)


@dataclass(frozen=True)
class StorageLayout:
    """Every controller and drive of a VM."""

    generation: int
    scsi_controllers: int
    drives: tuple[Drive, ...] = ()


@dataclass(frozen=True)
class HostDisk:
    """A host block device offered as a physical hard disk; ``problem`` says why it can't be used
    (mounted, swap, holding other devices, used by a VM), None when it can."""

    path: str
    size_bytes: int
    description: str
    problem: str | None = None


KIND_LABELS = {DriveKind.HARD_DISK: "hard drive", DriveKind.DVD: "DVD drive"}
BUS_LABELS = {Bus.IDE: "IDE", Bus.SCSI: "SCSI"}


def slot_order(slot: tuple[Bus, int, int]) -> tuple[str, int, int]:
    """Sort key of places: IDE before SCSI, then by controller and location."""
    return (slot[0].value, slot[1], slot[2])


def drive_order(drive: Drive) -> tuple[str, int, int]:
    """Sort key of drives: by their places (``slot_order``)."""
    return slot_order(drive.slot)


def normalized(layout: StorageLayout) -> StorageLayout:
    """The layout with its drives in slot order (two layouts with the same drives compare equal)."""
    return StorageLayout(
        layout.generation, layout.scsi_controllers, tuple(sorted(layout.drives, key=drive_order))
    )


def slot_label(bus: Bus, controller: int, location: int) -> str:
    """``IDE Controller 0, Location 1`` (as the Settings dialog names a place)."""
    return f"{BUS_LABELS[bus]} Controller {controller}, Location {location}"


def describe(drive: Drive) -> str:
    """One line for summaries: ``Hard drive on SCSI Controller 0, Location 1: /vm/data.qcow2 (QCOW2)``."""
    where = slot_label(*drive.slot)
    what = KIND_LABELS[drive.kind][0].upper() + KIND_LABELS[drive.kind][1:]
    if drive.path is None:
        media = "no media" if drive.kind is DriveKind.DVD else "no disk"
    elif drive.passthrough:
        media = f"physical disk {drive.path}"
    elif drive.kind is DriveKind.DVD:
        media = f"image file {drive.path}"
    else:
        media = f"{drive.path} ({limits.format_for_qemu(drive.format)})" if drive.format else drive.path
    return f"{what} on {where}: {media}"


def controllers(layout: StorageLayout, bus: Bus) -> range:
    """The numbers of the controllers of one type the VM has (Generation 2 has no IDE)."""
    if bus is Bus.IDE:
        return range(IDE_CONTROLLERS if layout.generation != 2 else 0)
    return range(layout.scsi_controllers)


def locations(bus: Bus) -> range:
    """The locations of one controller of that type."""
    return range(IDE_LOCATIONS if bus is Bus.IDE else SCSI_LOCATIONS)


def drive_at(layout: StorageLayout, bus: Bus, controller: int, location: int) -> Drive | None:
    """The drive at a location, or None when it is free."""
    return next((d for d in layout.drives if d.slot == (bus, controller, location)), None)


def free_slot(layout: StorageLayout, bus: Bus, controller: int) -> int | None:
    """The first free location of a controller (as Hyper-V picks one), or None when the controller
    is full or does not exist."""
    if controller not in controllers(layout, bus):
        return None
    taken = {d.location for d in layout.drives if d.bus is bus and d.controller == controller}
    return next((location for location in locations(bus) if location not in taken), None)
