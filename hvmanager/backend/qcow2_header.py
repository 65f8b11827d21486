"""The qcow2 header fields that name a disk's parent (QEMU's docs/interop/qcow2.txt), read directly.

Reading the backing file name from the header costs no ``qemu-img`` run, so walking a chain (for
"which VM uses this disk") stays cheap. Files come from anybody: lengths are bounded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hvmanager.backend.errors import HvError

_HEADER = struct.Struct(">4sIQIIQ")  # magic, version, backing offset, backing size, cluster bits, size
_BACKING_FORMAT_EXTENSION = 0xE2792ACA
_BACKING_NAME_MAX = 1023  # QEMU's limit


@dataclass(frozen=True)
class Qcow2Header:
    """What hvmanager reads from a qcow2 header itself."""

    version: int
    size: int
    cluster_size: int
    backing_file: str | None
    backing_format: str | None
    external_data: bool = False  # the guest data lives in another file (incompatible feature bit 2)


def read_qcow2(path: str) -> Qcow2Header:
    """Parse the header of a qcow2 file (version 2 or 3)."""
    with open(path, "rb") as handle:
        head = handle.read(64 * 1024)
    if len(head) < 104:
        raise HvError(f"'{path}' is not a valid QCOW2 file: it is shorter than its header.")
    magic, version, backing_offset, backing_size, cluster_bits, size = _HEADER.unpack_from(head)
    if magic != b"QFI\xfb" or version not in (2, 3) or not 9 <= cluster_bits <= 21:
        raise HvError(f"'{path}' is not a valid QCOW2 file: unknown version or cluster size.")
    backing = None
    if backing_offset and 0 < backing_size <= _BACKING_NAME_MAX:
        name = head[backing_offset : backing_offset + backing_size] if backing_offset < len(head) else b""
        backing = name.decode("utf-8", errors="replace") or None
    header_length = struct.unpack_from(">I", head, 100)[0] if version == 3 else 72
    external = version == 3 and bool(struct.unpack_from(">Q", head, 72)[0] & 4)
    return Qcow2Header(
        version, size, 1 << cluster_bits, backing, _backing_format(head, header_length), external
    )


def _backing_format(head: bytes, offset: int) -> str | None:
    """The backing format header extension, when there is one."""
    while offset > 0 and offset + 8 <= len(head):
        kind, length = struct.unpack_from(">II", head, offset)
        if kind == 0:
            break
        if kind == _BACKING_FORMAT_EXTENSION:
            return head[offset + 8 : offset + 8 + length].decode("ascii", errors="replace") or None
        offset += 8 + (length + 7) // 8 * 8
    return None
