"""The Switch Monitor and the Networking tab's chart, with live counters of real traffic.

The models and the chart are first checked on their own (rows updated in place, no resets; one
curve set per port with stable colours). Then one test guest (``hvtest.ip``) runs on an Internal
switch made with ``switches.create_switch``; the host pings it a known number of times through
the switch's bridge (``busybox ping -I <bridge>``). The Switch Monitor's port row must have grown
by at least that traffic both ways, its chart's curves must hold at least that many bytes
(the integral of bytes/s over the samples), the MAC table must list the guest's MAC on its port as
``bridge fdb`` does; then the VM's Networking tab charts a second burst of pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import numpy as np
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from hvmanager.backend import creation, switches
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec
from hvmanager.backend.network_models import (
    MacEntry,
    PortCounters,
    PortRates,
    PortStats,
    SwitchSpec,
    SwitchType,
)
from hvmanager.backend.paths import vm_folders
from hvmanager.controllers.server import ConnectionState
from hvmanager.ui.switch_monitor import SwitchMonitorWindow, show_switch_monitor
from hvmanager.views.keyed_table_model import Role
from hvmanager.views.switch_monitor_model import MacTableModel, PortColumn, PortTableModel
from hvmanager.views.traffic_chart import TrafficChart
from hvmanager.views.traffic_history import TrafficHistory, port_key
from tests.conftest import vm_name
from tests.gui.conftest import Runner, WindowFactory, wait_until
from tests.network.conftest import free_subnet, host_in, pings_answered
from tests.vm.helpers import virsh, wait_serial

PID = os.getpid()
PINGS, PING_SIZE = 20, 1000
FRAME = PING_SIZE + 8 + 20 + 14  # the ping's data with its ICMP, IPv4 and Ethernet headers
# The chart's integral uses the times the GUI recorded the ticks, the rates the sampler's own
# intervals: a tick handled a little late or early moves the sum by a few percent.
CHART_SHARE = 0.8


def _port(mac: str, rx: float = 0.0, uuid: str = "u1", name: str = "vm1") -> PortStats:
    counters = PortCounters(rx_bytes=int(rx * 10), tx_bytes=5)
    return PortStats(uuid, name, mac, "vnet0", "sw", counters, PortRates(rx, 1.0, 1.0, 1.0))


class _Signals:
    """Counts a model's structural signals."""

    def __init__(self, model: Any) -> None:
        self.events: list[str] = []
        model.modelReset.connect(lambda: self.events.append("reset"))
        model.rowsInserted.connect(lambda _p, a, b: self.events.append(f"insert {a}-{b}"))
        model.rowsRemoved.connect(lambda _p, a, b: self.events.append(f"remove {a}-{b}"))
        model.dataChanged.connect(lambda a, b, _r: self.events.append(f"change {a.row()}-{b.row()}"))


def test_port_rows_are_updated_in_place_without_resets(qapp: Any) -> None:
    model = PortTableModel()
    seen = _Signals(model)
    a, b, c = _port("00:15:5d:00:00:0a", 100), _port("00:15:5d:00:00:0b", 200), _port("00:15:5d:00:00:0c")
    model.set_ports([a, b, c])
    assert seen.events == ["insert 0-0", "insert 1-1", "insert 2-2"]
    seen.events.clear()
    b2 = _port("00:15:5d:00:00:0b", 4096)
    model.set_ports([a, b2, c])  # one row changed: only its changed cells (rate, total)
    assert seen.events == ["change 1-1", "change 1-1"]
    assert model.text(port_key(b2), PortColumn.RX_RATE) == "4 KB/s"
    assert model.index(1, PortColumn.RX_RATE).data() == "4 KB/s"
    seen.events.clear()
    model.set_ports([b2, _port("00:15:5d:00:00:0d")])  # two gone, one new
    assert seen.events == ["remove 2-2", "remove 0-0", "insert 1-1"]
    assert [k[1] for k in model.row_keys()] == ["00:15:5d:00:00:0b", "00:15:5d:00:00:0d"]
    assert model.index(0, PortColumn.MAC).data() == "00-15-5D-00-00-0B"
    assert model.index(0, PortColumn.VM).data(Role.KEY) == port_key(b2)
    assert "reset" not in seen.events


def test_rows_out_of_sight_get_their_texts_when_they_come_into_sight(qapp: Any) -> None:
    model = PortTableModel()
    ports = [_port(f"00:15:5d:00:00:0{n}", 100.0) for n in range(4)]
    model.set_ports(ports)
    model.show_rows(0, 1)  # a view shows the first two rows
    seen = _Signals(model)
    faster = [_port(p.mac, 8192.0) for p in ports]
    model.set_ports(faster)
    assert {event.split()[1] for event in seen.events} == {"0-0", "1-1"}  # only rows in sight changed
    assert model.index(3, PortColumn.RX_RATE).data() == "100 B/s"  # not yet
    assert model.text(port_key(faster[3]), PortColumn.RX_RATE) == "8 KB/s"  # what it will show
    assert model.row_data(port_key(faster[3])) == faster[3]
    model.show_rows(2, 3)  # scrolled down
    assert model.index(3, PortColumn.RX_RATE).data() == "8 KB/s"


