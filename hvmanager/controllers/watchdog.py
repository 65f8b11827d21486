"""Measures how long the GUI event loop was kept from running (the longest stall).

A timer asks to run every ``PERIOD_MS``; any extra delay before it runs is time during which the
loop could not react to the user. Tests print the longest stall seen.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer

PERIOD_MS = 10


class StallWatchdog(QObject):
    """Records the longest delay of a periodic timer on the GUI thread."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.longest_stall_ms = 0.0
        self.longest_at = 0.0  # monotonic time at which the longest stall ended
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0

    def start(self) -> None:
        """Begin measuring (from the first time the loop runs the timer)."""
        self._last = 0.0
        self._timer.start(PERIOD_MS)

    def stop(self) -> None:
        """Stop measuring."""
        self._timer.stop()

    def _tick(self) -> None:
        now = time.monotonic()
        if not self._last:
            self._last = now
            return
        stall = (now - self._last) * 1000 - PERIOD_MS
        if stall > self.longest_stall_ms:
            self.longest_stall_ms = stall
            self.longest_at = now
        self._last = now
