"""The checks of a New Virtual Hard Disk request, each failure a sentence the wizard and hvctl show.

Rules decided here (documented in ``vhd_create``): a differencing child is always qcow2 (its name
must end in ``.qcow2``), whatever format the request names; a copy takes its source's size rounded
up to a whole MiB (at least 3 MiB); a file name whose extension belongs to another format is refused
(``disk.vhd`` can't be a VHDX disk); nothing existing is ever overwritten.
"""

from __future__ import annotations

import os
import stat

from hvmanager.backend import limits
from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_inspect import inspect
from hvmanager.backend.vhd_types import DiskType, NewVhd, VhdInfo

FORMATS = ("vhdx", "vpc", "qcow2", "raw")
EXTENSIONS = {
    ".qcow2": "qcow2",
    ".qcow": "qcow2",
    ".vhdx": "vhdx",
    ".avhdx": "vhdx",
    ".vhd": "vpc",
    ".avhd": "vpc",
    ".img": "raw",
    ".raw": "raw",
}
DIFFERENCING_SUFFIX = ".qcow2"
_NAME_MAX = 200  # bytes: room for ".<name>.<random>.partial" within the 255-byte file name limit


def copy_size(source_size: int) -> tuple[int, str | None]:
    """The size of a copy of a source of ``source_size`` bytes, and the note shown when it differs."""
    size = max(limits.DISK_MIN_BYTES, -(-source_size // limits.MIB) * limits.MIB)
    if size == source_size:
        return size, None
    return size, (
        f"The source holds {source_size} bytes; the new disk is {limits.human_size(size)} "
        "(a whole number of megabytes, at least 3 MB) and the space after the copy reads as zeros."
    )


def target_problems(path: str) -> list[str]:
    """The new file's name and folder: a writable folder, a usable name, nothing there yet."""
    if not path.strip():
        return ["Enter a name and a location for the virtual hard disk."]
    target = os.path.abspath(path)
    folder, name = os.path.split(target)
    if not name or name in (".", ".."):
        return ["Enter a file name for the virtual hard disk."]
    if len(name.encode()) > _NAME_MAX:
        return [f"The file name is too long (at most {_NAME_MAX} bytes)."]
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            return [f"'{folder}' is not a folder."]
        return [
            f"The folder '{folder}' does not exist.",
        ]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [f"You can't create files in the folder '{folder}'."]
    if os.path.lexists(target):
        return [f"'{target}' already exists: choose another name (an existing file is never overwritten)."]
    return []


def extension_problem(path: str, fmt: str) -> str | None:
    """A name whose extension belongs to another disk format."""
    extension = os.path.splitext(path)[1].lower()
    named = EXTENSIONS.get(extension)
    if named is None or named == fmt:
        return None
    label, other, wanted = (
        limits.format_for_qemu(fmt),
        limits.format_for_qemu(named),
        limits.extension_for(fmt),
    )
    return f"A {label} disk's name can't end in {extension} (that is a {other} name): use {wanted}."


def _qemu_unreadable(info: VhdInfo) -> str | None:
    """Differencing VHD/VHDX files QEMU can't use: it refuses VHDX ones, and reads VHD ones without
    their parent (the parent's data would read as zeros)."""
    if info.type is not DiskType.DIFFERENCING:
        return None
    if info.format == "vhdx":
        return f"QEMU can't open VHDX differencing disks such as '{info.path}'."
    if info.format == "vpc":
        return (
            f"QEMU reads VHD differencing disks such as '{info.path}' without their parent (the "
            "parent's data would read as zeros), so it can't be used here."
        )
    return None


def _not_an_image(info: VhdInfo) -> str | None:
    """Files that can't be disk images although any file reads as raw: empty ones, sizes that are
    not whole sectors, and names promising a format whose header is not there."""
    not_a_disk = f"'{info.path}' is not a virtual hard disk"
    if info.size == 0:
        return f"{not_a_disk}: it is empty."
    if info.size % 512:
        return f"{not_a_disk}: its {info.size} bytes are not whole 512-byte sectors."
    named = EXTENSIONS.get(os.path.splitext(info.path)[1].lower())
    if named not in (None, "raw", info.format):
        label = limits.format_for_qemu(named)
        return f"{not_a_disk}: its name says {label}, but it has no {label} header."
    return None


def existing_disk_problem(path: str | None, role: str, target: str) -> tuple[list[str], VhdInfo | None]:
    """An existing disk used as the ``role`` ("parent", "source") of a new disk: present, a disk image
    QEMU can read, its own parents all there."""
    if not path or not path.strip():
        return [f"Choose the {role} disk."], None
    path = os.path.abspath(path)
    if path == os.path.abspath(target):
        return [f"The {role} disk can't be the new disk itself."], None
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return [f"The {role} disk '{path}' does not exist."], None
    except OSError as exc:
        return [f"The {role} disk '{path}' can't be read: {exc.strerror}."], None
    if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
        return [f"'{path}' is not a virtual hard disk (it is a folder or a special file)."], None
    try:
        info = inspect(path)
    except HvError as exc:
        return [f"'{path}' is not a usable virtual hard disk: {exc.message}"], None
    if problem := _not_an_image(info):
        return [problem], None
    problem = _qemu_unreadable(info) or _chain_problem(info, role)
    return ([problem] if problem else []), info


def _chain_problem(info: VhdInfo, role: str) -> str | None:
    for link in info.parents:
        if not link.present:
            return (
                f"The chain of the {role} disk is broken: its parent '{link.path}' is missing "
                f"(reconnect '{info.path}' to it first)."
            )
        if link.format in ("vpc", "vhdx"):
            try:
                problem = _qemu_unreadable(inspect(link.path))
            except HvError as exc:
                problem = f"'{link.path}', a parent of the {role} disk, is not usable: {exc.message}"
            if problem:
                return problem
    return None


def request_problems(request: NewVhd) -> list[str]:
    """All the problems of a request."""
    if request.format not in FORMATS:
        return [f"Unknown disk format '{request.format}': choose VHDX, VHD, QCOW2 or RAW."]
    problems = target_problems(request.path)
    if request.type is DiskType.DIFFERENCING:
        problems += _differencing_problems(request)
    else:
        problems += _contents_problems(request)
        if problem := extension_problem(request.path, request.format):
            problems.append(problem)
    fmt = "qcow2" if request.type is DiskType.DIFFERENCING else request.format
    problem = limits.vhdx_options_problem(
        fmt,
        request.type is DiskType.FIXED,
        request.type is DiskType.DIFFERENCING,
        request.block_size,
        request.logical_sector_size,
        request.physical_sector_size,
    )
    return problems + ([problem] if problem else [])


def _differencing_problems(request: NewVhd) -> list[str]:
    problems = []
    if not request.path.lower().endswith(DIFFERENCING_SUFFIX):
        problems.append(
            "A differencing disk is a QCOW2 file (the only format QEMU makes differencing disks in): "
            f"its name must end in {DIFFERENCING_SUFFIX}."
        )
    if request.source:
        problems.append("A differencing disk can't copy contents: it reads them from its parent.")
    parent_problems, parent = existing_disk_problem(request.parent, "parent", request.path)
    problems += parent_problems
    if parent is not None and request.size_bytes is not None and request.size_bytes != parent.size:
        problems.append(
            f"A differencing disk has its parent's size ({limits.human_size(parent.size)}): "
            "leave the size empty."
        )
    return problems


def _contents_problems(request: NewVhd) -> list[str]:
    if request.parent:
        return ["Only a differencing disk has a parent."]
    if request.source is None:
        if request.size_bytes is None:
            return ["Enter the size of the new virtual hard disk."]
        problem = limits.disk_size_problem(request.size_bytes, request.format)
        return [problem] if problem else []
    problems, source = existing_disk_problem(request.source, "source", request.path)
    if source is None:
        return problems
    size, _note = copy_size(source.size)
    if request.size_bytes is not None and request.size_bytes != size:
        problems.append(f"A copy has its source's size ({limits.human_size(size)}): leave the size empty.")
    if problem := limits.disk_size_problem(size, request.format):
        problems.append(f"The source is too large: {problem}")
    return problems
