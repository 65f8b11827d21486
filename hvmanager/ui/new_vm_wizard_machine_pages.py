"""The New Virtual Machine wizard's pages about the machine itself (pages 1 to 5).

Before You Begin, Specify Name and Location, Specify Generation, Assign Memory and Configure
Networking. The shared page base and helpers are in ``new_vm_wizard_base``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
)

from hvmanager.backend import limits, paths, vmspec
from hvmanager.backend.models import MemoryConfig
from hvmanager.backend.vmspec import HostContext
from hvmanager.ui.new_vm_wizard_base import (
    INDENT,
    FileDialogs,
    SpecSource,
    WizardPage,
    add_browse_row,
    add_row,
    digits_edit,
    indented_form,
    int_value,
    no_problem,
    set_form_enabled,
    text_label,
    with_unit,
)

DEFAULT_NAME = "New Virtual Machine"
DEFAULT_STARTUP_MIB = 1024
DEFAULT_MINIMUM_MIB = 512
NOT_CONNECTED = "Not Connected"


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
