"""New Virtual Hard Disk back end on real files, each result checked with qemu-img / qemu-io:
every format and type, differencing children over every parent format, copies from a disk and a
loop device, VHDX options, bad input and a full file system leaving nothing behind."""

from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path

import pytest

from hvmanager.backend import vhd, vhd_identity
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.vhd_create_checks import copy_size
from hvmanager.backend.vhd_types import DiskType, NewVhd
from tests.disks.conftest import EXTENSIONS, MIB, images_equal, img_info, listing, qemu_io, run
from tests.support.vhd_writer import W2RU, write_dynamic

FORMATS = ["vhdx", "vpc", "qcow2", "raw"]


def _make(folder: Path, fmt: str, disk_type: DiskType, size: int = 16 * MIB, name: str = "disk") -> Path:
    info = vhd.create(NewVhd(str(folder / f"{name}{EXTENSIONS[fmt]}"), fmt, disk_type, size))
    return Path(info.path)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("disk_type", [DiskType.FIXED, DiskType.DYNAMIC])
def test_every_format_and_type_is_created_as_asked(tmp_path: Path, fmt: str, disk_type: DiskType) -> None:
    path = tmp_path / f"new{EXTENSIONS[fmt]}"
    info = vhd.create(NewVhd(str(path), fmt, disk_type, 16 * MIB))
    observed = img_info(path, fmt)
    assert observed["format"] == fmt
    assert observed["virtual-size"] == 16 * MIB
    assert (info.format, info.type, info.size) == (fmt, disk_type, 16 * MIB)
    allocated = os.stat(path).st_blocks * 512
    if disk_type is DiskType.FIXED:
        assert allocated >= 16 * MIB, "a fixed disk has its space reserved on the host"
    else:
        assert allocated < 8 * MIB
    if fmt in ("qcow2", "vhdx"):
        run("qemu-img", "check", "-q", "-f", fmt, str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert info.identifier
    if fmt in ("qcow2", "raw"):  # kept by hvmanager beside the format, in an xattr
        assert os.getxattr(path, vhd_identity.DISK_ID_XATTR).decode() == info.identifier
    qemu_io(path, fmt, "write -P 0x42 15M 64k", "read -P 0x42 15M 64k")
    assert listing(tmp_path) == [path.name]


def test_vhd_fixed_size_is_exact_and_read_as_vpc(tmp_path: Path) -> None:
    path = _make(tmp_path, "vpc", DiskType.FIXED, 10 * MIB)
    assert path.stat().st_size == 10 * MIB + 512  # the data, then the footer
    assert path.read_bytes()[-512:].startswith(b"conectix")


@pytest.mark.parametrize("parent_fmt", FORMATS)
def test_differencing_child_is_qcow2_over_any_parent(tmp_path: Path, parent_fmt: str) -> None:
    parent = _make(tmp_path, parent_fmt, DiskType.DYNAMIC, name="parent")
    qemu_io(parent, parent_fmt, "write -P 0x11 2M 64k")
    child_format, why = vhd.differencing_format(parent_fmt)
    assert child_format == "qcow2"
    if parent_fmt == "qcow2":
        assert why is None
    else:
        assert why and ".qcow2" in why and "QCOW2" in why
    # The wizard's format page said VHDX: the child is qcow2 anyway.
    request = NewVhd(str(tmp_path / "child.qcow2"), "vhdx", DiskType.DIFFERENCING, parent=str(parent))
    info = vhd.create(request)
    observed = img_info(info.path, "qcow2")
    assert observed["format"] == "qcow2"
    assert observed["backing-filename"] == str(parent)
    assert observed["backing-filename-format"] == parent_fmt
    assert observed["virtual-size"] == 16 * MIB
    assert info.type is DiskType.DIFFERENCING
    assert info.parent_path == str(parent)
    assert [(p.path, p.format, p.present) for p in info.parents] == [(str(parent), parent_fmt, True)]
    parent_id = vhd.inspect(str(parent)).identifier
    assert parent_id
    assert vhd_identity.recorded_parent(info.path) == (parent_id, 16 * MIB)
    qemu_io(info.path, "qcow2", "read -P 0x11 2M 64k", "write -P 0x22 3M 64k")
    qemu_io(parent, parent_fmt, "read -P 0 3M 64k")  # the parent is never written


def test_differencing_child_needs_a_qcow2_name(tmp_path: Path) -> None:
    parent = _make(tmp_path, "vhdx", DiskType.DYNAMIC, name="parent")
    request = NewVhd(str(tmp_path / "child.vhdx"), "vhdx", DiskType.DIFFERENCING, parent=str(parent))
    problems = vhd.new_vhd_problems(request)
    assert any("must end in .qcow2" in p for p in problems)
    with pytest.raises(ValidationError, match=r"\.qcow2"):
        vhd.create(request)
    assert listing(tmp_path) == ["parent.vhdx"]


def _chain_source(folder: Path) -> Path:
    """A qcow2 child with data of its own over a VHD parent with data."""
    base = _make(folder, "vpc", DiskType.DYNAMIC, name="base")
    qemu_io(base, "vpc", "write -P 0x31 1M 128k", "write -P 0x32 12M 4k")
    child = vhd.create(NewVhd(str(folder / "top.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=str(base)))
    qemu_io(child.path, "qcow2", "write -P 0x33 5M 64k", "write -P 0x34 1M 4k")
    return Path(child.path)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("disk_type", [DiskType.FIXED, DiskType.DYNAMIC])
def test_copy_of_a_virtual_disk_chain_equals_it(tmp_path: Path, fmt: str, disk_type: DiskType) -> None:
    source = _chain_source(tmp_path)
    target = tmp_path / f"copy{EXTENSIONS[fmt]}"
    seen: list[float] = []
    info = vhd.create(NewVhd(str(target), fmt, disk_type, source=str(source)), seen.append)
    assert images_equal(source, "qcow2", target, fmt)
    assert img_info(target, fmt).get("backing-filename") is None  # the chain is flattened
    assert (info.type, info.size) == (disk_type, 16 * MIB)
    assert seen[0] == 0.0 and seen[-1] == 100.0 and seen == sorted(seen)
    if disk_type is DiskType.FIXED:
        assert os.stat(target).st_blocks * 512 >= 16 * MIB


def test_copy_of_a_loop_device_equals_it(tmp_path: Path, loop_device: Path) -> None:
    target = tmp_path / "physical.vhdx"
    info = vhd.create(NewVhd(str(target), "vhdx", DiskType.DYNAMIC, source=str(loop_device)))
    assert info.size == 8 * MIB
    assert images_equal(loop_device, "raw", target, "vhdx")
    qemu_io(target, "vhdx", "read -P 0x5a 1M 64k", "read -P 0xa5 6M 4k")


def test_copy_of_an_odd_sized_source_is_rounded_up_to_a_whole_mib(tmp_path: Path) -> None:
    source = tmp_path / "odd.img"
    source.write_bytes(b"\x77" * (5 * MIB + 512))
    size, note = copy_size(5 * MIB + 512)
    assert size == 6 * MIB
    assert note and "6 MB" in note and "zeros" in note
    assert copy_size(8 * MIB) == (8 * MIB, None)
    assert copy_size(MIB) == (3 * MIB, copy_size(MIB)[1])
    info = vhd.create(NewVhd(str(tmp_path / "copy.qcow2"), "qcow2", DiskType.DYNAMIC, source=str(source)))
    assert info.size == 6 * MIB
    assert images_equal(source, "raw", info.path, "qcow2")  # the extra 511.5 KiB read as zeros


@pytest.mark.parametrize("block_size", [MIB, 256 * MIB])
def test_vhdx_block_and_sector_sizes_are_written_and_qemu_still_uses_the_disk(
    tmp_path: Path, block_size: int
) -> None:
    path = tmp_path / "options.vhdx"
    request = NewVhd(
        str(path),
        "vhdx",
        DiskType.DYNAMIC,
        32 * MIB,
        block_size=block_size,
        logical_sector_size=512,
        physical_sector_size=4096,
    )
    info = vhd.create(request)
    assert (info.block_size, info.logical_sector_size, info.physical_sector_size) == (block_size, 512, 4096)
    assert img_info(path, "vhdx")["cluster-size"] == block_size
    qemu_io(path, "vhdx", "write -P 0x6b 20M 1M", "read -P 0x6b 20M 1M")
    run("qemu-img", "check", "-q", "-f", "vhdx", str(path))
    assert vhd.inspect(str(path)).physical_sector_size == 4096


def test_a_new_dynamic_vhdx_has_hyperv_default_block_size(tmp_path: Path) -> None:
    info = vhd.create(NewVhd(str(tmp_path / "d.vhdx"), "vhdx", DiskType.DYNAMIC, 16 * MIB))
    assert info.block_size == 32 * MIB
    assert (info.logical_sector_size, info.physical_sector_size) == (512, 512)


BAD_OPTIONS = [
    (dict(fmt="vhdx", logical_sector_size=4096), "QEMU can't open VHDX disks with 4096-byte logical"),
    (dict(fmt="vhdx", physical_sector_size=1024), "physical sector size must be 512 or 4096"),
    (dict(fmt="vhdx", block_size=3 * MIB), "power of 2 from 1 MB to 256 MB"),
    (dict(fmt="vhdx", block_size=512 * MIB), "power of 2 from 1 MB to 256 MB"),
    (dict(fmt="vhdx", block_size=512 * 1024), "power of 2 from 1 MB to 256 MB"),
    (dict(fmt="vhdx", block_size=MIB, fixed=True), "A fixed size disk has no block size"),
    (dict(fmt="qcow2", block_size=2 * MIB), "VHDX disks only, not for QCOW2"),
    (dict(fmt="vpc", physical_sector_size=4096), "VHDX disks only, not for VHD"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_vhdx_options_are_refused_and_leave_nothing(tmp_path: Path, options: dict, message: str) -> None:
    options = dict(options)  # the parameter is shared by reruns
    fmt = options.pop("fmt")
    disk_type = DiskType.FIXED if options.pop("fixed", False) else DiskType.DYNAMIC
    request = NewVhd(str(tmp_path / f"x{EXTENSIONS[fmt]}"), fmt, disk_type, 16 * MIB, **options)
    assert any(message in problem for problem in vhd.new_vhd_problems(request)), vhd.new_vhd_problems(request)
    with pytest.raises(ValidationError):
        vhd.create(request)
    assert listing(tmp_path) == []


def _bad_requests(folder: Path) -> list[tuple[NewVhd, str]]:
    (folder / "taken.vhdx").write_bytes(b"keep me")
    (folder / "a-file").write_bytes(b"")
    (folder / "empty.img").write_bytes(b"")
    (folder / "fake.vhdx").write_bytes(b"\1" * 8192)
    (folder / "sub").mkdir()
    base = vhd.create(NewVhd(str(folder / "base.qcow2"), "qcow2", DiskType.DYNAMIC, 8 * MIB))
    orphan = vhd.create(
        NewVhd(str(folder / "orphan.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=base.path)
    )
    os.unlink(base.path)
    write_dynamic(folder / "p.vhd", 8 * MIB, {}, uuid.uuid4())
    locator = {W2RU: ".\\p.vhd"}
    write_dynamic(folder / "d.vhd", 8 * MIB, {}, uuid.uuid4(), parent=(uuid.uuid4(), "p.vhd", locator))
    vhdx = str(folder / "n.vhdx")
    dynamic, differencing = DiskType.DYNAMIC, DiskType.DIFFERENCING

    def child(parent: str | None, size: int | None = None) -> NewVhd:
        return NewVhd(str(folder / "c.qcow2"), "qcow2", differencing, size, parent=parent)

    return [
        (NewVhd(vhdx, "vhdx", dynamic, 2 * MIB), "at least 3 MB"),
        (NewVhd(vhdx, "vhdx", dynamic, 5 * MIB + 1), "whole number of megabytes"),
        (NewVhd(str(folder / "n.vhd"), "vpc", dynamic, 2041 * 1024 * MIB), "can be at most 2040 GB"),
        (NewVhd(vhdx, "vhdx", dynamic, 65 * 1024 * 1024 * MIB), "can be at most 64 TB"),
        (NewVhd(vhdx, "vhdx", dynamic), "Enter the size"),
        (NewVhd(str(folder / "taken.vhdx"), "vhdx", dynamic, 8 * MIB), "already exists"),
        (NewVhd(str(folder / "none" / "n.vhdx"), "vhdx", dynamic, 8 * MIB), "does not exist"),
        (NewVhd(str(folder / "a-file" / "n.vhdx"), "vhdx", dynamic, 8 * MIB), "is not a folder"),
        (NewVhd(vhdx, "vmdk", dynamic, 8 * MIB), "Unknown disk format 'vmdk'"),
        (NewVhd(str(folder / "n.vhd"), "vhdx", dynamic, 8 * MIB), "can't end in .vhd"),
        (NewVhd(vhdx, "vhdx", dynamic, source=str(folder / "gone.img")), "does not exist"),
        (NewVhd(vhdx, "vhdx", dynamic, source=orphan.path), "chain of the source disk is broken"),
        (NewVhd(vhdx, "vhdx", dynamic, source=str(folder / "sub")), "folder or a special"),
        (NewVhd(vhdx, "vhdx", dynamic, source=vhdx), "can't be the new disk itself"),
        (NewVhd(vhdx, "vhdx", dynamic, source=str(folder / "d.vhd")), "without their parent"),
        (child(str(folder / "d.vhd")), "without their parent"),
        (child(None), "Choose the parent"),
        (child(str(folder / "gone")), "does not exist"),
        (child(str(folder / "sub")), "folder or a special"),
        (child(str(folder / "empty.img")), "it is empty"),
        (child(orphan.path), "is broken"),
        (child(orphan.path, 8 * MIB), "is broken"),
        (child(str(folder / "taken.vhdx")), "whole 512-byte sectors"),
        (child(str(folder / "fake.vhdx")), "no VHDX header"),
    ]


def test_bad_input_gives_clear_problems_and_leaves_nothing(tmp_path: Path) -> None:
    requests = _bad_requests(tmp_path)
    before = listing(tmp_path)
    for request, message in requests:
        problems = vhd.new_vhd_problems(request)
        assert any(message in problem for problem in problems), (request, problems)
        with pytest.raises(ValidationError):
            vhd.create(request)
        assert listing(tmp_path) == before, request
    assert (tmp_path / "taken.vhdx").read_bytes() == b"keep me"  # never overwritten


def test_differencing_size_must_be_the_parents(tmp_path: Path) -> None:
    parent = _make(tmp_path, "qcow2", DiskType.DYNAMIC, name="parent")
    path = str(tmp_path / "c.qcow2")
    request = NewVhd(path, "qcow2", DiskType.DIFFERENCING, 8 * MIB, parent=str(parent))
    assert any("its parent's size (16 MB)" in p for p in vhd.new_vhd_problems(request))
    assert (
        vhd.new_vhd_problems(NewVhd(path, "qcow2", DiskType.DIFFERENCING, 16 * MIB, parent=str(parent))) == []
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_full_file_system_leaves_no_file(small_tmpfs: Path, fmt: str) -> None:
    with pytest.raises(HvError, match="not enough free space"):
        vhd.create(NewVhd(str(small_tmpfs / f"big{EXTENSIONS[fmt]}"), fmt, DiskType.FIXED, 16 * MIB))
    assert listing(small_tmpfs) == []


def test_a_copy_that_fills_the_file_system_leaves_no_file(tmp_path: Path, small_tmpfs: Path) -> None:
    source = tmp_path / "full.img"
    source.write_bytes(b"\x01" * (8 * MIB))
    with pytest.raises(HvError, match="not enough free space"):
        vhd.create(NewVhd(str(small_tmpfs / "copy.qcow2"), "qcow2", DiskType.DYNAMIC, source=str(source)))
    assert listing(small_tmpfs) == []


def test_identifiers_of_files_made_elsewhere_and_without_xattrs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = tmp_path / "plain.img"
    run("qemu-img", "create", "-q", "-f", "raw", str(raw), str(4 * MIB))
    assert vhd_identity.identifier(str(raw), "raw") == ""
    given = vhd_identity.ensure_identifier(str(raw), "raw")
    assert uuid.UUID(given).version == 4
    assert vhd_identity.ensure_identifier(str(raw), "raw") == given  # kept, not renewed
    assert vhd_identity.recorded_parent(str(raw)) is None
    vhd_identity.record_parent(str(raw), given, 4 * MIB)
    assert vhd_identity.recorded_parent(str(raw)) == (given, 4 * MIB)
    disk_id = uuid.uuid4()
    write_dynamic(tmp_path / "w.vhd", 4 * MIB, {}, disk_id)
    assert vhd_identity.ensure_identifier(str(tmp_path / "w.vhd"), "vpc") == str(disk_id)

    def no_xattrs(*_args: object) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    monkeypatch.setattr(os, "setxattr", no_xattrs)
    monkeypatch.setattr(os, "getxattr", no_xattrs)
    other = tmp_path / "other.img"
    other.write_bytes(bytes(MIB))
    assert vhd_identity.ensure_identifier(str(other), "raw") == ""
    vhd_identity.record_parent(str(other), "x", MIB)
    assert vhd_identity.recorded_parent(str(other)) is None
    info = vhd.create(NewVhd(str(tmp_path / "n.qcow2"), "qcow2", DiskType.DYNAMIC, 8 * MIB))
    assert info.identifier == ""  # created all the same
