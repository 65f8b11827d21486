"""The application, built exactly as ``hvmanager.ui.app.main`` builds it, with a stopwatch attached.

Run by ``bench/fleet.py`` as a fresh process (``python -m bench._app_probe ...``) so that every
import counts. The first statement records the wall-clock time; then the app is put together in
``main``'s order (logging, QApplication, Fusion theme, qasync loop, libvirt event thread,
excepthook, ServerManager over the saved settings, MainWindow, show, connect), reusing the real
pieces. Settings come from ``$HVMANAGER_CONFIG_DIR`` like the app's; run with
``QT_QPA_PLATFORM=offscreen``.

It reports, as one JSON line starting with ``HVBENCH-RESULT`` on stdout:

- ``painted_at``: when the VM table held every expected row *and* its viewport had finished a
  paint after that (an event filter on ``window.table.viewport()`` for ``QEvent.Paint``);
- the CPU this process used (``/proc/self/stat`` utime+stime, all threads) over ``--window``
  seconds starting ``--settle`` seconds after that, as % of one core, plus the same for
  ``--watch-pid`` processes (e.g. libvirtd) and the host's busy share over the same window;
- ``VmRSS`` at the end, and how many stats ticks the window saw.

With ``--window-marker`` it also prints ``HVBENCH-WINDOW <pid>`` when the window starts, so a
parent can attach a sampling profiler for exactly that span.
"""

# ruff: noqa: E402 -- the start time is taken before any other import, so that imports count.
import time

STARTED_AT = time.time()

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from PySide6.QtCore import QEvent, QObject, QTimer

from bench._common import PROBE_MARK, CpuMeter, proc_rss_mib
from hvmanager.controllers.server import ServerController
from hvmanager.ui import app as hvapp
from hvmanager.ui.main_window import MainWindow

IMPORTED_AT = time.time()


class ListPaintedProbe(QObject):
    """Watches the VM table until all expected rows are in and a paint has completed after that."""

    def __init__(self, window: MainWindow, uri: str, prefix: str, expect: int) -> None:
        super().__init__(window)
        self.window = window
        self.uri = uri
        self.prefix = prefix
        self.expect = expect
        self.complete_at: float | None = None
        self.painted_at: float | None = None
        self.listed_at: float | None = None
        self.inserted_at: float | None = None
        self.first_stats_at: float | None = None
        self.controllers: list[ServerController] = []
        self.painted: asyncio.Future[float] = asyncio.get_event_loop().create_future()
        self._viewport = window.table.viewport()
        self._viewport.installEventFilter(self)

    def watch(self, controller: ServerController) -> None:
        """Note when the list arrives and is in the table, and count the stats ticks.

        The model's ``rowsAboutToBeInserted`` marks the listing's arrival (the model starts
        taking it); ``rowsInserted`` runs after the proxy's own handler (connected earlier), so it
        marks the moment the sorted rows are in the table.
        """
        model = self.window.models[controller.uri]
        model.rowsAboutToBeInserted.connect(self._on_listed)
        model.rowsInserted.connect(self._on_inserted)
        controller.stats_updated.connect(self._on_stats)
        self.controllers.append(controller)

    def _on_listed(self, *_args: Any) -> None:
        if self.listed_at is None:
            self.listed_at = time.time()

    def _on_inserted(self, *_args: Any) -> None:
        if self.inserted_at is None:
            self.inserted_at = time.time()

    @property
    def stats_ticks(self) -> int:
        """Stats ticks done so far (a tick that changed no figure emits no signal)."""
        return sum(c.ticks for c in self.controllers)

    def _on_stats(self, _stats: dict[str, Any]) -> None:
        if self.first_stats_at is None:
            self.first_stats_at = time.time()

    def rows_complete(self) -> bool:
        """Whether the table (through its proxy) shows every expected VM."""
        model = self.window.models.get(self.uri)
        if model is None or self.window.table.model().rowCount() < self.expect:
            return False
        if self.window.proxy.sourceModel() is not model:
            return False
        names = (model.info(uuid) for uuid in model.uuids())
        return (
            sum(1 for info in names if info is not None and info.name.startswith(self.prefix)) >= self.expect
        )

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """On a viewport paint with every row in, note when that paint has finished."""
        if event.type() == QEvent.Type.Paint and self.complete_at is None and self.rows_complete():
            self.complete_at = time.time()
            QTimer.singleShot(0, self._after_paint)  # runs once this paint event is done
        return False

    def _after_paint(self) -> None:
        self.painted_at = time.time()
        self._viewport.removeEventFilter(self)  # no probe overhead during the CPU window
        if not self.painted.done():
            self.painted.set_result(self.painted_at)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True, help="the server the saved settings list")
    parser.add_argument("--expect", type=int, required=True, help="rows whose name has --prefix")
    parser.add_argument("--prefix", default="", help="name prefix of the expected rows")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds from paint to the window")
    parser.add_argument("--window", type=float, default=30.0, help="CPU window in seconds")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up waiting for the list")
    parser.add_argument("--watch-pid", type=int, action="append", default=[], help="also measure")
    parser.add_argument("--spawned-at", type=float, default=None, help="the parent's time.time()")
    parser.add_argument("--window-marker", action="store_true", help="print HVBENCH-WINDOW lines")
    return parser.parse_args(argv)


