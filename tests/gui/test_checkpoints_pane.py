"""The Checkpoints pane of the main window on the real libvirt daemon: checkpoints taken with the
Checkpoint action build the tree with its Now row, selecting one shows its summary and its block of
actions, Settings and Disk Chain show what it holds, inline rename checks the name, and changes
made outside the window show up by themselves. virsh and qemu-img confirm what the window says.

The helpers here are shared with ``test_checkpoint_actions.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication, QDialog, QLineEdit, QMessageBox, QToolBar, QTreeWidget

from hvmanager.backend import checkpoints, creation
from hvmanager.backend.checkpoint_tree import CHECKPOINTS_NS, NOW, Checkpoint
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.vmactions import VmAction
from hvmanager.ui.actions import CheckpointAction
from hvmanager.views.checkpoint_tree_model import CheckpointColumn, CheckpointRole
from hvmanager.views.checkpoints_pane import NO_CHECKPOINTS
from hvmanager.views.vm_table_model import Column
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.table import cell, row_of
from tests.vm.helpers import backing_chain, virsh

# --- shared helpers ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _keep_the_loop_when_the_window_closes(qapp: QApplication) -> Iterator[None]:
    """Closing the test's only window must not quit the application's event loop.

    The checkpoint operations redefine the domain, and libvirt's events for that may still be
    on their way when the window closes; the window fixture then waits for the work they start,
    and Qt's quit on the last window closed would stop the loop under it.
    """
    quits = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    yield
    qapp.setQuitOnLastWindowClosed(quits)


@dataclass(frozen=True)
class DiskVm:
    """A VM with a 1 GiB qcow2 disk, defined and off."""

    name: str
    uuid: str
    folder: Path

    @property
    def disk_folder(self) -> Path:
        return self.folder / "Virtual Hard Disks"

    @property
    def base_disk(self) -> Path:
        return self.disk_folder / f"{self.name}.qcow2"

    @property
    def snapshots(self) -> Path:
        return self.folder / "Snapshots"


def create_disk_vm(uri: str, location: Path, name: str, guest: Any = None) -> DiskVm:
    """Create a VM with the backend (the window is what is tested, not the wizard)."""
    server = Server(uri)
    server.open()
    try:
        install = KernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline) if guest else None
        spec = VmSpec(
            name=name, location=str(location), memory=MemoryConfig(256), disk=NewDisk(1), install=install
        )
        uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    finally:
        server.close()
    return DiskVm(name, uuid, location / name)


def disk_vm_for(request: pytest.FixtureRequest, uri: str, location: Path) -> DiskVm:
    """A VM that is off, with a disk and no checkpoints, named after the test."""
    return create_disk_vm(uri, location, vm_name(request.node.name.removeprefix("test_")[:30]))


@pytest.fixture
def disk_vm(clean_domains: str, vm_location: Path, request: pytest.FixtureRequest) -> DiskVm:
    """A VM that is off, with a disk and no checkpoints."""
    return disk_vm_for(request, clean_domains, vm_location)


async def open_vm(window: Any, vm: DiskVm) -> None:
    """Select the VM in the list and wait until its checkpoints were read."""
    await wait_until(lambda: window.select_vm(vm.uuid), 20, "the VM in the list")
    await wait_until(lambda: window.checkpoint_commands.tree is not None, 20, "the checkpoint tree")


def click_action(block: Any, label: str) -> None:
    """Click a visible, enabled entry of an Actions pane block, as a user does."""
    buttons = [b for b in block.buttons() if b.defaultAction().text() == label and b.isVisible()]
    assert buttons, f"no visible {label} entry in {block.objectName()}"
    assert buttons[0].isEnabled(), f"{label} is disabled"
    buttons[0].click()


def visible_tree(window: Any) -> list[Checkpoint]:
    """The checkpoints the pane shows, oldest first."""
    return window.checkpoints.model.tree.visible()


def outline(window: Any) -> list[tuple[int, str]]:
    """The pane's rows depth-first as (depth, name), "Now" for the Now row."""
    model = window.checkpoints.model
    return [(depth, model.index_of(key).data()) for depth, key in model.outline()]


def click_row(qtbot: Any, window: Any, key: str, button: Qt.MouseButton = Qt.MouseButton.LeftButton) -> None:
    """Click a row of the checkpoint tree (a checkpoint id, or NOW)."""
    tree = window.checkpoints.tree
    index = window.checkpoints.model.index_of(key)
    assert index.isValid(), f"no row for {key}"
    tree.scrollTo(index)
    qtbot.mouseClick(tree.viewport(), button, pos=tree.visualRect(index).center())


