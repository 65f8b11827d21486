"""A chart of switch ports' traffic over the last minutes (pyqtgraph): one curve set per port.

Each port has two curves in its own colour: received bytes/s (solid) and sent bytes/s (dashed),
"received" and "sent" meaning by the virtual machine. The x axis is seconds before the latest
tick (300 … 0), the y axis bytes per second with SI prefixes (kB/s, MB/s).

At 50 ports a tick changes 100 curves of 300 points every second, so the chart does little per
tick (bench/network_charts.py measures it; a plain pyqtgraph chart of one ``PlotDataItem`` per
curve with grid and auto-range cost some thirty times as much):

- all curves are one graphics item (``scrolling_curves.CurveSet``) drawing 1-pixel cosmetic
  polylines (the raster engine's fast path) through an image that scrolls: a tick draws each
  curve's newest segment, not its 300 points. No item, path or polygon is made per tick, and
  there is no per-item bounds or auto-range bookkeeping;
- the y range is set here, from the data's maximum (one numpy reduction over the ports shown), to
  a round value with hysteresis, so the axes are not laid out again on most ticks; there is no
  axis grid (pyqtgraph's costs ~15 ms a paint): the curves' item draws light vertical lines every
  minute under them;
- the legend, which lies over the curves and so is repainted with them, is one item cached as a
  pixmap (``chart_items.Legend``), redrawn only when ports come, go or are renamed;
- while the chart is hidden (another tab), ticks only note what to draw.

A port's colour follows its place in the traffic history: it keeps it as long as the port runs,
and the Switch Monitor and the VM's Networking tab, which chart the same history, agree on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPen, QShowEvent
from PySide6.QtWidgets import QWidget

from hvmanager.views.chart_items import Legend, SecondsAgoAxis
from hvmanager.views.scrolling_curves import Curve, CurveSet
from hvmanager.views.traffic_history import (
    RX_BPS,
    TX_BPS,
    WINDOW_S,
    FloatArray,
    IntArray,
    PortKey,
    TrafficHistory,
)

# Tableau 10: distinct on white, still distinct for most colour-blind readers.
PALETTE = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)  # fmt: skip
MIN_Y_TOP = 1000.0  # bytes/s: an idle chart shows 0 … 1 kB/s
GRID_STEP_S = 60
LEGEND_PORTS = 12  # ports named in the legend; the rest are counted (the ports table has them all)
_HEADROOM = 1.04  # above the round top, so that its tick label is not cut in half
_GRID_COLOUR = "#e4e4e4"
_STYLE_COLOUR = "#555555"


def colour_for(index: int) -> QColor:
    """The ``index``-th port colour: the palette, then evenly spread hues."""
    if index < len(PALETTE):
        return QColor(PALETTE[index])
    color: QColor = pg.intColor(index - len(PALETTE), hues=17, values=2, minValue=160)
    return color


def round_top(value: float) -> float:
    """The smallest of 1, 2, 5 × 10^k that is ≥ ``value`` (and ≥ ``MIN_Y_TOP``)."""
    value = max(value, MIN_Y_TOP)
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10.0 * power


def next_top(current: float, data_max: float) -> float:
    """The y range's top for the data's maximum: grown at once when the data would not fit (with
    10 % headroom), shrunk only when the data use less than a quarter of it (no jitter)."""
    wanted = round_top(data_max * 1.1)
    if wanted > current or wanted * 4 <= current:
        return wanted
    return current


def _pen(colour: QColor, dashed: bool = False) -> QPen:
    pen = QPen(colour, 1)
    pen.setCosmetic(True)  # 1 px whatever the scale: the raster engine's fast path
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


_Request = tuple[TrafficHistory, tuple[tuple[PortKey, str], ...]]


@dataclass
class _Port:
    """One port's entry: its colour number, legend text and curves (received, sent)."""

    colour: int
    label: str
    received: Curve
    sent: Curve


