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

The rules (hyperv-manager.md §2.11, §5): Generation 2 has no IDE; up to 4 SCSI controllers of 64
locations; IDE Controllers 0 and 1 of 2 locations; one drive per location, only on a controller
that exists; a Generation 1 VM's DVD drives are on IDE, a Generation 2 VM's on SCSI. While the VM
runs or is paused, hard drives on SCSI may be added and removed and any DVD drive's media may
change; nothing else (IDE devices, controllers, DVD drives themselves). A saved VM keeps its
hardware: it resumes from a memory image taken with it.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass

from hvmanager.backend import limits
from hvmanager.backend.models import VmState

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


def layout_from_domain_xml(xml: str) -> StorageLayout:
    """The controllers and drives of a domain XML (ours or anybody's); the generation comes from
    hvmanager's metadata (a VM made elsewhere is Generation 2 when it boots with UEFI, else 1)."""
    from hvmanager.backend.storage_xml import read_layout  # storage_xml builds on this module's types

    return read_layout(xml)


def slot_order(slot: tuple[Bus, int, int]) -> tuple[str, int, int]:
    """Sort key of places: IDE before SCSI, then by controller and location."""
    return (slot[0].value, slot[1], slot[2])


def normalized(layout: StorageLayout) -> StorageLayout:
    """The layout with its drives in slot order (two layouts with the same drives compare equal)."""
    return StorageLayout(
        layout.generation, layout.scsi_controllers, tuple(sorted(layout.drives, key=_drive_order))
    )


def _drive_order(drive: Drive) -> tuple[str, int, int]:
    return slot_order(drive.slot)


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


# --- limits -------------------------------------------------------------------------------------


def _place_problem(layout: StorageLayout, drive: Drive) -> str | None:
    """Why the drive can't sit where it is (no such controller or location), or None."""
    where = slot_label(*drive.slot)
    what = KIND_LABELS[drive.kind]
    if drive.bus is Bus.IDE:
        if layout.generation == 2:
            return (
                f"Generation 2 virtual machines have no IDE controller: attach the {what} at {where} "
                "to a SCSI controller."
            )
        if drive.controller not in controllers(layout, Bus.IDE) or drive.location not in locations(Bus.IDE):
            return (
                f"{where} does not exist: a virtual machine has IDE Controllers 0 and 1, each with "
                "Locations 0 and 1."
            )
        return None
    if drive.controller not in controllers(layout, Bus.SCSI):
        return f"The {what} at {where} is on a SCSI controller the virtual machine does not have."
    if drive.location not in locations(Bus.SCSI):
        return f"{where} does not exist: SCSI locations are 0 to {SCSI_LOCATIONS - 1}."
    if drive.kind is DriveKind.DVD and layout.generation != 2:
        return (
            f"The DVD drive at {where} must be on an IDE controller: a Generation 1 virtual machine's "
            "DVD drives are on IDE (DVD drives on SCSI need Generation 2)."
        )
    return None


def _media_problem(drive: Drive) -> str | None:
    """Why the drive's disk or image can't be used, or None."""
    where = slot_label(*drive.slot)
    if drive.kind is DriveKind.DVD:
        if drive.passthrough:
            return f"The DVD drive at {where}: physical CD/DVD drives are not supported; use an image file."
        return None
    if not drive.path:
        return f"The hard drive at {where} has no disk: choose a virtual hard disk or a physical disk."
    if drive.passthrough:
        return None
    if not drive.format:
        return f"The format of the virtual hard disk {drive.path} is not known."
    problem = limits.attach_problem(drive.format)
    return f"{drive.path}: {problem}" if problem else None


