"""What the disk editor asks ``qemu-img`` for when it writes a disk: the format's options for a type,
the options a rewrite keeps (qcow2 cluster size and features, VHDX block size), and the checks on a
target (format, type, largest size, destination path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hvmanager.backend import limits, vhdx_headers
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.qemuimg import create_options, image_info
from hvmanager.backend.vhd_types import DiskType, VhdInfo

FORMATS = tuple(fmt for fmt, _ext, _max in limits.DISK_FORMATS.values())
_QCOW2_KEPT = {  # qemu-img info's format-specific key -> qemu-img create option
    "compat": "compat",
    "refcount-bits": "refcount_bits",
    "extended-l2": "extended_l2",
    "compression-type": "compression_type",
    "lazy-refcounts": "lazy_refcounts",
}


def format_maximum(fmt: str) -> int:
    """The largest virtual size of a disk of this qemu-img format."""
    return next((maximum for f, _ext, maximum in limits.DISK_FORMATS.values() if f == fmt), 64 * limits.TIB)


def check_target(fmt: str, disk_type: DiskType, size: int) -> None:
    """Refuse a target format, type or size a converted disk can't have."""
    if fmt not in FORMATS:
        names = ", ".join(limits.DISK_FORMATS)
        raise ValidationError(f"'{fmt}' is not a disk format hvmanager writes; choose one of {names}.")
    if disk_type is DiskType.DIFFERENCING:
        raise ValidationError(
            "A conversion makes a fixed size or dynamically expanding disk.",
            "Make a differencing disk with New Virtual Hard Disk instead.",
        )
    if size > format_maximum(fmt):
        label = limits.format_for_qemu(fmt)
        raise ValidationError(
            f"The disk is {limits.human_size(size)}; a {label} disk can be at most "
            f"{limits.human_size(format_maximum(fmt))}.",
            "Choose VHDX or QCOW2, or shrink the disk first.",
        )


def check_destination(source: str, destination: str) -> Path:
    """The absolute destination of a new disk: in an existing folder, not taken, not the source."""
    target = Path(destination).expanduser().absolute()
    if not destination.strip() or target.name in ("", ".", ".."):
        raise ValidationError("Enter the name of the new disk file.")
    if target.exists() or target.is_symlink():
        raise ValidationError(
            f"'{target}' already exists.", "Choose another name: the editor never overwrites."
        )
    if target.resolve() == Path(source).resolve():
        raise ValidationError("The new disk can't replace the disk it is made from.")
    if not target.parent.is_dir():
        raise ValidationError(f"The folder '{target.parent}' does not exist.")
    return target


def new_disk_options(fmt: str, disk_type: DiskType, block_size: int | None = None) -> list[str]:
    """``-o`` options for a fixed or dynamic disk of ``fmt`` (a VHDX with ``block_size`` if given)."""
    options = create_options(fmt, fixed=disk_type is DiskType.FIXED)
    if fmt == "vhdx" and block_size:
        if options:
            return ["-o", f"{options[1]},block_size={block_size}"]
        return ["-o", f"block_size={block_size}"]
    return options


def rewrite_options(info: VhdInfo) -> list[str]:
    """``-o`` options that give a rewritten disk the original's layout (type, block or cluster size,
    qcow2 features)."""
    disk_type = DiskType.DYNAMIC if info.type is DiskType.DIFFERENCING else info.type
    if info.format == "vhdx":
        return new_disk_options("vhdx", disk_type, vhdx_block_size(info))
    if info.format != "qcow2":
        return new_disk_options(info.format, disk_type)
    details = qcow2_details(info.path)
    pairs = [f"cluster_size={details.get('cluster-size', 65536)}"]
    for key, option in _QCOW2_KEPT.items():
        if key in details:
            value = details[key]
            pairs.append(f"{option}={'on' if value is True else 'off' if value is False else value}")
    if info.type is DiskType.FIXED:
        pairs.append("preallocation=falloc")
    return ["-o", ",".join(pairs)]


def vhdx_block_size(info: VhdInfo) -> int | None:
    """The block size written in a VHDX file (Get-VHD shows 0 for a fixed one, which has one too)."""
    if info.format != "vhdx":
        return None
    return info.block_size or vhdx_headers.read_vhdx(info.path).block_size


def qcow2_details(path: str) -> dict[str, Any]:
    """The qcow2 header's features (format-specific data of ``qemu-img info``, plus the cluster size);
    refuses images hvmanager can't rewrite faithfully (encrypted, external data file)."""
    info = image_info(path, "qcow2")
    data: dict[str, Any] = dict(info.get("format-specific", {}).get("data", {}))
    if info.get("encrypted") or "encrypt" in data:
        raise ValidationError(f"'{path}' is encrypted; hvmanager can't edit encrypted disks.")
    if "data-file" in data:
        raise ValidationError(f"'{path}' keeps its data in an external file; hvmanager can't edit it.")
    if data.get("corrupt"):
        raise ValidationError(
            f"'{path}' is marked corrupt.", f"Repair it first: qemu-img check -r all '{path}'."
        )
    data["cluster-size"] = info.get("cluster-size", 65536)
    return data
