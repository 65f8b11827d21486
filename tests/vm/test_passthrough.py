"""Physical (pass-through) hard disks, with loop devices made by the tests as the physical disks.

A loop device on a file in the test's folder stands for a host disk: ``passthrough.host_disks``
lists it, ``vm_storage.apply_layout`` attaches it (``virsh dumpxml --inactive`` shows a
``<disk type='block'>`` on it), and a mounted one (``mkfs.ext2`` + ``mount`` in the test's
folder) is refused with the reason, for attaching and for starting a VM that has it. Checkpoints
of a VM with a physical disk are refused with the reason the user reads. No other host disk is
touched; every loop device is unmounted and detached afterwards.
"""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import checkpoints, creation, operations, passthrough, vm_storage
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.models import MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout
from tests.conftest import vm_name
from tests.vm.helpers import virsh

pytestmark = pytest.mark.vm

MIB = 1024 * 1024


def run(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def make_loop(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Makes loop devices on 16 MiB files in ``tmp_path``; unmounts and detaches them afterwards."""
    devices: list[str] = []

    def make(label: str) -> str:
        backing = tmp_path / f"{label}.img"
        with backing.open("wb") as handle:
            handle.truncate(16 * MIB)
        device = run("losetup", "--find", "--show", str(backing))
        devices.append(device)
        return device

    yield make
    for device in devices:
        for point in mount_points(device):
            subprocess.run(["umount", point], check=False)
        subprocess.run(["losetup", "-d", device], check=False)


def mount_points(device: str) -> list[str]:
    done = subprocess.run(["findmnt", "-n", "-o", "TARGET", "-S", device], capture_output=True, text=True)
    return done.stdout.split()


def mount(device: str, folder: Path) -> str:
    run("mkfs.ext2", "-q", "-F", device)
    folder.mkdir()
    run("mount", device, str(folder))
    return str(folder)


def make_vm(server: Server, location: Path, label: str) -> Any:
    spec = VmSpec(
        name=vm_name(f"pt-{label}"), location=str(location), memory=MemoryConfig(128), disk=NewDisk(1)
    )
    return server.lookup(creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg")))


def physical_at_ide_0_1(dom: Any, device: str) -> StorageLayout:
    layout = vm_storage.current_layout(dom)
    drive = Drive(DriveKind.HARD_DISK, Bus.IDE, 0, 1, device, None, passthrough=True)
    return StorageLayout(layout.generation, layout.scsi_controllers, (*layout.drives, drive))


def block_disks(name: str) -> list[tuple[str, str, str]]:
    """(device, driver type, source dev) of each ``<disk type='block'>`` of the persistent definition."""
    root = ET.fromstring(virsh("dumpxml", "--inactive", name))
    return [
        (d.get("device", ""), d.find("driver").get("type", ""), d.find("source").get("dev", ""))  # type: ignore[union-attr]
        for d in root.findall("devices/disk[@type='block']")
    ]


def listed(server: Server, device: str) -> passthrough.HostDisk:
    (disk,) = [d for d in passthrough.host_disks(server.conn) if d.path == device]
    return disk


def test_a_loop_device_is_offered_and_attached_as_a_physical_disk(
    server: Server, vm_location: Path, make_loop: Callable[[str], str], tmp_path: Path
) -> None:
    device = make_loop("free")
    disk = listed(server, device)
    assert (disk.size_bytes, disk.problem) == (16 * MIB, None)
    assert disk.description == f"Loop device on {tmp_path / 'free.img'}"
    dom = make_vm(server, vm_location, "attach")

    notes = vm_storage.apply_layout(server.conn, dom, physical_at_ide_0_1(dom, device))

    assert block_disks(dom.name()) == [("disk", "raw", device)]
    assert notes and f"physical disk {device}" in notes[0]
    assert listed(server, device).problem == f"The virtual machine '{dom.name()}' uses it."
    assert passthrough.passthrough_problem(server.conn, device, dom.UUIDString()) is None
    other = make_vm(server, vm_location, "other")
    with pytest.raises(ValidationError) as caught:
        vm_storage.apply_layout(server.conn, other, physical_at_ide_0_1(other, device))
    assert caught.value.message == (
        f"'{device}' can't be used as a physical disk: the virtual machine '{dom.name()}' uses it."
    )
    assert block_disks(other.name()) == []


def test_a_mounted_loop_device_is_refused_with_the_reason(
    server: Server, vm_location: Path, make_loop: Callable[[str], str], tmp_path: Path
) -> None:
    device = make_loop("mounted")
    point = mount(device, tmp_path / "mnt")
    assert listed(server, device).problem == f"It is mounted on the host at {point}."
    dom = make_vm(server, vm_location, "mounted")
    before = virsh("dumpxml", "--inactive", dom.name())

    with pytest.raises(ValidationError) as caught:
        vm_storage.apply_layout(server.conn, dom, physical_at_ide_0_1(dom, device))

    assert (
        caught.value.message
        == f"'{device}' can't be used as a physical disk: it is mounted on the host at {point}."
    )
    assert virsh("dumpxml", "--inactive", dom.name()) == before


def test_a_vm_with_a_physical_disk_starts_only_while_the_host_keeps_off_it(
    server: Server, vm_location: Path, make_loop: Callable[[str], str], tmp_path: Path
) -> None:
    device = make_loop("start")
    dom = make_vm(server, vm_location, "start")
    vm_storage.apply_layout(server.conn, dom, physical_at_ide_0_1(dom, device))
    point = mount(device, tmp_path / "mnt")

    with pytest.raises(InvalidStateError) as caught:
        operations.start(server.conn, dom)

    assert caught.value.message == (
        f"'{dom.name()}' can't start while its physical disk {device} is in use: it is mounted on the "
        f"host at {point}."
    )
    assert caught.value.hint == passthrough.START_HINT
    assert virsh("domstate", dom.name()) == "shut off"
    run("umount", point)
    operations.start(server.conn, dom)
    assert virsh("domstate", dom.name()) == "running"
    assert device in virsh("domblklist", dom.name())


def test_a_checkpoint_of_a_vm_with_a_physical_disk_is_refused_with_the_reason(
    server: Server, vm_location: Path, make_loop: Callable[[str], str]
) -> None:
    device = make_loop("checkpoint")
    dom = make_vm(server, vm_location, "checkpoint")
    vm_storage.apply_layout(server.conn, dom, physical_at_ide_0_1(dom, device))

    with pytest.raises(InvalidStateError) as caught:
        checkpoints.take(server.conn, dom, "not possible")

    assert caught.value.message == (
        f"A checkpoint cannot be taken: Disk hdb is the physical disk {device} passed through to the VM: "
        "its contents cannot be frozen in a differencing disk."
    )
    assert caught.value.hint == "Remove that disk first."


def test_what_is_not_a_whole_free_disk_is_refused(server: Server, tmp_path: Path) -> None:
    regular = tmp_path / "file.img"
    regular.write_bytes(b"\0" * 4096)
    problem = passthrough.passthrough_problem
    assert problem(server.conn, str(regular)) == (
        f"'{regular}' is not a block device (a physical disk); a disk file is a virtual hard disk."
    )
    assert problem(server.conn, str(tmp_path / "none")) == f"'{tmp_path / 'none'}' does not exist."
    assert problem(server.conn, "dev/loop0") == "'dev/loop0' is not an absolute path."
    unbound = run("losetup", "--find")  # a free loop device: no backing file
    assert (
        problem(server.conn, unbound)
        == f"'{unbound}' can't be used as a physical disk: it is a loop device with no backing file."
    )
    assert unbound not in {d.path for d in passthrough.host_disks(server.conn)}
