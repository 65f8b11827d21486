"""Every command of the main window as a ``QAction``: one object each for the Actions pane, the
menus, the toolbar and the row context menu, with Hyper-V's labels and VMConnect's shortcuts.

``update_for`` enables the VM actions from the states of the selected VMs, using the backend's
single table of which action applies in which state. Checkpoint actions come in two groups: the
VM's (Checkpoint, Revert...) and the checkpoint block that replaces the VM block while a
checkpoint is selected; F2 and Del follow whichever block is shown.
"""

from __future__ import annotations

import enum

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from hvmanager.backend.models import VmState
from hvmanager.backend.vmactions import VmAction, allowed
from hvmanager.ui.resources import icon

# Actions that may act on several selected VMs at once.
MULTI_SELECT = frozenset({VmAction.START, VmAction.TURN_OFF, VmAction.SHUT_DOWN})

_VM_SPECS: dict[VmAction, tuple[str, str, str]] = {
    # action: (label, icon, shortcut)
    VmAction.CONNECT: ("Connect...", "connect", ""),
    VmAction.SETTINGS: ("Settings...", "settings", "Ctrl+Shift+S"),
    VmAction.START: ("Start", "start", "Ctrl+S"),
    VmAction.TURN_OFF: ("Turn Off...", "turn-off", "Ctrl+O"),
    VmAction.SHUT_DOWN: ("Shut Down...", "shut-down", "Ctrl+D"),
    VmAction.SAVE: ("Save", "save", "Ctrl+A"),
    VmAction.PAUSE: ("Pause", "pause", "Ctrl+P"),
    VmAction.RESUME: ("Resume", "resume", "Ctrl+R"),
    VmAction.RESET: ("Reset...", "reset", "Ctrl+T"),
    VmAction.DELETE_SAVED_STATE: ("Delete Saved State...", "delete-saved-state", ""),
    VmAction.RENAME: ("Rename...", "rename", "F2"),
    VmAction.DELETE: ("Delete...", "delete", "Del"),
}


class CheckpointAction(enum.Enum):
    """Checkpoint commands: two on the VM, the rest on a selected checkpoint."""

    TAKE = "Checkpoint"
    REVERT = "Revert"
    SETTINGS = "Checkpoint Settings"
    APPLY = "Apply Checkpoint"
    RENAME = "Rename Checkpoint"
    DELETE = "Delete Checkpoint"
    DELETE_SUBTREE = "Delete Checkpoint Subtree"
    DISK_CHAIN = "Disk Chain"


_CHECKPOINT_SPECS: dict[CheckpointAction, tuple[str, str, str]] = {
    # VMConnect's shortcuts: Ctrl+N Checkpoint, Ctrl+E Revert.
    CheckpointAction.TAKE: ("Checkpoint", "checkpoint", "Ctrl+N"),
    CheckpointAction.REVERT: ("Revert...", "revert", "Ctrl+E"),
    CheckpointAction.SETTINGS: ("Settings...", "settings", ""),
    CheckpointAction.APPLY: ("Apply...", "apply-checkpoint", ""),
    CheckpointAction.RENAME: ("Rename...", "rename", ""),
    CheckpointAction.DELETE: ("Delete Checkpoint...", "delete", ""),
    CheckpointAction.DELETE_SUBTREE: ("Delete Checkpoint Subtree...", "delete-subtree", ""),
    CheckpointAction.DISK_CHAIN: ("Disk Chain...", "disk-chain", ""),
}

CHECKPOINT_BLOCK_ORDER: list[CheckpointAction | None] = [
    CheckpointAction.SETTINGS,
    None,
    CheckpointAction.APPLY,
    CheckpointAction.RENAME,
    CheckpointAction.DELETE,
    CheckpointAction.DELETE_SUBTREE,
    None,
    CheckpointAction.DISK_CHAIN,
]

