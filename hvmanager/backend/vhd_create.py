"""Creating virtual hard disk files (New-VHD): every format and type, copied contents, VHDX options.

- Fixed size means the space is reserved on the host: qcow2 and raw are made with
  ``preallocation=falloc``; VHD (``subformat=fixed``) and VHDX (``subformat=fixed``), which QEMU
  writes sparse, are then allocated with ``posix_fallocate``.
- Differencing: QEMU makes differencing disks only as qcow2, so the child is always a qcow2 file
  (``-b parent -F parentformat``) over a parent of any format, and its name must end in ``.qcow2``
  (``differencing_format`` gives the sentence the wizard shows). Whatever format the request names
  is replaced by qcow2; the size is the parent's. The parent's identifier and size are recorded in
  the child (``vhd_identity.record_parent``) for Reconnect.
- Copied contents (``source``: a virtual disk of any format, its chain flattened, or a host block
  device): the new disk is made empty at the source's size rounded up to a whole MiB
  (``vhd_create_checks.copy_size`` says when it is) and filled with ``qemu-img convert -n
  --target-is-zero``, so the holes of the source stay holes and fixed disks stay allocated.
- A new dynamic VHDX has Hyper-V's 32 MiB block size unless another is asked for; sector sizes are
  written into its metadata after ``qemu-img create`` (QEMU has no option for them).
- The file is written as ``.<name>.<random>.partial`` in the target folder, mode 0644, and gets
  its name with a no-clobber hard link once complete: an existing file is never overwritten and a
  failure (a full file system included) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hvmanager.backend import limits, vhd_identity
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.qemuimg import create_options, detect_format
from hvmanager.backend.vhd_create_checks import copy_size, existing_disk_problem, request_problems
from hvmanager.backend.vhd_inspect import inspect
from hvmanager.backend.vhd_process import run_qemu_img
from hvmanager.backend.vhd_types import DiskType, NewVhd, Progress, VhdInfo
from hvmanager.backend.vhdx_headers import set_vhdx_sector_sizes

__all__ = ["copy_size", "create", "differencing_format", "new_vhd_problems"]


def differencing_format(parent_format: str) -> tuple[str, str | None]:
    """The format of a differencing child of a parent of ``parent_format``, and why when it changes.

    QEMU can make differencing disks only in its own qcow2 format, so a child of a VHD, VHDX or raw
    parent is qcow2; the second value is the sentence the wizard shows about it (None for qcow2).
    """
    if parent_format == "qcow2":
        return "qcow2", None
    label = limits.format_for_qemu(parent_format)
    return "qcow2", (
        f"QEMU makes differencing disks only in its own QCOW2 format, so the child of this {label} disk "
        f"is a QCOW2 file, named with .qcow2; it reads through to the {label} parent, which stays unchanged."
    )


def new_vhd_problems(request: NewVhd) -> list[str]:
    """Why the request can't be created (empty when it can): sizes and limits of the format,
    an existing target, a missing parent or source, block and sector sizes, the target folder."""
    return request_problems(request)


def create(request: NewVhd, progress: Progress | None = None) -> VhdInfo:
    """Create the disk (``ValidationError`` for a request with problems) and inspect it."""
    problems = new_vhd_problems(request)
    if problems:
        raise ValidationError(problems[0], " ".join(problems[1:]))
    target = Path(os.path.abspath(request.path))
    if progress is not None:
        progress(0.0)
    with _partial_beside(target) as partial:
        if request.type is DiskType.DIFFERENCING:
            _make_child(request, partial)
        elif request.source:
            _make_copy(request, partial, progress)
        else:
            assert request.size_bytes is not None  # checked by new_vhd_problems
            _make_empty(request, partial, request.size_bytes)
        os.chmod(partial, 0o644)
        _publish(partial, target)
    if progress is not None:
        progress(100.0)
    return inspect(str(target))


@contextlib.contextmanager
def _partial_beside(target: Path) -> Iterator[Path]:
    """``.<name>.<random>.partial`` in the target's folder, removed unless it was published."""
    try:
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as exc:
        raise _write_error(target.parent, exc) from exc
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _write_error(folder: Path, exc: OSError) -> HvError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return HvError(
            f"There is not enough free space in '{folder}' for the new disk.",
            "Free some space or choose another location; no file was left behind.",
        )
    return HvError(f"Can't write the new disk in '{folder}': {exc.strerror}.")


def _publish(partial: Path, target: Path) -> None:
    """Give the complete file its name, never replacing a file that appeared meanwhile."""
    try:
        fd = os.open(partial, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.link(partial, target)
    except FileExistsError as exc:
        raise ValidationError(f"'{target}' already exists: choose another name.") from exc
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise _write_error(target.parent, exc) from exc
        if os.path.lexists(target):  # a file system without hard links: check, then rename
            raise ValidationError(f"'{target}' already exists: choose another name.") from exc
        os.rename(partial, target)


def _vhdx_options(request: NewVhd, fixed: bool) -> list[str]:
    if request.format != "vhdx" or fixed:
        return []
    return ["-o", f"block_size={request.block_size or limits.VHDX_DEFAULT_BLOCK_SIZE}"]


def _make_empty(request: NewVhd, partial: Path, size: int) -> None:
    """An empty disk of the requested format and type, with its options and identifier."""
    fixed = request.type is DiskType.FIXED
    options = [*create_options(request.format, fixed), *_vhdx_options(request, fixed)]
    run_qemu_img(
        ["create", "-q", "-f", request.format, *options, str(partial), str(size)], space_for=partial.parent
    )
    if request.format == "vhdx" and (request.logical_sector_size or request.physical_sector_size):
        set_vhdx_sector_sizes(str(partial), request.logical_sector_size, request.physical_sector_size)
    if fixed and request.format in ("vpc", "vhdx"):
        _allocate(partial)
    vhd_identity.ensure_identifier(str(partial), request.format)
    vhd_identity.record_type(str(partial), request.format, request.type)


def _allocate(partial: Path) -> None:
    """Reserve a fixed VHD's or VHDX's space (QEMU leaves the data area sparse)."""
    fd = os.open(partial, os.O_RDWR | os.O_CLOEXEC)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        raise _write_error(partial.parent, exc) from exc
    finally:
        os.close(fd)


def _make_copy(request: NewVhd, partial: Path, progress: Progress | None) -> None:
    source = os.path.abspath(request.source or "")
    source_format = detect_format(source)
    size, _note = copy_size(inspect(source).size)
    _make_empty(request, partial, size)
    args = ["convert", "-p", "-n", "--target-is-zero", "-f", source_format, "-O", request.format]
    run_qemu_img([*args, source, str(partial)], progress, (0.0, 99.0), space_for=partial.parent)


def _make_child(request: NewVhd, partial: Path) -> None:
    problems, parent = existing_disk_problem(request.parent, "parent", request.path)
    if parent is None or problems:
        raise ValidationError(problems[0] if problems else "Choose the parent disk.")
    args = ["create", "-q", "-f", "qcow2", "-b", parent.path, "-F", parent.format, str(partial)]
    run_qemu_img(args, space_for=partial.parent)
    parent_id = vhd_identity.ensure_identifier(parent.path, parent.format)
    vhd_identity.record_parent(str(partial), parent_id, parent.size)
    vhd_identity.ensure_identifier(str(partial), "qcow2")
