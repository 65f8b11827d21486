"""The pages of the New Virtual Machine wizard (the wizard itself is in ``new_vm_wizard``).

Each page owns the inputs of one Hyper-V wizard page and knows how to check them: it runs the
matching ``vmspec`` check on the spec the wizard builds from every field, shows the problem in its
red ``problemLabel`` and reports itself incomplete so that Next and Finish stay disabled. Pages
announce every edit with ``changed``; the wizard then refreshes all pages at once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from pathlib import Path

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QPalette,
    QRegularExpressionValidator,
    QTextBlockFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from hvmanager.backend import limits, paths, vmspec
from hvmanager.backend.models import (
    DiskChoice,
    ExistingDisk,
    InstallChoice,
    IsoInstall,
    KernelBoot,
    MemoryConfig,
    NetworkInstall,
    NewDisk,
    VmSpec,
)
from hvmanager.backend.vmspec import HostContext

SpecSource = Callable[[], VmSpec]
Check = Callable[[VmSpec, HostContext], str | None]

DEFAULT_NAME = "New Virtual Machine"
DEFAULT_STARTUP_MIB = 1024
DEFAULT_MINIMUM_MIB = 512
DEFAULT_DISK_GIB = 127
DEFAULT_CMDLINE = "console=tty0 console=ttyS0"
# User-facing names (keys of limits.DISK_FORMATS) of the formats a VM can run from.
WIZARD_DISK_FORMATS = tuple(
    label for label, (fmt, _ext, _max) in limits.DISK_FORMATS.items() if fmt in ("qcow2", "vpc")
)
NOT_CONNECTED = "Not Connected"
INDENT = 22  # sub-options sit under their radio button's text
PROBLEM_COLOR = "#c42b1c"


class PageId(enum.IntEnum):
    """The wizard's pages, in order (also their ids in the wizard)."""

    BEFORE_YOU_BEGIN = 0
    NAME_LOCATION = 1
    GENERATION = 2
    MEMORY = 3
    NETWORKING = 4
    DISK = 5
    INSTALLATION = 6
    SUMMARY = 7


class FileDialogs:
    """The Browse… buttons' file dialogs, as static hooks that tests replace with ``monkeypatch``.

    Each returns the chosen path, or ``""`` when the user cancels.
    """

    @staticmethod
    def choose_folder(parent: QWidget, caption: str, start: str) -> str:
        """Ask for an existing folder."""
        return QFileDialog.getExistingDirectory(parent, caption, start)

    @staticmethod
    def choose_file(parent: QWidget, caption: str, start: str, filters: str) -> str:
        """Ask for an existing file."""
        path, _selected_filter = QFileDialog.getOpenFileName(parent, caption, start, filters)
        return path


def unique_vm_name(ctx: HostContext, location: str, base: str = DEFAULT_NAME) -> str:
    """``base``, ``base (2)``, ``base (3)``…: the first name not used on the server or on disk."""
    candidate, number = base, 1
    while candidate in ctx.existing_names or _folder_in_use(ctx, location, candidate):
        number += 1
        candidate = f"{base} ({number})"
    return candidate


def _folder_in_use(ctx: HostContext, location: str, name: str) -> bool:
    if not ctx.local or not Path(location).is_absolute():
        return False
    folder = paths.vm_folders(location, name).root
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:
        return False


# --- small widget helpers --------------------------------------------------------------------


def text_label(text: str, object_name: str = "") -> QLabel:
    """A word-wrapped paragraph of explanatory text."""
    label = QLabel(text)
    label.setWordWrap(True)
    if object_name:
        label.setObjectName(object_name)
    return label


def digits_edit(object_name: str, value: int) -> QLineEdit:
    """A line edit for a whole number: any digits are accepted so the page can say what's wrong."""
    edit = QLineEdit(str(value))
    edit.setObjectName(object_name)
    edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,9}"), edit))
    edit.setMaximumWidth(110)
    edit.setAlignment(Qt.AlignmentFlag.AlignRight)
    return edit


