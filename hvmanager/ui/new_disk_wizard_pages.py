"""The New Virtual Hard Disk wizard's own pages: Specify Name and Location and Configure Disk
(Before You Begin, Choose Disk Format, Choose Disk Type and Summary are ``disk_wizard_pages``').

Pages only hold inputs; the wizard (``new_disk_wizard``) builds the ``NewVhd`` request from them,
checks it and shows each page's problem.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import limits
from hvmanager.backend.storage_layout import HostDisk
from hvmanager.backend.vhd_types import DiskType
from hvmanager.ui.disk_wizard_pages import browse_disk_file, maximum_size, size_edit
from hvmanager.ui.new_vm_wizard_base import (
    INDENT,
    FileDialogs,
    ProblemPage,
    add_browse_row,
    add_row,
    digits_edit,
    indented_form,
    radio_button,
    set_form_enabled,
    text_label,
    with_unit,
)

DEFAULT_NAME = "New Virtual Hard Disk"
DEFAULT_SIZE_GB = "127"
BLOCK_SIZES_HINT = "1 to 256 MB, a power of 2; empty: the default (32 MB)"
SECTOR_CHOICES = (("Default", None), ("512 bytes", 512), ("4096 bytes", 4096))


# --- 4. Specify Name and Location ------------------------------------------------------------


class NameLocationPage(ProblemPage):
    """The file's name (with the format's extension) and its folder."""

    def __init__(self, folder: str) -> None:
        super().__init__(
            "Specify Name and Location", "Specify the name and location of the virtual hard disk file."
        )
        self.name_edit = QLineEdit(DEFAULT_NAME + ".qcow2")
        self.name_edit.setObjectName("nameEdit")
        self.folder_edit = QLineEdit(folder)
        self.folder_edit.setObjectName("locationEdit")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("&Name:", self.name_edit)
        add_browse_row(form, "&Location:", self.folder_edit, "locationBrowseButton", self._browse)
        self.body.addLayout(form)
        self._extension = ".qcow2"
        for edit in (self.name_edit, self.folder_edit):
            edit.textChanged.connect(self.notify)

    def follow_extension(self, extension: str) -> None:
        """Give the name the extension of the chosen format (when it had the previous one)."""
        name = self.name_edit.text()
        if extension != self._extension and name.endswith(self._extension):
            self.name_edit.setText(name[: -len(self._extension)] + extension)
        self._extension = extension

    def path(self) -> str:
        """The file to create."""
        folder = self.folder_edit.text().strip()
        return f"{folder.rstrip('/')}/{self.name_edit.text()}" if folder else self.name_edit.text()

    def field_problem(self) -> str | None:
        """What is wrong with the name or folder as typed (the rest is the back end's check)."""
        name = self.name_edit.text()
        if not name.strip():
            return "Enter a name for the virtual hard disk file."
        if "/" in name or any(ord(ch) < 32 for ch in name):
            return "The name can't contain '/' or control characters."
        if not self.folder_edit.text().strip():
            return "Enter the folder of the virtual hard disk file."
        return None

    def _browse(self) -> None:
        folder = FileDialogs.choose_folder(self, "Select Folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)


# --- 5. Configure Disk -----------------------------------------------------------------------


class ConfigureDiskPage(ProblemPage):
    """Blank disk of a size, or a copy of a physical or virtual disk; the parent of a differencing
    disk; VHDX block and sector sizes.

    Signal ``host_disks_wanted``: the physical disk choice was picked and the list is still empty.
    """

    host_disks_wanted = Signal()

    def __init__(self) -> None:
        super().__init__("Configure Disk", "")
        self._host_disks_listed = False
        self.blank_radio = radio_button("&Create a new blank virtual hard disk", "blankRadio")
        self.physical_radio = radio_button(
            "Copy the contents of the specified &physical disk:", "physicalRadio"
        )
        self.virtual_radio = radio_button(
            "Copy the contents of the specified &virtual hard disk", "virtualRadio"
        )
        self.blank_radio.setChecked(True)
        self.size_edit = size_edit("sizeEdit", DEFAULT_SIZE_GB)
        self.size_note = QLabel()
        self.size_note.setObjectName("sizeLimitLabel")
        self.host_disks = QTreeWidget()
        self.host_disks.setObjectName("hostDiskList")
        self.host_disks.setHeaderLabels(["Physical Hard Disk", "Size", "Description"])
        self.host_disks.setColumnWidth(0, 170)
        self.host_disks.setRootIsDecorated(False)
        self.host_disks.setMaximumHeight(96)
        self.source_edit = QLineEdit()
        self.source_edit.setObjectName("sourceEdit")
        self.parent_edit = QLineEdit()
        self.parent_edit.setObjectName("parentEdit")
        self.parent_note = text_label("", "parentNoteLabel")
        self.copy_note = text_label("", "copyNoteLabel")
        self.copy_note.setContentsMargins(INDENT, 0, 0, 0)
        self.block_edit = digits_edit("blockSizeEdit", 0)
        self.block_edit.setMinimumWidth(70)
        self.block_edit.clear()  # empty: the default block size
        self.logical_combo = self._sector_combo("logicalSectorCombo")
        self.physical_combo = self._sector_combo("physicalSectorCombo")
        self._build()
        group = QButtonGroup(self)
        for radio in (self.blank_radio, self.physical_radio, self.virtual_radio):
            group.addButton(radio)
        group.buttonToggled.connect(self._choice_toggled)
        for edit in (self.size_edit, self.source_edit, self.parent_edit, self.block_edit):
            edit.textChanged.connect(self.notify)
        self.host_disks.itemSelectionChanged.connect(self.notify)
        self._choice_toggled()

    def _sector_combo(self, object_name: str) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(object_name)
        for text, value in SECTOR_CHOICES:
            combo.addItem(text, value)
        combo.currentIndexChanged.connect(self.notify)
        return combo

    def _build(self) -> None:
        self.contents_section = QWidget()
        self.contents_section.setObjectName("contentsSection")
        contents = QVBoxLayout(self.contents_section)
        contents.setContentsMargins(0, 0, 0, 0)
        contents.addWidget(self.blank_radio)
        self.blank_form = indented_form()
        add_row(self.blank_form, "&Size:", with_unit(self.size_edit, "GB", self.size_note), self.size_edit)
        contents.addLayout(self.blank_form)
        contents.addWidget(self.physical_radio)
        self.physical_form = indented_form()
        self.physical_form.addRow(self.host_disks)
        contents.addLayout(self.physical_form)
        contents.addWidget(self.virtual_radio)
        self.virtual_form = indented_form()
        browse_source = partial(browse_disk_file, self, self.source_edit)
        add_browse_row(self.virtual_form, "Pat&h:", self.source_edit, "sourceBrowseButton", browse_source)
        contents.addLayout(self.virtual_form)
        contents.addWidget(self.copy_note)
        self.parent_section = QWidget()
        self.parent_section.setObjectName("parentSection")
        parent = QFormLayout(self.parent_section)
        parent.setContentsMargins(0, 0, 0, 0)
        parent.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        browse_parent = partial(browse_disk_file, self, self.parent_edit)
        add_browse_row(parent, "&Parent:", self.parent_edit, "parentBrowseButton", browse_parent)
        parent.addRow(self.parent_note)
        self.vhdx_box = QGroupBox("Advanced (VHDX)")
        self.vhdx_box.setObjectName("vhdxAdvancedBox")
        vhdx = QFormLayout(self.vhdx_box)
        block_hint = QLabel(f"({BLOCK_SIZES_HINT})")
        add_row(vhdx, "&Block size:", with_unit(self.block_edit, "MB", block_hint), self.block_edit)
        vhdx.addRow("Lo&gical sector size:", self.logical_combo)
        vhdx.addRow("Ph&ysical sector size:", self.physical_combo)
        self.body.addWidget(self.contents_section)
        self.body.addWidget(self.parent_section)
        self.body.addSpacing(6)
        self.body.addWidget(self.vhdx_box)

    # --- what the page shows -------------------------------------------------------------------

    def set_kind(self, qemu_format: str, disk_type: DiskType) -> None:
        """Show the inputs of the chosen format and type."""
        differencing = disk_type is DiskType.DIFFERENCING
        self.contents_section.setVisible(not differencing)
        self.parent_section.setVisible(differencing)
        self.vhdx_box.setVisible(qemu_format == "vhdx")
        self.size_note.setText(f"(Maximum: {limits.human_size(maximum_size(qemu_format))})")
        subtitle = (
            "Specify the parent of the differencing virtual hard disk."
            if differencing
            else "You can create a blank virtual hard disk or copy the contents of an existing disk."
        )
        self.setSubTitle(subtitle)

    def set_notes(self, parent_note: str, copy_note: str) -> None:
        """What the parent's format means for the differencing disk; the size of a copy."""
        for label, text in ((self.parent_note, parent_note), (self.copy_note, copy_note)):
            if label.text() != text:
                label.setText(text)
                label.setVisible(bool(text))

    def set_host_disks(self, disks: list[HostDisk] | None, problem: str = "") -> None:
        """List the host's block devices (None with ``problem`` when they can't be listed)."""
        self.host_disks.clear()
        if disks is None:
            item = QTreeWidgetItem([problem or "The physical disks could not be listed.", "", ""])
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.host_disks.addTopLevelItem(item)
            return
        for disk in disks:
            description = disk.description + (f" ({disk.problem})" if disk.problem else "")
            item = QTreeWidgetItem([disk.path, limits.human_size(disk.size_bytes), description])
            item.setData(0, Qt.ItemDataRole.UserRole, disk.path)
            item.setToolTip(2, description)
            if disk.problem:  # in use on the host: a copy would not be consistent
                item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.host_disks.addTopLevelItem(item)
        self.host_disks.resizeColumnToContents(0)

    # --- what the user chose -------------------------------------------------------------------

    def size_text(self) -> str:
        """The size field as typed."""
        return self.size_edit.text()

    def source(self) -> str | None:
        """The physical or virtual disk to copy (None: a blank disk; "" when not chosen yet)."""
        if self.virtual_radio.isChecked():
            return self.source_edit.text().strip()
        if self.physical_radio.isChecked():
            items = self.host_disks.selectedItems()
            return str(items[0].data(0, Qt.ItemDataRole.UserRole) or "") if items else ""
        return None

    def parent_path(self) -> str:
        """The parent of a differencing disk, as typed."""
        return self.parent_edit.text().strip()

    def block_size(self) -> int | None:
        """The VHDX block size in bytes (None: the default)."""
        text = self.block_edit.text().strip()
        return int(text) * limits.MIB if text else None

    def sector_sizes(self) -> tuple[int | None, int | None]:
        """The VHDX logical and physical sector sizes (None: the default)."""
        return self.logical_combo.currentData(), self.physical_combo.currentData()

    def _choice_toggled(self, *_args: object) -> None:
        if self.physical_radio.isChecked() and not self._host_disks_listed:
            self._host_disks_listed = True
            self.host_disks_wanted.emit()
        set_form_enabled(self.blank_form, self.blank_radio.isChecked())
        set_form_enabled(self.physical_form, self.physical_radio.isChecked())
        set_form_enabled(self.virtual_form, self.virtual_radio.isChecked())
        self.changed.emit()
