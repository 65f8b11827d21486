"""The traffic chart's legend and x axis (the curves are ``scrolling_curves.CurveSet``)."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem

LEGEND_ROWS = 7


class Legend(pg.GraphicsObject):  # type: ignore[misc]
    """A legend in a corner of the plot: a line sample and a text per entry, in columns of
    ``LEGEND_ROWS``; painted once into a pixmap cache, again only when the entries change (it lies
    over the curves, so it is repainted with them on every tick)."""

    _PAD, _SAMPLE, _GAP, _COLUMN_GAP = 6.0, 22.0, 6.0, 14.0

    def __init__(self) -> None:
        super().__init__()
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setZValue(100)
        self._font = QFont()
        self._font.setPointSizeF(8.5)
        self._metrics = QFontMetricsF(self._font)
        self.entries: list[tuple[QPen | None, str]] = []
        self._rect = QRectF()

    def set_entries(self, entries: list[tuple[QPen | None, str]]) -> None:
        """The lines of the legend: (pen of the sample, or None for a text-only line; text)."""
        self.prepareGeometryChange()
        self.entries = entries
        self._rect = self._layout_rect()
        self.update()

    def _columns(self) -> list[list[tuple[QPen | None, str]]]:
        return [self.entries[i : i + LEGEND_ROWS] for i in range(0, len(self.entries), LEGEND_ROWS)]

    def _column_width(self, column: list[tuple[QPen | None, str]]) -> float:
        return self._SAMPLE + self._GAP + max(self._metrics.horizontalAdvance(text) for _pen, text in column)

    def _layout_rect(self) -> QRectF:
        columns = self._columns()
        if not columns:
            return QRectF()
        width = sum(self._column_width(c) for c in columns) + self._COLUMN_GAP * (len(columns) - 1)
        height = self._metrics.height() * len(columns[0])
        return QRectF(0, 0, width + 2 * self._PAD, height + 2 * self._PAD)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return QRectF(self._rect)

    def paint(self, painter: QPainter, *args: Any) -> None:
        if not self.entries:
            return
        painter.setPen(QPen(QColor("#c8c8c8")))
        painter.setBrush(QColor(255, 255, 255, 225))
        painter.drawRect(self._rect.adjusted(0, 0, -1, -1))
        painter.setFont(self._font)
        line_height = self._metrics.height()
        left = self._PAD
        for column in self._columns():
            for row, (pen, text) in enumerate(column):
                top = self._PAD + row * line_height
                middle = top + line_height / 2
                if pen is not None:
                    painter.setPen(pen)
                    painter.drawLine(QPointF(left, middle), QPointF(left + self._SAMPLE - 4, middle))
                painter.setPen(QColor("#222222"))
                painter.drawText(
                    QPointF(left + self._SAMPLE + self._GAP - 4, top + self._metrics.ascent()), text
                )
            left += self._column_width(column) + self._COLUMN_GAP


class SecondsAgoAxis(pg.AxisItem):  # type: ignore[misc]
    """The x axis: data are ≤ 0 (seconds relative to the latest tick), shown as 300 … 0."""

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [f"{abs(value * scale):g}" for value in values]
