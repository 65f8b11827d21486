"""The Edit Virtual Hard Disk actions on real image files: convert, compact, expand, shrink, merge,
reconnect, and which actions each kind of disk is offered.

Disks are made with ``qemu-img create`` and filled with ``qemu-io`` at known offsets; every result is
checked with an independent observer: ``qemu-img compare`` against a flat copy of the disk's view
taken before, ``qemu-img check``/``info``, ``qemu-io`` pattern reads, the file's host allocation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hvmanager.backend import vhd
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.vhd_identity import (
    ensure_identifier,
    identifier,
    record_parent,
    recorded_parent,
)
from hvmanager.backend.vhd_types import DiskType, EditAction
from tests.disks.conftest import check, create_child, create_disk, flat_copy, images_equal, img_info, run
from tests.disks.conftest import qemu_io as run_qemu_io

MIB = 1024 * 1024
SIZE = 64 * MIB
FORMATS = ("qcow2", "vhdx", "vpc", "raw")
KINDS = [(fmt, kind) for fmt in FORMATS for kind in (DiskType.FIXED, DiskType.DYNAMIC)]
# (pattern byte, offset, length): what every test disk holds.
DATA = ((0x11, 1 * MIB, 2 * MIB), (0x22, 10 * MIB, 1 * MIB))
CHILD_DATA = (f"write -P 0x33 {2 * MIB} {1 * MIB}", f"write -P 0x44 {20 * MIB} {1 * MIB}")


# --- independent observers and makers -------------------------------------------------------------


def qemu_io(path: Path, fmt: str, *commands: str) -> str:
    """qemu-io commands whose output must show no failure or error."""
    out = run_qemu_io(path, fmt, *commands)
    assert "failed" not in out and "error" not in out.lower(), out
    return out


def make_disk(path: Path, fmt: str, kind: DiskType, size: int = SIZE, data: bool = True) -> Path:
    """A disk holding ``DATA`` (unless not ``data``)."""
    writes = [f"write -P {byte} {offset} {length}" for byte, offset, length in DATA] if data else []
    return create_disk(path, fmt, kind, size, writes)


def make_child(parent: Path, parent_fmt: str, child: Path, record: bool = True) -> Path:
    """A qcow2 differencing disk over ``parent`` with data of its own, as hvmanager makes them."""
    create_child(parent, parent_fmt, child)
    if record:
        parent_size = img_info(parent, parent_fmt)["virtual-size"]
        record_parent(str(child), ensure_identifier(str(parent), parent_fmt), parent_size)
    qemu_io(child, "qcow2", *CHILD_DATA)
    return child


def same_content(first: Path, first_fmt: str, second: Path, second_fmt: str) -> None:
    """``qemu-img compare``: equal, a larger image's extra area reading as zeros."""
    assert images_equal(first, first_fmt, second, second_fmt)


def allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def vhd_footer_type(path: Path) -> int:
    """The disk type written in a VHD footer (2 fixed, 3 dynamic), read from the raw bytes."""
    with open(path, "rb") as handle:
        handle.seek(-512, os.SEEK_END)
        footer = handle.read(512)
    assert footer[:8] == b"conectix"
    return int.from_bytes(footer[60:64], "big")


def leftovers(folder: Path) -> list[str]:
    return [entry.name for entry in folder.iterdir() if entry.name.endswith(".partial")]


def assert_type(path: Path, fmt: str, kind: DiskType) -> None:
    """The type as the file shows it to the host and in its own header, not only as inspect says."""
    assert vhd.inspect(str(path)).type is kind
    if fmt == "vpc":
        assert vhd_footer_type(path) == (2 if kind is DiskType.FIXED else 3)
    size = img_info(path, fmt)["virtual-size"]
    if kind is DiskType.FIXED:
        assert allocated(path) >= size
    else:
        assert allocated(path) < size * 3 // 4


# --- which actions each disk is offered -----------------------------------------------------------


