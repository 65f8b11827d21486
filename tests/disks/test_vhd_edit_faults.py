"""Bad input and failures of the disk editor: sizes out of range, taken or bad targets, missing
parents, disks held by a running QEMU process, a full file system, a stalled tool.

Each failure must say what is wrong, leave no new or temporary file, and leave the original disk
as it was (checked with ``qemu-img compare`` against a flat copy taken before, and ``qemu-img check``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hvmanager.backend import vhd, vhd_process
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.vhd_types import DiskType
from tests.disks.conftest import check, create_child, create_disk, flat_copy, img_info, listing, run

MIB = 1024 * 1024
GIB = 1024 * MIB
SIZE = 64 * MIB
IN_USE = "in use by a running virtual machine"
NO_SPACE = "not enough free space"


def make_disk(
    path: Path, fmt: str, kind: DiskType = DiskType.DYNAMIC, size: int = SIZE, data_mib: int = 2
) -> Path:
    """A disk with ``data_mib`` MiB of 0x5a from 1 MiB on."""
    return create_disk(path, fmt, kind, size, [f"write -P 0x5a {MIB} {data_mib * MIB}"] if data_mib else [])


def make_child(parent: Path, parent_fmt: str, child: Path, data_mib: int = 1) -> Path:
    """A qcow2 differencing disk over ``parent`` with ``data_mib`` MiB of 0x6b from 8 MiB on."""
    return create_child(parent, parent_fmt, child, [f"write -P 0x6b {8 * MIB} {data_mib * MIB}"])


def fingerprint(path: Path) -> tuple[int, int, str]:
    """Size, modification time and hash of a file: any write changes it."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def unchanged(view: Path, path: Path, fmt: str) -> None:
    """The disk still reads as its flat copy taken before, and is consistent."""
    run("qemu-img", "compare", "-f", "raw", "-F", fmt, str(view), str(path))
    check(path, fmt)


# --- sizes, targets, parents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (2 * MIB, "at least 3 MB"),
        (SIZE + 1000, "whole number of megabytes"),
        (2041 * GIB, "can be at most 2040 GB"),
        (1.5 * SIZE, "whole number of bytes"),
        ("80M", "whole number of bytes"),
        (True, "whole number of bytes"),
    ],
)
def test_resize_refuses_sizes_out_of_range_or_not_numbers(size: object, message: str, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "disk.vhd", "vpc")
    before = fingerprint(disk)
    with pytest.raises(ValidationError, match=message):
        vhd.resize(str(disk), size)  # type: ignore[arg-type]
    assert fingerprint(disk) == before and listing(tmp_path) == ["disk.vhd"]


def test_convert_refuses_a_disk_too_large_for_vhd(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "huge.qcow2", "qcow2", size=2041 * GIB, data_mib=0)
    with pytest.raises(ValidationError, match="a VHD disk can be at most 2040 GB"):
        vhd.convert(str(disk), str(tmp_path / "huge.vhd"), "vpc", DiskType.DYNAMIC)
    assert listing(tmp_path) == ["huge.qcow2"]


@pytest.mark.parametrize(
    ("destination", "fmt", "kind", "message"),
    [
        ("taken.vhdx", "vhdx", DiskType.DYNAMIC, "already exists"),
        ("disk.qcow2", "qcow2", DiskType.DYNAMIC, "already exists"),
        ("no-such-folder/new.vhdx", "vhdx", DiskType.DYNAMIC, "does not exist"),
        ("", "vhdx", DiskType.DYNAMIC, "Enter the name"),
        ("new.vmdk", "vmdk", DiskType.DYNAMIC, "not a disk format"),
        ("new.qcow2", "qcow2", DiskType.DIFFERENCING, "fixed size or dynamically expanding"),
    ],
)
def test_convert_refuses_bad_targets(
    destination: str, fmt: str, kind: DiskType, message: str, tmp_path: Path
) -> None:
    disk = make_disk(tmp_path / "disk.qcow2", "qcow2")
    taken = tmp_path / "taken.vhdx"
    taken.write_bytes(b"somebody's file")
    before = {path: fingerprint(path) for path in (disk, taken)}
    with pytest.raises(ValidationError, match=message):
        vhd.convert(str(disk), str(tmp_path / destination) if destination else "", fmt, kind)
    assert {path: fingerprint(path) for path in (disk, taken)} == before
    assert listing(tmp_path) == ["disk.qcow2", "taken.vhdx"]


