"""Storage changes on a running VM: SCSI hard drives hot-added and hot-removed, an online expand,
a DVD media change, and what Hyper-V refuses while a VM runs (IDE changes, new controllers).

One booted test guest serves the whole module: a Generation 1 VM with its boot disk on IDE 0:0,
an empty DVD drive on IDE 1:0 and a SCSI controller, all set while it was off, booted with
``hvtest.watchdisks`` so that the guest prints ``HVTEST: block sda=<sectors> ...`` whenever its
disks or their sizes change. Observers: that serial line (what the guest sees), ``virsh
domblklist`` / ``dumpxml`` (live and ``--inactive``) and ``qemu-img info``. Each test leaves the
VM as it found it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend import creation, operations, vm_storage, vm_storage_live
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.models import KernelBoot, MemoryConfig, NewDisk, StartAction, VmSpec
from hvmanager.backend.paths import vm_folders
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout
from hvmanager.backend.vmsettings import SettingsChange, apply_settings
from tests.conftest import vm_name
from tests.vm.helpers import FaultyDomain, autostart_fails, qemu_img_info, serial_text, virsh, wait_serial

pytestmark = pytest.mark.vm

MIB = 1024 * 1024
SECTOR = 512
_BLOCK = re.compile(r"^HVTEST: block(?P<disks>( \w+=\d+)*)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class LiveVm:
    server: Server
    dom: Any
    name: str
    serial_log: Path
    folder: Path
    base: StorageLayout  # the layout every test starts from and returns to


def block_lines(text: str) -> list[dict[str, int]]:
    """Every ``HVTEST: block`` line of a serial log, as {disk: sectors}."""
    lines = []
    for match in _BLOCK.finditer(text):
        pairs = (word.split("=") for word in match.group("disks").split())
        lines.append({disk: int(sectors) for disk, sectors in pairs})
    return lines


def wait_disks(vm: LiveVm, wanted: Any, after: int, timeout: float = 60) -> dict[str, int]:
    """Wait until a block line printed after offset ``after`` satisfies ``wanted(disks)``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for disks in block_lines(serial_text(vm.serial_log)[after:]):
            if wanted(disks):
                return disks
        time.sleep(0.2)
    tail = "\n".join(serial_text(vm.serial_log).splitlines()[-10:])
    raise AssertionError(f"no matching 'HVTEST: block' line after offset {after}; last lines:\n{tail}")


def current_disks(vm: LiveVm) -> dict[str, int]:
    return block_lines(serial_text(vm.serial_log))[-1]


def blklist(name: str, *flags: str) -> dict[str, str]:
    """``virsh domblklist``: {target: source}."""
    rows = virsh("domblklist", name, *flags).splitlines()[2:]
    return dict(row.split(None, 1) for row in rows if row.strip())  # type: ignore[misc]


def image(folder: Path, name: str, size: str = "16M", fmt: str = "qcow2") -> str:
    path = folder / name
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return str(path)


def _remove(server: Server, name: str) -> None:
    try:
        dom = server.conn.lookupByName(name)
    except libvirt.libvirtError:
        return
    if dom.isActive():
        dom.destroy()
    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)


@pytest.fixture(scope="module")
def live_vm(libvirtd: str, test_root: Path, test_guest: Any) -> Iterator[LiveVm]:
    folder = test_root / f"storage-live-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    server = Server(libvirtd)
    server.open()
    name = vm_name("storage-live")
    try:
        cmdline = f"{test_guest.cmdline} hvtest.watchdisks"
        spec = VmSpec(
            name=name,
            location=str(folder),
            memory=MemoryConfig(256),
            disk=NewDisk(1),
            install=KernelBoot(str(test_guest.kernel), str(test_guest.initrd), cmdline),
        )
        dom = server.lookup(creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg")))
        layout = vm_storage.current_layout(dom)
        base = StorageLayout(1, 1, (*layout.drives, Drive(DriveKind.DVD, Bus.IDE, 1, 0, None)))
        vm_storage.apply_layout(server.conn, dom, base)
        operations.start(server.conn, dom)
        serial_log = vm_folders(folder, name).serial_log
        wait_serial(serial_log, "HVTEST: ready", timeout=120)
        yield LiveVm(server, dom, name, serial_log, folder, vm_storage.current_layout(dom))
    finally:
        _remove(server, name)
        server.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def vm(live_vm: LiveVm) -> Iterator[LiveVm]:
    """The running VM; afterwards it must have its base layout again."""
    assert virsh("domstate", live_vm.name) == "running"
    yield live_vm
    assert vm_storage.current_layout(live_vm.dom) == live_vm.base


def with_drive(layout: StorageLayout, drive: Drive) -> StorageLayout:
    return replace(layout, drives=(*layout.drives, drive))


def test_the_guest_sees_a_hot_added_scsi_disk_and_sees_it_go(vm: LiveVm) -> None:
    before = current_disks(vm)
    assert list(before.values()) == [2 * 1024 * 1024]  # the 1 GiB boot disk on IDE 0:0
    data = image(vm.folder, "hot.qcow2", "16M")
    offset = len(serial_text(vm.serial_log))

    notes = apply_settings(
        vm.server.conn,
        vm.dom,
        SettingsChange(
            storage=with_drive(vm.base, Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 3, data, "qcow2"))
        ),
        vm.server.host_info(),
    )

    assert notes == []
    seen = wait_disks(vm, lambda disks: len(disks) == 2, offset)
    (new_disk,) = set(seen) - set(before)
    assert seen[new_disk] == 16 * MIB // SECTOR
    live, config = blklist(vm.name), blklist(vm.name, "--inactive")
    (target,) = [t for t, source in live.items() if source == data]
    assert config[target] == data
    offset = len(serial_text(vm.serial_log))

    apply_settings(vm.server.conn, vm.dom, SettingsChange(storage=vm.base), vm.server.host_info())

    assert wait_disks(vm, lambda disks: new_disk not in disks, offset) == before
    assert data not in blklist(vm.name).values() and data not in blklist(vm.name, "--inactive").values()


