"""Every curve of the traffic chart in one graphics item that scrolls instead of redrawing.

``CurveSet`` draws the curves as 1-pixel cosmetic polylines into a transparent image of its own,
in device pixels, and shows that image. On a tick, when only time went on and one sample came,
nothing is redrawn: the image is a ring whose seam moves by the pixels the time is worth (the
columns that come in are cleared), and each curve's newest segment is drawn at the right end.
A tick then costs one short line per curve instead of all 300 points of every curve (at 50 ports
redrawing them was most of the live view's cost), and no pixel is moved. The two newest samples
of every curve come from one numpy read of the history (``TrafficHistory.recent``); the loop
that remains only sets pens and draws.

Everything is drawn again when the curves, the scale or the size change, or when the time that
passed is worth the whole width. The image's time is kept in whole pixels, so curves and axis
differ by less than half a pixel. Dashed curves go on with their dash pattern where they left
off (``dashOffset``), so that a dash is not restarted on every tick's short segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QPointF, QRect, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPen, QTransform

from hvmanager.views.traffic_history import FloatArray, IntArray, TrafficHistory

BoolArray = npt.NDArray[np.bool_]


@dataclass
class Curve:
    """One curve: its pen, and where its samples are: ``row`` (``RX_BPS`` or ``TX_BPS``) of the
    history's ``slot`` (−1: none)."""

    pen: QPen
    row: int
    slot: int = -1


