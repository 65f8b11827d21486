"""Which VM uses a disk, on the real daemon: a VM (defined, then started paused) with a disk of its
own and a differencing child of another disk; the file, its parent, links to it and an unrelated
file. ``virsh domblklist`` is the independent observer of what the VM's configuration holds."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend import vhd
from hvmanager.backend.disk_usage import DiskUser, running_user, users_of
from hvmanager.backend.vhd_types import DiskType, NewVhd
from tests.conftest import vm_name
from tests.vm.helpers import disk_domain_xml, virsh

MIB = 1024 * 1024


@pytest.fixture
def loop_device(vm_location: Path) -> Iterator[Path]:
    """A loop device over a file of the test (detached afterwards)."""
    backing = vm_location / "loop.img"
    with open(backing, "wb") as handle:
        handle.truncate(8 * MIB)
    done = subprocess.run(
        ["losetup", "-f", "--show", str(backing)], capture_output=True, text=True, check=True
    )
    device = Path(done.stdout.strip())
    yield device
    subprocess.run(["losetup", "-d", str(device)], check=False)


@pytest.fixture
def conn(clean_domains: str) -> Iterator[Any]:
    connection = libvirt.open(clean_domains)
    yield connection
    connection.close()


def test_users_of_a_disk_its_parent_and_an_unrelated_file(
    conn: Any, vm_location: Path, loop_device: Path
) -> None:
    own = vhd.create(NewVhd(str(vm_location / "own.qcow2"), "qcow2", DiskType.DYNAMIC, 16 * MIB))
    base = vhd.create(NewVhd(str(vm_location / "base.vhd"), "vpc", DiskType.DYNAMIC, 16 * MIB))
    child = vhd.create(
        NewVhd(str(vm_location / "child.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=base.path)
    )
    unrelated = vhd.create(NewVhd(str(vm_location / "other.qcow2"), "qcow2", DiskType.DYNAMIC, 16 * MIB))
    name = vm_name("disk-usage")
    disks = [
        (Path(own.path), "qcow2", "vda", "virtio"),
        (Path(child.path), "qcow2", "vdb", "virtio"),
        (loop_device, "raw", "vdc", "virtio"),
    ]
    dom = conn.defineXML(disk_domain_xml(name, disks))
    uuid = dom.UUIDString()
    listed = virsh("domblklist", name)
    assert own.path in listed and child.path in listed and base.path not in listed

    assert users_of(conn, own.path) == [DiskUser(name, uuid, False, "vda")]
    assert users_of(conn, child.path) == [DiskUser(name, uuid, False, "vdb")]
    assert users_of(conn, base.path) == [DiskUser(name, uuid, False, "vdb")]  # through the child's chain
    assert users_of(conn, str(loop_device)) == [DiskUser(name, uuid, False, "vdc")]
    assert users_of(conn, str(vm_location / "loop.img")) == []  # the file behind it is another thing
    assert users_of(conn, unrelated.path) == []
    assert users_of(conn, str(vm_location / "missing.qcow2")) == []
    assert running_user(conn, base.path) is None

    link = vm_location / "link-to-own.qcow2"
    link.symlink_to(own.path)
    hard = vm_location / "hard-link-to-base.vhd"
    hard.hardlink_to(base.path)
    assert users_of(conn, str(link)) == [DiskUser(name, uuid, False, "vda")]
    assert users_of(conn, str(hard)) == [DiskUser(name, uuid, False, "vdb")]

    dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)  # QEMU opens the disks; nothing boots
    try:
        assert virsh("domstate", name) == "paused"
        assert running_user(conn, base.path) == DiskUser(name, uuid, True, "vdb")
        assert running_user(conn, own.path) == DiskUser(name, uuid, True, "vda")
        assert running_user(conn, str(loop_device)) == DiskUser(name, uuid, True, "vdc")
        assert running_user(conn, unrelated.path) is None
    finally:
        dom.destroy()
    assert running_user(conn, base.path) is None
