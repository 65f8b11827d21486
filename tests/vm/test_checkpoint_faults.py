"""Bad input and faults around checkpoints: each is refused or rolled back with a clear error and
leaves nothing behind; a merge interrupted by a crash is completed by the next operation.

Observers: ``virsh domblklist``/``dumpxml``, ``qemu-img``/``qemu-io``, and the folders' contents.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend import (
    checkpoint_journal,
    checkpoint_take,
    checkpoints,
    creation,
    memory_staging,
    operations,
)
from hvmanager.backend.checkpoint_tree import tree_from_domain_xml
from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.models import KernelBoot, MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.paths import vm_folders
from tests.conftest import vm_name
from tests.vm.helpers import virsh, wait_serial


def _make_vm(server: Server, location: Path, label: str, install: KernelBoot | None = None) -> Any:
    spec = VmSpec(
        name=vm_name(label),
        location=str(location),
        memory=MemoryConfig(256),
        disk=NewDisk(1),
        install=install,
    )
    uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    return server.conn.lookupByUUIDString(uuid)


def _disk_files(dom: Any) -> list[str]:
    return [
        line.split(None, 1)[1].strip()
        for line in virsh("domblklist", dom.name()).splitlines()[2:]
        if line.strip()
    ]


def _tree(dom: Any) -> Any:
    return tree_from_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def _qemu_io(file: str, command: str, *extra: str) -> None:
    subprocess.run(["qemu-io", "-f", "qcow2", *extra, "-c", command, file], check=True, capture_output=True)


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_names_empty_or_too_long_are_refused(server: Server, vm_location: Path) -> None:
    dom = _make_vm(server, vm_location, "ckpt-names")
    before = _listing(vm_location)
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(ValidationError):
            checkpoints.take(server.conn, dom, bad)
    assert _listing(vm_location) == before
    taken = checkpoints.take(server.conn, dom, "x" * 100).checkpoint
    with pytest.raises(ValidationError, match="limit is 100"):
        checkpoints.rename(dom, taken.id, "y" * 101)
    assert _tree(dom).get(taken.id).name == "x" * 100


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    backing = tmp_path / "passthrough.img"
    backing.write_bytes(b"\0" * (8 << 20))
    device = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], check=True, capture_output=True, text=True
    ).stdout.strip()
    yield device
    subprocess.run(["losetup", "-d", device], check=False)


def test_pass_through_disk_is_refused_with_the_reason(
    server: Server, vm_location: Path, loop_device: str
) -> None:
    dom = _make_vm(server, vm_location, "ckpt-passthrough")
    disk = (
        "<disk type='block' device='disk'><driver name='qemu' type='raw'/>"
        f"<source dev='{loop_device}'/><target dev='hdb' bus='ide'/></disk>"
    )
    dom.attachDeviceFlags(disk, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    before = _listing(vm_location)
    with pytest.raises(InvalidStateError, match=f"physical disk {loop_device} passed through"):
        checkpoints.take(server.conn, dom, "not possible")
    assert _listing(vm_location) == before
    assert not _tree(dom).checkpoints


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB file system: too small for the memory of a 256 MiB VM."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "hvtest-small", str(mount_point)], check=True)
    os.chmod(mount_point, 0o755)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_file_system_during_checkpoint_leaves_vm_on_its_image(
    server: Server, vm_location: Path, test_guest: Any, small_tmpfs: Path
) -> None:
    install = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
    dom = _make_vm(server, vm_location, "ckpt-fullfs", install)
    checkpoints.set_policy(server.conn, dom, CheckpointPolicy(location=str(small_tmpfs)))
    folders = vm_folders(vm_location, dom.name())
    dom.create()
    wait_serial(folders.serial_log, "HVTEST: ready")
    disks_before = _disk_files(dom)
    files_before = _listing(folders.disks)

    with pytest.raises(HvError, match=r"not enough space .* for the VM.s memory"):
        checkpoints.take(server.conn, dom, "does not fit")

    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert _disk_files(dom) == disks_before, "still running on its old image"
    assert _listing(folders.disks) == files_before, "no overlay left behind"
    assert _listing(small_tmpfs) == [], "no memory image or journal left behind"
    assert not _tree(dom).checkpoints
    ticks_offset = len(folders.serial_log.read_text())
    wait_serial(folders.serial_log, "HVTEST: tick", after=ticks_offset)  # the guest still runs
    dom.destroy()


def test_full_disk_folder_refuses_overlay_and_leaves_nothing(
    server: Server, vm_location: Path, small_tmpfs: Path
) -> None:
    base = small_tmpfs / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    dom = _make_vm(server, vm_location, "ckpt-fulldisk")
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE).replace(_disk_files(dom)[0], str(base))
    server.conn.defineXML(xml)
    fd = os.open(small_tmpfs / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\1" * 4096):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    before = _listing(small_tmpfs)
    with pytest.raises(HvError, match="qemu-img create failed"):
        checkpoints.take(server.conn, dom, "no room")
    assert _listing(small_tmpfs) == before
    assert _disk_files(dom) == [str(base)]
    assert not _tree(dom).checkpoints


def _vm_with_big_overlay(server: Server, location: Path, label: str, mib: int) -> tuple[Any, str]:
    dom = _make_vm(server, location, label)
    checkpoints.take(server.conn, dom, "old")
    overlay = _disk_files(dom)[0]
    _qemu_io(overlay, f"write -P 0x5a 0 {mib}M")
    return dom, overlay


def test_delete_while_chain_merges_is_queued_or_refused(server: Server, vm_location: Path) -> None:
    dom, _overlay = _vm_with_big_overlay(server, vm_location, "ckpt-busy", 384)
    second = checkpoints.take(server.conn, dom, "second").checkpoint
    first = next(c for c in _tree(dom).visible() if c.name == "old")
    errors: list[BaseException] = []

    def merge_first() -> None:
        try:
            checkpoints.delete(server.conn, dom, first.id)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=merge_first)
    worker.start()
    deadline = time.monotonic() + 30
    while not checkpoint_journal.is_locked(dom.UUIDString()) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert checkpoint_journal.is_locked(dom.UUIDString())
    with pytest.raises(checkpoint_journal.ChainBusyError, match="already running"):
        checkpoints.delete(server.conn, dom, second.id, wait=False)
    with pytest.raises(InvalidStateError, match="can't start while its checkpoints are being merged"):
        operations.start(server.conn, dom)
    checkpoints.delete(server.conn, dom, second.id)  # queued behind the merge, then done
    worker.join()
    assert not errors
    assert not _tree(dom).checkpoints
    active = _disk_files(dom)[0]
    _qemu_io(active, "read -P 0x5a 0 384M", "-r")


_CRASHING_DELETE = """
import sys, libvirt
from hvmanager.backend import checkpoints
conn = libvirt.open("qemu:///system")
dom = conn.lookupByUUIDString(sys.argv[1])
checkpoints.delete(conn, dom, sys.argv[2])
"""


def test_merge_interrupted_by_a_crash_is_completed_next_time(server: Server, vm_location: Path) -> None:
    dom, overlay = _vm_with_big_overlay(server, vm_location, "ckpt-crash", 768)
    taken = next(iter(_tree(dom).visible()))
    base = _tree(dom).get(taken.id).images["hda"].file
    folders = vm_folders(vm_location, dom.name())
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_DELETE, dom.UUIDString(), taken.id],
        cwd=Path(__file__).parents[2],
        start_new_session=True,
    )
    journal_file = folders.snapshots / checkpoint_journal.JOURNAL_FILE
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _merge_running(journal_file):
        time.sleep(0.01)
    assert _merge_running(journal_file), "the merge started"
    os.killpg(child.pid, signal.SIGKILL)  # the app and its qemu-img die mid-merge
    child.wait()
    assert Path(overlay).exists()

    outcome = checkpoints.recover_vm(server.conn, dom)

    assert outcome is not None and "merge" in outcome
    assert not journal_file.exists()
    assert _disk_files(dom) == [base], "the merge the user asked for is done"
    assert not Path(overlay).exists()
    assert not _tree(dom).checkpoints
    _qemu_io(base, "read -P 0x5a 0 768M", "-r")
    check = subprocess.run(["qemu-img", "check", "-f", "qcow2", base], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


def _merge_running(journal_file: Path) -> bool:
    try:
        return '"op": "merge"' in journal_file.read_text()
    except FileNotFoundError:
        return False


def test_memory_image_that_cannot_be_placed_leaves_a_disk_only_checkpoint(
    server: Server, vm_location: Path, test_guest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The VM already runs on its new overlays when the staged memory image is moved into the
    checkpoint folder: if that fails (the folder filled up meanwhile), the checkpoint stays,
    consistently, as a disk-only one, and the reason is given."""
    install = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
    dom = _make_vm(server, vm_location, "ckpt-nomove", install)
    folders = vm_folders(vm_location, dom.name())
    dom.create()
    wait_serial(folders.serial_log, "HVTEST: ready")

    def full(_staged: str, _final: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_take, "move_into_place", full)
    monkeypatch.setattr(memory_staging, "staging_enabled", lambda: True)
    result = checkpoints.take(server.conn, dom, "disk only after all")

    assert "No space left on device" in result.fallback_reason
    stored = _tree(dom).get(result.checkpoint.id)
    assert not stored.memory
    assert not (folders.snapshots / result.checkpoint.id / "memory.save").exists()
    assert not list(Path("/dev/shm").glob(f"hvmanager-{dom.UUIDString()}-*")), "no staged image left"
    assert not (folders.snapshots / checkpoint_journal.JOURNAL_FILE).exists()
    checkpoints.apply(server.conn, dom, result.checkpoint.id)
    assert dom.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF, "a disk-only checkpoint leaves the VM off"