def layout_problems(layout: StorageLayout) -> list[str]:
    """Every reason why the VM can't have this layout (empty when it can), in slot order."""
    problems = []
    if not 0 <= layout.scsi_controllers <= SCSI_CONTROLLERS_MAX:
        problems.append(f"A virtual machine can have at most {SCSI_CONTROLLERS_MAX} SCSI controllers.")
    drives = sorted(layout.drives, key=_drive_order)
    crowded = [slot for slot, count in Counter(d.slot for d in drives).items() if count > 1]
    for slot in sorted(crowded, key=slot_order):
        problems.append(f"{slot_label(*slot)} holds more than one drive; each location holds one.")
    for drive in drives:
        for problem in (_place_problem(layout, drive), _media_problem(drive)):
            if problem and problem not in problems:
                problems.append(problem)
    files = [d.path for d in drives if d.kind is DriveKind.HARD_DISK and d.path]
    for path in sorted({p for p in files if files.count(p) > 1}):
        problems.append(f"{path} is attached more than once; a disk can be attached to one location only.")
    return problems


# --- what may change in which state -------------------------------------------------------------


def _is_media_change(old: Drive | None, new: Drive | None) -> bool:
    """Only the image in a DVD drive changes (allowed in every state a VM can change in)."""
    return (
        old is not None and new is not None and old.kind is new.kind is DriveKind.DVD and old.slot == new.slot
    )


def _running_change_problem(old: Drive | None, new: Drive | None, words: str) -> str | None:
    """Why one location's change is refused while the VM runs (``words``: "running", "paused")."""
    drive = new or old
    assert drive is not None
    if _is_media_change(old, new):
        return None
    where = slot_label(*drive.slot)
    verb = "added" if old is None else "removed" if new is None else "changed"
    if drive.bus is Bus.IDE:
        return (
            f"The {KIND_LABELS[drive.kind]} at {where} can't be {verb} while the virtual machine is "
            f"{words}: IDE devices can be added, removed or changed only while it is off. Shut it down "
            "first, or use a SCSI controller."
        )
    dvd = next((d for d in (old, new) if d is not None and d.kind is DriveKind.DVD), None)
    if dvd is not None:
        return (
            f"The DVD drive at {where} can't be {'added' if dvd is new else 'removed'} while the "
            f"virtual machine is {words}: only the media of a DVD drive can change. Shut it down first."
        )
    return None


def storage_change_problems(current: StorageLayout, new: StorageLayout, state: VmState) -> list[str]:
    """Why the VM's storage can't change from ``current`` to ``new`` in ``state`` (empty: it can).

    Only the rules of the state; ``layout_problems`` checks the limits.
    """
    if normalized(new) == normalized(current):
        return []
    if new.generation != current.generation:
        return ["The generation of a virtual machine can't be changed."]
    if state is VmState.SAVED:
        return [
            "Storage controllers and drives can't be changed while the virtual machine is saved: it "
            "resumes with the hardware it was saved with. Start it and shut it down, or delete the "
            "saved state, first."
        ]
    if state is VmState.OFF:
        return []
    words = state.value.lower()
    if state not in (VmState.RUNNING, VmState.PAUSED):
        return [
            f"Storage controllers and drives can't be changed while the virtual machine is {words}. "
            "Wait until it is running or off."
        ]
    problems = []
    if new.scsi_controllers != current.scsi_controllers:
        problems.append(
            f"SCSI controllers can't be added or removed while the virtual machine is {words}. "
            "Shut it down first."
        )
    old_slots = {d.slot: d for d in current.drives}
    new_slots = {d.slot: d for d in new.drives}
    for slot in sorted(old_slots.keys() | new_slots.keys(), key=slot_order):
        old, changed = old_slots.get(slot), new_slots.get(slot)
        if old != changed:
            problem = _running_change_problem(old, changed, words)
            if problem:
                problems.append(problem)
    return problems


def storage_problems(current: StorageLayout, new: StorageLayout, state: VmState) -> list[str]:
    """Every reason why ``new`` can't replace ``current`` in ``state``: the state's rules and the
    limits ``new`` breaks (limits ``current`` already broke, e.g. on a VM made elsewhere, are not
    blamed on the change)."""
    if normalized(new) == normalized(current):
        return []
    already = set(layout_problems(current))
    limits_broken = [p for p in layout_problems(new) if p not in already]
    return storage_change_problems(current, new, state) + limits_broken
