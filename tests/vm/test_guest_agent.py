"""A real QEMU guest agent in the test guest, with the system libvirt daemon: the Heartbeat is "OK"
when the agent answers, and a production checkpoint freezes the guest's file systems through it
(libvirt's ``VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE``) and captures no memory.

The guest runs ``hvtest.mountdisk=sda hvtest.agent`` (see ``tests/support/guest.py``): an ext2 file
system on its disk, mounted, with the guest's periodic writeback off, and ``qemu-ga`` on libvirt's
agent channel with an fsfreeze hook that prints ``HVTEST: fsfreeze freeze|thaw``.

How the freeze is observed, from the strongest observer down:

1. The checkpoint's disk image itself. The test writes a file in the guest through the agent
   (``guest-file-write``; closing it does not sync); QEMU's own counters (``virsh domblkstat``) show
   the guest wrote nothing to its disk since, so the file exists only in the guest's page cache.
   A freeze syncs the file system first, and nothing else in the guest would: if the image the
   checkpoint froze holds the file (read with ``qemu-img`` and ``debugfs`` on the host, and
   ``e2fsck`` finds that file system consistent), the guest flushed it at the checkpoint. The
   control, in the same test: a standard checkpoint taken just before (memory, no freeze) leaves
   the file out of its image.
2. The guest's serial console: the hook's lines show qemu-ga got the freeze and the thaw request.
3. qemu-ga reports the file systems thawed afterwards (``guest-fsfreeze-status``).

Production checkpoints of a guest without an agent (fall back to standard with a reason; refused
under "production only") are tested in ``test_checkpoint_policy.py``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt
import pytest
from PySide6.QtCore import Qt

from hvmanager.backend import checkpoints, guest_agent, inventory
from hvmanager.backend.checkpoint_tree import CheckpointType
from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import InvalidStateError
from hvmanager.backend.models import Heartbeat
from hvmanager.backend.paths import VmFolders, vm_folders
from hvmanager.views.vm_table_model import Column
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import wait_until
from tests.gui.table import row_of
from tests.vm.conftest import create_guest_vm
from tests.vm.helpers import domstate, qemu_img_info, serial_text, virsh, wait_serial

pytestmark = pytest.mark.vm

AGENT_PORT = "org.qemu.guest_agent.0"
MOUNTED_FS_MIB = 64  # hvtest.mountdisk formats the first 64 MiB of the disk
TOKEN_NAME = "hvtest-token"


# --- observers ----------------------------------------------------------------------------------


def agent_command(name: str, command: str, arguments: dict[str, Any] | None = None) -> Any:
    """Run a guest agent command through libvirt (``virsh qemu-agent-command``); its ``return``."""
    message: dict[str, Any] = {"execute": command}
    if arguments is not None:
        message["arguments"] = arguments
    return json.loads(virsh("qemu-agent-command", name, json.dumps(message)))["return"]


def write_in_guest(name: str, path: str, data: bytes) -> None:
    """Write a file in the guest with the agent's file commands (buffered: nothing syncs it)."""
    handle = agent_command(name, "guest-file-open", {"path": path, "mode": "w"})
    agent_command(name, "guest-file-write", {"handle": handle, "buf-b64": base64.b64encode(data).decode()})
    agent_command(name, "guest-file-close", {"handle": handle})


def written_bytes(name: str, target: str = "hda") -> int:
    """Bytes the guest has written to a disk, as QEMU counts them (``virsh domblkstat``)."""
    for line in virsh("domblkstat", name, target).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "wr_bytes":
            return int(parts[2])
    raise AssertionError(f"no wr_bytes for {target} of {name}")


def disk_file(name: str, target: str = "hda") -> str:
    for line in virsh("domblklist", name).splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == target:
            return parts[1].strip()
    raise AssertionError(f"no disk {target}")


def agent_channel_states(name: str) -> list[str | None]:
    """The ``state`` of the VM's guest agent channels in ``virsh dumpxml``."""
    root = ET.fromstring(virsh("dumpxml", name))
    return [t.get("state") for t in root.iterfind("devices/channel/target") if t.get("name") == AGENT_PORT]


