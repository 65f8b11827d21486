"""The backend against the real daemon: creating VMs of every kind, rolling back failures, and
the lifecycle of a booted guest, each effect checked with virsh, qemu-img or the guest's serial."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation, operations
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.inventory import vm_config, vm_info
from hvmanager.backend.models import (
    ExistingDisk,
    IsoInstall,
    KernelBoot,
    MemoryConfig,
    NetworkInstall,
    NewDisk,
    VmSpec,
    VmState,
)
from tests.conftest import vm_name
from tests.vm.conftest import GuestVm
from tests.vm.helpers import dominfo, domstate, last_tick, qemu_img_info, virsh, wait_serial

pytestmark = pytest.mark.vm


@pytest.fixture
def private_network(libvirtd: str) -> Iterator[str]:
    """A libvirt network with no host address (a private switch), removed afterwards."""
    name = vm_name("net")
    xml = f"<network><name>{name}</name><bridge name='hvt{abs(hash(name)) % 10**9}' stp='off'/></network>"
    path = Path(f"/tmp/{name}.xml")
    path.write_text(xml)
    virsh("net-define", str(path))
    virsh("net-start", name)
    yield name
    virsh("net-destroy", name, check=False)
    virsh("net-undefine", name, check=False)
    path.unlink(missing_ok=True)


def _tcg(server: Server) -> Any:
    return creation.decide_acceleration(server, "tcg")


@pytest.mark.parametrize(("generation", "fmt"), [(1, "qcow2"), (1, "vpc"), (2, "qcow2"), (2, "raw")])
def test_new_vm_with_a_new_disk(server: Server, vm_location: Path, generation: int, fmt: str) -> None:
    name = vm_name(f"gen{generation}-{fmt}")
    spec = VmSpec(
        name, str(vm_location), generation, MemoryConfig(256, True, 128, 512), 2, disk=NewDisk(2, fmt)
    )
    creation.create_vm(server, spec, _tcg(server))
    info = dominfo(name)
    assert info["State"] == "shut off" and info["CPU(s)"] == "2" and info["Max memory"] == "524288 KiB"
    xml = virsh("dumpxml", name)
    assert ("machine='pc-q35" in xml) == (generation == 2) and ("bus='scsi'" in xml) == (generation == 2)
    disk = next((vm_location / name / "Virtual Hard Disks").iterdir())
    assert qemu_img_info(disk)["format"] == fmt and qemu_img_info(disk)["virtual-size"] == 2 * 1024**3
    assert sorted(p.name for p in (vm_location / name).iterdir()) == [
        "Snapshots",
        "Virtual Hard Disks",
        "Virtual Machines",
    ]


def test_new_vm_with_existing_disk_iso_and_network(
    server: Server, vm_location: Path, private_network: str
) -> None:
    disk = vm_location / "existing.vhd"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", str(disk), "64M"], check=True)
    iso = vm_location / "installer.iso"
    iso.write_bytes(b"\0" * 2048)
    name = vm_name("existing")
    spec = VmSpec(
        name,
        str(vm_location),
        1,
        MemoryConfig(128),
        network=private_network,
        disk=ExistingDisk(str(disk)),
        install=IsoInstall(str(iso)),
    )
    creation.create_vm(server, spec, _tcg(server))
    xml = virsh("dumpxml", name)
    assert "type='vpc'" in xml and "installer.iso" in xml and f"network='{private_network}'" in xml
    assert xml.index("<boot dev='cdrom'/>") < xml.index("<boot dev='hd'/>")
    name2 = vm_name("pxe")
    spec2 = VmSpec(
        name2, str(vm_location), 2, MemoryConfig(128), network=private_network, install=NetworkInstall()
    )
    creation.create_vm(server, spec2, _tcg(server))
    assert virsh("dumpxml", name2).index("<boot dev='network'/>") < virsh("dumpxml", name2).index(
        "<boot dev='hd'/>"
    )


def test_invalid_spec_changes_nothing(server: Server, vm_location: Path) -> None:
    name = vm_name("bad")
    vhdx = vm_location.parent / f"{name}.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(vhdx), "8M"], check=True)
    for spec in (
        VmSpec(name, str(vm_location), memory=MemoryConfig(33)),
        VmSpec(name, str(vm_location), disk=NewDisk(0)),
        VmSpec(name, str(vm_location), disk=NewDisk(1, "vhdx")),
        VmSpec(name, str(vm_location), disk=ExistingDisk(str(vhdx))),
        VmSpec("x" * 101, str(vm_location)),
    ):
        with pytest.raises(ValidationError):
            creation.create_vm(server, spec, _tcg(server))
    assert name not in virsh("list", "--all", "--name")
    assert list(vm_location.iterdir()) == []
    vhdx.unlink()


def test_full_file_system_rolls_back(server: Server, vm_location: Path) -> None:
    """A disk that can't be written leaves no VM, no disk and no folders behind."""
    small = vm_location / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "hvtest-tmpfs", str(small)], check=True)
    try:
        name = vm_name("full")
        spec = VmSpec(name, str(small), disk=NewDisk(1, "qcow2"))
        with pytest.raises(HvError, match="qemu-img create failed"):
            creation.create_vm(server, spec, _tcg(server))
        assert list(small.iterdir()) == []
        assert name not in virsh("list", "--all", "--name")
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_lifecycle_of_a_booted_guest(server: Server, guest_vm: GuestVm) -> None:
    dom = server.lookup(guest_vm.uuid)
    operations.start(server.conn, dom, _tcg(server))
    assert domstate(guest_vm.name) == "running"
    wait_serial(guest_vm.serial_log, "HVTEST: ready")
    with pytest.raises(InvalidStateError, match="while it is Running"):
        operations.delete(server.conn, dom)
    operations.pause(dom)
    assert domstate(guest_vm.name) == "paused" and vm_info(dom).state is VmState.PAUSED
    operations.resume(dom)
    text = wait_serial(guest_vm.serial_log, "HVTEST: tick 3")
    operations.save(dom)
    assert domstate(guest_vm.name) == "shut off" and dominfo(guest_vm.name)["Managed save"] == "yes"
    assert vm_info(dom).state is VmState.SAVED
    before = last_tick(guest_vm.serial_log.read_text())
    offset = len(guest_vm.serial_log.read_text())
    operations.start(server.conn, dom, _tcg(server))
    # Restored from memory: the tick counter goes on instead of a new boot.
    text = wait_serial(guest_vm.serial_log, f"HVTEST: tick {before + 2}", after=offset)
    assert "HVTEST: booted" not in text[offset:]
    operations.reset(dom)
    wait_serial(guest_vm.serial_log, "HVTEST: booted", after=len(text))
    operations.turn_off(dom)
    assert domstate(guest_vm.name) == "shut off"


