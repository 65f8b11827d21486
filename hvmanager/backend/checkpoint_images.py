"""Image files of the checkpoint tree: differencing disks (qcow2 overlays), offline merges,
checks, and the chain of one disk as ``qemu-img`` sees it.

Every call is an argument list (no shell) with the formats given explicitly.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hvmanager.backend.errors import HvError
from hvmanager.backend.qemuimg import QEMU_IMG, run_tool

Progress = Callable[[float], None]

_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
_OVERLAY_SUFFIX = re.compile(r"_[0-9a-f]{8}$")


def overlay_name(base_file: str) -> str:
    """A new differencing disk's path next to ``base_file``: ``<disk>_<8 hex>.qcow2``."""
    base = Path(base_file)
    stem = _OVERLAY_SUFFIX.sub("", base.stem)
    while True:
        candidate = base.with_name(f"{stem}_{secrets.token_hex(4)}.qcow2")
        if not candidate.exists():
            return str(candidate)


def create_overlay(backing: str, backing_format: str) -> str:
    """Create a qcow2 differencing disk over ``backing``; returns its path.

    Formats are always passed, never probed: the bytes of a raw disk belong to the guest, which
    could make them look like a qcow2 header naming any host file as its backing file.
    """
    path = overlay_name(backing)
    run_tool([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", backing, "-F", backing_format, path])
    os.chmod(path, 0o644)
    return path


def _run_with_progress(args: list[str], progress: Progress | None) -> None:
    """Run a qemu-img command with ``-p`` and report its percentage as it goes."""
    try:
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError as exc:
        raise HvError(f"{args[0]} is not installed.", "Install the qemu-utils package.") from exc
    assert process.stdout is not None and process.stderr is not None
    buffer = b""
    while chunk := os.read(process.stdout.fileno(), 4096):
        buffer = (buffer + chunk)[-256:]
        matches = _PERCENT.findall(buffer)
        if matches and progress is not None:
            progress(float(matches[-1]))
    error = process.stderr.read().decode(errors="replace").strip()
    if process.wait() != 0:
        last = error.splitlines()[-1] if error else "no message"
        raise HvError(f"qemu-img {args[1]} failed: {last}")


def commit(top: str, base: str, progress: Progress | None = None) -> None:
    """Merge the qcow2 ``top`` (and any image between) into ``base`` offline; ``top`` is left as
    it was. The host's cache is used (qemu-img flushes the image when it closes it): with
    ``-t none`` the merge ran at half the speed here."""
    args = [QEMU_IMG, "commit", "-p", "-d", "-f", "qcow2", "-b", base, top]
    _run_with_progress(args, progress)


def rebase_unsafe(file: str, new_backing: str, backing_format: str) -> None:
    """Point the qcow2 ``file`` at another backing file with the same content (no data copied)."""
    run_tool([QEMU_IMG, "rebase", "-u", "-f", "qcow2", "-b", new_backing, "-F", backing_format, file])


def check(file: str, fmt: str) -> str | None:
    """``qemu-img check`` of one image: None when clean, else what it found."""
    if fmt not in ("qcow2", "vhdx", "qed", "vdi"):
        return None  # raw and VHD images have no metadata qemu-img can check
    done = subprocess.run(
        [QEMU_IMG, "check", "-U", "-f", fmt, "--output=json", file],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 0:
        return None
    return (done.stdout or done.stderr).strip() or f"exit {done.returncode}"


def delete(file: str) -> None:
    """Remove an image file (gone already is fine: deletes are repeated after a crash)."""
    Path(file).unlink(missing_ok=True)


@dataclass(frozen=True)
class ChainFile:
    """One file of a disk's chain, as ``qemu-img info --backing-chain`` reports it."""

    file: str
    format: str
    virtual_size: int
    actual_size: int  # bytes allocated on the host
    backing: str | None


def chain(file: str, fmt: str) -> list[ChainFile]:
    """The chain of images from ``file`` down to its base (shared lock: the VM may be running);
    the formats below ``file`` are those recorded in the qcow2 headers hvmanager wrote."""
    out = run_tool([QEMU_IMG, "info", "-U", "--backing-chain", "--output=json", "-f", fmt, file])
    entries = json.loads(out)
    return [
        ChainFile(
            file=entry["filename"],
            format=entry["format"],
            virtual_size=int(entry.get("virtual-size", 0)),
            actual_size=int(entry.get("actual-size", 0)),
            backing=entry.get("full-backing-filename") or entry.get("backing-filename"),
        )
        for entry in entries
    ]


def allocated_bytes(file: str) -> int:
    """Bytes the host allocated for a file (what a merge of it may need at most)."""
    try:
        return os.stat(file).st_blocks * 512
    except FileNotFoundError:
        return 0


def free_bytes(folder: str) -> int:
    """Free space available to us in the file system holding ``folder``."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize
