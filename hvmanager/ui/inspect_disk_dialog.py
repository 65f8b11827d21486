"""Inspect Disk: Hyper-V's "Virtual Hard Disk Properties" (Actions ▸ Inspect Disk, or the Settings'
Hard Drive page's Inspect button).

The dialog opens at once and reads the disk in the background through the ``DiskController``
(``vhd.inspect`` with the minimum size, and the VMs that use it). It shows Get-VHD's fields: format,
type, location, file name, current file size, maximum (virtual) size, minimum size, block size,
sector sizes and identifier; for a differencing disk its parent with **Inspect Parent** (the
parent's own properties), **Reconnect…** when the parent is missing (the Edit wizard at its
Reconnect action), and the whole chain of parents with each one's presence; and which virtual
machines use the disk. The two buttons only emit signals: ``disk_commands`` opens what they ask for.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStyle,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import limits
from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_types import DiskType, VhdInfo
from hvmanager.controllers.disks import DiskController, DiskReport
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.disk_wizard_pages import TYPE_LABELS, red

FIELDS = (
    ("format", "Format:"),
    ("type", "Type:"),
    ("location", "Location:"),
    ("fileName", "File Name:"),
    ("fileSize", "Current File Size:"),
    ("maximumSize", "Maximum Disk Size:"),
    ("minimumSize", "Minimum Size:"),
    ("blockSize", "Block Size:"),
    ("logicalSector", "Logical Sector Size:"),
    ("physicalSector", "Physical Sector Size:"),
    ("identifier", "Identifier:"),
)


def size_text(size: int) -> str:
    """``127 GB (136,365,211,648 bytes)``: Hyper-V's figure and the exact one."""
    return f"{limits.human_size(size)} ({size:,} bytes)" if size >= limits.KIB else f"{size} bytes"


def wrappable(text: str) -> str:
    """A path a label may wrap after each "/" (a zero-width space there: paths have no spaces to
    wrap at)."""
    return text.replace("/", "/\u200b")


def describe(info: VhdInfo) -> str:
    """``VHDX, dynamically expanding, 127 GB (the file takes 4 MB)``."""
    kind = TYPE_LABELS[info.type].lower()
    size, used = limits.human_size(info.size), limits.human_size(info.file_size)
    return f"{info.format_label}, {kind}, {size} (the file takes {used})"


def usage_text(report: DiskReport) -> str:
    """Which VMs use the disk, in a sentence."""
    if report.users is None:
        return "Which virtual machines use this disk is unknown: the server is not connected."
    if not report.users:
        return "No virtual machine uses this disk."
    names = ", ".join(
        f"'{user.vm_name}' ({'running' if user.running else 'not running'}, {user.target})"
        for user in report.users
    )
    return f"Used by {names}."


def field_values(info: VhdInfo) -> dict[str, str]:
    """The text of each field (``FIELDS``' keys)."""
    folder, name = os.path.split(info.path)
    minimum = size_text(info.minimum_size) if info.minimum_size is not None else "Not computed"
    return {
        "format": info.format_label,
        "type": f"{TYPE_LABELS[info.type]} virtual hard disk",
        "location": folder,
        "fileName": name,
        "fileSize": size_text(info.file_size),
        "maximumSize": size_text(info.size),
        "minimumSize": minimum,
        "blockSize": size_text(info.block_size) if info.block_size else "0 (none: all space is allocated)",
        "logicalSector": f"{info.logical_sector_size} bytes",
        "physicalSector": f"{info.physical_sector_size} bytes",
        "identifier": info.identifier or "(none)",
    }