def test_merge_to_new_refuses_an_existing_file(tmp_path: Path) -> None:
    child = make_child(make_disk(tmp_path / "parent.qcow2", "qcow2"), "qcow2", tmp_path / "child.qcow2")
    taken = tmp_path / "merged.vhd"
    taken.write_bytes(b"keep me")
    with pytest.raises(ValidationError, match="already exists"):
        vhd.merge_to_new(str(child), str(taken), "vpc", DiskType.FIXED)
    assert taken.read_bytes() == b"keep me"
    assert listing(tmp_path) == ["child.qcow2", "merged.vhd", "parent.qcow2"]


def test_a_missing_parent_is_refused_by_every_action_but_reconnect(tmp_path: Path) -> None:
    child = make_child(make_disk(tmp_path / "parent.vhd", "vpc"), "vpc", tmp_path / "child.qcow2")
    (tmp_path / "parent.vhd").unlink()
    before = fingerprint(child)
    actions: list[Callable[[], object]] = [
        lambda: vhd.compact(str(child)),
        lambda: vhd.convert(str(child), str(tmp_path / "new.qcow2"), "qcow2", DiskType.DYNAMIC),
        lambda: vhd.merge_to_new(str(child), str(tmp_path / "new.qcow2"), "qcow2", DiskType.DYNAMIC),
        lambda: vhd.merge_into_parent(str(child)),
        lambda: vhd.resize(str(child), SIZE * 2),
    ]
    for action in actions:
        with pytest.raises(ValidationError, match=r"parent disk .*parent\.vhd' is missing: reconnect"):
            action()
    assert fingerprint(child) == before and listing(tmp_path) == ["child.qcow2"]


def test_merge_refuses_a_larger_child_over_a_vhd_parent(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "parent.vhd", "vpc")
    child = make_child(parent, "vpc", tmp_path / "child.qcow2")
    run("qemu-img", "resize", "-q", "-f", "qcow2", str(child), str(SIZE * 2))  # grown by another tool
    before = {path: fingerprint(path) for path in (parent, child)}
    with pytest.raises(ValidationError, match=r"larger than its parent.*a VHD disk QEMU can't grow"):
        vhd.merge_into_parent(str(child))
    assert {path: fingerprint(path) for path in (parent, child)} == before


def test_merge_refuses_a_parent_that_is_not_the_recorded_one(tmp_path: Path) -> None:
    from hvmanager.backend.vhd_identity import record_parent

    parent = make_disk(tmp_path / "parent.qcow2", "qcow2")
    child = make_child(parent, "qcow2", tmp_path / "child.qcow2")
    record_parent(str(child), "11111111-2222-3333-4444-555555555555", SIZE)
    os.setxattr(parent, "user.hvmanager.disk-id", b"99999999-2222-3333-4444-555555555555")
    with pytest.raises(ValidationError, match=r"is not the disk 'child\.qcow2' was made from"):
        vhd.merge_into_parent(str(child))
    assert child.exists()


# --- a disk a running QEMU process holds ----------------------------------------------------------


@pytest.fixture
def hold(tmp_path: Path) -> Iterator[Callable[[Path, str], None]]:
    """Open images read-write in a ``qemu-storage-daemon`` (as a running VM holds its disk, with
    QEMU's image locks), until the test ends."""
    daemons: list[subprocess.Popen[bytes]] = []

    def start(image: Path, fmt: str) -> None:
        socket = tmp_path / f"nbd-{len(daemons)}.sock"
        args = [
            "qemu-storage-daemon",
            "--blockdev", f"driver=file,node-name=file0,filename={image}",
            "--blockdev", f"driver={fmt},node-name=disk0,file=file0",
            "--nbd-server", f"addr.type=unix,addr.path={socket}",
            "--export", "type=nbd,id=export0,node-name=disk0,writable=on",
        ]  # fmt: skip
        daemons.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        deadline = time.monotonic() + 20
        while not socket.exists():  # the export is up: the image is open and locked
            assert daemons[-1].poll() is None, daemons[-1].stderr.read() if daemons[-1].stderr else ""
            assert time.monotonic() < deadline, "qemu-storage-daemon did not start"
            time.sleep(0.05)

    yield start
    for daemon in daemons:
        daemon.kill()
        daemon.wait()


