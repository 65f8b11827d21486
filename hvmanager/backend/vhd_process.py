"""Long ``qemu-img`` runs for the disk editor: progress as it comes, a stall watchdog, clear errors,
and the image lock QEMU itself uses, so that no VM opens a disk while it is being replaced.

Progress: ``qemu-img ... -p`` writes ``    (12.34/100%)\\r`` to its standard output; each percentage
is passed on as soon as it is read. There is no overall time limit (a 2 TB conversion may take
hours); instead the run is stopped when it made no progress for ``STALL_TIMEOUT_S``: neither a new
percentage nor any read or written byte (``/proc/<pid>/io``).

Locks: QEMU marks what an image is opened for with OFD locks on bytes 100+ (permissions held) and
200+ (permissions it does not share) of the file. A running VM holds some of them on each of its
disks and on every file of their backing chains, so their presence means "in use".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import selectors
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from hvmanager.backend.errors import HvError, InvalidStateError
from hvmanager.backend.qemuimg import QEMU_IMG, TOOL_TIMEOUT_S
from hvmanager.backend.vhd_types import Progress

STALL_TIMEOUT_S = TOOL_TIMEOUT_S
_PERCENT = re.compile(rb"\((\d+(?:\.\d+)?)/100%\)")
_LOCKED = re.compile(r"Failed to get .*lock|Is another process using the image")
_LOCKED_IMAGE = re.compile(r"using the image \[(.+)\]\?")
_NO_SPACE = "No space left on device"
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux x86_64 / aarch64
_QEMU_LOCK_BYTES = (100, 200)  # first byte and count of QEMU's permission lock bytes
_UNSHARE_WRITE_BYTE = 201


def in_use_error(path: str | Path) -> InvalidStateError:
    """The error for a disk a running virtual machine (or another QEMU process) has open."""
    return InvalidStateError(
        f"'{path}' is in use by a running virtual machine.",
        "Turn off the virtual machine that uses it (or remove the disk from it) and try again.",
    )


def run_qemu_img(
    args: list[str],
    progress: Progress | None = None,
    span: tuple[float, float] = (0.0, 100.0),
    space_for: str | Path | None = None,
) -> None:
    """Run ``qemu-img`` with ``args`` (its ``-p`` among them for progress).

    ``span`` maps the tool's 0-100 % onto part of a larger operation. ``space_for`` is the folder
    the run writes into, named when the file system fills up.
    """
    command = [QEMU_IMG, *args]
    with tempfile.TemporaryFile() as errors:
        try:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
            )
        except FileNotFoundError as exc:
            raise HvError("qemu-img is not installed.", "Install the qemu-utils package.") from exc
        try:
            _follow(process, progress, span)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            assert process.stdout is not None
            process.stdout.close()
        errors.seek(0)
        message = errors.read().decode(errors="replace")
    if process.returncode != 0:
        raise tool_error(args[0], message, space_for)


def tool_error(verb: str, message: str, space_for: str | Path | None = None) -> HvError:
    """A failed ``qemu-img`` run as an error a user can act on."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if _LOCKED.search(message):
        image = _LOCKED_IMAGE.search(message)
        return in_use_error(image.group(1) if image else "The disk")
    if _NO_SPACE in message:
        where = f" in '{space_for}'" if space_for else ""
        return HvError(
            f"There is not enough free space{where}: qemu-img {verb} stopped.",
            "Free some space or choose another location; nothing was changed.",
        )
    detail = lines[-1].removeprefix("qemu-img: ") if lines else "no message"
    return HvError(f"qemu-img {verb} failed: {detail}")


def _follow(process: subprocess.Popen[bytes], progress: Progress | None, span: tuple[float, float]) -> None:
    """Read the progress output until the tool closes it; stop a tool that stalled."""
    assert process.stdout is not None
    stream = process.stdout.fileno()
    low, high = span
    buffer = b""
    last_io = _io_counters(process.pid)
    last_activity = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            if selector.select(timeout=1.0):
                chunk = os.read(stream, 4096)
                if not chunk:
                    return
                last_activity = time.monotonic()
                buffer = (buffer + chunk)[-256:]
                found = _PERCENT.findall(buffer)
                buffer = buffer[buffer.rfind(b"\r") + 1 :]  # each percentage is reported once
                if found and progress is not None:
                    progress(low + (high - low) * min(100.0, float(found[-1])) / 100.0)
                continue
            counters = _io_counters(process.pid)
            if counters is not None and counters != last_io:
                last_io, last_activity = counters, time.monotonic()
            elif time.monotonic() - last_activity > STALL_TIMEOUT_S:
                raise HvError(
                    f"qemu-img made no progress for {STALL_TIMEOUT_S} s and was stopped.",
                    "Check the storage the disk is on (a hung network share, a failing disk).",
                )


def _io_counters(pid: int) -> tuple[str, ...] | None:
    """The bytes a process has read and written so far (None when the kernel won't say)."""
    try:
        lines = Path(f"/proc/{pid}/io").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    return tuple(line for line in lines if line.startswith(("rchar", "wchar")))


def _lock(fd: int, command: int, kind: int, start: int, length: int) -> int:
    """One ``fcntl`` OFD lock request; returns the type of a conflicting lock for F_OFD_GETLK."""
    answer = fcntl.fcntl(fd, command, _FLOCK.pack(kind, os.SEEK_SET, start, length, 0))
    return int(_FLOCK.unpack(answer)[0])


def held_by_qemu(path: str | Path) -> bool:
    """True when a QEMU process (a running VM, qemu-img, qemu-nbd, ...) has the image open."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        start, count = _QEMU_LOCK_BYTES
        return _lock(fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK, start, count) != fcntl.F_UNLCK
    finally:
        os.close(fd)


@contextlib.contextmanager
def kept_offline(path: str | Path) -> Iterator[None]:
    """Refuse a disk that a QEMU process has open, and keep VMs from opening it for writing until
    the block ends (QEMU's own "write not shared" lock; ``qemu-img`` may still read it)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        start, count = _QEMU_LOCK_BYTES
        if _lock(fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK, start, count) != fcntl.F_UNLCK:
            raise in_use_error(path)
        try:
            _lock(fd, fcntl.F_OFD_SETLK, fcntl.F_RDLCK, _UNSHARE_WRITE_BYTE, 1)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise in_use_error(path) from exc
            raise
        yield
    finally:
        os.close(fd)
