"""The pages of the VM Settings dialog (right-hand side), one widget per tree entry.

Each page shows a VM's values (``load``), reports edits with its ``changed`` signal and hands its
current values back; the dialog compares them with what was loaded. Pages only disable what the
VM's state doesn't allow and say why; the rules themselves live in ``backend.vmsettings``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import limits
from hvmanager.backend import vmsettings_rules as vmsettings
from hvmanager.backend.models import (
    BootDevice,
    KernelBoot,
    MemoryConfig,
    StartAction,
    StopAction,
    VmState,
)

DYNAMIC_MINIMUM_DEFAULT_MIB = 512


def state_note(state: VmState) -> str:
    """Hyper-V's note on pages whose settings the VM's state locks."""
    how = (
        "start the virtual machine and shut it down, or delete its saved state,"
        if state is VmState.SAVED
        else "shut down the virtual machine"
    )
    return (
        "Some settings cannot be modified because the virtual machine was in the following "
        f"state when this window was opened: {state.value.lower()}. To modify a setting that "
        f"is unavailable, {how} and then reopen this window."
    )


def _form(*rows: tuple[str, QWidget]) -> QWidget:
    """Labelled rows, indented like the rows inside a group box."""
    holder = QWidget()
    form = QFormLayout(holder)
    form.setContentsMargins(12, 0, 0, 0)
    for label, field in rows:
        form.addRow(label, field)
    return holder


def wrapped_label(text: str = "") -> QLabel:
    """A label whose text wraps to the page's width."""
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def indented(*widgets: QWidget) -> QWidget:
    """Widgets under a radio button, lined up with its text."""
    holder = QWidget()
    column = QVBoxLayout(holder)
    column.setContentsMargins(22, 0, 0, 4)
    for widget in widgets:
        column.addWidget(widget)
    return holder


def _megabytes_spin(name: str, maximum: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(1, maximum)
    spin.setSingleStep(limits.MEMORY_STEP_MIB)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    spin.setMinimumWidth(110)
    return spin


def _with_unit(field: QWidget, unit: str) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(field)
    layout.addWidget(QLabel(unit))
    layout.addStretch(1)
    return row


class NoteBox(QWidget):
    """An information icon and a wrapped sentence; hidden while there is nothing to say."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        icon = QLabel()
        pixmap = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxInformation)
        icon.setPixmap(pixmap.pixmap(16, 16))
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.label = wrapped_label()
        layout.addWidget(icon)
        layout.addWidget(self.label, 1)
        self.setVisible(False)

    def set_text(self, text: str) -> None:
        """Show ``text``, or hide the note when it is empty."""
        self.label.setText(text)
        self.setVisible(bool(text))


class SettingsPage(QWidget):
    """A page: a bold heading, an introduction, the page's fields and an optional note.

    Signals:
        changed(): the user edited a field.
    """

    changed = Signal()

    def __init__(self, title: str, intro: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(12, 8, 12, 8)
        heading = QLabel(title)
        font = QFont(heading.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.25)
        heading.setFont(font)
        heading.setObjectName("pageHeading")
        self._layout.addWidget(heading)
        self._layout.addWidget(wrapped_label(intro))
        self._layout.addSpacing(6)
        self.note = NoteBox()

    def add(self, widget: QWidget) -> None:
        """Append a widget to the page."""
        self._layout.addWidget(widget)

    def finish(self) -> None:
        """Put the note under the fields and push everything to the top."""
        self._layout.addWidget(self.note)
        self._layout.addStretch(1)


class BootOrderPage(SettingsPage):
    """BIOS (Generation 1: "Startup order") or Firmware (Generation 2: "Boot order")."""

    def __init__(self, generation: int, parent: QWidget | None = None) -> None:
        gen2 = generation == 2
        super().__init__(
            "Firmware" if gen2 else "BIOS",
            "Select the order in which "
            f"{'boot entries' if gen2 else 'startup devices'} are checked to start the "
            "operating system.",
            parent,
        )
        box = QGroupBox("Boot order" if gen2 else "Startup order")
        row = QHBoxLayout(box)
        self.list = QListWidget()
        self.list.setObjectName("bootOrderList")
        self.list.setMaximumHeight(110)
        self.up = QPushButton("Move Up")
        self.up.setObjectName("moveUpButton")
        self.down = QPushButton("Move Down")
        self.down.setObjectName("moveDownButton")
        buttons = QVBoxLayout()
        buttons.addWidget(self.up)
        buttons.addWidget(self.down)
        buttons.addStretch(1)
        row.addWidget(self.list, 1)
        row.addLayout(buttons)
        self.add(box)
        self.finish()
        self.list.currentRowChanged.connect(self._update_buttons)
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(1))

    def load(self, order: tuple[BootDevice, ...], kernel: KernelBoot | None, state: VmState) -> None:
        """Show the VM's boot order, and when it is used."""
        self.list.clear()
        for device in order:
            item = QListWidgetItem(device.label)
            item.setData(Qt.ItemDataRole.UserRole, device)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.note.set_text(self._note(kernel, state))
        self._update_buttons()

    @staticmethod
    def _note(kernel: KernelBoot | None, state: VmState) -> str:
        if kernel is not None:
            return (
                f"This virtual machine boots the Linux kernel {kernel.kernel} directly: the "
                "boot order is kept, but not used while a kernel is set."
            )
        return vmsettings.NOTE_BOOT_ORDER if state is not VmState.OFF else ""

    def order(self) -> tuple[BootDevice, ...]:
        """The boot order as shown."""
        items = (self.list.item(row) for row in range(self.list.count()))
        return tuple(item.data(Qt.ItemDataRole.UserRole) for item in items)

    def _move(self, step: int) -> None:
        row = self.list.currentRow()
        target = row + step
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)
        self.changed.emit()

    def _update_buttons(self) -> None:
        row = self.list.currentRow()
        self.up.setEnabled(row > 0)
        self.down.setEnabled(0 <= row < self.list.count() - 1)


