"""Validation of a new VM page by page, folders, settings persistence and the action table."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from hvmanager.backend import paths, vmspec
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
from hvmanager.backend.settings import AppSettings, load_settings, save_settings
from hvmanager.backend.vmactions import VmAction, allowed, state_problem

CTX = vmspec.HostContext(
    existing_names=frozenset({"taken"}), host_memory_mib=8192, host_cpus=2, networks=("lab",)
)


def _spec(tmp_path: Path, **changes: object) -> VmSpec:
    values: dict[str, object] = {"name": "vm1", "location": str(tmp_path)}
    values.update(changes)
    return VmSpec(**values)  # type: ignore[arg-type]


def test_a_plain_spec_is_fine(tmp_path: Path) -> None:
    assert vmspec.spec_problems(_spec(tmp_path, disk=NewDisk(127)), CTX) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "taken"}, "already exists"),
        ({"location": "relative/path"}, "not an absolute path"),
        ({"memory": MemoryConfig(9000)}, "at most 8192 MB"),
        ({"processors": 3}, "2 logical processors"),
        ({"network": "nope"}, "no virtual switch named 'nope'"),
        ({"disk": NewDisk(0)}, "at least 3 MB"),
        ({"disk": NewDisk(3000, "vpc")}, "2040 GB"),
        ({"disk": NewDisk(1, "qcow2", name="x.vhdx")}, "must end with .qcow2"),
        ({"disk": ExistingDisk("/no/such/disk.qcow2")}, "does not exist"),
        ({"install": IsoInstall("/tmp/image.img")}, "(.iso)"),
        ({"install": NetworkInstall()}, "needs a network connection"),
        ({"install": KernelBoot("")}, "Choose a Linux kernel"),
        ({"generation": 3}, "must be 1 or 2"),
    ],
)
def test_each_problem_is_named(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    problems = vmspec.spec_problems(_spec(tmp_path, **changes), CTX)
    assert problems and message in problems[0]


def test_existing_disk_file_and_nonempty_vm_folder_are_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, disk=NewDisk(1))
    disk = Path(vmspec.new_disk_path(spec, NewDisk(1)))
    disk.parent.mkdir(parents=True)
    disk.write_text("")
    assert "already exists" in (vmspec.disk_problem(spec, CTX) or "")
    assert "not empty" in (vmspec.name_location_problem("vm1", str(tmp_path), CTX) or "")


def test_folder_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert "is a file" in (paths.folder_problem(str(tmp_path / "file" / "sub")) or "")


def test_folder_the_qemu_user_cannot_reach() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as base:  # pytest's tmp_path is under a 0700 folder
        os.chmod(base, 0o755)
        private = Path(base) / "private"
        private.mkdir(mode=0o700)
        problem = paths.folder_problem(str(private / "vms"), "nobody")
        assert problem is not None and "QEMU user (nobody) can't reach" in problem
        os.chmod(private, 0o755)
        assert paths.folder_problem(str(private / "vms"), "nobody") is None


def test_vm_folders_layout(tmp_path: Path) -> None:
    folders = paths.vm_folders(tmp_path, "web")
    assert [p.name for p in folders.all()] == ["web", "Virtual Machines", "Virtual Hard Disks", "Snapshots"]
    assert folders.serial_log == tmp_path / "web" / "Virtual Machines" / "serial.log"


def test_remote_servers_skip_local_file_checks() -> None:
    remote = vmspec.HostContext(networks=("lab",), local=False)
    spec = VmSpec(name="r", location="/remote/only", install=IsoInstall("/remote/x.iso"), disk=NewDisk(10))
    assert vmspec.spec_problems(spec, remote) == []


def test_settings_round_trip_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVMANAGER_CONFIG_DIR", str(tmp_path / "cfg"))
    assert load_settings().servers == ["qemu:///system"]  # first start: the local server
    settings = AppSettings(servers=["test:///default"], vm_folder="/srv/vms", stats_interval_ms=3000)
    save_settings(settings)
    assert load_settings() == settings
    (tmp_path / "cfg" / "settings.json").write_text("{not json")
    assert load_settings() == AppSettings()
    assert AppSettings(stats_interval_ms=10).problems()
    assert AppSettings(vm_folder="relative").problems()


@pytest.mark.parametrize(
    ("action", "state", "ok"),
    [
        (VmAction.START, VmState.OFF, True),
        (VmAction.START, VmState.SAVED, True),
        (VmAction.START, VmState.RUNNING, False),
        (VmAction.SHUT_DOWN, VmState.PAUSED, False),
        (VmAction.SAVE, VmState.PAUSED, True),
        (VmAction.DELETE, VmState.RUNNING, False),
        (VmAction.DELETE_SAVED_STATE, VmState.SAVED, True),
        (VmAction.CONNECT, VmState.RUNNING, False),
    ],
)
def test_action_table(action: VmAction, state: VmState, ok: bool) -> None:
    assert allowed(action, state) is ok
    assert (state_problem(action, "vm", state) is None) is ok


def test_state_problem_says_why() -> None:
    assert state_problem(VmAction.RENAME, "vm", VmState.RUNNING) == (
        "Can't rename 'vm' while it is Running (libvirt renames a virtual machine only while it is off, "
        "without a saved state)."
    )