class TrafficChart(pg.PlotWidget):  # type: ignore[misc]
    """Received and sent bytes/s of some ports over the last ``window_s`` seconds."""

    def __init__(self, parent: QWidget | None = None, window_s: float = WINDOW_S) -> None:
        super().__init__(parent, background="w", axisItems={"bottom": SecondsAgoAxis("bottom")})
        self.window_s = window_s
        plot = self.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.setMouseEnabled(x=False, y=False)
        plot.setLabel("bottom", "seconds ago")
        plot.setLabel("left", "Throughput", units="B/s")
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen("#8a939e")
            axis.setTextPen("#333333")
        plot.enableAutoRange(enable=False)
        plot.setXRange(-window_s, 0, padding=0)
        self.top = MIN_Y_TOP
        plot.setYRange(0, self.top * _HEADROOM, padding=0)
        self.curves = CurveSet(window_s, self.top * _HEADROOM, GRID_STEP_S, _pen(QColor(_GRID_COLOUR)))
        plot.addItem(self.curves)
        self.legend = Legend()
        self.legend.setParentItem(plot.getViewBox())  # in pixels, over the curves
        self.legend.setPos(6, 6)
        self._ports: dict[PortKey, _Port] = {}
        self._pending: _Request | None = None
        self._history = TrafficHistory(window_s)  # the one drawn
        self._layout: tuple[object, ...] = ()  # what the curves' slots were found for
        self._curves: list[Curve] = []
        self._slots: IntArray = np.zeros(0, dtype=np.intp)
        self._ports_version = 0
        self._legend_stale = True

    # --- what is shown --------------------------------------------------------------------------

    def ports(self) -> list[PortKey]:
        """The ports drawn, in the order they were added."""
        return list(self._ports)

    def label_of(self, key: PortKey) -> str | None:
        """A port's legend text, or None when it is not drawn."""
        port = self._ports.get(key)
        return port.label if port else None

    def colour_of(self, key: PortKey) -> QColor | None:
        """A port's colour, or None when it is not drawn."""
        port = self._ports.get(key)
        return port.received.pen.color() if port else None

    @property
    def ports_version(self) -> int:
        """Changes whenever ports (and so colours) come or go."""
        return self._ports_version

    def legend_texts(self) -> list[str]:
        """The legend's lines, in order."""
        return [text for _pen, text in self.legend.entries]

    def curve_data(self, key: PortKey) -> tuple[FloatArray, FloatArray, FloatArray] | None:
        """What a port's curves draw now: (seconds ago, received bytes/s, sent bytes/s), copies."""
        port = self._ports.get(key)
        if port is None:
            return None
        samples = self._history.samples(port.received.slot)
        now = self._history.last_time or 0.0
        return samples[0] - now, samples[1 + RX_BPS].copy(), samples[1 + TX_BPS].copy()

    # --- updates --------------------------------------------------------------------------------

    def show_ports(self, history: TrafficHistory, ports: Sequence[tuple[PortKey, str]]) -> None:
        """Draw ``ports`` (key, legend text) from ``history``; other ports are removed."""
        self._pending = (history, tuple(ports))
        if self.isVisible():
            self._apply_pending()

    def clear_ports(self) -> None:
        """Draw nothing."""
        self.show_ports(TrafficHistory(self.window_s), ())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._apply_pending()

    def _apply_pending(self) -> None:
        if self._pending is None:
            return
        history, ports = self._pending
        self._pending = None
        wanted = dict(ports)
        for key in [k for k in self._ports if k not in wanted]:
            del self._ports[key]
            self._legend_stale = True
            self._ports_version += 1
        if self._layout != (id(history), history.layout, ports):
            self._layout = (id(history), history.layout, ports)
            self._curves = []
            for key, label in ports:
                port = self._ports.get(key) or self._add(key, label, history)
                if port.label != label:
                    port.label = label
                    self._legend_stale = True
                port.received.slot = port.sent.slot = history.slot(key)
                self._curves += [port.received, port.sent]
            self._slots = np.array(sorted({c.slot for c in self._curves if c.slot >= 0}), dtype=np.intp)
        data_max = history.window_max(self._slots)
        if self._legend_stale:
            self._rebuild_legend()
        top = next_top(self.top, data_max)
        if top != self.top:
            self.top = top
            self.getPlotItem().setYRange(0, top * _HEADROOM, padding=0)
        self.curves.set_curves(self._curves, top * _HEADROOM, history)
        self._history = history

    def _add(self, key: PortKey, label: str, history: TrafficHistory) -> _Port:
        colour = self._free_colour(key, history)
        received, sent = _pen(colour_for(colour)), _pen(colour_for(colour), dashed=True)
        port = _Port(colour, label, Curve(received, RX_BPS), Curve(sent, TX_BPS))
        self._ports[key] = port
        self._legend_stale = True
        self._ports_version += 1
        return port

    def _rebuild_legend(self) -> None:
        """The two line styles, then the first ``LEGEND_PORTS`` ports and how many more there are."""
        self._legend_stale = False
        entries: list[tuple[QPen | None, str]] = [
            (_pen(QColor(_STYLE_COLOUR)), "received (solid)"),
            (_pen(QColor(_STYLE_COLOUR), dashed=True), "sent (dashed)"),
        ]
        ports = list(self._ports.values())
        entries += [(port.received.pen, port.label) for port in ports[:LEGEND_PORTS]]
        if len(ports) > LEGEND_PORTS:
            entries.append((None, f"… and {len(ports) - LEGEND_PORTS} more ports"))
        self.legend.set_entries(entries)

    def _free_colour(self, key: PortKey, history: TrafficHistory) -> int:
        """The port's place in the history (so that every chart of that history gives the port
        the same colour, and no two ports held together share one); the first colour no shown
        port has for a port the history does not hold."""
        slot = history.slot(key)
        if slot >= 0:
            return slot
        used = {port.colour for port in self._ports.values()}
        return next(index for index in range(len(used) + 1) if index not in used)