class MemoryPage(SettingsPage):
    """Memory: Startup RAM and Dynamic Memory (Minimum and Maximum RAM)."""

    def __init__(self, generation: int, host_memory_mib: int, parent: QWidget | None = None) -> None:
        super().__init__(
            "Memory",
            "You can configure options for assigning and managing memory for this virtual machine.",
            parent,
        )
        self._ceiling = limits.memory_ceiling_mib(generation, host_memory_mib)
        widest = limits.MEMORY_MAX_MIB.get(generation, limits.MEMORY_MAX_MIB[1])
        self.startup = _megabytes_spin("startupMemoryEdit", widest)
        self.dynamic = QCheckBox("Enable Dynamic Memory")
        self.dynamic.setObjectName("dynamicMemoryCheck")
        self.minimum = _megabytes_spin("minimumMemoryEdit", widest)
        self.maximum = _megabytes_spin("maximumMemoryEdit", widest)
        self._loaded_dynamic = False
        self._range_enabled = True
        self._build()
        for spin in (self.startup, self.minimum, self.maximum):
            spin.valueChanged.connect(self.changed)
        self.dynamic.toggled.connect(self._on_dynamic_toggled)

    def _build(self) -> None:
        self.add(
            wrapped_label("Specify the amount of memory that this virtual machine will be started with.")
        )
        self.add(_form(("Startup RAM:", _with_unit(self.startup, "MB"))))
        self.add(self.dynamic)
        self.range_box = QGroupBox("Dynamic Memory")
        form = QFormLayout(self.range_box)
        form.addRow(
            wrapped_label(
                "You can allow the amount of memory available to this virtual "
                "machine to change dynamically within the range you set."
            )
        )
        form.addRow("Minimum RAM:", _with_unit(self.minimum, "MB"))
        form.addRow("Maximum RAM:", _with_unit(self.maximum, "MB"))
        self.add(self.range_box)
        self.finish()

    def load(self, memory: MemoryConfig, state: VmState) -> None:
        """Show the VM's memory and lock what ``state`` doesn't allow to change."""
        with_signals = self.blockSignals(True)
        self._loaded_dynamic = memory.dynamic
        self.startup.setValue(memory.startup_mib)
        minimum, maximum = self._range_of(memory)
        self.minimum.setValue(minimum)
        self.maximum.setValue(maximum)
        self.dynamic.setChecked(memory.dynamic)
        self.blockSignals(with_signals)
        active, saved = state.is_active, state is VmState.SAVED
        self.startup.setEnabled(not (active or saved))
        self.dynamic.setEnabled(not (active or saved))
        self._range_enabled = not saved
        self._update_range()
        self.note.set_text(self._note(memory, state))

    def _range_of(self, memory: MemoryConfig) -> tuple[int, int]:
        """The range to show; Hyper-V-like defaults when Dynamic Memory is off."""
        if memory.dynamic:
            return (memory.minimum_mib or memory.startup_mib, memory.maximum_mib or memory.ceiling_mib)
        minimum = min(DYNAMIC_MINIMUM_DEFAULT_MIB, memory.startup_mib)
        return minimum, max(memory.startup_mib, min(2 * memory.startup_mib, self._ceiling))

    @staticmethod
    def _note(memory: MemoryConfig, state: VmState) -> str:
        if state is VmState.SAVED:
            return state_note(state) + " A saved virtual machine resumes with its memory."
        if not state.is_active:
            return ""
        if memory.dynamic:
            return state_note(state) + (
                " While it runs, Minimum RAM can be lowered and Maximum RAM raised; a new "
                "Maximum RAM takes effect at the next start."
            )
        return state_note(state)

    def memory(self) -> MemoryConfig:
        """The memory settings as shown."""
        if not self.dynamic.isChecked():
            return MemoryConfig(self.startup.value())
        return MemoryConfig(self.startup.value(), True, self.minimum.value(), self.maximum.value())

    def _on_dynamic_toggled(self, checked: bool) -> None:
        if checked and not self._loaded_dynamic:
            startup = self.startup.value()
            self.minimum.setValue(min(self.minimum.value(), startup))
            self.maximum.setValue(max(self.maximum.value(), startup))
        self._update_range()
        self.changed.emit()

    def _update_range(self) -> None:
        self.range_box.setEnabled(self._range_enabled and self.dynamic.isChecked())


