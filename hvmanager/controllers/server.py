"""One server's live state for the GUI: connection, VM list, events, live figures, actions.

libvirt events arrive on the libvirt events thread; ``_EventBridge`` turns them into queued Qt
signals, so the controller handles them on the GUI thread, where they only record which VMs
changed; the blocking calls that follow run in the executor. A broken connection is retried every
``RECONNECT_INTERVAL_MS`` and events are registered again on each new connection.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from hvmanager.backend import (
    creation,
    guest_agent,
    inventory,
    kernel_features,
    mac_pool,
    operations,
    passthrough,
    screenshot,
    vm_storage,
    vmsettings,
)
from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError
from hvmanager.backend.models import HostInfo, VmConfig, VmInfo, VmSpec, VmState, VmStats
from hvmanager.backend.settings import AppSettings
from hvmanager.backend.stats import StatsSampler, local_start_time
from hvmanager.backend.storage_layout import HostDisk, StorageLayout
from hvmanager.backend.vmspec import HostContext
from hvmanager.controllers.checkpoints import CheckpointController
from hvmanager.controllers.tasks import BlockingRunner, spawn

log = logging.getLogger(__name__)

RECONNECT_INTERVAL_MS = 1000
_UNDEFINED = 1  # VIR_DOMAIN_EVENT_UNDEFINED (kept here: controllers may import libvirt, but need not)


def _probe_adapter_features() -> None:
    """Fill the kernel feature caches the network adapter rules read (blocking)."""
    kernel_features.adapter_vlan_problem()
    kernel_features.bandwidth_problem()


class _EventBridge(QObject):
    """The ``EventSink`` given to libvirt: re-emits events as signals (queued to the GUI thread).

    An event can still arrive from libvirt's thread while the server is being removed; once the
    Qt object is gone, emitting raises RuntimeError, and the event is simply dropped.
    """

    lifecycle = Signal(str, int, int)
    changed = Signal(str)
    agent = Signal(str, bool)
    closed = Signal(str)

    def _emit(self, signal: str, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # "Signal source has been deleted"
            getattr(self, signal).emit(*args)

    def domain_lifecycle(self, uuid: str, event: int, detail: int) -> None:
        """A domain started, stopped, was defined, ..."""
        self._emit("lifecycle", uuid, event, detail)

    def domain_changed(self, uuid: str) -> None:
        """A domain's configuration or devices changed."""
        self._emit("changed", uuid)

    def domain_agent(self, uuid: str, connected: bool) -> None:
        """The guest agent connected or disconnected."""
        self._emit("agent", uuid, connected)

    def connection_closed(self, reason: str) -> None:
        """The connection broke."""
        self._emit("closed", reason)


class ConnectionState(enum.Enum):
    """Where the connection to a server stands."""

    CONNECTING = "Connecting"
    CONNECTED = "Connected"
    DISCONNECTED = "Not connected"