@dataclass(frozen=True)
class GuestFileSystem:
    """The guest's mounted file system as stored in one disk image (chain), read on the host."""

    token: bytes | None  # the file TOKEN_NAME, None when the image has no such file
    fsck_code: int
    fsck_output: str


def read_guest_file_system(image: str, scratch: Path) -> GuestFileSystem:
    """Extract the guest's file system from ``image`` (through its backing chain) and inspect it."""
    raw = scratch / f"fs-{uuid.uuid4().hex[:8]}.raw"
    fmt = qemu_img_info(Path(image))["format"]
    dd = ["qemu-img", "dd", "-U", "-f", fmt, "-O", "raw", "bs=1M", f"count={MOUNTED_FS_MIB}"]
    subprocess.run([*dd, f"if={image}", f"of={raw}"], check=True, capture_output=True)
    cat = subprocess.run(["debugfs", "-R", f"cat /{TOKEN_NAME}", str(raw)], capture_output=True, check=False)
    found = cat.returncode == 0 and b"not found" not in cat.stderr
    fsck = subprocess.run(["e2fsck", "-f", "-n", str(raw)], capture_output=True, text=True, check=False)
    raw.unlink()
    return GuestFileSystem(cat.stdout if found else None, fsck.returncode, fsck.stdout + fsck.stderr)


# --- the guest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentVm:
    """A running test guest with its agent started and its disk mounted."""

    dom: Any
    name: str
    folders: VmFolders


@pytest.fixture
def agent_vm(
    server: Server, vm_location: Path, test_guest: Any, request: pytest.FixtureRequest
) -> Iterator[AgentVm]:
    """A VM made with the backend, with a 1 GiB disk, booting the guest with its agent running."""
    name = vm_name(request.node.name.removeprefix("test_")[:30])
    dom = create_guest_vm(server, vm_location, name, test_guest, "hvtest.mountdisk=sda hvtest.agent")
    folders = vm_folders(vm_location, name)
    dom.create()
    text = wait_serial(folders.serial_log, "HVTEST: ready")
    assert "HVTEST: mounted /dev/sda on /mnt/sda" in text, text
    assert "HVTEST: agent started" in text, text
    yield AgentVm(dom, name, folders)
    if dom.isActive():
        dom.destroy()


# --- tests --------------------------------------------------------------------------------------


def test_agent_answers_and_heartbeat_shows_ok(
    agent_vm: AgentVm, run: Any, make_window: Any, qtbot: Any
) -> None:
    name = agent_vm.name

    assert agent_command(name, "guest-ping") == {}
    commands = {c["name"]: c["enabled"] for c in agent_command(name, "guest-info")["supported_commands"]}
    assert commands["guest-fsfreeze-freeze"] and commands["guest-fsfreeze-thaw"]
    assert agent_channel_states(name) == ["connected"]
    assert inventory.agent_connected(agent_vm.dom) is True
    assert guest_agent.heartbeat(agent_vm.dom) is Heartbeat.OK

    window = make_window(SYSTEM_URI)

    def click_on_vm() -> bool:
        """Click the VM's row (other sessions' VMs may come and go: the row is looked up each time)."""
        row = row_of(window, name)
        if row is None:
            return False
        index = window.table.model().index(row, Column.NAME)
        window.table.scrollTo(index)  # as a user scrolls to it among many VMs
        cell = window.table.visualRect(index)
        qtbot.mouseClick(window.table.viewport(), Qt.MouseButton.LeftButton, pos=cell.center())
        return bool(window.selected_uuids() == [agent_vm.dom.UUIDString()])

    async def body() -> None:
        await wait_until(lambda: row_of(window, name) is not None, 30, "the VM in the list")
        await wait_until(click_on_vm, 10, "the VM selected")
        heartbeat = window.details_pane.summary.values["heartbeat"]
        await wait_until(lambda: heartbeat.text() == "OK", 30, "Heartbeat OK")

    run(body)