def test_actions_offered_follow_the_disk_type(tmp_path: Path) -> None:
    fixed = vhd.action_problems(vhd.inspect(str(make_disk(tmp_path / "f.vhd", "vpc", DiskType.FIXED))))
    assert fixed[EditAction.COMPACT] == "A fixed-size disk has no unused blocks to remove."
    assert fixed[EditAction.CONVERT] is None and fixed[EditAction.EXPAND] is None
    assert "Only a differencing disk" in (fixed[EditAction.MERGE] or "")
    assert "Only a differencing disk" in (fixed[EditAction.RECONNECT] or "")

    dynamic_path = make_disk(tmp_path / "d.vhdx", "vhdx", DiskType.DYNAMIC)
    dynamic = vhd.action_problems(vhd.inspect(str(dynamic_path), with_minimum_size=True))
    assert dynamic[EditAction.COMPACT] is None and dynamic[EditAction.SHRINK] is None

    child = make_child(dynamic_path, "vhdx", tmp_path / "c.qcow2")
    problems = vhd.action_problems(vhd.inspect(str(child)))
    assert problems[EditAction.MERGE] is None and problems[EditAction.COMPACT] is None
    assert "has its parent's size" in (problems[EditAction.SHRINK] or "")
    assert "can't grow" in (problems[EditAction.EXPAND] or "")  # a VHDX parent
    assert "is where the differencing disk expects it" in (problems[EditAction.RECONNECT] or "")

    over_qcow2 = make_child(
        make_disk(tmp_path / "p.qcow2", "qcow2", DiskType.DYNAMIC), "qcow2", tmp_path / "e.qcow2"
    )
    assert vhd.action_problems(vhd.inspect(str(over_qcow2)))[EditAction.EXPAND] is None


def test_a_disk_full_to_its_end_is_not_offered_shrink(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "full.qcow2", "qcow2", DiskType.DYNAMIC)
    qemu_io(disk, "qcow2", f"write -P 0x55 {SIZE - MIB} {MIB}")
    problem = vhd.action_problems(vhd.inspect(str(disk), with_minimum_size=True))[EditAction.SHRINK]
    assert problem is not None and "up to its very end" in problem


def test_a_missing_parent_offers_only_reconnect(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "p.qcow2", "qcow2", DiskType.DYNAMIC)
    child = make_child(parent, "qcow2", tmp_path / "c.qcow2")
    parent.rename(tmp_path / "moved.qcow2")
    problems = vhd.action_problems(vhd.inspect(str(child)))
    assert problems[EditAction.RECONNECT] is None
    for action in (EditAction.COMPACT, EditAction.CONVERT, EditAction.EXPAND, EditAction.MERGE):
        assert "is missing: reconnect" in (problems[action] or ""), action


# --- convert --------------------------------------------------------------------------------------


@pytest.fixture(params=[*KINDS, ("qcow2", DiskType.DIFFERENCING)], ids=lambda p: f"{p[0]}-{p[1].value}")
def source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    fmt, kind = request.param
    if kind is DiskType.DIFFERENCING:
        parent = make_disk(tmp_path / "parent.vhd", "vpc", DiskType.DYNAMIC)
        return make_child(parent, "vpc", tmp_path / "source.qcow2"), fmt
    return make_disk(tmp_path / f"source.{fmt}", fmt, kind), fmt


@pytest.mark.parametrize(("fmt", "kind"), KINDS, ids=[f"to-{f}-{k.value}" for f, k in KINDS])
def test_convert_every_format_and_type(
    source: tuple[Path, str], fmt: str, kind: DiskType, tmp_path: Path
) -> None:
    path, source_fmt = source
    before = path.stat().st_mtime_ns, allocated(path), path.read_bytes()[:4096]
    target = tmp_path / "out" / f"converted.{fmt}"
    target.parent.mkdir()
    seen: list[float] = []

    result = vhd.convert(str(path), str(target), fmt, kind, seen.append)

    assert result.path == str(target) and result.format == fmt and result.type is kind
    assert img_info(target, fmt)["format"] == fmt and img_info(target, fmt)["virtual-size"] == SIZE
    assert_type(target, fmt, kind)
    same_content(path, source_fmt, target, fmt)
    check(target, fmt)
    assert "backing-filename" not in img_info(target, fmt)  # a differencing source is flattened
    assert (path.stat().st_mtime_ns, allocated(path), path.read_bytes()[:4096]) == before  # kept as it was
    assert seen and seen[-1] == 100.0 and seen == sorted(seen)
    assert leftovers(target.parent) == []