class ProcessorPage(SettingsPage):
    """Processor: the number of virtual processors."""

    def __init__(self, generation: int, host_cpus: int, parent: QWidget | None = None) -> None:
        super().__init__(
            "Processor",
            "You can modify the number of virtual processors based on the number of processors "
            f"on the physical computer. This server has {host_cpus} logical processors.",
            parent,
        )
        self._limit = min(host_cpus, limits.PROCESSORS_MAX.get(generation, 64))
        self.spin = QSpinBox()
        self.spin.setObjectName("processorSpin")
        self.spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.spin.setMinimumWidth(80)
        self.add(_form(("Number of virtual processors:", _with_unit(self.spin, ""))))
        self.finish()
        self.spin.valueChanged.connect(self.changed)

    def load(self, count: int, state: VmState) -> None:
        """Show the count; read-only unless the VM is off."""
        with_signals = self.spin.blockSignals(True)
        self.spin.setRange(1, max(self._limit, count))  # never clamp what the VM has
        self.spin.setValue(count)
        self.spin.blockSignals(with_signals)
        locked = vmsettings.hardware_locked(state)
        self.spin.setEnabled(not locked)
        self.note.set_text(state_note(state) if locked else "")

    def count(self) -> int:
        """The number as shown."""
        return self.spin.value()


class NamePage(SettingsPage):
    """Name: the VM's name and its notes."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Name",
            "You can edit the name of this virtual machine. The name is displayed in Hyper-V "
            "Manager. You can also add notes about the virtual machine.",
            parent,
        )
        self.name = QLineEdit()
        self.name.setObjectName("nameEdit")
        self.notes = QPlainTextEdit()
        self.notes.setObjectName("notesEdit")
        self.add(self.name)
        self.add(self.note)
        self.add(QLabel("Notes:"))
        self._layout.addWidget(self.notes, 1)
        self.name.textChanged.connect(self.changed)
        self.notes.textChanged.connect(self.changed)

    def load(self, name: str, notes: str, state: VmState) -> None:
        """Show name and notes; the name is read-only when libvirt can't rename the VM."""
        for widget in (self.name, self.notes):
            widget.blockSignals(True)
        self.name.setText(name)
        self.notes.setPlainText(notes)
        for widget in (self.name, self.notes):
            widget.blockSignals(False)
        reason = vmsettings.rename_problem(name, state)
        self.name.setReadOnly(reason is not None)
        self.note.set_text(reason or "")


