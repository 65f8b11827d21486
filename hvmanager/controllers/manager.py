"""The servers in the navigation tree and the application settings they share."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from hvmanager.backend.settings import AppSettings, save_settings
from hvmanager.controllers.server import ServerController


class ServerManager(QObject):
    """Owns one ``ServerController`` per server and persists the list in the settings.

    Signals:
        server_added(ServerController), server_removed(str uri), settings_changed(AppSettings).
    """

    server_added = Signal(object)
    server_removed = Signal(str)
    settings_changed = Signal(object)

    def __init__(self, settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.servers: dict[str, ServerController] = {}

    def start(self) -> None:
        """Add every saved server (the local one on first start) and connect them."""
        for uri in list(self.settings.servers):
            self._add(uri)

    def _add(self, uri: str) -> ServerController:
        controller = ServerController(uri, self.settings, self)
        self.servers[uri] = controller
        self.server_added.emit(controller)
        controller.connect_server()
        return controller

    def add_server(self, uri: str) -> ServerController:
        """Connect to Server: add it, remember it, connect."""
        if uri in self.servers:
            return self.servers[uri]
        self.settings.servers.append(uri)
        self._save()
        return self._add(uri)

    def remove_server(self, uri: str) -> None:
        """Remove Server: forget it (its VMs are untouched)."""
        controller = self.servers.pop(uri, None)
        if controller is None:
            return
        controller.close()
        if uri in self.settings.servers:
            self.settings.servers.remove(uri)
            self._save()
        self.server_removed.emit(uri)
        controller.deleteLater()

    def apply_settings(self, settings: AppSettings) -> None:
        """Hyper-V Settings were changed: save them and apply the refresh interval at once."""
        settings.servers = list(self.settings.servers)
        accel_changed = settings.accel != self.settings.accel
        self.settings = settings
        self._save()
        for controller in self.servers.values():
            controller.settings = settings
            controller.set_stats_interval(settings.stats_interval_ms)
            if accel_changed:
                controller.update_acceleration()
        self.settings_changed.emit(settings)

    def _save(self) -> None:
        save_settings(self.settings)

    def close(self) -> None:
        """Disconnect every server (the application quits: this waits for the daemons)."""
        for controller in self.servers.values():
            controller.close(wait=True)
