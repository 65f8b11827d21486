"""What the disk commands do: Actions ▸ New ▸ Hard Disk..., Edit Disk... and Inspect Disk... of the
server block, and the entry points other windows use (the Settings dialog's Hard Drive page has
New, Edit and Inspect buttons).

Each server gets one ``DiskController`` (made on first use, a child of its ``ServerController``,
closed when the server is removed). Wizards and dialogs open with ``open()``; their work runs in
background tasks through the controller. Entry points:

- ``open_new_disk_wizard(controller, folder, parent)``: the New Virtual Hard Disk wizard;
  ``ask_new_disk`` awaits it and returns the new file's path (None when cancelled).
- ``open_edit_disk_wizard(controller, path, parent, action)``: the Edit Virtual Hard Disk wizard,
  at the disk and action given.
- ``open_inspect_dialog(controller, path, parent)``: Virtual Hard Disk Properties, whose Inspect
  Parent and Reconnect... open the parent's properties and the Edit wizard at Reconnect.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox, QWidget

from hvmanager.backend import limits
from hvmanager.backend.vhd_types import EditAction
from hvmanager.controllers.disks import DiskController
from hvmanager.controllers.server import ServerController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.disk_wizard_pages import DISK_FILTERS
from hvmanager.ui.edit_disk_wizard import EditDiskWizard
from hvmanager.ui.inspect_disk_dialog import InspectDiskDialog
from hvmanager.ui.new_disk_wizard import NewDiskWizard
from hvmanager.ui.new_vm_wizard_base import FileDialogs

if TYPE_CHECKING:
    from hvmanager.ui.main_window import MainWindow


def open_new_disk_wizard(
    controller: DiskController, folder: str, parent: QWidget | None = None
) -> NewDiskWizard:
    """Open the New Virtual Hard Disk wizard (its ``disk_created(path)`` says when the file exists)."""
    wizard = NewDiskWizard(controller, folder, parent)
    wizard.open()
    return wizard


async def ask_new_disk(controller: DiskController, folder: str, parent: QWidget | None = None) -> str | None:
    """Run the New Virtual Hard Disk wizard; the new file's path, or None when it was cancelled."""
    wizard = open_new_disk_wizard(controller, folder, parent)
    created: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def settle(path: str | None) -> None:
        if not created.done():
            created.set_result(path)

    wizard.disk_created.connect(settle)
    wizard.rejected.connect(lambda: settle(None))
    return await created


def open_edit_disk_wizard(
    controller: DiskController,
    path: str = "",
    parent: QWidget | None = None,
    action: EditAction | None = None,
) -> EditDiskWizard:
    """Open the Edit Virtual Hard Disk wizard at ``path`` (and ``action``, if offered)."""
    wizard = EditDiskWizard(controller, path, action, parent)
    # The box outlives the wizard when there is a parent window; otherwise the wizard keeps it.
    wizard.completed.connect(lambda result: _report_compact(parent or wizard, result))
    wizard.open()
    return wizard


def _report_compact(parent: QWidget, result: object) -> None:
    """Compact's result: the file's size before and after."""
    if not isinstance(result, tuple) or len(result) != 2:
        return
    before, after = (int(value) for value in result)
    text = f"The file was compacted from {limits.human_size(before)} to {limits.human_size(after)}."
    box = QMessageBox(QMessageBox.Icon.Information, "Compact", text, QMessageBox.StandardButton.Close, parent)
    box.setObjectName("compactResultBox")
    box.open()


def open_inspect_dialog(
    controller: DiskController, path: str, parent: QWidget | None = None
) -> InspectDiskDialog:
    """Open Virtual Hard Disk Properties for ``path``."""
    dialog = InspectDiskDialog(controller, path, parent)
    dialog.inspect_parent_requested.connect(
        lambda parent_path: open_inspect_dialog(controller, parent_path, dialog)
    )

    def reconnect(child: str) -> None:
        wizard = open_edit_disk_wizard(controller, child, dialog, EditAction.RECONNECT)
        wizard.disk_edited.connect(lambda _path: dialog.reload(controller))

    dialog.reconnect_requested.connect(reconnect)
    dialog.open()
    return dialog


class DiskCommands(QObject):
    """Connects the server block's disk actions to the wizards, one ``DiskController`` per server."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._controllers: dict[str, DiskController] = {}
        self.last_dialog: QObject | None = None
        acts = window.app_actions
        acts.new_disk.triggered.connect(self.new_disk)
        acts.edit_disk.triggered.connect(self.edit_disk)
        acts.inspect_disk.triggered.connect(self.inspect_disk)
        window.manager.server_removed.connect(self._forget)

    def controller_for(self, server: ServerController) -> DiskController:
        """The disk controller of a server (made on first use)."""
        controller = self._controllers.get(server.uri)
        if controller is None:
            controller = DiskController(server.server, server)
            self._controllers[server.uri] = controller
        return controller

    def _forget(self, uri: str) -> None:
        controller = self._controllers.pop(uri, None)
        if controller is not None:
            controller.close()

    def _current(self) -> DiskController | None:
        server = self.window.current
        return self.controller_for(server) if server is not None else None

    def new_disk(self) -> None:
        """Actions ▸ New ▸ Hard Disk...: the wizard, in the host's folder for disks."""
        controller = self._current()
        if controller is not None:
            spawn(self._new_disk(controller))

    async def _new_disk(self, controller: DiskController) -> None:
        folder = self.window.manager.settings.disk_folder
        await controller.ensure_folder(folder)
        self.last_dialog = open_new_disk_wizard(controller, folder, self.window)

    def edit_disk(self) -> None:
        """Actions ▸ Edit Disk...: the wizard, which asks for the disk on its Locate Disk page."""
        controller = self._current()
        if controller is not None:
            self.last_dialog = open_edit_disk_wizard(controller, "", self.window)

    def inspect_disk(self) -> None:
        """Actions ▸ Inspect Disk...: choose a disk file, then its properties."""
        controller = self._current()
        if controller is None:
            return
        start = self.window.manager.settings.disk_folder
        path = FileDialogs.choose_file(self.window, "Open", start, DISK_FILTERS)
        if path:
            self.last_dialog = open_inspect_dialog(controller, path, self.window)


__all__ = [
    "DiskCommands",
    "ask_new_disk",
    "open_edit_disk_wizard",
    "open_inspect_dialog",
    "open_new_disk_wizard",
]