def test_a_vhdx_converted_to_vhdx_keeps_block_and_sector_size_with_a_new_identifier(tmp_path: Path) -> None:
    from hvmanager.backend.vhdx_headers import read_vhdx, set_vhdx_sector_sizes

    source = tmp_path / "big-blocks.vhdx"
    run("qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=16M", str(source), str(SIZE))
    set_vhdx_sector_sizes(str(source), None, 4096)
    qemu_io(source, "vhdx", "write -P 0x66 0 1M")
    result = vhd.convert(str(source), str(tmp_path / "copy.vhdx"), "vhdx", DiskType.DYNAMIC)
    copied = read_vhdx(result.path)
    assert (copied.block_size, copied.physical_sector_size) == (16 * MIB, 4096)
    assert img_info(Path(result.path), "vhdx")["cluster-size"] == 16 * MIB
    assert copied.virtual_disk_id != read_vhdx(str(source)).virtual_disk_id
    same_content(source, "vhdx", Path(result.path), "vhdx")


# --- compact --------------------------------------------------------------------------------------


def _zeroed_disk(folder: Path, fmt: str) -> Path:
    """A dynamic disk with 24 MiB more data, 22 MiB of which were then overwritten with zeros."""
    disk = make_disk(folder / f"zeroed.{fmt}", fmt, DiskType.DYNAMIC)
    qemu_io(disk, fmt, f"write -P 0x77 {16 * MIB} {24 * MIB}", f"write -P 0 {17 * MIB} {22 * MIB}")
    return disk


@pytest.mark.parametrize("fmt", FORMATS)
def test_compact_removes_zeroed_blocks_and_keeps_content_and_identity(fmt: str, tmp_path: Path) -> None:
    disk = _zeroed_disk(tmp_path, fmt)
    ident = ensure_identifier(str(disk), fmt)
    os.setxattr(disk, "user.test.mark", b"kept")
    disk.chmod(0o640)
    view = flat_copy(disk, fmt, tmp_path / "view.raw")
    file_before = allocated(disk)

    before, after = vhd.compact(str(disk))

    assert before == file_before and after == allocated(disk)
    assert after < before - 6 * MIB, (before, after)
    same_content(view, "raw", disk, fmt)
    check(disk, fmt)
    assert img_info(disk, fmt)["format"] == fmt and vhd.inspect(str(disk)).type is DiskType.DYNAMIC
    assert identifier(str(disk), fmt) == ident and ident
    assert os.getxattr(disk, "user.test.mark") == b"kept" and disk.stat().st_mode & 0o777 == 0o640
    assert leftovers(tmp_path) == []


def test_compact_a_differencing_disk_keeps_its_parent_named_as_before(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "parent.qcow2", "qcow2", DiskType.DYNAMIC)
    child = tmp_path / "child.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "parent.qcow2", "-F", "qcow2", str(child))
    qemu_io(child, "qcow2", f"write -P 0x33 0 {8 * MIB}", f"write -P 0 {1 * MIB} {6 * MIB}")
    parent_bytes = parent.read_bytes()
    view = flat_copy(child, "qcow2", tmp_path / "view.raw")

    before, after = vhd.compact(str(child))

    assert after < before - 4 * MIB
    same_content(view, "raw", child, "qcow2")  # the zeros written over the parent's data stay zeros
    assert img_info(child, "qcow2")["backing-filename"] == "parent.qcow2"
    assert parent.read_bytes() == parent_bytes
    check(child, "qcow2")


