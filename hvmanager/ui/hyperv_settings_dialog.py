"""Hyper-V Settings: default folders, acceleration, and the refresh interval of live figures."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.settings import STATS_INTERVAL_RANGE_MS, AppSettings

ACCEL_CHOICES = [
    ("auto", "Automatic: KVM when the host can use it"),
    ("kvm", "KVM (hardware acceleration)"),
    ("tcg", "Software emulation (TCG)"),
]


class _FolderPage(QWidget):
    """A page with one folder and a Browse button."""

    def __init__(self, title: str, explanation: str, object_name: str) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        heading = QLabel(f"<b>{title}</b>")
        layout.addWidget(heading)
        text = QLabel(explanation)
        text.setWordWrap(True)
        layout.addWidget(text)
        row = QHBoxLayout()
        self.edit = QLineEdit()
        self.edit.setObjectName(object_name)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row.addWidget(self.edit)
        row.addWidget(browse)
        layout.addLayout(row)
        layout.addStretch(1)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Select Folder", self.edit.text())
        if folder:
            self.edit.setText(folder)


class HyperVSettingsDialog(QDialog):
    """The host settings dialog; emits ``settings_applied`` with the new settings on OK/Apply."""

    settings_applied = Signal(object)

    def __init__(self, settings: AppSettings, accel_note: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("hypervSettingsDialog")
        self.setWindowTitle("Hyper-V Settings")
        self.resize(720, 440)
        self._settings = settings
        self.pages = QListWidget()
        self.pages.setObjectName("settingsPages")
        self.pages.setFixedWidth(200)
        self.stack = QStackedWidget()
        self.disks_page = _FolderPage(
            "Virtual Hard Disks",
            "The default folder for new virtual hard disk files. Left as it is, a new VM's disk goes "
            "to the VM's own 'Virtual Hard Disks' folder; set another one (a faster disk, say) "
            "and the New Virtual Machine wizard puts new disks there.",
            "diskFolderEdit",
        )
        self.vms_page = _FolderPage(
            "Virtual Machines",
            "The default folder for new virtual machines. Each VM gets a "
            "sub-folder with 'Virtual Machines', 'Virtual Hard Disks' and 'Snapshots'.",
            "vmFolderEdit",
        )
        self.accel_combo = QComboBox()
        self.accel_combo.setObjectName("accelCombo")
        for value, label in ACCEL_CHOICES:
            self.accel_combo.addItem(label, value)
        self.interval_spin = QSpinBox()
        self.interval_spin.setObjectName("intervalSpin")
        self.interval_spin.setRange(*STATS_INTERVAL_RANGE_MS)
        self.interval_spin.setSingleStep(250)
        self.interval_spin.setSuffix(" ms")
        self._add_page("Virtual Hard Disks", self.disks_page)
        self._add_page("Virtual Machines", self.vms_page)
        self._add_page("Acceleration", self._accel_page(accel_note))
        self._add_page("Live Figures", self._interval_page())
        self.problem = QLabel()
        self.problem.setObjectName("problemLabel")
        self.problem.setStyleSheet("color: #b3261e;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.Apply
        )
        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self._apply)
        self._layout()
        self._load(settings)
        self.pages.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.pages.setCurrentRow(0)
        for edit in (self.disks_page.edit, self.vms_page.edit):
            edit.textChanged.connect(self._check)
        self.interval_spin.valueChanged.connect(self._check)

    def _add_page(self, title: str, page: QWidget) -> None:
        self.pages.addItem(title)
        self.stack.addWidget(page)

    def _accel_page(self, note: str) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("<b>Acceleration</b>"))
        form = QFormLayout()
        form.addRow("Run virtual machines with:", self.accel_combo)
        layout.addLayout(form)
        text = QLabel(
            "Applies to VMs when they start. The HVMANAGER_ACCEL environment variable "
            f"overrides this setting.<br><br>Now: {note}"
        )
        text.setWordWrap(True)
        layout.addWidget(text)
        layout.addStretch(1)
        return page

    def _interval_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.addWidget(QLabel("<b>Live Figures</b>"))
        form = QFormLayout()
        form.addRow("Refresh CPU, memory and uptime every:", self.interval_spin)
        layout.addLayout(form)
        layout.addStretch(1)
        return page

    def _layout(self) -> None:
        body = QHBoxLayout()
        body.addWidget(self.pages)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)

    def _load(self, settings: AppSettings) -> None:
        self.disks_page.edit.setText(settings.disk_folder)
        self.vms_page.edit.setText(settings.vm_folder)
        self.accel_combo.setCurrentIndex(max(0, self.accel_combo.findData(settings.accel)))
        self.interval_spin.setValue(settings.stats_interval_ms)

    def edited(self) -> AppSettings:
        """The settings as edited."""
        return dataclasses.replace(
            self._settings,
            disk_folder=self.disks_page.edit.text().strip(),
            vm_folder=self.vms_page.edit.text().strip(),
            accel=str(self.accel_combo.currentData()),
            stats_interval_ms=self.interval_spin.value(),
        )

    def _check(self) -> bool:
        problems = self.edited().problems()
        self.problem.setText(problems[0] if problems else "")
        for which in (QDialogButtonBox.StandardButton.Ok, QDialogButtonBox.StandardButton.Apply):
            self.buttons.button(which).setEnabled(not problems)
        return not problems

    def _apply(self) -> None:
        if self._check():
            self._settings = self.edited()
            self.settings_applied.emit(self._settings)

    def _ok(self) -> None:
        if self._check():
            self._apply()
            self.accept()
