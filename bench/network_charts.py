"""The live switch counters in the GUI: chart redraw time, and the whole Switch Monitor's cost per tick.

Everything runs offscreen (``QT_QPA_PLATFORM=offscreen``: the raster engine paints into the
window's backing store as on a desktop, without the final blit), in this process, with the real
widgets at their default sizes. Every rate wanders (a random walk) on every port on every tick: a
worst case, where each port's row and curves change each second.

``chart``
    ``TrafficChart`` (the Switch Monitor's chart, 1060 × 380 px) holding ``--ports`` ports with a
    full 5-minute history (300 samples at 1 s): one tick is handing it the new data
    (``show_ports``: *new data*) and the repaint the scene then makes of what changed (the event
    loop's own, waited for: *repaint*), CPU of this thread over ``--repeat`` ticks. Also with half
    the ports, and, for comparison, a plain pyqtgraph chart built the obvious way (one
    ``PlotDataItem`` per curve, axis grid, auto-range, legend: what the chart started as).
``live``
    The whole Switch Monitor (``SwitchMonitorWindow``, 1100 × 760 px) on a real switch: a private
    switch ``hvbench-monitor`` made with ``switches.create_switch`` whose bridge gets ``--ports``
    veth pairs (``hvbm<i><pid>`` on the bridge, ``hvbp<i><pid>`` outside, each having sent a frame,
    so the forwarding database has a learned and a local address per port). The window's server
    is a ``ServerController`` whose connection is opened without its stats timer; instead its
    ``stats_updated`` signal carries, each second (a ``QTimer``), precomputed ``VmStats`` of
    ``--ports / 2`` VMs with two adapters each on those veth devices, so the work is exactly the
    app's: the traffic history, the controller (ports of the switch, totals), the chart, the ports
    model and its table, the totals line, and the MAC address table read in the controller's
    thread (``switch_stats.mac_table``: the bridge's FDB over netlink) and its model. (The stats
    tick itself, ``StatsSampler.sample``, is ``bench.switch_stats``'s.) The history starts full.

    After ``WARM_UP_S`` of ticks (the first fill the tables and draw the chart once), ``--window``
    seconds of the app left to itself: this process's CPU (all threads) as % of one core, the GUI
    thread's CPU per tick (handlers and repaints), and the tick's handlers alone; then the same
    window with the monitor closed (the idle app, its connection open) for the baseline. Target:
    ≤ 1 % of one core for the live view (with ticks minus idle). ``mac_table`` is also timed alone.
    ``--profile`` adds cProfile's view of the GUI thread over the window.

Run as root from the repository root (the veth pairs and the switch are removed at the end, also
on failure or SIGTERM)::

    .venv/bin/python -m bench.network_charts --json /tmp/network-charts.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from bench._common import (
    BENCH_PREFIX,
    SYSTEM_URI,
    CpuMeter,
    ensure_daemons,
    machine_info,
    remove_bench_switch,
    save_figures,
    spread,
    table,
)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SWITCH = f"{BENCH_PREFIX}monitor"
TARGET_PERCENT = 1.0
WARM_UP_S = 5.0
CHART_SIZE = (1060, 380)
_TAG = os.getpid() % 1000


# --- synthetic but realistic ticks ---------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    """One bench port: the VM it belongs to, its device on the bridge, the MAC behind it."""

    vm_uuid: str
    vm_name: str
    device: str
    mac: str


def make_ports(count: int, macs: list[str] | None = None) -> list[Port]:
    """``count`` ports on ``count // 2`` VMs (two adapters each: the VM list has half as many rows)."""
    ports = []
    for index in range(count):
        vm = index // 2
        mac = macs[index] if macs else f"00:15:5d:be:{index // 256:02x}:{index % 256:02x}"
        ports.append(Port(f"00000000-0000-4000-8000-{vm:012d}", f"Bench VM {vm:02d}", _device(index), mac))
    return ports


def _device(index: int, side: str = "m") -> str:
    return f"hvb{side}{index:02d}{_TAG}"


