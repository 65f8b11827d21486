"""The on-disk structures of VHD and VHDX files, read with ``struct`` after Microsoft's published specs.

VHD (Virtual Hard Disk Image Format Specification, 2006): a 512-byte big-endian footer at the end of
the file (copied at offset 0 for dynamic and differencing disks), and for those a 1024-byte dynamic
header with the block allocation table (BAT), the parent's unique id and name and eight parent
locators (``W2ku`` absolute and ``W2ru`` relative Windows paths in UTF-16 LE).

VHDX ([MS-VHDX] 2.x): a file identifier, two 4 KiB headers (the valid one with the highest sequence
number is current), two copies of the region table (BAT and metadata regions) and the metadata
items (file parameters, virtual disk size and id, sector sizes, parent locator). Everything is
little-endian; GUIDs are Windows GUID structures (``uuid.UUID(bytes_le=...)``).

Files come from anybody: every offset and length is checked against the file before it is used,
and a damaged structure raises ``HvError`` naming the file and what is wrong.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass, field
from typing import BinaryIO

from hvmanager.backend.crc32c import crc32c
from hvmanager.backend.errors import HvError

# --- VHD -----------------------------------------------------------------------------------------

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


def _damaged(path: str, kind: str, reason: str) -> HvError:
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


def _read_at(handle: BinaryIO, offset: int, length: int) -> bytes:
    handle.seek(offset)
    return handle.read(length)


def read_vhd(path: str) -> VhdFile:
    """Parse a VHD file's footer and (for dynamic and differencing disks) its dynamic header."""
    with open(path, "rb") as handle:
        length = handle.seek(0, os.SEEK_END)
        if length < VHD_SECTOR:
            raise _damaged(path, "VHD", "it is shorter than its 512-byte footer")
        # The copy at offset 0 stands in for a damaged footer at the end (the spec's recovery rule).
        footer = _parse_footer(_read_at(handle, length - VHD_SECTOR, VHD_SECTOR))
        footer = footer or _parse_footer(_read_at(handle, 0, VHD_SECTOR))
        if footer is None:
            raise _damaged(path, "VHD", "its footer has a wrong cookie or checksum")
        if footer.disk_type == VHD_FIXED:
            return VhdFile(footer, None, length)
        if footer.disk_type not in (VHD_DYNAMIC, VHD_DIFFERENCING):
            raise _damaged(path, "VHD", f"unknown disk type {footer.disk_type}")
        if footer.data_offset + 1024 > length:
            raise _damaged(path, "VHD", "its dynamic header lies beyond the end of the file")
        dynamic = _parse_dynamic(path, handle, footer.data_offset, length)
    return VhdFile(footer, dynamic, length)


def _parse_dynamic(path: str, handle: BinaryIO, offset: int, length: int) -> VhdDynamicHeader:
    block = _read_at(handle, offset, 1024)
    fields = _VHD_DYNAMIC.unpack_from(block)
    cookie, _data, table, _ver, entries, block_size, checksum, parent_id, _ts, name = fields
    if cookie != b"cxsparse" or checksum != _vhd_checksum(block, 36):
        raise _damaged(path, "VHD", "its dynamic header has a wrong cookie or checksum")
    if block_size < VHD_SECTOR or block_size & (block_size - 1) or table + entries * 4 > length:
        raise _damaged(path, "VHD", "its block size or block allocation table is out of range")
    locators: dict[str, str] = {}
    for index in range(8):
        code, _space, data_len, _res, data_offset = _VHD_LOCATOR.unpack_from(block, 576 + 24 * index)
        if code == 0 or data_len == 0 or data_len > _LOCATOR_MAX or data_offset + data_len > length:
            continue
        platform = code.to_bytes(4, "big").decode("latin-1")
        text = _decode_locator(platform, _read_at(handle, data_offset, data_len))
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
        raw = _read_at(handle, vhd.dynamic.table_offset, vhd.dynamic.max_table_entries * 4)
    return list(struct.unpack(f">{len(raw) // 4}I", raw))


# --- VHDX ----------------------------------------------------------------------------------------

