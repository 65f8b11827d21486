"""Settings ▸ Hardware drive pages: what Hard Drive and DVD Drive share, and DVD Drive (the Hard Drive
page is in ``settings_hard_drive_page``), under their controller in the tree.

A page shows one drive: its Controller and Location (only free locations are offered, plus its
own), its media, and Remove. ``drive()`` hands back the drive as shown; the storage section puts
it into the layout the dialog checks and applies. New, Edit and Inspect don't open wizards: they
emit signals for the dialog's caller. Browse... opens Qt's own file dialog (``browse_dialog``,
non-modal, so tests can drive it like a user).

A typed path's format is read from the file's magic bytes (``qemuimg.detect_format``: a small
read, and only for an existing regular file, never a device or a pipe that could block).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import paths, qemuimg
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout, controllers, slot_label
from hvmanager.ui.settings_pages import SettingsPage, indented, wrapped_label
from hvmanager.ui.settings_storage_pages import (
    StorageRules,
    controller_name,
    free_locations,
    page_button,
    right_aligned,
)

Slot = tuple[Bus, int, int]

ISO_FILTERS = "Image files (*.iso);;All files (*)"


def file_format(path: str, loaded: Drive | None) -> str | None:
    """The qemu-img format of the file at ``path``: the loaded drive's own when the path is
    unchanged, else read from the file (None for a missing, relative or non-regular path)."""
    if loaded is not None and loaded.path == path and not loaded.passthrough:
        return loaded.format
    if not os.path.isabs(path) or not os.path.isfile(path):
        return None
    try:
        return qemuimg.detect_format(path)
    except OSError:
        return None


def file_problem(drive: Drive, loaded: Drive | None, qemu_user: str | None = None) -> str | None:
    """Why the file a drive names (a virtual hard disk, an ISO image) can't be used, or None. A
    drive whose media is as loaded is not blamed (it may be a VM made elsewhere)."""
    if drive.passthrough or drive.path is None or (loaded is not None and loaded.path == drive.path):
        return None
    where = slot_label(*drive.slot)
    if drive.kind is DriveKind.DVD and not drive.path:
        return f"The DVD drive at {where} has no image file: enter the path of one, or choose None."
    if not drive.path:
        return None  # a hard drive without a disk: the layout rules say so
    problem = paths.existing_file_problem(drive.path, qemu_user)
    what = "Virtual hard disk" if drive.kind is DriveKind.HARD_DISK else "Image file"
    return f"{what} at {where}: {problem}" if problem else None


def button_row(*widgets: QWidget, stretch_first: bool = False) -> QWidget:
    """Widgets in a row, pushed to the right (or the first one stretched)."""
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    if not stretch_first:
        row.addStretch(1)
    for index, widget in enumerate(widgets):
        row.addWidget(widget, 1 if stretch_first and index == 0 else 0)
    return holder


class DrivePage(SettingsPage):
    """What the Hard Drive and DVD Drive pages share: Controller, Location and Remove.

    ``attached`` says the drive was in the layout the window loaded (not added since): while the
    VM runs, an attached drive stays where it is.

    Signals:
        moved(): the user chose another controller or location.
        remove_requested(): Remove was clicked.
    """

    moved = Signal()
    remove_requested = Signal()

    def __init__(
        self,
        drive: Drive,
        rules: StorageRules,
        attached: bool,
        texts: tuple[str, str],
        path_name: str,
    ) -> None:
        """``texts``: the page's introduction and the sentence above Remove; ``path_name``: the
        object name of the file path field."""
        intro, remove_text = texts
        super().__init__("Hard Drive" if drive.kind is DriveKind.HARD_DISK else "DVD Drive", intro)
        self.kind, self.rules = drive.kind, rules
        self.path = QLineEdit("" if drive.passthrough else drive.path or "")
        self.path.setObjectName(path_name)
        self.loaded = drive if attached else None
        self.slot: Slot = drive.slot
        self.controller = QComboBox()
        self.controller.setObjectName("controllerCombo")
        self.location = QComboBox()
        self.location.setObjectName("locationCombo")
        self.remove_button = page_button("Remove", "removeDriveButton")
        self._remove_text = remove_text
        self._layout_now = StorageLayout(rules.generation, 0)
        self.browse_dialog: QFileDialog | None = None
        self.add(self._slot_row())
        self.controller.activated.connect(self._on_controller)
        self.location.activated.connect(self._on_location)
        self.remove_button.clicked.connect(self.remove_requested)

    def _slot_row(self) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Controller:"))
        row.addWidget(self.controller, 1)
        row.addSpacing(12)
        row.addWidget(QLabel("Location:"))
        row.addWidget(self.location)
        self.location.setMinimumWidth(70)
        return holder

    def add_remove_part(self) -> None:
        """The sentence and the Remove button at the bottom; then the note."""
        self._layout.addSpacing(6)
        self.add(wrapped_label(self._remove_text))
        self.add(right_aligned(self.remove_button))
        self.finish()

    # --- controller and location ---------------------------------------------------------------

    def slot_lock(self) -> str | None:
        """Why this drive can't move now, or None."""
        return self.rules.slot_locked(self.slot[0], self.loaded is not None)

    def place(self, layout: StorageLayout) -> None:
        """Offer the controllers and locations that ``layout`` leaves free for this drive."""
        self._layout_now = layout
        reason = self.slot_lock()
        controllers = [self.slot[:2]] if reason else self._controllers(layout)
        blocked = self.controller.blockSignals(True)
        self.controller.clear()
        for bus, index in controllers:
            self.controller.addItem(controller_name(bus, index), (bus, index))
        self.controller.setCurrentIndex(controllers.index(self.slot[:2]))
        self.controller.blockSignals(blocked)
        self._fill_locations()
        for combo in (self.controller, self.location):
            combo.setEnabled(reason is None)
            combo.setToolTip(reason or "")
        remove_reason = self.rules.bus_locked(self.slot[0]) or self.rules.kind_locked(self.kind)
        self.remove_button.setEnabled(remove_reason is None)
        self.remove_button.setToolTip(remove_reason or "")
        self.update_media()

    def _controllers(self, layout: StorageLayout) -> list[tuple[Bus, int]]:
        """The drive's own controller and every other one it may go to with a free location, in
        tree order."""
        found = [self.slot[:2]]
        for bus in self.rules.buses():
            if self.kind not in self.rules.kinds(bus):
                continue
            for index in controllers(layout, bus):
                if (bus, index) != self.slot[:2] and free_locations(layout, bus, index):
                    found.append((bus, index))
        return sorted(found, key=lambda place: (place[0] is Bus.SCSI, place[1]))

    def _locations(self) -> list[int]:
        bus, index, own = self.slot
        if self.slot_lock():
            return [own]
        return sorted({own, *free_locations(self._layout_now, bus, index)})

    def _fill_locations(self) -> None:
        blocked = self.location.blockSignals(True)
        self.location.clear()
        for location in self._locations():
            self.location.addItem(str(location), location)
        self.location.setCurrentIndex(self.location.findData(self.slot[2]))
        self.location.blockSignals(blocked)

    def _on_controller(self, row: int) -> None:
        bus, index = self.controller.itemData(row)
        if (bus, index) == self.slot[:2]:
            return
        free = free_locations(self._layout_now, bus, index)
        self.slot = (bus, index, free[0])
        self._fill_locations()
        self.moved.emit()

    def _on_location(self, row: int) -> None:
        location = self.location.itemData(row)
        if location != self.slot[2]:
            self.slot = (self.slot[0], self.slot[1], location)
            self.moved.emit()

    # --- media (subclasses) --------------------------------------------------------------------

    def update_media(self) -> None:
        """Enable the media widgets for the current rules."""

    def drive(self) -> Drive:
        """The drive as shown: here, the file named in the path field (the pages add their other
        choices: no media, a physical disk)."""
        bus, controller, location = self.slot
        text = self.path.text().strip()
        return Drive(self.kind, bus, controller, location, text, file_format(text, self.loaded))

    def file_problem(self, qemu_user: str | None = None) -> str | None:
        """Why the file this drive names can't be used (see ``file_problem``), or None."""
        return file_problem(self.drive(), self.loaded, qemu_user)

    def summary(self) -> str:
        """The tree's second line: the file's name, the physical disk, or "None"."""
        drive = self.drive()
        if drive.path is None:
            return "None"
        if drive.passthrough:
            return f"Physical disk {drive.path}"
        return os.path.basename(drive.path)

    def _browse(self, title: str, name: str, filters: str, edit: QLineEdit) -> None:
        """Qt's own file dialog (the same everywhere, and drivable by tests), filling ``edit``."""
        start = os.path.dirname(edit.text().strip())
        dialog = QFileDialog(self, title, start if os.path.isdir(start) else "", filters)
        dialog.setObjectName(name)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(edit.setText)
        dialog.open()
        self.browse_dialog = dialog


