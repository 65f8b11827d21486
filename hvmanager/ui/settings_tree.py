"""The tree on the left of the VM Settings window: bold group headings (Hardware, Management), one
entry per page, each entry with a grey summary line under its name ("1024 MB", "web.qcow2",
"lab-switch") or, for a heading-like entry (a controller, Add Hardware, an adapter's Hardware
Acceleration), just its name.

Each entry holds its page widget (``PAGE_ROLE``) and its summary (``SUMMARY_ROLE``; None for a
one-line entry).
"""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QFont, QIcon, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QFrame,
    QHBoxLayout,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.models import StartAction, StopAction, VmConfig
from hvmanager.backend.vmsettings_rules import CHECKPOINT_TYPE_LABELS, SettingsChange

SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 1
"""Item data role of a tree entry's summary line ("1024 MB", "Boot from CD", ...)."""
PAGE_ROLE = Qt.ItemDataRole.UserRole + 2
"""Item data role of a tree entry's page (the widget in the dialog's stack)."""

_Index = QModelIndex | QPersistentModelIndex

_START_SUMMARY = {
    StartAction.NOTHING: "None",
    StartAction.START_IF_RUNNING: "Restart if previously running",
    StartAction.START: "Always start",
}
_STOP_SUMMARY = {
    StopAction.SAVE: "Save",
    StopAction.TURN_OFF: "Turn off",
    StopAction.SHUT_DOWN: "Shut down",
}


def entry_summaries(
    change: SettingsChange, config: VmConfig, policy: CheckpointPolicy | None
) -> dict[str, str]:
    """The summary line of every tree entry for the values shown (keyed by page title)."""
    shown = change.applied_to(config)
    boot = f"Boot from {shown.boot_order[0].label}" if shown.boot_order else ""
    count = shown.processors
    policy = change.checkpoint_policy or policy
    return {
        "Checkpoints": CHECKPOINT_TYPE_LABELS[policy.type] if policy else "",
        "BIOS": "Boot from Linux kernel" if config.kernel_boot else boot,
        "Firmware": "Boot from Linux kernel" if config.kernel_boot else boot,
        "Memory": f"{shown.memory.startup_mib} MB",
        "Processor": f"{count} Virtual processor{'s' if count != 1 else ''}",
        "Name": shown.name,
        "Automatic Start Action": _START_SUMMARY[shown.start_action],
        "Automatic Stop Action": _STOP_SUMMARY[shown.stop_action],
    }


class _SummaryDelegate(QStyledItemDelegate):
    """Draws a tree entry as its name with a smaller grey summary line underneath."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        size = super().sizeHint(option, index)
        if index.data(SUMMARY_ROLE) is None:
            return QSize(size.width(), size.height() + 6)
        return QSize(size.width(), option.fontMetrics.height() * 2 + 8)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        summary = index.data(SUMMARY_ROLE)
        if summary is None:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        name, opt.text = opt.text, ""
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, opt.widget)
        self._draw_lines(painter, opt, text_rect, name, str(summary))

    @staticmethod
    def _draw_lines(
        painter: QPainter, opt: QStyleOptionViewItem, rect: QRect, name: str, summary: str
    ) -> None:
        line = opt.fontMetrics.height()
        top = rect.top() + (rect.height() - 2 * line) // 2
        name_rect = QRect(rect.left() + 2, top, rect.width() - 4, line)
        summary_rect = name_rect.translated(0, line)
        painter.save()
        painter.setFont(opt.font)
        painter.setPen(opt.palette.color(opt.palette.ColorRole.Text))
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.drawText(
            name_rect, align, opt.fontMetrics.elidedText(name, Qt.TextElideMode.ElideRight, name_rect.width())
        )
        painter.setPen(opt.palette.color(opt.palette.ColorRole.PlaceholderText))
        painter.drawText(
            summary_rect,
            align,
            opt.fontMetrics.elidedText(summary, Qt.TextElideMode.ElideRight, summary_rect.width()),
        )
        painter.restore()


class SettingsTree(QTreeWidget):
    """The Settings window's tree of groups and page entries."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsTree")
        self.setHeaderHidden(True)
        self.setFixedWidth(240)
        self.setIndentation(14)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setItemDelegate(_SummaryDelegate(self))

    def add_group(self, title: str) -> QTreeWidgetItem:
        """A bold heading that can't be selected."""
        group = QTreeWidgetItem(self, [title])
        group.setFlags(Qt.ItemFlag.ItemIsEnabled)
        font = QFont(group.font(0))
        font.setBold(True)
        group.setFont(0, font)
        return group

    @staticmethod
    def add_entry(
        parent: QTreeWidgetItem, title: str, page: QWidget, summary: str | None, icon: QIcon | None = None
    ) -> QTreeWidgetItem:
        """An entry under ``parent`` showing ``page`` (a one-line entry when ``summary`` is None),
        with ``icon`` before its name if given (network adapters)."""
        item = QTreeWidgetItem(parent, [title])
        item.setData(0, PAGE_ROLE, page)
        item.setData(0, SUMMARY_ROLE, summary)
        if icon is not None:
            item.setIcon(0, icon)
        return item

    def entries(self) -> Iterator[QTreeWidgetItem]:
        """Every entry that has a page, in tree order."""
        iterator = QTreeWidgetItemIterator(self)
        while (item := iterator.value()) is not None:
            if isinstance(item.data(0, PAGE_ROLE), QWidget):
                yield item
            iterator += 1

    def select_page(self, page: QWidget) -> bool:
        """Make ``page``'s entry the current one; False if it has none."""
        for item in self.entries():
            if item.data(0, PAGE_ROLE) is page:
                self.setCurrentItem(item)
                return True
        return False


def tree_beside_pages(tree: QWidget, stack: QWidget) -> QHBoxLayout:
    """The body of a settings-like dialog: the tree on the left, the framed pages beside it."""
    frame = QFrame()
    frame.setFrameShape(QFrame.Shape.StyledPanel)
    inner = QVBoxLayout(frame)
    inner.setContentsMargins(0, 0, 0, 0)
    inner.addWidget(stack)
    body = QHBoxLayout()
    body.addWidget(tree)
    body.addWidget(frame, 1)
    return body
