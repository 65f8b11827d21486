"""The ``hvctl`` storage verbs: get-/add-/remove-vmharddiskdrive, add-/remove-vmscsicontroller and
get-/add-/set-/remove-vmdvddrive.

The first tests are fast (no daemon): the command lines argparse accepts and refuses. The others
run the installed ``hvctl`` against the real ``qemu:///system`` on VMs made with ``hvctl new-vm``
and check each effect with ``virsh dumpxml --inactive`` (drives, their addresses, the SCSI
controllers); every bad input must exit with status 1, say why, and leave that XML as it was.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from hvmanager.cli.hvctl import parse_args
from tests.conftest import vm_name
from tests.vm.helpers import virsh
from tests.vm.test_hvctl import hvctl, new_vm, ok

# --- fast tests: the command lines --------------------------------------------------------------


def test_the_verbs_parse_their_options() -> None:
    args = parse_args(
        ["add-vmharddiskdrive", "web", "--path", "d.qcow2", "--controller-type", "SCSI", "--location", "3"]
    )
    assert (args.vm, args.path, args.physical, args.controller_type, args.location) == (
        "web",
        "d.qcow2",
        None,
        "scsi",
        3,
    )
    assert args.controller_number is None
    args = parse_args(["set-vmdvddrive", "web", "--controller-number", "1", "--location", "0", "--none"])
    assert (args.none, args.path, args.controller_type) == (True, None, None)
    assert parse_args(["remove-vmscsicontroller", "web", "--controller-number", "2"]).controller_number == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["add-vmharddiskdrive", "web"],  # neither --path nor --physical
        ["add-vmharddiskdrive", "web", "--path", "a", "--physical", "/dev/sdb"],
        ["remove-vmharddiskdrive", "web", "--controller-number", "0", "--location", "0"],  # no type
        ["set-vmdvddrive", "web", "--controller-number", "1", "--location", "0"],  # neither media
        ["add-vmharddiskdrive", "web", "--path", "a", "--controller-type", "sata"],
        ["add-vmharddiskdrive", "web", "--path", "a", "--location", "x"],
    ],
)
def test_incomplete_command_lines_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse_args(argv)
    assert caught.value.code == 2


# --- against the daemon -------------------------------------------------------------------------


def image(folder: Path, name: str, fmt: str = "qcow2", size: str = "16M") -> str:
    path = folder / name
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    return str(path)


def places(name: str) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """{source ("" for none): (device, target bus, (controller, bus, target, unit))} from virsh."""
    found = {}
    for disk in ET.fromstring(virsh("dumpxml", "--inactive", name)).findall("devices/disk"):
        source, target, address = disk.find("source"), disk.find("target"), disk.find("address")
        assert target is not None and address is not None
        key = (source.get("file") or source.get("dev") or "") if source is not None else ""
        unit = tuple(address.get(k, "") for k in ("controller", "bus", "target", "unit"))
        found[key] = (disk.get("device", ""), target.get("bus", ""), unit)
    return found


def scsi_controllers(name: str) -> list[str]:
    root = ET.fromstring(virsh("dumpxml", "--inactive", name))
    return sorted(c.get("index", "") for c in root.findall("devices/controller[@type='scsi']"))


def refused(name: str, *args: str) -> str:
    """Run a verb that must fail: exit status 1, the definition unchanged; returns stderr."""
    before = virsh("dumpxml", "--inactive", name)
    done = hvctl(*args)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("hvctl: error: ")
    assert virsh("dumpxml", "--inactive", name) == before
    return done.stderr


@pytest.mark.usefixtures("clean_domains")
def test_hard_drives_go_to_the_first_free_location_and_come_off_again(vm_location: Path) -> None:
    name = vm_name("cli-storage")
    new_vm(name, vm_location, "--new-vhd-size-gb", "1")
    boot = str(vm_location / name / "Virtual Hard Disks" / f"{name}.qcow2")
    second, third, scsi = (image(vm_location, f"{n}.qcow2") for n in ("second", "third", "scsi"))

    ok("add-vmharddiskdrive", name, "--path", second)
    ok("add-vmharddiskdrive", name, "--path", third)
    ok("add-vmscsicontroller", name)
    out = ok("add-vmharddiskdrive", name, "--path", scsi, "--controller-type", "scsi", "--json")

    assert json.loads(out) == {
        "vm_name": name,
        "controller_type": "SCSI",
        "controller_number": 0,
        "controller_location": 0,
        "path": scsi,
        "format": "qcow2",
        "passthrough": False,
    }
    found = places(name)
    assert found[boot] == ("disk", "ide", ("0", "0", "0", "0"))
    assert found[second] == ("disk", "ide", ("0", "0", "0", "1"))
    assert found[third] == ("disk", "ide", ("0", "1", "0", "0"))
    assert found[scsi] == ("disk", "scsi", ("0", "0", "0", "0"))
    assert scsi_controllers(name) == ["0"]
    table = ok("get-vmharddiskdrive", name).splitlines()
    assert table[0].split() == [
        "VMName",
        "ControllerType",
        "ControllerNumber",
        "ControllerLocation",
        "DiskType",
        "Path",
    ]
    assert table[2].split() == [name, "IDE", "0", "0", "QCOW2", *boot.split()]
    assert table[-1].split() == [name, "SCSI", "0", "0", "QCOW2", scsi]

    out = ok(
        "remove-vmharddiskdrive",
        name,
        "--controller-type",
        "ide",
        "--controller-number",
        "0",
        "--location",
        "1",
    )
    assert "Removed the hard drive at IDE Controller 0, Location 1" in out
    assert second not in places(name) and Path(second).exists()
    assert [r["path"] for r in json.loads(ok("get-vmharddiskdrive", name, "--json"))] == [boot, third, scsi]


@pytest.mark.usefixtures("clean_domains")
def test_dvd_drives_are_added_loaded_emptied_and_removed(vm_location: Path) -> None:
    name = vm_name("cli-dvd")
    new_vm(name, vm_location)
    iso, other = image(vm_location, "a.iso", "raw", "1M"), image(vm_location, "b.iso", "raw", "1M")

    ok("add-vmdvddrive", name, "--path", iso)
    assert places(name)[iso] == ("cdrom", "ide", ("0", "0", "0", "0"))
    ok("set-vmdvddrive", name, "--controller-number", "0", "--location", "0", "--path", other)
    assert places(name)[other] == ("cdrom", "ide", ("0", "0", "0", "0"))
    ok("set-vmdvddrive", name, "--controller-number", "0", "--location", "0", "--none")
    assert places(name)[""] == ("cdrom", "ide", ("0", "0", "0", "0"))
    (record,) = json.loads(ok("get-vmdvddrive", name, "--json"))
    assert (record["controller_type"], record["media_type"], record["path"]) == ("IDE", "None", None)
    assert ok("get-vmdvddrive", name).splitlines()[2].split() == [name, "IDE", "0", "0", "None"]
    ok("remove-vmdvddrive", name, "--controller-number", "0", "--location", "0")
    assert places(name) == {}


@pytest.mark.usefixtures("clean_domains")
def test_bad_input_exits_1_with_the_reason_and_changes_nothing(vm_location: Path) -> None:
    name = vm_name("cli-bad")
    new_vm(name, vm_location, "--new-vhd-size-gb", "1")
    vhdx = image(vm_location, "x.vhdx", "vhdx")
    data = image(vm_location, "data.qcow2")
    regular = vm_location / "plain.txt"
    regular.write_text("not a disk")
    for _ in range(4):
        ok("add-vmscsicontroller", name)
    ok("add-vmharddiskdrive", name, "--path", data, "--controller-type", "scsi", "--controller-number", "3")

    assert "does not exist or is not a file" in refused(
        name, "add-vmharddiskdrive", name, "--path", str(vm_location / "nope.qcow2")
    )
    assert "Virtual machines can't use VHDX disks directly here" in refused(
        name, "add-vmharddiskdrive", name, "--path", vhdx
    )
    assert "at most 4 SCSI controllers" in refused(name, "add-vmscsicontroller", name)
    assert "SCSI Controller 3, Location 0 already holds a hard drive" in refused(
        name,
        "add-vmharddiskdrive",
        name,
        "--path",
        vhdx,
        "--controller-type",
        "scsi",
        "--controller-number",
        "3",
        "--location",
        "0",
    )
    assert "SCSI locations are 0 to 63" in refused(
        name,
        "add-vmharddiskdrive",
        name,
        "--path",
        str(regular),
        "--controller-type",
        "scsi",
        "--location",
        "64",
    )
    assert "is not a block device" in refused(name, "add-vmharddiskdrive", name, "--physical", str(regular))
    assert "has no hard drive at IDE Controller 1, Location 1" in refused(
        name,
        "remove-vmharddiskdrive",
        name,
        "--controller-type",
        "ide",
        "--controller-number",
        "1",
        "--location",
        "1",
    )
    assert "still has 1 drive(s)" in refused(
        name, "remove-vmscsicontroller", name, "--controller-number", "3"
    )
    assert "has no DVD drive at IDE Controller 0, Location 0" in refused(
        name, "set-vmdvddrive", name, "--controller-number", "0", "--location", "0", "--none"
    )
    assert "No virtual machine named" in refused(name, "get-vmharddiskdrive", vm_name("cli-missing"))

    ok("remove-vmscsicontroller", name, "--controller-number", "1")
    assert scsi_controllers(name) == ["0", "1", "2"]
    assert places(name)[data] == ("disk", "scsi", ("2", "0", "0", "0"))  # controller 3 became 2
