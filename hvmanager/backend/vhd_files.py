"""Files of the disk editor: temporary names beside the target, publishing them atomically, and what
a rewritten disk must keep of the file it replaces (owner, mode, extended attributes, identity).

A new disk is written as ``.<name>.<random>.partial`` in the target folder; it gets its real name
only once complete, with a no-clobber hard link (a file that appeared meanwhile is never
overwritten). A disk rewritten in place (compact, resize) is flushed to stable storage, then
replaces the original with one ``rename``, so the original stays whole until the new file is
complete and durable.

A new file made from a source that is kept (convert, merge to a new disk) is named without waiting
for the kernel to write it out (``publish(durable=False)``): the source still holds the data, the
first flush of the file (e.g. a VM using it) writes it out, and not waiting makes the copy as fast
as ``qemu-img convert``. Whoever then deletes the source calls ``flush`` first.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from hvmanager.backend import vhd_headers, vhdx_headers
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.vhd_identity import identifier

_VHD_UNIQUE_ID_AT = 68
_VHD_CHECKSUM_AT = 64


@contextlib.contextmanager
def temporary_beside(target: str | Path) -> Iterator[Path]:
    """A fresh temporary file name in ``target``'s folder; the file is removed unless it was
    published or renamed away."""
    target = Path(target)
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:
        raise _folder_error(target.parent, exc) from exc
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _folder_error(folder: Path, exc: OSError) -> HvError:
    if exc.errno == errno.ENOSPC:
        return HvError(
            f"There is not enough free space in '{folder}'.", "Free some space or choose another location."
        )
    return HvError(f"Can't write a file in '{folder}': {exc.strerror}.")


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems can't fsync a directory
        _sync(folder)


def flush(path: str | Path) -> None:
    """Write a disk file's data to stable storage (before deleting what it was made from)."""
    _sync(Path(path))
    _sync_folder(Path(path).parent)


def publish(temp: Path, destination: str | Path, durable: bool = True) -> None:
    """Give a complete new disk its name (after flushing it, when ``durable``); refuse (and keep
    nothing) when the name is taken."""
    destination = Path(destination)
    os.chmod(temp, 0o644)
    if durable:
        _sync(temp)
    try:
        os.link(temp, destination)
    except FileExistsError as exc:
        raise ValidationError(f"'{destination}' already exists.", "Choose another name.") from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise
        if destination.exists():  # a file system without hard links: check, then rename
            raise ValidationError(f"'{destination}' already exists.", "Choose another name.") from exc
        os.rename(temp, destination)
    temp.unlink(missing_ok=True)
    if durable:
        _sync_folder(destination.parent)


def replace(temp: Path, original: str | Path, fmt: str) -> None:
    """Put a rewritten disk in place of ``original``, with its owner, mode, extended attributes
    and disk identity (the VHD unique id, the VHDX virtual disk id and physical sector size)."""
    original = Path(original)
    keep_identity(original, temp, fmt)
    copy_metadata(original, temp)
    _sync(temp)
    os.rename(temp, original)
    _sync_folder(original.parent)


def copy_metadata(source: Path, target: Path) -> None:
    """Owner, mode and user extended attributes (hvmanager's disk and parent ids among them)."""
    stat = source.stat()
    with contextlib.suppress(PermissionError):  # not root: the file stays ours, as any new one
        os.chown(target, stat.st_uid, stat.st_gid)
    os.chmod(target, stat.st_mode & 0o7777)
    try:
        names = os.listxattr(source)
    except OSError:
        return  # a file system without extended attributes
    for name in names:
        if name.startswith("user."):
            with contextlib.suppress(OSError):
                os.setxattr(target, name, os.getxattr(source, name))


def keep_identity(original: Path, rewritten: Path, fmt: str) -> None:
    """Give a VHD or VHDX rewritten by QEMU (which makes a new identifier) the original's identity."""
    if fmt not in ("vpc", "vhdx"):
        return
    wanted = identifier(str(original), fmt)
    if fmt == "vhdx":
        keep_vhdx_sector_sizes(original, rewritten)
        after = vhdx_headers.read_vhdx(str(rewritten))
        if wanted and after.virtual_disk_id != wanted:
            _write_vhdx_disk_id(rewritten, after, wanted)
    elif wanted and identifier(str(rewritten), fmt) != wanted:
        _write_vhd_unique_id(rewritten, wanted)


def keep_vhdx_sector_sizes(original: Path, rewritten: Path) -> None:
    """Give a VHDX written by QEMU (always 512-byte sectors) the original VHDX's physical sector
    size (QEMU reads only 512-byte logical sectors, so that one is 512 in both)."""
    physical = vhdx_headers.read_vhdx(str(original)).physical_sector_size
    if vhdx_headers.read_vhdx(str(rewritten)).physical_sector_size != physical:
        vhdx_headers.set_vhdx_sector_sizes(str(rewritten), None, physical)


def reserve_space(path: Path) -> None:
    """Allocate a fixed disk's whole file on the host (QEMU writes fixed VHD and VHDX files sparse),
    so that the disk can't run out of space later, as on Hyper-V."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        raise HvError(
            f"There is not enough free space in '{path.parent}' for a fixed disk of this size "
            f"({exc.strerror}).",
            "Free some space, choose another location, or make a dynamically expanding disk.",
        ) from exc
    finally:
        os.close(fd)


def _write_vhdx_disk_id(path: Path, vhdx: vhdx_headers.VhdxFile, disk_id: str) -> None:
    offset = vhdx.item_offsets.get(vhdx_headers.VIRTUAL_DISK_ID)
    if offset is None:
        raise HvError(f"'{path}' has no virtual disk id item to keep the disk's identity in.")
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(uuid.UUID(disk_id).bytes_le)


def _write_vhd_unique_id(path: Path, disk_id: str) -> None:
    """Set the footer's unique id (and checksum), at the end and in the copy at offset 0."""
    dynamic = vhd_headers.read_vhd(str(path)).footer.disk_type != vhd_headers.VHD_FIXED
    with open(path, "r+b") as handle:
        length = handle.seek(0, os.SEEK_END)
        for offset in (length - 512, 0) if dynamic else (length - 512,):  # a fixed VHD has no copy
            handle.seek(offset)
            footer = bytearray(handle.read(512))
            footer[_VHD_UNIQUE_ID_AT : _VHD_UNIQUE_ID_AT + 16] = uuid.UUID(disk_id).bytes
            footer[_VHD_CHECKSUM_AT : _VHD_CHECKSUM_AT + 4] = b"\0\0\0\0"
            checksum = ~sum(footer) & 0xFFFFFFFF
            struct.pack_into(">I", footer, _VHD_CHECKSUM_AT, checksum)
            handle.seek(offset)
            handle.write(footer)
