"""Controllers and drives of VMs that are off, on the real libvirt daemon: ``vm_storage.apply_layout``
and ``vmsettings.apply_settings`` add and remove them, and refuse what Hyper-V refuses.

The independent observer is ``virsh dumpxml --inactive`` (the definition the next start uses), read
with ElementTree: each drive's device, source, target bus and ``<address type='drive'>``, and the
SCSI controllers' models and indexes. Refusals must leave that XML byte for byte as it was.
"""

from __future__ import annotations

import dataclasses
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation, vm_storage
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.models import MemoryConfig, NewDisk, StartAction, VmSpec
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout
from hvmanager.backend.vmsettings import SettingsChange, apply_settings
from tests.conftest import vm_name
from tests.vm.helpers import autostart_fails, virsh

pytestmark = pytest.mark.vm

HD, DVD = DriveKind.HARD_DISK, DriveKind.DVD
IDE, SCSI = Bus.IDE, Bus.SCSI


def image(folder: Path, name: str, fmt: str = "qcow2", size: str = "16M") -> str:
    path = folder / name
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return str(path)


def make_vm(server: Server, location: Path, label: str, generation: int = 1) -> Any:
    spec = VmSpec(
        name=vm_name(f"storage-{label}"),
        location=str(location),
        generation=generation,
        memory=MemoryConfig(128),
        disk=NewDisk(1),
    )
    uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    return server.lookup(uuid)


def inactive_xml(name: str) -> str:
    return virsh("dumpxml", "--inactive", "--security-info", name)


def disks(name: str) -> dict[str, ET.Element]:
    """The persistent definition's ``<disk>`` elements by source path ("" for no source)."""
    found = {}
    for disk in ET.fromstring(inactive_xml(name)).findall("devices/disk"):
        source = disk.find("source")
        found[(source.get("file") or source.get("dev") or "") if source is not None else ""] = disk
    return found


def placement(disk: ET.Element) -> tuple[str, str, str, tuple[str, ...]]:
    """(device, target bus, disk type, (controller, bus, target, unit) of the drive address)."""
    target, address = disk.find("target"), disk.find("address")
    assert target is not None and address is not None and address.get("type") == "drive"
    unit = tuple(address.get(key, "") for key in ("controller", "bus", "target", "unit"))
    return disk.get("device", ""), target.get("bus", ""), disk.get("type", ""), unit


def scsi_controllers(name: str) -> list[tuple[str, str]]:
    root = ET.fromstring(inactive_xml(name))
    return sorted(
        (c.get("index", ""), c.get("model", "")) for c in root.findall("devices/controller[@type='scsi']")
    )


def replaced(layout: StorageLayout, *drives: Drive, controllers: int | None = None) -> StorageLayout:
    count = layout.scsi_controllers if controllers is None else controllers
    return StorageLayout(layout.generation, count, drives)


@pytest.fixture
def off_vm(server: Server, vm_location: Path) -> Any:
    return make_vm(server, vm_location, "off")


