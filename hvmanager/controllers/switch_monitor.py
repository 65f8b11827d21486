"""Live switch counters for the GUI: the traffic history of a server's ports, and what the Switch
Monitor shows of one switch (its ports, totals and MAC address table).

``traffic_feed(server)`` gives the one ``TrafficFeed`` of a ``ServerController``: it records every
stats tick (``VmStats.ports``, from the same bulk call as the other live figures) into a
``TrafficHistory`` shared by the VM's Networking tab and the Switch Monitor, then emits
``recorded``, so that whoever draws finds the history already updated.

``SwitchMonitorController`` follows one switch: on every tick it picks that switch's ports and
totals; its MAC address table (the bridge's forwarding database, through netlink) is read in the
controller's own one-thread pool, never on the GUI thread: at once when the switch is chosen or
its ports change, otherwise every ``MAC_TABLE_INTERVAL_S`` (addresses move seldom, and a read
costs ~4 ms of CPU: every second it would be a good part of the live view's budget); a read still
running is never doubled. The switch list comes from the same pool.
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import QObject, Signal

from hvmanager.backend import switch_stats, switches
from hvmanager.backend.errors import HvError
from hvmanager.backend.models import VmStats
from hvmanager.backend.network_models import MacEntry, PortStats, SwitchInfo, SwitchTotals
from hvmanager.controllers.server import ServerController
from hvmanager.controllers.tasks import BlockingRunner, spawn
from hvmanager.views.traffic_history import TrafficHistory, ports_of

REMOTE_MAC_TABLE = "The MAC address table can be read on this computer's server only."
MAC_TABLE_INTERVAL_S = 10.0


class TrafficFeed(QObject):
    """Records each stats tick of one server into ``history``; then emits ``recorded(stats)``."""

    recorded = Signal(dict)

    def __init__(self, server: ServerController) -> None:
        super().__init__(server)
        self._server = server
        self.history = TrafficHistory(interval_s=self._interval_s())
        server.stats_updated.connect(self._on_stats)

    def _interval_s(self) -> float:
        return self._server.settings.stats_interval_ms / 1000

    def _on_stats(self, stats: dict[str, VmStats]) -> None:
        interval = self._interval_s()
        if interval != self.history.interval_s:
            self.history.set_interval(interval)
        self.history.record(ports_of(stats))
        self.recorded.emit(stats)


def traffic_feed(server: ServerController) -> TrafficFeed:
    """The server's traffic feed (made on first use; it lives as long as the server)."""
    feed = server.findChild(TrafficFeed)
    if isinstance(feed, TrafficFeed):
        return feed
    return TrafficFeed(server)


class SwitchMonitorController(QObject):
    """What the Switch Monitor shows of one switch of a server.

    Signals:
        switches_listed(list[SwitchInfo]): the server's switches (after ``refresh_switches``).
        ports_updated(list[PortStats], object): the shown switch's ports and its ``SwitchTotals``
            (None when no running VM is connected to it), on every tick and when the switch changes.
        mac_table_updated(list[MacEntry]): the shown switch's MAC address table, as just read.
        failed(str): reading the switch list or the MAC address table failed: why.
    """

    switches_listed = Signal(list)
    ports_updated = Signal(list, object)
    mac_table_updated = Signal(list)
    failed = Signal(str)

    def __init__(self, server: ServerController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.server = server
        self.feed = traffic_feed(server)
        self.history = self.feed.history
        self.switch: str | None = None
        self.ports: list[PortStats] = []
        self.totals: SwitchTotals | None = None
        self.mac_entries: list[MacEntry] = []
        self._runner = BlockingRunner(workers=1, name=f"hv-monitor-{server.uri}")
        self._mac_busy = False
        self._mac_read_at = -math.inf  # when the last read began (monotonic)
        self._mac_ports: frozenset[str] = frozenset()  # the port devices it was read for
        self._closed = False
        self.feed.recorded.connect(self._on_tick)

    # --- the switch list --------------------------------------------------------------------------

    def refresh_switches(self) -> None:
        """List the server's switches again in the background (``switches_listed``)."""
        spawn(self.list_switches())

    async def list_switches(self) -> list[SwitchInfo]:
        """The server's switches (also emitted); [] after reporting a failure."""
        server = self.server.server
        try:
            listed = await self._runner.run(lambda: switches.list_switches(server.conn))
        except HvError as exc:
            if not self._closed:
                self.failed.emit(str(exc))
            return []
        if not self._closed:
            self.switches_listed.emit(listed)
        return listed

    # --- the shown switch -------------------------------------------------------------------------

    def show_switch(self, name: str | None) -> None:
        """Follow another switch (None: none): its ports from the latest tick at once, then its
        MAC address table."""
        if name == self.switch:
            return
        self.switch = name
        self.mac_entries = []
        self.mac_table_updated.emit([])
        self._mac_read_at = -math.inf
        self._pick_ports(self.server.last_stats)
        if name is not None and not self.server.server.local:
            self.failed.emit(REMOTE_MAC_TABLE)
        self._read_mac_table()

    def _on_tick(self, stats: dict[str, VmStats]) -> None:
        if self.switch is None or self._closed:
            return
        self._pick_ports(stats)
        self._read_mac_table()

    def _pick_ports(self, stats: dict[str, VmStats]) -> None:
        name = self.switch
        if name is None:
            self.ports, self.totals = [], None
        else:
            self.ports = [port for port in ports_of(stats) if port.switch == name]
            self.totals = switch_stats.switch_totals(stats).get(name)
        self.ports_updated.emit(self.ports, self.totals)

    def _read_mac_table(self) -> None:
        """Read the shown switch's MAC address table in the pool (one read at a time; the bridge's
        forwarding database is on this computer, so not for remote servers)."""
        if self._mac_busy or self.switch is None or self._closed or not self.server.server.local:
            return
        devices = frozenset(port.device for port in self.ports)
        now = time.monotonic()
        if devices == self._mac_ports and now - self._mac_read_at < MAC_TABLE_INTERVAL_S:
            return
        self._mac_busy, self._mac_read_at, self._mac_ports = True, now, devices
        spawn(self._mac_table(self.switch, tuple(self.ports)))

    async def _mac_table(self, name: str, ports: tuple[PortStats, ...]) -> None:
        server = self.server.server
        try:
            entries = await self._runner.run(lambda: switch_stats.mac_table(server.conn, name, ports))
        except HvError as exc:
            if not self._closed and name == self.switch:
                self.failed.emit(str(exc))
            return
        finally:
            self._mac_busy = False
        if not self._closed and name == self.switch:
            self.mac_entries = entries
            self.mac_table_updated.emit(entries)

    def close(self) -> None:
        """Stop following the switch (the window closes); a running read ends in its thread."""
        if self._closed:
            return
        self._closed = True
        self.feed.recorded.disconnect(self._on_tick)
        self._runner.shutdown()
