"""The installed ``hvctl`` executable against the real ``qemu:///system``, checked with virsh.

Most VMs here have no operating system: with no bootable disk they sit in the firmware, which is
enough for state changes. The last test boots the tiny test guest (tests/support/guest.py) to see
an ACPI shutdown through ``stop-vm --wait``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SYSTEM_URI, TEST_PREFIX, vm_name
from tests.vm.helpers import dominfo, domstate, virsh

pytestmark = pytest.mark.vm

GIB = 1024**3


def hvctl_path() -> str:
    """The ``hvctl`` entry point of the environment running the tests."""
    beside = Path(sys.executable).with_name("hvctl")
    found = str(beside) if beside.exists() else shutil.which("hvctl")
    if not found:
        pytest.fail("hvctl is not installed: run '.venv/bin/pip install -e .'")
    return found


def hvctl(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``hvctl --connect qemu:///system ARGS`` (stdin is not a terminal)."""
    done = subprocess.run(
        [hvctl_path(), "--connect", SYSTEM_URI, *args],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(*args: str, timeout: float = 180) -> str:
    """Run hvctl, require success, return its standard output."""
    done = hvctl(*args, timeout=timeout)
    assert done.returncode == 0, f"hvctl {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def all_names() -> set[str]:
    return {n for n in virsh("list", "--all", "--name").split() if n}


def hvtest_names() -> set[str]:
    return {n for n in all_names() if n.startswith(TEST_PREFIX)}


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def get_vm_json(name: str) -> dict[str, Any]:
    (record,) = json.loads(ok("get-vm", name, "--json"))
    assert isinstance(record, dict)
    return record


def table_row(text: str, name: str) -> list[str]:
    """The cells of ``name``'s row in a get-vm table (Status may contain spaces)."""
    lines = text.splitlines()
    assert lines[0].split() == [
        "Name",
        "State",
        "CPUUsage(%)",
        "MemoryAssigned(M)",
        "Uptime",
        "Status",
    ]
    for line in lines[2:]:
        cells = line.split(None, 5)
        if cells[0] == name:
            return cells
    raise AssertionError(f"{name} not in:\n{text}")


def new_vm(name: str, location: Path, *extra: str) -> str:
    """Create a VM with hvctl; returns its UUID as printed."""
    out = ok("new-vm", name, "--path", str(location), "--memory-startup", "128", *extra)
    pairs = (line.split(" : ", 1) for line in out.splitlines() if " : " in line)
    fields = {key.strip(): value.strip() for key, value in pairs}
    assert fields["Name"] == name
    return fields["Id"]


@pytest.mark.usefixtures("clean_domains")
def test_lifecycle_from_creation_to_removal(vm_location: Path) -> None:
    name, new_name = vm_name("cli-life"), vm_name("cli-renamed")
    uuid = new_vm(name, vm_location, "--new-vhd-size-gb", "1")
    disk = vm_location / name / "Virtual Hard Disks" / f"{name}.qcow2"

    info = dominfo(name)
    assert info["UUID"] == uuid
    assert info["State"] == "shut off"
    assert info["Max memory"] == "131072 KiB"
    assert str(disk) in virsh("dumpxml", name)
    image = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", "-U", str(disk)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert image["format"] == "qcow2" and image["virtual-size"] == GIB

    assert ok("start-vm", name) == f"Started '{name}'.\n"
    assert domstate(name) == "running"
    row = table_row(ok("get-vm"), name)
    assert row[1] == "Running" and row[3] == "128" and row[5] == "Operating normally"
    assert 0 <= int(row[2]) <= 100 and row[4].count(":") == 2

    ok("suspend-vm", name)
    assert domstate(name) == "paused"
    assert table_row(ok("get-vm", name), name)[1] == "Paused"
    ok("resume-vm", name)
    assert domstate(name) == "running"

    ok("save-vm", name)
    assert domstate(name) == "shut off"
    assert dominfo(name)["Managed save"] == "yes"
    assert get_vm_json(name)["state"] == "Saved"

    ok("start-vm", name)
    assert domstate(name) == "running"
    assert dominfo(name)["Managed save"] == "no"
    assert ok("restart-vm", name) == f"Reset '{name}'.\n"
    assert domstate(name) == "running"
    ok("stop-vm", name, "--turn-off")
    assert domstate(name) == "shut off"

    assert ok("rename-vm", name, new_name) == f"Renamed '{name}' to '{new_name}'.\n"
    assert new_name in all_names() and name not in all_names()
    record = get_vm_json(new_name)
    assert record["uuid"] == uuid and record["state"] == "Off"
    assert record["memory_startup_mib"] == 128 and record["processors"] == 1
    assert record["generation"] == 1 and record["dynamic_memory"] is False
    assert (record["cpu_usage"], record["memory_assigned_mib"], record["uptime_s"]) == (0, 0, 0)
    assert record["path"] == str(vm_location / name)  # folders keep their names
    assert record["hard_drives"] == [str(disk)]

    out = ok("remove-vm", new_name, "--delete-disks", "--force")
    assert f"Removed virtual machine '{new_name}'." in out
    assert f"Deleted: {disk}" in out
    assert new_name not in all_names()
    assert not disk.exists()
    assert not (vm_location / name).exists()


@pytest.mark.usefixtures("clean_domains")
def test_get_vm_json_of_a_running_vm(vm_location: Path) -> None:
    name = vm_name("cli-json")
    uuid = new_vm(name, vm_location, "--processors", "2", "--notes", "made by hvctl")
    ok("start-vm", name)
    record = get_vm_json(name)
    assert record["uuid"] == uuid and record["state"] == "Running"
    assert record["memory_assigned_mib"] == 128 and record["processors"] == 2
    assert isinstance(record["cpu_usage"], int) and 0 <= record["cpu_usage"] <= 100
    assert isinstance(record["uptime_s"], int) and record["uptime_s"] >= 0
    assert record["notes"] == "made by hvctl" and record["hard_drives"] == []
    ok("stop-vm", name, "--turn-off")


@pytest.mark.usefixtures("clean_domains")
def test_stop_vm_wait_fails_when_the_guest_ignores_acpi(vm_location: Path) -> None:
    name = vm_name("cli-deaf")
    new_vm(name, vm_location)
    ok("start-vm", name)
    done = hvctl("stop-vm", name, "--wait", "3")
    assert done.returncode == 1
    assert f"hvctl: error: '{name}' did not shut down within 3 s" in done.stderr
    assert "--turn-off" in done.stderr
    assert domstate(name) == "running"
    assert ok("stop-vm", name, "--turn-off") == f"Turned off '{name}'.\n"
    assert domstate(name) == "shut off"


@pytest.mark.usefixtures("clean_domains")
def test_several_names_go_on_after_a_failure(vm_location: Path) -> None:
    first, second = vm_name("cli-one"), vm_name("cli-two")
    missing = vm_name("cli-missing")
    new_vm(first, vm_location)
    new_vm(second, vm_location)
    done = hvctl("start-vm", first, missing, second)
    assert done.returncode == 1
    assert f"No virtual machine named '{missing}' on {SYSTEM_URI}." in done.stderr
    assert domstate(first) == domstate(second) == "running"
    ok("stop-vm", f"{TEST_PREFIX}cli-*-{os.getpid()}", "--turn-off")  # a wildcard
    assert domstate(first) == domstate(second) == "shut off"


@pytest.mark.usefixtures("clean_domains")
def test_remove_vm_without_force_and_terminal_is_refused(vm_location: Path) -> None:
    name = vm_name("cli-keep")
    new_vm(name, vm_location, "--new-vhd-size-gb", "1")
    done = hvctl("remove-vm", name, "--delete-disks")
    assert done.returncode == 1
    assert "standard input is not a terminal" in done.stderr and "--force" in done.stderr
    assert name in all_names()
    out = ok("remove-vm", name, "--force")
    disk = vm_location / name / "Virtual Hard Disks" / f"{name}.qcow2"
    assert f"Kept:    {disk} (--delete-disks was not given)" in out
    assert disk.exists() and name not in all_names()


def long_name(length: int) -> str:
    """A test VM name of ``length`` characters (ending with the pid, as ``vm_name`` does)."""
    suffix = f"-{os.getpid()}"
    return TEST_PREFIX + "x" * (length - len(TEST_PREFIX) - len(suffix)) + suffix


@pytest.mark.usefixtures("clean_domains")
@pytest.mark.parametrize(
    ("label", "extra", "message"),
    [
        (None, [], "The name is 101 characters long; the limit is 100."),
        ("cli-mem", ["--memory-startup", "33"], "Startup memory must be a multiple of 2 MB."),
        ("cli-disk", ["--new-vhd-size-gb", "0"], "A virtual hard disk must be at least 3 MB."),
        (
            "cli-net",
            ["--switch", "hvtest-no-such-switch"],
            "There is no virtual switch named 'hvtest-no-such-switch' on this server.",
        ),
        ("cli-exists", [], "A virtual machine named '{name}' already exists on this server."),
    ],
)
def test_new_vm_bad_input_exits_1_and_creates_nothing(
    vm_location: Path, label: str | None, extra: list[str], message: str
) -> None:
    new_vm(vm_name("cli-exists"), vm_location)
    name = vm_name(label) if label else long_name(101)
    names, files = hvtest_names(), tree(vm_location)
    done = hvctl("new-vm", name, *extra, "--path", str(vm_location))
    assert done.returncode == 1
    assert done.stderr.startswith("hvctl: error: ")
    assert message.format(name=name) in done.stderr
    assert done.stdout == ""
    assert hvtest_names() == names
    assert tree(vm_location) == files


@pytest.mark.usefixtures("clean_domains")
def test_kernel_boot_and_acpi_shutdown_with_wait(vm_location: Path) -> None:
    """Needs the test guest of tests/support/guest.py (built once, then cached)."""
    from tests.support.guest import build_test_guest, wait_for_serial

    guest = build_test_guest()
    name = vm_name("cli-boot")
    new_vm(
        name,
        vm_location,
        "--kernel",
        str(guest.kernel),
        "--initrd",
        str(guest.initrd),
        "--cmdline",
        guest.cmdline,
    )
    ok("start-vm", name)
    log_element = ET.fromstring(virsh("dumpxml", name)).find("devices/serial/log")
    assert log_element is not None
    serial_log = Path(log_element.get("file", ""))
    assert serial_log == vm_location / name / "Virtual Machines" / "serial.log"
    wait_for_serial(serial_log, "HVTEST: booted", 180)
    # The power button works once acpid runs in the guest; it says so with "ready".
    wait_for_serial(serial_log, "HVTEST: ready", 60)
    out = ok("stop-vm", name, "--wait", "60", timeout=90)
    assert out == f"Asked '{name}' to shut down.\n'{name}' is off.\n"
    assert domstate(name) == "shut off"
    assert "HVTEST: acpi power button" in serial_log.read_text(errors="replace")