def test_an_online_expand_is_seen_by_the_guest(vm: LiveVm) -> None:
    data = image(vm.folder, "grow.qcow2", "16M")
    offset = len(serial_text(vm.serial_log))
    vm_storage.apply_layout(
        vm.server.conn, vm.dom, with_drive(vm.base, Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 1, data, "qcow2"))
    )
    seen = wait_disks(vm, lambda disks: 16 * MIB // SECTOR in disks.values(), offset)
    (new_disk,) = [d for d, sectors in seen.items() if sectors == 16 * MIB // SECTOR]
    offset = len(serial_text(vm.serial_log))

    vm_storage.expand_online(vm.server.conn, vm.dom, data, 48 * MIB)

    assert wait_disks(vm, lambda disks: disks.get(new_disk) == 48 * MIB // SECTOR, offset)
    assert qemu_img_info(Path(data))["virtual-size"] == 48 * MIB
    with pytest.raises(ValidationError, match="can't shrink while the virtual machine runs"):
        vm_storage.expand_online(vm.server.conn, vm.dom, data, 32 * MIB)
    with pytest.raises(ValidationError, match="can be at most"):
        vm_storage.expand_online(vm.server.conn, vm.dom, data, 65 * 1024**4)
    boot = next(d.path for d in vm.base.drives if d.kind is DriveKind.HARD_DISK)
    assert boot is not None
    with pytest.raises(InvalidStateError) as caught:
        vm_storage.expand_online(vm.server.conn, vm.dom, boot, 2 * 1024 * MIB)
    assert caught.value.message == (
        f"'{boot}' can't be expanded while the virtual machine runs: it is on an IDE controller. "
        "Shut the virtual machine down first."
    )
    assert qemu_img_info(Path(boot))["virtual-size"] == 1024 * MIB
    vm_storage.apply_layout(vm.server.conn, vm.dom, vm.base)


def test_ide_changes_and_controllers_are_refused_while_running(vm: LiveVm) -> None:
    live, config = virsh("dumpxml", vm.name), virsh("dumpxml", "--inactive", vm.name)
    extra = image(vm.folder, "ide.qcow2")
    ide_disk = Drive(DriveKind.HARD_DISK, Bus.IDE, 0, 1, extra, "qcow2")
    boot = next(d for d in vm.base.drives if d.kind is DriveKind.HARD_DISK)
    running = "while the virtual machine is running"
    refused = [
        (
            with_drive(vm.base, ide_disk),
            f"The hard drive at IDE Controller 0, Location 1 can't be added {running}: IDE devices can "
            "be added, removed or changed only while it is off.",
        ),
        (
            replace(vm.base, drives=tuple(d for d in vm.base.drives if d != boot)),
            f"The hard drive at IDE Controller 0, Location 0 can't be removed {running}",
        ),
        (
            replace(vm.base, scsi_controllers=2),
            f"SCSI controllers can't be added or removed {running}. Shut it down first.",
        ),
        (
            with_drive(vm.base, Drive(DriveKind.DVD, Bus.IDE, 1, 1, None)),
            "The DVD drive at IDE Controller 1, Location 1 can't be added",
        ),
    ]
    for layout, reason in refused:
        with pytest.raises(ValidationError) as caught:
            apply_settings(vm.server.conn, vm.dom, SettingsChange(storage=layout), vm.server.host_info())
        assert reason in caught.value.message
    assert virsh("dumpxml", vm.name) == live and virsh("dumpxml", "--inactive", vm.name) == config


def test_dvd_media_change_while_running(vm: LiveVm) -> None:
    iso = image(vm.folder, "media.iso", "1M", "raw")
    dvd = next(d for d in vm.base.drives if d.kind is DriveKind.DVD)
    loaded = replace(
        vm.base, drives=tuple(replace(d, path=iso, format="raw") if d == dvd else d for d in vm.base.drives)
    )

    vm_storage.apply_layout(vm.server.conn, vm.dom, loaded)

    assert blklist(vm.name)["hdc"] == iso and blklist(vm.name, "--inactive")["hdc"] == iso
    vm_storage.apply_layout(vm.server.conn, vm.dom, vm.base)
    assert blklist(vm.name)["hdc"] == "-" and blklist(vm.name, "--inactive")["hdc"] == "-"


def test_a_failed_hot_add_takes_back_the_disks_added_before_it(vm: LiveVm) -> None:
    first, second = image(vm.folder, "first.qcow2"), image(vm.folder, "second.qcow2")
    calls: list[str] = []

    def attach(xml: str, flags: int) -> None:
        calls.append(xml)
        if len(calls) == 2:
            raise libvirt.libvirtError("injected failure")
        vm.dom.attachDeviceFlags(xml, flags)

    layout = with_drive(
        with_drive(vm.base, Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 0, first, "qcow2")),
        Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 1, second, "qcow2"),
    )
    with pytest.raises(HvError, match="injected failure"):
        vm_storage.apply_layout(vm.server.conn, FaultyDomain(vm.dom, attachDeviceFlags=attach), layout)
    assert len(calls) == 2
    for flags in ((), ("--inactive",)):
        assert (
            first not in blklist(vm.name, *flags).values() and second not in blklist(vm.name, *flags).values()
        )


def test_settings_undo_a_hot_add_when_a_later_step_fails(vm: LiveVm) -> None:
    data = image(vm.folder, "undone.qcow2")
    layout = with_drive(vm.base, Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 9, data, "qcow2"))
    with pytest.raises(HvError, match="injected failure"):
        apply_settings(
            vm.server.conn,
            autostart_fails(vm.dom),
            SettingsChange(storage=layout, start_action=StartAction.START),
            vm.server.host_info(),
        )
    assert data not in blklist(vm.name).values() and data not in blklist(vm.name, "--inactive").values()


