"""Settings ▸ Hardware ▸ Hard Drive: where the drive is attached (Controller, Location), its media
(a virtual hard disk file with New, Edit, Inspect and Browse..., or a physical hard disk of the
host), and Remove. See ``settings_drive_pages`` for what it shares with the DVD Drive page.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QButtonGroup, QComboBox, QGroupBox, QRadioButton, QVBoxLayout

from hvmanager.backend import limits
from hvmanager.backend.storage_layout import Drive, DriveKind, HostDisk
from hvmanager.ui.disk_wizard_pages import DISK_FILTERS
from hvmanager.ui.settings_drive_pages import DrivePage, button_row
from hvmanager.ui.settings_pages import indented, wrapped_label
from hvmanager.ui.settings_storage_pages import StorageRules, page_button

PHYSICAL_NOTE = "Physical hard disks that are mounted or in use can't be attached."


class HardDrivePage(DrivePage):
    """Hard Drive: a virtual hard disk file (New, Edit, Inspect, Browse...) or a physical disk.

    Signals:
        new_disk_requested(): New was clicked (the caller may then call ``set_path``).
        edit_disk_requested(str), inspect_disk_requested(str): Edit or Inspect, with the path shown.
    """

    new_disk_requested = Signal()
    edit_disk_requested = Signal(str)
    inspect_disk_requested = Signal(str)

    def __init__(
        self, drive: Drive, rules: StorageRules, attached: bool, host_disks: tuple[HostDisk, ...]
    ) -> None:
        super().__init__(
            drive,
            rules,
            attached,
            (
                "You can change how this virtual hard disk is attached to the virtual machine. If an "
                "operating system is installed on this disk, changing the attachment might prevent the "
                "virtual machine from starting.",
                "To remove the virtual hard disk, click Remove. This disconnects the disk but does not "
                "delete the associated file.",
            ),
            "diskPathEdit",
        )
        self.setObjectName("hardDrivePage")
        self.virtual = QRadioButton("Virtual hard disk:")
        self.virtual.setObjectName("virtualDiskRadio")
        self.physical = QRadioButton("Physical hard disk:")
        self.physical.setObjectName("physicalDiskRadio")
        self.media = QButtonGroup(self)
        self.media.addButton(self.virtual)
        self.media.addButton(self.physical)
        self.new_button = page_button("New", "newDiskButton")
        self.edit_button = page_button("Edit", "editDiskButton")
        self.inspect_button = page_button("Inspect", "inspectDiskButton")
        self.browse_button = page_button("Browse...", "diskBrowseButton")
        self.disks = QComboBox()
        self.disks.setObjectName("physicalDiskCombo")
        self.unusable = wrapped_label()
        self.unusable.setObjectName("unusableDisksLabel")
        self._fill_disks(host_disks, drive.path if drive.passthrough else None)
        (self.physical if drive.passthrough else self.virtual).setChecked(True)
        self._build_media()
        self.add_remove_part()
        self._connect()

    def _build_media(self) -> None:
        box = QGroupBox("Media")
        column = QVBoxLayout(box)
        column.addWidget(
            wrapped_label(
                "You can compact, convert, expand, merge, reconnect or shrink a virtual hard disk by "
                "editing the associated file. Specify the full path to the file."
            )
        )
        column.addWidget(self.virtual)
        buttons = button_row(self.new_button, self.edit_button, self.inspect_button, self.browse_button)
        column.addWidget(indented(self.path, buttons))
        column.addWidget(self.physical)
        column.addWidget(indented(self.disks, wrapped_label(PHYSICAL_NOTE), self.unusable))
        self.add(box)

    def _connect(self) -> None:
        self.media.buttonToggled.connect(self._on_media_toggled)
        self.path.textChanged.connect(self._on_path_edited)
        self.disks.activated.connect(lambda _row: self.changed.emit())
        self.new_button.clicked.connect(self.new_disk_requested)
        self.edit_button.clicked.connect(lambda: self.edit_disk_requested.emit(self.path.text().strip()))
        self.inspect_button.clicked.connect(
            lambda: self.inspect_disk_requested.emit(self.path.text().strip())
        )
        self.browse_button.clicked.connect(
            lambda: self._browse("Open Virtual Hard Disk", "diskBrowseDialog", DISK_FILTERS, self.path)
        )

    def _fill_disks(self, host_disks: tuple[HostDisk, ...], own: str | None) -> None:
        """One entry per host disk; the unusable ones greyed with their problem (the drive's own
        disk stays usable: its problem is this very VM)."""
        entries = list(host_disks)
        if own is not None and all(disk.path != own for disk in entries):
            entries.insert(0, HostDisk(own, 0, "attached to this virtual machine"))
        model = self.disks.model()
        assert isinstance(model, QStandardItemModel)
        lines = []
        for disk in entries:
            size = f"{limits.human_size(disk.size_bytes)}, " if disk.size_bytes else ""
            self.disks.addItem(f"{disk.path} ({size}{disk.description})", disk.path)
            if disk.problem and disk.path != own:
                item = model.item(self.disks.count() - 1)
                item.setEnabled(False)
                item.setToolTip(disk.problem)
                lines.append(f"{disk.path}: {disk.problem}")
        usable = [row for row in range(self.disks.count()) if model.item(row).isEnabled()]
        self._has_usable_disk = bool(usable)
        start = self.disks.findData(own) if own is not None else (usable[0] if usable else -1)
        self.disks.setCurrentIndex(start)
        self.unusable.setText("Not available: " + "; ".join(lines) if lines else "")
        self.unusable.setVisible(bool(lines))

    def update_media(self) -> None:
        reason = self.slot_lock()
        editable = reason is None
        virtual = self.virtual.isChecked()
        self.virtual.setEnabled(editable)
        self.physical.setEnabled(editable and (self._has_usable_disk or self.physical.isChecked()))
        self.path.setReadOnly(not editable)
        self.path.setEnabled(virtual)
        self.new_button.setEnabled(editable and virtual)
        self.browse_button.setEnabled(editable and virtual)
        has_path = virtual and bool(self.path.text().strip())
        self.edit_button.setEnabled(has_path)
        self.inspect_button.setEnabled(has_path)
        self.disks.setEnabled(editable and self.physical.isChecked())
        self.note.set_text(reason or "")

    def set_path(self, path: str) -> None:
        """Use the virtual hard disk at ``path`` (e.g. one the New Virtual Hard Disk wizard made)."""
        self.virtual.setChecked(True)
        self.path.setText(path)

    def drive(self) -> Drive:
        if self.physical.isChecked():
            path = self.disks.currentData() if self.disks.currentIndex() >= 0 else None
            return Drive(DriveKind.HARD_DISK, *self.slot, path, None, True)
        return super().drive()

    def _on_media_toggled(self, _button: QRadioButton, checked: bool) -> None:
        if checked:
            self.update_media()
            self.changed.emit()

    def _on_path_edited(self) -> None:
        self.update_media()
        self.changed.emit()
