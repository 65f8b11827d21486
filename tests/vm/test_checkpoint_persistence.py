"""The checkpoint tree lives with the VM: a new process (an app restart) and a restarted libvirt
daemon find the same tree, and it still works (apply, delete) afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hvmanager.backend import checkpoints, creation
from hvmanager.backend.connection import Server
from hvmanager.backend.models import MemoryConfig, NewDisk, VmSpec
from tests.conftest import SYSTEM_URI, ensure_libvirtd, vm_name
from tests.vm.helpers import virsh
from tests.vm.test_hvctl import hvctl
from tests.vm.test_live_updates import _stop_daemon


def _tree_json(name: str) -> dict[str, object]:
    done = hvctl("get-vmcheckpoint", name, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _active(name: str) -> str:
    return virsh("domblklist", name).splitlines()[2].split(None, 1)[1].strip()


def _write(file: str, pattern: int) -> None:
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} 0 64k", file], check=True, capture_output=True
    )


def _read(file: str, pattern: int) -> None:
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-r", "-c", f"read -P {pattern} 0 64k", file],
        check=True,
        capture_output=True,
    )


@pytest.mark.daemon
def test_tree_survives_app_and_daemon_restarts(server: Server, vm_location: Path) -> None:
    spec = VmSpec(
        name=vm_name("ckpt-persist"), location=str(vm_location), memory=MemoryConfig(256), disk=NewDisk(1)
    )
    dom = server.conn.lookupByUUIDString(
        creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    )
    name = dom.name()
    _write(_active(name), 0x11)
    first = checkpoints.take(server.conn, dom, "first").checkpoint
    _write(_active(name), 0x22)
    checkpoints.take(server.conn, dom, "second")
    checkpoints.apply(server.conn, dom, first.id)
    checkpoints.take(server.conn, dom, "branch")
    before = _tree_json(name)

    _stop_daemon()
    ensure_libvirtd()

    assert _tree_json(name) == before, "another process reads the same tree after the daemon restarted"
    fresh = Server(SYSTEM_URI)
    fresh.open()
    try:
        again = fresh.conn.lookupByName(name)
        second = next(c for c in checkpoints.load_tree(again).visible() if c.name == "second")
        checkpoints.apply(fresh.conn, again, second.id)
        _read(_active(name), 0x22)
        checkpoints.delete(fresh.conn, again, first.id, subtree=True)
        _read(_active(name), 0x22)
        assert not checkpoints.load_tree(again).checkpoints
    finally:
        fresh.close()