class DvdDrivePage(DrivePage):
    """DVD Drive: no media, or an image file (an ISO); its media may change while the VM runs."""

    def __init__(self, drive: Drive, rules: StorageRules, attached: bool) -> None:
        super().__init__(
            drive,
            rules,
            attached,
            (
                "Select the controller and location on the controller to attach the CD/DVD drive.",
                "To remove the virtual CD/DVD drive from this virtual machine, click Remove.",
            ),
            "isoPathEdit",
        )
        self.setObjectName("dvdDrivePage")
        self.none = QRadioButton("None")
        self.none.setObjectName("noMediaRadio")
        self.image = QRadioButton("Image file:")
        self.image.setObjectName("imageFileRadio")
        self.media = QButtonGroup(self)
        self.media.addButton(self.none)
        self.media.addButton(self.image)
        self.browse_button = page_button("Browse...", "isoBrowseButton")
        (self.none if drive.path is None else self.image).setChecked(True)
        box = QGroupBox("Media")
        column = QVBoxLayout(box)
        column.addWidget(wrapped_label("Specify the media to use with your virtual CD/DVD drive."))
        column.addWidget(self.none)
        column.addWidget(self.image)
        column.addWidget(indented(self.path, button_row(self.browse_button)))
        self.add(box)
        self.add_remove_part()
        self.media.buttonToggled.connect(self._on_media_toggled)
        self.path.textChanged.connect(self.changed)
        self.browse_button.clicked.connect(
            lambda: self._browse("Open Image File", "isoBrowseDialog", ISO_FILTERS, self.path)
        )

    def update_media(self) -> None:
        reason = self.rules.locked()
        editable = reason is None
        image = self.image.isChecked()
        for radio in (self.none, self.image):
            radio.setEnabled(editable)
        self.path.setEnabled(image)
        self.path.setReadOnly(not editable)
        self.browse_button.setEnabled(editable and image)
        if reason is None and self.rules.live:
            reason = (
                f"While the virtual machine is {self.rules.state.value.lower()}, only the media of this DVD "
                "drive can be changed."
            )
        self.note.set_text(reason or "")

    def drive(self) -> Drive:
        if self.none.isChecked():
            return Drive(DriveKind.DVD, *self.slot, None)
        return super().drive()

    def _on_media_toggled(self, _button: QRadioButton, checked: bool) -> None:
        if checked:
            self.update_media()
            self.changed.emit()

    def summary(self) -> str:
        return "None" if self.none.isChecked() else super().summary()
