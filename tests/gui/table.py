"""Reading the main window's VM list as a user sees it (through the sorting proxy)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

from hvmanager.views.vm_table_model import Column


def names(window: Any) -> list[str]:
    """The VM names, in the order shown."""
    model = window.table.model()
    return [model.index(row, Column.NAME).data() for row in range(model.rowCount())]


def row_of(window: Any, name: str) -> int | None:
    """The row showing VM ``name``, or None."""
    shown = names(window)
    return shown.index(name) if name in shown else None


def cell(window: Any, name: str, column: Column, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
    """A cell of VM ``name`` (None when the VM isn't listed)."""
    row = row_of(window, name)
    return None if row is None else window.table.model().index(row, column).data(role)


def state(window: Any, name: str) -> str:
    """The State column of VM ``name`` ("" when it isn't listed)."""
    return str(cell(window, name, Column.STATE) or "")


def select(window: Any, name: str) -> None:
    """Click VM ``name``'s row."""
    row = row_of(window, name)
    if row is None:
        raise AssertionError(f"{name} is not listed")
    window.table.selectRow(row)
