"""Where a disk's data ends: the basis of Get-VHD's MinimumSize (the smallest size a shrink reaches).

Each format lists the virtual ranges that may hold data and where they lie in the file: qcow2 from
``qemu-img map`` (the image alone, its backing file opened as null), dynamic and differencing
VHD/VHDX from their block allocation table (``qemu-img map`` calls a whole VHDX data), fixed VHD and
raw as one range. The ranges are then read from the end, skipping the host file's holes
(SEEK_DATA/SEEK_HOLE), until a non-zero byte shows where the data ends. A differencing disk's data
ends where its own or its nearest parents' data ends.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator

from hvmanager.backend.qcow2_header import read_qcow2
from hvmanager.backend.qemuimg import QEMU_IMG, run_tool
from hvmanager.backend.vhd_headers import VHD_FIXED, VHD_SECTOR, VHD_UNUSED_BLOCK, read_vhd, vhd_bat
from hvmanager.backend.vhdx_headers import (
    MIB,
    PAYLOAD_FULLY_PRESENT,
    PAYLOAD_PARTIALLY_PRESENT,
    read_vhdx,
    vhdx_payload_blocks,
)

CHUNK = MIB
Extent = tuple[int, int, int | None]  # virtual start, length, file offset (None: data, can't be read)


def own_extents(path: str, fmt: str, size: int) -> list[Extent]:
    """The ranges of the disk (not its parents) that may hold data, in virtual order."""
    if fmt == "qcow2":
        return _qcow2_extents(path)
    if fmt == "vpc":
        return _vhd_extents(path)
    if fmt == "vhdx":
        return _vhdx_extents(path)
    return [(0, size, 0)]


def _qcow2_extents(path: str) -> list[Extent]:
    external = read_qcow2(path).external_data  # offsets would then be in the data file: not read
    # The image alone: its backing file is looked at separately (and may be missing or a VHD).
    spec = {"driver": "qcow2", "backing": None, "file": {"driver": "file", "filename": path}}
    out = run_tool([QEMU_IMG, "map", "--output=json", "-U", "-f", "qcow2", "json:" + json.dumps(spec)])
    extents: list[Extent] = []
    for entry in json.loads(out):
        if entry.get("data") and not entry.get("zero") and entry.get("depth", 0) == 0:
            offset = None if external else entry.get("offset")
            extents.append((int(entry["start"]), int(entry["length"]), offset))
    return extents


def _vhd_extents(path: str) -> list[Extent]:
    vhd = read_vhd(path)
    if vhd.footer.disk_type == VHD_FIXED or vhd.dynamic is None:
        return [(0, vhd.footer.current_size, 0)]
    block = vhd.dynamic.block_size
    # Each block starts with its sector bitmap (one bit per sector, padded to whole sectors).
    bitmap = -(-(block // VHD_SECTOR) // 8 // VHD_SECTOR) * VHD_SECTOR
    extents: list[Extent] = []
    for index, sector in enumerate(vhd_bat(path, vhd)):
        start = index * block
        if sector != VHD_UNUSED_BLOCK and start < vhd.footer.current_size:
            length = min(block, vhd.footer.current_size - start)
            extents.append((start, length, sector * VHD_SECTOR + bitmap))
    return extents


def _vhdx_extents(path: str) -> list[Extent]:
    vhdx = read_vhdx(path)
    if vhdx.log_pending:  # the BAT may not say everything yet: count the whole disk as data
        return [(0, vhdx.virtual_size, None)]
    extents: list[Extent] = []
    for index, (state, offset) in enumerate(vhdx_payload_blocks(path, vhdx)):
        if state in (PAYLOAD_FULLY_PRESENT, PAYLOAD_PARTIALLY_PRESENT):
            start = index * vhdx.block_size
            extents.append((start, min(vhdx.block_size, vhdx.virtual_size - start), offset))
    return extents


def data_end(path: str, extents: list[Extent]) -> int:
    """The virtual offset where the last non-zero byte of these ranges ends (0: no data)."""
    with open(path, "rb") as handle:
        fd = handle.fileno()
        file_length = os.fstat(fd).st_size or handle.seek(0, os.SEEK_END)
        for start, length, offset in sorted(extents, reverse=True):
            if offset is None:
                return start + length
            ranges = list(_host_data(fd, offset, min(offset + length, file_length)))
            for data_start, data_stop in reversed(ranges):
                found = _last_nonzero(fd, data_start, data_stop)
                if found is not None:
                    return start + (found - offset) + 1
    return 0


def _host_data(fd: int, start: int, stop: int) -> Iterator[tuple[int, int]]:
    """The parts of [start, stop) of the host file that are not holes."""
    position = start
    while position < stop:
        try:
            data = os.lseek(fd, position, os.SEEK_DATA)
            hole = os.lseek(fd, data, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after position
                return
            yield position, stop  # no SEEK_DATA here (some file systems): read it all
            return
        if data >= stop:
            return
        yield data, min(hole, stop)
        position = hole


def _last_nonzero(fd: int, start: int, stop: int) -> int | None:
    """The file offset of the last non-zero byte in [start, stop), read in 1 MiB chunks from the end."""
    chunk_stop = stop
    while chunk_stop > start:
        chunk_start = max(start, chunk_stop - CHUNK)
        data = os.pread(fd, chunk_stop - chunk_start, chunk_start)
        stripped = data.rstrip(b"\0")
        if stripped:
            return chunk_start + len(stripped) - 1
        chunk_stop = chunk_start
    return None


def chain_data_end(layers: list[tuple[str, str]], size: int) -> int:
    """Where the data of a disk and its parents ends: ``layers`` are the disk's and its present
    parents' (path, format), nearest first (a layer hides nothing below it from this answer)."""
    end = max((data_end(path, own_extents(path, fmt, size)) for path, fmt in layers), default=0)
    return min(end, size)


def minimum_size(end: int, size: int, floor: int = 3 * MIB) -> int:
    """The data's end rounded up to a whole MiB, at least ``floor``, at most the disk's size."""
    rounded = max(floor, -(-end // MIB) * MIB)
    return min(rounded, size)
