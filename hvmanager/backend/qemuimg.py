"""``qemu-img`` runs (argument lists, never a shell; JSON output; the format always explicit).

Formats are recognised from the file's own magic bytes rather than by letting qemu-img probe them:
a fixed VHD is only recognisable by its footer, and probing an untrusted raw image is unsafe.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hvmanager.backend.errors import HvError

QEMU_IMG = "qemu-img"
TOOL_TIMEOUT_S = 600


def run_tool(args: list[str], timeout: float = TOOL_TIMEOUT_S) -> str:
    """Run a tool and return its standard output; failures become ``HvError`` with its message."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise HvError(f"{args[0]} is not installed.", "Install the qemu-utils package.") from exc
    except subprocess.TimeoutExpired as exc:
        raise HvError(f"{args[0]} did not finish within {timeout:.0f} s.") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise HvError(f"{Path(args[0]).name} {args[1]} failed: {detail[-1] if detail else 'no message'}")
    return done.stdout


def detect_format(path: str | Path) -> str:
    """The qemu-img format of an image file, from its magic bytes (``raw`` when none matches)."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        footer = b""
        if size >= 512:
            handle.seek(size - 512)
            footer = handle.read(8)
    if head[:4] == b"QFI\xfb":
        return "qcow2"
    if head == b"vhdxfile":
        return "vhdx"
    if head == b"conectix" or footer == b"conectix":
        return "vpc"
    return "raw"


def create_options(qemu_format: str, fixed: bool = False) -> list[str]:
    """The ``-o`` options for a new dynamically expanding (or fixed) disk of a format."""
    if qemu_format == "vpc":
        # force_size: the exact size asked for, as Hyper-V does, not one rounded to a CHS geometry.
        subformat = "fixed" if fixed else "dynamic"
        return ["-o", f"subformat={subformat},force_size=on"]
    if qemu_format == "vhdx" and fixed:
        return ["-o", "subformat=fixed"]
    if qemu_format in ("qcow2", "raw") and fixed:
        return ["-o", "preallocation=falloc"]
    return []


def create_disk(path: str | Path, qemu_format: str, size_bytes: int, fixed: bool = False) -> Path:
    """Create a virtual disk; it appears under its name only once complete.

    The image is written under a temporary name in the same folder and renamed at the end, so an
    interrupted or failed create never leaves a half-made disk behind under the real name.
    """
    target = Path(path)
    if target.exists():
        raise HvError(f"'{target}' already exists.", "Choose another name or use the existing disk.")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    os.close(fd)
    try:
        args = [QEMU_IMG, "create", "-q", "-f", qemu_format, *create_options(qemu_format, fixed)]
        run_tool([*args, tmp, str(size_bytes)])
        os.chmod(tmp, 0o644)
        os.rename(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def image_info(path: str | Path, qemu_format: str | None = None) -> dict[str, Any]:
    """``qemu-img info`` as a dict, with the format detected when not given (shared lock)."""
    fmt = qemu_format or detect_format(path)
    out = run_tool([QEMU_IMG, "info", "--output=json", "-U", "-f", fmt, str(path)])
    info: dict[str, Any] = json.loads(out)
    return info