def test_compact_refuses_a_fixed_disk(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "fixed.qcow2", "qcow2", DiskType.FIXED)
    with pytest.raises(ValidationError, match="no unused blocks"):
        vhd.compact(str(disk))


# --- expand and shrink ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "kind"), KINDS, ids=[f"{f}-{k.value}" for f, k in KINDS])
def test_expand_keeps_the_content_and_the_new_area_reads_zeros(
    fmt: str, kind: DiskType, tmp_path: Path
) -> None:
    disk = make_disk(tmp_path / f"disk.{fmt}", fmt, kind)
    ident = ensure_identifier(str(disk), fmt)
    view = flat_copy(disk, fmt, tmp_path / "view.raw")

    result = vhd.resize(str(disk), SIZE + 16 * MIB)

    assert result.size == SIZE + 16 * MIB == img_info(disk, fmt)["virtual-size"]
    same_content(view, "raw", disk, fmt)
    qemu_io(disk, fmt, f"read -P 0 {SIZE} {16 * MIB}")
    assert_type(disk, fmt, kind)
    assert identifier(str(disk), fmt) == ident
    check(disk, fmt)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("fmt", "kind"), KINDS, ids=[f"{f}-{k.value}" for f, k in KINDS])
def test_shrink_down_to_the_data_and_not_below(fmt: str, kind: DiskType, tmp_path: Path) -> None:
    disk = make_disk(tmp_path / f"disk.{fmt}", fmt, kind)  # data ends at 11 MiB
    view = flat_copy(disk, fmt, tmp_path / "view.raw")
    minimum = vhd.inspect(str(disk), with_minimum_size=True).minimum_size
    assert minimum == 11 * MIB

    with pytest.raises(ValidationError, match="minimum size, 11 MB"):
        vhd.resize(str(disk), 8 * MIB)
    assert img_info(disk, fmt)["virtual-size"] == SIZE

    result = vhd.resize(str(disk), 12 * MIB)
    assert result.size == 12 * MIB == img_info(disk, fmt)["virtual-size"]
    same_content(disk, fmt, view, "raw")  # the cut-off part of the view was zeros
    assert vhd.inspect(str(disk)).type is kind
    check(disk, fmt)
    assert leftovers(tmp_path) == []


def test_a_differencing_disk_over_qcow2_expands(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "p.qcow2", "qcow2", DiskType.DYNAMIC)
    child = make_child(parent, "qcow2", tmp_path / "c.qcow2")
    view = flat_copy(child, "qcow2", tmp_path / "view.raw")
    vhd.resize(str(child), SIZE + 8 * MIB)
    assert (
        img_info(child, "qcow2")["virtual-size"] == SIZE + 8 * MIB
        and img_info(parent, "qcow2")["virtual-size"] == SIZE
    )
    same_content(view, "raw", child, "qcow2")
    with pytest.raises(ValidationError, match="has its parent's size"):
        vhd.resize(str(child), 16 * MIB)


# --- merge ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("parent_fmt", FORMATS)
def test_merge_into_parent(parent_fmt: str, tmp_path: Path) -> None:
    parent = make_disk(tmp_path / f"parent.{parent_fmt}", parent_fmt, DiskType.DYNAMIC)
    child = make_child(parent, parent_fmt, tmp_path / "child.qcow2")
    view = flat_copy(child, "qcow2", tmp_path / "view.raw")
    seen: list[float] = []

    result = vhd.merge_into_parent(str(child), seen.append)

    assert result.path == str(parent) and not child.exists()
    same_content(view, "raw", parent, parent_fmt)
    qemu_io(parent, parent_fmt, f"read -P 0x33 {2 * MIB} {1 * MIB}", f"read -P 0x44 {20 * MIB} {1 * MIB}")
    check(parent, parent_fmt)
    assert seen and seen[-1] == 100.0


