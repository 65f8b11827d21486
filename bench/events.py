"""Event latency: how fast the VM list follows changes made outside the app.

One test-guest VM ``hvbench-events`` on ``qemu:///system``; the app runs in this process
(offscreen, qasync loop, libvirt event thread, ``MainWindow`` over a ``ServerManager``), built as
``hvmanager.ui.app.main`` builds it. Repeated ``--repeat`` times each:

- ``virsh start`` → the table's State cell reads Running;
- ``virsh destroy`` → Off;
- SIGKILL of the VM's QEMU (pid from ``/run/libvirt/qemu/<name>.pid``) → Off.

The clock starts when the ``virsh`` process has returned (or ``kill`` was sent) and stops when
the State cell, read through the table's proxy model, shows the new state (checked on every
``dataChanged`` of the model, so there is no polling delay); ``painted`` also waits for the next
paint of the table's viewport. Negative values mean the list changed before ``virsh`` exited.
``virsh start`` and ``virsh destroy`` themselves are timed for reference. The longest stall of the
GUI loop over the whole run is reported too. The VM and its folder are removed at the end.

Run as root from the repository root::

    .venv/bin/python -m bench.events --json /tmp/events.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from bench import _guests
from bench._common import (
    BENCH_PREFIX,
    SYSTEM_URI,
    ensure_daemons,
    machine_info,
    save_figures,
    spread,
    table,
)

VM_NAME = f"{BENCH_PREFIX}events"
TARGET_S = 1.0
STARTED, STOPPED = 2, 5  # VIR_DOMAIN_EVENT_STARTED, VIR_DOMAIN_EVENT_STOPPED
STATE_TIMEOUT_S = 20.0


def _timed_virsh(*args: str) -> tuple[float, float]:
    """Run virsh (in a worker thread); returns (monotonic start, monotonic end)."""
    started = time.monotonic()
    done = subprocess.run(["virsh", "-c", SYSTEM_URI, *args], capture_output=True, text=True, check=False)
    ended = time.monotonic()
    if done.returncode != 0:
        state = subprocess.run(
            ["virsh", "-c", SYSTEM_URI, "domstate", "--reason", args[-1]],
            capture_output=True,
            text=True,
            check=False,
        )
        raise RuntimeError(
            f"virsh {' '.join(args)} failed: {done.stderr.strip()} "
            f"(domstate now: {state.stdout.strip()}; was it changed by another client?)"
        )
    return started, ended


class StateWatch:
    """Follows what the State cell of one VM shows, when it changed, and when it was painted."""

    def __init__(self, window: Any, uri: str, uuid: str) -> None:
        from PySide6.QtCore import QEvent, QObject, QTimer

        from hvmanager.views.vm_table_model import Column

        self.window, self.uri, self.uuid, self._column = window, uri, uuid, Column.STATE
        self.shown = ""
        self.changed_at = time.monotonic()
        self.painted_at: float | None = None  # first paint finished after the last change
        self._changed = asyncio.Event()
        self._painted = asyncio.Event()
        model = window.models[uri]
        for signal_ in (model.dataChanged, model.rowsInserted, model.rowsRemoved, model.modelReset):
            signal_.connect(self._check)
        paint_type = QEvent.Type.Paint
        watch = self

        class _PaintFilter(QObject):
            def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
                if event.type() == paint_type:
                    QTimer.singleShot(0, watch.paint_done)  # runs once this paint is over
                return False

        self._filter = _PaintFilter(window)
        window.table.viewport().installEventFilter(self._filter)
        self._check()

    def state(self) -> str:
        """What the table's State cell of the VM shows now ("" when the VM is not listed)."""
        model = self.window.models[self.uri]
        row = model.row_of(self.uuid)
        if row is None:
            return ""
        index = self.window.proxy.mapFromSource(model.index(row, self._column))
        return str(index.data()) if index.isValid() else ""

    def _check(self, *_args: Any) -> None:
        shown = self.state()
        if shown != self.shown:
            self.shown, self.changed_at, self.painted_at = shown, time.monotonic(), None
            self._painted.clear()
            self._changed.set()

    def paint_done(self) -> None:
        """A viewport paint has finished."""
        if self.painted_at is None:
            self.painted_at = time.monotonic()
            self._painted.set()

    async def shows(self, text: str) -> tuple[float, float]:
        """Wait until the cell shows ``text``; returns (monotonic when it changed, when painted)."""
        deadline = time.monotonic() + STATE_TIMEOUT_S
        while self.shown != text:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - time.monotonic()))
        if self.painted_at is None:
            self.window.table.viewport().update()  # a no-op when a repaint is already pending
            await asyncio.wait_for(self._painted.wait(), max(0.01, deadline - time.monotonic()))
        assert self.painted_at is not None
        return self.changed_at, self.painted_at