async def _measure(probe: ListPaintedProbe, args: argparse.Namespace, result: dict[str, Any]) -> None:
    try:
        await asyncio.wait_for(probe.painted, args.timeout)
    except TimeoutError:
        model = probe.window.models.get(args.uri)
        result["error"] = (
            f"the list was not complete after {args.timeout:.0f} s "
            f"({model.rowCount() if model else 0} rows, expected {args.expect} named {args.prefix}*)"
        )
        return
    await asyncio.sleep(args.settle)
    meter = CpuMeter(["self", *args.watch_pid])
    ticks = probe.stats_ticks
    if args.window_marker:
        print(f"HVBENCH-WINDOW {os.getpid()}", flush=True)
    meter.start()
    await asyncio.sleep(args.window)
    figures = meter.stop()
    if args.window_marker:
        print(f"HVBENCH-WINDOW-END {os.getpid()}", flush=True)
    percents = figures["cpu_percent_of_core"]
    assert isinstance(percents, list)
    result.update(
        cpu_percent_of_core=percents[0],
        watched_cpu_percent_of_core=dict(zip(map(str, args.watch_pid), percents[1:], strict=True)),
        host_busy_percent_of_all_cores=figures["host_busy_percent_of_all_cores"],
        window_s=figures["wall_s"],
        stats_ticks_in_window=probe.stats_ticks - ticks,
        rss_mib=proc_rss_mib(),
    )


def main(argv: list[str] | None = None) -> int:
    """Build and run the app like ``hvmanager.ui.app.main``; print the figures as one JSON line."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not hvapp.has_display():
        print("no display: run with QT_QPA_PLATFORM=offscreen", file=sys.stderr)
        return 2
    application = hvapp.build_application()  # exactly what hvmanager's main() runs
    shown_at = time.time()
    manager, window, loop = application.manager, application.window, application.loop
    probe = ListPaintedProbe(window, args.uri, args.prefix, args.expect)
    for controller in manager.servers.values():
        probe.watch(controller)
    result: dict[str, Any] = {"uri": args.uri, "pid": os.getpid()}

    async def measure_then_quit() -> None:
        try:
            await _measure(probe, args, result)
        except Exception as exc:  # report anything unexpected instead of hanging
            result["error"] = f"{type(exc).__name__}: {exc}"
        result.update(
            spawned_at=args.spawned_at,
            started_at=STARTED_AT,
            imported_at=IMPORTED_AT,
            shown_at=shown_at,
            listed_at=probe.listed_at,
            inserted_at=probe.inserted_at,
            complete_at=probe.complete_at,
            painted_at=probe.painted_at,
            first_stats_at=probe.first_stats_at,
            interval_ms=manager.settings.stats_interval_ms,
            rows=window.table.model().rowCount(),
        )
        print(PROBE_MARK + json.dumps(result), flush=True)
        # Leave as a user does: close the (last) window from the Qt loop, outside this task.
        QTimer.singleShot(0, window.close)

    task = loop.create_task(measure_then_quit())
    hvapp.run_until_quit(application)
    return 0 if task.done() and "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