# The VM states a checkpoint can be taken (or reverted) in.
CHECKPOINT_STATES = frozenset({VmState.OFF, VmState.RUNNING, VmState.PAUSED, VmState.SAVED})

_CHANGES_IMAGES = frozenset(
    {CheckpointAction.APPLY, CheckpointAction.DELETE, CheckpointAction.DELETE_SUBTREE}
)

# Keys that act on whatever the lower block of the Actions pane shows: (VM action, checkpoint action).
_SHARED_KEYS = {
    "F2": (VmAction.RENAME, CheckpointAction.RENAME),
    "Del": (VmAction.DELETE, CheckpointAction.DELETE),
}

VM_BLOCK_ORDER: list[VmAction | None] = [
    VmAction.CONNECT,
    VmAction.SETTINGS,
    None,
    VmAction.START,
    VmAction.TURN_OFF,
    VmAction.SHUT_DOWN,
    VmAction.SAVE,
    VmAction.PAUSE,
    VmAction.RESUME,
    VmAction.RESET,
    None,
    VmAction.DELETE_SAVED_STATE,
    VmAction.RENAME,
    VmAction.DELETE,
]


def _action(parent: QObject, text: str, icon_name: str, shortcut: str = "") -> QAction:
    action = QAction(icon(icon_name), text, parent)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    return action