async def take_with_gui(window: Any, count: int) -> Checkpoint:
    """Click Checkpoint in the VM block; returns the new checkpoint once the pane shows it."""
    click_action(window.actions_pane.vm_block, "Checkpoint")
    await wait_until(lambda: len(visible_tree(window)) == count, 30, f"{count} checkpoints in the pane")
    return visible_tree(window)[-1]


async def idle(window: Any, vm: DiskVm) -> None:
    """Wait until no checkpoint operation of the VM runs or waits, and its Status is blank."""
    controller = window.current
    await wait_until(lambda: not controller.checkpoints.busy(vm.uuid), 120, "the checkpoint operation")
    await wait_until(lambda: cell(window, vm.name, Column.STATUS) == "", 20, "the Status column to clear")


def active_disk(name: str) -> str:
    """The file the VM's hda reads and writes, as virsh sees it."""
    for line in virsh("domblklist", name).splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == "hda":
            return parts[1].strip()
    raise AssertionError(f"no hda in virsh domblklist {name}")


def backing_files(path: str) -> list[str]:
    """``qemu-img info --backing-chain``: the files from ``path`` down to the base."""
    return [entry["filename"] for entry in backing_chain(path)]


def metadata_names(name: str) -> list[str]:
    """The checkpoint names in the domain's persistent XML, in file order (virsh's view)."""
    root = SafeET.fromstring(virsh("dumpxml", "--inactive", name))
    tree = root.find(f"metadata/{{{CHECKPOINTS_NS}}}*")  # not the network adapters' metadata
    nodes = tree.iter() if tree is not None else iter(())
    return [node.get("name", "") for node in nodes if node.get("name") is not None]


def modal(kind: type) -> Any:
    widget = QApplication.activeModalWidget()
    return widget if isinstance(widget, kind) else None


# --- tests ------------------------------------------------------------------------------------


def test_taking_checkpoints_builds_the_tree_with_now(
    run: Any, make_window: Any, disk_vm: DiskVm, watchdog: Any
) -> None:
    window = make_window(SYSTEM_URI)
    pane = window.checkpoints
    revert = window.app_actions.checkpoint[CheckpointAction.REVERT]

    async def body() -> None:
        await open_vm(window, disk_vm)
        assert pane.message.isVisible() and pane.message.text() == NO_CHECKPOINTS
        assert not pane.tree.isVisible()
        assert not revert.isEnabled()

        first = await take_with_gui(window, 1)
        assert first.name.startswith(f"{disk_vm.name} - (")  # Hyper-V's default name
        assert outline(window) == [(0, first.name), (1, "Now")]
        assert pane.tree.isVisible() and not pane.message.isVisible()
        assert not first.memory  # the VM is off: disk only
        assert "disk only" in pane.model.index_of(first.id).data(Qt.ItemDataRole.ToolTipRole)
        await wait_until(revert.isEnabled, 10, "Revert to be enabled")
        # The VM now writes to a new differencing disk over the frozen base disk.
        overlay = await asyncio.to_thread(active_disk, disk_vm.name)
        assert Path(overlay).parent == disk_vm.disk_folder and overlay != str(disk_vm.base_disk)
        assert await asyncio.to_thread(backing_files, overlay) == [overlay, str(disk_vm.base_disk)]
        assert (disk_vm.snapshots / first.id / "config.xml").is_file()

        # The same action from the toolbar.
        toolbar = window.findChild(QToolBar, "mainToolbar")
        toolbar.widgetForAction(window.app_actions.checkpoint[CheckpointAction.TAKE]).click()
        await wait_until(lambda: len(visible_tree(window)) == 2, 30, "the second checkpoint")
        second = visible_tree(window)[-1]
        assert outline(window) == [(0, first.name), (1, second.name), (2, "Now")]
        top = await asyncio.to_thread(active_disk, disk_vm.name)
        assert await asyncio.to_thread(backing_files, top) == [top, overlay, str(disk_vm.base_disk)]
        await idle(window, disk_vm)
        await settle()

    run(body)


