"""The on-disk structures of VHDX files ([MS-VHDX] 2.x), read with ``struct``.

A file identifier, two 4 KiB headers (the valid one with the highest sequence number is current),
two copies of the region table (BAT and metadata regions) and the metadata items (file
parameters, virtual disk size and id, sector sizes, parent locator). Everything is little-endian;
GUIDs are Windows GUID structures (``uuid.UUID(bytes_le=...)``). As for VHD (``vhd_headers``),
every offset and length is checked against the file before it is used, and a damaged structure
raises ``HvError`` naming the file and what is wrong.
"""

from __future__ import annotations

import os
import struct
import uuid
from dataclasses import dataclass
from typing import BinaryIO

from hvmanager.backend.crc32c import crc32c
from hvmanager.backend.vhd_headers import damaged, read_at

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
        block = bytearray(read_at(handle, offset, 4 * KIB))
        if len(block) < 4 * KIB:
            continue
        signature, checksum, sequence, _fw, data_write, log_guid, *_rest = _HEADER.unpack_from(block)
        block[4:8] = b"\0\0\0\0"
        if signature == b"head" and crc32c(bytes(block)) == checksum and (best is None or sequence > best[0]):
            best = (sequence, _guid(data_write), log_guid != bytes(16))
    if best is None:
        raise damaged(path, "VHDX", "neither of its two headers is valid")
    return best


def _regions(path: str, handle: BinaryIO, length: int) -> dict[uuid.UUID, tuple[int, int]]:
    for offset in (192 * KIB, 256 * KIB):
        block = bytearray(read_at(handle, offset, 64 * KIB))
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
    raise damaged(path, "VHDX", "it has no valid region table with a BAT and metadata region")


def _metadata_table(path: str, handle: BinaryIO, region: tuple[int, int]) -> dict[uuid.UUID, tuple[int, int]]:
    """Each metadata item's (file offset, length), from the table at the start of the region."""
    start, length = region
    table = read_at(handle, start, 64 * KIB)
    signature, count = _METADATA_HEADER.unpack_from(table)
    if signature != b"metadata" or count > 2047:
        raise damaged(path, "VHDX", "its metadata table is not valid")
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
        if read_at(handle, 0, 8) != b"vhdxfile" or length < 1 * MIB:
            raise damaged(path, "VHDX", "it has no VHDX file identifier")
        sequence, data_write, log_pending = _current_header(path, handle)
        regions = _regions(path, handle, length)
        table = _metadata_table(path, handle, regions[METADATA_REGION])
        items = {key: read_at(handle, offset, size) for key, (offset, size) in table.items()}
    params = items.get(FILE_PARAMETERS, b"")
    size = items.get(VIRTUAL_DISK_SIZE, b"")
    if len(params) < 8 or len(size) < 8:
        raise damaged(path, "VHDX", "its file parameters or virtual disk size are missing")
    block_size, flags = struct.unpack_from("<II", params)
    if not MIB <= block_size <= 256 * MIB or block_size & (block_size - 1):
        raise damaged(path, "VHDX", f"its block size {block_size} is not a power of 2 from 1 to 256 MiB")
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
        raw = read_at(handle, vhdx.bat_offset, vhdx.bat_length)
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
                raise damaged(path, "VHDX", "it has no sector size metadata item")
            handle.seek(vhdx.item_offsets[key])
            handle.write(struct.pack("<I", value))
        handle.flush()
        os.fsync(handle.fileno())