class ServerController(QObject):
    """The GUI's view of one libvirt server.

    Signals:
        connection_changed(state, message): the connection state and, when broken, why and what to do.
        vms_listed(list[VmInfo]): the full list after (re)connecting.
        vm_updated(VmInfo): a VM was added or its state changed.
        vm_removed(str): a VM (uuid) is gone.
        stats_updated(dict[str, VmStats]): one tick of live figures.
        status_changed(str, str): a VM's operation text for the Status column ("" when idle).
        config_changed(str): a VM's configuration changed; its details should be re-read.
        heartbeat_changed(str, object): the guest agent of a VM connected (True) or not.
        failed(str, str): an action failed: title, message (with what to do).

    ``checkpoints`` runs the checkpoint work of this server's VMs (its Status texts and failures
    come out of this controller's signals).
    """

    connection_changed = Signal(object, str)
    vms_listed = Signal(list)
    vm_updated = Signal(object)
    vm_removed = Signal(str)
    stats_updated = Signal(dict)
    status_changed = Signal(str, str)
    config_changed = Signal(str)
    heartbeat_changed = Signal(str, object)
    failed = Signal(str, str)

    def __init__(self, uri: str, settings: AppSettings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.server = Server(uri)
        self.settings = settings
        self.state = ConnectionState.DISCONNECTED
        self.message = ""
        self.host: HostInfo | None = None
        self.accel: AccelDecision | None = None
        self.vms: dict[str, VmInfo] = {}
        self._configs: dict[str, VmConfig] = {}
        self._runner = BlockingRunner(name=f"hv-{uri}")
        self._sampler: StatsSampler | None = None
        self._last_stats: dict[str, VmStats] | None = None
        self.ticks = 0  # stats ticks done (whether or not a figure changed)
        self._shutting_down: set[str] = set()  # "Shutting down" shows until these are off
        self._stats_busy = False
        self._dirty: set[str] = set()
        self._stats_timer = QTimer(self)
        self._stats_timer.timeout.connect(self._on_stats_tick)
        self._retry_timer = QTimer(self)
        self._retry_timer.setSingleShot(True)
        self._retry_timer.timeout.connect(self.connect_server)
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.timeout.connect(self._flush_dirty)
        self._closing = False
        self._events = _EventBridge(self)
        self._events.lifecycle.connect(self.domain_lifecycle)
        self._events.changed.connect(self.domain_changed)
        self._events.agent.connect(self.domain_agent)
        self._events.closed.connect(self.connection_closed)
        self.checkpoints = CheckpointController(self.server, self._runner, self._name_of, self)
        self.checkpoints.status_changed.connect(self.status_changed)
        self.checkpoints.failed.connect(self.failed)

    def _name_of(self, uuid: str) -> str:
        info = self.vms.get(uuid)
        return info.name if info else uuid

    @property
    def uri(self) -> str:
        """The server's libvirt URI."""
        return self.server.uri

    @property
    def title(self) -> str:
        """The name shown in the navigation tree."""
        return self.host.hostname if self.host else self.uri

    # --- connection -----------------------------------------------------------------------------

    def connect_server(self) -> None:
        """Connect (again) in the background."""
        if self._closing or self.state is ConnectionState.CONNECTING:
            return
        spawn(self._connect())

    async def _connect(self) -> None:
        # Keep the last error while trying again, so the window doesn't flicker between them.
        self._set_connection(ConnectionState.CONNECTING, self.message)
        try:
            await self._runner.run(self.server.open, self._events)
            self.host = await self._runner.run(self.server.host_info)
            self.accel = await self._runner.run(creation.acceleration_for, self.server, self.settings)
            listed = await self._runner.run(inventory.list_vms, self.server.conn)
        except HvError as exc:
            await self._runner.run(self.server.close)  # a half-made connection is not kept
            self._set_connection(ConnectionState.DISCONNECTED, str(exc))
            self._schedule_retry()
            return
        self._sampler = StatsSampler(self.host.cpus, self._start_time_reader())
        self._last_stats = None
        self.vms = {vm.uuid: vm for vm in listed}
        self._configs.clear()
        self.vms_listed.emit(listed)
        self._set_connection(ConnectionState.CONNECTED, "")
        self._stats_timer.start(self.settings.stats_interval_ms)
        self._on_stats_tick()

    def _start_time_reader(self) -> Callable[[str], float | None] | None:
        if not self.server.local:
            return None
        session = self.server.session
        return lambda name: local_start_time(name, session)

    def _set_connection(self, state: ConnectionState, message: str) -> None:
        self.state, self.message = state, message
        self.connection_changed.emit(state, message)

    def _schedule_retry(self) -> None:
        if not self._closing:
            self._retry_timer.start(RECONNECT_INTERVAL_MS)

    def update_acceleration(self) -> None:
        """Decide KVM or TCG again (the setting changed)."""
        if self.state is ConnectionState.CONNECTED:
            spawn(self._decide_acceleration())

    async def _decide_acceleration(self) -> None:
        try:
            self.accel = await self._runner.run(creation.acceleration_for, self.server, self.settings)
        except HvError as exc:
            log.warning("could not decide acceleration: %s", exc)

    def set_stats_interval(self, interval_ms: int) -> None:
        """Change the refresh interval of live figures."""
        if self._stats_timer.isActive():
            self._stats_timer.start(interval_ms)

    def close(self, wait: bool = False) -> None:
        """Stop timers and disconnect.

        When a server is removed the connection is closed in the background (the daemon may be
        slow to answer); when the application quits, ``wait`` closes it before returning, so that
        no libvirt call is still running while the interpreter shuts down.
        """
        self._closing = True
        self._events.blockSignals(True)
        for timer in (self._stats_timer, self._retry_timer, self._flush_timer):
            timer.stop()
        self.checkpoints.close()
        if wait:
            self._runner.shutdown()
            self.server.close()
        else:
            self._runner.shutdown(last=self.server.close)

    # --- libvirt events, on the GUI thread (queued by _EventBridge); no libvirt calls here -----

    def domain_lifecycle(self, uuid: str, event: int, detail: int) -> None:
        """A VM changed state (or was defined or undefined)."""
        self._forget_config(uuid)
        self._mark_dirty(uuid)

    def domain_changed(self, uuid: str) -> None:
        """A VM's configuration or devices changed."""
        self._forget_config(uuid)
        self.config_changed.emit(uuid)

    def _forget_config(self, uuid: str) -> None:
        self._configs.pop(uuid, None)
        if self._sampler is not None:
            # A live "Not connected" only takes the link down and sends no device event; the
            # configuration written with it (a "defined" event) is the sign to re-read the ports.
            self._sampler.adapters_changed(uuid)

    def domain_agent(self, uuid: str, connected: bool) -> None:
        """The guest agent connected or went away."""
        self.heartbeat_changed.emit(uuid, connected)

    def connection_closed(self, reason: str) -> None:
        """The daemon went away: say so and try again."""
        if self._closing:
            return
        self._stats_timer.stop()
        self._set_connection(ConnectionState.DISCONNECTED, f"The connection was lost ({reason}).")
        self._schedule_retry()

    def _mark_dirty(self, uuid: str) -> None:
        if self._closing:
            return  # events still queued when the server was removed or the app quit
        self._dirty.add(uuid)
        if not self._flush_timer.isActive():
            self._flush_timer.start(0)

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, set()
        for uuid in dirty:
            spawn(self._refresh_vm(uuid))

    async def refresh_vm(self, uuid: str) -> None:
        """Read one VM's state again now (after creating it, for example)."""
        await self._refresh_vm(uuid)

    async def _refresh_vm(self, uuid: str) -> None:
        try:
            info = await self._runner.run(self._read_vm, uuid)
        except HvError:
            return  # the connection dropped; the reconnect lists everything again
        if info is None:
            if self.vms.pop(uuid, None) is not None:
                self.vm_removed.emit(uuid)
            return
        self.vms[uuid] = info
        self.vm_updated.emit(info)
        self.config_changed.emit(uuid)
        if uuid in self._shutting_down and not info.state.is_active:
            self._shutting_down.discard(uuid)
            self.status_changed.emit(uuid, "")

    def _read_vm(self, uuid: str) -> VmInfo | None:
        conn = self.server.conn
        try:
            dom = conn.lookupByUUIDString(uuid)
        except Exception:  # libvirtError: no domain with this uuid any more
            return None
        try:
            return inventory.vm_info(dom)
        except HvError:
            return None

    # --- live figures -------------------------------------------------------------------------

    def _on_stats_tick(self) -> None:
        if self._stats_busy or self._sampler is None or self.state is not ConnectionState.CONNECTED:
            return  # skip a tick while the previous one still runs
        self._stats_busy = True
        spawn(self._sample())

    async def _sample(self) -> None:
        try:
            assert self._sampler is not None
            stats = await self._runner.run(self._sample_if_changed, self._sampler)
            self.ticks += 1
            if stats is not None:
                self.stats_updated.emit(stats)
        except HvError as exc:
            log.debug("stats tick failed: %s", exc)
        finally:
            self._stats_busy = False

    @property
    def last_stats(self) -> dict[str, VmStats]:
        """The latest live figures (a tick that changed nothing emits nothing)."""
        return self._last_stats or {}

    def _sample_if_changed(self, sampler: StatsSampler) -> dict[str, VmStats] | None:
        """One tick (in the executor); None when no figure changed, so the GUI has nothing to do."""
        stats = sampler.sample(self.server.conn)
        if stats == self._last_stats:
            return None
        self._last_stats = stats
        return stats

    async def refresh(self) -> None:
        """Re-list every VM (Refresh)."""
        if self.state is not ConnectionState.CONNECTED:
            self.connect_server()
            return
        try:
            listed = await self._runner.run(inventory.list_vms, self.server.conn)
        except HvError as exc:
            self.failed.emit("Refresh", str(exc))
            return
        self.vms = {vm.uuid: vm for vm in listed}
        self._configs.clear()
        self.vms_listed.emit(listed)

    # --- reading details ----------------------------------------------------------------------

    async def config(self, uuid: str) -> VmConfig | None:
        """The VM's configuration (cached until an event says it changed)."""
        cached = self._configs.get(uuid)
        if cached is not None:
            return cached
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            config = await self._runner.run(inventory.vm_config, dom)
        except HvError:
            return None
        self._configs[uuid] = config
        return config

    async def details(self, uuid: str) -> dict[str, Any]:
        """Heartbeat and addresses for the details pane."""
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            heartbeat = await self._runner.run(guest_agent.heartbeat, dom)
            addresses: dict[str, list[str]] = {}
            if self.vms.get(uuid) and self.vms[uuid].state.is_active:
                addresses = await self._runner.run(inventory.interface_addresses, dom)
        except HvError:
            return {}
        return {"heartbeat": heartbeat, "addresses": addresses}

    async def screenshot(self, uuid: str) -> tuple[str, bytes] | None:
        """The screen of a running VM, or None when it can't be taken."""
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            return await self._runner.run(screenshot.take_screenshot, self.server.conn, dom)
        except HvError:
            return None

    async def host_context(self) -> HostContext:
        """What the New Virtual Machine wizard validates against."""
        return await self._runner.run(creation.host_context, self.server)

    async def inactive_config(self, uuid: str) -> VmConfig | None:
        """The configuration the VM will have at its next start (what Settings edits)."""
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            return await self._runner.run(lambda: inventory.vm_config(dom, inactive=True))
        except HvError:
            return None

    async def checkpoint_settings(self, uuid: str) -> Any:
        """What the Settings dialog's Checkpoints page shows (None on remote servers or failure)."""
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            return await self._runner.run(vmsettings.checkpoint_settings, self.server.conn, dom)
        except HvError:
            return None

    async def storage(self, uuid: str) -> tuple[StorageLayout | None, list[HostDisk]]:
        """The VM's controllers and drives and the host disks it could pass through, for the
        Settings dialog (None and [] on remote servers: their files can't be checked from here)."""
        if not self.server.local:
            return None, []
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            layout = await self._runner.run(vm_storage.current_layout, dom)
            disks = await self._runner.run(passthrough.host_disks, self.server.conn)
        except HvError:
            return None, []
        return layout, disks

    async def network_settings(self, uuid: str) -> vmsettings.NetworkSettings | None:
        """The VM's network adapters, the server's virtual switches and the MAC address range, for
        the Settings dialog's network pages (None when they can't be read)."""
        try:
            # The default range comes from the host's address (a netlink dump): in the runner too.
            mac_range = await self._runner.run(mac_pool.configured_range, self.settings)
            dom = await self._runner.run(self.server.lookup, uuid)
            network = await self._runner.run(vmsettings.network_settings, self.server.conn, dom, mac_range)
        except HvError:
            return None
        # The dialog's rules ask the kernel (VLAN filtering, traffic shaping) as the user types: probe
        # it here, once per process and off the GUI thread (pyroute2 can't run inside the Qt loop).
        await self._runner.run(_probe_adapter_features)
        return network

    async def inactive_xml(self, uuid: str) -> str:
        """The VM's persistent domain XML (for the Settings dialog)."""
        dom = await self._runner.run(self.server.lookup, uuid)
        return await self._runner.run(inventory.domain_xml, dom)

    # --- actions ------------------------------------------------------------------------------

    async def create_vm(self, spec: VmSpec) -> str | None:
        """Create a VM; returns its UUID, or None after reporting the failure."""
        assert self.accel is not None
        try:
            return await self._runner.run(creation.create_vm, self.server, spec, self.accel)
        except HvError as exc:
            self.failed.emit("New Virtual Machine", str(exc))
            return None

    async def run_action(
        self, uuid: str, title: str, status: str, func: Callable[..., Any], *args: Any
    ) -> bool:
        """Run a blocking VM action with a Status text; report failures; True on success."""
        name = self._name_of(uuid)
        self.status_changed.emit(uuid, status)
        try:
            dom = await self._runner.run(self.server.lookup, uuid)
            await self._runner.run(func, dom, *args)
        except HvError as exc:
            self.failed.emit(f"{title} '{name}'", str(exc))
            return False
        finally:
            # A checkpoint merge may still run on the VM: its text comes back.
            self.status_changed.emit(uuid, self.checkpoints.status_text(uuid))
            self._mark_dirty(uuid)
        return True

    async def start(self, uuid: str) -> bool:
        """Start or restore a VM (with this server's acceleration decision)."""
        conn, accel = self.server.conn, self.accel
        return await self.run_action(
            uuid, "Start", "Starting", lambda dom: operations.start(conn, dom, accel)
        )

    async def turn_off(self, uuid: str) -> bool:
        """Turn Off."""
        return await self.run_action(uuid, "Turn Off", "Turning off", operations.turn_off)

    async def shut_down(self, uuid: str) -> bool:
        """Shut Down: ask the guest; Status shows it until the VM is off."""
        ok = await self.run_action(uuid, "Shut Down", "Shutting down", operations.shut_down)
        if ok and self.vm_state(uuid) is not VmState.OFF:
            self._shutting_down.add(uuid)
            self.status_changed.emit(uuid, "Shutting down")
        return ok

    async def save(self, uuid: str) -> bool:
        """Save."""
        return await self.run_action(uuid, "Save", "Saving", operations.save)

    async def pause(self, uuid: str) -> bool:
        """Pause."""
        return await self.run_action(uuid, "Pause", "Pausing", operations.pause)

    async def resume(self, uuid: str) -> bool:
        """Resume."""
        return await self.run_action(uuid, "Resume", "Resuming", operations.resume)

    async def reset(self, uuid: str) -> bool:
        """Reset."""
        return await self.run_action(uuid, "Reset", "Resetting", operations.reset)

    async def delete_saved_state(self, uuid: str) -> bool:
        """Delete Saved State."""
        return await self.run_action(
            uuid, "Delete Saved State", "Deleting saved state", operations.delete_saved_state
        )

    async def rename(self, uuid: str, new_name: str) -> bool:
        """Rename."""
        conn = self.server.conn
        return await self.run_action(
            uuid, "Rename", "Renaming", lambda dom: operations.rename(conn, dom, new_name)
        )

    async def delete(self, uuid: str, delete_disks: bool) -> operations.DeleteReport | None:
        """Delete the VM (and optionally its disks); returns what was deleted and kept."""
        conn, local = self.server.conn, self.server.local
        result: list[operations.DeleteReport] = []
        ok = await self.run_action(
            uuid,
            "Delete",
            "Deleting",
            lambda dom: result.append(operations.delete(conn, dom, delete_disks, local)),
        )
        return result[0] if ok and result else None

    async def apply_settings(self, uuid: str, change: Any) -> list[str] | None:
        """Apply a Settings dialog change; returns notes for the user, or None on failure."""
        host, conn, notes = self.host, self.server.conn, []
        assert host is not None, "connected servers always have host facts"

        def _apply(dom: Any) -> None:
            notes.extend(vmsettings.apply_settings(conn, dom, change, host))

        ok = await self.run_action(uuid, "Settings", "Applying settings", _apply)
        self._forget_config(uuid)
        self.config_changed.emit(uuid)
        return notes if ok else None

    def vm_state(self, uuid: str) -> VmState | None:
        """The last known state of a VM."""
        info = self.vms.get(uuid)
        return info.state if info else None