class AppActions(QObject):
    """The main window's actions."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.new_vm = _action(parent, "Virtual Machine...", "vm", "Ctrl+Shift+N")
        self.new_menu = QMenu("New", parent)
        self.new_menu.setObjectName("newMenu")
        self.new_menu.addAction(self.new_vm)
        # The disk commands (disk_commands.py); their icons appear once resources/icons has them.
        self.new_disk = _action(parent, "Hard Disk...", "hard-disk")
        self.new_disk.setObjectName("actionNewHardDisk")
        self.new_menu.addAction(self.new_disk)
        self.new = self.new_menu.menuAction()
        self.new.setIcon(icon("new"))
        self.hyperv_settings = _action(parent, "Hyper-V Settings...", "hyperv-settings")
        # The network commands (network_commands.py).
        self.switch_manager = _action(parent, "Virtual Switch Manager...", "virtual-switch")
        self.switch_manager.setObjectName("actionVirtualSwitchManager")
        self.switch_monitor = _action(parent, "Switch Monitor...", "switch-monitor")
        self.switch_monitor.setObjectName("actionSwitchMonitor")
        self.edit_disk = _action(parent, "Edit Disk...", "edit-disk")
        self.edit_disk.setObjectName("actionEditDisk")
        self.inspect_disk = _action(parent, "Inspect Disk...", "inspect-disk")
        self.inspect_disk.setObjectName("actionInspectDisk")
        self.refresh = _action(parent, "Refresh", "refresh", "F5")
        self.connect_server = _action(parent, "Connect to Server...", "server")
        self.remove_server = _action(parent, "Remove Server", "remove-server")
        self.quit = _action(parent, "Exit", "", "Ctrl+Q")
        self.about = _action(parent, "About hvmanager", "help")
        self.vm: dict[VmAction, QAction] = {
            kind: _action(parent, label, icon_name, shortcut)
            for kind, (label, icon_name, shortcut) in _VM_SPECS.items()
        }
        self.vm[VmAction.CONNECT].setToolTip("The console window arrives in a later version.")
        for kind, action in self.vm.items():
            action.setObjectName(f"action{kind.name.title().replace('_', '')}")
        self.checkpoint: dict[CheckpointAction, QAction] = {
            kind: _action(parent, label, icon_name, shortcut)
            for kind, (label, icon_name, shortcut) in _CHECKPOINT_SPECS.items()
        }
        for checkpoint_kind, action in self.checkpoint.items():
            action.setObjectName(f"action{checkpoint_kind.value.title().replace(' ', '')}")
        self.update_for([])
        self.update_checkpoint_actions([], can_revert=False, checkpoint_selected=False)

    def server_block(self) -> list[QAction | None]:
        """The server block of the Actions pane."""
        return [
            self.new,
            self.hyperv_settings,
            self.switch_manager,
            self.switch_monitor,
            self.edit_disk,
            self.inspect_disk,
            None,
            self.refresh,
            None,
            self.connect_server,
            self.remove_server,
        ]

    def toolbar(self) -> list[QAction | None]:
        """The toolbar: the VM commands of the Actions pane up to Revert, then Refresh."""
        block = self.vm_block()
        return [*block[: block.index(self.checkpoint[CheckpointAction.REVERT]) + 1], None, self.refresh]

    def vm_block(self) -> list[QAction | None]:
        """The VM block of the Actions pane: Checkpoint and Revert follow Reset, as in Hyper-V."""
        actions: list[QAction | None] = [None if kind is None else self.vm[kind] for kind in VM_BLOCK_ORDER]
        after_reset = actions.index(self.vm[VmAction.RESET]) + 1
        actions[after_reset:after_reset] = [
            self.checkpoint[CheckpointAction.TAKE],
            self.checkpoint[CheckpointAction.REVERT],
        ]
        return actions

    def checkpoint_block(self) -> list[QAction | None]:
        """The checkpoint block that replaces the VM block while a checkpoint is selected."""
        return [None if kind is None else self.checkpoint[kind] for kind in CHECKPOINT_BLOCK_ORDER]

    def show_checkpoint_block(self, shown: bool) -> None:
        """F2 and Del rename and delete the checkpoint while its block is shown, else the VM.

        One key on two enabled actions would be ambiguous in Qt, and neither would fire.
        """
        for key, (vm_kind, checkpoint_kind) in _SHARED_KEYS.items():
            self.vm[vm_kind].setShortcut(QKeySequence() if shown else QKeySequence(key))
            self.checkpoint[checkpoint_kind].setShortcut(QKeySequence(key) if shown else QKeySequence())

    def update_checkpoint_actions(
        self, states: list[VmState], can_revert: bool, checkpoint_selected: bool
    ) -> None:
        """Checkpoint needs VMs in a steady state; Revert one VM with a checkpoint to go back to.
        In the checkpoint block, what changes images (Apply, Delete) waits for a steady state too;
        looking (Settings, Disk Chain) and renaming do not."""
        steady = bool(states) and all(state in CHECKPOINT_STATES for state in states)
        single = len(states) == 1
        self.checkpoint[CheckpointAction.TAKE].setEnabled(steady)
        self.checkpoint[CheckpointAction.REVERT].setEnabled(steady and single and can_revert)
        for kind in CHECKPOINT_BLOCK_ORDER:
            if kind is not None:
                needs_steady = kind in _CHANGES_IMAGES
                self.checkpoint[kind].setEnabled(
                    checkpoint_selected and single and (steady or not needs_steady)
                )

    def update_for(self, states: list[VmState]) -> None:
        """Enable the VM actions that apply to every selected VM; Pause/Resume swap places."""
        for kind, action in self.vm.items():
            if not states or (len(states) > 1 and kind not in MULTI_SELECT):
                action.setEnabled(False)
                continue
            action.setEnabled(all(allowed(kind, state) for state in states))
        paused = bool(states) and all(state is VmState.PAUSED for state in states)
        self.vm[VmAction.PAUSE].setVisible(not paused)
        self.vm[VmAction.RESUME].setVisible(paused)

    def set_server_available(self, connected: bool, has_server: bool) -> None:
        """Server actions need a connected (or at least a selected) server."""
        self.new.setEnabled(connected)
        self.new_vm.setEnabled(connected)
        for server_action in (
            self.new_disk,
            self.edit_disk,
            self.inspect_disk,
            self.switch_manager,
            self.switch_monitor,
        ):
            server_action.setEnabled(connected)
        self.refresh.setEnabled(has_server)
        self.remove_server.setEnabled(has_server)