def test_sorting_uses_raw_values_and_keeps_rows_between_sorts(qapp: Any) -> None:
    model = PortTableModel()
    slow, fast = _port("00:15:5d:00:00:01", 9 * 1024), _port("00:15:5d:00:00:02", 10 * 1024)
    model.set_ports([fast, slow])
    model.sort(PortColumn.RX_RATE, Qt.SortOrder.AscendingOrder)  # "9 KB/s" < "10 KB/s" as numbers
    assert [k[1] for k in model.row_keys()] == [slow.mac, fast.mac]
    model.set_ports([fast, _port(slow.mac, 99 * 1024)])  # values change: the rows stay put
    assert [k[1] for k in model.row_keys()] == [slow.mac, fast.mac]
    model.sort(PortColumn.RX_RATE, Qt.SortOrder.AscendingOrder)
    assert [k[1] for k in model.row_keys()] == [fast.mac, slow.mac]


def test_mac_rows_are_keyed_by_address_and_port(qapp: Any) -> None:
    model = MacTableModel()
    seen = _Signals(model)
    host = MacEntry("fe:54:00:aa:bb:cc", "vnet3", None, True)
    model.set_entries([MacEntry("52:54:00:aa:bb:cc", "vnet3", "web"), host])
    model.set_entries([MacEntry("52:54:00:aa:bb:cc", "vnet4", "web"), host])
    assert seen.events == ["insert 0-0", "insert 1-1", "remove 0-0", "insert 1-1"]  # moved: a new row
    texts = [[model.index(r, c).data() for c in range(3)] for r in range(2)]
    assert texts == [
        ["FE-54-00-AA-BB-CC", "vnet3", "This host (switch's own address)"],
        ["52-54-00-AA-BB-CC", "vnet4", "web"],
    ]


def test_chart_has_one_curve_set_per_port_with_stable_colours(qtbot: QtBot) -> None:
    chart = TrafficChart()
    qtbot.addWidget(chart)
    chart.show()
    history = TrafficHistory()
    a, b, c = (_port(f"00:15:5d:00:00:0{n}", 1000.0 * n) for n in (1, 2, 3))
    for t in range(5):
        history.record([a, b, c], now=float(t))
    chart.show_ports(history, [(port_key(p), p.mac) for p in (a, b, c)])
    curves_item = chart.curves
    colours = {key: chart.colour_of(key) for key in chart.ports()}
    assert len({colour.name() for colour in colours.values() if colour is not None}) == 3
    data = chart.curve_data(port_key(b))
    assert data is not None
    assert data[0].tolist() == [-4.0, -3.0, -2.0, -1.0, 0.0] and set(data[1].tolist()) == {2000.0}
    # The next tick: b is gone, d is new; a and c keep their colours, d takes b's free one.
    d = _port("00:15:5d:00:00:04", 50.0)
    history.record([a, c, d], now=5.0)
    chart.show_ports(history, [(port_key(p), p.mac) for p in (a, c, d)])
    assert chart.curves is curves_item  # only data changed: the items stay
    assert chart.ports() == [port_key(a), port_key(c), port_key(d)]
    assert chart.colour_of(port_key(a)) == colours[port_key(a)]
    assert chart.colour_of(port_key(c)) == colours[port_key(c)]
    assert chart.colour_of(port_key(d)) == colours[port_key(b)]
    assert chart.top >= 3000.0  # the y range fits the data
    assert chart.legend_texts() == [
        "received (solid)",
        "sent (dashed)",
        a.mac,
        c.mac,
        d.mac,
    ]


def _pixels(image: Any) -> Any:
    image = image.convertToFormat(image.Format.Format_RGB32)
    return np.frombuffer(image.constBits(), dtype=np.uint32).reshape(image.height(), -1).copy()


