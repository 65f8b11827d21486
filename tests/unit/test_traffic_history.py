"""The ports' traffic history behind the charts: one shared ring of ticks in time order, the
5-minute window, ports that vanish or start over, interval changes, the per-tick reads a chart
makes for all curves at once; and the chart's y range rounding."""

from __future__ import annotations

import numpy as np
import pytest

from hvmanager.backend.models import VmStats
from hvmanager.backend.network_models import PortCounters, PortRates, PortStats
from hvmanager.views.traffic_chart import next_top, round_top
from hvmanager.views.traffic_history import (
    RX_BPS,
    TX_BPS,
    TrafficHistory,
    capacity_for,
    port_key,
    ports_of,
)

UUID = "6f1c3f1e-0000-4000-8000-000000000001"


def port(mac: str = "00:15:5D:00:00:01", rx: float = 0.0, tx: float = 0.0, uuid: str = UUID) -> PortStats:
    """A port with rates (rx/tx bytes/s; packets/s are a thousandth of those)."""
    rates = PortRates(rx, tx, rx / 1000, tx / 1000)
    return PortStats(uuid, "vm", mac, "vnet0", "sw", PortCounters(), rates)


def without_rates(mac: str = "00:15:5D:00:00:01") -> PortStats:
    """A port on its first tick (or after its counters started over): no rates."""
    return PortStats(UUID, "vm", mac, "vnet0", "sw", PortCounters(), None)


def key(mac: str = "00:15:5d:00:00:01") -> tuple[str, str]:
    return (UUID, mac)


def test_capacity_covers_the_window_at_the_tick_interval() -> None:
    assert capacity_for(300, 1.0) == 300
    assert capacity_for(300, 3.0) == 100
    assert capacity_for(300, 0.7) == 429
    assert capacity_for(1, 10) == 2  # never fewer than two samples: a line needs two points


def test_samples_come_back_oldest_first_across_the_wrap() -> None:
    history = TrafficHistory(window_s=4, interval_s=1)  # 4 ticks
    for t in range(1, 7):  # six ticks into four places
        history.record([port(rx=t * 10.0, tx=t * 100.0)], now=float(t))
    assert history.capacity == 4 and history.count(key()) == 4
    assert history.times().tolist() == [3.0, 4.0, 5.0, 6.0]
    series = history.series(key())
    assert series is not None
    assert series.seconds_ago.tolist() == [-3.0, -2.0, -1.0, 0.0]
    assert series.rx_bps.tolist() == [30.0, 40.0, 50.0, 60.0]
    assert series.tx_bps.tolist() == [300.0, 400.0, 500.0, 600.0]
    assert series.rx_pps.tolist() == [0.03, 0.04, 0.05, 0.06]
    assert series.tx_pps.tolist() == [0.3, 0.4, 0.5, 0.6]
    assert history.latest(key()) == (6.0, 60.0, 600.0, 0.06, 0.6)


def test_every_wrap_position_keeps_time_order() -> None:
    history = TrafficHistory(window_s=100, interval_s=20)  # 5 ticks
    for t in range(1, 23):
        history.record([port(rx=float(t))], now=float(t))
        expected = [float(v) for v in range(max(1, t - 4), t + 1)]
        assert history.times().tolist() == expected
        series = history.series(key())
        assert series is not None and series.rx_bps.tolist() == expected


def test_the_samples_are_read_only() -> None:
    history = TrafficHistory()
    history.record([port(rx=1.0)], now=1.0)
    series = history.series(key())
    assert series is not None
    with pytest.raises(ValueError, match="read-only"):
        series.rx_bps[0] = 5.0


def test_samples_keep_only_the_window_before_the_latest_tick() -> None:
    history = TrafficHistory(window_s=300, interval_s=30)  # 10 ticks, more than 300 s apart
    for t in (0.0, 100.0, 250.0, 399.0, 400.0):
        history.record([port(rx=t)], now=t)
    series = history.series(key())
    assert series is not None
    assert series.seconds_ago.tolist() == [-300.0, -150.0, -1.0, 0.0]


def test_ports_are_keyed_by_vm_and_mac_and_vanished_ports_are_dropped() -> None:
    history = TrafficHistory()
    a, b = port("00:15:5D:00:00:0A", 1000, 2000), port("00:15:5d:00:00:0b", 5, 6)
    history.record([a, b], now=10.0)
    assert history.keys() == [(UUID, "00:15:5d:00:00:0a"), (UUID, "00:15:5d:00:00:0b")]
    layout = history.layout
    history.record([port("00:15:5D:00:00:0A", 3000, 4000)], now=11.0)
    assert history.keys() == [port_key(a)] and port_key(b) not in history
    assert history.layout != layout  # a port lost its slot
    series = history.series(port_key(a))
    assert series is not None
    assert series.seconds_ago.tolist() == [-1.0, 0.0]
    assert series.rx_bps.tolist() == [1000.0, 3000.0] and series.tx_bps.tolist() == [2000.0, 4000.0]
    assert history.series(port_key(b)) is None
    # The vanished port coming back starts afresh (in a free slot: the old samples don't show).
    history.record([a, b], now=12.0)
    again = history.series(port_key(b))
    assert again is not None and again.rx_bps.tolist() == [5.0]


def test_the_same_mac_on_two_vms_is_two_ports_and_a_repeated_port_counts_once() -> None:
    history = TrafficHistory()
    history.record([port(rx=1), port(rx=2, uuid="other"), port(rx=3)], now=1.0)
    assert len(history) == 2
    assert history.latest(key()) == (1.0, 1.0, 0.0, 0.001, 0.0)