class CurveSet(pg.GraphicsObject):  # type: ignore[misc]
    """Every curve of a chart in one item, drawn through a scrolling ring image (see the module).

    The samples are read from the traffic history when painting (it is recorded before the chart
    hears of a tick, and the next tick comes after the paint). Light vertical lines every
    ``grid_step_s`` are drawn under the curves (here: an item of their own costs more to repaint
    each tick than the lines themselves).
    """

    def __init__(self, window_s: float, top: float, grid_step_s: float, grid_pen: QPen) -> None:
        super().__init__()
        self._grid = [-window_s + step * grid_step_s for step in range(1, math.ceil(window_s / grid_step_s))]
        self._grid_pen = grid_pen
        self._rect = QRectF(-window_s, 0.0, window_s, top)
        self._history = TrafficHistory(window_s)
        self._curves: list[Curve] = []
        self._pens: list[QPen] = []  # own copies: the dashed ones get their dash offset each tick
        self._rows: IntArray = np.zeros(0, dtype=np.intp)
        self._slots: IntArray = np.zeros(0, dtype=np.intp)
        self._valid: BoolArray = np.zeros(0, dtype=bool)
        self._dashed: BoolArray = np.zeros(0, dtype=bool)
        self._drawn_until: FloatArray = np.zeros(0)  # per curve: the newest sample's time in the image
        self._dash: FloatArray = np.zeros(0)  # per curve: its length in the image so far (pixels)
        self._now = 0.0  # the latest tick: x = 0 (monotonic seconds)
        self._image: QImage | None = None
        self._image_key: tuple[Any, ...] = ()
        self._image_now = 0.0  # the time x = 0 stands for in the image
        self._seam = 0  # the ring column (device pixels) shown at the left edge
        self.full_draws = 0  # how often everything was drawn again (tests, the benchmark)

    def set_curves(self, curves: list[Curve], top: float, history: TrafficHistory) -> None:
        """What to draw, and the y extent: the same list of the same ``Curve`` objects from tick
        to tick (only new segments are drawn), a new list whenever curves or their slots in
        ``history`` changed (everything is drawn again)."""
        if top != self._rect.height():
            self.prepareGeometryChange()
            self._rect.setHeight(top)
        if history is not self._history or curves is not self._curves:
            self._image_key = ()  # other curves, or other slots: draw them all
            self._curves, self._history = curves, history
            self._pens = [QPen(c.pen) for c in curves]
            self._rows = np.array([c.row for c in curves], dtype=np.intp)
            self._slots = np.array([max(c.slot, 0) for c in curves], dtype=np.intp)
            self._valid = np.array([c.slot >= 0 for c in curves], dtype=bool)
            self._dashed = np.array([p.style() != Qt.PenStyle.SolidLine for p in self._pens], dtype=bool)
            self._drawn_until = np.full(len(curves), -math.inf)
            self._dash = np.zeros(len(curves))
        self._now = history.last_time if history.last_time is not None else 0.0
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return QRectF(self._rect)

    def paint(self, painter: QPainter, *args: Any) -> None:
        transform = painter.worldTransform()
        area = transform.mapRect(self._rect).toAlignedRect().adjusted(-1, -1, 1, 1)
        if area.isEmpty() or transform.isRotating():
            return
        ratio = painter.device().devicePixelRatioF()
        key = (area.getRect(), ratio, transform.m11(), transform.m22(), transform.dx(), transform.dy())
        to_image = (
            transform * QTransform.fromTranslate(-area.x(), -area.y()) * QTransform.fromScale(ratio, ratio)
        )
        if self._image is None or key != self._image_key or not self._advance(to_image):
            self._draw_all(to_image, area, ratio)
            self._image_key = key
        else:
            self._draw_new(to_image)
        painter.setPen(self._grid_pen)
        for x in self._grid:
            painter.drawLine(QLineF(x, 0.0, x, self._rect.height()))
        self._show(painter, area, ratio)

    # --- the ring image -----------------------------------------------------------------------

    def _show(self, painter: QPainter, area: QRect, ratio: float) -> None:
        """Draw the ring unrolled: from the seam to its end, then from its start to the seam."""
        image = self._image
        assert image is not None
        width, height, seam = image.width(), image.height(), self._seam
        painter.save()
        painter.resetTransform()
        left = (width - seam) / ratio
        painter.drawImage(
            QRectF(area.x(), area.y(), left, area.height()), image, QRectF(seam, 0, width - seam, height)
        )
        if seam:
            target = QRectF(area.x() + left, area.y(), seam / ratio, area.height())
            painter.drawImage(target, image, QRectF(0, 0, seam, height))
        painter.restore()

    def _painter(self, to_image: QTransform, shift: int) -> QPainter:
        """A painter on the image for data coordinates relative to the image's time, ``shift``
        device pixels along the ring."""
        assert self._image is not None
        painter = QPainter(self._image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setTransform(to_image * QTransform.fromTranslate(shift, 0))
        return painter

    def _draw_all(self, to_image: QTransform, area: QRect, ratio: float) -> None:
        self.full_draws += 1
        image = QImage(
            round(area.width() * ratio),
            round(area.height() * ratio),
            QImage.Format.Format_ARGB32_Premultiplied,
        )
        image.fill(Qt.GlobalColor.transparent)
        self._image, self._image_now, self._seam = image, self._now, 0
        painter = self._painter(to_image, 0)
        self._drawn_until[:] = -math.inf
        self._dash[:] = 0.0
        for index, curve in enumerate(self._curves):
            samples = self._history.samples(curve.slot)
            if not samples.shape[1]:
                continue
            x, y = samples[0] - self._now, samples[1 + curve.row]
            self._drawn_until[index] = samples[0, -1]
            if self._dashed[index]:
                self._dash[index] = _pixel_length(x, y, to_image)
            painter.setPen(curve.pen)
            painter.drawPolyline(pg.functions.arrayToQPolygonF(x, y))
        painter.end()

    def _advance(self, to_image: QTransform) -> bool:
        """Move the seam by the time since the image was drawn (whole device pixels) and clear
        the columns that come in; False when that would be the whole width (or time went back)."""
        assert self._image is not None
        width = self._image.width()
        shift = round((self._now - self._image_now) * to_image.m11())
        if shift < 0 or shift >= width:
            return False
        if shift:
            pixels = np.frombuffer(self._image.bits(), dtype=np.uint32).reshape(self._image.height(), -1)
            start, end = self._seam, self._seam + shift
            pixels[:, start : min(end, width)] = 0
            if end > width:
                pixels[:, : end - width] = 0
            self._seam = end % width
            self._image_now += shift / to_image.m11()
        return True

    def _draw_new(self, to_image: QTransform) -> None:
        """Each curve's samples after the newest one in the image, at the image's time."""
        recent = self._history.recent(self._slots, self._rows)
        latest_time = recent.latest_time
        if latest_time is None:
            return
        new = self._valid & (self._drawn_until < latest_time) & (recent.counts > 0)
        if not new.any():
            return
        previous_time = recent.previous_time if recent.previous_time is not None else math.inf
        # The usual case: a sample at each of the two newest ticks, the older one drawn already.
        single = new & (recent.counts >= 2) & (self._drawn_until >= previous_time)
        x0, x1 = previous_time - self._image_now, latest_time - self._image_now
        others = [
            self._new_points(int(index)) for index in np.flatnonzero(new & ~single)
        ]  # a few points each
        first_x = min([x0 if single.any() else x1] + [float(x[0]) for _index, x, _y in others])
        for shift in self._ring_shifts(to_image, first_x, x1):
            painter = self._painter(to_image, shift)
            self._draw_segments(painter, single, recent.previous, recent.latest, x0, x1)
            for index, x, y in others:
                self._draw_polyline(painter, index, x, y)
            painter.end()
        self._advance_dashes(single, recent.previous, recent.latest, x1 - x0, to_image)
        for index, x, y in others:
            if self._dashed[index]:
                self._dash[index] += _pixel_length(x, y, to_image)
        self._drawn_until[new] = latest_time

    def _ring_shifts(self, to_image: QTransform, first_x: float, last_x: float) -> list[int]:
        """Where along the ring new drawing between data x ``first_x`` and ``last_x`` lands: at
        the seam, one ring width back, or both when it straddles the ring's end."""
        assert self._image is not None
        width = self._image.width()
        left = to_image.map(QPointF(first_x, 0.0)).x() - 1 + self._seam
        right = to_image.map(QPointF(last_x, 0.0)).x() + 1 + self._seam
        if right < width:
            return [self._seam]
        if left >= width:
            return [self._seam - width]
        return [self._seam, self._seam - width]

    def _draw_segments(
        self,
        painter: QPainter,
        which: BoolArray,
        previous: FloatArray,
        latest: FloatArray,
        x0: float,
        x1: float,
    ) -> None:
        """The newest segment of each curve in ``which``: one pen and one line each."""
        indexes = np.flatnonzero(which).tolist()
        y0, y1 = previous[which].tolist(), latest[which].tolist()
        pens, dashed, dash = self._pens, self._dashed, self._dash
        for index, start, end in zip(indexes, y0, y1, strict=True):
            pen = pens[index]
            if dashed[index]:
                pen.setDashOffset(dash[index])
            painter.setPen(pen)
            painter.drawLine(QLineF(x0, start, x1, end))

    def _advance_dashes(
        self, which: BoolArray, previous: FloatArray, latest: FloatArray, dx: float, to_image: QTransform
    ) -> None:
        """The dashed curves among ``which`` are a segment longer (pixels)."""
        grow = which & self._dashed
        if grow.any():
            steps = np.hypot(dx * to_image.m11(), (latest[grow] - previous[grow]) * to_image.m22())
            self._dash[grow] += steps

    def _new_points(self, index: int) -> tuple[int, FloatArray, FloatArray]:
        """A curve's points after the newest one drawn (and that one, to join them), x relative
        to the image's time."""
        curve = self._curves[index]
        samples = self._history.samples(curve.slot)
        first = max(0, int(samples[0].searchsorted(self._drawn_until[index], side="right")) - 1)
        return index, samples[0, first:] - self._image_now, samples[1 + curve.row, first:]

    def _draw_polyline(self, painter: QPainter, index: int, x: FloatArray, y: FloatArray) -> None:
        pen = self._pens[index]
        if self._dashed[index]:
            pen.setDashOffset(self._dash[index])
        painter.setPen(pen)
        painter.drawPolyline(pg.functions.arrayToQPolygonF(x, y))


def _pixel_length(x: FloatArray, y: FloatArray, transform: QTransform) -> float:
    """The length in pixels of the polyline through (x, y) under ``transform`` (scale only)."""
    if len(x) < 2:
        return 0.0
    return float(np.hypot(np.diff(x) * transform.m11(), np.diff(y) * transform.m22()).sum())