KIB, MIB = 1024, 1024 * 1024
BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
VIRTUAL_DISK_ID = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_PARENT_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
# BAT payload block states ([MS-VHDX] 2.5.1.1); 6 and 7 hold data in the file.
PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT = 6, 7
_HEADER = struct.Struct("<4sIQ16s16s16sHHIQ")
_REGION_HEADER = struct.Struct("<4sII4x")
_REGION_ENTRY = struct.Struct("<16sQII")
_METADATA_HEADER = struct.Struct("<8s2xH20x")
_METADATA_ENTRY = struct.Struct("<16sIII4x")


@dataclass(frozen=True)
class VhdxFile:
    """A parsed VHDX file (its current header, regions and metadata)."""

    sequence_number: int
    data_write_guid: str
    log_pending: bool  # a log to replay: the BAT and metadata in place may be out of date
    block_size: int
    leave_blocks_allocated: bool  # a fixed disk
    has_parent: bool  # a differencing disk
    virtual_size: int
    virtual_disk_id: str
    logical_sector_size: int
    physical_sector_size: int
    parent_locator: dict[str, str]  # parent_linkage, relative_path, absolute_win32_path, ...
    bat_offset: int
    bat_length: int
    item_offsets: dict[uuid.UUID, int]  # file offset of each metadata item's data

    @property
    def chunk_ratio(self) -> int:
        """Payload blocks per sector bitmap block ([MS-VHDX] 2.5.1)."""
        return (2**23 * self.logical_sector_size) // self.block_size


def _guid(data: bytes) -> str:
    return str(uuid.UUID(bytes_le=data))


def _current_header(path: str, handle: BinaryIO) -> tuple[int, str, bool]:
    best: tuple[int, str, bool] | None = None
    for offset in (64 * KIB, 128 * KIB):
        block = bytearray(_read_at(handle, offset, 4 * KIB))
        if len(block) < 4 * KIB:
            continue
        signature, checksum, sequence, _fw, data_write, log_guid, *_rest = _HEADER.unpack_from(block)
        block[4:8] = b"\0\0\0\0"
        if signature == b"head" and crc32c(bytes(block)) == checksum and (best is None or sequence > best[0]):
            best = (sequence, _guid(data_write), log_guid != bytes(16))
    if best is None:
        raise _damaged(path, "VHDX", "neither of its two headers is valid")
    return best


def _regions(path: str, handle: BinaryIO, length: int) -> dict[uuid.UUID, tuple[int, int]]:
    for offset in (192 * KIB, 256 * KIB):
        block = bytearray(_read_at(handle, offset, 64 * KIB))
        if len(block) < 64 * KIB:
            continue
        signature, checksum, count = _REGION_HEADER.unpack_from(block)
        block[4:8] = b"\0\0\0\0"
        if signature != b"regi" or count > 2047 or crc32c(bytes(block)) != checksum:
            continue
        regions: dict[uuid.UUID, tuple[int, int]] = {}
        for index in range(count):
            guid, file_offset, region_length, _required = _REGION_ENTRY.unpack_from(block, 16 + 32 * index)
            if file_offset + region_length <= length:
                regions[uuid.UUID(bytes_le=guid)] = (file_offset, region_length)
        if BAT_REGION in regions and METADATA_REGION in regions:
            return regions
    raise _damaged(path, "VHDX", "it has no valid region table with a BAT and metadata region")


def _metadata_table(path: str, handle: BinaryIO, region: tuple[int, int]) -> dict[uuid.UUID, tuple[int, int]]:
    """Each metadata item's (file offset, length), from the table at the start of the region."""
    start, length = region
    table = _read_at(handle, start, 64 * KIB)
    signature, count = _METADATA_HEADER.unpack_from(table)
    if signature != b"metadata" or count > 2047:
        raise _damaged(path, "VHDX", "its metadata table is not valid")
    items: dict[uuid.UUID, tuple[int, int]] = {}
    for index in range(count):
        guid, offset, item_length, _flags = _METADATA_ENTRY.unpack_from(table, 32 + 32 * index)
        if 0 < item_length <= MIB and offset + item_length <= length:  # items are at most 1 MiB
            items[uuid.UUID(bytes_le=guid)] = (start + offset, item_length)
    return items