def test_merge_of_an_expanded_child_grows_a_qcow2_parent(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "parent.qcow2", "qcow2", DiskType.DYNAMIC)
    child = make_child(parent, "qcow2", tmp_path / "child.qcow2")
    vhd.resize(str(child), SIZE + 8 * MIB)
    qemu_io(child, "qcow2", f"write -P 0x5e {SIZE + 4 * MIB} {1 * MIB}")
    view = flat_copy(child, "qcow2", tmp_path / "view.raw")
    vhd.merge_into_parent(str(child))
    assert img_info(parent, "qcow2")["virtual-size"] == SIZE + 8 * MIB
    same_content(view, "raw", parent, "qcow2")


def test_merge_refuses_a_parent_other_disks_read_through(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "parent.qcow2", "qcow2", DiskType.DYNAMIC)
    child = make_child(parent, "qcow2", tmp_path / "child.qcow2")
    make_child(parent, "qcow2", tmp_path / "sibling.qcow2")
    parent_bytes = parent.read_bytes()
    with pytest.raises(ValidationError, match=r"also the parent of 'sibling\.qcow2'"):
        vhd.merge_into_parent(str(child))
    assert child.exists() and parent.read_bytes() == parent_bytes


def test_merge_refuses_a_disk_other_disks_read_through(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "parent.qcow2", "qcow2", DiskType.DYNAMIC)
    child = make_child(parent, "qcow2", tmp_path / "child.qcow2")
    make_child(child, "qcow2", tmp_path / "grandchild.qcow2")
    with pytest.raises(ValidationError, match=r"is the parent of 'grandchild\.qcow2'"):
        vhd.merge_into_parent(str(child))
    assert child.exists()


def test_merge_refuses_a_non_differencing_disk(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "d.qcow2", "qcow2", DiskType.DYNAMIC)
    with pytest.raises(ValidationError, match="Only a differencing disk"):
        vhd.merge_into_parent(str(disk))
    with pytest.raises(ValidationError, match="Only a differencing disk"):
        vhd.merge_to_new(str(disk), str(tmp_path / "new.qcow2"), "qcow2", DiskType.DYNAMIC)


@pytest.mark.parametrize(("fmt", "kind"), [("vpc", DiskType.FIXED), ("qcow2", DiskType.DYNAMIC)])
def test_merge_to_a_new_disk_leaves_child_and_parent_untouched(
    fmt: str, kind: DiskType, tmp_path: Path
) -> None:
    parent = make_disk(tmp_path / "parent.vhdx", "vhdx", DiskType.DYNAMIC)
    child = make_child(parent, "vhdx", tmp_path / "child.qcow2")
    before = {path: path.read_bytes() for path in (parent, child)}

    result = vhd.merge_to_new(str(child), str(tmp_path / f"merged.{fmt}"), fmt, kind)

    merged = Path(result.path)
    assert result.type is kind and result.parent_path is None
    same_content(child, "qcow2", merged, fmt)
    assert {path: path.read_bytes() for path in (parent, child)} == before
    assert_type(merged, fmt, kind)


# --- reconnect ------------------------------------------------------------------------------------