def test_every_action_refuses_a_disk_in_use(hold: Callable[[Path, str], None], tmp_path: Path) -> None:
    disks = {fmt: make_disk(tmp_path / f"disk.{fmt}", fmt) for fmt in ("qcow2", "vpc", "vhdx")}
    parent = make_disk(tmp_path / "parent.qcow2", "qcow2")
    child = make_child(parent, "qcow2", tmp_path / "child.qcow2")
    views = {disk: flat_copy(disk, fmt, tmp_path / f"view-{fmt}.raw") for fmt, disk in disks.items()}
    for fmt, disk in disks.items():
        hold(disk, fmt)
    hold(child, "qcow2")  # holds its parent too (read, not shared for writing)
    before = listing(tmp_path)
    actions: list[Callable[[], object]] = [
        *(lambda disk=disk: vhd.compact(str(disk)) for disk in disks.values()),
        *(lambda disk=disk: vhd.resize(str(disk), SIZE * 2) for disk in disks.values()),
        lambda: vhd.resize(str(disks["qcow2"]), 8 * MIB),
        lambda: vhd.convert(str(disks["vpc"]), str(tmp_path / "new.qcow2"), "qcow2", DiskType.DYNAMIC),
        lambda: vhd.merge_into_parent(str(child)),
        lambda: vhd.compact(str(parent)),
        lambda: vhd.resize(str(parent), SIZE * 2),
    ]
    for action in actions:
        with pytest.raises(InvalidStateError, match=IN_USE):
            action()
    assert listing(tmp_path) == before
    for disk, view in views.items():
        assert vhd.inspect(str(disk)).size == SIZE
        run(
            "qemu-img",
            "compare",
            "-U",
            "-f",
            "raw",
            "-F",
            vhd.inspect(str(disk)).format,
            str(view),
            str(disk),
        )


def test_a_disk_being_rewritten_can_not_be_opened_for_writing(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "disk.qcow2", "qcow2")
    with vhd_process.kept_offline(disk):
        done = subprocess.run(
            ["qemu-io", "-f", "qcow2", "-c", "write 0 4k", str(disk)], capture_output=True, text=True
        )
        assert done.returncode != 0 and "lock" in done.stderr
        run("qemu-img", "info", "-f", "qcow2", str(disk))  # reading it is fine
    run("qemu-io", "-f", "qcow2", "-c", "write 0 4k", str(disk))


# --- a full file system ---------------------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount a tmpfs of a given size in MiB under the test's folder (unmounted afterwards)."""
    mounted: list[Path] = []

    def mount(mib: int) -> Path:
        folder = tmp_path / f"fs-{len(mounted)}"
        folder.mkdir()
        run("mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0755", "hvtest-edit", str(folder))
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