def _radio_group(page: SettingsPage, choices: list[tuple[str, str]]) -> QButtonGroup:
    """Radio buttons (object name, label) on ``page``, in one exclusive group."""
    group = QButtonGroup(page)
    for index, (object_name, label) in enumerate(choices):
        radio = QRadioButton(label)
        radio.setObjectName(object_name)
        group.addButton(radio, index)
        page.add(radio)
    return group


class StartActionPage(SettingsPage):
    """Automatic Start Action: what to do when the host starts, and after what delay."""

    ACTIONS = (StartAction.NOTHING, StartAction.START_IF_RUNNING, StartAction.START)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Automatic Start Action",
            "What do you want this virtual machine to do when the physical computer starts?",
            parent,
        )
        self.group = _radio_group(
            self,
            [
                ("startNothingRadio", "Nothing"),
                ("startIfRunningRadio", "Automatically start if it was running when the service stopped"),
                ("startAlwaysRadio", "Always start this virtual machine automatically"),
            ],
        )
        self.delay = QSpinBox()
        self.delay.setObjectName("startDelaySpin")
        self.delay.setRange(0, vmsettings.START_DELAY_MAX_S)
        self.delay.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.delay.setMinimumWidth(90)
        box = QGroupBox("Automatic start delay")
        form = QFormLayout(box)
        form.addRow(
            wrapped_label("Specify a startup delay to reduce resource contention between virtual machines.")
        )
        form.addRow("Startup delay:", _with_unit(self.delay, "seconds"))
        self._layout.addSpacing(8)
        self.add(box)
        self.finish()
        self.group.idToggled.connect(self._on_toggled)
        self.delay.valueChanged.connect(self.changed)

    def load(self, action: StartAction, delay_s: int) -> None:
        """Show the action and the delay."""
        with_signals = self.group.blockSignals(True)
        self.group.button(self.ACTIONS.index(action)).setChecked(True)
        self.group.blockSignals(with_signals)
        with_signals = self.delay.blockSignals(True)
        self.delay.setValue(delay_s)
        self.delay.blockSignals(with_signals)
        self.delay.setEnabled(action is not StartAction.NOTHING)

    def action(self) -> StartAction:
        """The action as shown."""
        return self.ACTIONS[max(self.group.checkedId(), 0)]

    def delay_s(self) -> int:
        """The delay as shown."""
        return self.delay.value()

    def _on_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self.delay.setEnabled(self.action() is not StartAction.NOTHING)
            self.changed.emit()


class StopActionPage(SettingsPage):
    """Automatic Stop Action: what to do with the VM when the host shuts down."""

    ACTIONS = (StopAction.SAVE, StopAction.TURN_OFF, StopAction.SHUT_DOWN)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Automatic Stop Action",
            "What do you want to do with this virtual machine when the physical computer shuts down?",
            parent,
        )
        self.group = _radio_group(
            self,
            [
                ("stopSaveRadio", "Save the virtual machine state"),
                ("stopTurnOffRadio", "Turn off the virtual machine"),
                ("stopShutDownRadio", "Shut down the guest operating system"),
            ],
        )
        self.finish()
        self.group.buttonToggled.connect(self._on_toggled)

    def load(self, action: StopAction) -> None:
        """Show the action."""
        with_signals = self.group.blockSignals(True)
        self.group.button(self.ACTIONS.index(action)).setChecked(True)
        self.group.blockSignals(with_signals)

    def action(self) -> StopAction:
        """The action as shown."""
        return self.ACTIONS[max(self.group.checkedId(), 0)]

    def _on_toggled(self, _button: QAbstractButton, checked: bool) -> None:
        if checked:
            self.changed.emit()