_CRASHING_TAKE = """
import os, sys, libvirt
from hvmanager.backend import checkpoint_take, checkpoints, memory_staging
memory_staging.staging_enabled = lambda: True
def crash(_staged, _final):
    os._exit(3)  # the app dies after the switch, before the memory image is in its folder
checkpoint_take.move_into_place = crash
conn = libvirt.open("qemu:///system")
checkpoints.take(conn, conn.lookupByUUIDString(sys.argv[1]), "interrupted")
"""


@pytest.mark.parametrize("reboot", [False, True], ids=["app-crash", "app-crash-and-host-reboot"])
def test_take_interrupted_after_the_switch_is_completed(
    server: Server, vm_location: Path, test_guest: Any, reboot: bool
) -> None:
    """The VM already runs on its new overlays when the app dies: the next use completes the
    checkpoint, with its memory when the staged image survived, disk-only when a host reboot
    emptied /dev/shm."""
    install = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
    dom = _make_vm(server, vm_location, f"ckpt-crash-take-{int(reboot)}", install)
    folders = vm_folders(vm_location, dom.name())
    dom.create()
    wait_serial(folders.serial_log, "HVTEST: ready")
    base = _disk_files(dom)[0]
    child = subprocess.run(
        [sys.executable, "-c", _CRASHING_TAKE, dom.UUIDString()],
        cwd=Path(__file__).parents[2],
        check=False,
    )
    assert child.returncode == 3
    overlay = _disk_files(dom)[0]
    assert overlay != base, "the switch happened before the crash"
    staged = list(Path("/dev/shm").glob(f"hvmanager-{dom.UUIDString()}-*"))
    assert len(staged) == 1
    if reboot:
        staged[0].unlink()

    assert checkpoints.recover_vm(server.conn, dom) is not None

    (taken,) = _tree(dom).visible()
    assert taken.name == "interrupted"
    assert _tree(dom).now_images["hda"].file == overlay
    memory = folders.snapshots / taken.id / "memory.save"
    assert taken.memory is (not reboot)
    assert memory.exists() is (not reboot)
    assert not list(Path("/dev/shm").glob(f"hvmanager-{dom.UUIDString()}-*"))
    assert not (folders.snapshots / checkpoint_journal.JOURNAL_FILE).exists()
    checkpoints.apply(server.conn, dom, taken.id)
    expected = libvirt.VIR_DOMAIN_SHUTOFF if reboot else libvirt.VIR_DOMAIN_RUNNING
    assert dom.state()[0] == expected
    if dom.isActive():
        dom.destroy()
