"""What the checkpoint commands of the main window do, and the Checkpoints pane kept on the
selected VM.

The pane shows the tree of the one selected VM, read in the background whenever the VM changes
(libvirt events: the tree lives in the domain XML, so every change redefines the domain) and after
each operation. Selecting a checkpoint puts its block in the Actions pane and its summary in the
details pane. Dialogs open with ``open()``; the work runs in background tasks (``spawn``) through
the server's ``CheckpointController``, which reports failures to the window's error display.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QPoint
from PySide6.QtWidgets import QMenu, QMessageBox

from hvmanager.backend.checkpoint_tree import Checkpoint, CheckpointTree
from hvmanager.controllers.server import ServerController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui import dialogs
from hvmanager.ui.actions import CheckpointAction
from hvmanager.ui.checkpoint_dialogs import (
    ApplyCheckpointDialog,
    ApplyChoice,
    CheckpointSettingsDialog,
    DeleteCheckpointDialog,
    confirm_revert,
)

if TYPE_CHECKING:
    from hvmanager.ui.main_window import MainWindow


class CheckpointCommands(QObject):
    """Connects the checkpoint actions and the Checkpoints pane to dialogs and controller calls."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.pane = window.checkpoints
        self.uuid: str | None = None  # the VM whose tree the pane shows
        self.tree: CheckpointTree | None = None  # its tree, once read
        self._controller: ServerController | None = None
        self.last_dialog: QObject | None = None
        acts = window.app_actions.checkpoint
        handlers = {
            CheckpointAction.TAKE: self.take,
            CheckpointAction.REVERT: self.revert,
            CheckpointAction.SETTINGS: self.settings,
            CheckpointAction.APPLY: self.apply,
            CheckpointAction.RENAME: self.pane.edit_selected,
            CheckpointAction.DELETE: lambda: self.delete(subtree=False),
            CheckpointAction.DELETE_SUBTREE: lambda: self.delete(subtree=True),
            CheckpointAction.DISK_CHAIN: self.disk_chain,
        }
        for kind, handler in handlers.items():
            acts[kind].triggered.connect(lambda _=False, h=handler: h())
        self.pane.checkpoint_selected.connect(self._on_checkpoint_selected)
        self.pane.context_menu_requested.connect(self._on_context_menu)
        self.pane.rename_requested.connect(self._rename)
        self.pane.rename_refused.connect(self._rename_refused)

    # --- following the selected VM --------------------------------------------------------------

    def show_vm(self, uuid: str | None) -> None:
        """Show the checkpoints of the selected VM (None: no single VM selected)."""
        controller = self.window.current
        if controller is not self._controller:
            self._bind(controller)
            self.uuid = None
        if uuid != self.uuid:
            self.uuid, self.tree = uuid, None
            info = controller.vms.get(uuid) if controller and uuid else None
            self.pane.set_vm(info.name if info else None)
            if controller is not None and uuid is not None:
                controller.checkpoints.refresh(uuid)
        self.update_actions()

    def _bind(self, controller: ServerController | None) -> None:
        if self._controller is not None:
            self._controller.checkpoints.tree_loaded.disconnect(self._on_tree_loaded)
            self._controller.config_changed.disconnect(self._on_config_changed)
        self._controller = controller
        if controller is not None:
            controller.checkpoints.tree_loaded.connect(self._on_tree_loaded)
            controller.config_changed.connect(self._on_config_changed)

    def _on_config_changed(self, uuid: str) -> None:
        # The tree is in the domain XML: any change of it redefines the domain and lands here.
        if uuid == self.uuid and self._controller is not None:
            self._controller.checkpoints.refresh(uuid)

    def _on_tree_loaded(self, uuid: str, tree: CheckpointTree) -> None:
        if uuid != self.uuid:
            return  # the selection moved on meanwhile
        self.tree = tree
        self.pane.set_tree(tree)
        self.update_actions()

    def update_actions(self) -> None:
        """Enable Checkpoint, Revert and the checkpoint block for the current selection."""
        states = [info.state for info in self.window.selected_infos()]
        can_revert = self.tree is not None and self.tree.now_parent() is not None
        selected = self.pane.selected_checkpoint() is not None
        self.window.app_actions.update_checkpoint_actions(states, can_revert, selected)

    def _on_checkpoint_selected(self, checkpoint: Checkpoint | None) -> None:
        self.window.actions_pane.show_checkpoint_block(checkpoint.name if checkpoint else None)
        self.window.app_actions.show_checkpoint_block(checkpoint is not None)
        self.window.details.show_checkpoint(checkpoint, self._parent_name(checkpoint))
        self.update_actions()

    def _parent_name(self, checkpoint: Checkpoint | None) -> str | None:
        if checkpoint is None or self.tree is None or checkpoint.id not in self.tree.checkpoints:
            return None
        parent = self.tree.visible_parent(checkpoint.id)
        return self.tree.get(parent).name if parent else None

    def _on_context_menu(self, checkpoint: Checkpoint | None, position: QPoint) -> None:
        acts = self.window.app_actions
        menu = QMenu(self.window)
        menu.setObjectName("checkpointContextMenu")
        for entry in acts.checkpoint_block() if checkpoint is not None else acts.vm_block():
            if entry is None:
                menu.addSeparator()
            elif entry.isVisible():
                menu.addAction(entry)
        menu.popup(position)

    def _selection(self) -> tuple[ServerController, str, Checkpoint] | None:
        """The server, VM and checkpoint the checkpoint block acts on."""
        checkpoint = self.pane.selected_checkpoint()
        if self._controller is None or self.uuid is None or checkpoint is None:
            return None
        return self._controller, self.uuid, checkpoint

    # --- the VM's commands ----------------------------------------------------------------------

    def take(self) -> None:
        """Checkpoint every selected VM (with the default name)."""
        controller = self.window.current
        if controller is not None:
            for uuid in self.window.selected_uuids():
                spawn(self._take(controller, uuid))

    async def _take(self, controller: ServerController, uuid: str) -> None:
        result = await controller.checkpoints.take(uuid)
        if result is not None and result.fallback_reason:
            self._inform("Checkpoint", result.fallback_reason)

    def revert(self) -> None:
        """Revert the selected VM to the checkpoint its current state derives from."""
        controller, uuid, tree = self._controller, self.uuid, self.tree
        target = tree.now_parent() if tree is not None else None
        if controller is None or uuid is None or tree is None or target is None:
            return
        vm_name = controller.vms[uuid].name if uuid in controller.vms else uuid
        box = confirm_revert(self.window, vm_name, tree.get(target).name)
        box.accepted.connect(lambda: spawn(controller.checkpoints.revert(uuid)))
        self.last_dialog = box

    # --- the checkpoint block -------------------------------------------------------------------

    def apply(self) -> None:
        """Apply the selected checkpoint, after Hyper-V's three-way question."""
        selection = self._selection()
        if selection is None:
            return
        controller, uuid, checkpoint = selection
        dialog = ApplyCheckpointDialog(checkpoint.name, self.window)

        def chosen(choice: ApplyChoice) -> None:
            if choice is not ApplyChoice.CANCEL:
                take_first = choice is ApplyChoice.TAKE_AND_APPLY
                spawn(controller.checkpoints.apply(uuid, checkpoint.id, take_first))

        dialog.choice_made.connect(chosen)
        dialog.open()
        self.last_dialog = dialog

    def settings(self) -> None:
        """Show the configuration the selected checkpoint captured, read-only."""
        selection = self._selection()
        if selection is not None:
            spawn(self._settings(*selection))

    async def _settings(self, controller: ServerController, uuid: str, checkpoint: Checkpoint) -> None:
        config = await controller.checkpoints.config(uuid, checkpoint.id)
        if config is None:
            return
        dialog = CheckpointSettingsDialog(checkpoint.name, config, self.window)
        dialog.open()
        self.last_dialog = dialog

    def _rename(self, checkpoint_id: str, name: str) -> None:
        if self._controller is not None and self.uuid is not None:
            spawn(self._controller.checkpoints.rename(self.uuid, checkpoint_id, name))

    def _rename_refused(self, problem: str) -> None:
        self.last_dialog = dialogs.show_error(self.window, "Rename Checkpoint", problem)

    def delete(self, subtree: bool) -> None:
        """Delete the selected checkpoint (or it and its subtree), once the user saw what the
        merge needs."""
        selection = self._selection()
        if selection is not None:
            spawn(self._delete(*selection, subtree))

    async def _delete(
        self, controller: ServerController, uuid: str, checkpoint: Checkpoint, subtree: bool
    ) -> None:
        estimate = await controller.checkpoints.delete_estimate(uuid, checkpoint.id, subtree)
        if estimate is None:
            return
        dialog = DeleteCheckpointDialog(checkpoint.name, subtree, estimate, self.window)
        dialog.accepted.connect(lambda: spawn(controller.checkpoints.delete(uuid, checkpoint.id, subtree)))
        dialog.open()
        self.last_dialog = dialog

    def disk_chain(self) -> None:
        """Show the files each disk of the selected checkpoint reads through."""
        selection = self._selection()
        if selection is not None:
            spawn(self._disk_chain(*selection))

    async def _disk_chain(self, controller: ServerController, uuid: str, checkpoint: Checkpoint) -> None:
        from hvmanager.ui.checkpoint_chain_dialog import CheckpointChainDialog

        chains = await controller.checkpoints.chains(uuid, checkpoint.id)
        if chains is None:
            return
        estimate = await controller.checkpoints.delete_estimate(uuid, checkpoint.id, False)
        dialog = CheckpointChainDialog(
            f"Disk Chain of '{checkpoint.name}'",
            chains,
            self.window,
            estimate=(checkpoint.name, estimate) if estimate is not None else None,
        )
        dialog.open()
        self.last_dialog = dialog

    def _inform(self, title: str, text: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Close, self.window
        )
        box.open()
        self.last_dialog = box
