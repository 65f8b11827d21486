"""Running blocking work off the GUI thread and keeping fire-and-forget tasks alive."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hvmanager.backend.errors import NotConnectedError

log = logging.getLogger(__name__)
T = TypeVar("T")

_background: set[asyncio.Task[Any]] = set()


class BlockingRunner:
    """A thread pool for blocking libvirt and tool calls, awaited from the GUI loop."""

    def __init__(self, workers: int = 4, name: str = "hvmanager") -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._closed = False

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the pool and await its result.

        Raises ``NotConnectedError`` once the runner was shut down (the server was removed or the
        application quits while a timer had just scheduled more work).
        """
        if self._closed:
            raise NotConnectedError("The connection to this server was closed.")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, func, *args)

    def shutdown(self, last: Callable[[], object] | None = None) -> None:
        """Stop accepting work; queued calls are dropped, running ones finish in their threads.

        ``last`` (closing the connection, say) runs in a thread of its own, so that the caller,
        the GUI thread, never waits for the daemon.
        """
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        if last is not None:
            threading.Thread(target=last, name="hvmanager-close", daemon=True).start()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start a coroutine as a task that is kept referenced until it ends; errors are logged."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task failed", exc_info=exc)


def pending_tasks() -> int:
    """How many spawned tasks are still running (tests wait for zero)."""
    return len(_background)