def make_ticks(ports: list[Port], count: int, switch: str, seed: int = 5) -> list[dict[str, Any]]:
    """``count`` ticks of ``VmStats`` for the ports: rates that wander (a random walk between 0 and
    a few MB/s, a fifth of the ports idle), cumulative counters growing with them."""
    import numpy as np

    from hvmanager.backend.models import VmStats
    from hvmanager.backend.network_models import PortCounters, PortRates, PortStats

    rng = np.random.default_rng(seed)
    level = rng.uniform(1e4, 2e6, (len(ports), 2))
    level[::5] = 0.0
    totals = np.zeros((len(ports), 2))
    ticks = []
    for _ in range(count):
        step = rng.normal(0.0, 5e4, level.shape)
        step[::5] = 0.0
        level = np.clip(level + step, 0.0, 5e6)
        totals += level
        by_vm: dict[str, list[PortStats]] = {}
        for i, port in enumerate(ports):
            rx, tx = float(level[i, 0]), float(level[i, 1])
            counters = PortCounters(int(totals[i, 0]), int(totals[i, 0] / 900), 0, 0, int(totals[i, 1]),
                                    int(totals[i, 1] / 900), 0, 0)  # fmt: skip
            rates = PortRates(rx, tx, rx / 900, tx / 900)
            by_vm.setdefault(port.vm_uuid, []).append(
                PortStats(port.vm_uuid, port.vm_name, port.mac, port.device, switch, counters, rates, 1)
            )
        ticks.append({uuid: VmStats(uuid, 3.0, 256, 128, ports=tuple(ps)) for uuid, ps in by_vm.items()})
    return ticks


# --- chart ----------------------------------------------------------------------------------------


def _full_history(ports: list[Port], ticks: list[dict[str, Any]]) -> Any:
    from hvmanager.views.traffic_history import TrafficHistory, ports_of

    history = TrafficHistory()
    for second, stats in enumerate(ticks[:300]):
        history.record(ports_of(stats), now=float(second))
    return history


