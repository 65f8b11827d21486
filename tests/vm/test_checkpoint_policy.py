"""The per-VM checkpoint policy on the system libvirt daemon: what ``set_policy`` and the Settings
dialog's ``apply_settings`` accept, and what ``take`` does for each checkpoint type, including a
running guest that has no guest agent (production checkpoints fall back to standard ones, or are
refused). Checked with ``virsh`` and ``qemu-img``.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import checkpoint_journal, checkpoints, creation
from hvmanager.backend.checkpoint_tree import CheckpointType
from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.connection import Server
from hvmanager.backend.domxml import METADATA_NS
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.models import MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.vmsettings import SettingsChange, apply_settings
from tests.conftest import vm_name
from tests.vm.conftest import GuestVm
from tests.vm.helpers import domstate, virsh, wait_serial

STANDARD = CheckpointPolicy(CheckpointType.STANDARD)


# --- observers ----------------------------------------------------------------------------------


def inactive_xml(name: str) -> str:
    return virsh("dumpxml", "--inactive", name)


def policy_in_libvirt(name: str) -> dict[str, str]:
    element = ET.fromstring(inactive_xml(name)).find(
        f"metadata/{{{METADATA_NS}}}vm/{{{METADATA_NS}}}checkpoints"
    )
    return dict(element.attrib) if element is not None else {}


def checkpoint_names_in_libvirt(name: str) -> list[str]:
    """Names of the checkpoints in the tree kept in the domain's metadata."""
    root = ET.fromstring(inactive_xml(name))
    return sorted(e.get("name", "") for e in root.iter() if e.tag.endswith("}checkpoint"))


def disk_file(name: str, target: str) -> str:
    for line in virsh("domblklist", name).splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == target:
            return parts[1].strip()
    raise AssertionError(f"no disk {target}")


def backing_of(file: str) -> str | None:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", file], capture_output=True, text=True, check=True
    ).stdout
    backing: str | None = json.loads(out).get("full-backing-filename")
    return backing


