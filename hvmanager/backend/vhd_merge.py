"""Merge a differencing disk into its parent (Merge-VHD), and Reconnect one to a moved parent
(Set-VHD -ParentPath).

Merging writes the child's data into the parent (``qemu-img commit``), so afterwards the parent
reads exactly as the child did, and deletes the child. A parent that other differencing disks
(another branch, a checkpoint) read through would change under them, so the merge is refused
when one is found beside the parent or the child; so is a child that is itself another disk's
parent. If the merge fails half-way, the child is kept and still reads as before (the parent holds
part of its data, which the child hides); the merge can be run again.

Reconnecting only changes the name of the parent recorded in the child (``qemu-img rebase -u``,
no data copied), after checking that the new file is the disk the child was made from: the same
virtual size and, when hvmanager recorded it, the same identifier.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from hvmanager.backend import limits
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.qcow2_header import read_qcow2
from hvmanager.backend.qemuimg import detect_format
from hvmanager.backend.vhd_actions import GROWABLE_PARENTS, require_action
from hvmanager.backend.vhd_identity import ensure_identifier, record_parent, recorded_parent
from hvmanager.backend.vhd_inspect import inspect
from hvmanager.backend.vhd_process import held_by_qemu, in_use_error, kept_offline, run_qemu_img
from hvmanager.backend.vhd_types import DiskType, EditAction, Progress, VhdInfo

SHOWN_NAMES = 3


def merge_into_parent(path: str, progress: Progress | None = None) -> VhdInfo:
    """Merge a differencing disk into its parent, then delete it (Hyper-V's Merge to parent);
    returns the parent as it is afterwards."""
    info = inspect(path)
    require_action(info, EditAction.MERGE)
    child = Path(info.path)
    parent = Path(info.parents[0].path)
    parent_info = inspect(str(parent))
    _check_sizes(info, parent_info)
    _check_identity(child, parent_info)
    _refuse_other_readers(parent, child)
    for image in (child, parent):
        if held_by_qemu(image):
            raise in_use_error(image)
    run_qemu_img(["commit", "-p", "-d", "-f", "qcow2", str(child)], progress, space_for=parent.parent)
    with kept_offline(child):  # no VM may have opened it since
        child.unlink()
    if progress is not None:
        progress(100.0)
    return inspect(str(parent))


def _check_sizes(child: VhdInfo, parent: VhdInfo) -> None:
    if child.size > parent.size and parent.format not in GROWABLE_PARENTS:
        raise ValidationError(
            f"The differencing disk ({limits.human_size(child.size)}) is larger than its parent "
            f"({limits.human_size(parent.size)}), a {parent.format_label} disk QEMU can't grow.",
            "Expand the parent to the differencing disk's size first, or merge into a new disk.",
        )
    if child.size < parent.size:
        raise ValidationError(
            f"The differencing disk ({limits.human_size(child.size)}) is smaller than its parent "
            f"({limits.human_size(parent.size)}): the parent would not read as the disk does.",
            "Merge into a new disk instead.",
        )


def _check_identity(child: Path, parent: VhdInfo) -> None:
    """The parent must be the disk the child was made from (when hvmanager recorded it)."""
    recorded = recorded_parent(str(child))
    if recorded and recorded[0] and parent.identifier and parent.identifier != recorded[0]:
        raise ValidationError(
            f"'{parent.path}' is not the disk '{child.name}' was made from (identifier "
            f"{parent.identifier}, expected {recorded[0]}).",
            "Reconnect the differencing disk to its real parent first.",
        )


def _refuse_other_readers(parent: Path, child: Path) -> None:
    """Refuse when another disk reads through the parent, or through the child (it would vanish)."""
    siblings = [disk for disk in differencing_children(parent, [child.parent]) if disk != child]
    if siblings:
        raise ValidationError(
            f"The parent disk '{parent.name}' is also the parent of {_names(siblings)}: merging "
            "would change what they read.",
            "Merge or delete those disks first, or merge into a new disk instead.",
        )
    children = differencing_children(child)
    if children:
        raise ValidationError(
            f"'{child.name}' is the parent of {_names(children)}, which would lose their parent.",
            "Merge those disks into it first, or merge into a new disk instead.",
        )


def _names(files: list[Path]) -> str:
    names = ", ".join(f"'{file.name}'" for file in files[:SHOWN_NAMES])
    return names + (f" and {len(files) - SHOWN_NAMES} more" if len(files) > SHOWN_NAMES else "")


def differencing_children(image: Path, extra_folders: Iterable[Path] = ()) -> list[Path]:
    """The qcow2 files in ``image``'s folder (and ``extra_folders``) whose parent is ``image``."""
    target = image.resolve()
    found = []
    for folder in sorted({image.parent, *extra_folders}):
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.resolve() == target or not entry.is_file():
                continue
            if _backing_of(entry) == target:
                found.append(entry.absolute())
    return found


def _backing_of(file: Path) -> Path | None:
    try:
        if detect_format(file) != "qcow2":
            return None
        backing = read_qcow2(str(file)).backing_file
    except (HvError, OSError):
        return None
    if not backing or backing.startswith("json:"):
        return None
    return (file.parent / backing).resolve()


def reconnect(path: str, new_parent: str, ignore_id_mismatch: bool = False) -> VhdInfo:
    """Point a differencing disk at its moved parent, which must have the old parent's identity
    (identifier, unless ``ignore_id_mismatch``) and size.

    The size is checked against the parent's size recorded when hvmanager made the disk, or, when
    none was recorded, against the disk's own size; the identifier only when one was recorded.
    """
    info = inspect(path)
    if info.type is not DiskType.DIFFERENCING or info.format != "qcow2":
        require_action(info, EditAction.RECONNECT)
    child = Path(info.path)
    parent = _new_parent_file(child, new_parent)
    parent_info = _readable_disk(parent)
    if any(Path(link.path).resolve() == child.resolve() for link in parent_info.parents):
        raise ValidationError(f"'{parent}' is itself made over '{child.name}': it can't be its parent.")
    recorded = recorded_parent(str(child))
    expected = recorded[1] if recorded else info.size
    if parent_info.size != expected:
        raise ValidationError(
            f"'{parent.name}' has a virtual size of {parent_info.size} bytes "
            f"({limits.human_size(parent_info.size)}); the parent of '{child.name}' had {expected} "
            f"bytes ({limits.human_size(expected)}).",
            "Choose the disk it was made from.",
        )
    if recorded and recorded[0] and parent_info.identifier != recorded[0] and not ignore_id_mismatch:
        raise ValidationError(
            f"'{parent.name}' has the identifier {parent_info.identifier or '(none)'}; '{child.name}' "
            f"was made from the disk with the identifier {recorded[0]}.",
            "Choose the disk it was made from, or ignore the ID mismatch if you know its content is "
            "the same.",
        )
    if held_by_qemu(child):
        raise in_use_error(child)
    run_qemu_img(["rebase", "-u", "-f", "qcow2", "-b", str(parent), "-F", parent_info.format, str(child)])
    record_parent(str(child), ensure_identifier(str(parent), parent_info.format), parent_info.size)
    return inspect(str(child))


def _new_parent_file(child: Path, new_parent: str) -> Path:
    if not new_parent.strip():
        raise ValidationError("Choose the parent disk file.")
    parent = Path(new_parent).expanduser().absolute()
    if not parent.exists():
        raise ValidationError(f"'{parent}' does not exist.", "Choose the moved parent disk file.")
    if not parent.is_file() and not parent.is_block_device():
        raise ValidationError(f"'{parent}' is not a virtual hard disk file.")
    if parent.resolve() == child.resolve():
        raise ValidationError("A differencing disk can't be its own parent.")
    if not os.access(parent, os.R_OK):
        raise ValidationError(f"'{parent}' can't be read.")
    return parent


def _readable_disk(parent: Path) -> VhdInfo:
    try:
        info = inspect(str(parent))
    except HvError as exc:
        raise ValidationError(f"'{parent}' is not a virtual hard disk: {exc.message}") from exc
    if info.type is DiskType.DIFFERENCING and info.format != "qcow2":
        raise ValidationError(f"QEMU can't read '{parent.name}', a {info.format_label} differencing disk.")
    return info
