"""The last few minutes of every switch port's traffic, for the charts (pure: numpy, no Qt).

Every port (keyed by ``(vm_uuid, mac)``) has a slot in one shared ring buffer of ``capacity``
ticks (the chart's window divided by the tick interval: 300 ticks at 1 s for 5 minutes) holding
its received and sent bytes/s and packets/s; the ticks' times are shared. The buffer is written
twice (at ``i`` and ``i + capacity``), so any stretch of ticks in time order is one contiguous
slice: reading needs no copy or roll, and a tick is a handful of numpy operations for all ports
at once (``record``), as is what a chart needs per tick (``recent``, ``window_max``).

A port's samples are its newest ``count`` ticks: a port seen for the first time has no rates yet
(they need two readings) and so no sample; a port whose rates are unknown again (its counters
started over: a device made anew) starts a new run. A port that is absent from a tick (its VM
stopped, the adapter was removed) is dropped with its history. Times are the moments the ticks
were recorded (``time.monotonic()`` by default), so a skipped tick leaves a gap in time instead of
squeezing the curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hvmanager.backend.models import VmStats
from hvmanager.backend.network_models import PortStats

PortKey = tuple[str, str]  # (vm uuid, adapter MAC in lower case)
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

WINDOW_S = 300.0
DEFAULT_INTERVAL_S = 1.0
RX_BPS, TX_BPS, RX_PPS, TX_PPS = range(4)  # the value rows of a slot
_FIRST_SLOTS = 8


def port_key(port: PortStats) -> PortKey:
    """The key of a port's history: its VM and its adapter's MAC address."""
    return (port.vm_uuid, port.mac.lower())


def ports_of(stats: Mapping[str, VmStats]) -> Iterator[PortStats]:
    """Every port of one stats tick (the running VMs' adapters)."""
    for vm in stats.values():
        yield from vm.ports


def capacity_for(window_s: float, interval_s: float) -> int:
    """How many ticks cover ``window_s`` at one tick per ``interval_s`` (at least 2)."""
    return max(2, math.ceil(window_s / max(interval_s, 0.001)))


@dataclass(frozen=True)
class Series:
    """One port's samples in a window: x in seconds before the latest tick (≤ 0), y per second."""

    seconds_ago: FloatArray
    rx_bps: FloatArray
    tx_bps: FloatArray
    rx_pps: FloatArray
    tx_pps: FloatArray

    def __len__(self) -> int:
        return len(self.seconds_ago)


@dataclass(frozen=True)
class Recent:
    """The two newest ticks of some slots: their times (``None`` with fewer than two ticks), the
    values of one row per slot at each (``previous``, ``latest``), and each slot's sample count."""

    previous_time: float | None
    latest_time: float | None
    previous: FloatArray
    latest: FloatArray
    counts: IntArray


class TrafficHistory:
    """The recent samples of every port seen in the last tick."""

    def __init__(self, window_s: float = WINDOW_S, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.window_s = window_s
        self.interval_s = interval_s
        self.capacity = capacity_for(window_s, interval_s)
        self._slots: dict[PortKey, int] = {}
        self._free = list(range(_FIRST_SLOTS - 1, -1, -1))  # popped from the end: lowest first
        self._times = np.zeros(2 * self.capacity)
        self._values = np.zeros((_FIRST_SLOTS, 4, 2 * self.capacity))
        self._counts = np.zeros(_FIRST_SLOTS, dtype=np.intp)
        self._head = 0  # where the next tick goes, in [0, capacity)
        self._ticks = 0  # ticks held (≤ capacity)
        self.last_time: float | None = None
        self.layout = 0  # changes whenever ports get or lose their slots

    # --- reading --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def keys(self) -> list[PortKey]:
        """The ports held, in the order they were first seen."""
        return list(self._slots)

    def slot(self, key: PortKey) -> int:
        """A port's slot (−1 when the port is not held)."""
        return self._slots.get(key, -1)

    def count(self, key: PortKey) -> int:
        """How many samples a port has (0 for an unknown port)."""
        slot = self._slots.get(key)
        return int(self._counts[slot]) if slot is not None else 0

    def times(self) -> FloatArray:
        """The ticks' times, oldest first (a view)."""
        end = self._head + self.capacity
        view: FloatArray = self._times[end - self._ticks : end]
        return view

    def samples(self, slot: int, now: float | None = None, window_s: float | None = None) -> FloatArray:
        """A slot's samples within ``window_s`` before ``now`` (default: the latest tick and the
        history's window), oldest first, as one read-only view: row 0 the times, then rx bytes/s,
        tx bytes/s, rx packets/s, tx packets/s."""
        if slot < 0 or self.last_time is None:
            return np.zeros((5, 0))
        now = self.last_time if now is None else now
        window = self.window_s if window_s is None else window_s
        end = self._head + self.capacity
        start = end - int(self._counts[slot])
        start += int(self._times[start:end].searchsorted(now - window, side="left"))
        rows = np.vstack((self._times[start:end], self._values[slot, :, start:end]))
        rows.flags.writeable = False
        return rows

    def series(self, key: PortKey) -> Series | None:
        """A port's samples of the window before the latest tick (None for an unknown port)."""
        slot = self._slots.get(key)
        if slot is None or self.last_time is None:
            return None
        rows = self.samples(slot)
        return Series(rows[0] - self.last_time, rows[1], rows[2], rows[3], rows[4])

    def latest(self, key: PortKey) -> tuple[float, float, float, float, float] | None:
        """A port's newest sample (time, rx bytes/s, tx bytes/s, rx packets/s, tx packets/s)."""
        slot = self._slots.get(key)
        if slot is None or not self._counts[slot]:
            return None
        at = self._head + self.capacity - 1
        rx, tx, rx_packets, tx_packets = self._values[slot, :, at].tolist()
        return (float(self._times[at]), rx, tx, rx_packets, tx_packets)

    def recent(self, slots: IntArray, rows: IntArray) -> Recent:
        """The two newest ticks of ``slots`` (row ``rows[i]`` of slot ``slots[i]``), for drawing
        each curve's newest segment: one numpy read for all of them."""
        end = self._head + self.capacity
        if self._ticks < 2:
            latest = self._values[slots, rows, end - 1] if self._ticks else np.zeros(len(slots))
            latest_time = float(self._times[end - 1]) if self._ticks else None
            return Recent(None, latest_time, np.zeros(len(slots)), latest, self._counts[slots])
        pair = self._values[slots, rows, end - 2 : end]
        return Recent(
            float(self._times[end - 2]),
            float(self._times[end - 1]),
            pair[:, 0],
            pair[:, 1],
            self._counts[slots],
        )

    def window_max(self, slots: IntArray, rows: Sequence[int] = (RX_BPS, TX_BPS)) -> float:
        """The largest value of ``rows`` of ``slots`` within the window before the latest tick.

        (Ticks before a port's samples hold zeros — a slot is cleared when a port takes it or
        starts a new run — and rates are never negative, so no mask is needed.)"""
        if not len(slots) or self.last_time is None:
            return 0.0
        end = self._head + self.capacity
        start = end - self._ticks
        start += int(self._times[start:end].searchsorted(self.last_time - self.window_s, side="left"))
        if start >= end:
            return 0.0
        first, last = min(rows), max(rows) + 1
        return float(self._values[slots, first:last, start:end].max())

    # --- recording ------------------------------------------------------------------------------

    def record(self, ports: Iterable[PortStats], now: float | None = None) -> None:
        """One tick: a sample for every port with rates; the ports not listed are dropped.

        A port's first tick has no rates yet (they need two readings): it is kept, without a
        sample; a port whose rates are unknown again starts a new run of samples.
        """
        at = time.monotonic() if now is None else now
        listed: dict[PortKey, PortStats] = {}
        for port in ports:  # the same adapter listed twice in one tick: the first one counts
            listed.setdefault((port.vm_uuid, port.mac.lower()), port)
        for key in [k for k in self._slots if k not in listed]:
            self._release(key)  # first, so that a port new in this tick can take its slot
        slots: list[int] = []
        rates: list[tuple[float, float, float, float]] = []
        restart: list[int] = []
        for key, port in listed.items():
            slot = self._slots.get(key)
            if slot is None:
                slot = self._take_slot(key)
            r = port.rates
            if r is None:
                restart.append(slot)
            else:
                slots.append(slot)
                rates.append((r.rx_bytes, r.tx_bytes, r.rx_packets, r.tx_packets))
        head, capacity = self._head, self.capacity
        self._times[head] = self._times[head + capacity] = at
        if slots:
            block = np.array(rates)
            self._values[slots, :, head] = block
            self._values[slots, :, head + capacity] = block
            self._counts[slots] = np.minimum(self._counts[slots] + 1, capacity)
        self._counts[restart] = 0
        self._values[restart] = 0.0  # a new run: nothing before it
        self._head = (head + 1) % capacity
        self._ticks = min(self._ticks + 1, capacity)
        self.last_time = at

    def _take_slot(self, key: PortKey) -> int:
        if not self._free:  # twice as many slots
            held = len(self._counts)
            self._values = np.concatenate((self._values, np.zeros_like(self._values)))
            self._counts = np.concatenate((self._counts, np.zeros_like(self._counts)))
            self._free = list(range(2 * held - 1, held - 1, -1))
        slot = self._free.pop()
        self._counts[slot] = 0
        self._values[slot] = 0.0  # nothing of the slot's earlier port
        self._slots[key] = slot
        self.layout += 1
        return slot

    def _release(self, key: PortKey) -> None:
        slot = self._slots.pop(key)
        self._counts[slot] = 0
        self._free.append(slot)
        self.layout += 1

    def set_interval(self, interval_s: float) -> None:
        """The tick interval changed: keep the window's length in time (newest ticks kept)."""
        capacity = capacity_for(self.window_s, interval_s)
        self.interval_s = interval_s
        if capacity == self.capacity:
            return
        kept = min(self._ticks, capacity)
        end = self._head + self.capacity
        times = self._times[end - kept : end]
        values = self._values[:, :, end - kept : end]
        self._times = np.zeros(2 * capacity)
        self._values = np.zeros((len(self._counts), 4, 2 * capacity))
        for offset in (0, capacity):
            self._times[offset : offset + kept] = times
            self._values[:, :, offset : offset + kept] = values
        self._counts = np.minimum(self._counts, kept)
        self.capacity, self._head, self._ticks = capacity, kept % capacity, kept
        self.layout += 1
