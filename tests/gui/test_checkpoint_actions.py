"""Checkpoint actions of the main window on real VMs: Apply with each of Hyper-V's three answers,
Revert, Delete Checkpoint Subtree, deletes that queue behind each other with "Merging (n %)" in the
Status column, and a running guest reverted to its memory. virsh, qemu-img and qemu-io (and the
guest's serial output) confirm each step; the watchdog reports the longest GUI stall.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox, QPushButton

from hvmanager.backend import checkpoint_journal, checkpoints
from hvmanager.backend.checkpoint_tree import NOW, CheckpointType
from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.connection import Server
from hvmanager.ui.checkpoint_dialogs import (
    APPLY_TEXT,
    DELETE_SUBTREE_TEXT,
    DELETE_TEXT,
    ApplyCheckpointDialog,
    DeleteCheckpointDialog,
)
from hvmanager.views.checkpoints_pane import NO_CHECKPOINTS
from hvmanager.views.vm_table_model import Column
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.table import cell, names, select
from tests.gui.test_checkpoints_pane import (
    DiskVm,
    _keep_the_loop_when_the_window_closes,  # noqa: F401  (autouse fixture)
    active_disk,
    backing_files,
    click_action,
    click_row,
    create_disk_vm,
    disk_vm_for,
    idle,
    metadata_names,
    modal,
    open_vm,
    outline,
    take_with_gui,
    visible_tree,
)
from tests.support.testdriver import SHUTOFF, write_node
from tests.vm.helpers import domstate, last_tick, serial_text

MIB = 1024 * 1024


@pytest.fixture
def disk_vm(clean_domains: str, vm_location: Path, request: pytest.FixtureRequest) -> DiskVm:
    """A VM that is off, with a disk and no checkpoints."""
    return disk_vm_for(request, clean_domains, vm_location)


def exists(path: str) -> bool:
    return Path(path).exists()


def qemu_io(path: str, command: str, write: bool = False) -> subprocess.CompletedProcess[str]:
    """Run one qemu-io command on an image of a VM that is off (read-only unless ``write``)."""
    args = ["qemu-io", "-f", "qcow2", *([] if write else ["-r"]), "-c", command, path]
    return subprocess.run(args, capture_output=True, text=True, check=False)


def has_pattern(path: str, pattern: int, offset: int, length: int = MIB) -> bool:
    """Whether the disk read through ``path`` holds ``pattern`` at ``offset`` (qemu-io's check)."""
    done = qemu_io(path, f"read -P {pattern:#x} {offset} {length}")
    output = done.stdout + done.stderr
    if "Pattern verification failed" in output:
        return False
    assert done.returncode == 0 and "read " in output, output
    return True


def write_pattern(path: str, pattern: int, offset: int) -> None:
    done = qemu_io(path, f"write -P {pattern:#x} {offset} {MIB}", write=True)
    assert done.returncode == 0 and "wrote " in done.stdout, done.stdout + done.stderr


def qemu_img_check(path: str) -> None:
    done = subprocess.run(["qemu-img", "check", "-U", path], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def now_file(window: Any) -> str | None:
    """The file the pane's tree says the running state writes to (read by the app, not virsh)."""
    image = window.checkpoints.model.tree.now_images.get("hda")
    return image.file if image else None


def now_parent(window: Any) -> str | None:
    return window.checkpoints.model.tree.now_parent()


async def select_checkpoint(qtbot: Any, window: Any, checkpoint_id: str) -> None:
    click_row(qtbot, window, checkpoint_id)
    await wait_until(window.actions_pane.checkpoint_block.isVisible, 5, "the checkpoint block")


async def answer_apply(window: Any, button: str) -> None:
    """Apply... on the selected checkpoint, answered with one of the dialog's buttons."""
    click_action(window.actions_pane.checkpoint_block, "Apply...")
    dialog = await wait_until(lambda: modal(ApplyCheckpointDialog), 10, "the Apply Checkpoint dialog")
    assert dialog.windowTitle() == "Apply Checkpoint" and dialog.text() == APPLY_TEXT
    labels = sorted(b.text() for b in dialog.buttons())
    assert labels == ["Apply", "Cancel", "Take Checkpoint and Apply"]
    dialog.findChild(QPushButton, button).click()


def test_apply_with_each_answer(
    run: Any, make_window: Any, disk_vm: DiskVm, qtbot: Any, watchdog: Any
) -> None:
    window = make_window(SYSTEM_URI)
    name = disk_vm.name

    async def body() -> None:
        await open_vm(window, disk_vm)
        first = await take_with_gui(window, 1)
        second = await take_with_gui(window, 2)
        await idle(window, disk_vm)
        before = await asyncio.to_thread(active_disk, name)
        assert first.images["hda"].file == str(disk_vm.base_disk)

        # Cancel changes nothing.
        await select_checkpoint(qtbot, window, first.id)
        await answer_apply(window, "cancelButton")
        await settle()
        assert await asyncio.to_thread(active_disk, name) == before
        assert now_parent(window) == second.id

        # Apply: Now moves under the first checkpoint, on a new disk over its image; the discarded
        # state's differencing disk is deleted.
        await answer_apply(window, "applyButton")
        await wait_until(lambda: now_parent(window) == first.id, 30, "Now under the first checkpoint")
        await idle(window, disk_vm)
        applied = await asyncio.to_thread(active_disk, name)
        assert applied != before and not await asyncio.to_thread(exists, before)
        assert await asyncio.to_thread(backing_files, applied) == [applied, str(disk_vm.base_disk)]
        assert outline(window) == [(0, first.name), (1, second.name), (1, "Now")]

        # Take Checkpoint and Apply: the current state becomes a checkpoint (a branch under the
        # first), then Now moves under the second.
        await select_checkpoint(qtbot, window, second.id)
        await answer_apply(window, "takeAndApplyButton")
        await wait_until(
            lambda: len(visible_tree(window)) == 3 and now_parent(window) == second.id, 30, "the new branch"
        )
        await idle(window, disk_vm)
        third = next(c for c in visible_tree(window) if c.id not in (first.id, second.id))
        assert third.parent == first.id and third.images["hda"].file == applied
        assert await asyncio.to_thread(exists, applied)
        assert outline(window) == [(0, first.name), (1, second.name), (2, "Now"), (1, third.name)]
        current = await asyncio.to_thread(active_disk, name)
        assert await asyncio.to_thread(backing_files, current) == [
            current,
            second.images["hda"].file,
            str(disk_vm.base_disk),
        ]
        assert sorted(await asyncio.to_thread(metadata_names, name)) == sorted(
            [first.name, second.name, third.name]
        )
        await settle()

    run(body)


def test_revert_discards_the_current_state(run: Any, make_window: Any, disk_vm: DiskVm) -> None:
    window = make_window(SYSTEM_URI)
    name = disk_vm.name

    async def body() -> None:
        await open_vm(window, disk_vm)
        taken = await take_with_gui(window, 1)
        await idle(window, disk_vm)
        current = await asyncio.to_thread(active_disk, name)
        await asyncio.to_thread(write_pattern, current, 0x5A, 0)
        assert await asyncio.to_thread(has_pattern, current, 0x5A, 0)

        click_action(window.actions_pane.vm_block, "Revert...")
        box = await wait_until(lambda: modal(QMessageBox), 10, "the Revert question")
        assert box.windowTitle() == "Revert Virtual Machine"
        assert taken.name in box.text() and "the current state will be lost" in box.text()
        box.button(QMessageBox.StandardButton.Cancel).click()
        await settle()
        assert await asyncio.to_thread(active_disk, name) == current

        click_action(window.actions_pane.vm_block, "Revert...")
        box = await wait_until(lambda: modal(QMessageBox), 10, "the Revert question")
        box.findChild(QPushButton, "confirmButton").click()
        await wait_until(lambda: now_file(window) != current, 30, "a new differencing disk")
        await idle(window, disk_vm)
        reverted = await asyncio.to_thread(active_disk, name)
        assert not await asyncio.to_thread(exists, current)
        assert await asyncio.to_thread(backing_files, reverted) == [reverted, str(disk_vm.base_disk)]
        assert not await asyncio.to_thread(has_pattern, reverted, 0x5A, 0)
        assert await asyncio.to_thread(has_pattern, reverted, 0, 0)  # the base disk's zeros again
        assert now_parent(window) == taken.id
        await settle()

    run(body)


def test_delete_subtree_merges_and_removes_rows_and_files(
    run: Any, make_window: Any, disk_vm: DiskVm, qtbot: Any, watchdog: Any
) -> None:
    window = make_window(SYSTEM_URI)
    name = disk_vm.name

    async def write_now(pattern: int, offset: int) -> None:
        await asyncio.to_thread(write_pattern, await asyncio.to_thread(active_disk, name), pattern, offset)

    async def body() -> None:
        await open_vm(window, disk_vm)
        first = await take_with_gui(window, 1)
        await idle(window, disk_vm)
        await write_now(0x11, 0)
        second = await take_with_gui(window, 2)
        await idle(window, disk_vm)
        await write_now(0x22, MIB)
        third = await take_with_gui(window, 3)
        await idle(window, disk_vm)
        await write_now(0x33, 2 * MIB)
        assert len(list(disk_vm.disk_folder.iterdir())) == 4

        await select_checkpoint(qtbot, window, second.id)
        click_action(window.actions_pane.checkpoint_block, "Delete Checkpoint Subtree...")
        dialog = await wait_until(lambda: modal(DeleteCheckpointDialog), 20, "the Delete dialog")
        assert dialog.windowTitle() == "Delete Checkpoint Subtree"
        assert dialog.question.text() == DELETE_SUBTREE_TEXT
        assert dialog.space.text().startswith("Merging may need up to ")
        assert str(disk_vm.disk_folder) in dialog.space.text()
        assert dialog.warning.isHidden()
        dialog.findChild(QPushButton, "okButton").click()

        await wait_until(lambda: outline(window) == [(0, first.name), (1, "Now")], 60, "the subtree to go")
        await idle(window, disk_vm)
        kept = second.images["hda"].file  # the first checkpoint's differencing disk takes it all
        assert sorted(p.name for p in disk_vm.disk_folder.iterdir()) == sorted(
            [disk_vm.base_disk.name, Path(kept).name]
        )
        assert await asyncio.to_thread(active_disk, name) == kept
        await asyncio.to_thread(qemu_img_check, kept)
        for pattern, offset in ((0x11, 0), (0x22, MIB), (0x33, 2 * MIB)):
            assert await asyncio.to_thread(has_pattern, kept, pattern, offset), hex(pattern)
        assert [p.name for p in disk_vm.snapshots.iterdir()] == [first.id]
        assert await asyncio.to_thread(metadata_names, name) == [first.name]
        assert third.id not in window.checkpoints.model.tree.checkpoints
        await settle()

    run(body)


def test_deletes_queue_and_show_merge_progress(
    run: Any, make_window: Any, disk_vm: DiskVm, qtbot: Any, watchdog: Any
) -> None:
    window = make_window(SYSTEM_URI)
    name = disk_vm.name
    statuses: list[str] = []
    release, holding = threading.Event(), threading.Event()

    def hold_lock() -> None:  # another program (hvctl, say) works on the VM's checkpoints
        with checkpoint_journal.vm_lock(disk_vm.uuid):
            holding.set()
            release.wait(120)

    def record_status(*_args: Any) -> None:
        text = cell(window, name, Column.STATUS)
        if not statuses or statuses[-1] != text:
            statuses.append(text)

    async def delete(checkpoint_id: str) -> None:
        await select_checkpoint(qtbot, window, checkpoint_id)
        click_action(window.actions_pane.checkpoint_block, "Delete Checkpoint...")
        dialog = await wait_until(lambda: modal(DeleteCheckpointDialog), 20, "the Delete dialog")
        assert dialog.question.text() == DELETE_TEXT
        dialog.findChild(QPushButton, "okButton").click()

    async def body() -> None:
        await open_vm(window, disk_vm)
        first = await take_with_gui(window, 1)
        second = await take_with_gui(window, 2)
        await idle(window, disk_vm)
        await asyncio.to_thread(write_pattern, await asyncio.to_thread(active_disk, name), 0x22, 0)
        window.model_for(SYSTEM_URI).dataChanged.connect(record_status)
        holder = threading.Thread(target=hold_lock, daemon=True)
        holder.start()
        try:
            await asyncio.to_thread(holding.wait, 10)
            await delete(second.id)
            await wait_until(lambda: cell(window, name, Column.STATUS) == "Deleting checkpoint", 10)
            await delete(first.id)
            await wait_until(
                lambda: cell(window, name, Column.STATUS) == "Deleting checkpoint; Merge queued", 10
            )
            assert len(visible_tree(window)) == 2  # nothing happened while the lock was held
        finally:
            release.set()
            await asyncio.to_thread(holder.join, 10)
        await wait_until(lambda: not visible_tree(window), 120, "both checkpoints to go")
        await idle(window, disk_vm)
        assert any(re.fullmatch(r"Merging \(\d+ %\)(; Merge queued)?", text) for text in statuses), statuses
        assert window.checkpoints.message.isVisible() and window.checkpoints.message.text() == NO_CHECKPOINTS
        # Everything merged back into the VM's own disk.
        assert [p.name for p in disk_vm.disk_folder.iterdir()] == [disk_vm.base_disk.name]
        assert await asyncio.to_thread(active_disk, name) == str(disk_vm.base_disk)
        assert await asyncio.to_thread(has_pattern, str(disk_vm.base_disk), 0x22, 0)
        assert await asyncio.to_thread(metadata_names, name) == []
        await settle()

    run(body)


@pytest.mark.vm
def test_running_guest_reverts_to_its_memory(
    run: Any, make_window: Any, clean_domains: str, vm_location: Path, test_guest: Any, watchdog: Any
) -> None:
    vm = create_disk_vm(clean_domains, vm_location, vm_name("cp-running"), test_guest)
    serial = vm.folder / "Virtual Machines" / "serial.log"
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        await open_vm(window, vm)
        click_action(window.actions_pane.vm_block, "Start")
        await wait_until(lambda: "HVTEST: tick 2" in serial_text(serial), 90, "the guest to boot and tick")

        taken = await take_with_gui(window, 1)
        assert taken.memory and taken.vm_state == "Running"
        assert await asyncio.to_thread(domstate, vm.name) == "running"
        await idle(window, vm)
        tick_at_checkpoint = last_tick(serial_text(serial))
        await wait_until(lambda: last_tick(serial_text(serial)) >= tick_at_checkpoint + 3, 60, "more ticks")
        offset = len(serial_text(serial))
        before = await asyncio.to_thread(active_disk, vm.name)

        click_action(window.actions_pane.vm_block, "Revert...")
        box = await wait_until(lambda: modal(QMessageBox), 10, "the Revert question")
        box.findChild(QPushButton, "confirmButton").click()
        await wait_until(lambda: cell(window, vm.name, Column.STATE) == "Running", 60, "Running again")
        await wait_until(lambda: now_file(window) != before, 60, "the new differencing disk")
        await idle(window, vm)
        assert await asyncio.to_thread(domstate, vm.name) == "running"
        # The guest resumed from the checkpoint's memory: no boot, and its clock went back.
        await wait_until(lambda: "HVTEST: tick" in serial_text(serial)[offset:], 60, "ticks after the revert")
        after = serial_text(serial)[offset:]
        assert "HVTEST: booted" not in after
        first_tick_after = int(re.search(r"HVTEST: tick (\d+)", after).group(1))  # type: ignore[union-attr]
        assert first_tick_after <= tick_at_checkpoint + 2
        assert window.checkpoints.model.tree.now_parent() == taken.id
        assert window.checkpoints.model.index_of(NOW).isValid()
        await settle()

    run(body)


def test_remote_servers_refuse_checkpoints_with_the_reason(
    run: Any, make_window: Any, tmp_path: Path
) -> None:
    uri = write_node(tmp_path / "node.xml", [("beta", SHUTOFF, False)])
    window = make_window(uri)

    async def body() -> None:
        await wait_until(lambda: names(window) == ["beta"], 20, "the VM list")
        select(window, "beta")
        await wait_until(lambda: window.checkpoints.message.isVisible(), 20, "the checkpoints read")
        assert window.checkpoints.message.text() == NO_CHECKPOINTS
        click_action(window.actions_pane.vm_block, "Checkpoint")
        box = await wait_until(lambda: modal(QMessageBox), 10, "the error")
        assert box.objectName() == "errorDialog" and box.windowTitle() == "Checkpoint 'beta'"
        assert box.text() == (
            "Checkpoints work on VMs of this computer only.\n"
            "Connect to the server's own hvmanager (or use hvctl there)."
        )
        box.button(QMessageBox.StandardButton.Close).click()
        await settle()
        assert cell(window, "beta", Column.STATUS) == ""

    run(body)


@pytest.mark.vm
def test_production_checkpoint_fallback_is_explained(
    run: Any, make_window: Any, clean_domains: str, vm_location: Path, test_guest: Any
) -> None:
    """A running guest without an agent, set to production checkpoints: the window takes a
    standard one, as Hyper-V does, and says why."""
    vm = create_disk_vm(clean_domains, vm_location, vm_name("cp-fallback"), test_guest)
    serial = vm.folder / "Virtual Machines" / "serial.log"
    server = Server(clean_domains)
    server.open()
    try:
        checkpoints.set_policy(
            server.conn, server.lookup(vm.uuid), CheckpointPolicy(CheckpointType.PRODUCTION)
        )
    finally:
        server.close()
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        await open_vm(window, vm)
        click_action(window.actions_pane.vm_block, "Start")
        await wait_until(lambda: "HVTEST: ready" in serial_text(serial), 90, "the guest to boot")
        taken = await take_with_gui(window, 1)
        box = await wait_until(lambda: modal(QMessageBox), 30, "the explanation")
        assert "standard checkpoint was taken instead of a production one" in box.text()
        assert "guest agent did not answer" in box.text()
        assert not taken.production and taken.memory
        box.button(QMessageBox.StandardButton.Close).click()
        await idle(window, vm)
        await settle()

    run(body)
