"""Checkpoint work of one server for the GUI: reading trees and running take, apply, revert,
delete, rename off the GUI thread, one operation per VM at a time.

Operations of one VM queue behind each other here (an ``asyncio.Lock`` per VM, first come first
served) and, across programs, on the backend's own lock. While an operation runs the Status column
shows it; a delete shows "Merging (n %)" from the backend's progress callback, which runs in an
executor thread and reaches the GUI thread through a queued signal. An operation waiting for its
turn adds "<kind> queued". Operations run in a pool of their own, so that a long merge never
delays the list's live figures.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, Signal

from hvmanager.backend import checkpoints
from hvmanager.backend.checkpoint_chain import DiskChain, disk_chains
from hvmanager.backend.checkpoint_tree import Checkpoint, CheckpointTree
from hvmanager.backend.checkpoints import MergeEstimate, TakeResult
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError
from hvmanager.backend.models import VmConfig
from hvmanager.controllers.tasks import BlockingRunner, spawn

log = logging.getLogger(__name__)
T = TypeVar("T")

MERGE_QUEUED = "Merge queued"


class _ProgressRelay(QObject):
    """Carries progress reports from executor threads to the GUI thread (queued connection)."""

    progress = Signal(str, int, str, float)  # uuid, operation number, what ("Merging"), percent


class CheckpointController(QObject):
    """The checkpoints of one server's VMs.

    Signals:
        tree_loaded(str uuid, CheckpointTree): a VM's tree was read (after a change, or on request).
        status_changed(str uuid, str text): the Status column text of checkpoint work ("" when idle).
        failed(str title, str message): an operation failed (what, why, what to do).
    """

    tree_loaded = Signal(str, object)
    status_changed = Signal(str, str)
    failed = Signal(str, str)

    def __init__(
        self,
        server: Server,
        reader: BlockingRunner,
        name_of: Callable[[str], str],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._server = server
        self._reader = reader  # the server's pool: short reads
        self._worker = BlockingRunner(name=f"hv-checkpoints-{server.uri}")  # long operations
        self._name_of = name_of
        self._locks: dict[str, asyncio.Lock] = {}
        self._running: dict[str, str] = {}  # uuid → status text of the running operation
        self._operation: dict[str, int] = {}  # uuid → number of the running operation
        self._numbers = itertools.count(1)
        self._queued: dict[str, list[str]] = {}  # uuid → "<kind> queued" of waiting operations
        self._loading: set[str] = set()
        self._reload: set[str] = set()
        self._closed = False
        self._relay = _ProgressRelay(self)
        self._relay.progress.connect(self._on_progress, Qt.ConnectionType.QueuedConnection)

    def close(self) -> None:
        """Accept no more work (the server goes away); a running merge finishes in its thread."""
        self._closed = True
        self._worker.shutdown()

    # --- reading --------------------------------------------------------------------------------

    def refresh(self, uuid: str) -> None:
        """Read a VM's tree again in the background; ``tree_loaded`` follows.

        Requests that arrive while a read runs are folded into one more read after it.
        """
        if self._closed:
            return
        if uuid in self._loading:
            self._reload.add(uuid)
            return
        self._loading.add(uuid)
        spawn(self._load(uuid))

    async def _load(self, uuid: str) -> None:
        try:
            while True:
                self._reload.discard(uuid)
                try:
                    tree = await self._reader.run(self._read_tree, uuid)
                except HvError as exc:
                    log.debug("could not read the checkpoints of %s: %s", uuid, exc)
                    return
                self.tree_loaded.emit(uuid, tree)
                if uuid not in self._reload:
                    return
        finally:
            self._loading.discard(uuid)

    def _read_tree(self, uuid: str) -> CheckpointTree:
        dom = self._server.lookup(uuid)
        if self._server.local and checkpoints.needs_recovery(dom):
            # An operation a crash interrupted: complete or roll it back before showing the tree.
            outcome = checkpoints.recover_vm(self._server.conn, dom)
            if outcome:
                log.warning("%s: %s", dom.name(), outcome)
        return checkpoints.load_tree(dom)

    async def config(self, uuid: str, checkpoint_id: str) -> VmConfig | None:
        """The configuration a checkpoint captured (None after reporting a failure)."""
        return await self._read(
            uuid, "Checkpoint Settings", lambda dom: checkpoints.checkpoint_config(dom, checkpoint_id)
        )

    async def screen(self, uuid: str, checkpoint_id: str) -> bytes | None:
        """The picture of the screen kept with a checkpoint (None when there is none)."""
        try:
            dom = await self._reader.run(self._server.lookup, uuid)
            return await self._reader.run(checkpoints.checkpoint_screen, dom, checkpoint_id)
        except HvError:
            return None

    async def chains(self, uuid: str, checkpoint_id: str | None) -> list[DiskChain] | None:
        """The disk chains of a checkpoint (or of the running state for None)."""
        return await self._read(uuid, "Disk Chain", lambda dom: disk_chains(dom, checkpoint_id))

    async def delete_estimate(self, uuid: str, checkpoint_id: str, subtree: bool) -> MergeEstimate | None:
        """The space a delete may need and what is free, read before the confirmation opens."""
        return await self._read(
            uuid, "Delete Checkpoint", lambda dom: checkpoints.delete_estimate(dom, checkpoint_id, subtree)
        )

    async def _read(self, uuid: str, title: str, work: Callable[[Any], T]) -> T | None:
        try:
            checkpoints.require_local(self._server.local)
            dom = await self._reader.run(self._server.lookup, uuid)
            return await self._reader.run(work, dom)
        except HvError as exc:
            self.failed.emit(f"{title} '{self._name_of(uuid)}'", str(exc))
            return None

    # --- operations -----------------------------------------------------------------------------

    async def take(self, uuid: str) -> TakeResult | None:
        """Checkpoint: take one with the default name."""
        return await self._operate(
            uuid, "Checkpoint", "Creating checkpoint", "Checkpoint queued", checkpoints.take
        )

    async def apply(self, uuid: str, checkpoint_id: str, take_first: bool) -> bool:
        """Apply a checkpoint (after taking one of the current state when ``take_first``)."""
        status = "Taking checkpoint and applying" if take_first else "Applying checkpoint"

        def work(conn: Any, dom: Any) -> bool:
            checkpoints.apply(conn, dom, checkpoint_id, take_first)
            return True

        return await self._operate(uuid, "Apply Checkpoint", status, "Apply queued", work) is not None

    async def revert(self, uuid: str) -> Checkpoint | None:
        """Revert: apply the checkpoint the current state derives from."""
        return await self._operate(uuid, "Revert", "Reverting", "Revert queued", checkpoints.revert)

    async def delete(self, uuid: str, checkpoint_id: str, subtree: bool) -> bool:
        """Delete a checkpoint (or its subtree); merges report their progress in the Status column."""
        title = "Delete Checkpoint Subtree" if subtree else "Delete Checkpoint"
        number = next(self._numbers)

        def report(what: str, percent: float) -> None:  # executor thread: only emit
            self._relay.progress.emit(uuid, number, what, percent)

        def work(conn: Any, dom: Any) -> bool:
            checkpoints.delete(conn, dom, checkpoint_id, subtree, progress=report)
            return True

        done = await self._operate(uuid, title, "Deleting checkpoint", MERGE_QUEUED, work, number)
        return done is not None

    async def rename(self, uuid: str, checkpoint_id: str, name: str) -> bool:
        """Rename a checkpoint."""

        def work(_conn: Any, dom: Any) -> bool:
            checkpoints.rename(dom, checkpoint_id, name)
            return True

        title, status = "Rename Checkpoint", "Renaming checkpoint"
        return await self._operate(uuid, title, status, "Rename queued", work) is not None

    async def _operate(
        self,
        uuid: str,
        title: str,
        status: str,
        queued: str,
        work: Callable[[Any, Any], T],
        number: int = 0,
    ) -> T | None:
        """Run ``work(conn, dom)`` in the executor after the VM's earlier operations; report a
        failure; re-read the tree. ``number`` tells its progress reports from late ones of others."""
        failure_title = f"{title} '{self._name_of(uuid)}'"
        try:
            checkpoints.require_local(self._server.local)
        except HvError as exc:
            self.failed.emit(failure_title, str(exc))
            return None
        lock = self._locks.setdefault(uuid, asyncio.Lock())
        waiting = self._queued.setdefault(uuid, [])
        waiting.append(queued)
        self._publish(uuid)
        started = False
        try:
            async with lock:
                started = True
                waiting.remove(queued)
                self._running[uuid] = status
                self._operation[uuid] = number
                self._publish(uuid)
                conn = self._server.conn  # NotConnectedError (an HvError) when the link dropped
                dom = await self._worker.run(self._server.lookup, uuid)
                return await self._worker.run(work, conn, dom)
        except HvError as exc:
            self.failed.emit(failure_title, str(exc))
            return None
        finally:
            if started:
                self._running.pop(uuid, None)
                self._operation.pop(uuid, None)
            else:
                waiting.remove(queued)  # cancelled while waiting for its turn
            self._publish(uuid)
            self.refresh(uuid)

    # --- the Status column ----------------------------------------------------------------------

    def status_text(self, uuid: str) -> str:
        """What the Status column shows for a VM's checkpoint work ("" when none)."""
        parts = [self._running[uuid]] if uuid in self._running else []
        for text in self._queued.get(uuid, []):
            if text not in parts:
                parts.append(text)
        return "; ".join(parts)

    def busy(self, uuid: str) -> bool:
        """Whether a checkpoint operation of this VM runs or waits in this application."""
        return uuid in self._running or bool(self._queued.get(uuid))

    def _publish(self, uuid: str) -> None:
        self.status_changed.emit(uuid, self.status_text(uuid))

    def _on_progress(self, uuid: str, number: int, what: str, percent: float) -> None:
        if uuid not in self._running or self._operation.get(uuid) != number:
            return  # a late report of an operation that has ended
        text = f"{what} ({int(percent)} %)"
        if self._running[uuid] != text:
            self._running[uuid] = text
            self._publish(uuid)
