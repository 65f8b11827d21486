"""Deleting a VM that has checkpoints: with its disks, every checkpoint file goes too; without,
the checkpoints are merged first so the kept disk holds the VM's current state (as Hyper-V)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from hvmanager.backend import checkpoints, creation, operations
from hvmanager.backend.connection import Server
from hvmanager.backend.models import MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.paths import vm_folders
from tests.conftest import vm_name
from tests.vm.helpers import domain_exists, virsh


def _vm_with_branches(server: Server, location: Path, label: str) -> tuple[Any, str]:
    spec = VmSpec(name=vm_name(label), location=str(location), memory=MemoryConfig(256), disk=NewDisk(1))
    dom = server.conn.lookupByUUIDString(
        creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    )
    base = _active(dom)
    first = checkpoints.take(server.conn, dom, "first").checkpoint
    _write(_active(dom), 0x11)
    checkpoints.take(server.conn, dom, "second")
    checkpoints.apply(server.conn, dom, first.id)
    _write(_active(dom), 0x22)  # the current state, on another branch
    checkpoints.take(server.conn, dom, "third")
    _write(_active(dom), 0x33)
    return dom, base


def _active(dom: Any) -> str:
    return virsh("domblklist", dom.name()).splitlines()[2].split(None, 1)[1].strip()


def _write(file: str, pattern: int) -> None:
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} 0 64k", file], check=True, capture_output=True
    )


def test_delete_with_disks_removes_every_checkpoint_file(server: Server, vm_location: Path) -> None:
    dom, _base = _vm_with_branches(server, vm_location, "ckpt-del-all")
    name = dom.name()
    operations.delete(server.conn, dom, delete_disks=True)
    assert not domain_exists(name)
    assert not vm_folders(vm_location, name).root.exists(), "nothing is left of the VM"


def test_delete_keeping_disks_merges_current_state_into_them(server: Server, vm_location: Path) -> None:
    dom, base = _vm_with_branches(server, vm_location, "ckpt-del-keep")
    folders = vm_folders(vm_location, dom.name())
    operations.delete(server.conn, dom, delete_disks=False)
    assert sorted(p.name for p in folders.disks.iterdir()) == [Path(base).name], (
        "only the VM's own disk is left"
    )
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x33 0 64k", base], check=True, capture_output=True
    )
    info = subprocess.run(
        ["qemu-img", "info", "-f", "qcow2", base], check=True, capture_output=True, text=True
    )
    assert "backing file" not in info.stdout
    assert not list(folders.snapshots.glob("*")) if folders.snapshots.exists() else True
