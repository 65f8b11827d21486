"""Editing virtual hard disk files: compact, convert, expand/shrink, merge, reconnect.

Hyper-V's Edit Virtual Hard Disk wizard (hyperv-manager.md §2.4), adapted to what QEMU can do:

- **Compact**: dynamic and differencing disks. The disk is rewritten without its unallocated and
  all-zero blocks (``qemu-img convert`` to the same format, a differencing disk keeping its parent),
  then the new file replaces the old one in one rename; the content is unchanged.
- **Convert**: any disk QEMU can read, to a new fixed or dynamic disk of any format; a differencing
  disk is flattened. The source is kept.
- **Expand**: any fixed or dynamic disk. A qcow2 differencing disk too when its parent is qcow2
  or raw: QEMU grows such a parent when the disk is merged later (it can't grow a VHD or VHDX).
- **Shrink**: fixed and dynamic disks (every format, not only VHDX as in Hyper-V), down to the
  minimum size, where the disk's data ends. Not a differencing disk: a later merge would leave the
  parent larger than the disk.
- **Merge**: differencing disks, into their parent (``vhd_merge``) or into a new disk.
- **Reconnect**: a differencing disk whose parent moved (``vhd_merge``).

QEMU can't open VHD or VHDX differencing disks, nor VHDX disks with 4096-byte logical sectors:
nothing is offered for them. A disk a running VM (or any QEMU process) has open is refused.
"""

from __future__ import annotations

from pathlib import Path

from hvmanager.backend import limits, vhd_actions, vhd_merge, vhd_resize
from hvmanager.backend.errors import HvError
from hvmanager.backend.qcow2_header import read_qcow2
from hvmanager.backend.vhd_actions import require_action
from hvmanager.backend.vhd_files import (
    keep_vhdx_sector_sizes,
    publish,
    replace,
    reserve_space,
    temporary_beside,
)
from hvmanager.backend.vhd_identity import ensure_identifier, record_type
from hvmanager.backend.vhd_inspect import inspect
from hvmanager.backend.vhd_process import kept_offline, run_qemu_img
from hvmanager.backend.vhd_targets import (
    check_destination,
    check_target,
    new_disk_options,
    rewrite_options,
    vhdx_block_size,
)
from hvmanager.backend.vhd_types import DiskType, EditAction, Progress, VhdInfo


def action_problems(info: VhdInfo) -> dict[EditAction, str | None]:
    """Each edit action with None when it is offered for this disk, otherwise the reason."""
    return vhd_actions.action_problems(info)


def compact(path: str, progress: Progress | None = None) -> tuple[int, int]:
    """Compact a dynamic or differencing disk in place; returns the file size before and after.

    The sizes are what the file takes on the host (``VhdInfo.file_size``). The disk's format, type,
    block or cluster size, parent, identity, owner, mode and extended attributes are kept.
    """
    info = inspect(path)
    require_action(info, EditAction.COMPACT)
    original = Path(info.path)
    options = rewrite_options(info)
    with kept_offline(original), temporary_beside(original) as temp:
        args = ["convert", "-p", "-f", info.format, "-O", info.format, *options, *_keep_parent(info)]
        run_qemu_img([*args, str(original), str(temp)], progress, space_for=original.parent)
        replace(temp, original, info.format)
    if progress is not None:
        progress(100.0)
    return info.file_size, inspect(str(original)).file_size


def _keep_parent(info: VhdInfo) -> list[str]:
    """``-B``/``-F`` for a differencing disk's rewrite: its parent, named exactly as before (a
    relative name stays relative to the folder, where the rewrite is made)."""
    if info.type is not DiskType.DIFFERENCING:
        return []
    name = read_qcow2(info.path).backing_file
    parent_format = info.parents[0].format
    if not name or not parent_format:
        raise HvError(f"'{info.path}' names no parent file.")
    return ["-B", name, "-F", parent_format]


def convert(
    path: str, destination: str, fmt: str, disk_type: DiskType, progress: Progress | None = None
) -> VhdInfo:
    """Convert to a new file of another format and/or type; the source is kept.

    A differencing source is flattened (the new disk holds its parents' data). A VHDX made from a
    VHDX keeps its block size and physical sector size; from another format it gets Hyper-V's
    default block size. The new disk gets a new identifier. A fixed disk's space is allocated.
    """
    info = inspect(path)
    require_action(info, EditAction.CONVERT)
    return write_new_disk(info, destination, fmt, disk_type, progress)


def merge_to_new(
    path: str, destination: str, fmt: str, disk_type: DiskType, progress: Progress | None = None
) -> VhdInfo:
    """Write the differencing disk's whole content (with its parents) to a new standalone disk."""
    info = inspect(path)
    require_action(info, EditAction.MERGE)
    return write_new_disk(info, destination, fmt, disk_type, progress)


def write_new_disk(
    info: VhdInfo, destination: str, fmt: str, disk_type: DiskType, progress: Progress | None
) -> VhdInfo:
    """The whole content of ``info``'s disk (and its parents) into a new fixed or dynamic disk."""
    check_target(fmt, disk_type, info.size)
    target = check_destination(info.path, destination)
    block_size = None
    if fmt == "vhdx":  # the source's, or Hyper-V's default as for a new disk
        block_size = vhdx_block_size(info) or limits.VHDX_DEFAULT_BLOCK_SIZE
    options = new_disk_options(fmt, disk_type, block_size)
    with temporary_beside(target) as temp:
        args = ["convert", "-p", "-f", info.format, "-O", fmt, *options, info.path, str(temp)]
        run_qemu_img(args, progress, space_for=target.parent)
        if fmt == "vhdx" and info.format == "vhdx":
            keep_vhdx_sector_sizes(Path(info.path), temp)
        if disk_type is DiskType.FIXED:
            reserve_space(temp)
        ensure_identifier(str(temp), fmt)  # qcow2 and raw: a new identifier, as New Virtual Hard Disk
        record_type(str(temp), fmt, disk_type)
        publish(temp, target, durable=False)  # the source is kept: see vhd_files
    if progress is not None:
        progress(100.0)
    return inspect(str(target))


def resize(path: str, size_bytes: int, progress: Progress | None = None) -> VhdInfo:
    """Expand, or shrink down to no less than the minimum size, a disk no running VM uses."""
    return vhd_resize.resize(path, size_bytes, progress)


def merge_into_parent(path: str, progress: Progress | None = None) -> VhdInfo:
    """Merge a differencing disk into its parent, then delete it (Hyper-V's Merge to parent)."""
    return vhd_merge.merge_into_parent(path, progress)


def reconnect(path: str, new_parent: str, ignore_id_mismatch: bool = False) -> VhdInfo:
    """Point a differencing disk at its moved parent, which must have the old parent's identity
    (identifier, unless ``ignore_id_mismatch``) and size."""
    return vhd_merge.reconnect(path, new_parent, ignore_id_mismatch)