def _chart_ticks(app: Any, ports: list[Port], ticks: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    from hvmanager.views.traffic_chart import TrafficChart
    from hvmanager.views.traffic_history import ports_of

    history = _full_history(ports, ticks)
    chart = TrafficChart()
    chart.resize(*CHART_SIZE)
    chart.show()
    keys = [((p.vm_uuid, p.mac), f"{p.vm_name} (…{p.mac[-8:]})") for p in ports]
    chart.show_ports(history, keys)
    app.processEvents()
    data, paint, total = [], [], []
    for second in range(300, 300 + repeat):
        history.record(ports_of(ticks[second]), now=float(second))
        cpu0 = time.thread_time()
        chart.show_ports(history, keys)
        cpu1 = time.thread_time()
        _painted(app, chart)
        cpu2 = time.thread_time()
        data.append(cpu1 - cpu0)
        paint.append(cpu2 - cpu1)
        total.append(cpu2 - cpu0)
    assert chart.ports() == [port_key_of(p) for p in ports], "every port drawn"
    chart.close()
    return {"set_data_s": spread(data), "paint_s": spread(paint), "tick_s": spread(total)}


def _painted(app: Any, widget: Any) -> None:
    """Let the scene repaint what changed, as the event loop does after a tick (the dirty region,
    not the whole widget), and wait for that paint to be over."""
    from PySide6.QtCore import QEvent, QObject

    painted: list[bool] = []

    class _Watch(QObject):
        def eventFilter(self, _watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint:
                painted.append(True)
            return False

    watch = _Watch()
    widget.viewport().installEventFilter(watch)
    for _ in range(20):  # the scene's update goes through a few queued steps
        app.processEvents()
        if painted:
            break
    widget.viewport().removeEventFilter(watch)
    if not painted:
        raise RuntimeError("the chart was not repainted after new data")


def port_key_of(port: Port) -> tuple[str, str]:
    """A bench port's key in the traffic history."""
    return (port.vm_uuid, port.mac.lower())


def _plain_chart_ticks(
    app: Any, ports: list[Port], ticks: list[dict[str, Any]], repeat: int
) -> dict[str, Any]:
    """The obvious pyqtgraph chart, for comparison: one PlotDataItem per curve, grid, auto-range."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt

    from hvmanager.views.traffic_history import ports_of

    history = _full_history(ports, ticks)
    widget = pg.PlotWidget(background="w")
    widget.resize(*CHART_SIZE)
    widget.showGrid(x=True, y=True, alpha=0.25)
    widget.addLegend()
    widget.show()
    curves = {}
    for index, port in enumerate(ports):
        colour = pg.intColor(index)
        curves[port_key_of(port)] = (
            widget.plot(pen=pg.mkPen(colour, width=1.5), name=port.vm_name),
            widget.plot(pen=pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine)),
        )
    data, paint, total = [], [], []
    for second in range(300, 300 + repeat):
        history.record(ports_of(ticks[second]), now=float(second))
        cpu0 = time.thread_time()
        for key, (rx, tx) in curves.items():
            series = history.series(key)
            rx.setData(series.seconds_ago, series.rx_bps)
            tx.setData(series.seconds_ago, series.tx_bps)
        cpu1 = time.thread_time()
        _painted(app, widget)
        cpu2 = time.thread_time()
        data.append(cpu1 - cpu0)
        paint.append(cpu2 - cpu1)
        total.append(cpu2 - cpu0)
    widget.close()
    return {"set_data_s": spread(data), "paint_s": spread(paint), "tick_s": spread(total)}


def bench_chart(ports: int, repeat: int) -> dict[str, Any]:
    """The chart alone: full ports, half the ports, and the plain pyqtgraph chart."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    bench_ports = make_ports(ports)
    ticks = make_ticks(bench_ports, 300 + repeat, SWITCH)
    half = bench_ports[: ports // 2]
    return {
        "ports": ports,
        "points_per_curve": 300,
        "full": _chart_ticks(app, bench_ports, ticks, repeat),
        "half": _chart_ticks(app, half, _only(ticks, half), repeat),
        "plain_pyqtgraph": _plain_chart_ticks(app, bench_ports, ticks, min(repeat, 10)),
    }


def _only(ticks: list[dict[str, Any]], ports: list[Port]) -> list[dict[str, Any]]:
    wanted = {p.vm_uuid for p in ports}
    return [{u: s for u, s in tick.items() if u in wanted} for tick in ticks]


# --- the switch with real bridge ports ------------------------------------------------------------


@contextlib.contextmanager
def bench_switch(count: int) -> Iterator[list[str]]:
    """The private switch with ``count`` veth pairs on its bridge; yields the outer ends' MACs."""
    import libvirt

    from hvmanager.backend import switches
    from hvmanager.backend.network_models import SwitchSpec, SwitchType

    conn = libvirt.open(SYSTEM_URI)
    made: list[str] = []
    try:
        remove_bench_switch(conn, SWITCH)  # an interrupted run's
        info = switches.create_switch(conn, SwitchSpec(SWITCH, SwitchType.PRIVATE))
        assert info.bridge is not None
        macs = []
        for index in range(count):
            inner, outer = _device(index), _device(index, "p")
            _ip("link", "del", inner, check=False)
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            made.append(inner)
            _ip("link", "set", inner, "master", info.bridge, "up")
            _ip("link", "set", outer, "up")
            macs.append(Path(f"/sys/class/net/{outer}/address").read_text(encoding="ascii").strip())
            _send_frame(outer, macs[-1])  # the bridge learns the outer end's address on this port
        yield macs
    finally:
        for inner in made:
            _ip("link", "del", inner, check=False)
        remove_bench_switch(conn, SWITCH)
        conn.close()


def _ip(*args: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def _send_frame(device: str, source: str) -> None:
    """One broadcast frame from ``source`` out of ``device`` (IEEE local experimental ethertype)."""
    frame = b"\xff" * 6 + bytes.fromhex(source.replace(":", "")) + (0x88B5).to_bytes(2, "big")
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((device, 0))
        sock.send(frame + b"\x00" * (60 - len(frame)))


# --- the live view ---------------------------------------------------------------------------------


def bench_live(ports: int, mac_reads: int, window_s: float, profile: bool) -> dict[str, Any]:
    """The Switch Monitor on the bench switch (see the module's docstring)."""
    import qasync
    from PySide6.QtWidgets import QApplication

    from hvmanager.backend.connection import start_event_thread
    from hvmanager.backend.settings import AppSettings
    from hvmanager.controllers.server import ServerController
    from hvmanager.ui.switch_monitor import SwitchMonitorWindow
    from hvmanager.ui.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # closing the monitor (the only window) must not stop the loop
    apply_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    start_event_thread()
    with bench_switch(ports) as macs:
        bench_ports = make_ports(ports, macs)
        ticks = make_ticks(bench_ports, 300 + int(window_s) + 5, SWITCH)
        server = ServerController(SYSTEM_URI, AppSettings(servers=[SYSTEM_URI]))
        server.server.open()  # the connection, without the controller's own stats ticks
        monitor = SwitchMonitorWindow(server)
        monitor.show()
        feed = monitor.controller.feed

        async def body() -> dict[str, Any]:
            await _until(lambda: monitor.shown_switch() == SWITCH or monitor.select_switch(SWITCH))
            start = time.monotonic() - 300
            for second, stats in enumerate(ticks[:300]):  # a full 5-minute history first
                feed.history.record(_ports(stats), now=start + second)
            figures: dict[str, Any] = {}
            rest = iter(ticks[300:])
            figures["at_1s"] = await _each_second(server, rest, window_s, profile)
            figures["rows"] = monitor.port_model.rowCount()
            figures["mac_entries"] = monitor.mac_model.rowCount()
            assert figures["rows"] == ports and figures["mac_entries"] >= ports, figures
            figures["mac_read_s"] = await _mac_reads(server, monitor.controller.ports, mac_reads)
            monitor.close()
            await asyncio.sleep(0.5)
            figures["idle"] = await _each_second(None, rest, window_s)
            return figures

        try:
            with loop:
                figures: dict[str, Any] = loop.run_until_complete(body())
        finally:
            server.close(wait=True)
    figures["ports"] = ports
    with_ticks = figures["at_1s"]["cpu_percent_of_core"][0]
    idle = figures["idle"]["cpu_percent_of_core"][0]
    figures["live_view_percent"] = with_ticks - idle
    return figures


def _ports(stats: dict[str, Any]) -> Any:
    from hvmanager.views.traffic_history import ports_of

    return list(ports_of(stats))


async def _mac_reads(server: Any, ports: list[Any], repeat: int) -> dict[str, float]:
    """``switch_stats.mac_table`` of the bench switch, as the controller's thread runs it: wall."""
    from hvmanager.backend import switch_stats

    def read() -> float:
        began = time.perf_counter()
        switch_stats.mac_table(server.server.conn, SWITCH, ports)
        return time.perf_counter() - began

    return spread([await asyncio.to_thread(read) for _ in range(repeat)])


async def _until(predicate: Callable[[], Any], within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.05)


async def _each_second(
    server: Any, ticks: Iterator[dict[str, Any]], window_s: float, profile: bool = False
) -> dict[str, Any]:
    """``window_s`` seconds of the loop with one tick a second from a ``QTimer`` (none when
    ``server`` is None), after ``WARM_UP_S`` of ticks (the first fill the tables and draw the chart
    once), the app left to itself as it runs: this process's CPU (all threads) as % of one core;
    the GUI thread's CPU per tick (everything the tick causes there: the handlers and the
    repaints); and the handlers alone (the signal's emission, CPU)."""
    from PySide6.QtCore import QTimer

    meter = CpuMeter(["self"])
    profiler = cProfile.Profile() if profile else None
    handlers: list[float] = []

    def tick() -> None:
        cpu0 = time.thread_time()
        server.stats_updated.emit(next(ticks))
        handlers.append(time.thread_time() - cpu0)

    timer = QTimer()
    timer.setInterval(1000)
    if server is not None:
        timer.timeout.connect(tick)
    timer.start()
    await asyncio.sleep(WARM_UP_S)  # the first ticks fill the tables and draw the chart once
    handlers.clear()
    meter.start()
    gui0 = time.thread_time()
    if profiler:
        profiler.enable()
    await asyncio.sleep(window_s)
    timer.stop()
    if profiler:
        profiler.disable()
    gui = time.thread_time() - gui0
    figures = meter.stop()
    figures["gui_thread_cpu_s"] = gui
    if handlers:
        figures["ticks"] = len(handlers)
        figures["gui_cpu_per_tick_s"] = gui / len(handlers)
        figures["handler_cpu_s"] = spread(handlers)
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        figures["profile"] = out.getvalue()
    return figures


# --- report -------------------------------------------------------------------------------------


def _ms(figures: dict[str, float]) -> str:
    return f"{figures['median'] * 1000:.2f} [{figures['min'] * 1000:.2f}–{figures['max'] * 1000:.2f}]"


def report(results: dict[str, Any]) -> str:
    """The readable tables."""
    out = []
    chart = results.get("chart")
    if chart:
        rows = []
        for key, label in (
            ("full", f"TrafficChart, {chart['ports']} ports ({2 * chart['ports']} curves)"),
            ("half", f"TrafficChart, {chart['ports'] // 2} ports ({chart['ports']} curves)"),
            ("plain_pyqtgraph", f"plain pyqtgraph, {chart['ports']} ports ({2 * chart['ports']} curves)"),
        ):
            part = chart[key]
            rows.append([label, _ms(part["set_data_s"]), _ms(part["paint_s"]), _ms(part["tick_s"])])
        size = f"{CHART_SIZE[0]}×{CHART_SIZE[1]} px"
        out.append(f"[chart] {chart['points_per_curve']} points per curve, {size}, CPU ms, median [min–max]")
        out.append(table(["chart", "new data", "repaint", "tick"], rows))
    live = results.get("live")
    if live:
        at_1s, idle = live["at_1s"], live["idle"]
        pct = at_1s["cpu_percent_of_core"][0]
        idle_pct = idle["cpu_percent_of_core"][0]
        verdict = "PASS" if live["live_view_percent"] <= TARGET_PERCENT else "MISS"
        host = at_1s["host_busy_percent_of_all_cores"]
        rows = [
            [
                "GUI thread CPU per tick (handlers and repaints)",
                f"{at_1s['gui_cpu_per_tick_s'] * 1000:.2f} ms",
            ],
            ["  … the tick's handlers alone: CPU ms", _ms(at_1s["handler_cpu_s"])],
            ["MAC table read (switch_stats.mac_table) alone: wall ms", _ms(live["mac_read_s"])],
            [f"process CPU at 1 s ticks over {at_1s['wall_s']:.0f} s", f"{pct:.2f} % of one core"],
            [f"process CPU, monitor closed, over {idle['wall_s']:.0f} s", f"{idle_pct:.2f} % of one core"],
            ["the live view (the difference)", f"{live['live_view_percent']:.2f} % of one core"],
            [f"target ≤ {TARGET_PERCENT} % of one core", verdict],
            ["host busy during the 1 s window", f"{host:.0f} % of all cores"],
        ]
        out.append(f"\n[live] Switch Monitor, {live['ports']} ports ({live['rows']} rows), "
                   f"MAC table of {live['mac_entries']} entries")  # fmt: skip
        out.append(table(["measure", "value"], rows))
        if "profile" in at_1s:
            out.append("\nprofile of the GUI thread over the window:\n" + at_1s["profile"])
    return "\n".join(out)


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # run the finally blocks: the veth pairs and the switch are removed


BENCHMARKS = ("chart", "live")


def main(argv: list[str] | None = None) -> int:
    """Measure, print the tables, optionally save the JSON."""
    parser = argparse.ArgumentParser(description="hvmanager network chart benchmarks (see bench/README.md)")
    parser.add_argument("benchmarks", nargs="*", metavar="{chart,live}", help="default: both")
    parser.add_argument("--ports", type=int, default=50, help="switch ports (default 50)")
    parser.add_argument("--repeat", type=int, default=30, help="chart ticks measured (default 30)")
    parser.add_argument("--mac-reads", type=int, default=20, help="MAC table reads timed (default 20)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of 1 s ticks (default 60)")
    parser.add_argument("--profile", action="store_true", help="cProfile the live ticks (slower)")
    parser.add_argument("--json", type=Path, help="save every figure to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}")
    if args.ports < 2 or args.ports > 99:
        parser.error("--ports must be between 2 and 99")
    signal.signal(signal.SIGTERM, _on_sigterm)
    info = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    results: dict[str, Any] = {}
    chosen = args.benchmarks or BENCHMARKS
    if "chart" in chosen:
        print(f"[chart] {args.ports} ports ...", flush=True)
        results["chart"] = bench_chart(args.ports, args.repeat)
    if "live" in chosen:
        ensure_daemons()
        print(
            f"[live] {args.ports} ports, {args.window:.0f} s of 1 s ticks, then as long idle ...", flush=True
        )
        results["live"] = bench_live(args.ports, args.mac_reads, args.window, args.profile)
    print()
    print(report(results))
    if args.json:
        save_figures(args.json, "bench.network_charts", info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