def fill(folder: Path, leave_mib: float) -> None:
    """Fill a file system up to ``leave_mib`` MiB of free space."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(folder / "filler", "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, max(0, free - int(leave_mib * MIB)))


@pytest.mark.parametrize(("fmt", "kind"), [("qcow2", DiskType.DYNAMIC), ("vpc", DiskType.FIXED)])
def test_convert_into_a_full_file_system(
    fmt: str, kind: DiskType, small_fs: Callable[[int], Path], tmp_path: Path
) -> None:
    disk = make_disk(tmp_path / "disk.vhdx", "vhdx", data_mib=12)
    folder = small_fs(8)
    with pytest.raises(HvError, match=NO_SPACE):
        vhd.convert(str(disk), str(folder / f"new.{fmt}"), fmt, kind)
    assert listing(folder) == []


def test_convert_to_a_fixed_disk_larger_than_the_free_space(
    small_fs: Callable[[int], Path], tmp_path: Path
) -> None:
    disk = make_disk(tmp_path / "disk.qcow2", "qcow2", data_mib=1)
    folder = small_fs(24)  # the data fits, a fixed 64 MiB disk does not
    with pytest.raises(HvError, match=NO_SPACE):
        vhd.convert(str(disk), str(folder / "new.vhdx"), "vhdx", DiskType.FIXED)
    assert listing(folder) == []


@pytest.mark.parametrize(
    ("fmt", "kind", "action"),
    [
        ("qcow2", DiskType.DYNAMIC, "compact"),
        ("vhdx", DiskType.DYNAMIC, "compact"),
        ("vpc", DiskType.DYNAMIC, "expand"),
        ("vhdx", DiskType.FIXED, "shrink"),
        ("raw", DiskType.FIXED, "expand"),
        ("qcow2", DiskType.FIXED, "expand"),
    ],
)
def test_rewrite_on_a_full_file_system_keeps_the_original(
    fmt: str, kind: DiskType, action: str, small_fs: Callable[[int], Path], tmp_path: Path
) -> None:
    folder = small_fs(48)
    disk = make_disk(folder / f"disk.{fmt}", fmt, kind, size=16 * MIB, data_mib=8)
    run("qemu-io", "-f", fmt, "-c", f"write -P 0 {2 * MIB} {2 * MIB}", str(disk))
    view = flat_copy(disk, fmt, tmp_path / "view.raw")
    mode = DiskType.FIXED if kind is DiskType.FIXED else DiskType.DYNAMIC
    fill(folder, 0.5)
    with pytest.raises(HvError, match=NO_SPACE):
        if action == "compact":
            vhd.compact(str(disk))
        else:
            vhd.resize(str(disk), 32 * MIB if action == "expand" else 12 * MIB)
    assert listing(folder) == [f"disk.{fmt}", "filler"]
    (folder / "filler").unlink()
    unchanged(view, disk, fmt)
    info = vhd.inspect(str(disk))
    assert (info.size, info.type) == (16 * MIB, mode)


def test_merge_into_a_parent_on_a_full_file_system_keeps_the_child(
    small_fs: Callable[[int], Path], tmp_path: Path
) -> None:
    folder = small_fs(24)
    parent = make_disk(folder / "parent.vhd", "vpc", data_mib=1)
    child = make_child(parent, "vpc", tmp_path / "child.qcow2", data_mib=12)
    view = flat_copy(child, "qcow2", tmp_path / "view.raw")
    fill(folder, 2)
    with pytest.raises(HvError, match=NO_SPACE):
        vhd.merge_into_parent(str(child))
    assert child.exists()
    unchanged(view, child, "qcow2")  # the child still reads as before: the merge can be run again
    (folder / "filler").unlink()
    vhd.merge_into_parent(str(child))
    unchanged(view, parent, "vpc")


# --- the tool itself ------------------------------------------------------------------------------


def test_a_stalled_tool_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)  # opening it blocks until a writer comes: qemu-img neither reads nor writes
    monkeypatch.setattr(vhd_process, "STALL_TIMEOUT_S", 2)
    with pytest.raises(HvError, match="made no progress for 2 s"):
        vhd_process.run_qemu_img(["info", "-f", "raw", str(fifo)])


def test_progress_is_reported_as_the_tool_goes(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "disk.qcow2", "qcow2", data_mib=16)
    seen: list[float] = []
    vhd_process.run_qemu_img(
        ["convert", "-p", "-f", "qcow2", "-O", "raw", str(disk), str(tmp_path / "copy.img")],
        seen.append,
        (50, 100),
    )
    assert len(seen) >= 2 and seen == sorted(seen) and seen[0] >= 50 and seen[-1] == 100
    assert img_info(tmp_path / "copy.img", "raw")["virtual-size"] == SIZE
