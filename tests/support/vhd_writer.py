"""A VHD writer that follows Microsoft's VHD specification (2006) to the letter, written for the
tests: it makes the fixed, dynamic and differencing files "other tools" (Hyper-V, Virtual PC, Xen)
make, so that inspection is proven on files QEMU did not write. It also turns a VHDX made by QEMU
into a differencing VHDX ([MS-VHDX] parent locator), which QEMU can't make.

Everything big-endian for VHD; VHDX metadata is little-endian. Data is given as {offset: bytes}.
"""

from __future__ import annotations

import struct
import time
import uuid
from pathlib import Path

SECTOR = 512
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
VHD_EPOCH = 946684800  # 2000-01-01 00:00:00 UTC
W2KU, W2RU = b"W2ku", b"W2ru"


def _checksum(block: bytes) -> int:
    return ~sum(block) & 0xFFFFFFFF


def chs_geometry(size: int) -> int:
    """The spec's CHS geometry algorithm (Appendix: CHS calculation), packed as in the footer."""
    total = min(size // SECTOR, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cylinder_times_heads = total // spt
    else:
        spt = 17
        cylinder_times_heads = total // spt
        heads = max(4, (cylinder_times_heads + 1023) // 1024)
        if cylinder_times_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cylinder_times_heads = total // spt
        if cylinder_times_heads >= heads * 1024:
            spt, heads = 63, 16
            cylinder_times_heads = total // spt
    return (cylinder_times_heads // heads) << 16 | heads << 8 | spt


def footer(
    disk_type: int, size: int, data_offset: int, unique_id: uuid.UUID, creator: bytes = b"win "
) -> bytes:
    """A 512-byte hard disk footer with its checksum."""
    fields = struct.pack(
        ">8sIIQI4sI4sQQIII16sB",
        b"conectix",
        2,  # features: reserved bit always set
        0x00010000,
        data_offset,
        int(time.time()) - VHD_EPOCH,
        creator,
        0x000A0000,
        b"Wi2k",
        size,
        size,
        chs_geometry(size),
        disk_type,
        0,
        unique_id.bytes,
        0,
    )
    block = fields + bytes(SECTOR - len(fields))
    return block[:64] + struct.pack(">I", _checksum(block)) + block[68:]


def write_fixed(path: Path, size: int, data: dict[int, bytes], unique_id: uuid.UUID) -> None:
    """A fixed VHD: the data, then the footer (data offset all ones, as the spec says)."""
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, chunk in data.items():
            handle.seek(offset)
            handle.write(chunk)
        handle.seek(size)
        handle.write(footer(FIXED, size, 0xFFFFFFFFFFFFFFFF, unique_id))


def _locator(code: bytes, text: str, offset: int) -> tuple[bytes, bytes]:
    encoded = text.encode("utf-16-le")
    space = -(-len(encoded) // SECTOR) * SECTOR
    entry = struct.pack(">4sIIIQ", code, space, len(encoded), 0, offset)
    return entry, encoded + bytes(space - len(encoded))


def write_dynamic(
    path: Path,
    size: int,
    data: dict[int, bytes],
    unique_id: uuid.UUID,
    block_size: int = 2 * 1024 * 1024,
    parent: tuple[uuid.UUID, str, dict[bytes, str]] | None = None,
) -> None:
    """A dynamic VHD, or a differencing one when ``parent`` = (parent id, parent file name,
    {platform code: locator path}) is given. Data offsets and lengths must be whole sectors."""
    entries = -(-size // block_size)
    bat_offset = 3 * SECTOR  # footer copy, then the 1024-byte dynamic header
    bat_bytes = -(-(entries * 4) // SECTOR) * SECTOR
    next_free = bat_offset + bat_bytes
    locator_entries, locator_data = b"", b""
    parent_id, parent_name = uuid.UUID(int=0), ""
    if parent is not None:
        parent_id, parent_name, paths = parent
        for code, text in paths.items():
            entry, blob = _locator(code, text, next_free + len(locator_data))
            locator_entries += entry
            locator_data += blob
    next_free += len(locator_data)
    bitmap_bytes = -(-(block_size // SECTOR) // 8 // SECTOR) * SECTOR
    blocks: dict[int, bytearray] = {}
    bitmaps: dict[int, bytearray] = {}
    for offset, chunk in data.items():
        for sector in range(offset // SECTOR, (offset + len(chunk)) // SECTOR):
            index, within = divmod(sector * SECTOR, block_size)
            block = blocks.setdefault(index, bytearray(block_size))
            bitmap = bitmaps.setdefault(index, bytearray(bitmap_bytes))
            piece = chunk[sector * SECTOR - offset : sector * SECTOR - offset + SECTOR]
            block[within : within + SECTOR] = piece
            bitmap[within // SECTOR // 8] |= 0x80 >> (within // SECTOR % 8)
    bat = [0xFFFFFFFF] * entries
    layout = []
    for index in sorted(blocks):
        bat[index] = next_free // SECTOR
        layout.append((next_free, bytes(bitmaps[index]) + bytes(blocks[index])))
        next_free += bitmap_bytes + block_size
    kind = DYNAMIC if parent is None else DIFFERENCING
    foot = footer(kind, size, SECTOR, unique_id)
    header = struct.pack(
        ">8sQQIIII16sI4s512s",
        b"cxsparse",
        0xFFFFFFFFFFFFFFFF,
        bat_offset,
        0x00010000,
        entries,
        block_size,
        0,
        parent_id.bytes,
        0,
        b"\0" * 4,
        parent_name.encode("utf-16-be").ljust(512, b"\0"),
    )
    header += locator_entries.ljust(8 * 24, b"\0") + bytes(256)
    header = header[:36] + struct.pack(">I", _checksum(header)) + header[40:]
    with open(path, "wb") as handle:
        handle.write(foot + header)
        handle.write(struct.pack(f">{entries}I", *bat).ljust(bat_bytes, b"\xff"))
        handle.write(locator_data)
        for offset, blob in layout:
            handle.seek(offset)
            handle.write(blob)
        handle.seek(next_free)
        handle.write(foot)


# --- VHDX: a QEMU-made file turned into a differencing disk -----------------------------------

_PARENT_LOCATOR_ITEM = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
_VHDX_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")
_FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
_METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")


def _vhdx_metadata_region(handle) -> int:  # type: ignore[no-untyped-def]
    handle.seek(192 * 1024)
    table = handle.read(64 * 1024)
    (count,) = struct.unpack_from("<I", table, 8)
    for index in range(count):
        guid, offset, _length, _required = struct.unpack_from("<16sQII", table, 16 + 32 * index)
        if uuid.UUID(bytes_le=guid) == _METADATA_REGION:
            return int(offset)
    raise AssertionError("no metadata region")


def locator_item(entries: dict[str, str]) -> bytes:
    """A [MS-VHDX] 2.6.2.6 parent locator: header, key-value entries, then the UTF-16 LE strings."""
    head = _VHDX_LOCATOR_TYPE.bytes_le + struct.pack("<HH", 0, len(entries))
    strings = b""
    table = b""
    base = len(head) + 12 * len(entries)
    for key, value in entries.items():
        key_bytes, value_bytes = key.encode("utf-16-le"), value.encode("utf-16-le")
        key_at = base + len(strings)
        strings += key_bytes
        value_at = base + len(strings)
        strings += value_bytes
        table += struct.pack("<IIHH", key_at, value_at, len(key_bytes), len(value_bytes))
    return head + table + strings


def make_vhdx_differencing(path: Path, entries: dict[str, str]) -> None:
    """Set "has parent" in the file parameters and add a parent locator item to the metadata."""
    with open(path, "r+b") as handle:
        region = _vhdx_metadata_region(handle)
        handle.seek(region)
        table = bytearray(handle.read(64 * 1024))
        (count,) = struct.unpack_from("<H", table, 10)
        end = 64 * 1024
        for index in range(count):
            guid, offset, length, _flags = struct.unpack_from("<16sIII", table, 32 + 32 * index)
            end = max(end, offset + length)
            if uuid.UUID(bytes_le=guid) == _FILE_PARAMETERS:
                handle.seek(region + offset + 4)
                (flags,) = struct.unpack("<I", handle.read(4))
                handle.seek(region + offset + 4)
                handle.write(struct.pack("<I", flags | 2))
        item = locator_item(entries)
        item_at = -(-end // 4096) * 4096
        struct.pack_into(
            "<16sIII4x", table, 32 + 32 * count, _PARENT_LOCATOR_ITEM.bytes_le, item_at, len(item), 4
        )
        struct.pack_into("<H", table, 10, count + 1)
        handle.seek(region)
        handle.write(table)
        handle.seek(region + item_at)
        handle.write(item)
