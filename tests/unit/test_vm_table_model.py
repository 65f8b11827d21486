"""The VM list model: structural changes without resets, one dataChanged per run of rows."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt

from hvmanager.backend.models import VmInfo, VmState, VmStats
from hvmanager.views.vm_table_model import Column, VmRole, VmTableModel, _runs

STARTED = time.time() - 60


def _info(n: int, state: VmState = VmState.RUNNING) -> VmInfo:
    return VmInfo(f"u{n}", f"vm{n}", state)


def test_runs() -> None:
    assert _runs([1, 2, 3, 7, 9, 10]) == [(1, 3), (7, 7), (9, 10)]
    assert _runs([]) == []


def test_set_vms_inserts_updates_and_removes_without_reset(qtmodeltester: Any) -> None:
    model = VmTableModel()
    resets: list[int] = []
    model.modelReset.connect(lambda: resets.append(1))
    model.set_vms([_info(1), _info(2), _info(3)])
    qtmodeltester.check(model)
    model.set_vms([_info(2, VmState.OFF), _info(3), _info(4)])
    assert model.uuids() == ["u2", "u3", "u4"]
    assert model.index(0, Column.STATE).data() == "Off"
    assert resets == []
    qtmodeltester.check(model)


def test_stats_tick_emits_one_signal_per_run_with_roles() -> None:
    model = VmTableModel()
    model.set_vms([_info(n) for n in range(6)])
    changes: list[tuple[int, int, list[int]]] = []
    model.dataChanged.connect(lambda a, b, roles: changes.append((a.row(), b.row(), list(roles))))
    model.set_stats({f"u{n}": VmStats(f"u{n}", cpu_percent=5.0, started_at=STARTED) for n in (0, 1, 2, 4)})
    assert [(a, b) for a, b, _ in changes] == [(0, 2), (4, 4)]
    assert all(Qt.ItemDataRole.DisplayRole in roles for _a, _b, roles in changes)
    assert model.index(0, Column.CPU).data() == "5 %"
    assert model.index(0, Column.CPU).data(VmRole.SORT) == 5.0
    assert model.index(3, Column.CPU).data(VmRole.SORT) == -1.0
    changes.clear()
    model.set_stats({f"u{n}": VmStats(f"u{n}", cpu_percent=5.0, started_at=STARTED) for n in (0, 1, 2, 4)})
    assert changes == []  # nothing changed, nothing emitted


def test_stopping_a_vm_blanks_its_figures_and_status() -> None:
    model = VmTableModel()
    model.set_vms([_info(1)])
    model.set_stats({"u1": VmStats("u1", cpu_percent=9.0, assigned_mib=512, started_at=time.time() - 5)})
    model.set_operation("u1", "Saving")
    assert model.index(0, Column.STATUS).data() == "Saving"
    model.update_vm(_info(1, VmState.OFF))
    assert model.index(0, Column.MEMORY).data() == ""
    model.set_operation("u1", "")
    assert model.index(0, Column.STATUS).data() == ""
    model.remove_vm("u1")
    assert model.rowCount() == 0 and model.row_of("u1") is None


def test_uptime_is_worked_out_when_shown() -> None:
    model = VmTableModel()
    model.set_vms([_info(1)])
    model.set_stats({"u1": VmStats("u1", started_at=time.time() - 59.2)})
    assert model.index(0, Column.UPTIME).data() == "00:00:59"
    model.set_stats({"u1": VmStats("u1", started_at=time.time() - 3601)})
    assert model.index(0, Column.UPTIME).data() == "01:00:01"
