"""The VM Settings window: "Settings for <VM> on <server>", as in Hyper-V Manager.

A tree on the left (Hardware: BIOS or Firmware, Memory, Processor; Management: Name, Checkpoints,
Automatic Start Action, Automatic Stop Action), each entry with a one-line summary under its name,
and the selected entry's page on the right. The Checkpoints page is there when the caller passes the
VM's ``CheckpointSettings`` (local servers: checkpoints are not supported on remote ones). Every
edit is checked at once with ``vmsettings.change_problems``; OK and Apply stay disabled while a
problem is shown.

The dialog works on plain data (``VmConfig``, ``VmState``, ``HostInfo``) and never talks to
libvirt: OK and Apply emit ``apply_requested`` with a ``SettingsChange``; the caller applies it
off the GUI thread, reports errors and calls ``set_config`` with the new configuration.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.models import HostInfo, StartAction, StopAction, VmConfig, VmState
from hvmanager.backend.vmsettings_rules import (
    CHECKPOINT_TYPE_LABELS,
    CheckpointSettings,
    SettingsChange,
    change_problems,
    generation_of,
    location_lock_reason,
)
from hvmanager.ui.settings_checkpoints_page import CheckpointsPage
from hvmanager.ui.settings_pages import (
    BootOrderPage,
    MemoryPage,
    NamePage,
    ProcessorPage,
    SettingsPage,
    StartActionPage,
    StopActionPage,
)

SUMMARY_ROLE = Qt.ItemDataRole.UserRole + 1
"""Item data role of a tree entry's summary line ("1024 MB", "Boot from CD", ...)."""
PAGE_ROLE = Qt.ItemDataRole.UserRole + 2
"""Item data role of a tree entry's page index in the stack."""

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


_Index = QModelIndex | QPersistentModelIndex


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


def _summaries(change: SettingsChange, config: VmConfig, policy: CheckpointPolicy | None) -> dict[str, str]:
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