def test_a_port_without_rates_has_no_sample_and_starts_a_new_run_after() -> None:
    history = TrafficHistory()
    history.record([without_rates()], now=1.0)
    assert key() in history and history.count(key()) == 0
    series = history.series(key())
    assert series is not None and len(series) == 0
    history.record([port(rx=7.0)], now=2.0)
    history.record([port(rx=8.0)], now=3.0)
    history.record([without_rates()], now=4.0)  # counters started over: a new run
    history.record([port(rx=9.0)], now=5.0)
    series = history.series(key())
    assert series is not None and series.rx_bps.tolist() == [9.0]


def test_a_full_window_at_one_second_holds_300_samples() -> None:
    history = TrafficHistory()
    for t in range(1000):
        history.record([port(rx=float(t))], now=float(t))
    series = history.series(key())
    assert series is not None
    assert len(series) == 300
    assert series.rx_bps[0] == 700.0 and series.rx_bps[-1] == 999.0
    assert series.seconds_ago[0] == -299.0


def test_many_ports_grow_the_slots_and_keep_their_samples() -> None:
    history = TrafficHistory()
    macs = [f"00:15:5d:00:01:{n:02x}" for n in range(50)]
    for t in range(3):
        history.record([port(mac, rx=n * 10.0 + t) for n, mac in enumerate(macs)], now=float(t))
    assert len(history) == 50
    for n, mac in enumerate(macs):
        series = history.series(key(mac))
        assert series is not None and series.rx_bps.tolist() == [n * 10.0, n * 10.0 + 1, n * 10.0 + 2]


def test_a_longer_interval_shrinks_the_ring_and_keeps_the_newest_ticks() -> None:
    history = TrafficHistory()
    for t in range(300):
        history.record([port(rx=float(t))], now=float(t))
    history.set_interval(3.0)
    assert history.capacity == 100
    assert history.times().tolist() == [float(t) for t in range(200, 300)]
    series = history.series(key())
    assert series is not None and series.rx_bps.tolist() == [float(t) for t in range(200, 300)]
    history.record([port(rx=1.0)], now=303.0)
    assert history.count(key()) == 100 and history.times()[-1] == 303.0
    series = history.series(key())
    assert series is not None and series.rx_bps[-1] == 1.0 and series.rx_bps[0] == 201.0


def test_recent_reads_the_two_newest_ticks_of_every_curve_at_once() -> None:
    history = TrafficHistory()
    history.record([port("00:15:5d:00:00:01", 1, 2), without_rates("00:15:5d:00:00:02")], now=1.0)
    history.record([port("00:15:5d:00:00:01", 3, 4), port("00:15:5d:00:00:02", 5, 6)], now=2.0)
    slots = np.array([history.slot(key("00:15:5d:00:00:01"))] * 2 + [history.slot(key("00:15:5d:00:00:02"))])
    recent = history.recent(slots, np.array([RX_BPS, TX_BPS, TX_BPS]))
    assert (recent.previous_time, recent.latest_time) == (1.0, 2.0)
    assert recent.latest.tolist() == [3.0, 4.0, 6.0]
    assert recent.previous[:2].tolist() == [1.0, 2.0]
    assert recent.counts.tolist() == [2, 2, 1]  # the second port's first sample is the latest one


def test_window_max_looks_only_at_each_port_s_own_samples_in_the_window() -> None:
    history = TrafficHistory(window_s=10, interval_s=1)
    history.record([port("00:15:5d:00:00:01", 900, 0)], now=0.0)
    for t in range(1, 12):
        history.record([port("00:15:5d:00:00:01", 5, 7)], now=float(t))
    slot = history.slot(key())
    assert history.window_max(np.array([slot])) == 7.0  # the 900 is older than the window
    assert history.window_max(np.array([slot]), rows=(RX_BPS,)) == 5.0
    history.record([port("00:15:5d:00:00:01", 5, 7), port("00:15:5d:00:00:09", 50, 60)], now=12.0)
    assert history.window_max(np.array([slot, history.slot(key("00:15:5d:00:00:09"))])) == 60.0


def test_ports_of_walks_every_vm() -> None:
    stats = {
        "a": VmStats("a", ports=(port(uuid="a"),)),
        "b": VmStats("b"),
        "c": VmStats("c", ports=(port("00:15:5d:00:00:02", uuid="c"), port("00:15:5d:00:00:03", uuid="c"))),
    }
    assert [(p.vm_uuid, p.mac) for p in ports_of(stats)] == [
        ("a", "00:15:5D:00:00:01"),
        ("c", "00:15:5d:00:00:02"),
        ("c", "00:15:5d:00:00:03"),
    ]


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1000), (999, 1000), (1001, 2000), (2500, 5000), (5000, 5000), (7e6, 1e7), (1.2e9, 2e9)],
)
def test_round_top(value: float, top: float) -> None:
    assert round_top(value) == pytest.approx(top)


def test_next_top_grows_at_once_and_shrinks_only_well_below() -> None:
    assert next_top(1000, 950) == 2000  # 950 + 10 % headroom does not fit under 1000
    assert next_top(10_000, 4000) == 10_000  # still uses more than a quarter: kept
    assert next_top(10_000, 1500) == 2000  # a small fraction: shrunk
    assert next_top(10_000, 0) == 1000
