"""One libvirt connection per server: open, keepalive, close detection, domain events.

Events and keepalives need an event loop implementation registered *before* the first connection
opens. ``start_event_thread`` registers libvirt's own (C, thread-safe) implementation and runs it
on a daemon thread. ``libvirtaio`` on the GUI's qasync loop was tried first and dropped: libvirt
calls the event implementation's add/update/remove hooks from whichever thread makes a libvirt
call, our calls run in an executor, and libvirtaio then touches the asyncio loop from those
threads (Qt aborted with "Timers cannot be started from another thread"). Callbacks run on the
events thread: they copy identifiers into the ``EventSink`` and never call libvirt; the GUI's
sink forwards them to the GUI thread as queued Qt signals.

Also here: what a connection says about the machine it reaches (``is_local_uri``,
``local_qemu_user``).
"""

from __future__ import annotations

import logging
import os
import pwd
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import libvirt

from hvmanager.backend import accel
from hvmanager.backend.daemons import connect_hint
from hvmanager.backend.errors import HvError, NotConnectedError
from hvmanager.backend.models import HostInfo

log = logging.getLogger(__name__)

KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3
_events_registered = False


def _silence_libvirt_stderr(_ctx: object, _err: object) -> None:
    """libvirt prints every error on stderr by default; we report them ourselves."""


libvirt.registerErrorHandler(_silence_libvirt_stderr, None)


def start_event_thread() -> None:
    """Deliver libvirt events and keepalives from now on (once per process, before any open)."""
    global _events_registered
    if _events_registered:
        return
    libvirt.virEventRegisterDefaultImpl()
    threading.Thread(target=_run_events, name="libvirt-events", daemon=True).start()
    _events_registered = True


def _run_events() -> None:
    while True:
        if libvirt.virEventRunDefaultImpl() < 0:
            log.error("libvirt's event loop failed")


def events_available() -> bool:
    """Whether an event loop implementation was registered."""
    return _events_registered


class EventSink(Protocol):
    """Receives libvirt events, on the libvirt events thread."""

    def domain_lifecycle(self, uuid: str, event: int, detail: int) -> None:
        """A domain started, stopped, was defined, ... (``VIR_DOMAIN_EVENT_*``)."""

    def domain_changed(self, uuid: str) -> None:
        """A domain's configuration or devices changed, or it rebooted."""

    def domain_agent(self, uuid: str, connected: bool) -> None:
        """The guest agent channel connected or disconnected (Heartbeat)."""

    def connection_closed(self, reason: str) -> None:
        """The connection broke (daemon stopped, keepalive timeout, ...)."""


_CLOSE_REASONS = {0: "error", 1: "end of file", 2: "keepalive timeout", 3: "client closed"}


@contextmanager
def libvirt_errors(what: str, hint: str = "") -> Iterator[None]:
    """Turn a ``libvirtError`` into an ``HvError`` that says what failed and why."""
    try:
        yield
    except libvirt.libvirtError as exc:
        message = exc.get_error_message() or str(exc)
        raise HvError(f"{what} failed: {message}", hint) from exc


def is_local_uri(uri: str) -> bool:
    """A URI of this machine's hypervisor (no host part, not the test driver)."""
    parsed = urlparse(uri)
    return not parsed.netloc and parsed.scheme in ("qemu", "kvm")


def local_qemu_user(conn: Any) -> str | None:
    """The user QEMU runs as on this machine (folders must be reachable by it), or None when the
    server is another machine."""
    with libvirt_errors("Reading the server's address"):
        uri = str(conn.getURI())
    if not is_local_uri(uri):
        return None
    if urlparse(uri).path.rstrip("/") == "/session":
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        return accel.qemu_user_from_conf(Path(accel.QEMU_CONF).read_text(encoding="utf-8"))
    except OSError:
        return "libvirt-qemu"  # Debian's default when qemu.conf can't be read


