"""The details pane's Storage tab: each drive of the selected VM with its live read and write
throughput (bytes per second and I/O operations per second, between the last two stats ticks).

The drives come from the VM's configuration (so an off VM lists them too, without figures) and
from the live figures (a drive hot-added since the configuration was read shows up at once). Rows
are updated in place on every tick: the selection and the scroll position stay.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from hvmanager.backend.formatting import format_bytes
from hvmanager.backend.models import DiskConfig, DiskThroughput

STORAGE_HEADERS = ["Controller", "Virtual Hard Disk", "Read", "Write", "Read IOPS", "Write IOPS"]
_IDE_NAMES = "hd"


def drive_label(target: str, config: DiskConfig | None) -> str:
    """Where the drive sits, as Hyper-V names it: ``IDE 0:1``, ``SCSI 0:3`` (from the drive's
    address; without one, IDE from libvirt's fixed device names hda-hdd, otherwise the bus and
    the device name: ``VIRTIO (vda)``); only the device name while the drive's configuration is
    not known yet (just hot-added)."""
    if config is None:
        return target
    if config.slot is not None:
        return f"{config.bus.upper()} {config.slot[0]}:{config.slot[1]}"
    if config.bus == "ide" and len(target) == 3 and target.startswith(_IDE_NAMES):
        index = ord(target[2]) - ord("a")
        if 0 <= index < 4:
            return f"IDE {index // 2}:{index % 2}"
    kind = " DVD" if config.device == "cdrom" else ""
    return f"{(config.bus or 'disk').upper()}{kind} ({target})"


def format_rate(bytes_per_second: float | None) -> str:
    """A throughput: ``1.5 MB/s``; blank when unknown."""
    return "" if bytes_per_second is None else f"{format_bytes(round(bytes_per_second))}/s"


def format_iops(per_second: float | None) -> str:
    """Operations per second: whole numbers, one decimal below 10 (``0.5``); blank when unknown."""
    if per_second is None:
        return ""
    if per_second >= 10 or per_second == int(per_second):
        return f"{per_second:.0f}"
    return f"{per_second:.1f}"


class StorageTab(QTableWidget):
    """One row per drive with media: controller, file, read/write throughput and IOPS."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(STORAGE_HEADERS), parent)
        self.setObjectName("storageTable")
        self.setHorizontalHeaderLabels(STORAGE_HEADERS)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self._drives: dict[str, DiskConfig] = {}
        self._figures: dict[str, DiskThroughput] = {}

    def set_drives(self, disks: Sequence[DiskConfig]) -> None:
        """The VM's configured drives (those without media are left out)."""
        self._drives = {d.target: d for d in disks if d.path}
        self._refresh()

    def set_throughput(self, disks: Sequence[DiskThroughput]) -> None:
        """One tick's figures (empty: the VM does not run; the figures are blanked)."""
        self._figures = {d.target: d for d in disks}
        self._refresh()

    def clear_all(self) -> None:
        """Nothing selected."""
        self._drives, self._figures = {}, {}
        self.setRowCount(0)

    def targets(self) -> list[str]:
        """The device names shown, in row order."""
        return [*self._drives, *(t for t in self._figures if t not in self._drives)]

    def _refresh(self) -> None:
        targets = self.targets()
        if self.rowCount() != len(targets):
            self.setRowCount(len(targets))
        for row, target in enumerate(targets):
            config = self._drives.get(target)
            figures = self._figures.get(target)
            path = figures.path if figures is not None else (config.path if config else None) or ""
            cells = [
                drive_label(target, config),
                os.path.basename(path) or path,
                format_rate(figures.read_bps if figures else None),
                format_rate(figures.write_bps if figures else None),
                format_iops(figures.read_iops if figures else None),
                format_iops(figures.write_iops if figures else None),
            ]
            for column, text in enumerate(cells):
                self._set_cell(row, column, text, path if column == 1 else "")

    def _set_cell(self, row: int, column: int, text: str, tooltip: str) -> None:
        """Change the text of the existing item (replacing items would disturb the selection)."""
        item = self.item(row, column)
        if item is None:
            item = QTableWidgetItem(text)
            self.setItem(row, column, item)
        elif item.text() != text:
            item.setText(text)
        if item.toolTip() != tooltip:
            item.setToolTip(tooltip)
