"""Fixtures, makers and independent observers for the disk-file tests: qemu-img and qemu-io runs,
disks made as New Virtual Hard Disk makes them, a loop device standing for a host disk, and a tiny
tmpfs that fills up."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend.qemuimg import create_options
from hvmanager.backend.vhd_identity import record_type
from hvmanager.backend.vhd_types import DiskType

MIB = 1024 * 1024
EXTENSIONS = {"vhdx": ".vhdx", "vpc": ".vhd", "qcow2": ".qcow2", "raw": ".img"}


def run(*args: str) -> str:
    """Run a tool; fail the test with its message when it fails."""
    done = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def img_info(path: str | Path, fmt: str) -> dict[str, Any]:
    """``qemu-img info`` with the format given (a fixed VHD would probe as raw)."""
    return dict(json.loads(run("qemu-img", "info", "--output=json", "-f", fmt, str(path))))


def qemu_io(path: str | Path, fmt: str, *commands: str) -> str:
    """Run qemu-io commands (``write -P 0x5a 1M 4k``, ``read -P ...``) on an image."""
    args = ["qemu-io", "-f", fmt]
    for command in commands:
        args += ["-c", command]
    out = run(*args, str(path))
    assert "Pattern verification failed" not in out, out
    return out


def images_equal(first: str | Path, first_fmt: str, second: str | Path, second_fmt: str) -> bool:
    """``qemu-img compare``: same content (extra space of the larger one must read as zeros)."""
    done = subprocess.run(
        ["qemu-img", "compare", "-f", first_fmt, "-F", second_fmt, str(first), str(second)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode == 0


def check(path: str | Path, fmt: str) -> None:
    """``qemu-img check`` of the formats that have metadata to check (qcow2, VHDX)."""
    if fmt in ("qcow2", "vhdx"):
        run("qemu-img", "check", "-f", fmt, str(path))


def flat_copy(path: Path, fmt: str, copy: Path) -> Path:
    """The disk's whole view (with its parents) as a sparse raw file, to compare with later."""
    run("qemu-img", "convert", "-f", fmt, "-O", "raw", str(path), str(copy))
    return copy


def create_disk(
    path: Path, fmt: str, kind: DiskType = DiskType.DYNAMIC, size: int = 64 * MIB, writes: Sequence[str] = ()
) -> Path:
    """A disk of ``kind`` made with ``qemu-img create`` and its type recorded as New Virtual Hard
    Disk does (qcow2 and raw don't say it), then the qemu-io ``writes`` (``write -P 0x5a 1M 2M``)."""
    run(
        "qemu-img",
        "create",
        "-q",
        "-f",
        fmt,
        *create_options(fmt, kind is DiskType.FIXED),
        str(path),
        str(size),
    )
    record_type(str(path), fmt, kind)
    if writes:
        qemu_io(path, fmt, *writes)
    return path


def create_child(parent: Path, parent_fmt: str, child: Path, writes: Sequence[str] = ()) -> Path:
    """A qcow2 differencing disk over ``parent`` (of any format), then the qemu-io ``writes``."""
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(parent), "-F", parent_fmt, str(child))
    if writes:
        qemu_io(child, "qcow2", *writes)
    return child


def listing(folder: Path) -> list[str]:
    """Every name in a folder, hidden ones (temporary files) included."""
    return sorted(os.listdir(folder))


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[Path]:
    """A loop device over an 8 MiB file with a pattern at 1 MiB and 6 MiB (detached afterwards)."""
    backing = tmp_path / "loop-backing.img"
    with open(backing, "wb") as handle:
        handle.truncate(8 * MIB)
        handle.seek(MIB)
        handle.write(b"\x5a" * 65536)
        handle.seek(6 * MIB)
        handle.write(b"\xa5" * 4096)
    device = Path(run("losetup", "-f", "--show", str(backing)).strip())
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", str(device)], check=False)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of the test's own (unmounted afterwards)."""
    folder = tmp_path / "small"
    folder.mkdir()
    run("mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "hvtest-small", str(folder))
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
