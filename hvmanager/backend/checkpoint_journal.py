"""Crash safety for checkpoint operations: a journal written before any file changes, and a
per-VM lock so that two operations (two windows, the GUI and ``hvctl``) never work on one chain
at once.

The journal says what the tree will be once the operation is done (``tree_after``), which files
it creates (removed again on roll-back) and which files become garbage (removed on roll-forward),
files to move into place (a memory image staged in RAM), and how to tell whether the point of no
return was passed (``commit_marker``: disk files the
domain uses only after that point, e.g. the overlays of a live switch or the base after a live
merge pivoted). ``checkpoints.recover`` reads it when the VM is next used.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hvmanager.backend.errors import HvError

JOURNAL_FILE = "checkpoint-journal.json"
LOCK_DIR = Path(os.environ.get("HVMANAGER_LOCK_DIR", "/run/hvmanager"))


@dataclass(frozen=True)
class Journal:
    """One checkpoint operation in progress."""

    op: str  # "take", "apply", "merge", "drop", "rename"
    tree_after: str  # the <hvc:checkpoints> XML once done
    created: list[str] = field(default_factory=list)
    garbage: list[str] = field(default_factory=list)
    commit_marker: dict[str, str] = field(default_factory=dict)  # target -> file in use once done
    gone_marker: dict[str, str] = field(default_factory=dict)  # target -> file out of the chain once done
    moves: dict[str, str] = field(default_factory=dict)  # staged file -> its place, moved on roll-forward


def journal_path(folder: Path) -> Path:
    """The journal file of a VM whose checkpoint folder is ``folder``."""
    return folder / JOURNAL_FILE


def write(folder: Path, journal: Journal) -> None:
    """Write the journal durably (temporary file, fsync, rename, fsync of the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = journal_path(folder)
    tmp = target.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(asdict(journal), handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(tmp, target)
    _fsync_dir(folder)


def read(folder: Path) -> Journal | None:
    """The journal left by an interrupted operation, or None."""
    try:
        data = json.loads(journal_path(folder).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise HvError(f"The checkpoint journal in '{folder}' cannot be read: {exc}") from exc
    return Journal(**data)


def remove(folder: Path) -> None:
    """The operation is complete (or rolled back): forget it."""
    journal_path(folder).unlink(missing_ok=True)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ChainBusyError(HvError):
    """Another checkpoint operation (a merge, usually) is running on the VM."""


def _lock_file(uuid: str) -> Path:
    """The VM's lock file (checkpoints change the VM's image files: whoever may do that may
    also create its lock)."""
    try:
        LOCK_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise HvError(
            f"The folder for checkpoint locks, '{LOCK_DIR}', cannot be used: {exc.strerror or exc}.",
            "Run as the user who owns the VMs' files, or set HVMANAGER_LOCK_DIR to a folder you can write.",
        ) from exc
    return LOCK_DIR / f"checkpoints-{uuid}.lock"


def _open_lock(uuid: str) -> int:
    path = _lock_file(uuid)
    try:
        # Read-only is enough for flock, so a lock file another user created serves everybody.
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise HvError(f"The checkpoint lock '{path}' cannot be opened: {exc.strerror or exc}.") from exc


@contextmanager
def vm_lock(uuid: str, wait: bool = True) -> Iterator[None]:
    """Hold the VM's checkpoint lock; with ``wait=False`` refuse at once when it is taken.

    ``flock`` locks belong to an open file, so threads of one process and other processes
    (``hvctl`` next to the GUI) queue behind each other alike.
    """
    fd = _open_lock(uuid)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as exc:
            raise ChainBusyError(
                "A checkpoint operation (a merge) is already running on this virtual machine.",
                "Wait until its Status column no longer shows Merging, then try again.",
            ) from exc
        yield
    finally:
        os.close(fd)


def forget_lock(uuid: str) -> None:
    """Remove the lock file of a VM that no longer exists (its uuid is never used again)."""
    (LOCK_DIR / f"checkpoints-{uuid}.lock").unlink(missing_ok=True)


def is_locked(uuid: str) -> bool:
    """Whether some checkpoint operation holds the VM's lock right now."""
    path = LOCK_DIR / f"checkpoints-{uuid}.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
