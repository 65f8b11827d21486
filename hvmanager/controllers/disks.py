"""Virtual hard disk work of one server for the GUI: the New and Edit Virtual Hard Disk wizards'
checks and operations, and Inspect Disk, off the GUI thread.

Every back-end call (``vhd``, ``disk_usage``, ``vm_storage``, ``passthrough``) runs in this
controller's own pool, so a long convert or merge never delays the server's live figures. Long
operations report progress from their executor thread; a queued signal carries it to the GUI
thread, where it reaches the caller's ``on_progress`` and the ``progress`` signal.

Disk files are read and written on this computer, so only local servers are served (as for
checkpoints); on a remote server every call raises an ``HvError`` that says so. Every method raises
``HvError`` on failure: the wizards show its text on their page.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal

from hvmanager.backend import disk_usage, passthrough, vhd, vhd_create_checks, vhd_targets, vm_storage
from hvmanager.backend.connection import Server
from hvmanager.backend.disk_usage import DiskUser
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.storage_layout import HostDisk
from hvmanager.backend.vhd_types import DiskType, NewVhd, VhdInfo
from hvmanager.controllers.tasks import BlockingRunner

T = TypeVar("T")
OnProgress = Callable[[float], None]

REMOTE_REFUSAL = (
    "Virtual hard disk files can be created, inspected and edited on this computer's server only.",
    "Select the local server, or use hvctl on the other server itself.",
)


@dataclass(frozen=True)
class DiskReport:
    """What Inspect Disk and the Edit wizard's Locate Disk page know about a disk file.

    ``users`` is None when the server is not connected (who uses the disk is then unknown).
    """

    info: VhdInfo
    users: tuple[DiskUser, ...] | None

    @property
    def running_user(self) -> DiskUser | None:
        """The running VM that has the disk open, if any."""
        return _running_user(self.users)


def _running_user(users: tuple[DiskUser, ...] | None) -> DiskUser | None:
    """The running VM among a disk's users, if any (None also when the users are unknown)."""
    return next((user for user in users or () if user.running), None)


class _ProgressRelay(QObject):
    """Carries progress reports from executor threads to the GUI thread (queued connection)."""

    progress = Signal(int, str, float)  # operation number, path, percent