class InspectDiskDialog(QDialog):
    """Virtual Hard Disk Properties of one disk file.

    Signals: inspect_parent_requested(str path), reconnect_requested(str path of this disk).
    """

    inspect_parent_requested = Signal(str)
    reconnect_requested = Signal(str)

    def __init__(self, controller: DiskController, path: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inspectDiskDialog")
        self.setWindowTitle("Virtual Hard Disk Properties")
        self.resize(640, 520)
        self.path = path
        self.report: DiskReport | None = None
        self._loaded = False
        self._closed = False
        self.values: dict[str, QLabel] = {}
        self._build()
        spawn(self._load(controller))

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        header = QHBoxLayout()
        icon = QLabel()
        icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_DriveHDIcon).pixmap(40, 40))
        self.status = QLabel(f"Inspecting '{self.path}'...")
        self.status.setObjectName("statusLabel")
        self.status.setWordWrap(True)
        header.addWidget(icon, 0)
        header.addWidget(self.status, 1)
        layout.addLayout(header)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        for key, label in FIELDS:
            value = QLabel()
            value.setObjectName(f"{key}Value")
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[key] = value
            form.addRow(label, value)
        self.parent_value = QLabel()
        self.parent_value.setObjectName("parentValue")
        self.parent_value.setWordWrap(True)
        self.parent_value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.inspect_parent_button = QPushButton("Inspect &Parent")
        self.inspect_parent_button.setObjectName("inspectParentButton")
        self.inspect_parent_button.clicked.connect(self._inspect_parent)
        self.reconnect_button = QPushButton("&Reconnect...")
        self.reconnect_button.setObjectName("reconnectButton")
        self.reconnect_button.clicked.connect(lambda: self.reconnect_requested.emit(self.path))
        self.parent_buttons = QWidget()
        parent_row = QHBoxLayout(self.parent_buttons)
        parent_row.setContentsMargins(0, 0, 0, 0)
        parent_row.addWidget(self.inspect_parent_button)
        parent_row.addWidget(self.reconnect_button)
        parent_row.addStretch(1)
        self.parent_label = QLabel("Parent:")
        form.addRow(self.parent_label, self.parent_value)
        form.addRow("", self.parent_buttons)
        layout.addLayout(form)
        self.chain_label = QLabel("Parent chain:")
        self.chain = QTreeWidget()
        self.chain.setObjectName("parentChain")
        self.chain.setHeaderLabels(["Disk", "Format", "Present"])
        self.chain.setRootIsDecorated(False)
        self.usage = QLabel()
        self.usage.setObjectName("usageLabel")
        self.usage.setWordWrap(True)
        layout.addWidget(self.chain_label)
        layout.addWidget(self.chain, 1)
        layout.addWidget(self.usage)
        layout.addStretch(0)  # takes the spare height while there is no chain to show
        self._layout, self._filler = layout, layout.count() - 1
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._show_parent(None)

    async def _load(self, controller: DiskController) -> None:
        try:
            report = await controller.inspect(self.path, with_minimum_size=True)
        except HvError as exc:
            if not self._closed:
                red(self.status).setText(f"The disk can't be inspected: {exc}")
                self._loaded = True
            return
        if not self._closed:
            self.show_report(report)

    def done(self, result: int) -> None:
        """Closed: a read still running is dropped when it ends."""
        self._closed = True
        super().done(result)

    def reload(self, controller: DiskController) -> None:
        """Read the disk again (after Reconnect changed it)."""
        if self._closed:
            return
        self._loaded = False
        self.status.setPalette(self.palette())
        self.status.setText(f"Inspecting '{self.path}'...")
        spawn(self._load(controller))

    def show_report(self, report: DiskReport) -> None:
        """Fill every field from ``report``."""
        self.report = report
        info = report.info
        self.status.setText(describe(info))
        for key, text in field_values(info).items():
            self.values[key].setText(wrappable(text))
        self._show_parent(info)
        self.usage.setText(usage_text(report))
        self._loaded = True

    def loaded(self) -> bool:
        """Whether the disk was read (or failed to be)."""
        return self._loaded

    def _show_parent(self, info: VhdInfo | None) -> None:
        differencing = info is not None and info.type is DiskType.DIFFERENCING
        for widget in (
            self.parent_label,
            self.parent_value,
            self.parent_buttons,
            self.chain_label,
            self.chain,
        ):
            widget.setVisible(differencing)
        self._layout.setStretch(self._filler, 0 if differencing else 1)
        present = bool(info and info.parents and info.parents[0].present)
        self.inspect_parent_button.setVisible(differencing and present)
        self.reconnect_button.setVisible(differencing and not present)
        if info is None or not differencing:
            return
        missing = "" if present else "  (missing)"
        self.parent_value.setText(wrappable(f"{info.parent_path or ''}{missing}"))
        self.chain.clear()
        for link in info.parents:
            label = limits.format_for_qemu(link.format) if link.format else "?"
            item = QTreeWidgetItem([link.path, label, "Yes" if link.present else "Missing"])
            self.chain.addTopLevelItem(item)
        self.chain.resizeColumnToContents(0)

    def _inspect_parent(self) -> None:
        if self.report is not None and self.report.info.parents:
            self.inspect_parent_requested.emit(self.report.info.parents[0].path)
