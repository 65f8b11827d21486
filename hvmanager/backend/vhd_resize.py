"""Expand and shrink a disk file (Resize-VHD) that no running VM uses.

qcow2 and raw disks are resized in place by ``qemu-img resize`` (``--shrink`` to shrink; a fixed
disk's new space is allocated with ``--preallocation=falloc``). QEMU can't resize VHD and VHDX
files, so those are rewritten: an empty disk of the same format, type and block size is made at the
new size under a temporary name, the data is copied into it (``qemu-img convert -n
--target-is-zero``, only the allocated parts; when shrinking, the source is read through a raw
layer cut at the new size), and it replaces the original in one rename with the original's
identity. Either way, the content up to the smaller of the two sizes is unchanged, and the new area
of an expanded disk reads as zeros.

A shrink never drops data: the new size must be at least the disk's minimum size (where the data of
the disk and its parents ends, from the allocation maps: ``vhd_inspect``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hvmanager.backend import limits
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.vhd_actions import require_action
from hvmanager.backend.vhd_files import replace, reserve_space, temporary_beside
from hvmanager.backend.vhd_inspect import inspect
from hvmanager.backend.vhd_process import kept_offline, run_qemu_img
from hvmanager.backend.vhd_targets import rewrite_options
from hvmanager.backend.vhd_types import DiskType, EditAction, Progress, VhdInfo

RESIZED_IN_PLACE = ("qcow2", "raw")


def resize(path: str, size_bytes: int, progress: Progress | None = None) -> VhdInfo:
    """Expand, or shrink down to no less than the minimum size, a disk no running VM uses.

    Asking for the current size changes nothing.
    """
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int):
        raise ValidationError("The size must be a whole number of bytes.")
    info = inspect(path)
    if size_bytes == info.size:
        return info
    shrinking = size_bytes < info.size
    require_action(info, EditAction.SHRINK if shrinking else EditAction.EXPAND)
    limits.require(limits.disk_size_problem(size_bytes, info.format))
    if shrinking:
        _check_minimum(info, size_bytes)
    if info.format in RESIZED_IN_PLACE:
        _resize_in_place(info, size_bytes, shrinking)
    else:
        _resize_by_rewrite(info, size_bytes, shrinking, progress)
    if progress is not None:
        progress(100.0)
    return inspect(info.path)


def _check_minimum(info: VhdInfo, size_bytes: int) -> None:
    minimum = inspect(info.path, with_minimum_size=True).minimum_size
    if minimum is None:
        raise HvError(f"Where the data of '{info.path}' ends can't be determined, so it can't be shrunk.")
    if size_bytes < minimum:
        raise ValidationError(
            f"The disk holds data up to {limits.human_size(minimum)}: it can't be shrunk below its "
            f"minimum size, {limits.human_size(minimum)} ({minimum} bytes).",
            "Shrink the partitions and file systems inside the virtual machine first.",
        )


def _resize_in_place(info: VhdInfo, size_bytes: int, shrinking: bool) -> None:
    args = ["resize", "-q", "-f", info.format]
    if shrinking:
        args.append("--shrink")
    elif info.type is DiskType.FIXED:
        args.append("--preallocation=falloc")
    length = os.stat(info.path).st_size
    try:
        run_qemu_img([*args, info.path, str(size_bytes)], space_for=Path(info.path).parent)
    except HvError:
        if info.format == "raw" and not shrinking and os.stat(info.path).st_size != length:
            os.truncate(info.path, length)  # a preallocation that ran out of space: as it was
        raise


def _resize_by_rewrite(info: VhdInfo, size_bytes: int, shrinking: bool, progress: Progress | None) -> None:
    original = Path(info.path)
    with kept_offline(original), temporary_beside(original) as temp:
        create = ["create", "-q", "-f", info.format, *rewrite_options(info), str(temp), str(size_bytes)]
        run_qemu_img(create, space_for=original.parent)
        source = ["-f", info.format, info.path]
        if shrinking:  # the source seen through a raw layer that ends at the new size
            spec = {
                "driver": "raw",
                "size": size_bytes,
                "file": {"driver": info.format, "file": {"driver": "file", "filename": info.path}},
            }
            source = ["json:" + json.dumps(spec)]
        copy = ["convert", "-p", "-n", "--target-is-zero", *source, "-O", info.format, str(temp)]
        run_qemu_img(copy, progress, space_for=original.parent)
        if info.type is DiskType.FIXED:
            reserve_space(temp)
        replace(temp, original, info.format)
