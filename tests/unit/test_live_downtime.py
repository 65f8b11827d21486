"""The short maximum downtime asked for during a live checkpoint: set, relaxed when the copy takes
long (a guest that dirties memory fast would never fit it), and always put back."""

from __future__ import annotations

import threading
import time
from typing import Any

import libvirt
import pytest

from hvmanager.backend import live_downtime


class RecordingDomain:
    """Stands in for a libvirt domain: remembers the maximum downtime it is given."""

    def __init__(self, current: int = 300, supported: bool = True) -> None:
        self.current, self.supported = current, supported
        self.history: list[int] = []
        self.lock = threading.Lock()

    def migrateGetMaxDowntime(self, _flags: int) -> int:  # noqa: N802 - libvirt's name
        if not self.supported:
            raise libvirt.libvirtError("this function is not supported by the connection driver")
        return self.current

    def migrateSetMaxDowntime(self, value: int, _flags: int) -> None:  # noqa: N802 - libvirt's name
        with self.lock:
            self.current = value
            self.history.append(value)

    def name(self) -> str:
        return "vm"


def test_short_downtime_is_set_then_put_back() -> None:
    dom = RecordingDomain(500)
    with live_downtime.short_downtime(dom):
        assert dom.current == live_downtime.CHECKPOINT_DOWNTIME_MS
    assert dom.current == 500
    assert dom.history == [live_downtime.CHECKPOINT_DOWNTIME_MS, 500]


def test_a_long_copy_gets_the_previous_limit_back_while_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_downtime, "RELAX_AFTER_S", 0.05)
    dom = RecordingDomain(300)
    with live_downtime.short_downtime(dom):
        deadline = time.monotonic() + 5
        while dom.current != 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dom.current == 300, "relaxed during the copy"
    assert dom.current == 300


def test_drivers_without_the_setting_are_left_alone() -> None:
    dom: Any = RecordingDomain(supported=False)
    with live_downtime.short_downtime(dom):
        pass
    assert dom.history == []
