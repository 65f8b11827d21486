"""Hyper-V's rules for a VM's storage (hyperv-manager.md §2.11, §5), on ``StorageLayout``s (pure:
no libvirt, no Qt; the Settings pages check them as the user edits).

Generation 2 has no IDE; up to 4 SCSI controllers of 64 locations; IDE Controllers 0 and 1 of 2
locations; one drive per location, only on a controller that exists; a Generation 1 VM's DVD
drives are on IDE, a Generation 2 VM's on SCSI. While the VM runs or is paused, hard drives on
SCSI may be added and removed and any DVD drive's media may change; nothing else (IDE devices,
controllers, DVD drives themselves). A saved VM keeps its hardware: it resumes from a memory image
taken with it.
"""

from __future__ import annotations

from collections import Counter

from hvmanager.backend import limits
from hvmanager.backend.models import VmState
from hvmanager.backend.storage_layout import (
    KIND_LABELS,
    SCSI_CONTROLLERS_MAX,
    SCSI_LOCATIONS,
    Bus,
    Drive,
    DriveKind,
    StorageLayout,
    controllers,
    drive_order,
    locations,
    normalized,
    slot_label,
    slot_order,
)

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
    drives = sorted(layout.drives, key=drive_order)
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