def _inked_blocks(pixels: Any, block: int = 6) -> Any:
    """Which ``block``×``block`` squares hold any non-white pixel (a comparison that one pixel of
    rounding does not upset)."""
    height, width = (pixels.shape[0] // block) * block, (pixels.shape[1] // block) * block
    inked = pixels[:height, :width] != 0xFFFFFFFF
    return inked.reshape(height // block, block, width // block, block).any(axis=(1, 3))


def test_the_scrolled_chart_shows_what_drawing_it_afresh_shows(qtbot: QtBot) -> None:
    """Ticks only scroll the chart's image and add each curve's newest segment: after 150 ticks
    (at uneven intervals) it shows what a chart drawing everything at once shows, but for sub-pixel
    rounding and which curve is on top where they cross."""
    history = TrafficHistory()
    ports = [_port(f"00:15:5d:00:00:1{n}", uuid=f"u{n}") for n in range(4)]
    rng = np.random.default_rng(3)
    chart = TrafficChart()
    qtbot.addWidget(chart)
    chart.resize(900, 330)
    chart.show()
    qtbot.waitExposed(chart)
    keys = [(port_key(p), p.mac) for p in ports]
    rates = rng.uniform(5e5, 3e6, (len(ports), 2))
    for tick in range(150):
        rates = np.clip(rates + rng.normal(0, 5e4, rates.shape), 0, 4e6)  # traffic wanders
        history.record(
            [PortStats(p.vm_uuid, "vm", p.mac, "vnet", "sw", PortCounters(), PortRates(*r, 1.0, 1.0))
             for p, r in zip(ports, rates, strict=True)],
            now=1000.0 + tick * 1.013,
        )  # fmt: skip
        chart.show_ports(history, keys)
        chart.grab()  # each tick painted, as the event loop would
    full_draws = chart.curves.full_draws
    assert full_draws <= 3  # the first drawing, and when the y range grew
    shown = _pixels(chart.grab().toImage())  # painting again shows the image as the ticks made it
    assert chart.curves.full_draws == full_draws
    fresh = TrafficChart()
    qtbot.addWidget(fresh)
    fresh.resize(900, 330)
    fresh.show()
    fresh.show_ports(history, keys)
    ours, theirs = _inked_blocks(shown), _inked_blocks(_pixels(fresh.grab().toImage()))
    overlap = (ours & theirs).sum() / (ours | theirs).sum()
    assert overlap > 0.9, overlap


# --- with a real guest ---------------------------------------------------------------------------


def _bytes_since(
    chart: TrafficChart, key: Any, history: TrafficHistory, started: float
) -> tuple[float, float]:
    """The bytes a port's curves account for (received, sent) in the samples recorded after the
    monotonic time ``started``: Σ bytes/s × the time since the previous sample."""
    data = chart.curve_data(key)
    assert data is not None and history.last_time is not None
    x, received, sent = data
    if len(x) < 2:
        return 0.0, 0.0
    steps = np.diff(x)
    newer = x[1:] > started - history.last_time
    return float(np.sum(received[1:][newer] * steps[newer])), float(np.sum(sent[1:][newer] * steps[newer]))


@contextlib.contextmanager
def _internal_switch(uri: str) -> Iterator[tuple[str, str, str]]:
    """An Internal switch of this run's own: (name, bridge, the guest's address), removed after
    (on a connection of its own, opened for that)."""
    name, subnet = f"hvt-monitor-{PID}", free_subnet()
    conn = libvirt.open(uri)
    try:
        info = switches.create_switch(
            conn, SwitchSpec(name, SwitchType.INTERNAL, host_address=host_in(subnet, 1))
        )
    finally:
        conn.close()
    try:
        assert info.bridge, "an Internal switch has a bridge"
        yield name, info.bridge, host_in(subnet, 2, with_prefix=False)
    finally:
        conn = libvirt.open(uri)
        try:  # the guest's adapter ends "Not connected"; clean_domains removes the guest
            switches.remove_switch(conn, name, disconnect_users=True)
        finally:
            conn.close()
    assert name not in virsh("net-list", "--all", "--name").split()


def _guest_vm(server: Server, folder: Path, switch: str, address: str, guest: Any) -> tuple[str, str]:
    """A running test guest with an adapter on ``switch`` and ``address``: (uuid, serial log)."""
    name = vm_name("switch-monitor")
    boot = KernelBoot(str(guest.kernel), str(guest.initrd), f"{guest.cmdline} hvtest.ip={address}/24")
    spec = VmSpec(name=name, location=str(folder), memory=MemoryConfig(256), network=switch, install=boot)
    uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    server.lookup(uuid).create()
    return uuid, str(vm_folders(folder, name).serial_log)


def _fdb_macs(bridge: str, device: str) -> set[str]:
    """The addresses ``bridge fdb show`` lists on a port of the bridge (the independent observer)."""
    out = subprocess.run(["bridge", "fdb", "show", "br", bridge], capture_output=True, text=True, check=True)
    return {line.split()[0].lower() for line in out.stdout.splitlines() if f" dev {device} " in f" {line} "}


@pytest.mark.vm
def test_switch_monitor_and_networking_tab_follow_real_pings(
    run: Runner,
    make_window: WindowFactory,
    clean_domains: str,
    vm_location: Path,
    test_guest: Any,
    qtbot: QtBot,
) -> None:
    with _internal_switch(clean_domains) as (switch, bridge, address):
        server = Server(clean_domains)
        server.open()
        try:
            uuid, serial = _guest_vm(server, vm_location, switch, address, test_guest)
        finally:
            server.close()
        wait_serial(Path(serial), f"HVTEST: ip {address}/24", timeout=180)
        mac = virsh("domiflist", vm_name("switch-monitor")).splitlines()[-1].split()[-1].lower()
        window = make_window(clean_domains)
        controller = window.manager.servers[clean_domains]
        run(lambda: _monitor_and_tab(controller, window, qtbot, uuid, mac, switch, bridge, address))


async def _monitor_and_tab(
    controller: Any, window: Any, qtbot: QtBot, uuid: str, mac: str, switch: str, bridge: str, address: str
) -> None:
    await wait_until(lambda: controller.state is ConnectionState.CONNECTED and uuid in controller.vms, 30)
    monitor = show_switch_monitor(window, controller)
    assert show_switch_monitor(window, controller) is monitor  # raised, not opened twice
    combo = monitor.switch_combo
    await wait_until(lambda: combo.findData(switch) >= 0, 20, "the switch in the selector")
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)  # a user goes down the list to the switch
    for _ in range(combo.findData(switch)):
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    await wait_until(lambda: monitor.shown_switch() == switch, 10, "the switch shown")
    key = (uuid, mac)
    model = monitor.port_model
    port = await wait_until(lambda: _with_rates(model.row_data(key)), 20, "the guest's port row")
    assert port.switch == switch and port.vm_name == vm_name("switch-monitor")
    assert model.text(key, PortColumn.DEVICE) == port.device
    assert port.device in virsh("domiflist", vm_name("switch-monitor"))
    assert str(port.queues) == model.text(key, PortColumn.QUEUES) == "1"
    assert "1 port" in monitor.totals_label.text()

    before, history = port.counters, monitor.controller.history
    started = time.monotonic()
    replies = await asyncio.to_thread(pings_answered, bridge, address, PINGS, PING_SIZE)
    assert replies > 0
    # The row and the chart come from the same tick: once the row has all the traffic, so has the chart.
    await wait_until(
        lambda: _grown(model.row_data(key), before, PINGS * FRAME, replies * FRAME), 20, "the port's counters"
    )
    received, sent = _bytes_since(monitor.chart, key, history, started)
    assert received >= CHART_SHARE * PINGS * FRAME, (received, monitor.chart.curve_data(key))
    assert sent >= CHART_SHARE * replies * FRAME, (sent, monitor.chart.curve_data(key))
    assert monitor.chart.label_of(key) is not None

    macs = monitor.mac_model
    entries = await wait_until(lambda: [e for e in macs.row_keys() if e[0] == mac], 20, "the MAC")
    assert entries == [(mac, port.device)]
    row = monitor.mac_model.row_data((mac, port.device))
    assert row is not None and row.vm_name == vm_name("switch-monitor") and not row.local
    assert mac in _fdb_macs(bridge, port.device)

    # The Networking tab of the VM charts its adapter too.
    assert window.select_vm(uuid)
    pane = window.details_pane
    await wait_until(lambda: pane.title() == port.vm_name and pane.tabs.isEnabled(), 20, "the VM's details")
    tabs = window.details_pane.tabs
    networking = next(i for i in range(tabs.count()) if tabs.tabText(i) == "Networking")
    qtbot.mouseClick(tabs.tabBar(), Qt.MouseButton.LeftButton, pos=tabs.tabBar().tabRect(networking).center())
    chart = window.details_pane.networking_chart
    await wait_until(lambda: chart.isVisible() and key in chart.ports(), 20, "the Networking tab's chart")
    started = time.monotonic()
    replies = await asyncio.to_thread(pings_answered, bridge, address, PINGS, PING_SIZE)
    await wait_until(
        lambda: _bytes_since(chart, key, history, started)[0] >= CHART_SHARE * PINGS * FRAME,
        20,
        "the tab's curve",
    )
    assert _bytes_since(chart, key, history, started)[1] >= CHART_SHARE * replies * FRAME
    monitor.close()
    await wait_until(lambda: not window.findChildren(SwitchMonitorWindow), 10, "the monitor to close")


def _with_rates(port: PortStats | None) -> PortStats | None:
    return port if port is not None and port.rates is not None else None


def _grown(port: PortStats | None, before: PortCounters, received: int, sent: int) -> bool:
    if port is None:
        return False
    c = port.counters
    return c.rx_bytes - before.rx_bytes >= received and c.tx_bytes - before.tx_bytes >= sent
