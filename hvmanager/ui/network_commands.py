"""What the network commands of the server block do: Actions ▸ Virtual Switch Manager... and
Switch Monitor....

Each server gets one ``NetworkController`` (made on first use, a child of its
``ServerController``, closed when the server is removed) and at most one Virtual Switch Manager
window: asking again while it is open brings it to the front. ``open_switch_manager`` is the
entry point other windows and scripts use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from hvmanager.controllers.network import NetworkController
from hvmanager.controllers.server import ServerController
from hvmanager.ui.switch_manager_dialog import SwitchManagerDialog

if TYPE_CHECKING:
    from hvmanager.ui.main_window import MainWindow


def open_switch_manager(
    controller: NetworkController, server_title: str, parent: QWidget | None = None
) -> SwitchManagerDialog:
    """Open the Virtual Switch Manager of a server (window-modal, opened with ``open()``)."""
    dialog = SwitchManagerDialog(controller, server_title, parent)
    dialog.open()
    return dialog


class NetworkCommands(QObject):
    """Connects the server block's network actions to their windows, one controller per server."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._controllers: dict[str, NetworkController] = {}
        self._dialogs: dict[str, SwitchManagerDialog] = {}
        self.last_dialog: QObject | None = None
        acts = window.app_actions
        acts.switch_manager.triggered.connect(self.switch_manager)
        acts.switch_monitor.triggered.connect(self.switch_monitor)
        window.manager.server_removed.connect(self._forget)

    def controller_for(self, server: ServerController) -> NetworkController:
        """The network controller of a server (made on first use)."""
        controller = self._controllers.get(server.uri)
        if controller is None:
            controller = NetworkController(server.server, self.window.manager, server)
            self._controllers[server.uri] = controller
        return controller

    def _forget(self, uri: str) -> None:
        dialog = self._dialogs.pop(uri, None)
        if dialog is not None:
            dialog.reject()
        controller = self._controllers.pop(uri, None)
        if controller is not None:
            controller.close()

    def switch_manager(self) -> None:
        """Actions ▸ Virtual Switch Manager...: the window of the selected server."""
        server = self.window.current
        if server is None:
            return
        dialog = self._dialogs.get(server.uri)
        if dialog is None or not dialog.isVisible():
            dialog = open_switch_manager(self.controller_for(server), server.title, self.window)
            self._dialogs[server.uri] = dialog
            dialog.finished.connect(lambda _result, uri=server.uri: self._dialogs.pop(uri, None))
        else:
            dialog.raise_()
            dialog.activateWindow()
        self.last_dialog = dialog

    def switch_monitor(self) -> None:
        """Actions ▸ Switch Monitor...: live counters of the selected server's switches."""
        server = self.window.current
        if server is None:
            return
        from hvmanager.ui.switch_monitor import show_switch_monitor  # its own module, loaded on use

        self.last_dialog = show_switch_monitor(self.window, server)


__all__ = ["NetworkCommands", "open_switch_manager"]