def test_a_disk_the_guest_does_not_release_is_reported_and_kept(
    vm: LiveVm, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = image(vm.folder, "held.qcow2")
    layout = with_drive(vm.base, Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 2, data, "qcow2"))
    vm_storage.apply_layout(vm.server.conn, vm.dom, layout)
    monkeypatch.setattr(vm_storage_live, "DETACH_TIMEOUT_S", 1.0)
    ignored = FaultyDomain(vm.dom, detachDeviceFlags=lambda _xml, _flags: 0)  # as a guest that never lets go

    with pytest.raises(HvError) as caught:
        vm_storage.apply_layout(vm.server.conn, ignored, vm.base)

    assert caught.value.message == (
        "The hard drive at SCSI Controller 0, Location 2 was not removed: the guest did not release it "
        "within 1 s."
    )
    assert data in blklist(vm.name).values() and data in blklist(vm.name, "--inactive").values()
    vm_storage.apply_layout(vm.server.conn, vm.dom, vm.base)


def test_a_paused_vm_takes_a_scsi_disk_and_a_saved_one_takes_nothing(vm: LiveVm) -> None:
    data = image(vm.folder, "paused.qcow2", "8M")
    layout = with_drive(vm.base, Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 4, data, "qcow2"))
    operations.pause(vm.dom)
    offset = len(serial_text(vm.serial_log))
    try:
        vm_storage.apply_layout(vm.server.conn, vm.dom, layout)
    finally:
        operations.resume(vm.dom)
    wait_disks(vm, lambda disks: 8 * MIB // SECTOR in disks.values(), offset)
    vm_storage.apply_layout(vm.server.conn, vm.dom, vm.base)

    operations.save(vm.dom)
    try:
        config = virsh("dumpxml", "--inactive", vm.name)
        with pytest.raises(ValidationError) as caught:
            apply_settings(vm.server.conn, vm.dom, SettingsChange(storage=layout), vm.server.host_info())
        assert caught.value.message.startswith(
            "Storage controllers and drives can't be changed while the virtual machine is saved"
        )
        assert virsh("dumpxml", "--inactive", vm.name) == config
    finally:
        operations.start(vm.server.conn, vm.dom)
    assert virsh("domstate", vm.name) == "running"
