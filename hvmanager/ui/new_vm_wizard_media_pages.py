"""The New Virtual Machine wizard's pages about what the VM starts from, and its summary (6 to 8).

Connect Virtual Hard Disk, Installation Options and the closing Summary. The shared page base and
helpers are in ``new_vm_wizard_base``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QTextBlockFormat, QTextCursor
from PySide6.QtWidgets import QButtonGroup, QComboBox, QLabel, QLineEdit, QTextEdit

from hvmanager.backend import limits, paths, vmspec
from hvmanager.backend.models import (
    DiskChoice,
    ExistingDisk,
    InstallChoice,
    IsoInstall,
    KernelBoot,
    NetworkInstall,
    NewDisk,
    VmSpec,
)
from hvmanager.backend.vmspec import HostContext
from hvmanager.ui.new_vm_wizard_base import (
    FileDialogs,
    SpecSource,
    WizardPage,
    add_browse_row,
    add_row,
    digits_edit,
    indented_form,
    int_value,
    radio_button,
    set_form_enabled,
    text_label,
    with_unit,
)

DEFAULT_DISK_GIB = 127
DEFAULT_CMDLINE = "console=tty0 console=ttyS0"
# User-facing names (keys of limits.DISK_FORMATS) of the formats a VM can run from.
WIZARD_DISK_FORMATS = tuple(
    label for label, (fmt, _ext, _max) in limits.DISK_FORMATS.items() if fmt in ("qcow2", "vpc")
)


# --- 6. Connect Virtual Hard Disk ------------------------------------------------------------


def disk_size_limit(qemu_format: str, generation: int) -> int:
    """The largest new boot disk of this format for this generation, in bytes (as limits has)."""
    maximum = next((m for f, _e, m in limits.DISK_FORMATS.values() if f == qemu_format), 0)
    if generation == 1:
        default = limits.GEN1_BOOT_DISK_MAX_DEFAULT
        maximum = min(maximum, limits.GEN1_BOOT_DISK_MAX.get(qemu_format, default))
    return maximum


class DiskPage(WizardPage):
    """A new disk (name, folder, size, format), an existing disk, or none for now."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext, disk_folder: str | None = None) -> None:
        """``disk_folder``: the host's folder for new disks (Hyper-V Settings), when one was set;
        otherwise a new disk goes to the VM's own "Virtual Hard Disks" folder."""
        self._disk_folder = disk_folder
        super().__init__(
            "Connect Virtual Hard Disk",
            "A virtual machine requires storage so that you can install an operating system.",
            spec_source,
            ctx,
            vmspec.disk_problem,
        )
        self._vm_name = ""
        self._auto_name = ""
        self._auto_folder = ""
        self._generation = 1
        self.new_radio = radio_button("&Create a virtual hard disk", "newDiskRadio")
        self.existing_radio = radio_button("&Use an existing virtual hard disk", "existingDiskRadio")
        self.later_radio = radio_button("&Attach a virtual hard disk later", "laterDiskRadio")
        self.new_radio.setChecked(True)
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("diskNameEdit")
        self.location_edit = QLineEdit()
        self.location_edit.setObjectName("diskLocationEdit")
        self.size_edit = digits_edit("diskSizeEdit", DEFAULT_DISK_GIB)
        self.size_note = QLabel()
        self.size_note.setObjectName("diskSizeLimitLabel")
        self.format_combo = QComboBox()
        self.format_combo.setObjectName("diskFormatCombo")
        for label in WIZARD_DISK_FORMATS:
            shown = f"{label} (recommended)" if label == "QCOW2" else label
            self.format_combo.addItem(shown, limits.DISK_FORMATS[label][0])
        self._format = self.disk_format()
        self.existing_edit = QLineEdit()
        self.existing_edit.setObjectName("existingDiskEdit")
        self._build()
        group = QButtonGroup(self)
        for radio in (self.new_radio, self.existing_radio, self.later_radio):
            group.addButton(radio)
        group.buttonToggled.connect(self._choice_toggled)
        for edit in (self.name_edit, self.location_edit, self.size_edit, self.existing_edit):
            edit.textChanged.connect(self.notify)
        self.format_combo.currentIndexChanged.connect(self._format_changed)
        self._choice_toggled()
        self._update_size_note()

    def _build(self) -> None:
        self.body.addWidget(
            text_label(
                "You can specify the storage now or configure it later by modifying the virtual "
                "machine's properties."
            )
        )
        self.body.addWidget(self.new_radio)
        self.new_form = indented_form()
        self.new_form.addRow("&Name:", self.name_edit)
        add_browse_row(
            self.new_form,
            "&Location:",
            self.location_edit,
            "diskLocationBrowseButton",
            self._browse_folder,
        )
        add_row(self.new_form, "&Size:", with_unit(self.size_edit, "GB", self.size_note), self.size_edit)
        self.new_form.addRow("&Format:", self.format_combo)
        self.body.addLayout(self.new_form)
        self.body.addWidget(self.existing_radio)
        self.existing_form = indented_form()
        add_browse_row(
            self.existing_form,
            "Pat&h:",
            self.existing_edit,
            "existingDiskBrowseButton",
            self._browse_file,
        )
        self.body.addLayout(self.existing_form)
        self.body.addWidget(self.later_radio)

    def disk_format(self) -> str:
        """The qemu-img format chosen for a new disk."""
        return str(self.format_combo.currentData())

    def disk(self) -> DiskChoice:
        """What the VM gets as its first hard disk."""
        if self.new_radio.isChecked():
            return NewDisk(
                int_value(self.size_edit),
                self.disk_format(),
                self.name_edit.text(),
                self.location_edit.text(),
            )
        if self.existing_radio.isChecked():
            return ExistingDisk(self.existing_edit.text())
        return None

    def follow_vm(self, name: str, location: str) -> None:
        """Keep the default name and folder in step with the VM until the user changes them."""
        self._vm_name = name
        folder = self._disk_folder or str(paths.vm_folders(location, name).disks)
        if self.location_edit.text() == self._auto_folder:
            self.location_edit.setText(folder)
        self._auto_folder = folder
        self._follow_name()

    def _follow_name(self) -> None:
        auto_name = self._vm_name + limits.extension_for(self.disk_format())
        if self.name_edit.text() == self._auto_name:
            self.name_edit.setText(auto_name)
        self._auto_name = auto_name

    def set_generation(self, generation: int) -> None:
        """The Generation 1 boot disk limit applies to the new disk."""
        if generation == self._generation:
            return
        self._generation = generation
        self._update_size_note()

    def _update_size_note(self) -> None:
        maximum = disk_size_limit(self.disk_format(), self._generation)
        self.size_note.setText(f"(Maximum: {limits.human_size(maximum)})")

    def _format_changed(self) -> None:
        old_ext = limits.extension_for(self._format)
        self._format = self.disk_format()
        new_ext = limits.extension_for(self._format)
        name = self.name_edit.text()
        if name != self._auto_name and name.endswith(old_ext):
            self.name_edit.setText(name[: -len(old_ext)] + new_ext)
        self._follow_name()
        self._update_size_note()
        self.changed.emit()

    def _choice_toggled(self, *_args: object) -> None:
        set_form_enabled(self.new_form, self.new_radio.isChecked())
        set_form_enabled(self.existing_form, self.existing_radio.isChecked())
        self.changed.emit()

    def _browse_folder(self) -> None:
        folder = FileDialogs.choose_folder(self, "Select Folder", self.location_edit.text())
        if folder:
            self.location_edit.setText(folder)

    def _browse_file(self) -> None:
        exts = " ".join(f"*{ext}" for _fmt, ext, _max in limits.DISK_FORMATS.values())
        filters = f"Virtual hard disks ({exts});;All files (*)"
        path = FileDialogs.choose_file(self, "Open", self.existing_edit.text(), filters)
        if path:
            self.existing_edit.setText(path)


