"""Undo actions of a multi-step change, run newest first when a later step fails.

Each undo action runs even when an earlier one failed (the failure is logged): a half-undone
change is worse than a logged error, and the caller re-raises the step's own error anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Rollback:
    """The undo actions of the steps done so far."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._actions: list[Callable[[], Any]] = []

    def push(self, action: Callable[[], Any]) -> None:
        """Remember how to undo the step just done."""
        self._actions.append(action)

    def run(self) -> None:
        """Undo every step, newest first, then forget them."""
        for action in reversed(self._actions):
            try:
                action()
            except Exception:  # the other steps must still be undone; the caller reports the cause
                log.exception("Undoing a step of %s failed", self._what)
        self._actions.clear()
