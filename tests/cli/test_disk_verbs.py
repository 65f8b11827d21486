"""The ``hvctl`` verbs for virtual hard disk files: new-vhd, get-vhd, test-vhd, resize-vhd,
convert-vhd, optimize-vhd, merge-vhd and set-vhd.

Every verb runs on real files (a few MiB) against the real ``qemu:///system`` daemon; the effects are
checked with independent observers: ``qemu-img info/compare/check``, ``qemu-io`` reads, the VHD
footer read from the file, the folder's listing and ``virsh``. The online expand runs on one booted
test guest with a virtio-scsi disk (``virsh domblkinfo`` sees the new size).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend.connection import Server
from hvmanager.cli.hvctl import main
from tests.cli.test_checkpoint_verbs import _run_with_terminal_stderr
from tests.conftest import SYSTEM_URI, fresh_folder, vm_name
from tests.vm.helpers import virsh, wait_serial
from tests.vm.test_hvctl import hvctl, new_vm

MIB = 1024 * 1024
FORMAT_OF_EXTENSION = {".vhdx": "vhdx", ".vhd": "vpc", ".qcow2": "qcow2", ".img": "raw"}


# --- helpers: hvctl in this process, and the observers ------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``hvctl --connect qemu:///system ARGS`` in this process: (exit status, stdout, stderr)."""
    code = main(["--connect", SYSTEM_URI, *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, captured.out, captured.err


def ok_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def img_info(path: Path, fmt: str | None = None) -> dict[str, Any]:
    fmt = fmt or FORMAT_OF_EXTENSION[path.suffix]
    done = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", "-f", fmt, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)


def write(path: Path, pattern: int, offset: int, length: int, fmt: str | None = None) -> None:
    fmt = fmt or FORMAT_OF_EXTENSION[path.suffix]
    command = f"write -P {pattern:#x} {offset} {length}"
    subprocess.run(["qemu-io", "-f", fmt, "-c", command, str(path)], check=True, capture_output=True)


def has(path: Path, pattern: int, offset: int, length: int, fmt: str | None = None) -> bool:
    fmt = fmt or FORMAT_OF_EXTENSION[path.suffix]
    command = f"read -P {pattern:#x} {offset} {length}"
    done = subprocess.run(["qemu-io", "-f", fmt, "-c", command, str(path)], capture_output=True, text=True)
    return done.returncode == 0 and "Pattern verification failed" not in done.stdout


def identical(a: Path, b: Path) -> bool:
    """``qemu-img compare`` (a size difference is fine when the extra part reads as zeros)."""
    fa, fb = FORMAT_OF_EXTENSION[a.suffix], FORMAT_OF_EXTENSION[b.suffix]
    done = qemu_img("compare", "-U", "-f", fa, "-F", fb, str(a), str(b))
    return done.returncode == 0


def vhd_footer_type(path: Path) -> int:
    """The Disk Type field of a VHD footer (2 fixed, 3 dynamic, 4 differencing), read from the file."""
    with open(path, "rb") as handle:
        handle.seek(-512, os.SEEK_END)
        footer = handle.read(512)
    assert footer[:8] == b"conectix"
    return int(struct.unpack(">I", footer[60:64])[0])


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` (hidden temporaries too) with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def new_qcow2(path: Path, size: int = 16 * MIB, backing: Path | None = None) -> Path:
    args = ["create", "-q", "-f", "qcow2"]
    if backing is not None:
        args += ["-b", str(backing), "-F", FORMAT_OF_EXTENSION[backing.suffix]]
    done = qemu_img(*args, str(path), *([] if backing else [str(size)]))
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture
def folder(test_root: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh folder for one test's disk files."""
    with fresh_folder(test_root, request, "disks-") as path:
        yield path


pytestmark = pytest.mark.usefixtures("libvirtd")


# --- usage errors (exit status 2) and bad input (exit status 1): nothing is created -------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-vhd", "{f}/a.vhdx"], "one of the arguments --size-gb --size-bytes"),
        (["new-vhd", "{f}/a.vhdx", "--size-gb", "1", "--parent-path", "{f}/p.qcow2"], "not allowed with"),
        (["new-vhd", "{f}/a.vhdx", "--size-gb", "1", "--differencing"], "--differencing needs --parent-path"),
        (["new-vhd", "{f}/a.qcow2", "--parent-path", "{f}/base.qcow2", "--fixed"], "leave out --fixed"),
        (["new-vhd", "{f}/a.disk", "--size-gb", "1"], "can't tell the format of 'a.disk'"),
        (["new-vhd", "{f}/a.vhdx", "--size-gb", "1", "--logical-sector-size", "1024"], "invalid choice"),
        (["resize-vhd", "{f}/base.qcow2"], "one of the arguments --size-gb"),
        (["merge-vhd", "{f}/base.qcow2", "--vhd-type", "fixed"], "need --destination-path"),
        (["convert-vhd", "{f}/base.qcow2", "{f}/new.vhdx", "--vhd-type", "differencing"], "invalid choice"),
        (["set-vhd", "{f}/base.qcow2"], "--parent-path"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], folder: Path, args: list[str], message: str
) -> None:
    new_qcow2(folder / "base.qcow2")
    before = listing(folder)
    code, out, err = run(capsys, *(a.format(f=folder) for a in args))
    assert code == 2 and out == ""
    assert message in err and "usage: hvctl " in err
    assert listing(folder) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["new-vhd", "{f}/a.qcow2", "--size-gb", "abc"],
            "The size 'abc' given with --size-gb is not a number.",
        ),
        (["new-vhd", "{f}/a.qcow2", "--size-bytes", "12.5"], "is not a whole number of bytes"),
        (["new-vhd", "{f}/a.vhd", "--size-gb", "2041"], "A VHD disk can be at most 2040 GB."),
        (["new-vhd", "{f}/a.vhdx", "--size-gb", "65537"], "A VHDX disk can be at most 64 TB."),
        (["new-vhd", "{f}/a.qcow2", "--size-bytes", "1048576"], "A virtual hard disk must be at least 3 MB."),
        (["new-vhd", "{f}/a.qcow2", "--size-bytes", "4194305"], "whole number of megabytes"),
        (["new-vhd", "{f}/base.qcow2", "--size-gb", "1"], "already exists"),
        (["new-vhd", "{f}/child.qcow2", "--parent-path", "{f}/gone.vhdx"], "does not exist"),
        (["new-vhd", "{f}/copy.qcow2", "--source-disk", "{f}/gone.vhdx"], "does not exist"),
        (["resize-vhd", "{f}/base.qcow2", "--size-gb", "1e"], "is not a number"),
        (["resize-vhd", "{f}/base.qcow2", "--size-gb", "1e999999999"], "is far too large"),
        (["resize-vhd", "{f}/base.qcow2", "--size-gb", "100000"], "A QCOW2 disk can be at most 64 TB."),
        (["resize-vhd", "{f}/base.qcow2", "--size-bytes", "1048576"], "at least 3 MB"),
        (["convert-vhd", "{f}/base.qcow2", "{f}/other.vhdx"], "already exists"),
        (["convert-vhd", "{f}/gone.qcow2", "{f}/new.vhdx"], "does not exist"),
        (["merge-vhd", "{f}/base.qcow2"], ""),  # not a differencing disk: the back end says why
        (["get-vhd", "{f}/gone.vhdx"], "does not exist"),
    ],
)
def test_bad_input_exits_1_with_a_message_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], folder: Path, args: list[str], message: str
) -> None:
    new_qcow2(folder / "base.qcow2")
    assert qemu_img("create", "-q", "-f", "vhdx", str(folder / "other.vhdx"), "8M").returncode == 0
    before = listing(folder)
    code, out, err = run(capsys, *(a.format(f=folder) for a in args))
    assert code == 1 and out == ""
    assert err.startswith("hvctl: error: ") and message in err
    assert listing(folder) == before  # no new file, no temporary, nothing changed


# --- new-vhd ------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".vhdx", ".vhd", ".qcow2", ".img"])
@pytest.mark.parametrize("kind", ["--fixed", "--dynamic"])
def test_new_vhd_every_format_and_type(
    capsys: pytest.CaptureFixture[str], folder: Path, extension: str, kind: str
) -> None:
    path = folder / f"disk{extension}"
    record = ok_json(capsys, "new-vhd", str(path), "--size-bytes", str(8 * MIB), kind)
    fmt = FORMAT_OF_EXTENSION[extension]
    info = img_info(path)
    assert info["format"] == fmt and info["virtual-size"] == 8 * MIB
    assert record["path"] == str(path) and record["format"] == fmt and record["size"] == 8 * MIB
    assert record["vhd_type"] == ("Fixed" if kind == "--fixed" else "Dynamic")
    assert record["attached"] is False and record["parent_path"] is None
    if kind == "--fixed":  # the space is taken on the host
        assert os.stat(path).st_blocks * 512 >= 8 * MIB
    else:
        assert os.stat(path).st_blocks * 512 < 8 * MIB
    if fmt == "vpc":
        assert vhd_footer_type(path) == (2 if kind == "--fixed" else 3)
    assert qemu_img("check", "-f", fmt, str(path)).returncode in (0, 63)  # 63: no check for the format
    assert [p.name for p in folder.iterdir()] == [path.name]


def test_new_vhd_text_output_and_vhdx_options(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    path = folder / "opts.vhdx"
    code, out, err = run(
        capsys,
        "new-vhd",
        str(path),
        "--size-gb",
        "0.5",
        "--block-size-mb",
        "1",
        "--physical-sector-size",
        "512",
    )
    assert code == 0, err
    fields = dict(
        line.split(" : ", 1) if " : " in line else (line.rstrip(" :"), "") for line in out.splitlines()
    )
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["Path"] == str(path) and fields["VhdFormat"] == "VHDX" and fields["VhdType"] == "Dynamic"
    assert fields["Size"] == str(512 * MIB) and fields["BlockSize"] == str(MIB)
    assert fields["LogicalSectorSize"] == "512" and fields["PhysicalSectorSize"] == "512"
    assert fields["Attached"] == "False" and re.fullmatch(r"[0-9A-Fa-f-]{36}", fields["DiskIdentifier"])
    assert img_info(path)["virtual-size"] == 512 * MIB
    assert qemu_img("check", "-f", "vhdx", str(path)).returncode == 0


def test_new_vhd_differencing_and_copied_contents(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    base = folder / "base.vhdx"
    assert qemu_img("create", "-q", "-f", "vhdx", str(base), "16M").returncode == 0
    write(base, 0x5A, MIB, MIB)

    child = folder / "child.qcow2"
    record = ok_json(capsys, "new-vhd", str(child), "--parent-path", str(base))
    assert record["vhd_type"] == "Differencing" and record["parent_path"] == str(base)
    assert record["parents"] == [{"path": str(base), "format": "vhdx", "present": True}]
    info = img_info(child)
    assert info["backing-filename"] == str(base) and info["backing-filename-format"] == "vhdx"
    assert info["virtual-size"] == 16 * MIB and has(child, 0x5A, MIB, MIB)

    copy = folder / "copy.vhd"
    record = ok_json(capsys, "new-vhd", str(copy), "--source-disk", str(base), "--fixed")
    assert record["vhd_type"] == "Fixed" and vhd_footer_type(copy) == 2
    assert identical(base, copy)

    # A host block device as the source: a loop device over a file with data.
    backing = folder / "device.raw"
    with open(backing, "wb") as handle:
        handle.truncate(8 * MIB)
    write(backing, 0x3C, 2 * MIB, MIB, fmt="raw")
    loop = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True
    )
    device = loop.stdout.strip()
    try:
        from_device = folder / "fromdev.qcow2"
        record = ok_json(capsys, "new-vhd", str(from_device), "--source-disk", device)
        assert record["size"] == 8 * MIB and has(from_device, 0x3C, 2 * MIB, MIB)
        assert qemu_img("compare", "-f", "raw", "-F", "qcow2", str(backing), str(from_device)).returncode == 0
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_progress_is_shown_on_a_terminal_only(folder: Path) -> None:
    source = new_qcow2(folder / "source.qcow2")
    write(source, 0x11, 0, 4 * MIB)
    code, out, terminal = _run_with_terminal_stderr("convert-vhd", str(source), str(folder / "dest.vhdx"))
    assert code == 0, terminal
    assert "Converting (100 %)" in terminal and "Path" in out
    done = hvctl("convert-vhd", str(source), str(folder / "dest2.vhdx"))  # stderr is a pipe
    assert done.returncode == 0 and "Converting (" not in done.stderr


# --- get-vhd and test-vhd -----------------------------------------------------------------------


@pytest.mark.usefixtures("clean_domains")
def test_get_vhd_lists_each_file_with_its_users_and_chain(
    capsys: pytest.CaptureFixture[str], folder: Path, vm_location: Path
) -> None:
    used = new_qcow2(vm_location / "used.qcow2")
    base = new_qcow2(folder / "base.qcow2")
    child = new_qcow2(folder / "child.qcow2", backing=base)
    name = vm_name("getvhd")
    new_vm(name, vm_location, "--vhd-path", str(used))
    target = virsh("domblklist", name).split()[-2]  # the last row: "<target> <source>"

    code, out, err = run(capsys, "get-vhd", str(used), str(folder / "gone.qcow2"), str(child), "--json")
    assert code == 1 and "'" + str(folder / "gone.qcow2") + "' does not exist" in err
    records = json.loads(out)
    assert [r["path"] for r in records] == [str(used), str(child)]
    assert records[0]["attached"] is True
    assert records[0]["attached_to"] == [
        {"vm_name": name, "uuid": records[0]["attached_to"][0]["uuid"], "running": False, "target": target}
    ]
    assert records[0]["vhd_format"] == "QCOW2" and records[0]["size"] == 16 * MIB
    assert records[1]["attached"] is False and records[1]["vhd_type"] == "Differencing"
    assert records[1]["parents"] == [{"path": str(base), "format": "qcow2", "present": True}]
    assert set(records[0]) >= {
        "path", "vhd_format", "vhd_type", "file_size", "size", "minimum_size", "logical_sector_size",
        "physical_sector_size", "block_size", "parent_path", "disk_identifier", "attached",
    }  # fmt: skip
    assert records[0]["file_size"] == os.stat(used).st_blocks * 512

    base.rename(folder / "moved.qcow2")
    code, out, err = run(capsys, "get-vhd", str(child), str(used))
    assert code == 0, err
    assert f"ParentChain        : {base} (missing)" in out
    assert re.search(rf"Attached\s+: True\nAttachedTo\s+: {re.escape(name)} \({target}\)", out), out


def _corrupt_qcow2(path: Path) -> None:
    """Point the first L2 entry at the L1 table's cluster: ``qemu-img check`` reports a corruption."""
    with open(path, "r+b") as handle:
        header = handle.read(48)
        l1_offset = struct.unpack(">Q", header[40:48])[0]
        handle.seek(l1_offset)
        l2_offset = struct.unpack(">Q", handle.read(8))[0] & 0x00FFFFFFFFFFFE00
        handle.seek(l2_offset)
        handle.write(struct.pack(">Q", (1 << 63) | l1_offset))


def test_test_vhd_checks_the_file_and_its_parents(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    base = new_qcow2(folder / "base.qcow2")
    child = new_qcow2(folder / "child.qcow2", backing=base)
    vhd = folder / "plain.vhd"
    assert qemu_img("create", "-q", "-f", "vpc", str(vhd), "8M").returncode == 0
    assert ok_json(capsys, "test-vhd", str(child), str(vhd)) == [
        {"path": str(child), "usable": True, "reason": None},
        {"path": str(vhd), "usable": True, "reason": None},
    ]
    broken = new_qcow2(folder / "broken.qcow2")
    write(broken, 0x22, 0, MIB)
    _corrupt_qcow2(broken)
    assert qemu_img("check", "-f", "qcow2", str(broken)).returncode == 2  # the observer agrees
    base.rename(folder / "elsewhere.qcow2")
    code, out, err = run(capsys, "test-vhd", str(child), str(broken), str(vhd))
    assert code == 1
    assert f"'{child}' is not usable: its parent '{base}' is missing" in err
    assert f"'{broken}' is not usable: qemu-img check found 1 corruption" in err
    rows = [line.split(None, 2) for line in out.splitlines()[2:]]
    assert [row[:2] for row in rows] == [[str(child), "False"], [str(broken), "False"], [str(vhd), "True"]]


# --- resize, convert, optimize, merge, set-vhd (offline) ----------------------------------------


@pytest.mark.parametrize("extension", [".qcow2", ".vhd"])
def test_resize_vhd_expands_and_shrinks_offline(
    capsys: pytest.CaptureFixture[str], folder: Path, extension: str
) -> None:
    disk = folder / f"disk{extension}"
    assert qemu_img("create", "-q", "-f", FORMAT_OF_EXTENSION[extension], str(disk), "16M").returncode == 0
    write(disk, 0x77, 2 * MIB, MIB)
    reference = folder / "reference.qcow2"
    assert (
        qemu_img(
            "convert", "-O", "qcow2", "-f", FORMAT_OF_EXTENSION[extension], str(disk), str(reference)
        ).returncode
        == 0
    )

    record = ok_json(capsys, "resize-vhd", str(disk), "--size-gb", "0.03125")  # 32 MiB
    assert record["size"] == 32 * MIB and img_info(disk)["virtual-size"] == 32 * MIB
    assert identical(reference, disk)

    record = ok_json(capsys, "resize-vhd", str(disk), "--to-minimum-size")
    size = img_info(disk)["virtual-size"]
    assert record["size"] == size and 3 * MIB <= size < 32 * MIB
    assert has(disk, 0x77, 2 * MIB, MIB) and identical(reference, disk)


def test_convert_vhd_to_other_formats_and_types(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    source = new_qcow2(folder / "source.qcow2")
    write(source, 0x42, 3 * MIB, 2 * MIB)
    record = ok_json(capsys, "convert-vhd", str(source), str(folder / "dynamic.vhdx"))
    assert record["vhd_format"] == "VHDX" and record["vhd_type"] == "Dynamic"  # the source's type
    assert identical(source, folder / "dynamic.vhdx")

    fixed = folder / "fixed.vhd"
    record = ok_json(capsys, "convert-vhd", str(source), str(fixed), "--vhd-type", "Fixed")
    assert record["vhd_type"] == "Fixed" and vhd_footer_type(fixed) == 2
    assert identical(source, fixed) and source.exists()

    raw = folder / "flat.disk"
    record = ok_json(capsys, "convert-vhd", str(fixed), str(raw), "--format", "raw", "--delete-source")
    assert record["format"] == "raw" and not fixed.exists()
    assert qemu_img("compare", "-f", "qcow2", "-F", "raw", str(source), str(raw)).returncode == 0


def test_optimize_vhd_compacts_zeroed_space(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    disk = new_qcow2(folder / "disk.qcow2", 32 * MIB)
    write(disk, 0x61, 0, MIB)
    write(disk, 0x00, 4 * MIB, 8 * MIB)  # zeros written as data: allocated until compacted
    reference = folder / "reference.qcow2"
    shutil.copy(disk, reference)
    before = os.stat(disk).st_blocks * 512
    record = ok_json(capsys, "optimize-vhd", str(disk))
    after = os.stat(disk).st_blocks * 512
    assert record == {"path": str(disk), "file_size_before": before, "file_size_after": after}
    assert after < before - 6 * MIB
    assert identical(reference, disk) and qemu_img("check", "-f", "qcow2", str(disk)).returncode == 0
    code, out, err = run(capsys, "optimize-vhd", str(disk))
    assert code == 0, err
    assert out.startswith(f"Compacted '{disk}': ") and f"({after} -> " in out


def test_merge_vhd_to_a_new_disk_and_into_the_parent(
    capsys: pytest.CaptureFixture[str], folder: Path
) -> None:
    base = new_qcow2(folder / "base.qcow2")
    write(base, 0x10, 0, MIB)
    child = new_qcow2(folder / "child.qcow2", backing=base)
    write(child, 0x20, MIB, MIB)
    reference = folder / "reference.img"
    assert qemu_img("convert", "-f", "qcow2", "-O", "raw", str(child), str(reference)).returncode == 0

    whole = folder / "whole.vhdx"
    record = ok_json(capsys, "merge-vhd", str(child), "--destination-path", str(whole), "--vhd-type", "fixed")
    assert record["path"] == str(whole) and record["vhd_type"] == "Fixed" and record["parent_path"] is None
    assert identical(reference, whole)
    assert child.exists() and img_info(child)["backing-filename"] == str(base)  # left as they were

    record = ok_json(capsys, "merge-vhd", str(child))
    assert record["path"] == str(base) and not child.exists()
    assert identical(reference, base) and has(base, 0x20, MIB, MIB)


def test_set_vhd_reconnects_a_moved_parent(capsys: pytest.CaptureFixture[str], folder: Path) -> None:
    base = new_qcow2(folder / "base.qcow2")
    write(base, 0x31, 0, MIB)
    child = new_qcow2(folder / "child.qcow2", backing=base)
    moved = folder / "moved" / "base.qcow2"
    moved.parent.mkdir()
    base.rename(moved)
    assert run(capsys, "test-vhd", str(child))[0] == 1

    wrong = new_qcow2(folder / "wrong-size.qcow2", 32 * MIB)
    before = listing(folder)
    code, _out, err = run(capsys, "set-vhd", str(child), "--parent-path", str(wrong))
    assert code == 1 and err.startswith("hvctl: error: ")
    assert "size" in err
    assert img_info(child)["backing-filename"] == str(base) and listing(folder) == before

    record = ok_json(capsys, "set-vhd", str(child), "--parent-path", str(moved))
    assert record["parent_path"] == str(moved)
    assert img_info(child)["backing-filename"] == str(moved) and has(child, 0x31, 0, MIB)
    assert run(capsys, "test-vhd", str(child))[0] == 0


# --- a running VM's disks: online expand on SCSI, refusals --------------------------------------

SCSI_CONTROLLER = "<controller type='scsi' index='0' model='virtio-scsi'/>"


@pytest.fixture
def running_guest(vm_location: Path, test_guest: Any, clean_domains: str) -> Iterator[tuple[str, Path, Path]]:
    """A booted test guest with its 1 GiB disk on IDE (hda) and a 16 MiB qcow2 disk on SCSI (sda)."""
    from hvmanager.backend.paths import vm_folders
    from tests.vm.conftest import create_guest_vm

    name = vm_name("disk-verbs")
    server = Server(clean_domains)
    server.open()
    try:
        dom = create_guest_vm(server, vm_location, name, test_guest)
    finally:
        server.close()
    scsi_disk = new_qcow2(vm_location / "scsi.qcow2")
    controller = vm_location / "controller.xml"
    controller.write_text(SCSI_CONTROLLER)
    virsh("attach-device", name, str(controller), "--config")
    virsh(
        "attach-disk", name, str(scsi_disk), "sda", "--targetbus", "scsi",
        "--driver", "qemu", "--subdriver", "qcow2", "--config",
    )  # fmt: skip
    ide_disk = Path(_source_of(name, "hda"))
    virsh("start", name)
    wait_serial(vm_folders(vm_location, name).serial_log, "HVTEST: ready", 120)
    yield name, scsi_disk, ide_disk
    virsh("destroy", name, check=False)
    del dom


def _source_of(name: str, target: str) -> str:
    """The file behind a drive, from ``virsh domblklist`` (paths may hold spaces)."""
    for line in virsh("domblklist", name).splitlines()[2:]:
        device, source = line.strip().split(None, 1)
        if device == target:
            return source.strip()
    raise AssertionError(f"{name} has no drive {target}")


def _capacity(name: str, target: str) -> int:
    for line in virsh("domblkinfo", name, target).splitlines():
        if line.startswith("Capacity:"):
            return int(line.split()[1])
    raise AssertionError(f"no capacity for {target}")


@pytest.mark.vm
def test_disks_of_a_running_vm(
    capsys: pytest.CaptureFixture[str], running_guest: tuple[str, Path, Path]
) -> None:
    name, scsi_disk, ide_disk = running_guest
    assert _capacity(name, "sda") == 16 * MIB

    record = ok_json(capsys, "resize-vhd", str(scsi_disk), "--size-bytes", str(48 * MIB))
    assert _capacity(name, "sda") == 48 * MIB  # the running VM's QEMU sees the new size
    assert record["size"] == 48 * MIB and record["attached_to"][0]["running"] is True
    assert img_info(scsi_disk)["virtual-size"] == 48 * MIB

    ide_size = _capacity(name, "hda")
    copy = scsi_disk.with_name("copy.vhdx")
    for args, reason in (
        (["resize-vhd", str(ide_disk), "--size-gb", "2"], "IDE"),
        (
            ["resize-vhd", str(scsi_disk), "--size-bytes", str(32 * MIB)],
            "can't shrink while the virtual machine runs",
        ),
        (
            ["resize-vhd", str(scsi_disk), "--to-minimum-size"],
            f"the running virtual machine '{name}' uses it",
        ),
        (["optimize-vhd", str(scsi_disk)], f"can't be compacted: the running virtual machine '{name}'"),
        (["merge-vhd", str(scsi_disk)], f"can't be merged: the running virtual machine '{name}'"),
        (["convert-vhd", str(scsi_disk), str(copy), "--delete-source"], "can't be converted: the running"),
    ):
        code, out, err = run(capsys, *args)
        assert code == 1 and out == "", (args, out)
        assert err.startswith("hvctl: error: ") and reason in err, err
    assert _capacity(name, "hda") == ide_size and _capacity(name, "sda") == 48 * MIB
    assert not copy.exists() and scsi_disk.exists()


def test_convert_vhd_delete_source_flushes_the_copy_before_deleting(
    capsys: pytest.CaptureFixture[str], folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain convert names its copy without waiting for the kernel to write it out (the source
    is kept); with --delete-source the copy must be on stable storage before the source goes."""
    source = new_qcow2(folder / "source.qcow2")
    write(source, 0x42, 3 * MIB, 2 * MIB)
    events: list[tuple[str, str]] = []
    real_fsync, real_unlink = os.fsync, os.unlink

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        events.append(("unlink", str(path)))
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "unlink", unlink)
    copy = folder / "copy.qcow2"
    ok_json(capsys, "convert-vhd", str(source), str(copy))
    assert ("fsync", str(copy)) not in events and source.exists()
    events.clear()
    moved = folder / "moved.qcow2"
    ok_json(capsys, "convert-vhd", str(copy), str(moved), "--delete-source")
    assert events.index(("fsync", str(moved))) < events.index(("unlink", str(copy)))
    assert not copy.exists() and identical(source, moved)


def test_new_vhd_refuses_to_copy_a_mounted_physical_disk(
    capsys: pytest.CaptureFixture[str], folder: Path, tmp_path: Path
) -> None:
    """A file system mounted on the host changes under the copy: refused, as the wizard greys it
    out, and nothing is created."""
    backing = tmp_path / "mounted.raw"
    with open(backing, "wb") as handle:
        handle.truncate(16 * MIB)
    device = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    point = tmp_path / "mnt"
    point.mkdir()
    try:
        subprocess.run(["mkfs.ext2", "-q", "-F", device], check=True)
        subprocess.run(["mount", device, str(point)], check=True)
        before = sorted(os.listdir(folder))
        code, out, err = run(capsys, "new-vhd", str(folder / "copy.qcow2"), "--source-disk", device)
        assert code == 1 and out == ""
        assert f"'{device}' can't be copied: it is mounted on the host at {point}." in err
        assert sorted(os.listdir(folder)) == before
    finally:
        subprocess.run(["umount", str(point)], check=False)
        subprocess.run(["losetup", "-d", device], check=False)