class DiskController(QObject):
    """Disk files of one (local) server.

    Signals:
        progress(str path, float percent): a long operation on ``path`` advanced (GUI thread).
    """

    progress = Signal(str, float)

    def __init__(self, server: Server, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = server
        self._runner = BlockingRunner(workers=3, name=f"hv-disks-{server.uri}")
        self._numbers = itertools.count(1)
        self._listeners: dict[int, OnProgress] = {}
        self._relay = _ProgressRelay(self)
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)

    @property
    def local(self) -> bool:
        """Whether this server's disk files are on this computer (the only ones served)."""
        return self._server.local

    def close(self) -> None:
        """Accept no more work; a running operation finishes in its thread."""
        self._runner.shutdown()

    # --- reading --------------------------------------------------------------------------------

    async def inspect(
        self, path: str, with_minimum_size: bool = False, with_users: bool = True
    ) -> DiskReport:
        """Inspect a disk file and (``with_users``) find the VMs that use it."""
        self._require_local()
        info = await self._runner.run(vhd.inspect, path, with_minimum_size)
        return DiskReport(info, await self._users(path) if with_users else None)

    async def _users(self, path: str) -> tuple[DiskUser, ...] | None:
        return await self._runner.run(_users_of, self._server, path)

    async def new_vhd_problems(self, request: NewVhd) -> list[str]:
        """Why ``request`` can't be created (empty when it can)."""
        self._require_local()
        return await self._runner.run(vhd.new_vhd_problems, request)

    async def destination_problems(
        self, source: VhdInfo, destination: str, fmt: str, disk_type: DiskType
    ) -> list[str]:
        """Why a new disk of ``fmt`` and ``disk_type`` can't be written to ``destination`` from
        ``source`` (Convert, Merge to a new disk); empty when it can."""
        self._require_local()
        return await self._runner.run(_destination_problems, source, destination, fmt, disk_type)

    async def ensure_folder(self, folder: str) -> None:
        """Create the host's folder for new disks (Hyper-V Settings) when it is missing; a folder
        that can't be made is left to the wizard's check to explain."""
        if self._server.local:
            await self._runner.run(_make_folder, folder)

    async def host_disks(self) -> list[HostDisk]:
        """The host's block devices whose contents a new disk can copy."""
        self._require_local()
        conn = self._server.conn
        return list(await self._runner.run(passthrough.host_disks, conn))

    # --- operations -----------------------------------------------------------------------------

    async def create(self, request: NewVhd, on_progress: OnProgress | None = None) -> VhdInfo:
        """New Virtual Hard Disk."""
        self._require_local()
        return await self._with_progress(request.path, on_progress, vhd.create, request)

    async def compact(self, path: str, on_progress: OnProgress | None = None) -> tuple[int, int]:
        """Compact in place; returns the file size before and after."""
        await self._require_offline(path)
        return await self._with_progress(path, on_progress, vhd.compact, path)

    async def convert(
        self,
        path: str,
        destination: str,
        fmt: str,
        disk_type: DiskType,
        on_progress: OnProgress | None = None,
    ) -> VhdInfo:
        """Convert to a new file (the source is kept)."""
        return await self._write_new(vhd.convert, path, destination, fmt, disk_type, on_progress)

    async def resize(self, path: str, size_bytes: int, on_progress: OnProgress | None = None) -> VhdInfo:
        """Expand or shrink a disk no running VM uses."""
        await self._require_offline(path)
        return await self._with_progress(path, on_progress, vhd.resize, path, size_bytes)

    async def expand_online(self, path: str, size_bytes: int) -> VhdInfo:
        """Expand the disk of a running VM through libvirt (the guest sees the new size)."""
        self._require_local()
        running = _running_user(await self._users(path))
        if running is None:
            raise InvalidStateError(
                f"No running virtual machine uses '{path}' any more.", "Expand it offline."
            )
        conn = self._server.conn
        dom = await self._runner.run(self._server.lookup, running.uuid)
        await self._runner.run(vm_storage.expand_online, conn, dom, running.target or path, size_bytes)
        return await self._runner.run(vhd.inspect, path, False)

    async def merge_into_parent(self, path: str, on_progress: OnProgress | None = None) -> VhdInfo:
        """Merge a differencing disk into its parent (the differencing disk is deleted)."""
        await self._require_offline(path)
        return await self._with_progress(path, on_progress, vhd.merge_into_parent, path)

    async def merge_to_new(
        self,
        path: str,
        destination: str,
        fmt: str,
        disk_type: DiskType,
        on_progress: OnProgress | None = None,
    ) -> VhdInfo:
        """Write a differencing disk's whole content to a new standalone disk."""
        return await self._write_new(vhd.merge_to_new, path, destination, fmt, disk_type, on_progress)

    async def reconnect(self, path: str, new_parent: str, ignore_id_mismatch: bool = False) -> VhdInfo:
        """Point a differencing disk at its moved parent."""
        await self._require_offline(path)
        return await self._runner.run(vhd.reconnect, path, new_parent, ignore_id_mismatch)

    # --- helpers --------------------------------------------------------------------------------

    def _require_local(self) -> None:
        if not self._server.local:
            raise HvError(*REMOTE_REFUSAL)

    async def _require_offline(self, path: str) -> None:
        """Edits other than Expand need the disk closed: no running VM may have it open."""
        self._require_local()
        running = _running_user(await self._users(path))
        if running is not None:
            raise InvalidStateError(
                f"'{path}' is in use by the running virtual machine '{running.vm_name}'.",
                "Shut the virtual machine down first (a running VM's disk can only be expanded).",
            )

    async def _write_new(
        self,
        func: Callable[..., VhdInfo],
        path: str,
        destination: str,
        fmt: str,
        disk_type: DiskType,
        on_progress: OnProgress | None,
    ) -> VhdInfo:
        """``func(path, destination, fmt, disk_type, progress)``: a disk no running VM uses written
        to a new file (its progress reported under the new file's name)."""
        await self._require_offline(path)
        return await self._with_progress(destination, on_progress, func, path, destination, fmt, disk_type)

    async def _with_progress(
        self, path: str, on_progress: OnProgress | None, func: Callable[..., T], *args: Any
    ) -> T:
        """Run ``func(*args, progress)`` with its reports delivered on the GUI thread."""
        number = next(self._numbers)
        if on_progress is not None:
            self._listeners[number] = on_progress

        def report(percent: float) -> None:  # executor thread: only emit
            self._relay.progress.emit(number, path, percent)

        try:
            return await self._runner.run(func, *args, report)
        finally:
            self._listeners.pop(number, None)

    def _on_progress(self, number: int, path: str, percent: float) -> None:
        listener = self._listeners.get(number)
        if listener is not None:
            listener(percent)
        self.progress.emit(path, percent)


def _destination_problems(source: VhdInfo, destination: str, fmt: str, disk_type: DiskType) -> list[str]:
    """The checks ``vhd.convert`` and ``vhd.merge_to_new`` make before writing, and the file name's
    extension (as for a new disk)."""
    problems = []
    checks: list[Callable[[], object]] = [
        lambda: vhd_targets.check_target(fmt, disk_type, source.size),
        lambda: vhd_targets.check_destination(source.path, destination),
    ]
    for check in checks:
        try:
            check()
        except ValidationError as exc:
            problems.append(str(exc))
    extension = vhd_create_checks.extension_problem(destination, fmt)
    return problems + ([extension] if extension else [])


def _make_folder(folder: str) -> None:
    with contextlib.suppress(OSError):
        os.makedirs(folder, exist_ok=True)


def _users_of(server: Server, path: str) -> tuple[DiskUser, ...] | None:
    """The VMs that use ``path``; None when the server is not connected (then nobody can tell)."""
    if not server.connected:
        return None
    return tuple(disk_usage.users_of(server.conn, path))