def test_selecting_a_checkpoint_shows_its_summary_block_settings_and_chain(
    run: Any, make_window: Any, disk_vm: DiskVm, qtbot: Any
) -> None:
    window = make_window(SYSTEM_URI)
    actions, details = window.actions_pane, window.details_pane

    async def body() -> None:
        await open_vm(window, disk_vm)
        first = await take_with_gui(window, 1)
        second = await take_with_gui(window, 2)
        await idle(window, disk_vm)
        assert actions.vm_block.isVisible() and not actions.checkpoint_block.isVisible()

        click_row(qtbot, window, second.id)
        await wait_until(actions.checkpoint_block.isVisible, 5, "the checkpoint block")
        assert not actions.vm_block.isVisible()
        assert actions.checkpoint_block.header.text() == second.name
        labels = [b.defaultAction().text() for b in actions.checkpoint_block.buttons() if b.isVisible()]
        assert labels == [
            "Settings...",
            "Apply...",
            "Rename...",
            "Delete Checkpoint...",
            "Delete Checkpoint Subtree...",
            "Disk Chain...",
        ]
        summary = details.checkpoint_summary.values
        assert details.title() == second.name and details.showing_checkpoint()
        assert summary["checkpointType"].text() == "Standard"
        assert summary["checkpointMemory"].text().startswith("Not saved")
        assert summary["checkpointParent"].text() == first.name
        assert summary["checkpointState"].text() == "Off"
        window.action_menu.aboutToShow.emit()
        assert "Apply..." in [a.text() for a in window.action_menu.actions()]

        # Settings...: what the checkpoint captured: its disk was the first checkpoint's overlay.
        first_overlay = second.images["hda"].file
        click_action(actions.checkpoint_block, "Settings...")
        dialog = await wait_until(
            lambda: window.findChild(QDialog, "checkpointSettingsDialog"), 20, "the Settings window"
        )
        assert dialog.windowTitle() == f"Settings for {second.name}"
        assert dialog.values["memory"].text() == "256 MB"
        assert dialog.values["processors"].text() == "1"
        assert first_overlay in dialog.values["disks"].text()
        assert dialog.values["generation"].text() == "1 (BIOS)"
        dialog.reject()

        # Disk Chain...: the checkpoint's file, then the base disk.
        click_action(actions.checkpoint_block, "Disk Chain...")
        chain = await wait_until(lambda: window.findChild(QTreeWidget, "chainTree"), 20, "the chain window")
        disk = chain.topLevelItem(0)
        files = [disk.child(i).toolTip(0) for i in range(disk.childCount())]
        assert files == [first_overlay, str(disk_vm.base_disk)]
        chain.window().reject()

        # The Now row and the VM list give the VM's block back.
        click_row(qtbot, window, NOW)
        await wait_until(actions.vm_block.isVisible, 5, "the VM block")
        assert not details.showing_checkpoint() and details.title() == disk_vm.name
        click_row(qtbot, window, first.id)
        await wait_until(actions.checkpoint_block.isVisible, 5)
        assert summary["checkpointParent"].text() == "None"
        table = window.table
        row_rect = table.visualRect(table.model().index(row_of(window, disk_vm.name), 0))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=row_rect.center())
        await wait_until(actions.vm_block.isVisible, 5, "the VM block after clicking the list")
        assert window.checkpoints.selected_checkpoint() is None
        await settle()

    run(body)


def test_context_menu_offers_the_checkpoint_actions(run: Any, make_window: Any, disk_vm: DiskVm) -> None:
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        await open_vm(window, disk_vm)
        first = await take_with_gui(window, 1)
        await idle(window, disk_vm)
        tree = window.checkpoints.tree
        position = tree.visualRect(window.checkpoints.model.index_of(first.id)).center()
        tree.customContextMenuRequested.emit(position)
        menu = window.findChild(type(window.action_menu), "checkpointContextMenu")
        labels = [a.text() for a in menu.actions() if a.text()]
        assert labels[:2] == ["Settings...", "Apply..."] and "Delete Checkpoint Subtree..." in labels
        menu.close()
        assert window.checkpoints.selected_checkpoint() == first
        await settle()

    run(body)