def int_value(edit: QLineEdit) -> int:
    """The number in a ``digits_edit`` (0 when empty, which the checks reject)."""
    text = edit.text().strip()
    return int(text) if text.isdigit() else 0


def add_row(form: QFormLayout, text: str, field: QLayout, buddy: QWidget) -> None:
    """A form row holding a layout; the label's mnemonic (``&Size:``) focuses ``buddy``."""
    label = QLabel(text)
    label.setBuddy(buddy)
    form.addRow(label, field)


def add_browse_row(
    form: QFormLayout, text: str, edit: QLineEdit, button_name: str, on_browse: Callable[[], None]
) -> None:
    """A form row ``label: [path edit] [Browse…]``."""
    add_row(form, text, browse_row(edit, button_name, on_browse), edit)


def with_unit(edit: QLineEdit, unit: str, note: QLabel | None = None) -> QHBoxLayout:
    """``[edit] unit  note`` on one line."""
    row = QHBoxLayout()
    row.addWidget(edit)
    row.addWidget(QLabel(unit))
    if note is not None:
        row.addSpacing(12)
        row.addWidget(note)
    row.addStretch(1)
    return row


def browse_row(edit: QLineEdit, button_name: str, on_browse: Callable[[], None]) -> QHBoxLayout:
    """``[path edit] [Browse…]``."""
    button = QPushButton("Browse…")
    button.setObjectName(button_name)
    button.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


def radio_button(text: str, object_name: str) -> QRadioButton:
    """A named radio button."""
    radio = QRadioButton(text)
    radio.setObjectName(object_name)
    return radio


def indented_form() -> QFormLayout:
    """A form laid out under a radio button or check box."""
    form = QFormLayout()
    form.setContentsMargins(INDENT, 0, 0, 0)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    return form


def layout_widgets(layout: QLayout) -> Iterator[QWidget]:
    """The widgets of a layout and of the layouts nested in it."""
    for index in range(layout.count()):
        item = layout.itemAt(index)
        if item is None:
            continue
        widget, child = item.widget(), item.layout()
        if widget is not None:
            yield widget
        elif child is not None:
            yield from layout_widgets(child)


def set_form_enabled(form: QFormLayout, enabled: bool) -> None:
    """Enable or disable every widget of a form: labels, fields, units and Browse… buttons."""
    for widget in layout_widgets(form):
        widget.setEnabled(enabled)


# --- the page base ---------------------------------------------------------------------------


class WizardPage(QWizardPage):
    """A page that checks its fields with a ``vmspec`` check and shows the problem in red."""

    changed = Signal()

    def __init__(
        self, title: str, subtitle: str, spec_source: SpecSource, ctx: HostContext, check: Check
    ) -> None:
        super().__init__()
        self.setTitle(title)
        self.setSubTitle(subtitle)
        self._spec_source = spec_source
        self._ctx = ctx
        self._check = check
        self.problem_label = QLabel()
        self.problem_label.setObjectName("problemLabel")
        self.problem_label.setWordWrap(True)
        self.problem_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        palette = self.problem_label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(PROBLEM_COLOR))
        self.problem_label.setPalette(palette)
        self.problem_label.hide()
        self.body = QVBoxLayout()
        self._outer = QVBoxLayout(self)
        self._outer.addLayout(self.body)
        self._outer.addStretch(1)
        self._outer.addWidget(self.problem_label)

    def expand_body(self) -> None:
        """Give the page's spare height to its body instead of the gap above the problem."""
        self._outer.setStretch(0, 1)
        self._outer.setStretch(1, 0)

    def problem_for(self, spec: VmSpec) -> str | None:
        """What is wrong with this page's part of ``spec`` (None when it is fine)."""
        return self._check(spec, self._ctx)

    def isComplete(self) -> bool:
        """Next (and Finish) are enabled only when this page's fields pass its check."""
        return self.problem_for(self._spec_source()) is None

    def refresh(self, spec: VmSpec, spec_ok: bool, current: bool) -> None:
        """Show this page's problem and offer Finish if the whole spec is valid.

        The page on screen also re-checks Next and Finish (``completeChanged``); the wizard asks
        the other pages again when it shows them.
        """
        problem = self.problem_for(spec) or ""
        if self.problem_label.text() != problem:
            self.problem_label.setText(problem)
            self.problem_label.setVisible(bool(problem))
        self.setFinalPage(spec_ok)
        if current:
            self.completeChanged.emit()

    def cleanupPage(self) -> None:
        """Keep what the user entered when they go back (Hyper-V does)."""

    def notify(self, *_args: object) -> None:
        """Slot for every input's change signal."""
        self.changed.emit()


