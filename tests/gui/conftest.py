"""GUI test fixtures: one qasync loop for the session (libvirt events are registered on it once),
and a factory for a real ``MainWindow`` connected to a libvirt server.

Test bodies that need the application's coroutines are ``async`` functions run with ``run``; they
wait with ``wait_until`` (asyncio sleeps), never with a nested Qt loop inside a running task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication

from hvmanager.backend.connection import start_event_thread
from hvmanager.backend.settings import AppSettings
from hvmanager.controllers.manager import ServerManager
from hvmanager.controllers.tasks import pending_tasks
from hvmanager.controllers.watchdog import StallWatchdog
from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.theme import apply_theme
from tests.conftest import record_measurement


@pytest.fixture(scope="session")
def event_loop_qt(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """The qasync loop (and libvirt's event thread); closed at the end of the session.

    Closing stops the loop's default executor (QThreads behind ``asyncio.to_thread``): a QThread
    still running when the interpreter exits aborts the process. tests/vm/conftest.py imports this
    fixture, which makes pytest keep a second copy: both copies hand out the one loop, whichever
    directory's tests run first.
    """
    if _LOOPS:
        yield _LOOPS[0]
        return
    apply_theme(qapp)
    # Closing a test's only window must not stop the loop while late events still run tasks.
    qapp.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)
    start_event_thread()
    _LOOPS.append(loop)
    yield loop
    _LOOPS.clear()
    loop.close()


_LOOPS: list[qasync.QEventLoop] = []


Runner = Callable[[Callable[[], Awaitable[Any]]], Any]


@pytest.fixture
def run(event_loop_qt: qasync.QEventLoop) -> Runner:
    """Run an async test body on the qasync loop (with a generous timeout)."""

    def _run(body: Callable[[], Awaitable[Any]], timeout: float = 240) -> Any:
        return event_loop_qt.run_until_complete(asyncio.wait_for(body(), timeout))

    return _run


async def wait_until(predicate: Callable[[], Any], timeout: float = 10, what: str = "") -> Any:
    """Poll ``predicate`` (letting the loop run) until it is truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


async def settle() -> None:
    """Let spawned background tasks finish."""
    await wait_until(lambda: pending_tasks() == 0, 30, "background tasks")


WindowFactory = Callable[..., MainWindow]


@pytest.fixture
def make_window(event_loop_qt: qasync.QEventLoop, qtbot: Any, tmp_path: Path) -> Iterator[WindowFactory]:
    """Build real main windows; they are closed (and their connections dropped) afterwards."""
    windows: list[MainWindow] = []

    def _make(*uris: str, vm_folder: str | None = None, interval_ms: int = 1000) -> MainWindow:
        settings = AppSettings(
            servers=list(uris), vm_folder=vm_folder or str(tmp_path), stats_interval_ms=interval_ms
        )
        manager = ServerManager(settings)
        window = MainWindow(manager)
        window.resize(1280, 800)
        window.show()
        manager.start()
        windows.append(window)
        return window

    yield _make

    async def _close_all() -> None:
        for window in windows:
            window.close()  # stops the timers and disconnects
        await settle()
        for window in windows:
            window.deleteLater()

    event_loop_qt.run_until_complete(_close_all())


@pytest.fixture
def watchdog(event_loop_qt: qasync.QEventLoop, request: pytest.FixtureRequest) -> Iterator[StallWatchdog]:
    """Measures the longest GUI stall during a test and prints it in the test log."""
    dog = StallWatchdog()
    dog.start()
    yield dog
    dog.stop()
    record_measurement(f"{request.node.name}: longest GUI event-loop stall {dog.longest_stall_ms:.1f} ms")
