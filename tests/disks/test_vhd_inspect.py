"""Inspect Disk on real files: VHDs written by a spec-following writer (not QEMU), QEMU-made disks
of every format and type, parent chains (present, missing, looping), host block devices, and the
minimum size after data written at a known offset with qemu-io."""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import vhd
from hvmanager.backend.crc32c import crc32c
from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_types import DiskType, NewVhd, ParentLink
from tests.disks.conftest import EXTENSIONS, MIB, img_info, qemu_io, run
from tests.support.vhd_writer import W2KU, W2RU, make_vhdx_differencing, write_dynamic, write_fixed

FORMATS = ["vhdx", "vpc", "qcow2", "raw"]


def test_fixed_vhd_made_by_another_tool(tmp_path: Path) -> None:
    disk_id = uuid.uuid4()
    path = tmp_path / "other.vhd"
    write_fixed(path, 12 * MIB, {7 * MIB: b"\x3c" * 8192}, disk_id)
    info = vhd.inspect(str(path), with_minimum_size=True)
    assert (info.format, info.type, info.size) == ("vpc", DiskType.FIXED, 12 * MIB)
    assert info.format_label == "VHD"
    assert (info.block_size, info.logical_sector_size, info.physical_sector_size) == (0, 512, 512)
    assert info.identifier == str(disk_id)
    assert info.parent_path is None and info.parents == ()
    assert info.minimum_size == 8 * MIB  # data ends at 7 MiB + 8 KiB
    assert info.file_size == os.stat(path).st_blocks * 512
    # QEMU, told the format, sees the same disk and data (probing would call it raw).
    assert img_info(path, "vpc")["virtual-size"] == 12 * MIB
    qemu_io(path, "vpc", "read -P 0x3c 7M 8k")


def test_dynamic_vhd_made_by_another_tool(tmp_path: Path) -> None:
    disk_id = uuid.uuid4()
    path = tmp_path / "other.vhd"
    write_dynamic(path, 20 * MIB, {3 * MIB: b"\x11" * 4096, 13 * MIB + 512: b"\x22" * 512}, disk_id, MIB)
    info = vhd.inspect(str(path), with_minimum_size=True)
    assert (info.type, info.size, info.block_size, info.identifier) == (
        DiskType.DYNAMIC,
        20 * MIB,
        MIB,
        str(disk_id),
    )
    assert info.minimum_size == 14 * MIB
    assert img_info(path, "vpc")["virtual-size"] == 20 * MIB
    qemu_io(path, "vpc", "read -P 0x11 3M 4k", "read -P 0x22 13632000 512", "read -P 0 4M 9M")


def _vhd_family(folder: Path) -> tuple[Path, Path, uuid.UUID]:
    """A dynamic parent and a differencing child with Windows-style parent locators."""
    parent_id = uuid.uuid4()
    parent = folder / "parent.vhd"
    write_dynamic(parent, 16 * MIB, {9 * MIB: b"\x44" * 4096}, parent_id)
    child = folder / "child.vhd"
    locators = {W2KU: "C:\\Hyper-V\\Disks\\parent.vhd", W2RU: ".\\parent.vhd"}
    write_dynamic(
        child, 16 * MIB, {2 * MIB: b"\x55" * 512}, uuid.uuid4(), parent=(parent_id, "parent.vhd", locators)
    )
    return parent, child, parent_id


def test_differencing_vhd_shows_its_parent_from_the_locators(tmp_path: Path) -> None:
    parent, child, parent_id = _vhd_family(tmp_path)
    info = vhd.inspect(str(child), with_minimum_size=True)
    assert (info.format, info.type, info.size) == ("vpc", DiskType.DIFFERENCING, 16 * MIB)
    assert info.parent_path == str(parent)  # W2ru ".\parent.vhd", resolved beside the child
    assert info.parents == (ParentLink(str(parent), "vpc", True),)
    assert vhd.inspect(str(parent)).identifier == str(parent_id)
    assert info.minimum_size == 10 * MIB  # the parent's data ends at 9 MiB + 4 KiB


def test_differencing_vhd_with_its_parent_missing(tmp_path: Path) -> None:
    parent, child, _ = _vhd_family(tmp_path)
    parent.rename(tmp_path / "moved.vhd")
    info = vhd.inspect(str(child), with_minimum_size=True)
    assert info.type is DiskType.DIFFERENCING
    assert info.parent_path == str(parent)
    assert info.parents == (ParentLink(str(parent), None, False),)
    assert info.minimum_size == 3 * MIB  # only its own data (at 2 MiB) is known


