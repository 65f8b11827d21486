"""The on-disk structures of VHD files, read with ``struct`` after Microsoft's published spec (VHDX
files: ``vhdx_headers``).

VHD (Virtual Hard Disk Image Format Specification, 2006): a 512-byte big-endian footer at the end of
the file (copied at offset 0 for dynamic and differencing disks), and for those a 1024-byte dynamic
header with the block allocation table (BAT), the parent's unique id and name and eight parent
locators (``W2ku`` absolute and ``W2ru`` relative Windows paths in UTF-16 LE).

Files come from anybody: every offset and length is checked against the file before it is used,
and a damaged structure raises ``HvError`` naming the file and what is wrong (``damaged``).
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from hvmanager.backend.errors import HvError

VHD_FIXED, VHD_DYNAMIC, VHD_DIFFERENCING = 2, 3, 4
VHD_UNUSED_BLOCK = 0xFFFFFFFF
VHD_SECTOR = 512
_VHD_FOOTER = struct.Struct(">8sIIQI4sI4sQQIII16sB")
_VHD_DYNAMIC = struct.Struct(">8sQQIIII16sI4x512s")
_VHD_LOCATOR = struct.Struct(">IIIIQ")
_LOCATOR_MAX = 64 * 1024  # a path; anything longer is not a locator


@dataclass(frozen=True)
class VhdFooter:
    """The fields of a VHD footer that matter here."""

    disk_type: int  # VHD_FIXED, VHD_DYNAMIC or VHD_DIFFERENCING
    current_size: int
    data_offset: int  # where the dynamic header is (dynamic and differencing disks)
    unique_id: str


@dataclass(frozen=True)
class VhdDynamicHeader:
    """The dynamic header of a dynamic or differencing VHD."""

    table_offset: int
    max_table_entries: int
    block_size: int
    parent_unique_id: str
    parent_name: str
    locators: dict[str, str] = field(default_factory=dict)  # platform code ("W2ku") -> path text


@dataclass(frozen=True)
class VhdFile:
    """A parsed VHD file."""

    footer: VhdFooter
    dynamic: VhdDynamicHeader | None
    file_length: int


def damaged(path: str, kind: str, reason: str) -> HvError:
    """The error of a file that is not a valid ``kind`` (VHD, VHDX) file, and why."""
    return HvError(f"'{path}' is not a valid {kind} file: {reason}.", "The file may be damaged or truncated.")


def _vhd_checksum(block: bytes, at: int) -> int:
    return ~sum(block[:at] + block[at + 4 :]) & 0xFFFFFFFF


def _parse_footer(block: bytes) -> VhdFooter | None:
    cookie, _f, _v, data_offset, _t, _a, _av, _os, _o, size, _g, dtype, checksum, uid, _s = (
        _VHD_FOOTER.unpack_from(block)
    )
    if cookie != b"conectix" or checksum != _vhd_checksum(block, 64):
        return None
    return VhdFooter(dtype, size, data_offset, str(uuid.UUID(bytes=uid)))


def read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes at ``offset`` (fewer at the end of the file)."""
    handle.seek(offset)
    return handle.read(length)


def read_vhd(path: str) -> VhdFile:
    """Parse a VHD file's footer and (for dynamic and differencing disks) its dynamic header."""
    with open(path, "rb") as handle:
        length = handle.seek(0, os.SEEK_END)
        if length < VHD_SECTOR:
            raise damaged(path, "VHD", "it is shorter than its 512-byte footer")
        # The copy at offset 0 stands in for a damaged footer at the end (the spec's recovery rule).
        footer = _parse_footer(read_at(handle, length - VHD_SECTOR, VHD_SECTOR))
        footer = footer or _parse_footer(read_at(handle, 0, VHD_SECTOR))
        if footer is None:
            raise damaged(path, "VHD", "its footer has a wrong cookie or checksum")
        if footer.disk_type == VHD_FIXED:
            return VhdFile(footer, None, length)
        if footer.disk_type not in (VHD_DYNAMIC, VHD_DIFFERENCING):
            raise damaged(path, "VHD", f"unknown disk type {footer.disk_type}")
        if footer.data_offset + 1024 > length:
            raise damaged(path, "VHD", "its dynamic header lies beyond the end of the file")
        dynamic = _parse_dynamic(path, handle, footer.data_offset, length)
    return VhdFile(footer, dynamic, length)


def _parse_dynamic(path: str, handle: BinaryIO, offset: int, length: int) -> VhdDynamicHeader:
    block = read_at(handle, offset, 1024)
    fields = _VHD_DYNAMIC.unpack_from(block)
    cookie, _data, table, _ver, entries, block_size, checksum, parent_id, _ts, name = fields
    if cookie != b"cxsparse" or checksum != _vhd_checksum(block, 36):
        raise damaged(path, "VHD", "its dynamic header has a wrong cookie or checksum")
    if block_size < VHD_SECTOR or block_size & (block_size - 1) or table + entries * 4 > length:
        raise damaged(path, "VHD", "its block size or block allocation table is out of range")
    locators: dict[str, str] = {}
    for index in range(8):
        code, _space, data_len, _res, data_offset = _VHD_LOCATOR.unpack_from(block, 576 + 24 * index)
        if code == 0 or data_len == 0 or data_len > _LOCATOR_MAX or data_offset + data_len > length:
            continue
        platform = code.to_bytes(4, "big").decode("latin-1")
        text = _decode_locator(platform, read_at(handle, data_offset, data_len))
        if text:
            locators.setdefault(platform, text)
    return VhdDynamicHeader(
        table_offset=table,
        max_table_entries=entries,
        block_size=block_size,
        parent_unique_id=str(uuid.UUID(bytes=parent_id)),
        parent_name=name.decode("utf-16-be", errors="replace").split("\0", 1)[0],
        locators=locators,
    )


def _decode_locator(platform: str, data: bytes) -> str:
    """A locator's path text: UTF-16 LE for W2ku/W2ru, ANSI for the old Wi2k/Wi2r, a URL for MacX."""
    if platform in ("W2ku", "W2ru"):
        text = data.decode("utf-16-le", errors="replace")
    elif platform == "MacX":
        text = data.decode("utf-8", errors="replace").removeprefix("file://")
    else:
        text = data.decode("latin-1")
    return text.split("\0", 1)[0]


def vhd_bat(path: str, vhd: VhdFile) -> list[int]:
    """The BAT of a dynamic or differencing VHD: each block's sector offset, or VHD_UNUSED_BLOCK."""
    if vhd.dynamic is None:
        return []
    with open(path, "rb") as handle:
        raw = read_at(handle, vhd.dynamic.table_offset, vhd.dynamic.max_table_entries * 4)
    return list(struct.unpack(f">{len(raw) // 4}I", raw))
