"""A Qt table model of keyed rows of plain data, updated in place (no resets): what the Switch
Monitor's ports and MAC address tables are built on.

The cells are ``QStandardItem``s (as the Storage tab's are ``QTableWidgetItem``s): a view's
repaint reads them without calling back into Python, and an update sets only the texts that
changed (one ``dataChanged`` per cell, so a view repaints just those cells). Rows that went away
are removed, new ones appended; the selection, the order and the scroll position stay.
``Role.KEY`` (first column) carries a row's key, ``Role.SORT`` the raw values a sort compares.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class Role(enum.IntEnum):
    """Custom item data roles."""

    KEY = Qt.ItemDataRole.UserRole + 1
    SORT = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: its title, how a row's text is made (None: the model's ``texts_of`` makes the
    whole row's), what a sort compares (None: the text, case-insensitively), a tooltip."""

    title: str
    text: Callable[[R], str] | None = None
    sort: Callable[[R], Any] | None = None
    tooltip: str | None = None
    right_aligned: bool = False

    def sort_value(self, row: R, text: str) -> Any:
        """What a sort by this column compares."""
        return text.casefold() if self.sort is None else self.sort(row)


_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


class Row(Generic[R]):
    """One row: its items (one per column), its plain data and the texts its items hold
    (``stale`` when the data changed while the row was out of sight)."""

    __slots__ = ("data", "items", "stale", "texts")

    def __init__(self, items: list[QStandardItem], data: R, texts: tuple[str, ...]) -> None:
        self.items, self.data, self.texts = items, data, texts
        self.stale = False


class KeyedTableModel(QStandardItemModel, Generic[K, R]):
    """A flat table of rows of plain data, each with a key, updated in place (see the module).

    A view that shows only some rows says which (``show_rows``): the others keep their new data
    and get their texts when they come into sight, so an update formats a screenful of rows, not
    all of them. Rows stay where they are between sorts, so that live figures don't make them jump
    about; clicking a header sorts by the raw values as they are then (9 KB/s below 10 KB/s).
    """

    def __init__(self, columns: Sequence[Column[R]], parent: Any = None) -> None:
        super().__init__(0, len(columns), parent)
        self.columns = tuple(columns)
        for number, column in enumerate(self.columns):
            header = QStandardItem(column.title)
            if column.tooltip:
                header.setToolTip(column.tooltip)
            self.setHorizontalHeaderItem(number, header)
        self.setSortRole(Role.SORT)
        self._rows: dict[K, Row[R]] = {}
        self._shown: tuple[int, int] | None = None  # rows in sight (None: all)

    # --- reading --------------------------------------------------------------------------------

    def row_keys(self) -> list[K]:
        """Every row's key, in row order."""
        return sorted(self._rows, key=lambda key: self._rows[key].items[0].row())

    def row_of(self, key: K) -> int | None:
        """The row of a key, or None."""
        row = self._rows.get(key)
        return row.items[0].row() if row is not None else None

    def row_data(self, key: K) -> R | None:
        """The plain data of a row, or None."""
        row = self._rows.get(key)
        return row.data if row is not None else None

    def text(self, key: K, column: int) -> str | None:
        """What a cell shows (or will show once in sight), or None when there is no such row."""
        row = self._rows.get(key)
        if row is None:
            return None
        return self.texts_of(row.data)[column] if row.stale else row.texts[column]

    def show_rows(self, first: int, last: int) -> None:
        """Only rows ``first`` … ``last`` are in sight: the others' texts may wait (rows that come
        into sight get theirs now)."""
        self._shown = (first, last)
        for key, row in self._rows.items():
            if row.stale and first <= row.items[0].row() <= last:
                self._update(key, row, row.data)

    # --- updating -------------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[tuple[K, R]]) -> None:
        """Make the table hold exactly ``rows`` (key, data): the others are removed, the changed
        ones updated in place, the new ones appended in the given order.

        Only the texts that changed are set: each announces its own cell, so a view repaints just
        those cells (one signal over the whole changed range repaints every visible cell in it,
        which costs more than the signals)."""
        wanted = dict(rows)
        gone = [key for key in self._rows if key not in wanted]
        for number in sorted((self._rows.pop(key).items[0].row() for key in gone), reverse=True):
            self.removeRow(number)
        shown = self._shown
        for key, data in rows:
            row = self._rows.get(key)
            if row is None:
                self._append(key, data)
            elif data != row.data:
                if shown is None or shown[0] <= row.items[0].row() <= shown[1]:
                    self._update(key, row, data)
                else:
                    row.data, row.stale = data, True

    def texts_of(self, data: R) -> tuple[str, ...]:
        """The texts of a row's cells (from the columns' ``text``; a model whose columns have
        none makes them itself)."""
        return tuple(column.text(data) if column.text else "" for column in self.columns)

    def _append(self, key: K, data: R) -> None:
        texts = self.texts_of(data)
        items = []
        for column, text in zip(self.columns, texts, strict=True):
            item = QStandardItem(text)
            item.setEditable(False)
            if column.right_aligned:
                item.setTextAlignment(_RIGHT)
            items.append(item)
        items[0].setData(key, Role.KEY)
        row = Row(items, data, texts)
        self.row_shown(key, row, None)  # before the row is in the model: no signals for it
        self._rows[key] = row
        self.appendRow(items)

    def _update(self, key: K, row: Row[R], data: R) -> None:
        texts = self.texts_of(data)
        changed = [
            number for number, (old, text) in enumerate(zip(row.texts, texts, strict=True)) if old != text
        ]
        for number in changed:
            row.items[number].setText(texts[number])
        row.data, row.texts, row.stale = data, texts, False
        self.row_shown(key, row, changed)

    def row_shown(self, key: K, row: Row[R], changed: list[int] | None) -> None:
        """A row was added (``changed`` None) or these columns' texts changed: subclasses set
        tooltips, decorations (none here)."""

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sort the rows by a column's raw values as they are now."""
        if 0 <= column < len(self.columns):
            spec = self.columns[column]
            blocked = self.blockSignals(True)  # values only the sort below reads
            for row in self._rows.values():
                row.items[column].setData(spec.sort_value(row.data, row.texts[column]), Role.SORT)
            self.blockSignals(blocked)
        super().sort(column, order)