def test_inline_rename_refuses_bad_names_and_renames(
    run: Any, make_window: Any, disk_vm: DiskVm, qtbot: Any
) -> None:
    window = make_window(SYSTEM_URI)

    async def type_name(text: str) -> None:
        click_action(window.actions_pane.checkpoint_block, "Rename...")
        editor = await wait_until(
            lambda: window.checkpoints.tree.viewport().findChild(QLineEdit), 5, "the inline editor"
        )
        editor.selectAll()
        qtbot.keyClicks(editor, text)
        qtbot.keyClick(editor, Qt.Key.Key_Return)

    async def refused(expected: str) -> None:
        box = await wait_until(lambda: modal(QMessageBox), 5, "the refusal")
        assert box.windowTitle() == "Rename Checkpoint" and box.text() == expected
        box.button(QMessageBox.StandardButton.Close).click()
        await wait_until(lambda: modal(QMessageBox) is None, 5)

    async def body() -> None:
        await open_vm(window, disk_vm)
        taken = await take_with_gui(window, 1)
        await idle(window, disk_vm)
        click_row(qtbot, window, taken.id)
        await wait_until(window.actions_pane.checkpoint_block.isVisible, 5)

        await type_name("x" * 101)
        await refused("The name is 101 characters long; the limit is 100.")
        await type_name("   ")
        await refused("Enter a name for the checkpoint.")
        await settle()
        assert await asyncio.to_thread(metadata_names, disk_vm.name) == [taken.name]

        await type_name("Before the upgrade")
        await wait_until(lambda: visible_tree(window)[0].name == "Before the upgrade", 20, "the new name")
        assert window.checkpoints.model.index_of(taken.id).data() == "Before the upgrade"
        assert await asyncio.to_thread(metadata_names, disk_vm.name) == ["Before the upgrade"]
        # The selection survived the re-read, and the block and details follow the new name.
        assert window.checkpoints.selected_checkpoint().name == "Before the upgrade"
        assert window.actions_pane.checkpoint_block.header.text() == "Before the upgrade"
        assert window.details_pane.title() == "Before the upgrade"
        await settle()

    run(body)


def test_changes_made_outside_the_window_show_up_without_a_reset(
    run: Any, make_window: Any, disk_vm: DiskVm
) -> None:
    window = make_window(SYSTEM_URI)
    model = window.checkpoints.model
    resets: list[int] = []

    def outside(action: Any) -> Any:
        server = Server(SYSTEM_URI)  # another client, as hvctl would be
        server.open()
        try:
            return action(server.conn, server.conn.lookupByUUIDString(disk_vm.uuid))
        finally:
            server.close()

    async def body() -> None:
        await open_vm(window, disk_vm)
        model.modelReset.connect(lambda: resets.append(1))
        taken = await asyncio.to_thread(
            outside, lambda conn, dom: checkpoints.take(conn, dom, "outside").checkpoint
        )
        await wait_until(
            lambda: [c.name for c in visible_tree(window)] == ["outside"], 20, "the new checkpoint"
        )
        await asyncio.to_thread(
            outside, lambda conn, dom: checkpoints.rename(dom, taken.id, "renamed outside")
        )
        await wait_until(lambda: model.index_of(taken.id).data() == "renamed outside", 20, "the new name")
        assert model.index_of(NOW).parent().data(CheckpointRole.ID) == taken.id
        created = model.index_of(taken.id, CheckpointColumn.CREATED)
        assert created.data(CheckpointRole.SORT) == taken.created.timestamp()
        assert resets == []
        assert model.index_of("no-such-id") == QModelIndex()
        await settle()

    run(body)


def test_f2_and_del_act_on_the_selected_checkpoint(
    run: Any, make_window: Any, disk_vm: DiskVm, qtbot: Any
) -> None:
    window = make_window(SYSTEM_URI)
    acts = window.app_actions

    async def body() -> None:
        await open_vm(window, disk_vm)
        taken = await take_with_gui(window, 1)
        await idle(window, disk_vm)
        # With the VM's block shown, the keys belong to the VM's Rename and Delete.
        assert acts.vm[VmAction.RENAME].shortcut().toString() == "F2"
        assert acts.checkpoint[CheckpointAction.RENAME].shortcut().isEmpty()
        click_row(qtbot, window, taken.id)
        await wait_until(window.actions_pane.checkpoint_block.isVisible, 5)
        assert acts.checkpoint[CheckpointAction.RENAME].shortcut().toString() == "F2"
        assert acts.checkpoint[CheckpointAction.DELETE].shortcut().toString() == "Del"
        assert acts.vm[VmAction.RENAME].shortcut().isEmpty() and acts.vm[VmAction.DELETE].shortcut().isEmpty()

        tree = window.checkpoints.tree
        window.activateWindow()
        await wait_until(lambda: QApplication.activeWindow() is window, 5, "the window to be active")
        tree.setFocus()
        qtbot.keyClick(tree, Qt.Key.Key_F2)
        editor = await wait_until(lambda: tree.viewport().findChild(QLineEdit), 5, "the inline editor")
        assert editor.text() == taken.name
        qtbot.keyClick(editor, Qt.Key.Key_Escape)  # cancelled: nothing renamed
        await wait_until(lambda: tree.viewport().findChild(QLineEdit) is None or not editor.isVisible(), 5)
        qtbot.keyClick(tree, Qt.Key.Key_Delete)
        dialog = await wait_until(lambda: window.findChild(QDialog, "deleteCheckpointDialog"), 20, "Delete")
        dialog.reject()
        assert await asyncio.to_thread(metadata_names, disk_vm.name) == [taken.name]
        await settle()

    run(body)