def no_problem(_spec: VmSpec, _ctx: HostContext) -> str | None:
    """The check of pages without inputs."""
    return None


# --- 1. Before You Begin ---------------------------------------------------------------------


class BeforeYouBeginPage(WizardPage):
    """What the wizard does, and that Finish now creates a VM with the default values."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
        super().__init__(
            "Before You Begin",
            "This wizard helps you create a virtual machine.",
            spec_source,
            ctx,
            no_problem,
        )
        self.body.addWidget(
            text_label(
                "You can use virtual machines in place of physical computers for a variety of "
                "uses. You can use this wizard to configure the virtual machine now, and you can "
                "change its configuration later in the virtual machine's Settings."
            )
        )
        self.body.addSpacing(8)
        self.body.addWidget(text_label("To create a virtual machine, do one of the following:"))
        self.body.addWidget(
            text_label(
                "•  Click <b>Finish</b> to create a virtual machine that is configured with "
                "default values.<br>•  Click <b>Next</b> to create a virtual machine with a "
                "custom configuration."
            )
        )


# --- 2. Specify Name and Location ------------------------------------------------------------


class NameLocationPage(WizardPage):
    """The VM's name and the folder its own sub-folder goes into."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext, default_location: str) -> None:
        super().__init__(
            "Specify Name and Location",
            "Choose a name and location for this virtual machine.",
            spec_source,
            ctx,
            lambda spec, c: vmspec.name_location_problem(spec.name, spec.location, c),
        )
        self._default_location = default_location
        self.name_edit = QLineEdit(unique_vm_name(ctx, default_location))
        self.name_edit.setObjectName("nameEdit")
        self.different_check = QCheckBox("&Store the virtual machine in a different location")
        self.different_check.setObjectName("differentLocationCheck")
        self.location_edit = QLineEdit(default_location)
        self.location_edit.setObjectName("locationEdit")
        self.resolved_label = text_label("", "resolvedPathLabel")
        self.resolved_label.setTextFormat(Qt.TextFormat.PlainText)
        self.resolved_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build()
        self.name_edit.textChanged.connect(self._update)
        self.location_edit.textChanged.connect(self._update)
        self.different_check.toggled.connect(self._location_toggled)
        self._location_toggled(False)

    def _build(self) -> None:
        self.body.addWidget(
            text_label(
                "The name is displayed in the list of virtual machines. We recommend that you "
                "use a name that helps you easily identify this virtual machine, such as the "
                "name of the guest operating system or workload."
            )
        )
        name_form = QFormLayout()
        name_form.addRow("&Name:", self.name_edit)
        self.body.addLayout(name_form)
        self.body.addSpacing(10)
        self.body.addWidget(
            text_label(
                "You can create a folder or use an existing folder to store the virtual "
                "machine. If you don't select a folder, the virtual machine is stored in the "
                "default folder configured for this server."
            )
        )
        self.body.addWidget(self.different_check)
        self.location_form = indented_form()
        add_browse_row(
            self.location_form, "&Location:", self.location_edit, "locationBrowseButton", self._browse
        )
        self.body.addLayout(self.location_form)
        self.body.addWidget(self.resolved_label)
        self.body.addSpacing(6)
        self.body.addWidget(
            text_label(
                "If you plan to create checkpoints of this virtual machine, select a location "
                "that has enough free space. Checkpoints include virtual machine data and may "
                "require a large amount of space."
            )
        )

    def name(self) -> str:
        """The VM name as typed."""
        return self.name_edit.text()

    def location(self) -> str:
        """The folder the VM's own folder is created in."""
        if self.different_check.isChecked():
            return self.location_edit.text()
        return self._default_location

    def _location_toggled(self, checked: bool) -> None:
        if not checked:
            self.location_edit.setText(self._default_location)
        set_form_enabled(self.location_form, checked)
        self._update()

    def _browse(self) -> None:
        folder = FileDialogs.choose_folder(self, "Select Folder", self.location())
        if folder:
            self.location_edit.setText(folder)

    def _update(self, *_args: object) -> None:
        root = paths.vm_folders(self.location(), self.name()).root if self.name() else None
        where = f"{root}/" if root else self.location()
        self.resolved_label.setText(f"The virtual machine's files will be stored in:\n{where}")
        self.changed.emit()