class LibvirtListener:
    """A second, bare libvirt connection that notes when lifecycle events of one VM arrive.

    Its callbacks run on the same libvirt event thread as the app's, so ``first_after`` tells
    how much of a latency is libvirt's own and how much the app adds.
    """

    def __init__(self, uuid: str) -> None:
        import libvirt

        self.uuid = uuid
        self.events: list[tuple[int, float]] = []
        self._conn = libvirt.open(SYSTEM_URI)
        self._id = self._conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None
        )

    def _on_event(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        if dom.UUIDString() == self.uuid:
            self.events.append((event, time.monotonic()))

    def first_after(self, event: int, since: float) -> float | None:
        """When the first ``event`` (VIR_DOMAIN_EVENT_*) at or after ``since`` arrived."""
        return next((at for kind, at in self.events if kind == event and at >= since), None)

    def close(self) -> None:
        """Unsubscribe and disconnect."""
        self._conn.domainEventDeregisterAny(self._id)
        self._conn.close()


def _qemu_pid(name: str) -> int:
    """The process id of a running VM's QEMU."""
    return int(Path(f"/run/libvirt/qemu/{name}.pid").read_text(encoding="ascii").strip())


async def _scenario(
    watch: StateWatch, events: LibvirtListener, vm: _guests.BenchVm, repeat: int
) -> dict[str, Any]:
    figures: dict[str, list[float]] = {
        key: []
        for key in (
            "start_to_running",
            "start_to_running_painted",
            "start_to_running_from_spawn",
            "destroy_to_off",
            "destroy_to_off_painted",
            "destroy_to_off_from_spawn",
            "kill_to_off",
            "kill_to_off_painted",
            "libvirt_started_event",
            "libvirt_stopped_event_destroy",
            "libvirt_stopped_event_kill",
            "app_after_libvirt_started",
            "app_after_libvirt_stopped_destroy",
            "app_after_libvirt_stopped_kill",
            "virsh_start_s",
            "virsh_destroy_s",
        )
    }
    await watch.shows("Off")
    for _ in range(repeat):
        await asyncio.sleep(0.5)
        began, returned = await asyncio.to_thread(_timed_virsh, "start", vm.name)
        seen, painted = await watch.shows("Running")
        figures["virsh_start_s"].append(returned - began)
        figures["start_to_running"].append(seen - returned)
        figures["start_to_running_painted"].append(painted - returned)
        figures["start_to_running_from_spawn"].append(seen - began)
        _note(figures["libvirt_started_event"], events.first_after(STARTED, began), returned)
        _note(figures["app_after_libvirt_started"], seen, events.first_after(STARTED, began))
        await asyncio.sleep(1.0)
        began, returned = await asyncio.to_thread(_timed_virsh, "destroy", vm.name)
        seen, painted = await watch.shows("Off")
        figures["virsh_destroy_s"].append(returned - began)
        figures["destroy_to_off"].append(seen - returned)
        figures["destroy_to_off_painted"].append(painted - returned)
        figures["destroy_to_off_from_spawn"].append(seen - began)
        _note(figures["libvirt_stopped_event_destroy"], events.first_after(STOPPED, began), returned)
        _note(figures["app_after_libvirt_stopped_destroy"], seen, events.first_after(STOPPED, began))
    for _ in range(repeat):
        await asyncio.sleep(0.5)
        began, returned = await asyncio.to_thread(_timed_virsh, "start", vm.name)
        figures["virsh_start_s"].append(returned - began)
        await watch.shows("Running")
        await asyncio.sleep(1.0)
        os.kill(_qemu_pid(vm.name), signal.SIGKILL)
        killed = time.monotonic()
        seen, painted = await watch.shows("Off")
        figures["kill_to_off"].append(seen - killed)
        figures["kill_to_off_painted"].append(painted - killed)
        _note(figures["libvirt_stopped_event_kill"], events.first_after(STOPPED, killed), killed)
        _note(figures["app_after_libvirt_stopped_kill"], seen, events.first_after(STOPPED, killed))
    return {key: spread(values) | {"samples": values} for key, values in figures.items() if values}


def _note(values: list[float], at: float | None, since: float | None) -> None:
    """Append ``at - since`` when both are known."""
    if at is not None and since is not None:
        values.append(at - since)


def run(repeat: int) -> dict[str, Any]:
    """Create the VM, run the app in this process over qemu:///system, measure, clean up."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ensure_daemons()
    _guests.remove([VM_NAME])  # a leftover of an interrupted run
    location = _guests.make_location()
    config = tempfile.TemporaryDirectory(prefix="hvbench-config-")
    os.environ["HVMANAGER_CONFIG_DIR"] = config.name
    try:
        (vm,) = _guests.create([VM_NAME], location)
        return _run_app(vm, repeat)
    finally:
        _guests.remove([VM_NAME], location)
        config.cleanup()


def _run_app(vm: _guests.BenchVm, repeat: int) -> dict[str, Any]:
    import qasync
    from PySide6.QtWidgets import QApplication

    from hvmanager.backend.connection import start_event_thread
    from hvmanager.backend.settings import AppSettings
    from hvmanager.controllers.manager import ServerManager
    from hvmanager.controllers.tasks import pending_tasks
    from hvmanager.controllers.watchdog import StallWatchdog
    from hvmanager.ui.main_window import MainWindow
    from hvmanager.ui.theme import apply_theme

    app = QApplication(sys.argv[:1])
    app.setApplicationName("hvmanager")
    app.setQuitOnLastWindowClosed(False)  # closing the window at the end must not stop the loop
    apply_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    start_event_thread()
    manager = ServerManager(AppSettings(servers=[SYSTEM_URI]))
    window = MainWindow(manager)
    window.show()
    manager.start()
    watch = StateWatch(window, SYSTEM_URI, vm.uuid)
    events = LibvirtListener(vm.uuid)
    dog = StallWatchdog()

    async def body() -> dict[str, Any]:
        await asyncio.sleep(2.0)  # the first listing and stats tick
        dog.start()
        try:
            figures = await _scenario(watch, events, vm, repeat)
        finally:  # disconnect before the VM is removed, also on failure
            dog.stop()
            events.close()
            window.close()
            for _ in range(200):  # let the app's background tasks end (10 s at most)
                if not pending_tasks():
                    break
                await asyncio.sleep(0.05)
        figures["longest_gui_stall_ms"] = dog.longest_stall_ms
        return figures

    with loop:
        figures: dict[str, Any] = loop.run_until_complete(body())
    return figures


def report(results: dict[str, Any]) -> str:
    """The readable table."""
    rows = []
    for key, label, target in (
        ("start_to_running", "virsh start returned → State 'Running'", TARGET_S),
        ("start_to_running_painted", "  … and painted", TARGET_S),
        ("start_to_running_from_spawn", "  (from virsh start launched)", None),
        ("destroy_to_off", "virsh destroy returned → State 'Off'", TARGET_S),
        ("destroy_to_off_painted", "  … and painted", TARGET_S),
        ("destroy_to_off_from_spawn", "  (from virsh destroy launched)", None),
        ("kill_to_off", "QEMU SIGKILLed → State 'Off'", TARGET_S),
        ("kill_to_off_painted", "  … and painted", TARGET_S),
        ("libvirt_started_event", "reference: libvirt's STARTED event (bare client)", None),
        ("libvirt_stopped_event_destroy", "reference: libvirt's STOPPED event, destroy", None),
        ("libvirt_stopped_event_kill", "reference: libvirt's STOPPED event, SIGKILL", None),
        ("app_after_libvirt_started", "the app's own share: cell after libvirt's STARTED", None),
        ("app_after_libvirt_stopped_destroy", "  … cell after STOPPED (destroy)", None),
        ("app_after_libvirt_stopped_kill", "  … cell after STOPPED (SIGKILL)", None),
        ("virsh_start_s", "reference: virsh start takes", None),
        ("virsh_destroy_s", "reference: virsh destroy takes", None),
    ):
        s = results.get(key)
        if s is None:
            continue
        verdict = "" if target is None else ("PASS" if s["max"] <= target else "MISS")
        rows.append(
            [
                label,
                str(s["n"]),
                f"{s['min'] * 1000:.1f}",
                f"{s['median'] * 1000:.1f}",
                f"{s['max'] * 1000:.1f}",
                f"≤ {target * 1000:.0f} ms: {verdict}" if target else "",
            ]
        )
    out = table(["measure", "n", "min ms", "median ms", "max ms", "target (max)"], rows)
    return out + f"\nlongest GUI event-loop stall during the run: {results['longest_gui_stall_ms']:.1f} ms"


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # run the finally blocks: the VM is removed


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, optionally save the JSON."""
    parser = argparse.ArgumentParser(description="hvmanager event-latency benchmark (see bench/README.md)")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions of each change (default 5)")
    parser.add_argument("--json", type=Path, help="save every figure to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    info = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    print(f"[events] {VM_NAME} on {SYSTEM_URI}, {args.repeat}× each ...", flush=True)
    results = run(args.repeat)
    print()
    print(report(results))
    if args.json:
        save_figures(args.json, "bench.events", info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
