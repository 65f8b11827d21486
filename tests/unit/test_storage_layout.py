"""The storage layout (IDE/SCSI controllers and drives): its limits, what may change in which VM
state, and the domain XML it is read from and written to (``storage_xml``).

Pure: no libvirt. The XML comes from ``domxml.build_domain_xml`` (what hvmanager defines for a new
VM) or is written here as libvirt and other tools write it; edits are read back both with
``storage_xml`` and with plain ElementTree, so that a reading bug can't hide a writing bug.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from hvmanager.backend import domxml, storage_xml
from hvmanager.backend.domxml import DiskPlan, DomainPlan
from hvmanager.backend.models import HostInfo, MemoryConfig, VmConfig, VmState
from hvmanager.backend.storage_layout import (
    Bus,
    Drive,
    DriveKind,
    StorageLayout,
    describe,
    free_slot,
    normalized,
)
from hvmanager.backend.storage_rules import layout_problems, storage_change_problems, storage_problems
from hvmanager.backend.storage_xml import read_layout
from hvmanager.backend.storage_xml_edit import edit_layout, media_xml
from hvmanager.backend.vmsettings_rules import SettingsChange, change_problems

HD, DVD = DriveKind.HARD_DISK, DriveKind.DVD
IDE, SCSI = Bus.IDE, Bus.SCSI
BOOT = Drive(HD, IDE, 0, 0, "/vms/web/boot.qcow2", "qcow2")
ISO = Drive(DVD, IDE, 1, 0, "/iso/debian.iso", "raw")
DATA = Drive(HD, SCSI, 0, 0, "/vms/web/data.qcow2", "qcow2")
GEN1 = StorageLayout(1, 1, (BOOT, ISO))
ACTIVE_STATES = (VmState.RUNNING, VmState.PAUSED)


def with_drives(layout: StorageLayout, *drives: Drive, controllers: int | None = None) -> StorageLayout:
    count = layout.scsi_controllers if controllers is None else controllers
    return dataclasses.replace(layout, scsi_controllers=count, drives=layout.drives + drives)


def without(layout: StorageLayout, drive: Drive) -> StorageLayout:
    return dataclasses.replace(layout, drives=tuple(d for d in layout.drives if d != drive))


def new_vm_xml(generation: int, *disks: DiskPlan) -> str:
    plan = DomainPlan(
        name="web",
        domain_type="qemu",
        generation=generation,
        memory=MemoryConfig(512),
        processors=1,
        folder="/vms/web",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        disks=disks,
    )
    return domxml.build_domain_xml(plan)


def disks_of(xml: str) -> dict[str, ET.Element]:
    """Every ``<disk>`` by target name, read with plain ElementTree."""
    root = ET.fromstring(xml)
    return {d.find("target").get("dev"): d for d in root.findall("devices/disk")}  # type: ignore[union-attr]


def address(disk: ET.Element) -> tuple[str, ...]:
    element = disk.find("address")
    assert element is not None and element.get("type") == "drive"
    return tuple(element.get(a, "") for a in ("controller", "bus", "target", "unit"))


# --- reading ------------------------------------------------------------------------------------


def test_a_new_generation_1_vm_has_its_disk_on_ide_0_0_and_its_dvd_on_ide_1_0() -> None:
    xml = new_vm_xml(1, DiskPlan("/vms/web/boot.qcow2", "qcow2"), DiskPlan("/iso/debian.iso", "raw", "cdrom"))
    assert read_layout(xml) == StorageLayout(1, 0, (BOOT, ISO))


def test_a_new_generation_2_vm_has_one_scsi_controller_with_its_disk_and_dvd() -> None:
    xml = new_vm_xml(2, DiskPlan("/vms/web/boot.qcow2", "qcow2"), DiskPlan("/iso/debian.iso", "raw", "cdrom"))
    layout = read_layout(xml)
    assert layout == StorageLayout(
        2,
        1,
        (
            Drive(HD, SCSI, 0, 0, "/vms/web/boot.qcow2", "qcow2"),
            Drive(DVD, SCSI, 0, 1, "/iso/debian.iso", "raw"),
        ),
    )
    assert layout_problems(layout) == []


FOREIGN = """<domain type='kvm'><name>other</name><os><type machine='pc'>hvm</type></os><devices>
<emulator>/usr/bin/qemu-system-x86_64</emulator>
<disk type='file' device='disk'><source file='/x/virtio.img'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2' io='threads'/>
  <source file='/x/ide.qcow2'/><target dev='hdd' bus='ide'/><serial>KEEP-ME</serial></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/x/far.img'/>
  <target dev='sdj' bus='scsi'/></disk>
