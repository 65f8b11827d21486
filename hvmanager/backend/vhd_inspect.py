"""Inspecting virtual hard disk files (Get-VHD), including VHD/VHDX files made by other tools.

The format comes from the file's magic bytes (``qemuimg.detect_format``, never a probe). Everything
else is read from the file's own headers (``vhd_headers``, ``vhdx_headers``, ``qcow2_header``), so
VHD and VHDX differencing disks, which QEMU cannot open, inspect as well as the rest. How each
format's type is decided:

- VHD and VHDX: the type written in the file (VHDX: "has parent" is differencing, "leave blocks
  allocated" is fixed).
- qcow2: a backing file makes it differencing; otherwise the type hvmanager recorded when it made
  the file (``vhd_identity.recorded_type``), else dynamic (qcow2 grows as written: a guest that
  filled a dynamic disk must not make it look fixed, or Compact would be refused when needed).
- raw: a host block device is fixed; a file has its recorded type, else it is fixed when the host
  fully allocated it (st_blocks × 512 ≥ its size) and dynamic when sparse.

Parents: a qcow2 backing file name is resolved against the child's folder (as QEMU does); VHD and
VHDX parents come from their parent locators (relative path first, then the absolute ones; Windows
drive paths can't exist here and are only shown).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

from hvmanager.backend.errors import HvError
from hvmanager.backend.qcow2_header import read_qcow2
from hvmanager.backend.qemuimg import detect_format
from hvmanager.backend.vhd_allocation import chain_data_end, minimum_size
from hvmanager.backend.vhd_headers import VHD_DIFFERENCING, VHD_FIXED, read_vhd
from hvmanager.backend.vhd_identity import identifier, recorded_type
from hvmanager.backend.vhd_types import DiskType, ParentLink, VhdInfo
from hvmanager.backend.vhdx_headers import read_vhdx

CHAIN_LIMIT = 64
_VHD_LOCATOR_ORDER = ("W2ru", "MacX", "W2ku", "Wi2r", "Wi2k")
_VHDX_LOCATOR_ORDER = ("relative_path", "volume_path", "absolute_win32_path")
_WINDOWS_ABSOLUTE = re.compile(r"^([A-Za-z]:[\\/]|\\\\|//)")


@dataclass(frozen=True)
class _Facts:
    type: DiskType
    size: int
    block_size: int
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    parent: str | None = None  # resolved parent path (or unresolvable text)
    parent_format: str | None = None  # the format the child records for it (qcow2 only)


def _host_file(path: str) -> os.stat_result:
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise HvError(f"'{path}' does not exist.", "Check the path of the virtual hard disk.") from exc
    except OSError as exc:
        raise HvError(f"'{path}' can't be read: {exc.strerror}.") from exc
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise HvError(f"'{path}' is not a virtual hard disk file (it is a folder or a special file).")
    return info


def _device_size(path: str) -> int:
    with open(path, "rb") as handle:
        return handle.seek(0, os.SEEK_END)


def _resolve(child: str, texts: list[str]) -> str | None:
    """The first parent path that exists, else the first one usable here, else the first text."""
    folder = os.path.dirname(child)
    usable = []
    for text in texts:
        if text and not _WINDOWS_ABSOLUTE.match(text):
            usable.append(os.path.normpath(os.path.join(folder, text.replace("\\", "/"))))
    if not usable:
        return texts[0] if texts else None
    return next((candidate for candidate in usable if os.path.exists(candidate)), usable[0])


def _vhd_facts(path: str) -> _Facts:
    vhd = read_vhd(path)
    kinds = {VHD_FIXED: DiskType.FIXED, VHD_DIFFERENCING: DiskType.DIFFERENCING}
    disk_type = kinds.get(vhd.footer.disk_type, DiskType.DYNAMIC)
    dynamic = vhd.dynamic
    parent = None
    if disk_type is DiskType.DIFFERENCING and dynamic is not None:
        texts = [dynamic.locators[code] for code in _VHD_LOCATOR_ORDER if dynamic.locators.get(code)]
        parent = _resolve(path, texts or ([dynamic.parent_name] if dynamic.parent_name else []))
    block = dynamic.block_size if dynamic else 0
    return _Facts(disk_type, vhd.footer.current_size, block, parent=parent)


def _vhdx_facts(path: str) -> _Facts:
    vhdx = read_vhdx(path)
    if vhdx.has_parent:
        disk_type = DiskType.DIFFERENCING
    else:
        disk_type = DiskType.FIXED if vhdx.leave_blocks_allocated else DiskType.DYNAMIC
    parent = None
    if vhdx.has_parent:
        texts = [vhdx.parent_locator[key] for key in _VHDX_LOCATOR_ORDER if vhdx.parent_locator.get(key)]
        parent = _resolve(path, texts)
    return _Facts(
        disk_type,
        vhdx.virtual_size,
        0 if disk_type is DiskType.FIXED else vhdx.block_size,
        vhdx.logical_sector_size,
        vhdx.physical_sector_size,
        parent,
    )


def _qcow2_facts(path: str, host: os.stat_result) -> _Facts:
    header = read_qcow2(path)
    if header.backing_file:
        parent = header.backing_file
        if not parent.startswith("json:") and "://" not in parent:
            parent = os.path.normpath(os.path.join(os.path.dirname(path), parent))
        return _Facts(
            DiskType.DIFFERENCING,
            header.size,
            header.cluster_size,
            parent=parent,
            parent_format=header.backing_format,
        )
    if recorded_type(path) is DiskType.FIXED:
        return _Facts(DiskType.FIXED, header.size, 0)
    return _Facts(DiskType.DYNAMIC, header.size, header.cluster_size)


def _raw_facts(path: str, host: os.stat_result) -> _Facts:
    if stat.S_ISBLK(host.st_mode):
        return _Facts(DiskType.FIXED, _device_size(path), 0)
    recorded = recorded_type(path)
    fixed = recorded is DiskType.FIXED if recorded else host.st_blocks * 512 >= host.st_size
    return _Facts(DiskType.FIXED if fixed else DiskType.DYNAMIC, host.st_size, 0)


def _facts(path: str, fmt: str, host: os.stat_result) -> _Facts:
    if fmt == "vpc":
        return _vhd_facts(path)
    if fmt == "vhdx":
        return _vhdx_facts(path)
    if fmt == "qcow2":
        return _qcow2_facts(path, host)
    return _raw_facts(path, host)


def _link(path: str, recorded_format: str | None) -> ParentLink:
    try:
        _host_file(path)
        fmt = recorded_format or detect_format(path)
    except (HvError, OSError):
        return ParentLink(path, None, False)
    return ParentLink(path, fmt, True)


def parent_chain(path: str, fmt: str | None = None) -> tuple[ParentLink, ...]:
    """A disk's parents, nearest first, each with its presence; the walk stops at a missing or
    unreadable parent and at a loop (from headers only: no ``qemu-img`` run)."""
    path = os.path.abspath(path)
    host = _host_file(path)
    return _chain_from(path, _facts(path, fmt or detect_format(path), host))


def _chain_from(path: str, facts: _Facts) -> tuple[ParentLink, ...]:
    seen = {os.path.realpath(path)}
    links: list[ParentLink] = []
    while facts.parent is not None and len(links) < CHAIN_LIMIT:
        link = _link(facts.parent, facts.parent_format)
        links.append(link)
        if not link.present or link.format is None or os.path.realpath(link.path) in seen:
            break
        seen.add(os.path.realpath(link.path))
        try:
            facts = _facts(link.path, link.format, os.stat(link.path))
        except (HvError, OSError):
            break
    return tuple(links)


def inspect(path: str, with_minimum_size: bool = False) -> VhdInfo:
    """Inspect a disk file made by anybody (a fixed VHD is recognised by its footer).

    ``file_size`` is what the file takes on the host (st_blocks × 512; a block device's size).
    ``minimum_size`` (when asked for) is the end of the last non-zero data of the disk and its
    parents, rounded up to a whole MiB, at least 3 MiB (``vhd_allocation``).
    """
    path = os.path.abspath(path)
    host = _host_file(path)
    try:
        fmt = detect_format(path)
        facts = _facts(path, fmt, host)
    except OSError as exc:
        raise HvError(f"'{path}' can't be read: {exc.strerror}.") from exc
    parents = _chain_from(path, facts)
    minimum = None
    if with_minimum_size:
        layers = [(path, fmt)]
        for link in parents:
            if not link.present or link.format is None or (link.path, link.format) in layers:
                break
            layers.append((link.path, link.format))
        minimum = minimum_size(chain_data_end(layers, facts.size), facts.size)
    return VhdInfo(
        path=path,
        format=fmt,
        type=facts.type,
        size=facts.size,
        file_size=facts.size if stat.S_ISBLK(host.st_mode) else host.st_blocks * 512,
        minimum_size=minimum,
        block_size=facts.block_size,
        logical_sector_size=facts.logical_sector_size,
        physical_sector_size=facts.physical_sector_size,
        identifier=identifier(path, fmt),
        parent_path=facts.parent,
        parents=parents,
    )
