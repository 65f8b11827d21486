"""What the main window's commands do: confirmations, dialogs, and the controller calls behind
them. Dialogs open with ``open()``; the work runs in background tasks (``spawn``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from hvmanager.backend.models import VmSpec
from hvmanager.backend.operations import DeleteReport, disk_files
from hvmanager.backend.settings import AppSettings, default_local_uri
from hvmanager.backend.vmactions import VmAction
from hvmanager.controllers.server import ServerController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui import dialogs

if TYPE_CHECKING:
    from hvmanager.ui.main_window import MainWindow

_CONFIRM = {
    VmAction.TURN_OFF: (
        "Turn Off Machine",
        "Turning off a virtual machine is like pulling its power "
        "plug: unsaved data in the guest is lost.\n\nTurn off {names}?",
        "Turn Off",
    ),
    VmAction.SHUT_DOWN: (
        "Shut Down Machine",
        "The guest operating system is asked to shut down.\n\nShut down {names}?",
        "Shut Down",
    ),
    VmAction.RESET: (
        "Reset Machine",
        "Resetting is like pressing the reset button: unsaved data in the guest is lost.\n\nReset {names}?",
        "Reset",
    ),
    VmAction.DELETE_SAVED_STATE: (
        "Delete Saved State",
        "The saved memory of {names} is discarded; "
        "the next start boots afresh. The disks are not touched.\n\n"
        "Delete the saved state?",
        "Delete",
    ),
}


class VmCommands(QObject):
    """Connects the window's actions to dialogs and controller calls."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        acts = window.app_actions
        acts.new_vm.triggered.connect(self.new_vm)
        acts.hyperv_settings.triggered.connect(self.hyperv_settings)
        acts.refresh.triggered.connect(self.refresh)
        acts.connect_server.triggered.connect(self.connect_server)
        acts.remove_server.triggered.connect(self.remove_server)
        simple: dict[VmAction, Callable[[ServerController, str], Coroutine[Any, Any, bool]]] = {
            VmAction.START: ServerController.start,
            VmAction.SAVE: ServerController.save,
            VmAction.PAUSE: ServerController.pause,
            VmAction.RESUME: ServerController.resume,
        }
        for kind, method in simple.items():
            acts.vm[kind].triggered.connect(lambda _=False, m=method: self._each(m))
        confirmed = {
            VmAction.TURN_OFF: ServerController.turn_off,
            VmAction.SHUT_DOWN: ServerController.shut_down,
            VmAction.RESET: ServerController.reset,
            VmAction.DELETE_SAVED_STATE: ServerController.delete_saved_state,
        }
        for kind, method in confirmed.items():
            acts.vm[kind].triggered.connect(lambda _=False, k=kind, m=method: self._confirm_each(k, m))
        acts.vm[VmAction.RENAME].triggered.connect(self.rename)
        acts.vm[VmAction.DELETE].triggered.connect(self.delete)
        acts.vm[VmAction.SETTINGS].triggered.connect(self.settings)
        self.last_dialog: QObject | None = None

    # --- VM actions ----------------------------------------------------------------------------

    def _each(self, method: Callable[[ServerController, str], Coroutine[Any, Any, bool]]) -> None:
        controller = self.window.current
        if controller is None:
            return
        for uuid in self.window.selected_uuids():
            spawn(method(controller, uuid))

    def _confirm_each(
        self, kind: VmAction, method: Callable[[ServerController, str], Coroutine[Any, Any, bool]]
    ) -> None:
        infos = self.window.selected_infos()
        if not infos:
            return
        title, text, button = _CONFIRM[kind]
        names = ", ".join(f"'{info.name}'" for info in infos)
        box = dialogs.confirm(self.window, title, text.format(names=names), button)
        box.accepted.connect(lambda: self._each(method))
        self.last_dialog = box

    def rename(self) -> None:
        """Rename the selected VM."""
        controller, infos = self.window.current, self.window.selected_infos()
        if controller is None or len(infos) != 1:
            return
        info = infos[0]
        others = frozenset(vm.name for vm in controller.vms.values())
        dialog = dialogs.RenameDialog(info.name, others, self.window)
        dialog.accepted.connect(lambda: spawn(controller.rename(info.uuid, dialog.new_name())))
        dialog.open()
        self.last_dialog = dialog

    def delete(self) -> None:
        """Delete the selected VM, after listing its disks."""
        controller, infos = self.window.current, self.window.selected_infos()
        if controller is not None and len(infos) == 1:
            spawn(self._delete(controller, infos[0].uuid, infos[0].name))

    async def _delete(self, controller: ServerController, uuid: str, name: str) -> None:
        config = await controller.config(uuid)
        files = disk_files(config) if config else []
        dialog = dialogs.DeleteDialog(name, files, self.window)
        dialog.accepted.connect(lambda: spawn(self._do_delete(controller, uuid, dialog.with_disks())))
        dialog.open()
        self.last_dialog = dialog

    async def _do_delete(self, controller: ServerController, uuid: str, with_disks: bool) -> None:
        report = await controller.delete(uuid, with_disks)
        if report is not None and report.kept:
            self._show_kept(report)

    def _show_kept(self, report: DeleteReport) -> None:
        lines = "\n".join(f"{path}: {why}" for path, why in report.kept.items())
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Delete",
            f"These files were kept:\n{lines}",
            QMessageBox.StandardButton.Close,
            self.window,
        )
        box.open()
        self.last_dialog = box

    def settings(self) -> None:
        """Open the selected VM's Settings."""
        controller, infos = self.window.current, self.window.selected_infos()
        if controller is not None and len(infos) == 1:
            spawn(self._settings(controller, infos[0].uuid))

    async def _settings(self, controller: ServerController, uuid: str) -> None:
        from hvmanager.ui.settings_disk_links import connect_disk_buttons, disk_folder_of
        from hvmanager.ui.vm_settings_dialog import VmSettingsDialog

        config = await controller.config(uuid)
        info = controller.vms.get(uuid)
        if config is None or info is None or controller.host is None:
            return
        inactive = await controller.inactive_config(uuid)
        others = frozenset(vm.name for vm in controller.vms.values()) - {info.name}
        checkpoints = await controller.checkpoint_settings(uuid)
        storage, host_disks = await controller.storage(uuid)
        network = await controller.network_settings(uuid)
        dialog = VmSettingsDialog(
            inactive or config,
            info.state,
            controller.host,
            others,
            self.window,
            checkpoints=checkpoints,
            storage=storage,
            host_disks=host_disks,
            network=network,
        )
        dialog.apply_requested.connect(
            lambda change: spawn(self._apply_settings(controller, uuid, dialog, change))
        )
        if storage is not None:
            folder = disk_folder_of((inactive or config).folder, self.window.manager.settings.disk_folder)
            connect_disk_buttons(dialog, self.window.disk_commands.controller_for(controller), folder)
        dialog.open()
        self.last_dialog = dialog

    async def _apply_settings(
        self, controller: ServerController, uuid: str, dialog: Any, change: Any
    ) -> None:
        dialog.setEnabled(False)  # no second Apply while this one runs
        try:
            notes = await controller.apply_settings(uuid, change)
        finally:
            dialog.setEnabled(True)
        if notes is None:
            return
        config = await controller.inactive_config(uuid)
        info = controller.vms.get(uuid)
        storage, _disks = await controller.storage(uuid)
        network = await controller.network_settings(uuid)
        if config is not None and info is not None and dialog.isVisible():
            dialog.set_config(config, info.state, storage=storage, network=network)
        if notes:
            box = QMessageBox(
                QMessageBox.Icon.Information,
                "Settings",
                "\n".join(notes),
                QMessageBox.StandardButton.Close,
                self.window,
            )
            box.open()
            self.last_dialog = box

    # --- server actions ------------------------------------------------------------------------

    def new_vm(self) -> None:
        """Open the New Virtual Machine wizard for the current server."""
        controller = self.window.current
        if controller is not None:
            spawn(self._new_vm(controller))

    async def _new_vm(self, controller: ServerController) -> None:
        from hvmanager.ui.new_vm_wizard import NewVmWizard

        ctx = await controller.host_context()
        wizard = NewVmWizard(ctx, self.window.manager.settings, self.window)
        wizard.spec_accepted.connect(lambda spec: spawn(self._create(controller, spec)))
        wizard.open()
        self.last_dialog = wizard

    async def _create(self, controller: ServerController, spec: VmSpec) -> None:
        uuid = await controller.create_vm(spec)
        if uuid is not None:
            await controller.refresh_vm(uuid)
            self.window.select_vm(uuid)

    def hyperv_settings(self) -> None:
        """Open Hyper-V Settings."""
        from hvmanager.ui.hyperv_settings_dialog import HyperVSettingsDialog

        controller = self.window.current
        note = (
            f"{controller.accel.label}: {controller.accel.reason}" if controller and controller.accel else ""
        )
        dialog = HyperVSettingsDialog(self.window.manager.settings, note or "not connected", self.window)
        dialog.settings_applied.connect(self._settings_applied)
        dialog.open()
        self.last_dialog = dialog

    def _settings_applied(self, settings: AppSettings) -> None:
        self.window.manager.apply_settings(settings)

    def refresh(self) -> None:
        """Re-list the current server's VMs."""
        controller = self.window.current
        if controller is not None:
            spawn(controller.refresh())

    def connect_server(self) -> None:
        """Connect to Server..."""
        known = list(self.window.manager.servers)
        dialog = dialogs.ConnectServerDialog(default_local_uri(), known, self.window)
        dialog.accepted.connect(lambda: self._add_server(dialog.uri()))
        dialog.open()
        self.last_dialog = dialog

    def _add_server(self, uri: str) -> None:
        self.window.manager.add_server(uri)
        self.window.server_tree.select_server(uri)

    def remove_server(self) -> None:
        """Remove the current server from the list."""
        controller = self.window.current
        if controller is not None:
            self.window.manager.remove_server(controller.uri)

    def show_failure(self, title: str, message: str) -> None:
        """Report a failed action."""
        self.last_dialog = dialogs.show_error(self.window, title, message)

    def about(self) -> None:
        """The About box."""
        from hvmanager.ui.main_window import about_text

        box = QMessageBox(
            QMessageBox.Icon.Information,
            "About hvmanager",
            about_text(),
            QMessageBox.StandardButton.Close,
            self.window,
        )
        box.open()
        self.last_dialog = box