<disk type='block' device='disk'><driver name='qemu' type='raw'/><source dev='/dev/sdz'/>
  <target dev='sda' bus='scsi'/><address type='drive' controller='0' bus='0' target='0' unit='5'/></disk>
<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
<disk type='file' device='floppy'><source file='/x/a.vfd'/><target dev='fda' bus='fdc'/></disk>
<controller type='scsi' index='0' model='lsilogic'/>
<controller type='scsi' index='1' model='virtio-scsi'/>
<controller type='ide' index='0'/>
</devices></domain>"""


def test_a_foreign_vm_is_read_from_addresses_or_else_target_names_as_libvirt_derives_them() -> None:
    layout = read_layout(FOREIGN)
    assert layout.generation == 1 and layout.scsi_controllers == 2
    assert set(layout.drives) == {
        Drive(HD, IDE, 1, 1, "/x/ide.qcow2", "qcow2"),  # hdd: index 3
        Drive(HD, SCSI, 1, 2, "/x/far.img", "raw"),  # sdj: index 9 = controller 1, unit 2
        Drive(HD, SCSI, 0, 5, "/dev/sdz", None, passthrough=True),  # the address wins over "sda"
        Drive(DVD, IDE, 1, 0, None, None),  # empty DVD drive
    }  # the virtio disk and the floppy are not part of the layout


def test_uefi_vms_made_elsewhere_are_generation_2() -> None:
    xml = FOREIGN.replace("<os>", "<os firmware='efi'>")
    assert read_layout(xml).generation == 2


@pytest.mark.parametrize(("name", "index"), [("sda", 0), ("hdd", 3), ("sdz", 25), ("sdaa", 26), ("sdba", 52)])
def test_disk_names_count_as_libvirt_does(name: str, index: int) -> None:
    assert storage_xml.disk_name_index(name) == index
    assert storage_xml.disk_name(name[:2], index) == name


@pytest.mark.parametrize("name", ["sd", "sd1", "sdA", "hd-"])
def test_odd_disk_names_have_no_index(name: str) -> None:
    assert storage_xml.disk_name_index(name) is None


# --- limits -------------------------------------------------------------------------------------


def test_a_sound_layout_has_no_problems() -> None:
    assert layout_problems(with_drives(GEN1, DATA)) == []


@pytest.mark.parametrize(
    ("layout", "reason"),
    [
        (StorageLayout(1, 5), "A virtual machine can have at most 4 SCSI controllers."),
        (
            with_drives(GEN1, Drive(HD, IDE, 0, 2, "/d.qcow2", "qcow2")),
            "IDE Controller 0, Location 2 does not exist: a virtual machine has IDE Controllers 0 and 1, "
            "each with Locations 0 and 1.",
        ),
        (
            with_drives(GEN1, Drive(HD, IDE, 2, 0, "/d.qcow2", "qcow2")),
            "IDE Controller 2, Location 0 does not exist: a virtual machine has IDE Controllers 0 and 1, "
            "each with Locations 0 and 1.",
        ),
        (
            StorageLayout(2, 1, (BOOT,)),
            "Generation 2 virtual machines have no IDE controller: attach the hard drive at IDE "
            "Controller 0, Location 0 to a SCSI controller.",
        ),
        (
            with_drives(GEN1, Drive(HD, SCSI, 1, 0, "/d.qcow2", "qcow2")),
            "The hard drive at SCSI Controller 1, Location 0 is on a SCSI controller the virtual "
            "machine does not have.",
        ),
        (
            with_drives(GEN1, Drive(HD, SCSI, 0, 64, "/d.qcow2", "qcow2")),
            "SCSI Controller 0, Location 64 does not exist: SCSI locations are 0 to 63.",
        ),
        (
            with_drives(GEN1, Drive(DVD, SCSI, 0, 1, None)),
            "The DVD drive at SCSI Controller 0, Location 1 must be on an IDE controller: a Generation 1 "
            "virtual machine's DVD drives are on IDE (DVD drives on SCSI need Generation 2).",
        ),
        (
            with_drives(GEN1, Drive(HD, IDE, 0, 0, "/other.qcow2", "qcow2")),
            "IDE Controller 0, Location 0 holds more than one drive; each location holds one.",
        ),
        (
            with_drives(GEN1, Drive(HD, SCSI, 0, 3, BOOT.path, "qcow2")),
            f"{BOOT.path} is attached more than once; a disk can be attached to one location only.",
        ),
        (
            with_drives(GEN1, Drive(HD, SCSI, 0, 1, None)),
            "The hard drive at SCSI Controller 0, Location 1 has no disk: choose a virtual hard disk or "
            "a physical disk.",
        ),
        (
            with_drives(GEN1, Drive(DVD, IDE, 0, 1, "/dev/sr0", None, passthrough=True)),
            "The DVD drive at IDE Controller 0, Location 1: physical CD/DVD drives are not supported; use "
            "an image file.",
        ),
    ],
)
def test_each_limit_gives_its_reason(layout: StorageLayout, reason: str) -> None:
    assert reason in layout_problems(layout)


def test_a_vhdx_disk_is_refused_with_the_conversion_hint() -> None:
    (problem,) = layout_problems(with_drives(GEN1, Drive(HD, SCSI, 0, 0, "/d/x.vhdx", "vhdx")))
    assert problem.startswith("/d/x.vhdx: Virtual machines can't use VHDX disks directly here")
    assert "qemu-img convert -f vhdx -O qcow2" in problem


def test_a_generation_2_dvd_drive_on_scsi_and_a_physical_disk_are_fine() -> None:
    layout = StorageLayout(
        2, 4, (Drive(DVD, SCSI, 3, 63, None), Drive(HD, SCSI, 0, 0, "/dev/sdb", None, True))
    )
    assert layout_problems(layout) == []


def test_free_slot_is_the_first_free_location() -> None:
    assert free_slot(GEN1, IDE, 0) == 1
    assert free_slot(GEN1, IDE, 1) == 1
    assert free_slot(with_drives(GEN1, Drive(DVD, IDE, 1, 1, None)), IDE, 1) is None
    assert free_slot(with_drives(GEN1, Drive(HD, SCSI, 0, 0, "/a", "raw")), SCSI, 0) == 1
    full = with_drives(GEN1, *(Drive(HD, SCSI, 0, n, f"/d{n}", "raw") for n in range(64)))
    assert free_slot(full, SCSI, 0) is None


def test_free_slot_on_a_controller_the_vm_lacks_is_none() -> None:
    assert free_slot(GEN1, SCSI, 1) is None
    assert free_slot(StorageLayout(2, 1), IDE, 0) is None
    assert free_slot(GEN1, IDE, 2) is None


def test_describe_names_the_place_and_the_media() -> None:
    assert describe(BOOT) == "Hard drive on IDE Controller 0, Location 0: /vms/web/boot.qcow2 (QCOW2)"
    assert describe(Drive(DVD, IDE, 1, 0, None)) == "DVD drive on IDE Controller 1, Location 0: no media"
    assert describe(ISO) == "DVD drive on IDE Controller 1, Location 0: image file /iso/debian.iso"
    physical = Drive(HD, SCSI, 2, 7, "/dev/loop3", None, True)
    assert describe(physical) == "Hard drive on SCSI Controller 2, Location 7: physical disk /dev/loop3"


# --- what may change in which state -------------------------------------------------------------


def test_anything_within_the_limits_may_change_while_off() -> None:
    new = StorageLayout(1, 2, (Drive(DVD, IDE, 0, 0, None), DATA, Drive(HD, SCSI, 1, 9, "/e", "raw")))
    assert storage_change_problems(GEN1, new, VmState.OFF) == []


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_scsi_hard_drives_come_and_go_while_running_or_paused(state: VmState) -> None:
    added = with_drives(GEN1, DATA)
    assert storage_change_problems(GEN1, added, state) == []
    assert storage_change_problems(added, GEN1, state) == []
    moved = with_drives(GEN1, dataclasses.replace(DATA, location=5))
    assert storage_change_problems(added, moved, state) == []


@pytest.mark.parametrize("state", ACTIVE_STATES)
def test_dvd_media_may_change_on_ide_and_scsi_while_running(state: VmState) -> None:
    emptied = with_drives(without(GEN1, ISO), dataclasses.replace(ISO, path=None, format=None))
    assert storage_change_problems(GEN1, emptied, state) == []
    gen2 = StorageLayout(2, 1, (Drive(DVD, SCSI, 0, 1, None),))
    loaded = StorageLayout(2, 1, (Drive(DVD, SCSI, 0, 1, "/iso/x.iso", "raw"),))
    assert storage_change_problems(gen2, loaded, state) == []


def test_ide_devices_are_refused_while_running() -> None:
    added = with_drives(GEN1, Drive(HD, IDE, 0, 1, "/d.qcow2", "qcow2"))
    assert storage_change_problems(GEN1, added, VmState.RUNNING) == [
        "The hard drive at IDE Controller 0, Location 1 can't be added while the virtual machine is "
        "running: IDE devices can be added, removed or changed only while it is off. Shut it down "
        "first, or use a SCSI controller."
    ]
    (removed,) = storage_change_problems(GEN1, without(GEN1, BOOT), VmState.PAUSED)
    assert removed.startswith("The hard drive at IDE Controller 0, Location 0 can't be removed while the ")
    assert "virtual machine is paused" in removed
    swapped = with_drives(without(GEN1, BOOT), dataclasses.replace(BOOT, path="/other.qcow2"))
    (changed,) = storage_change_problems(GEN1, swapped, VmState.RUNNING)
    assert "can't be changed while the virtual machine is running" in changed
    (dvd,) = storage_change_problems(GEN1, without(GEN1, ISO), VmState.RUNNING)
    assert dvd.startswith("The DVD drive at IDE Controller 1, Location 0 can't be removed")


def test_controllers_and_scsi_dvd_drives_are_refused_while_running() -> None:
    more = with_drives(GEN1, controllers=2)
    assert storage_change_problems(GEN1, more, VmState.RUNNING) == [
        "SCSI controllers can't be added or removed while the virtual machine is running. Shut it down first."
    ]
    gen2 = StorageLayout(2, 1)
    with_dvd = StorageLayout(2, 1, (Drive(DVD, SCSI, 0, 0, None),))
    assert storage_change_problems(gen2, with_dvd, VmState.RUNNING) == [
        "The DVD drive at SCSI Controller 0, Location 0 can't be added while the virtual machine is "
        "running: only the media of a DVD drive can change. Shut it down first."
    ]
    (replaced,) = storage_change_problems(with_dvd, StorageLayout(2, 1, (DATA,)), VmState.RUNNING)
    assert replaced.startswith("The DVD drive at SCSI Controller 0, Location 0 can't be removed")


def test_nothing_changes_while_saved_or_starting() -> None:
    (saved,) = storage_change_problems(GEN1, with_drives(GEN1, DATA), VmState.SAVED)
    assert saved.startswith(
        "Storage controllers and drives can't be changed while the virtual machine is saved"
    )
    (starting,) = storage_change_problems(GEN1, with_drives(GEN1, DATA), VmState.STARTING)
    assert "while the virtual machine is starting. Wait until it is running or off." in starting
    assert storage_change_problems(GEN1, GEN1, VmState.SAVED) == []


def test_limits_a_vm_already_broke_are_not_blamed_on_a_change() -> None:
    broken = StorageLayout(1, 1, (Drive(DVD, SCSI, 0, 0, None), BOOT))  # DVD on SCSI, made elsewhere
    assert layout_problems(broken)
    assert (
        storage_problems(broken, with_drives(broken, Drive(HD, SCSI, 0, 1, "/e", "raw")), VmState.OFF) == []
    )
    new_problem = with_drives(broken, Drive(HD, SCSI, 0, 1, "/e.vhdx", "vhdx"))
    (problem,) = storage_problems(broken, new_problem, VmState.OFF)
    assert problem.startswith("/e.vhdx:")


def test_settings_change_problems_check_storage_against_the_current_layout() -> None:
    host = HostInfo(
        "qemu:///system", "h", cpus=4, memory_mib=8192, libvirt_version="9.0.0", hypervisor="QEMU"
    )
    config = VmConfig("web", "u-1", "qemu", MemoryConfig(512), processors=1, generation=1)
    change = SettingsChange(storage=with_drives(GEN1, controllers=2))
    args = (config, VmState.RUNNING, change, host, frozenset())
    assert change_problems(*args, storage=GEN1) == [
        "SCSI controllers can't be added or removed while the virtual machine is running. Shut it down first."
    ]
    assert change_problems(*args) == [
        "The storage controllers and drives of this virtual machine could not be read."
    ]
    assert change_problems(config, VmState.OFF, change, host, frozenset(), storage=GEN1) == []


def test_the_layout_modules_need_no_libvirt() -> None:
    code = (
        "import sys, hvmanager.backend.storage_rules, hvmanager.backend.storage_xml_edit, "
        "hvmanager.backend.storage_xml as x; "
        "x.read_layout('<domain><devices/></domain>'); print('libvirt' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- editing the XML ----------------------------------------------------------------------------


def test_adding_a_controller_and_disks_writes_explicit_addresses_and_fresh_names() -> None:
    xml = new_vm_xml(1, DiskPlan(BOOT.path or "", "qcow2"), DiskPlan(ISO.path or "", "raw", "cdrom"))
    new = StorageLayout(
        1,
        2,
        (
            BOOT,
            ISO,
            Drive(HD, IDE, 0, 1, "/d/second.img", "raw"),
            DATA,
            Drive(HD, SCSI, 1, 63, "/dev/loop7", None, True),
        ),
    )
    edited = edit_layout(xml, new)
    assert read_layout(edited) == normalized(new)
    disks = disks_of(edited)
    assert sorted(disks) == ["hda", "hdb", "hdc", "sda", "sdb"]
    assert address(disks["hdb"]) == ("0", "0", "0", "1")
    assert address(disks["sda"]) == ("0", "0", "0", "0")
    assert address(disks["sdb"]) == ("1", "0", "0", "63")
    driver = disks["sda"].find("driver")
    assert driver is not None and driver.attrib == {
        "name": "qemu",
        "type": "qcow2",
        "cache": "writeback",
        "discard": "unmap",
    }
    physical = disks["sdb"]
    assert physical.get("type") == "block" and physical.get("device") == "disk"
    assert physical.find("source").attrib == {"dev": "/dev/loop7"}  # type: ignore[union-attr]
    assert physical.find("driver").attrib == {"name": "qemu", "type": "raw"}  # type: ignore[union-attr]
    controllers = ET.fromstring(edited).findall("devices/controller[@type='scsi']")
    assert [(c.get("index"), c.get("model")) for c in controllers] == [
        ("0", "virtio-scsi"),
        ("1", "virtio-scsi"),
    ]


def test_an_edit_keeps_everything_it_does_not_change() -> None:
    layout = read_layout(FOREIGN)
    grown = with_drives(layout, Drive(HD, SCSI, 1, 3, "/x/new.qcow2", "qcow2"))
    edited = edit_layout(FOREIGN, grown)
    disks = disks_of(edited)
    assert disks["vda"].find("source").get("file") == "/x/virtio.img"  # type: ignore[union-attr]
    assert disks["hdd"].find("serial").text == "KEEP-ME"  # type: ignore[union-attr]
    assert disks["hdd"].find("driver").get("io") == "threads"  # type: ignore[union-attr]
    assert disks["hdd"].find("address") is None  # unchanged: not even an address added
    assert disks["fda"].get("device") == "floppy"
    new_name = next(
        name
        for name, d in disks.items()
        if d.find("source") is not None and d.find("source").get("file") == "/x/new.qcow2"
    )  # type: ignore[union-attr]
    assert new_name not in {"vda", "hdd", "sdj", "sda", "hdc", "fda"} and new_name.startswith("sd")
    models = {
        c.get("index"): c.get("model")
        for c in ET.fromstring(edited).findall("devices/controller[@type='scsi']")
    }
    assert models == {"0": "lsilogic", "1": "virtio-scsi"}
    assert edit_layout(FOREIGN, read_layout(FOREIGN)) == edit_layout(FOREIGN, layout)
    assert read_layout(edit_layout(FOREIGN, layout)) == layout


def test_a_moved_drive_keeps_its_element_with_a_new_address() -> None:
    layout = read_layout(FOREIGN)
    ide = next(d for d in layout.drives if d.path == "/x/ide.qcow2")
    moved = with_drives(without(layout, ide), dataclasses.replace(ide, bus=SCSI, controller=0, location=9))
    edited = edit_layout(FOREIGN, moved)
    assert read_layout(edited) == normalized(moved)
    disk = next(d for d in disks_of(edited).values() if d.find("serial") is not None)
    assert disk.find("target").get("bus") == "scsi"  # type: ignore[union-attr]
    assert disk.find("target").get("dev") not in {"sda", "sdj", "vda"}  # type: ignore[union-attr]
    assert address(disk) == ("0", "0", "0", "9")
    assert disk.find("driver").get("io") == "threads"  # type: ignore[union-attr]


def test_dvd_media_change_keeps_the_drive_and_an_empty_drive_has_no_source() -> None:
    xml = new_vm_xml(1, DiskPlan(ISO.path or "", "raw", "cdrom"))
    emptied = StorageLayout(1, 0, (dataclasses.replace(ISO, path=None, format=None),))
    edited = edit_layout(xml, emptied)
    (disk,) = disks_of(edited).values()
    assert disk.get("device") == "cdrom" and disk.find("source") is None and disk.find("readonly") is not None
    assert disk.find("target").get("dev") == "hdc"  # type: ignore[union-attr]
    assert read_layout(edited) == emptied
    loaded = StorageLayout(1, 0, (dataclasses.replace(ISO, path="/iso/other.iso"),))
    (disk,) = disks_of(edit_layout(edited, loaded)).values()
    assert disk.find("source").get("file") == "/iso/other.iso"  # type: ignore[union-attr]
    element = storage_xml.read_drive_elements(edited)[0]
    media = ET.fromstring(media_xml(element.xml, loaded.drives[0]))
    assert media.find("source").get("file") == "/iso/other.iso"  # type: ignore[union-attr]
    assert media.find("target").get("dev") == "hdc"  # type: ignore[union-attr]


def test_removing_drives_and_controllers() -> None:
    full = StorageLayout(1, 3, (BOOT, ISO, DATA, Drive(HD, SCSI, 2, 0, "/d/c.raw", "raw")))
    xml = edit_layout(new_vm_xml(1), full)
    assert read_layout(xml) == full
    smaller = StorageLayout(1, 1, (ISO, DATA))
    edited = edit_layout(xml, smaller)
    assert read_layout(edited) == smaller
    root = ET.fromstring(edited)
    assert [c.get("index") for c in root.findall("devices/controller[@type='scsi']")] == ["0"]
    assert sorted(disks_of(edited)) == ["hdc", "sda"]


def test_a_new_disk_takes_no_name_in_use_on_any_bus() -> None:
    used = {"hda", "hdb", "sda", "vda"}
    assert storage_xml.free_target(Drive(HD, IDE, 1, 1, "/a", "raw"), used) == "hdd"
    assert storage_xml.free_target(Drive(HD, IDE, 0, 1, "/a", "raw"), used) == "hdc"
    assert storage_xml.free_target(Drive(HD, SCSI, 3, 0, "/a", "raw"), used) == "sdb"
    many = {storage_xml.disk_name("sd", n) for n in range(30)}
    assert storage_xml.free_target(DATA, many) == "sdae"
