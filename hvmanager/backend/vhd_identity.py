"""Disk identifiers (Get-VHD's DiskIdentifier) and the parent a differencing child was made over.

VHD and VHDX files carry their identifier (the footer's unique id, the VHDX virtual disk id).
qcow2 and raw have none in the format: hvmanager gives them one in the user extended attribute
``user.hvmanager.disk-id`` (uuid4 text) when it creates them, or when asked (``ensure_identifier``).
A differencing child made by hvmanager records its parent's identifier and size in
``user.hvmanager.parent-id`` and ``user.hvmanager.parent-size``, which Reconnect checks a moved
parent against. qcow2 and raw files made by hvmanager also record whether they were made fixed or
dynamic (``user.hvmanager.disk-type``): neither format says so, and a dynamic disk the guest has
filled takes as much space as a fixed one. File systems without user xattrs simply have no such
records: no error.
"""

from __future__ import annotations

import errno
import os
import uuid

from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_headers import read_vhd
from hvmanager.backend.vhd_types import DiskType
from hvmanager.backend.vhdx_headers import read_vhdx

DISK_ID_XATTR = "user.hvmanager.disk-id"
PARENT_ID_XATTR = "user.hvmanager.parent-id"
PARENT_SIZE_XATTR = "user.hvmanager.parent-size"
DISK_TYPE_XATTR = "user.hvmanager.disk-type"
_NO_XATTRS = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM, errno.EACCES, errno.EROFS}
_NIL = str(uuid.UUID(int=0))


def _get(path: str, name: str) -> str:
    """An xattr's text, "" when it is not set or the file system has none."""
    try:
        return os.getxattr(path, name).decode("ascii", errors="replace").strip()
    except OSError as exc:
        if exc.errno in (errno.ENODATA, *_NO_XATTRS):
            return ""
        raise


def _set(path: str, name: str, value: str) -> bool:
    """Set an xattr; False when the file system (or a read-only file) does not allow it."""
    try:
        os.setxattr(path, name, value.encode("ascii"))
    except OSError as exc:
        if exc.errno in _NO_XATTRS:
            return False
        raise
    return True


def identifier(path: str, fmt: str) -> str:
    """The disk's identifier (UUID text), "" when it has none (a damaged VHD/VHDX: none either)."""
    try:
        if fmt == "vpc":
            found = read_vhd(path).footer.unique_id
            return "" if found == _NIL else found
        if fmt == "vhdx":
            found = read_vhdx(path).virtual_disk_id
            return "" if found == _NIL else found
    except HvError:
        return ""
    return _get(path, DISK_ID_XATTR)


def ensure_identifier(path: str, fmt: str) -> str:
    """The disk's identifier, giving a qcow2 or raw file a new one first when it has none
    ("" when the file system can't keep one)."""
    found = identifier(path, fmt)
    if found or fmt in ("vpc", "vhdx"):
        return found
    new = str(uuid.uuid4())
    return new if _set(path, DISK_ID_XATTR, new) else ""


def record_parent(child: str, parent_id: str, parent_size: int) -> None:
    """Remember which parent (identifier and virtual size) a differencing child was made over."""
    if _set(child, PARENT_ID_XATTR, parent_id):
        _set(child, PARENT_SIZE_XATTR, str(parent_size))


def recorded_parent(child: str) -> tuple[str, int] | None:
    """The parent identifier and size recorded by ``record_parent``, or None."""
    parent_id = _get(child, PARENT_ID_XATTR)
    size = _get(child, PARENT_SIZE_XATTR)
    if not size.isdigit():
        return None
    return parent_id, int(size)


def record_type(path: str, fmt: str, disk_type: DiskType) -> None:
    """Remember that a new qcow2 or raw disk was made fixed or dynamic (VHD/VHDX say it themselves)."""
    if fmt in ("qcow2", "raw") and disk_type is not DiskType.DIFFERENCING:
        _set(path, DISK_TYPE_XATTR, disk_type.value)


def recorded_type(path: str) -> DiskType | None:
    """The type ``record_type`` remembered, or None."""
    text = _get(path, DISK_TYPE_XATTR)
    return next((t for t in (DiskType.FIXED, DiskType.DYNAMIC) if t.value == text), None)