def _parent_locator(data: bytes) -> dict[str, str]:
    if len(data) < 20 or uuid.UUID(bytes_le=data[:16]) != VHDX_PARENT_LOCATOR_TYPE:
        return {}
    (count,) = struct.unpack_from("<H", data, 18)
    entries: dict[str, str] = {}
    for index in range(count):
        if 20 + 12 * index + 12 > len(data):
            break
        key_off, value_off, key_len, value_len = struct.unpack_from("<IIHH", data, 20 + 12 * index)
        if key_off + key_len > len(data) or value_off + value_len > len(data):
            continue
        key = data[key_off : key_off + key_len].decode("utf-16-le", errors="replace")
        entries[key] = data[value_off : value_off + value_len].decode("utf-16-le", errors="replace")
    return entries


def _u32(items: dict[uuid.UUID, bytes], key: uuid.UUID, default: int) -> int:
    data = items.get(key, b"")
    return int.from_bytes(data[:4], "little") if len(data) >= 4 else default


def read_vhdx(path: str) -> VhdxFile:
    """Parse a VHDX file's current header, region table and metadata."""
    with open(path, "rb") as handle:
        length = handle.seek(0, os.SEEK_END)
        if _read_at(handle, 0, 8) != b"vhdxfile" or length < 1 * MIB:
            raise _damaged(path, "VHDX", "it has no VHDX file identifier")
        sequence, data_write, log_pending = _current_header(path, handle)
        regions = _regions(path, handle, length)
        table = _metadata_table(path, handle, regions[METADATA_REGION])
        items = {key: _read_at(handle, offset, size) for key, (offset, size) in table.items()}
    params = items.get(FILE_PARAMETERS, b"")
    size = items.get(VIRTUAL_DISK_SIZE, b"")
    if len(params) < 8 or len(size) < 8:
        raise _damaged(path, "VHDX", "its file parameters or virtual disk size are missing")
    block_size, flags = struct.unpack_from("<II", params)
    if not MIB <= block_size <= 256 * MIB or block_size & (block_size - 1):
        raise _damaged(path, "VHDX", f"its block size {block_size} is not a power of 2 from 1 to 256 MiB")
    disk_id = items.get(VIRTUAL_DISK_ID, b"")
    bat_offset, bat_length = regions[BAT_REGION]
    return VhdxFile(
        sequence_number=sequence,
        data_write_guid=data_write,
        log_pending=log_pending,
        block_size=block_size,
        leave_blocks_allocated=bool(flags & 1),
        has_parent=bool(flags & 2),
        virtual_size=struct.unpack_from("<Q", size)[0],
        virtual_disk_id=_guid(disk_id[:16]) if len(disk_id) >= 16 else "",
        logical_sector_size=_u32(items, LOGICAL_SECTOR_SIZE, 512),
        physical_sector_size=_u32(items, PHYSICAL_SECTOR_SIZE, 512),
        parent_locator=_parent_locator(items.get(PARENT_LOCATOR, b"")),
        bat_offset=bat_offset,
        bat_length=bat_length,
        item_offsets={key: offset for key, (offset, _size) in table.items()},
    )


def vhdx_payload_blocks(path: str, vhdx: VhdxFile) -> list[tuple[int, int]]:
    """Each payload block's (state, file offset in bytes), in virtual order (sector bitmap entries,
    one after every ``chunk_ratio`` payload entries, are skipped)."""
    count = -(-vhdx.virtual_size // vhdx.block_size)
    ratio = vhdx.chunk_ratio
    with open(path, "rb") as handle:
        raw = _read_at(handle, vhdx.bat_offset, vhdx.bat_length)
    blocks = []
    for index in range(count):
        at = (index + index // ratio) * 8
        if at + 8 > len(raw):
            break
        (entry,) = struct.unpack_from("<Q", raw, at)
        blocks.append((entry & 7, (entry >> 20) * MIB))
    return blocks


def set_vhdx_sector_sizes(path: str, logical: int | None, physical: int | None) -> None:
    """Write the logical and/or physical sector size items of a VHDX file (the metadata region has
    no checksum; the items must exist, as in every VHDX QEMU or Hyper-V makes)."""
    vhdx = read_vhdx(path)
    with open(path, "r+b") as handle:
        for key, value in ((LOGICAL_SECTOR_SIZE, logical), (PHYSICAL_SECTOR_SIZE, physical)):
            if value is None:
                continue
            if key not in vhdx.item_offsets:
                raise _damaged(path, "VHDX", "it has no sector size metadata item")
            handle.seek(vhdx.item_offsets[key])
            handle.write(struct.pack("<I", value))
        handle.flush()
        os.fsync(handle.fileno())