def test_production_checkpoint_freezes_the_guest_file_systems(
    server: Server, agent_vm: AgentVm, tmp_path: Path
) -> None:
    conn, dom, name, log = server.conn, agent_vm.dom, agent_vm.name, agent_vm.folders.serial_log
    token = f"written before the checkpoints {uuid.uuid4()}\n".encode()
    before = written_bytes(name)
    write_in_guest(name, f"/mnt/sda/{TOKEN_NAME}", token)
    assert written_bytes(name) == before, "the file is in the guest's page cache only, not on its disk"

    # The control: a standard checkpoint (memory, no freeze) leaves the file out of its image.
    checkpoints.set_policy(conn, dom, CheckpointPolicy(CheckpointType.STANDARD))
    offset = len(serial_text(log))
    standard = checkpoints.take(conn, dom, "Standard").checkpoint
    assert standard.memory and not standard.production
    assert written_bytes(name) == before
    assert read_guest_file_system(standard.images["hda"].file, tmp_path).token is None
    assert "HVTEST: fsfreeze" not in serial_text(log)[offset:]

    checkpoints.set_policy(conn, dom, CheckpointPolicy(CheckpointType.PRODUCTION_ONLY))
    current = disk_file(name)  # Now's overlay over the standard checkpoint
    offset = len(serial_text(log))

    result = checkpoints.take(conn, dom, "Production")

    taken = result.checkpoint
    assert result.fallback_reason == ""
    assert taken.production and not taken.memory and taken.vm_state == "Running"
    assert domstate(name) == "running"
    assert not (agent_vm.folders.snapshots / taken.id / "memory.save").exists()
    # The agent was asked to freeze, then to thaw ...
    text = wait_serial(log, "HVTEST: fsfreeze thaw", 30, after=offset)[offset:]
    assert text.index("HVTEST: fsfreeze freeze") < text.index("HVTEST: fsfreeze thaw")
    assert agent_command(name, "guest-fsfreeze-status") == "thawed"
    # ... and the freeze flushed the file system: the guest wrote its disk during the checkpoint,
    # and the image the checkpoint froze holds the file, in a consistent file system.
    assert written_bytes(name) > before
    image = taken.images["hda"].file
    assert image == current
    overlay = disk_file(name)
    assert overlay != image and qemu_img_info(Path(overlay))["full-backing-filename"] == image
    frozen = read_guest_file_system(image, tmp_path)
    assert frozen.token == token, "the checkpoint's image holds what the guest had only in its cache"
    assert frozen.fsck_code == 0, frozen.fsck_output

    # Applying it: a production checkpoint has no memory, so the VM is off, on a new overlay
    # over the checkpoint's image, which still holds the file.
    checkpoints.apply(conn, dom, taken.id)

    assert domstate(name) == "shut off"
    applied = disk_file(name)
    assert applied not in (image, overlay)
    assert qemu_img_info(Path(applied))["full-backing-filename"] == image
    assert read_guest_file_system(applied, tmp_path).token == token


def test_hung_agent_falls_back_or_refuses_within_seconds(agent_vm: AgentVm, server: Server) -> None:
    """A connected agent that no longer answers (stopped with SIGSTOP in the guest) must not hang
    the checkpoint: production falls back to standard with the reason, production-only refuses."""
    dom = agent_vm.dom
    agent_command(
        agent_vm.name, "guest-exec", {"path": "/bin/sh", "arg": ["-c", "kill -STOP $(pidof qemu-ga)"]}
    )
    assert agent_channel_states(agent_vm.name) == ["connected"], "the channel still looks fine"
    deadline = time.monotonic() + 30  # guest-exec returns before the kill has run
    while guest_agent.heartbeat(dom) is not Heartbeat.LOST:
        assert time.monotonic() < deadline, "Heartbeat: Lost communication"

    checkpoints.set_policy(server.conn, dom, CheckpointPolicy(CheckpointType.PRODUCTION_ONLY))
    # The ping or, if that still got through, the freeze times out.
    with pytest.raises(InvalidStateError, match="A production checkpoint could not be taken"):
        checkpoints.take(server.conn, dom, "production only")
    assert not checkpoints.load_tree(dom).checkpoints

    checkpoints.set_policy(server.conn, dom, CheckpointPolicy(CheckpointType.PRODUCTION))
    result = checkpoints.take(server.conn, dom, "falls back")
    assert "standard checkpoint was taken instead of a production one" in result.fallback_reason
    assert not result.checkpoint.production and result.checkpoint.memory
    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
