"""Virtual switches of one server for the GUI: the Virtual Switch Manager's reads, checks and
changes, and the MAC address range of Global Network Settings, off the GUI thread.

Every back-end call (``switches``, ``host_adapters``, ``mac_pool``) runs in this controller's own
pool. Every method raises ``HvError`` on failure (a libvirt or netlink error the back end let
through is turned into one), so the dialog can show it; ``switches.ConfirmationNeeded`` and
``switches.SwitchInUseError`` come through unchanged: the dialog asks the user and calls again
with ``confirm_default_route`` or ``disconnect_users``.

The MAC address range is an application setting (``AppSettings.mac_minimum``/``mac_maximum``,
empty meaning the default range); it is read from and saved through the ``SettingsStore`` (the
``ServerManager``), so the rest of the application sees the new range at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, TypeVar

import libvirt
from pyroute2 import NetlinkError
from PySide6.QtCore import QObject, Signal

from hvmanager.backend import host_adapters, mac_pool, switches
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.network_models import HostAdapter, MacRange, SwitchInfo, SwitchSpec
from hvmanager.backend.settings import AppSettings
from hvmanager.controllers.tasks import BlockingRunner

T = TypeVar("T")

REMOTE_ADAPTERS = "External switches can be made on this computer's server only."


class SettingsStore(Protocol):
    """Where the application's settings live (``ServerManager``)."""

    settings: AppSettings

    def apply_settings(self, settings: AppSettings) -> None:
        """Save new settings and tell the application."""


class NetworkController(QObject):
    """The virtual switches of one server.

    Signals:
        switches_changed(): a switch was created, changed or removed through this controller.
    """

    switches_changed = Signal()

    def __init__(self, server: Server, store: SettingsStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = server
        self._store = store
        self._runner = BlockingRunner(workers=2, name=f"hv-network-{server.uri}")

    @property
    def local(self) -> bool:
        """Whether the server is this computer (only its adapters can back External switches)."""
        return self._server.local

    def close(self) -> None:
        """Accept no more work; a running change finishes in its thread."""
        self._runner.shutdown()

    # --- reading --------------------------------------------------------------------------------

    async def switches(self) -> list[SwitchInfo]:
        """Every virtual switch of the server, sorted by name."""
        return await self._call(lambda: switches.list_switches(self._server.conn))

    async def host_adapters(self) -> list[HostAdapter]:
        """The host adapters an External switch can be bound to (none on a remote server: this
        computer's adapters are not the server's)."""
        if not self._server.local:
            return []
        return await self._call(lambda: host_adapters.host_adapters(self._server.conn))

    async def switch_problems(self, spec: SwitchSpec, current: str | None = None) -> list[str]:
        """Why ``spec`` can't be created (or ``current`` changed to it); empty when it can."""
        if spec.host_adapter is not None and not self._server.local:
            return [REMOTE_ADAPTERS]
        return await self._call(lambda: switches.switch_problems(self._server.conn, spec, current))

    async def switch_users(self, name: str) -> list[tuple[str, str]]:
        """(VM name, adapter MAC) of every adapter connected to the switch."""
        return await self._call(lambda: switches.switch_users(self._server.conn, name))

    # --- changes --------------------------------------------------------------------------------

    async def create_switch(self, spec: SwitchSpec, confirm_default_route: bool = False) -> SwitchInfo:
        """New virtual switch."""
        info = await self._call(
            lambda: switches.create_switch(self._server.conn, spec, confirm_default_route)
        )
        self.switches_changed.emit()
        return info

    async def set_switch(
        self,
        current_name: str,
        spec: SwitchSpec,
        confirm_default_route: bool = False,
        disconnect_users: bool = False,
    ) -> SwitchInfo:
        """Change (rename, retype, rebind) the switch ``current_name``."""
        info = await self._call(
            lambda: switches.set_switch(
                self._server.conn, current_name, spec, confirm_default_route, disconnect_users
            )
        )
        self.switches_changed.emit()
        return info

    async def remove_switch(self, name: str, disconnect_users: bool = False) -> None:
        """Remove the switch (its users' adapters end Not connected with ``disconnect_users``)."""
        await self._call(lambda: switches.remove_switch(self._server.conn, name, disconnect_users))
        self.switches_changed.emit()

    # --- the MAC address range (Global Network Settings) ----------------------------------------

    async def mac_range(self) -> MacRange:
        """The range new adapters' dynamic MAC addresses come from."""
        settings = self._store.settings
        return await self._call(lambda: mac_pool.configured_range(settings))

    async def default_mac_range(self) -> MacRange:
        """The range used while none is configured (from this host's first IPv4 address)."""
        return await self._call(mac_pool.default_range)

    @staticmethod
    def parse_mac_range(minimum: str, maximum: str) -> tuple[MacRange | None, list[str]]:
        """The range typed (normalised), or None, and what is wrong with it (pure, no I/O)."""
        problems = []
        parsed = []
        for label, text in (("Minimum", minimum), ("Maximum", maximum)):
            try:
                parsed.append(mac_pool.normalize_mac(text.strip()))
            except ValidationError as exc:
                problems.append(f"{label}: {exc.message}")
        if problems:
            return None, problems
        typed = MacRange(parsed[0], parsed[1])
        return typed, mac_pool.range_problems(typed)

    async def save_mac_range(self, wanted: MacRange) -> None:
        """Keep ``wanted`` as the MAC address range (the default range is kept as "default", so it
        follows the host's address)."""
        problems = mac_pool.range_problems(wanted)
        if problems:
            raise ValidationError(problems[0])
        default = await self.default_mac_range()
        minimum, maximum = ("", "") if wanted == default else (wanted.minimum, wanted.maximum)
        settings = dataclasses.replace(self._store.settings, mac_minimum=minimum, mac_maximum=maximum)
        self._store.apply_settings(settings)

    # --- helpers --------------------------------------------------------------------------------

    async def _call(self, func: Callable[[], T]) -> T:
        """Run ``func`` in the pool; errors the back end did not explain become ``HvError``."""
        return await self._runner.run(_explained, func)


def _explained(func: Callable[[], T]) -> T:
    try:
        return func()
    except HvError:
        raise
    except libvirt.libvirtError as exc:
        raise HvError(f"The server refused: {exc.get_error_message() or exc}") from exc
    except (OSError, NetlinkError) as exc:
        raise HvError(f"The host's network configuration could not be read or changed: {exc}") from exc