# --- 7. Installation Options -----------------------------------------------------------------


class InstallPage(WizardPage):
    """Install later, from an ISO image, from the network, or boot a Linux kernel directly."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
        super().__init__(
            "Installation Options",
            "You can install an operating system now if you have access to the setup media, or "
            "you can install it later.",
            spec_source,
            ctx,
            vmspec.install_problem,
        )
        self.later_radio = radio_button("Install an operating system &later", "installLaterRadio")
        self.later_radio.setChecked(True)
        self.iso_radio = radio_button("Install an operating system from a bootable &image file", "isoRadio")
        self.network_radio = radio_button(
            "Install an operating system from a &network-based installation server",
            "networkInstallRadio",
        )
        self.kernel_radio = radio_button("Boot a Linux &kernel directly", "kernelRadio")
        self.iso_edit = self._edit("isoEdit")
        self.kernel_edit = self._edit("kernelEdit")
        self.initrd_edit = self._edit("initrdEdit")
        self.cmdline_edit = self._edit("cmdlineEdit", DEFAULT_CMDLINE)
        self._no_network_reason = (
            vmspec.install_problem(VmSpec(name="", location="", install=NetworkInstall()), ctx) or ""
        )
        self._build()
        group = QButtonGroup(self)
        for radio in (self.later_radio, self.iso_radio, self.network_radio, self.kernel_radio):
            group.addButton(radio)
        group.buttonToggled.connect(self._choice_toggled)
        self._choice_toggled()
        self.set_network(None)

    def _edit(self, object_name: str, text: str = "") -> QLineEdit:
        edit = QLineEdit(text)
        edit.setObjectName(object_name)
        edit.textChanged.connect(self.notify)
        return edit

    def _build(self) -> None:
        self.body.addWidget(self.later_radio)
        self.body.addWidget(self.iso_radio)
        self.iso_form = indented_form()
        add_browse_row(
            self.iso_form,
            "Image &file (.iso):",
            self.iso_edit,
            "isoBrowseButton",
            lambda: self._browse(self.iso_edit, "Open", "Image files (*.iso);;All files (*)"),
        )
        self.body.addLayout(self.iso_form)
        self.body.addWidget(self.network_radio)
        self.body.addWidget(self.kernel_radio)
        self.kernel_form = indented_form()
        add_browse_row(
            self.kernel_form,
            "K&ernel:",
            self.kernel_edit,
            "kernelBrowseButton",
            lambda: self._browse(self.kernel_edit, "Select Kernel", "All files (*)"),
        )
        add_browse_row(
            self.kernel_form,
            "Initial ram&disk:",
            self.initrd_edit,
            "initrdBrowseButton",
            lambda: self._browse(self.initrd_edit, "Select Initial Ramdisk", "All files (*)"),
        )
        self.kernel_form.addRow("Co&mmand line:", self.cmdline_edit)
        self.body.addLayout(self.kernel_form)

    def install(self) -> InstallChoice:
        """How the guest operating system will be installed."""
        if self.iso_radio.isChecked():
            return IsoInstall(self.iso_edit.text())
        if self.network_radio.isChecked():
            return NetworkInstall()
        if self.kernel_radio.isChecked():
            return KernelBoot(self.kernel_edit.text(), self.initrd_edit.text(), self.cmdline_edit.text())
        return None

    def set_network(self, network: str | None) -> None:
        """Network installation needs a switch: offer it only when one was chosen."""
        available = network is not None
        if not available and self.network_radio.isChecked():
            self.later_radio.setChecked(True)
        tip = f"Boots from the network adapter connected to '{network}' first."
        tip = tip if available else self._no_network_reason
        if self.network_radio.toolTip() != tip:
            self.network_radio.setEnabled(available)
            self.network_radio.setToolTip(tip)

    def _choice_toggled(self, *_args: object) -> None:
        set_form_enabled(self.iso_form, self.iso_radio.isChecked())
        set_form_enabled(self.kernel_form, self.kernel_radio.isChecked())
        self.changed.emit()

    def _browse(self, edit: QLineEdit, caption: str, filters: str) -> None:
        path = FileDialogs.choose_file(self, caption, edit.text(), filters)
        if path:
            edit.setText(path)


# --- 8. Summary ------------------------------------------------------------------------------


def first_spec_problem(spec: VmSpec, ctx: HostContext) -> str | None:
    """The check of the Summary page: the whole spec, as the backend will check it."""
    problems = vmspec.spec_problems(spec, ctx)
    return problems[0] if problems else None


class SummaryPage(WizardPage):
    """The VM about to be created, as copyable text."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
        super().__init__(
            "Completing the New Virtual Machine Wizard",
            "You have successfully completed the New Virtual Machine Wizard.",
            spec_source,
            ctx,
            first_spec_problem,
        )
        self.summary_text = QTextEdit()
        self.summary_text.setObjectName("summaryText")
        self.summary_text.setReadOnly(True)
        self.summary_text.setAcceptRichText(False)
        self.summary_text.setLineWrapMode(QTextEdit.LineWrapMode.WidgetWidth)
        self.summary_text.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        metrics = self.summary_text.fontMetrics()
        self._value_column = metrics.horizontalAdvance("Operating System:") + 16
        self.summary_text.setTabStopDistance(self._value_column)
        self.body.addWidget(text_label("You are about to create the following virtual machine."))
        self.body.addWidget(QLabel("Description:"))
        self.body.addWidget(self.summary_text, 1)
        self.body.addWidget(text_label("To create the virtual machine and close the wizard, click Finish."))
        self.expand_body()

    def set_summary(self, text: str) -> None:
        """Replace the summary (kept as is when unchanged, so a selection survives)."""
        if self.summary_text.toPlainText() == text:
            return
        self.summary_text.setPlainText(text)
        hanging = QTextBlockFormat()  # wrapped values stay in the value column
        hanging.setLeftMargin(self._value_column)
        hanging.setTextIndent(-self._value_column)
        cursor = QTextCursor(self.summary_text.document())
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.mergeBlockFormat(hanging)