class Server:
    """A connection to one libvirt server, with optional event delivery to an ``EventSink``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._conn: Any = None
        self._callback_ids: list[int] = []
        self._sink: EventSink | None = None
        self._broken: Any = None

    @property
    def local(self) -> bool:
        """Whether the server is this machine's QEMU (its files are ours to check)."""
        return is_local_uri(self.uri)

    @property
    def session(self) -> bool:
        """Whether this is a per-user (``qemu:///session``) hypervisor."""
        return urlparse(self.uri).path.rstrip("/") == "/session"

    @property
    def connected(self) -> bool:
        """Whether a connection is open and alive."""
        if self._conn is None:
            return False
        try:
            return bool(self._conn.isAlive())
        except libvirt.libvirtError:
            return False

    @property
    def conn(self) -> Any:
        """The ``virConnect``; raises ``NotConnectedError`` when there is none."""
        if self._conn is None:
            raise NotConnectedError(f"Not connected to {self.uri}.", connect_hint(self.uri))
        return self._conn

    def open(self, sink: EventSink | None = None) -> None:
        """Connect (blocking); with a sink and a registered event loop, also subscribe to events."""
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise NotConnectedError(
                f"Can't connect to {self.uri}: {exc.get_error_message()}", connect_hint(self.uri)
            ) from exc
        self._conn = conn
        self._broken = None
        self._sink = sink
        if sink is not None and events_available():
            self._subscribe(conn, sink)

    def _subscribe(self, conn: Any, sink: EventSink) -> None:
        if not self.uri.startswith("test:"):
            with libvirt_errors("Enabling keepalive"):
                conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
        conn.registerCloseCallback(self._on_close, None)
        register = conn.domainEventRegisterAny
        self._callback_ids = [
            register(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None),
            register(None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None),
            register(None, libvirt.VIR_DOMAIN_EVENT_ID_AGENT_LIFECYCLE, self._on_agent, None),
            register(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, self._on_device, None),
            register(None, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED, self._on_device, None),
            register(None, libvirt.VIR_DOMAIN_EVENT_ID_METADATA_CHANGE, self._on_metadata, None),
        ]

    def close(self) -> None:
        """Unsubscribe and disconnect (errors of a dead connection are ignored)."""
        self._sink = None  # an event already on its way finds no listener
        conn, self._conn = self._conn, None
        if conn is None:
            return
        for callback_id in self._callback_ids:
            with suppress(libvirt.libvirtError):
                conn.domainEventDeregisterAny(callback_id)
        self._callback_ids = []
        with suppress(libvirt.libvirtError):
            conn.unregisterCloseCallback()
        with suppress(libvirt.libvirtError):
            conn.close()

    def forget(self) -> None:
        """Drop a connection that broke, without talking to the daemon.

        The object is kept until the next ``open``: releasing the last reference inside
        libvirt's own close callback would close the connection from within that callback.
        """
        self._broken = self._conn
        self._conn = None
        self._callback_ids = []

    def host_info(self) -> HostInfo:
        """Host facts (blocking)."""
        conn = self.conn
        with libvirt_errors("Reading the host's facts"):
            info = conn.getInfo()
            version = conn.getLibVersion()
            hypervisor = conn.getType()
            hostname = conn.getHostname()
        major, minor, micro = version // 1_000_000, version // 1000 % 1000, version % 1000
        return HostInfo(
            uri=self.uri,
            hostname=hostname,
            cpus=int(info[2]),
            memory_mib=int(info[1]),
            libvirt_version=f"{major}.{minor}.{micro}",
            hypervisor=hypervisor,
        )

    def lookup(self, uuid: str) -> Any:
        """The ``virDomain`` with this UUID."""
        with libvirt_errors("Finding the virtual machine"):
            return self.conn.lookupByUUIDString(uuid)

    # --- event callbacks: run on the event loop; copy ids, call no libvirt API ------------------

    def _on_lifecycle(self, _conn: Any, dom: Any, event: int, detail: int, _opaque: Any) -> None:
        if self._sink is not None:
            self._sink.domain_lifecycle(dom.UUIDString(), event, detail)

    def _on_reboot(self, _conn: Any, dom: Any, _opaque: Any) -> None:
        if self._sink is not None:
            self._sink.domain_changed(dom.UUIDString())

    def _on_agent(self, _conn: Any, dom: Any, state: int, _reason: int, _opaque: Any) -> None:
        if self._sink is not None:
            connected = state == libvirt.VIR_CONNECT_DOMAIN_EVENT_AGENT_LIFECYCLE_STATE_CONNECTED
            self._sink.domain_agent(dom.UUIDString(), connected)

    def _on_device(self, _conn: Any, dom: Any, _alias: str, _opaque: Any) -> None:
        if self._sink is not None:
            self._sink.domain_changed(dom.UUIDString())

    def _on_metadata(self, _conn: Any, dom: Any, _kind: int, _ns: str, _opaque: Any) -> None:
        if self._sink is not None:
            self._sink.domain_changed(dom.UUIDString())

    def _on_close(self, _conn: Any, reason: int, _opaque: Any) -> None:
        log.info("connection to %s closed: %s", self.uri, _CLOSE_REASONS.get(reason, reason))
        self.forget()
        if self._sink is not None:
            self._sink.connection_closed(_CLOSE_REASONS.get(reason, str(reason)))