def files_under(folder: Path) -> set[str]:
    return {str(p) for p in folder.rglob("*")}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def off_vm(server: Server, vm_location: Path, request: pytest.FixtureRequest) -> Any:
    """A VM that stays off, with a new 1 GB QCOW2 disk (hda)."""
    name = vm_name(request.node.name.removeprefix("test_")[:30])
    spec = VmSpec(name=name, location=str(vm_location), memory=MemoryConfig(128), disk=NewDisk(1))
    return server.lookup(creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg")))


@pytest.fixture
def running_guest(server: Server, guest_vm: GuestVm) -> Any:
    """The test guest (no guest agent in it) with a data disk vda, started and ready."""
    disk = guest_vm.folder / "Virtual Hard Disks" / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    virsh("attach-disk", guest_vm.name, str(disk), "vda", "--subdriver", "qcow2", "--config")
    dom = server.lookup(guest_vm.uuid)
    dom.create()
    wait_serial(guest_vm.serial_log, "HVTEST: ready")
    return dom


# --- set_policy ---------------------------------------------------------------------------------


def test_set_policy_moves_the_location_only_while_there_are_no_checkpoints(
    server: Server, off_vm: Any, vm_location: Path
) -> None:
    name = off_vm.name()
    elsewhere = vm_location / "elsewhere"
    elsewhere.mkdir()
    checkpoints.set_policy(server.conn, off_vm, CheckpointPolicy(CheckpointType.STANDARD, str(elsewhere)))
    assert policy_in_libvirt(name) == {"type": "standard", "location": str(elsewhere)}
    checkpoints.set_policy(server.conn, off_vm, STANDARD)
    checkpoints.take(server.conn, off_vm, "First")
    before = inactive_xml(name)

    with pytest.raises(ValidationError, match="only while the VM has no checkpoints"):
        checkpoints.set_policy(server.conn, off_vm, CheckpointPolicy(CheckpointType.STANDARD, str(elsewhere)))

    assert inactive_xml(name) == before
    checkpoints.set_policy(server.conn, off_vm, CheckpointPolicy(CheckpointType.PRODUCTION))
    assert policy_in_libvirt(name) == {"type": "production", "location": ""}
    assert checkpoint_names_in_libvirt(name) == ["First"]


def test_take_is_refused_while_checkpoints_are_disabled(
    server: Server, off_vm: Any, vm_location: Path
) -> None:
    name = off_vm.name()
    checkpoints.set_policy(server.conn, off_vm, CheckpointPolicy(CheckpointType.DISABLED))
    files = files_under(vm_location)
    disk = disk_file(name, "hda")

    with pytest.raises(InvalidStateError, match="Checkpoints are disabled"):
        checkpoints.take(server.conn, off_vm, "Refused")

    assert files_under(vm_location) == files
    assert disk_file(name, "hda") == disk
    assert checkpoint_names_in_libvirt(name) == []


# --- production checkpoints and the guest agent -------------------------------------------------


def test_production_checkpoints_of_a_guest_without_agent(
    server: Server, running_guest: Any, guest_vm: GuestVm
) -> None:
    conn, dom, name = server.conn, running_guest, guest_vm.name
    disk = disk_file(name, "vda")
    files = files_under(guest_vm.folder)

    checkpoints.set_policy(conn, dom, CheckpointPolicy(CheckpointType.PRODUCTION_ONLY))
    with pytest.raises(InvalidStateError, match="guest agent did not answer") as refused:
        checkpoints.take(conn, dom, "Production only")
    assert "allow standard checkpoints" in refused.value.hint
    assert domstate(name) == "running"
    assert disk_file(name, "vda") == disk  # still writing to its old image
    assert files_under(guest_vm.folder) == files  # no overlay, no checkpoint folder left behind
    assert checkpoint_names_in_libvirt(name) == []

    checkpoints.set_policy(conn, dom, CheckpointPolicy(CheckpointType.PRODUCTION))
    result = checkpoints.take(conn, dom, "Falls back")
    assert result.fallback_reason.startswith("A standard checkpoint was taken instead of a production one")
    assert not result.checkpoint.production and result.checkpoint.memory
    assert domstate(name) == "running"
    overlay = disk_file(name, "vda")
    assert overlay != disk and backing_of(overlay) == disk
    memory = guest_vm.folder / "Snapshots" / result.checkpoint.id / "memory.save"
    assert memory.stat().st_size > 0
    assert checkpoint_names_in_libvirt(name) == ["Falls back"]

    # Off, nothing runs in the guest: a production checkpoint needs no agent.
    dom.destroy()
    result = checkpoints.take(conn, dom, "Off")
    assert result.checkpoint.production and not result.checkpoint.memory
    assert result.fallback_reason == ""


# --- the Settings dialog's apply_settings -------------------------------------------------------


def test_settings_keep_the_checkpoint_tree_and_wait_for_no_merge(
    server: Server, off_vm: Any, vm_location: Path
) -> None:
    name, host = off_vm.name(), server.host_info()
    checkpoints.take(server.conn, off_vm, "Kept")

    apply_settings(server.conn, off_vm, SettingsChange(processors=2), host)

    assert "<vcpu placement='static'>2</vcpu>" in inactive_xml(name)
    assert checkpoint_names_in_libvirt(name) == ["Kept"]
    before = inactive_xml(name)
    with checkpoint_journal.vm_lock(off_vm.UUIDString()), pytest.raises(checkpoint_journal.ChainBusyError):
        apply_settings(server.conn, off_vm, SettingsChange(processors=1), host)
    assert inactive_xml(name) == before


def test_settings_refuse_a_bad_location_and_change_nothing(
    server: Server, off_vm: Any, vm_location: Path
) -> None:
    name, host = off_vm.name(), server.host_info()
    before = inactive_xml(name)

    for location, reason in [
        ("relative", "'relative' is not an absolute path"),
        (str(vm_location / "missing"), "does not exist or is not a folder"),
    ]:
        change = SettingsChange(
            processors=2, checkpoint_policy=CheckpointPolicy(CheckpointType.STANDARD, location)
        )
        with pytest.raises(ValidationError, match=reason):
            apply_settings(server.conn, off_vm, change, host)
        assert inactive_xml(name) == before

    checkpoints.take(server.conn, off_vm, "Locks the location")
    before = inactive_xml(name)
    change = SettingsChange(checkpoint_policy=CheckpointPolicy(CheckpointType.STANDARD, str(vm_location)))
    with pytest.raises(ValidationError, match="it has 1 checkpoint"):
        apply_settings(server.conn, off_vm, change, host)
    assert inactive_xml(name) == before

    apply_settings(
        server.conn, off_vm, SettingsChange(checkpoint_policy=CheckpointPolicy(CheckpointType.DISABLED)), host
    )
    assert policy_in_libvirt(name) == {"type": "disabled", "location": ""}
