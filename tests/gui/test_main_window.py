"""The main window on libvirt's test driver: listing, sorting, actions following the state,
context menu, dialogs, servers. (Real guests: tests/vm/test_gui_end_to_end.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QPushButton

from hvmanager.backend.models import VmState
from hvmanager.backend.vmactions import VmAction
from hvmanager.controllers.server import ConnectionState
from hvmanager.views.vm_table_model import Column, VmRole
from tests.gui.conftest import settle, wait_until
from tests.gui.table import names, select, state
from tests.support.testdriver import PAUSED, RUNNING, SHUTOFF, write_node

VMS = [
    ("alpha", RUNNING, False),
    ("beta", SHUTOFF, True),
    ("gamma", PAUSED, False),
    ("delta", SHUTOFF, False),
]


@pytest.fixture
def node_uri(tmp_path: Path) -> str:
    """A test-driver server with VMs in several states."""
    return write_node(tmp_path / "node.xml", VMS)


def _modal(kind: type) -> Any:
    widget = QApplication.activeModalWidget()
    assert isinstance(widget, kind), f"expected a {kind.__name__}, got {widget!r}"
    return widget


def test_lists_vms_sorted_with_states(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4, what="the VM list")
        assert names(window) == ["alpha", "beta", "delta", "gamma"]
        assert [state(window, n) for n in ("alpha", "beta", "gamma", "delta")] == [
            "Running",
            "Saved",
            "Paused",
            "Off",
        ]
        window.table.sortByColumn(Column.STATE, Qt.SortOrder.AscendingOrder)
        assert names(window)[0] in ("beta", "delta") or names(window)[0] == "delta"
        assert window.banner.isHidden()
        await settle()

    run(body)


def test_vm_list_model_passes_the_model_tester(
    run: Any, make_window: Any, node_uri: str, qtmodeltester: Any
) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        await wait_until(lambda: _uptime_shown(window), what="a stats tick")
        await settle()

    run(body)
    model = window.model_for(node_uri)
    qtmodeltester.check(model, force_py=True)
    model.remove_vm(model.uuids()[0])
    qtmodeltester.check(model, force_py=True)


def _uptime_shown(window: Any) -> bool:
    model = window.table.model()
    return any(model.index(r, Column.UPTIME).data() for r in range(model.rowCount()))


@pytest.mark.parametrize(
    ("name", "enabled", "disabled"),
    [
        (
            "alpha",
            {VmAction.TURN_OFF, VmAction.SHUT_DOWN, VmAction.SAVE, VmAction.PAUSE, VmAction.RESET},
            {VmAction.START, VmAction.RESUME, VmAction.DELETE, VmAction.RENAME, VmAction.DELETE_SAVED_STATE},
        ),
        (
            "beta",
            {VmAction.START, VmAction.DELETE_SAVED_STATE, VmAction.DELETE},
            {VmAction.TURN_OFF, VmAction.SAVE, VmAction.PAUSE, VmAction.RENAME},
        ),
        (
            "gamma",
            {VmAction.RESUME, VmAction.TURN_OFF, VmAction.SAVE, VmAction.RESET},
            {VmAction.START, VmAction.SHUT_DOWN, VmAction.DELETE},
        ),
        (
            "delta",
            {VmAction.START, VmAction.RENAME, VmAction.DELETE},
            {VmAction.TURN_OFF, VmAction.SAVE, VmAction.DELETE_SAVED_STATE, VmAction.RESUME},
        ),
    ],
)
def test_actions_follow_thestate(
    run: Any, make_window: Any, node_uri: str, name: str, enabled: set[VmAction], disabled: set[VmAction]
) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, name)
        for kind in enabled:
            assert window.vm_action(kind).isEnabled(), kind
        for kind in disabled:
            assert not window.vm_action(kind).isEnabled(), kind
        assert not window.vm_action(VmAction.CONNECT).isEnabled()
        assert window.actions_pane.vm_block.header.text() == name
        paused = name == "gamma"
        assert window.vm_action(VmAction.RESUME).isVisible() == paused
        assert window.vm_action(VmAction.PAUSE).isVisible() == (not paused)
        await settle()

    run(body)


def test_multi_select_allows_only_start_turn_off_shut_down(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        window.table.selectAll()
        assert window.actions_pane.vm_block.header.text() == "4 virtual machines"
        for kind in (VmAction.SETTINGS, VmAction.RENAME, VmAction.DELETE, VmAction.SAVE):
            assert not window.vm_action(kind).isEnabled()
        # Start applies to Off and Saved only: not to all four at once.
        assert not window.vm_action(VmAction.START).isEnabled()
        await settle()

    run(body)


def test_pause_resume_and_turn_off_through_the_actions_pane(
    run: Any, make_window: Any, node_uri: str
) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, "alpha")
        pause_button = next(b for b in window.actions_pane.vm_block.buttons() if b.text() == "Pause")
        pause_button.click()
        await wait_until(lambda: state(window, "alpha") == "Paused", what="Paused")
        assert window.vm_action(VmAction.RESUME).isVisible()
        window.vm_action(VmAction.RESUME).trigger()
        await wait_until(lambda: state(window, "alpha") == "Running", what="Running")
        window.vm_action(VmAction.TURN_OFF).trigger()
        box = _modal(QMessageBox)
        assert "alpha" in box.text()
        box.findChild(QPushButton, "confirmButton").click()
        await wait_until(lambda: state(window, "alpha") == "Off", what="Off")
        await settle()

    run(body)


def test_cancelled_confirmation_changes_nothing(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, "alpha")
        window.vm_action(VmAction.RESET).trigger()
        box = _modal(QMessageBox)
        box.button(QMessageBox.StandardButton.Cancel).click()
        await settle()
        assert state(window, "alpha") == "Running"

    run(body)


def test_rename_dialog_validates_and_renames(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, "delta")
        window.vm_action(VmAction.RENAME).trigger()
        dialog = _modal(QDialog)
        ok = dialog.findChild(QPushButton, "okButton")
        dialog.name_edit.setText("alpha")
        assert not ok.isEnabled()
        assert "already exists" in dialog.problem.text()
        dialog.name_edit.setText("x" * 101)
        assert "101 characters" in dialog.problem.text()
        dialog.name_edit.setText("")
        assert not ok.isEnabled()
        dialog.name_edit.setText("epsilon")
        assert ok.isEnabled()
        ok.click()
        await wait_until(lambda: "epsilon" in names(window), what="the new name")
        assert "delta" not in names(window)
        await settle()

    run(body)


def test_delete_dialog_lists_nothing_for_diskless_vm_and_deletes(
    run: Any, make_window: Any, node_uri: str
) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, "delta")
        window.vm_action(VmAction.DELETE).trigger()
        dialog = await wait_until(lambda: QApplication.activeModalWidget(), what="the Delete dialog")
        assert dialog.objectName() == "deleteDialog"
        dialog.findChild(QPushButton, "okButton").click()
        await wait_until(lambda: "delta" not in names(window), what="the VM to go")
        await settle()

    run(body)


def test_context_menu_offers_the_vm_actions(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, "alpha")
        window.table.customContextMenuRequested.emit(window.table.rect().center())
        menu = window.findChild(type(window.menuBar().actions()[0].menu()), "vmContextMenu")
        labels = [a.text() for a in menu.actions() if a.text()]
        assert "Turn Off..." in labels and "Pause" in labels and "Resume" not in labels
        menu.close()
        await settle()

    run(body)


def test_connect_and_remove_a_second_server(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        window.app_actions.connect_server.trigger()
        dialog = _modal(QDialog)
        dialog.other_radio.setChecked(True)
        dialog.uri_edit.setText("nope://x")
        assert "Unknown transport" in dialog.problem.text()
        dialog.uri_edit.setText("test:///default")
        dialog.findChild(QPushButton, "okButton").click()
        await wait_until(lambda: window.server_tree.current_uri() == "test:///default")
        await wait_until(lambda: names(window) == ["test"], what="the second server's VMs")
        assert window.server_tree.uris() == [node_uri, "test:///default"]
        assert window.manager.settings.servers == [node_uri, "test:///default"]
        window.app_actions.remove_server.trigger()
        await wait_until(lambda: window.server_tree.uris() == [node_uri])
        assert window.server_tree.current_uri() == node_uri
        await settle()

    run(body)


def test_unreachable_server_says_why_and_keeps_retrying(run: Any, make_window: Any, tmp_path: Path) -> None:
    uri = f"qemu+unix:///system?socket={tmp_path}/no-such-socket"
    window = make_window(uri)

    async def body() -> None:
        controller = window.manager.servers[uri]
        await wait_until(lambda: controller.state is ConnectionState.DISCONNECTED and controller.message)
        await wait_until(lambda: window.banner.isVisible())
        assert "Can't connect" in window.banner.text()
        assert "Retrying" in window.banner.text()
        assert not window.app_actions.new_vm.isEnabled()
        attempts = []
        controller.connection_changed.connect(lambda state, _m: attempts.append(state))
        await wait_until(lambda: ConnectionState.CONNECTING in attempts, 5, "a retry")
        await settle()

    run(body)


def test_details_pane_shows_the_selected_vm(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        select(window, "beta")
        pane = window.details_pane
        await wait_until(lambda: pane.title() == "beta" and pane.summary.values["state"].text() == "Saved")
        assert pane.memory.values["startup"].text() == "256 MB"
        assert pane.summary.values["heartbeat"].text() == "Not applicable"
        assert pane.thumbnail.text() == "Saved"
        select(window, "alpha")
        await wait_until(lambda: pane.title() == "alpha")
        await wait_until(
            lambda: pane.thumbnail.pixmap() is not None and not pane.thumbnail.pixmap().isNull(),
            what="the screen thumbnail",
        )
        window.table.clearSelection()
        await wait_until(lambda: pane.title() == "")
        await settle()

    run(body)


def test_state_role_and_sort_role(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        model = window.model_for(node_uri)
        row = model.row_of("00000000-0000-0000-0000-000000000002")
        assert model.index(row, Column.NAME).data(VmRole.STATE) is VmState.SAVED
        assert model.index(row, Column.NAME).data(VmRole.SORT) == "beta"
        await settle()

    run(body)


def test_uptime_cells_repaint_every_second(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: _uptime_shown(window), what="a stats tick")
        model = window.table.model()
        row = next(r for r in range(model.rowCount()) if model.index(r, Column.NAME).data() == "alpha")
        first = model.index(row, Column.UPTIME).data()
        await wait_until(lambda: model.index(row, Column.UPTIME).data() != first, 5, "the uptime to advance")
        await settle()

    run(body)


def test_start_several_selected_vms_at_once(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        model = window.table.model()
        rows = [r for r in range(model.rowCount()) if model.index(r, Column.NAME).data() in ("beta", "delta")]
        selection = window.table.selectionModel()
        for row in rows:
            selection.select(
                model.index(row, 0), selection.SelectionFlag.Select | selection.SelectionFlag.Rows
            )
        assert window.actions_pane.vm_block.header.text() == "2 virtual machines"
        assert window.vm_action(VmAction.START).isEnabled()
        window.vm_action(VmAction.START).trigger()
        await wait_until(lambda: state(window, "beta") == state(window, "delta") == "Running", 10)
        window.vm_action(VmAction.TURN_OFF).trigger()
        box = _modal(QMessageBox)
        assert "'beta'" in box.text() and "'delta'" in box.text()
        box.findChild(QPushButton, "confirmButton").click()
        await wait_until(lambda: state(window, "beta") == state(window, "delta") == "Off", 10)
        await settle()

    run(body)


def test_columns_get_hyperv_widths_once_a_server_is_shown(run: Any, make_window: Any, node_uri: str) -> None:
    window = make_window(node_uri)

    async def body() -> None:
        await wait_until(lambda: len(names(window)) == 4)
        assert window.table.columnWidth(Column.MEMORY) == 140
        assert window.table.columnWidth(Column.NAME) == 220
        await settle()

    run(body)
