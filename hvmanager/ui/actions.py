"""Every command of the main window as a ``QAction``: one object each for the Actions pane, the
menus, the toolbar and the row context menu, with Hyper-V's labels and VMConnect's shortcuts.

``update_for`` enables the VM actions from the states of the selected VMs, using the backend's
single table of which action applies in which state.
"""

from __future__ import annotations

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
        self.new = self.new_menu.menuAction()
        self.new.setIcon(icon("new"))
        self.hyperv_settings = _action(parent, "Hyper-V Settings...", "hyperv-settings")
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
        self.update_for([])

    def server_block(self) -> list[QAction | None]:
        """The server block of the Actions pane."""
        return [
            self.new,
            self.hyperv_settings,
            None,
            self.refresh,
            None,
            self.connect_server,
            self.remove_server,
        ]

    def toolbar(self) -> list[QAction | None]:
        """The toolbar: the VM commands of the Actions pane up to Reset, then Refresh."""
        commands = VM_BLOCK_ORDER[: VM_BLOCK_ORDER.index(VmAction.RESET) + 1]
        return [None if kind is None else self.vm[kind] for kind in commands] + [None, self.refresh]

    def vm_block(self) -> list[QAction | None]:
        """The VM block of the Actions pane."""
        return [None if kind is None else self.vm[kind] for kind in VM_BLOCK_ORDER]

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
        self.refresh.setEnabled(has_server)
        self.remove_server.setEnabled(has_server)