def test_differencing_vhd_with_only_a_windows_path(tmp_path: Path) -> None:
    child = tmp_path / "child.vhd"
    locator = {W2KU: "D:\\VMs\\base.vhd"}
    write_dynamic(child, 8 * MIB, {}, uuid.uuid4(), parent=(uuid.uuid4(), "base.vhd", locator))
    info = vhd.inspect(str(child))
    assert info.parent_path == "D:\\VMs\\base.vhd"
    assert info.parents == (ParentLink("D:\\VMs\\base.vhd", None, False),)


def test_differencing_vhdx_shows_its_parent_from_the_locator(tmp_path: Path) -> None:
    parent = Path(vhd.create(NewVhd(str(tmp_path / "base.vhdx"), "vhdx", DiskType.DYNAMIC, 16 * MIB)).path)
    child = tmp_path / "child.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", str(child), str(16 * MIB))
    make_vhdx_differencing(
        child,
        {
            "parent_linkage": "{83ed2b8c-0d7a-4f48-9a0a-6d1a7c1b2e3f}",
            "relative_path": ".\\base.vhdx",
            "absolute_win32_path": "C:\\Disks\\base.vhdx",
        },
    )
    info = vhd.inspect(str(child), with_minimum_size=True)
    assert (info.format, info.type) == ("vhdx", DiskType.DIFFERENCING)
    assert info.parents == (ParentLink(str(parent), "vhdx", True),)
    assert info.minimum_size == 3 * MIB
    parent.unlink()
    assert vhd.inspect(str(child)).parents == (ParentLink(str(parent), None, False),)


def test_chain_over_a_vhd_differencing_disk(tmp_path: Path) -> None:
    parent, child, _ = _vhd_family(tmp_path)
    top = tmp_path / "top.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "child.vhd", "-F", "vpc", str(top), str(16 * MIB))
    qemu_io(top, "qcow2", "write -P 0x66 12M 4k")
    info = vhd.inspect(str(top), with_minimum_size=True)
    assert info.parent_path == str(child)  # a relative backing name, resolved beside the child
    assert info.parents == (ParentLink(str(child), "vpc", True), ParentLink(str(parent), "vpc", True))
    assert info.minimum_size == 13 * MIB


def test_a_looping_chain_ends(tmp_path: Path) -> None:
    first, second = tmp_path / "a.qcow2", tmp_path / "b.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", str(first), str(8 * MIB))
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(first), "-F", "qcow2", str(second))
    run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(second), "-F", "qcow2", str(first))
    info = vhd.inspect(str(first), with_minimum_size=True)
    assert [link.path for link in info.parents] == [str(second), str(first)]
    assert info.minimum_size == 3 * MIB


