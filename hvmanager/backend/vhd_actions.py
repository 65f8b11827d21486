"""Which Edit Virtual Hard Disk actions a disk is offered, and why not the others (Hyper-V's rules,
hyperv-manager.md §2.4, adapted to QEMU: see ``vhd_edit``)."""

from __future__ import annotations

from hvmanager.backend import limits
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.vhd_targets import format_maximum
from hvmanager.backend.vhd_types import DiskType, EditAction, VhdInfo

GROWABLE_PARENTS = ("qcow2", "raw")  # formats QEMU can grow when a larger child is merged into them


def unreadable_problem(info: VhdInfo) -> str | None:
    """Why QEMU can't work on this disk at all (its parent missing, a format variant it can't open)."""
    if info.type is DiskType.DIFFERENCING and info.format != "qcow2":
        return (
            f"QEMU can't open {info.format_label} differencing disks: merge it where it was made "
            "(Hyper-V) first, or recreate it as a QCOW2 differencing disk."
        )
    if info.format == "vhdx" and info.logical_sector_size != 512:
        return (
            "QEMU can only open VHDX disks with 512-byte logical sectors "
            f"(this one has {info.logical_sector_size})."
        )
    if info.type is not DiskType.DIFFERENCING:
        return None
    if not info.parents or not info.parents[0].present:
        where = info.parents[0].path if info.parents else info.parent_path or "?"
        return f"The parent disk '{where}' is missing: reconnect the differencing disk to it first."
    for child, link in zip(info.parents, info.parents[1:], strict=False):
        if not link.present:
            return f"'{link.path}', a parent of its parent, is missing: reconnect '{child.path}' to it first."
    return None


def action_problems(info: VhdInfo) -> dict[EditAction, str | None]:
    """Each edit action with None when it is offered for this disk, otherwise the reason."""
    blocked = unreadable_problem(info)
    problems: dict[EditAction, str | None] = {
        EditAction.COMPACT: blocked or _compact_problem(info),
        EditAction.CONVERT: blocked,
        EditAction.EXPAND: blocked or _expand_problem(info),
        EditAction.SHRINK: blocked or _shrink_problem(info),
        EditAction.MERGE: blocked or _merge_problem(info),
        EditAction.RECONNECT: _reconnect_problem(info),
    }
    return problems


def _compact_problem(info: VhdInfo) -> str | None:
    if info.type is DiskType.FIXED:
        return "A fixed-size disk has no unused blocks to remove."
    return None


def _expand_problem(info: VhdInfo) -> str | None:
    if info.size >= format_maximum(info.format):
        return f"The disk already has the largest size a {info.format_label} disk can have."
    if info.type is DiskType.DIFFERENCING:
        parent = info.parents[0]
        if parent.format not in GROWABLE_PARENTS:
            return (
                f"Its parent is a {limits.format_for_qemu(parent.format or '?')} disk, which QEMU can't "
                "grow when the disk is merged into it: expand the parent first, or merge the disk."
            )
    return None


def _shrink_problem(info: VhdInfo) -> str | None:
    if info.type is DiskType.DIFFERENCING:
        return "A differencing disk has its parent's size: shrink the parent, or merge the disk first."
    if info.size <= limits.DISK_MIN_BYTES:
        return "The disk already has the smallest size a virtual hard disk can have (3 MB)."
    if info.minimum_size is not None and info.minimum_size >= info.size:
        return "The disk holds data up to its very end: there is nothing to shrink."
    return None


def _merge_problem(info: VhdInfo) -> str | None:
    if info.type is not DiskType.DIFFERENCING:
        return "Only a differencing disk can be merged."
    return None


def _reconnect_problem(info: VhdInfo) -> str | None:
    if info.type is not DiskType.DIFFERENCING:
        return "Only a differencing disk has a parent to reconnect."
    if info.format != "qcow2":
        return f"QEMU can't change the parent of a {info.format_label} differencing disk."
    if info.parents and info.parents[0].present:
        return "The parent disk is where the differencing disk expects it; Reconnect is for a moved parent."
    return None


def require_action(info: VhdInfo, action: EditAction) -> None:
    """Raise ``ValidationError`` with the reason when ``action`` is not offered for this disk."""
    problem = action_problems(info)[action]
    if problem:
        raise ValidationError(problem)
