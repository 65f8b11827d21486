"""The VM list: Name, State, CPU Usage, Assigned Memory, Uptime, Status.

A thin Qt adapter over rows of plain data. Rows are inserted and removed properly (no resets, so
selection and scrolling survive), and each stats tick emits one ``dataChanged`` per contiguous run
of changed rows with explicit roles. The sort role carries raw values so that 9 % sorts below 10 %.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from hvmanager.backend.formatting import format_cpu, format_memory, format_uptime
from hvmanager.backend.models import VmInfo, VmState, VmStats

Index = QModelIndex | QPersistentModelIndex


class Column(enum.IntEnum):
    """The columns, in Hyper-V Manager's order."""

    NAME = 0
    STATE = 1
    CPU = 2
    MEMORY = 3
    UPTIME = 4
    STATUS = 5


HEADERS = {
    Column.NAME: "Name",
    Column.STATE: "State",
    Column.CPU: "CPU Usage",
    Column.MEMORY: "Assigned Memory",
    Column.UPTIME: "Uptime",
    Column.STATUS: "Status",
}


class VmRole(enum.IntEnum):
    """Custom item data roles."""

    UUID = Qt.ItemDataRole.UserRole + 1
    SORT = Qt.ItemDataRole.UserRole + 2
    STATE = Qt.ItemDataRole.UserRole + 3


@dataclass(frozen=True)
class VmRow:
    """What one row shows."""

    info: VmInfo
    stats: VmStats | None = None
    operation: str = ""

    @property
    def status(self) -> str:
        """The Status column: the running operation, else the state's reason."""
        return self.operation or self.info.reason


_STATS_ROLES = [Qt.ItemDataRole.DisplayRole, VmRole.SORT]


class VmTableModel(QAbstractTableModel):
    """Rows of VMs for one server."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[VmRow] = []
        self._index: dict[str, int] = {}

    # --- Qt interface -------------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Number of VMs (a flat table: no children)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Six columns."""
        return 0 if parent.isValid() else len(Column)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[Column(section)]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        """Selectable rows, never children."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Formatted text, raw sort values, the VM's UUID and state."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return _display(row, column)
        if role == VmRole.SORT:
            return _sort_value(row, column)
        if role == VmRole.UUID:
            return row.info.uuid
        if role == VmRole.STATE:
            return row.info.state
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.CPU, Column.MEMORY, Column.UPTIME):
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    # --- updates --------------------------------------------------------------------------------

    def row_of(self, uuid: str) -> int | None:
        """The row of a VM, or None."""
        return self._index.get(uuid)

    def info(self, uuid: str) -> VmInfo | None:
        """The VM's last known identity and state."""
        row = self._index.get(uuid)
        return self._rows[row].info if row is not None else None

    def uuids(self) -> list[str]:
        """Every VM, in row order."""
        return [row.info.uuid for row in self._rows]

    def set_vms(self, infos: list[VmInfo]) -> None:
        """Make the rows match a full listing: remove the missing, update the rest, add the new."""
        wanted = {info.uuid: info for info in infos}
        for uuid in [u for u in self._index if u not in wanted]:
            self.remove_vm(uuid)
        new = [info for info in infos if info.uuid not in self._index]
        for info in infos:
            if info.uuid in self._index:
                self.update_vm(info)
        if new:
            self.add_vms(new)

    def update_vm(self, info: VmInfo) -> None:
        """Add a VM or update its name and state."""
        row = self._index.get(info.uuid)
        if row is None:
            self.add_vms([info])
            return
        old = self._rows[row]
        stats = old.stats if info.state.is_active else None
        self._rows[row] = replace(old, info=info, stats=stats)
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(Column) - 1))

    def add_vms(self, infos: list[VmInfo]) -> None:
        """Append VMs at the end."""
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(infos) - 1)
        for info in infos:
            self._index[info.uuid] = len(self._rows)
            self._rows.append(VmRow(info))
        self.endInsertRows()

    def remove_vm(self, uuid: str) -> None:
        """Remove a VM's row."""
        row = self._index.get(uuid)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._index = {r.info.uuid: i for i, r in enumerate(self._rows)}
        self.endRemoveRows()

    def set_operation(self, uuid: str, text: str) -> None:
        """Show an operation in the Status column ("" when it ended)."""
        row = self._index.get(uuid)
        if row is None or self._rows[row].operation == text:
            return
        self._rows[row] = replace(self._rows[row], operation=text)
        cell = self.index(row, Column.STATUS)
        self.dataChanged.emit(cell, cell, [Qt.ItemDataRole.DisplayRole, VmRole.SORT])

    def set_stats(self, stats: dict[str, VmStats]) -> None:
        """Apply one tick of live figures; rows without figures are blanked."""
        changed = []
        for row, current in enumerate(self._rows):
            new = stats.get(current.info.uuid)
            if new != current.stats:
                self._rows[row] = replace(current, stats=new)
                changed.append(row)
        for first, last in _runs(changed):
            self.dataChanged.emit(
                self.index(first, Column.CPU), self.index(last, Column.UPTIME), _STATS_ROLES
            )


def _runs(rows: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted row numbers: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][1] == row - 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    return runs


def _display(row: VmRow, column: Column) -> str:
    stats = row.stats
    if column is Column.NAME:
        return row.info.name
    if column is Column.STATE:
        return row.info.state.value
    if column is Column.STATUS:
        return row.status
    if stats is None:
        return ""
    if column is Column.CPU:
        return format_cpu(stats.cpu_percent)
    if column is Column.MEMORY:
        return format_memory(stats.assigned_mib)
    return format_uptime(stats.uptime())


_STATE_ORDER = {state: i for i, state in enumerate(VmState)}


def _sort_value(row: VmRow, column: Column) -> Any:
    stats = row.stats
    if column is Column.NAME:
        return row.info.name.casefold()
    if column is Column.STATE:
        return _STATE_ORDER[row.info.state]
    if column is Column.STATUS:
        return row.status.casefold()
    if stats is None:
        return -1.0
    value = {Column.CPU: stats.cpu_percent, Column.MEMORY: stats.assigned_mib, Column.UPTIME: stats.uptime()}[
        column
    ]
    return -1.0 if value is None else float(value)