class VmSettingsDialog(QDialog):
    """Hyper-V's Settings window for one VM.

    ``checkpoints`` (optional) adds the Checkpoints page, showing and checking those settings.

    Signals:
        apply_requested(SettingsChange): OK or Apply was pressed with this change (OK then
            closes the window); the caller applies it and reports failures.
    """

    apply_requested = Signal(object)

    def __init__(
        self,
        config: VmConfig,
        state: VmState,
        host: HostInfo,
        other_names: frozenset[str],
        parent: QWidget | None = None,
        *,
        checkpoints: CheckpointSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("vmSettingsDialog")
        self.resize(780, 540)
        self._config, self._state, self._host = config, state, host
        self._other_names = other_names
        self._checkpoints = checkpoints
        self._baseline = SettingsChange()
        self._items: list[QTreeWidgetItem] = []
        generation = generation_of(config)
        self.boot_page = BootOrderPage(generation)
        self.memory_page = MemoryPage(generation, host.memory_mib)
        self.processor_page = ProcessorPage(generation, host.cpus)
        self.name_page = NamePage()
        self.checkpoints_page = CheckpointsPage() if checkpoints is not None else None
        self.start_page = StartActionPage()
        self.stop_page = StopActionPage()
        self.tree = QTreeWidget()
        self.stack = QStackedWidget()
        self.problem = QLabel()
        self.buttons = QDialogButtonBox()
        self._build()
        self.set_config(config, state, checkpoints)
        self._select(self.boot_page)

    # --- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        self._build_tree()
        self._build_buttons()
        self.problem.setObjectName("problemLabel")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b3261e;")
        self.problem.setVisible(False)
        frame = QFrame()
        frame.setFrameShape(QFrame.Shape.StyledPanel)
        inner = QVBoxLayout(frame)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.stack)
        body = QHBoxLayout()
        body.addWidget(self.tree)
        body.addWidget(frame, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        for page in self._pages():
            page.changed.connect(self._on_edited)

    def _pages(self) -> tuple[SettingsPage, ...]:
        """Every page in tree order: three Hardware pages, then the Management ones."""
        checkpoints = (self.checkpoints_page,) if self.checkpoints_page is not None else ()
        return (
            self.boot_page,
            self.memory_page,
            self.processor_page,
            self.name_page,
            *checkpoints,
            self.start_page,
            self.stop_page,
        )

    def _build_tree(self) -> None:
        self.tree.setObjectName("settingsTree")
        self.tree.setHeaderHidden(True)
        self.tree.setFixedWidth(240)
        self.tree.setIndentation(14)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setItemDelegate(_SummaryDelegate(self.tree))
        groups = (("Hardware", self._pages()[:3]), ("Management", self._pages()[3:]))
        for group_name, pages in groups:
            group = QTreeWidgetItem(self.tree, [group_name])
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = QFont(group.font(0))
            font.setBold(True)
            group.setFont(0, font)
            for page in pages:
                item = QTreeWidgetItem(group, [page.title])
                item.setData(0, PAGE_ROLE, self.stack.addWidget(page))
                item.setData(0, SUMMARY_ROLE, "")
                self._items.append(item)
            group.setExpanded(True)
        self.tree.currentItemChanged.connect(self._on_current_item)
        self.tree.itemSelectionChanged.connect(self._keep_selection)

    def _build_buttons(self) -> None:
        self.ok_button = self._add_button("OK", "okButton", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self._add_button(
            "Cancel", "cancelButton", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.apply_button = self._add_button("Apply", "applyButton", QDialogButtonBox.ButtonRole.ApplyRole)
        self.ok_button.setDefault(True)
        self.ok_button.clicked.connect(self._on_ok)
        self.apply_button.clicked.connect(self._on_apply)
        self.cancel_button.clicked.connect(self.reject)

    def _add_button(self, text: str, name: str, role: QDialogButtonBox.ButtonRole) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAutoDefault(False)
        self.buttons.addButton(button, role)
        return button

    # --- public API ----------------------------------------------------------------------------

    def set_config(
        self, config: VmConfig, state: VmState, checkpoints: CheckpointSettings | None = None
    ) -> None:
        """Show ``config`` (e.g. after an apply) as the unchanged state of every page.

        Without ``checkpoints`` the Checkpoints page keeps what it shows (just applied, after an
        Apply) as the VM's policy.
        """
        self._config, self._state = config, state
        self.setWindowTitle(f"Settings for {config.name} on {self._host.hostname}")
        self.boot_page.load(config.boot_order, config.kernel_boot, state)
        self.memory_page.load(config.memory, state)
        self.processor_page.load(config.processors, state)
        self.name_page.load(config.name, config.notes, state)
        self.start_page.load(config.start_action, config.start_delay_s)
        self.stop_page.load(config.stop_action)
        self._load_checkpoints(checkpoints)
        self._baseline = self._shown()
        self._on_edited()

    def _load_checkpoints(self, checkpoints: CheckpointSettings | None) -> None:
        page = self.checkpoints_page
        if page is None:
            return
        if checkpoints is None and self._checkpoints is not None:
            checkpoints = dataclasses.replace(self._checkpoints, policy=page.policy())
        if checkpoints is None:
            return
        self._checkpoints = checkpoints
        page.load(checkpoints.policy, checkpoints.default_folder, location_lock_reason(checkpoints))

    def change(self) -> SettingsChange:
        """What the user changed: only the fields that differ from the loaded configuration."""
        shown, base = self._shown(), self._baseline
        return SettingsChange(
            **{
                field.name: getattr(shown, field.name)
                for field in dataclasses.fields(SettingsChange)
                if getattr(shown, field.name) != getattr(base, field.name)
            }
        )

    def problems(self) -> list[str]:
        """Why the change can't be applied (empty when it can)."""
        return change_problems(
            self._config, self._state, self.change(), self._host, self._other_names, self._checkpoints
        )

    # --- behaviour -----------------------------------------------------------------------------

    def _shown(self) -> SettingsChange:
        """Every field as the pages show it."""
        return SettingsChange(
            memory=self.memory_page.memory(),
            processors=self.processor_page.count(),
            boot_order=self.boot_page.order(),
            name=self.name_page.name.text(),
            notes=self.name_page.notes.toPlainText(),
            start_action=self.start_page.action(),
            start_delay_s=self.start_page.delay_s(),
            stop_action=self.stop_page.action(),
            checkpoint_policy=self.checkpoints_page.policy() if self.checkpoints_page is not None else None,
        )

    def _on_edited(self) -> None:
        change = self.change()
        problems = self.problems()
        self.problem.setText("\n".join(problems))
        self.problem.setVisible(bool(problems))
        self.ok_button.setEnabled(not problems)
        self.apply_button.setEnabled(not problems and not change.is_empty)
        self._update_summaries(change)

    def _update_summaries(self, change: SettingsChange) -> None:
        policy = self._checkpoints.policy if self._checkpoints is not None else None
        summaries = _summaries(change, self._config, policy)
        for item in self._items:
            item.setData(0, SUMMARY_ROLE, summaries[item.text(0)])

    def _select(self, page: QWidget) -> None:
        index = self.stack.indexOf(page)
        for item in self._items:
            if item.data(0, PAGE_ROLE) == index:
                self.tree.setCurrentItem(item)

    def _on_current_item(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        if item is not None and item.data(0, PAGE_ROLE) is not None:
            self.stack.setCurrentIndex(int(item.data(0, PAGE_ROLE)))

    def _keep_selection(self) -> None:
        """A click on a group heading clears the selection: highlight the shown page again."""
        page = self.stack.currentWidget()
        if page is not None and not self.tree.selectedItems():
            self._select(page)

    def _on_apply(self) -> None:
        change = self.change()
        if not change.is_empty and not self.problems():
            self.apply_requested.emit(change)

    def _on_ok(self) -> None:
        if self.problems():
            return
        change = self.change()
        if not change.is_empty:
            self.apply_requested.emit(change)
        self.accept()