# --- 3. Specify Generation -------------------------------------------------------------------


class GenerationPage(WizardPage):
    """Generation 1 (BIOS, i440fx, IDE boot) or Generation 2 (UEFI, q35, SCSI boot)."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
        super().__init__(
            "Specify Generation",
            "Choose the generation of this virtual machine.",
            spec_source,
            ctx,
            no_problem,
        )
        self.gen1_radio = QRadioButton("Generation &1")
        self.gen1_radio.setObjectName("gen1Radio")
        self.gen1_radio.setChecked(True)
        self.gen2_radio = QRadioButton("Generation &2")
        self.gen2_radio.setObjectName("gen2Radio")
        group = QButtonGroup(self)
        group.addButton(self.gen1_radio, 1)
        group.addButton(self.gen2_radio, 2)
        group.idToggled.connect(self.notify)
        self.body.addWidget(self.gen1_radio)
        self.body.addWidget(
            _indented_text(
                "This virtual machine generation provides the classic PC virtual hardware: BIOS "
                "firmware, the i440fx chipset and an IDE boot disk. It supports 32-bit and 64-bit "
                "guest operating systems."
            )
        )
        self.body.addSpacing(6)
        self.body.addWidget(self.gen2_radio)
        self.body.addWidget(
            _indented_text(
                "This virtual machine generation provides support for newer virtualization "
                "features: UEFI firmware (OVMF), the q35 chipset and a SCSI boot disk. It "
                "requires a 64-bit guest operating system."
            )
        )
        self.body.addSpacing(12)
        self.body.addWidget(
            text_label("<b>Once a virtual machine has been created, you cannot change its generation.</b>")
        )

    def generation(self) -> int:
        """1 or 2."""
        return 2 if self.gen2_radio.isChecked() else 1


def _indented_text(text: str) -> QLabel:
    label = text_label(text)
    label.setContentsMargins(INDENT, 0, 0, 0)
    return label


# --- 4. Assign Memory ------------------------------------------------------------------------


class MemoryPage(WizardPage):
    """Startup memory and, optionally, the dynamic memory range."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
        super().__init__(
            "Assign Memory",
            "Specify the amount of memory to allocate to this virtual machine.",
            spec_source,
            ctx,
            vmspec.memory_problem,
        )
        self._host_memory_mib = ctx.host_memory_mib
        self._generation = 0
        ceiling = limits.memory_ceiling_mib(1, ctx.host_memory_mib)
        startup = min(DEFAULT_STARTUP_MIB, ceiling)
        self._auto_maximum = ceiling
        self.startup_edit = digits_edit("startupMemoryEdit", startup)
        self.dynamic_check = QCheckBox("&Use Dynamic Memory for this virtual machine.")
        self.dynamic_check.setObjectName("dynamicMemoryCheck")
        self.minimum_edit = digits_edit("minimumMemoryEdit", min(DEFAULT_MINIMUM_MIB, startup))
        self.maximum_edit = digits_edit("maximumMemoryEdit", ceiling)
        self.range_label = text_label("", "memoryRangeLabel")
        self._build()
        for edit in (self.startup_edit, self.minimum_edit, self.maximum_edit):
            edit.textChanged.connect(self.notify)
        self.dynamic_check.toggled.connect(self._dynamic_toggled)
        self._dynamic_toggled(False)
        self.set_generation(1)

    def _build(self) -> None:
        self.body.addWidget(self.range_label)
        form = QFormLayout()
        add_row(form, "Startup &memory:", with_unit(self.startup_edit, "MB"), self.startup_edit)
        self.body.addLayout(form)
        self.body.addSpacing(6)
        self.body.addWidget(self.dynamic_check)
        self.dynamic_form = indented_form()
        for text, edit in (
            ("Mi&nimum memory:", self.minimum_edit),
            ("Ma&ximum memory:", self.maximum_edit),
        ):
            add_row(self.dynamic_form, text, with_unit(edit, "MB"), edit)
        self.body.addLayout(self.dynamic_form)
        self.body.addSpacing(6)
        self.body.addWidget(
            text_label(
                "When you decide how much memory to assign to a virtual machine, consider how "
                "you intend to use the virtual machine and the operating system that it will "
                "run. With Dynamic Memory, the guest's memory grows and shrinks between the "
                "minimum and the maximum as it needs."
            )
        )

    def set_generation(self, generation: int) -> None:
        """Show the largest amount for this generation on this server; follow it as the default."""
        if generation == self._generation:
            return
        self._generation = generation
        ceiling = limits.memory_ceiling_mib(generation, self._host_memory_mib)
        self.range_label.setText(
            f"You can specify an amount from {limits.MEMORY_MIN_MIB} MB through {ceiling} MB, the "
            "largest amount on this server. To improve performance, specify more than the minimum "
            "amount recommended for the operating system."
        )
        if self.maximum_edit.text() == str(self._auto_maximum):
            self.maximum_edit.setText(str(ceiling))
        self._auto_maximum = ceiling

    def memory(self) -> MemoryConfig:
        """The memory as entered (the checks reject what the server can't give)."""
        startup = int_value(self.startup_edit)
        if not self.dynamic_check.isChecked():
            return MemoryConfig(startup)
        return MemoryConfig(startup, True, int_value(self.minimum_edit), int_value(self.maximum_edit))

    def _dynamic_toggled(self, checked: bool) -> None:
        set_form_enabled(self.dynamic_form, checked)
        self.changed.emit()