def test_controllers_and_drives_are_added_with_their_addresses(
    server: Server, vm_location: Path, off_vm: Any
) -> None:
    name = off_vm.name()
    layout = vm_storage.current_layout(off_vm)
    (boot,) = layout.drives
    assert (boot.bus, boot.controller, boot.location, boot.format) == (IDE, 0, 0, "qcow2")
    boot_xml = ET.tostring(disks(name)[boot.path or ""])
    data, raw, vhd = (
        image(vm_location, "data.qcow2"),
        image(vm_location, "raw.img", "raw"),
        image(vm_location, "v.vhd", "vpc"),
    )
    iso = image(vm_location, "media.iso", "raw", "1M")
    new = replaced(
        layout,
        boot,
        Drive(HD, IDE, 0, 1, vhd, "vpc"),
        Drive(DVD, IDE, 1, 1, iso, "raw"),
        Drive(DVD, IDE, 1, 0, None),
        Drive(HD, SCSI, 0, 0, data, "qcow2"),
        Drive(HD, SCSI, 1, 63, raw, "raw"),
        controllers=2,
    )

    assert vm_storage.apply_layout(server.conn, off_vm, new) == []

    found = disks(name)
    assert ET.tostring(found[boot.path or ""]) == boot_xml  # untouched
    assert placement(found[vhd]) == ("disk", "ide", "file", ("0", "0", "0", "1"))
    assert placement(found[iso]) == ("cdrom", "ide", "file", ("0", "1", "0", "1"))
    assert placement(found[""]) == ("cdrom", "ide", "file", ("0", "1", "0", "0"))
    assert found[""].find("readonly") is not None and found[iso].find("readonly") is not None
    assert placement(found[data]) == ("disk", "scsi", "file", ("0", "0", "0", "0"))
    assert placement(found[raw]) == ("disk", "scsi", "file", ("1", "0", "0", "63"))
    assert {found[p].find("driver").get("type") for p in (data, raw, vhd)} == {"qcow2", "raw", "vpc"}  # type: ignore[union-attr]
    targets = [d.find("target").get("dev") for d in found.values()]  # type: ignore[union-attr]
    assert len(set(targets)) == len(targets)
    assert scsi_controllers(name) == [("0", "virtio-scsi"), ("1", "virtio-scsi")]
    assert vm_storage.current_layout(off_vm) == StorageLayout(
        1, 2, tuple(sorted(new.drives, key=lambda d: (d.bus.value, d.controller, d.location)))
    )


def test_drives_and_controllers_are_removed_and_their_files_kept(
    server: Server, vm_location: Path, off_vm: Any
) -> None:
    name = off_vm.name()
    layout = vm_storage.current_layout(off_vm)
    data, far = image(vm_location, "data.qcow2"), image(vm_location, "far.qcow2")
    full = replaced(
        layout,
        *layout.drives,
        Drive(HD, SCSI, 0, 2, data, "qcow2"),
        Drive(HD, SCSI, 3, 0, far, "qcow2"),
        controllers=4,
    )
    vm_storage.apply_layout(server.conn, off_vm, full)
    assert len(scsi_controllers(name)) == 4 and far in disks(name)

    vm_storage.apply_layout(
        server.conn,
        off_vm,
        replaced(layout, *layout.drives, Drive(HD, SCSI, 0, 2, data, "qcow2"), controllers=1),
    )

    assert scsi_controllers(name) == [("0", "virtio-scsi")]
    assert far not in disks(name) and placement(disks(name)[data])[3] == ("0", "0", "0", "2")
    vm_storage.apply_layout(server.conn, off_vm, layout)
    assert set(disks(name)) == {d.path for d in layout.drives}
    assert scsi_controllers(name) == []
    assert Path(data).exists() and Path(far).exists()


def assert_refused(server: Server, dom: Any, new: StorageLayout, reason: str) -> None:
    before = inactive_xml(dom.name())
    with pytest.raises(ValidationError) as caught:
        vm_storage.apply_layout(server.conn, dom, new)
    assert reason in caught.value.message
    assert inactive_xml(dom.name()) == before


def test_a_fifth_scsi_controller_is_refused(server: Server, off_vm: Any) -> None:
    layout = vm_storage.current_layout(off_vm)
    vm_storage.apply_layout(server.conn, off_vm, dataclasses.replace(layout, scsi_controllers=4))
    assert len(scsi_controllers(off_vm.name())) == 4
    assert_refused(
        server,
        off_vm,
        dataclasses.replace(layout, scsi_controllers=5),
        "A virtual machine can have at most 4 SCSI controllers.",
    )


def test_a_third_device_on_an_ide_controller_is_refused(
    server: Server, vm_location: Path, off_vm: Any
) -> None:
    layout = vm_storage.current_layout(off_vm)
    second = Drive(HD, IDE, 0, 1, image(vm_location, "second.qcow2"), "qcow2")
    vm_storage.apply_layout(server.conn, off_vm, replaced(layout, *layout.drives, second))
    third = Drive(DVD, IDE, 0, 2, None)
    assert_refused(
        server,
        off_vm,
        replaced(layout, *layout.drives, second, third),
        "IDE Controller 0, Location 2 does not exist: a virtual machine has IDE Controllers 0 and 1, "
        "each with Locations 0 and 1.",
    )
    taken = Drive(HD, IDE, 0, 1, image(vm_location, "taken.qcow2"), "qcow2")
    assert_refused(
        server,
        off_vm,
        replaced(layout, *layout.drives, second, taken),
        "IDE Controller 0, Location 1 holds more than one drive",
    )


