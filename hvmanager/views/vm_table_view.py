"""The VM list's table view: Hyper-V's look, and uptimes that tick every second.

An uptime is worked out from the VM's start time when its cell is painted, so the view only has
to repaint the visible Uptime cells each second. No model signal is needed: the order of uptimes
does not change as time passes, and the sorting proxy is left alone (with 1,000 VMs a signal for
the whole column cost more than everything else of a refresh).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

from hvmanager.views.vm_table_model import Column

UPTIME_REFRESH_MS = 1000
COLUMN_WIDTHS = {Column.NAME: 220, Column.STATE: 90, Column.CPU: 90, Column.MEMORY: 140, Column.UPTIME: 100}


class VmTableView(QTableView):
    """Rows of VMs: whole-row selection, several at once, a context menu, sortable columns."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("vmTable")
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(22)
        self.setShowGrid(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        # Columns exist only once a server's model is behind the proxy: size them then.
        header.sectionCountChanged.connect(self._on_section_count_changed)
        self._uptime_clock = QTimer(self)
        self._uptime_clock.timeout.connect(self._repaint_uptimes)
        self._uptime_clock.start(UPTIME_REFRESH_MS)

    def apply_column_widths(self) -> None:
        """Hyper-V Manager's column widths."""
        for column, width in COLUMN_WIDTHS.items():
            self.setColumnWidth(column, width)

    def _on_section_count_changed(self, old: int, new: int) -> None:
        if old == 0 and new > 0:
            self.apply_column_widths()

    def _repaint_uptimes(self) -> None:
        if not self.isVisible() or self.model() is None or not self.model().rowCount():
            return
        left = self.columnViewportPosition(Column.UPTIME)
        width = self.columnWidth(Column.UPTIME)
        if left >= 0 and width > 0:
            self.viewport().update(left, 0, width, self.viewport().height())
