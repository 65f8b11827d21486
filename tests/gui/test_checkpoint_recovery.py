"""The application, started after another one died in the middle of a merge, completes that
merge when it shows the VM's checkpoints (the journal says what was going on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import checkpoint_journal, checkpoints
from hvmanager.backend.connection import Server
from tests.conftest import SYSTEM_URI
from tests.gui.conftest import wait_until
from tests.gui.test_checkpoints_pane import DiskVm, disk_vm_for, open_vm
from tests.vm.helpers import virsh

_DELETE = """
import sys, libvirt
from hvmanager.backend import checkpoints
conn = libvirt.open("qemu:///system")
checkpoints.delete(conn, conn.lookupByUUIDString(sys.argv[1]), sys.argv[2])
"""


def _merge_started(journal: Path) -> bool:
    try:
        return '"op": "merge"' in journal.read_text()
    except FileNotFoundError:
        return False


def _crash_in_a_merge(vm: DiskVm) -> str:
    """Checkpoint, 512 MiB written after it, then a delete whose process is killed mid-merge."""
    server = Server(SYSTEM_URI)
    server.open()
    try:
        dom = server.lookup(vm.uuid)
        taken = checkpoints.take(server.conn, dom, "to merge").checkpoint
        overlay = checkpoints.load_tree(dom).now_images["hda"].file
    finally:
        server.close()
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 0x3c 0 512M", overlay], check=True, capture_output=True
    )
    child = subprocess.Popen(
        [sys.executable, "-c", _DELETE, vm.uuid, taken.id],
        cwd=Path(__file__).parents[2],
        start_new_session=True,
    )
    journal = vm.snapshots / checkpoint_journal.JOURNAL_FILE
    deadline = time.monotonic() + 60
    while not _merge_started(journal) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _merge_started(journal)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert Path(overlay).exists() and journal.exists()
    return overlay


@pytest.fixture
def disk_vm(clean_domains: str, vm_location: Path, request: pytest.FixtureRequest) -> DiskVm:
    """A VM that is off, with a disk and no checkpoints."""
    return disk_vm_for(request, clean_domains, vm_location)


def test_window_completes_a_merge_a_crash_interrupted(run: Any, make_window: Any, disk_vm: DiskVm) -> None:
    overlay = _crash_in_a_merge(disk_vm)
    journal = disk_vm.snapshots / checkpoint_journal.JOURNAL_FILE
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        await open_vm(window, disk_vm)
        await wait_until(
            lambda: not journal.exists() and not Path(overlay).exists(), 60, "the merge completed"
        )
        await wait_until(lambda: not window.checkpoints.model.tree.visible(), 20, "an empty tree")

    run(body)
    blocks = virsh("domblklist", disk_vm.name)
    assert str(disk_vm.base_disk) in blocks
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-r", "-c", "read -P 0x3c 0 512M", str(disk_vm.base_disk)],
        check=True,
        capture_output=True,
    )