@pytest.fixture
def orphan(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A differencing disk whose parent was moved to another folder: (child, moved parent, view)."""
    parent = make_disk(tmp_path / "parent.vhd", "vpc", DiskType.DYNAMIC)
    child = make_child(parent, "vpc", tmp_path / "child.qcow2")
    view = flat_copy(child, "qcow2", tmp_path / "view.raw")
    (tmp_path / "elsewhere").mkdir()
    moved = tmp_path / "elsewhere" / "parent.vhd"
    parent.rename(moved)
    return child, moved, view


def test_reconnect_to_the_moved_parent(orphan: tuple[Path, Path, Path]) -> None:
    child, moved, view = orphan
    assert not vhd.inspect(str(child)).parents[0].present
    result = vhd.reconnect(str(child), str(moved))
    assert result.parents[0].path == str(moved) and result.parents[0].present
    assert img_info(child, "qcow2")["backing-filename"] == str(moved)
    assert img_info(child, "qcow2")["backing-filename-format"] == "vpc"
    same_content(view, "raw", child, "qcow2")
    check(child, "qcow2")


def test_reconnect_refuses_a_parent_of_another_size(orphan: tuple[Path, Path, Path], tmp_path: Path) -> None:
    child, _moved, _view = orphan
    other = make_disk(tmp_path / "other.vhd", "vpc", DiskType.DYNAMIC, size=SIZE + 16 * MIB)
    with pytest.raises(ValidationError, match=f"virtual size of {SIZE + 16 * MIB} bytes.*had {SIZE} bytes"):
        vhd.reconnect(str(child), str(other), ignore_id_mismatch=True)
    assert not vhd.inspect(str(child)).parents[0].present


def test_reconnect_refuses_another_identity_unless_told_to_ignore_it(
    orphan: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    child, moved, view = orphan
    recorded_id = identifier(str(moved), "vpc")
    impostor = tmp_path / "impostor.qcow2"  # same size and content, another identifier
    run("qemu-img", "convert", "-f", "vpc", "-O", "qcow2", str(moved), str(impostor))
    impostor_id = ensure_identifier(str(impostor), "qcow2")
    with pytest.raises(ValidationError, match=f"identifier {impostor_id}.*{recorded_id}"):
        vhd.reconnect(str(child), str(impostor))
    assert not vhd.inspect(str(child)).parents[0].present

    vhd.reconnect(str(child), str(impostor), ignore_id_mismatch=True)
    assert img_info(child, "qcow2")["backing-filename"] == str(impostor)
    assert recorded_parent(str(child)) == (impostor_id, SIZE)
    same_content(view, "raw", child, "qcow2")


def test_reconnect_without_a_record_checks_the_size_of_the_disk(tmp_path: Path) -> None:
    parent = make_disk(tmp_path / "parent.qcow2", "qcow2", DiskType.DYNAMIC)
    child = make_child(parent, "qcow2", tmp_path / "child.qcow2", record=False)
    shutil.move(parent, tmp_path / "moved.qcow2")
    with pytest.raises(ValidationError, match="virtual size"):
        vhd.reconnect(
            str(child), str(make_disk(tmp_path / "small.qcow2", "qcow2", DiskType.DYNAMIC, 16 * MIB))
        )
    vhd.reconnect(str(child), str(tmp_path / "moved.qcow2"))
    assert vhd.inspect(str(child)).parents[0].present


@pytest.mark.parametrize(
    ("target", "message"),
    [("missing.qcow2", "does not exist"), ("", "Choose the parent"), ("child.qcow2", "its own parent")],
)
def test_reconnect_refuses_a_bad_parent_path(
    orphan: tuple[Path, Path, Path], target: str, message: str
) -> None:
    child, _moved, _view = orphan
    with pytest.raises(ValidationError, match=message):
        vhd.reconnect(str(child), str(child.parent / target) if target else "")


def test_a_filled_then_zeroed_dynamic_qcow2_can_be_compacted(tmp_path: Path) -> None:
    """A dynamic disk the guest filled takes its whole size on the host, like a fixed one: it must
    still inspect as dynamic, so that Compact is offered when it is most useful."""
    disk = make_disk(tmp_path / "full.qcow2", "qcow2", DiskType.DYNAMIC, data=False)
    qemu_io(disk, "qcow2", f"write -P 0x11 0 {SIZE}", f"write -z 0 {SIZE - MIB}")
    assert vhd.inspect(str(disk)).type is DiskType.DYNAMIC
    before, after = vhd.compact(str(disk))
    assert after < before
    assert "verification failed" not in qemu_io(disk, "qcow2", f"read -P 0x11 {SIZE - MIB} {MIB}")
    assert "verification failed" not in qemu_io(disk, "qcow2", f"read -P 0 0 {SIZE - MIB}")