def test_generation_2_has_no_ide_and_takes_dvd_drives_on_scsi(server: Server, vm_location: Path) -> None:
    dom = make_vm(server, vm_location, "gen2", generation=2)
    layout = vm_storage.current_layout(dom)
    assert layout.generation == 2 and layout.scsi_controllers == 1
    assert_refused(
        server,
        dom,
        replaced(layout, *layout.drives, Drive(HD, IDE, 0, 0, image(vm_location, "ide.qcow2"), "qcow2")),
        "Generation 2 virtual machines have no IDE controller",
    )
    iso = image(vm_location, "media.iso", "raw", "1M")
    vm_storage.apply_layout(
        server.conn, dom, replaced(layout, *layout.drives, Drive(DVD, SCSI, 0, 5, iso, "raw"))
    )
    assert placement(disks(dom.name())[iso]) == ("cdrom", "scsi", "file", ("0", "0", "0", "5"))


def test_a_generation_1_dvd_drive_on_scsi_is_refused(server: Server, off_vm: Any) -> None:
    layout = dataclasses.replace(vm_storage.current_layout(off_vm), scsi_controllers=1)
    vm_storage.apply_layout(server.conn, off_vm, layout)
    assert_refused(
        server,
        off_vm,
        replaced(layout, *layout.drives, Drive(DVD, SCSI, 0, 0, None)),
        "must be on an IDE controller",
    )


def test_bad_disk_files_are_refused(server: Server, vm_location: Path, off_vm: Any) -> None:
    layout = dataclasses.replace(vm_storage.current_layout(off_vm), scsi_controllers=1)
    vm_storage.apply_layout(server.conn, off_vm, layout)
    missing = str(vm_location / "missing.qcow2")
    vhdx = image(vm_location, "x.vhdx", "vhdx")
    qcow2 = image(vm_location, "real.qcow2")
    cases = [
        (Drive(HD, SCSI, 0, 0, missing, "qcow2"), f"'{missing}' does not exist or is not a file."),
        (Drive(HD, SCSI, 0, 0, vhdx, "vhdx"), "Virtual machines can't use VHDX disks directly here"),
        (Drive(HD, SCSI, 0, 0, qcow2, "raw"), f"'{qcow2}' is a QCOW2 disk, not RAW."),
        (Drive(HD, SCSI, 0, 0, "relative.qcow2", "qcow2"), "'relative.qcow2' is not an absolute path."),
        (Drive(HD, SCSI, 0, 0, qcow2, None, passthrough=True), "is not a block device"),
    ]
    for drive, reason in cases:
        assert_refused(server, off_vm, replaced(layout, *layout.drives, drive), reason)


def test_settings_apply_storage_and_undo_it_when_a_later_step_fails(
    server: Server, vm_location: Path, off_vm: Any
) -> None:
    name = off_vm.name()
    host = server.host_info()
    layout = vm_storage.current_layout(off_vm)
    data = image(vm_location, "data.qcow2")
    new = replaced(layout, *layout.drives, Drive(HD, SCSI, 0, 0, data, "qcow2"), controllers=1)
    before = inactive_xml(name)

    with pytest.raises(HvError, match="injected failure"):
        apply_settings(
            server.conn,
            autostart_fails(off_vm),
            SettingsChange(storage=new, processors=2, start_action=StartAction.START),
            host,
        )
    assert inactive_xml(name) == before

    assert apply_settings(server.conn, off_vm, SettingsChange(storage=new, processors=2), host) == []
    assert placement(disks(name)[data]) == ("disk", "scsi", "file", ("0", "0", "0", "0"))
    assert ET.fromstring(inactive_xml(name)).findtext("vcpu") == "2"