def test_delete_saved_state_then_fresh_boot(server: Server, guest_vm: GuestVm) -> None:
    dom = server.lookup(guest_vm.uuid)
    operations.start(server.conn, dom, _tcg(server))
    wait_serial(guest_vm.serial_log, "HVTEST: ready")
    operations.save(dom)
    operations.delete_saved_state(dom)
    assert dominfo(guest_vm.name)["Managed save"] == "no" and vm_info(dom).state is VmState.OFF


def test_rename_and_delete_with_disks(server: Server, vm_location: Path) -> None:
    name = vm_name("del")
    spec = VmSpec(name, str(vm_location), disk=NewDisk(1))
    uuid = creation.create_vm(server, spec, _tcg(server))
    dom = server.lookup(uuid)
    disk = Path(vm_config(dom).hard_disks[0].path or "")
    # A second VM uses the same disk: deleting the first must keep it.
    other = vm_name("share")
    creation.create_vm(server, VmSpec(other, str(vm_location), disk=ExistingDisk(str(disk))), _tcg(server))
    operations.rename(server.conn, dom, name + "x")
    assert virsh("domname", uuid) == name + "x"
    with pytest.raises(ValidationError, match="already exists"):
        operations.rename(server.conn, dom, other)
    report = operations.delete(server.conn, dom, delete_disks=True)
    assert disk.exists() and str(disk) in report.kept and report.deleted == []
    assert uuid not in virsh("list", "--all", "--uuid")
    report = operations.delete(server.conn, server.conn.lookupByName(other), delete_disks=True)
    assert report.deleted == [str(disk)] and not disk.exists()
    # The second VM's folders went with it; the first kept its folder while the disk was shared.
    assert not (vm_location / other).exists()


def test_acceleration_follows_the_decision_at_start(server: Server, guest_vm: GuestVm) -> None:
    """A VM defined for KVM is switched to TCG at start when KVM is not usable (and back)."""
    dom = server.lookup(guest_vm.uuid)
    xml = virsh("dumpxml", "--inactive", guest_vm.name).replace(
        "<domain type='qemu'", "<domain type='kvm'", 1
    )
    server.conn.defineXML(xml)
    assert operations.apply_acceleration(server.conn, dom, _tcg(server))
    assert virsh("dumpxml", "--inactive", guest_vm.name).startswith("<domain type='qemu'")
    assert not operations.apply_acceleration(server.conn, dom, _tcg(server))
    time.sleep(0)


def test_generation_2_guest_boots_with_uefi(server: Server, vm_location: Path, test_guest: Any) -> None:
    """A Generation 2 VM (q35, OVMF, SCSI) boots the guest and obeys the power button."""
    name = vm_name("gen2-boot")
    install = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
    spec = VmSpec(name, str(vm_location), 2, MemoryConfig(256), disk=NewDisk(1), install=install)
    dom = server.lookup(creation.create_vm(server, spec, _tcg(server)))
    operations.start(server.conn, dom, _tcg(server))
    assert "<loader" in virsh("dumpxml", name) and "OVMF" in virsh("dumpxml", name)
    serial = vm_location / name / "Virtual Machines" / "serial.log"
    text = wait_serial(serial, "HVTEST: ready", timeout=180)
    assert "sda" in text.split("HVTEST: disks", 1)[1].splitlines()[0]  # the SCSI boot disk
    operations.shut_down(dom)
    deadline = time.monotonic() + 60
    while domstate(name) != "shut off":
        assert time.monotonic() < deadline, "the Generation 2 guest did not shut down"
        time.sleep(0.5)