# --- 5. Configure Networking -----------------------------------------------------------------


class NetworkPage(WizardPage):
    """The virtual switch the VM's network adapter is connected to, if any."""

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
        super().__init__(
            "Configure Networking",
            "Each new virtual machine includes a network adapter.",
            spec_source,
            ctx,
            vmspec.network_problem,
        )
        self.network_combo = QComboBox()
        self.network_combo.setObjectName("networkCombo")
        self.network_combo.addItem(NOT_CONNECTED, None)
        for name in ctx.networks:
            self.network_combo.addItem(name, name)
        self.network_combo.currentIndexChanged.connect(self.notify)
        self.body.addWidget(
            text_label(
                "You can configure the network adapter to use a virtual switch, or it can remain "
                "disconnected."
            )
        )
        form = QFormLayout()
        form.addRow("&Connection:", self.network_combo)
        self.body.addLayout(form)
        if not ctx.networks:
            self.body.addWidget(
                text_label(
                    "This server has no virtual switches. Create one in the Virtual "
                    "Switch Manager, then connect the adapter in the VM's Settings."
                )
            )

    def network(self) -> str | None:
        """The chosen switch, or None for Not Connected."""
        data = self.network_combo.currentData()
        return data if isinstance(data, str) else None


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

    def __init__(self, spec_source: SpecSource, ctx: HostContext) -> None:
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
        folder = str(paths.vm_folders(location, name).disks)
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
