"""Where a VM's files go, and checks that a folder can really be used.

A VM created in ``<location>`` gets ``<location>/<name>/`` with ``Virtual Machines/`` (its serial
log and saved configuration), ``Virtual Hard Disks/`` and ``Snapshots/``, as a Hyper-V export does.
The QEMU process runs as its own user (``libvirt-qemu`` on Debian), which must be able to reach
every file of the VM: a folder under ``/root`` (mode 0700) fails at start, so the wizard says so.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MACHINES = "Virtual Machines"
DISKS = "Virtual Hard Disks"
SNAPSHOTS = "Snapshots"


@dataclass(frozen=True)
class VmFolders:
    """The folders of one VM."""

    root: Path

    @property
    def machines(self) -> Path:
        """Configuration, serial log."""
        return self.root / MACHINES

    @property
    def disks(self) -> Path:
        """Virtual hard disks."""
        return self.root / DISKS

    @property
    def snapshots(self) -> Path:
        """Checkpoint configurations and saved memory."""
        return self.root / SNAPSHOTS

    @property
    def serial_log(self) -> Path:
        """Everything the guest wrote on its first serial port."""
        return self.machines / "serial.log"

    def all(self) -> tuple[Path, ...]:
        """The VM folder and its sub-folders, parents first."""
        return (self.root, self.machines, self.disks, self.snapshots)


def vm_folders(location: str | Path, name: str) -> VmFolders:
    """The folders of VM ``name`` created in ``location``."""
    return VmFolders(Path(location) / name)


def nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists."""
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


@lru_cache(maxsize=8)
def _user_groups(user: str, primary_gid: int) -> frozenset[int]:
    """The groups of a user (cached: the wizard checks folders on every keystroke)."""
    return frozenset({primary_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem})


def user_can_traverse(path: Path, user: str) -> bool:
    """Whether ``user`` can walk down to ``path`` (execute permission on every existing folder)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return True  # unknown user: nothing to check against
    if entry.pw_uid == 0:
        return True
    groups = _user_groups(entry.pw_name, entry.pw_gid)
    current = nearest_existing(path)
    for folder in (current, *current.parents):
        try:
            info = folder.stat()
        except OSError:
            return False
        if not stat.S_ISDIR(info.st_mode):
            continue
        if info.st_uid == entry.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def folder_problem(folder: str, qemu_user: str | None = None) -> str | None:
    """Check that files can be created in ``folder`` (created if missing) and read by QEMU."""
    if not folder:
        return "Enter a folder."
    path = Path(folder)
    if not path.is_absolute():
        return f"'{folder}' is not an absolute path."
    existing = nearest_existing(path)
    if not existing.is_dir():
        return f"'{existing}' is a file, not a folder."
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"You can't create files in '{existing}'."
    if qemu_user and not user_can_traverse(path, qemu_user):
        return (
            f"The QEMU user ({qemu_user}) can't reach '{folder}': pick a folder outside private "
            "home folders such as /root, or give that user access."
        )
    return None


def new_file_problem(path: str | Path) -> str | None:
    """A file about to be created must not exist yet."""
    if Path(path).exists():
        return f"'{path}' already exists; choose another name or use the existing disk."
    return None


def existing_file_problem(path: str, qemu_user: str | None = None) -> str | None:
    """Check a file chosen by the user (an existing disk, an ISO image, a kernel)."""
    if not path:
        return "Choose a file."
    file = Path(path)
    if not file.is_absolute():
        return f"'{path}' is not an absolute path."
    if not file.is_file():
        return f"'{path}' does not exist or is not a file."
    if not os.access(file, os.R_OK):
        return f"You can't read '{path}'."
    if qemu_user and not user_can_traverse(file.parent, qemu_user):
        return f"The QEMU user ({qemu_user}) can't reach '{path}'."
    return None