def test_a_missing_parent_in_the_middle_ends_the_chain(tmp_path: Path) -> None:
    base = vhd.create(NewVhd(str(tmp_path / "base.qcow2"), "qcow2", DiskType.DYNAMIC, 8 * MIB))
    middle = vhd.create(NewVhd(str(tmp_path / "mid.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=base.path))
    top = vhd.create(NewVhd(str(tmp_path / "top.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=middle.path))
    os.unlink(middle.path)
    info = vhd.inspect(top.path, with_minimum_size=True)
    assert info.parents == (ParentLink(middle.path, None, False),)
    assert info.minimum_size == 3 * MIB


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("disk_type", [DiskType.FIXED, DiskType.DYNAMIC])
def test_minimum_size_after_data_at_a_known_offset(tmp_path: Path, fmt: str, disk_type: DiskType) -> None:
    path = tmp_path / f"d{EXTENSIONS[fmt]}"
    vhd.create(NewVhd(str(path), fmt, disk_type, 32 * MIB))
    assert vhd.inspect(str(path), with_minimum_size=True).minimum_size == 3 * MIB
    qemu_io(path, fmt, "write -P 0x5a 21606400 4096")  # 20.6 MiB + 4 KiB: ends in the 21st MiB
    assert vhd.inspect(str(path), with_minimum_size=True).minimum_size == 21 * MIB
    qemu_io(path, fmt, "write -P 0x5b 22020096 512")  # exactly at 21 MiB
    assert vhd.inspect(str(path), with_minimum_size=True).minimum_size == 22 * MIB
    qemu_io(path, fmt, "write -P 0x5c 33553920 512")  # the last sector)
    assert vhd.inspect(str(path)).minimum_size is None  # only computed when asked for
    assert vhd.inspect(str(path), with_minimum_size=True).minimum_size == 32 * MIB


@pytest.mark.parametrize("parent_fmt", FORMATS)
def test_minimum_size_of_a_differencing_disk_includes_its_parent(tmp_path: Path, parent_fmt: str) -> None:
    parent = tmp_path / f"p{EXTENSIONS[parent_fmt]}"
    vhd.create(NewVhd(str(parent), parent_fmt, DiskType.DYNAMIC, 32 * MIB))
    qemu_io(parent, parent_fmt, "write -P 1 17M 4k")
    child = vhd.create(NewVhd(str(tmp_path / "c.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=str(parent)))
    qemu_io(child.path, "qcow2", "write -P 2 5M 4k")
    assert vhd.inspect(child.path, with_minimum_size=True).minimum_size == 18 * MIB
    qemu_io(child.path, "qcow2", "write -P 2 25M 4k")
    assert vhd.inspect(child.path, with_minimum_size=True).minimum_size == 26 * MIB


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("disk_type", [DiskType.FIXED, DiskType.DYNAMIC])
def test_qemu_made_disks_inspect_as_qemu_img_sees_them(tmp_path: Path, fmt: str, disk_type: DiskType) -> None:
    path = tmp_path / f"q{EXTENSIONS[fmt]}"
    options = {"vpc": ["-o", "force_size=on"]}.get(fmt, [])
    if disk_type is DiskType.FIXED:
        options += [
            "-o",
            {"vpc": "subformat=fixed", "vhdx": "subformat=fixed"}.get(fmt, "preallocation=falloc"),
        ]
    run("qemu-img", "create", "-q", "-f", fmt, *options, str(path), str(24 * MIB))
    # QEMU writes fixed VHD/VHDX sparse: their type comes from the header, not from the allocation.
    # A qcow2 file doesn't say it was preallocated: without hvmanager's record it is dynamic.
    observed = img_info(path, fmt)
    info = vhd.inspect(str(path))
    shown = DiskType.DYNAMIC if fmt == "qcow2" else disk_type
    assert (info.format, info.type, info.size) == (fmt, shown, observed["virtual-size"])
    assert info.file_size == observed["actual-size"]
    expected_block = 0 if shown is DiskType.FIXED or fmt == "raw" else observed.get("cluster-size", 0)
    assert info.block_size == expected_block
    if fmt in ("qcow2", "raw"):
        assert info.identifier == ""  # made by qemu-img, not hvmanager: no identifier yet
    else:
        assert uuid.UUID(info.identifier).int != 0


def test_a_block_device_inspects_as_a_fixed_raw_disk(loop_device: Path) -> None:
    info = vhd.inspect(str(loop_device), with_minimum_size=True)
    assert (info.format, info.type, info.size, info.file_size) == ("raw", DiskType.FIXED, 8 * MIB, 8 * MIB)
    assert info.minimum_size == 7 * MIB  # the last data ends at 6 MiB + 4 KiB
    assert info.identifier == ""


def test_what_is_not_a_disk_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(HvError, match="does not exist"):
        vhd.inspect(str(tmp_path / "nothing.vhdx"))
    with pytest.raises(HvError, match="folder or a special file"):
        vhd.inspect(str(tmp_path))
    broken = tmp_path / "broken.vhdx"
    broken.write_bytes(b"vhdxfile" + bytes(2 * MIB))
    with pytest.raises(HvError, match="not a valid VHDX file"):
        vhd.inspect(str(broken))


def test_a_vhdx_with_a_log_to_replay_counts_as_full_for_the_minimum(tmp_path: Path) -> None:
    path = tmp_path / "dirty.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", str(path), str(16 * MIB))
    with open(path, "r+b") as handle:  # header 1 gets a log GUID and the highest sequence number
        handle.seek(64 * 1024)
        header = bytearray(handle.read(4096))
        sequence = max(struct.unpack_from("<Q", header, 8)[0], _sequence(handle, 128 * 1024)) + 1
        struct.pack_into("<Q", header, 8, sequence)
        header[48:64] = uuid.uuid4().bytes_le
        struct.pack_into("<I", header, 4, 0)
        struct.pack_into("<I", header, 4, crc32c(bytes(header)))
        handle.seek(64 * 1024)
        handle.write(header)
    assert vhd.inspect(str(path), with_minimum_size=True).minimum_size == 16 * MIB


def _sequence(handle: Any, offset: int) -> int:
    handle.seek(offset + 8)
    return int(struct.unpack("<Q", handle.read(8))[0])


def test_a_qcow2_with_an_external_data_file_counts_its_clusters_as_data(tmp_path: Path) -> None:
    path, data = tmp_path / "ext.qcow2", tmp_path / "ext.data"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", f"data_file={data}", str(path), str(16 * MIB))
    qemu_io(path, "qcow2", "write -z 9M 64k")  # a zero cluster: no data
    qemu_io(path, "qcow2", "write -P 7 4M 64k")
    # Its host offset is in ext.data, not in ext.qcow2: counted as data without reading it.
    assert vhd.inspect(str(path), with_minimum_size=True).minimum_size == 5 * MIB
