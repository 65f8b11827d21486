"""Pages and fields the New and Edit Virtual Hard Disk wizards share.

Sizes are typed in GB, as in Hyper-V (``127``, ``1.5``): ``size_field_problem`` checks one with
``limits`` (a number, the format's range, a whole number of megabytes). ``TextPage`` is Before You
Begin, ``ChoicePage`` a list of radio buttons with a paragraph each (Choose Disk Format and Choose
Disk Type of the New wizard, Choose Action of the Edit wizard; a choice not offered is disabled with
the reason in place of its paragraph), ``SummaryPage`` the last page, which also shows the running
operation's progress and its failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette, QTextBlockFormat, QTextCursor
from PySide6.QtWidgets import QButtonGroup, QLabel, QLineEdit, QProgressBar, QRadioButton, QTextEdit, QWidget

from hvmanager.backend import limits
from hvmanager.backend.vhd_types import DiskType
from hvmanager.ui.new_vm_wizard_base import (
    INDENT,
    PROBLEM_COLOR,
    FileDialogs,
    ProblemPage,
    radio_button,
    text_label,
)

DISK_FILTERS = "Virtual hard disks (*.vhdx *.vhd *.qcow2 *.img *.raw);;All files (*)"
TYPE_LABELS = {
    DiskType.FIXED: "Fixed size",
    DiskType.DYNAMIC: "Dynamically expanding",
    DiskType.DIFFERENCING: "Differencing",
}
# (qemu-img format, radio text, object name, description): Hyper-V's formats, then QEMU's own.
FORMAT_CHOICES: tuple[tuple[object, str, str, str], ...] = (
    (
        "vhdx",
        "VHD&X",
        "formatVhdxRadio",
        "Supports virtual disks up to 64 TB and is resilient to consistency issues that might "
        "occur from power failures. Virtual machines here can't run from VHDX directly: it is a "
        "format to exchange disks with Hyper-V (convert it to QCOW2 to use it).",
    ),
    ("vpc", "&VHD", "formatVhdRadio", "Supports virtual disks up to 2,040 GB."),
    (
        "qcow2",
        "&QCOW2",
        "formatQcow2Radio",
        "QEMU's native format, recommended for disks of running virtual machines: supports "
        "virtual disks up to 64 TB, checkpoints and expanding while the machine runs.",
    ),
    (
        "raw",
        "R&AW",
        "formatRawRadio",
        "A plain image of the disk's bytes, up to 64 TB, readable by any tool.",
    ),
)
TYPE_CHOICES = (
    (
        DiskType.FIXED,
        "&Fixed size",
        "This type of disk provides better performance. The file is created at the full size of "
        "the virtual hard disk, and does not change when data is added.",
    ),
    (
        DiskType.DYNAMIC,
        "&Dynamically expanding",
        "This type of disk provides better use of physical storage space. The file starts small "
        "and grows as data is written to it.",
    ),
    (
        DiskType.DIFFERENCING,
        "D&ifferencing",
        "This type of disk is associated in a parent-child relationship with another disk that "
        "you want to leave intact. You can make changes to the data or operating system without "
        "affecting the parent disk, so that you can revert the changes easily.",
    ),
)


# --- sizes typed in GB -----------------------------------------------------------------------


def size_field_problem(text: str, qemu_format: str) -> str | None:
    """Check a size typed in GB (``127``, ``1.5``): a number, within the format's limits, a
    whole number of megabytes."""
    if not text.strip():
        return "Enter the size of the virtual hard disk in GB."
    try:
        value = Decimal(text.strip()) * limits.GIB
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        return f"'{text.strip()}' is not a number: enter the size in GB, such as 127 or 1.5."
    problem = limits.disk_size_problem(int(value), qemu_format)
    if problem is None and value != int(value):
        return limits.disk_size_problem(limits.DISK_MIN_BYTES + 1, qemu_format)  # not a whole MB
    return problem


def size_bytes(text: str) -> int | None:
    """The bytes of a size typed in GB (None when it isn't a whole number of bytes)."""
    try:
        value = Decimal(text.strip()) * limits.GIB
    except InvalidOperation:
        return None
    return int(value) if value.is_finite() and value >= 0 and value == int(value) else None


def size_edit(object_name: str, text: str) -> QLineEdit:
    """A line edit for a size in GB (anything may be typed: the page says what is wrong)."""
    edit = QLineEdit(text)
    edit.setObjectName(object_name)
    edit.setMaximumWidth(110)
    edit.setAlignment(Qt.AlignmentFlag.AlignRight)
    return edit


def browse_disk_file(page: QWidget, edit: QLineEdit) -> None:
    """Browse... for an existing disk file: the chosen path replaces ``edit``'s text (Cancel keeps it)."""
    path = FileDialogs.choose_file(page, "Open", edit.text(), DISK_FILTERS)
    if path:
        edit.setText(path)


def gb_text(size: int) -> str:
    """A byte count as the GB figure to put in a size field (``127``, ``1.5``)."""
    text = f"{Decimal(size) / limits.GIB:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def maximum_size(qemu_format: str) -> int:
    """The largest virtual size of a format."""
    return next((m for f, _e, m in limits.DISK_FORMATS.values() if f == qemu_format), 64 * limits.TIB)


def red(label: QLabel) -> QLabel:
    """Show a label's text in the problem colour."""
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, QColor(PROBLEM_COLOR))
    label.setPalette(palette)
    return label


# --- pages -----------------------------------------------------------------------------------


class TextPage(ProblemPage):
    """A page of explanatory text only (Before You Begin)."""

    def __init__(self, title: str, subtitle: str, paragraphs: Sequence[str]) -> None:
        super().__init__(title, subtitle)
        for paragraph in paragraphs:
            self.body.addWidget(text_label(paragraph))
            self.body.addSpacing(6)


class ChoicePage(ProblemPage):
    """Radio buttons, each with a paragraph under it (disk format, disk type, edit action)."""

    def __init__(self, title: str, subtitle: str, choices: Sequence[tuple[object, str, str, str]]) -> None:
        """``choices``: (value, radio text, object name, description)."""
        super().__init__(title, subtitle)
        self.group = QButtonGroup(self)
        self.radios: dict[object, QRadioButton] = {}
        self.notes: dict[object, QLabel] = {}
        self._descriptions: dict[object, str] = {}
        for value, text, object_name, description in choices:
            radio = radio_button(text, object_name)
            note = text_label(description, object_name.replace("Radio", "Note"))
            note.setContentsMargins(INDENT, 0, 0, 4)
            self.radios[value], self.notes[value], self._descriptions[value] = radio, note, description
            self.group.addButton(radio)
            self.body.addWidget(radio)
            self.body.addWidget(note)
        self.group.buttonToggled.connect(self.notify)

    def value(self) -> object:
        """The chosen value (None when nothing is chosen)."""
        return next((value for value, radio in self.radios.items() if radio.isChecked()), None)

    def select(self, value: object) -> None:
        """Check the radio button of ``value``."""
        self.radios[value].setChecked(True)

    def set_available(self, value: object, reason: str | None) -> None:
        """Offer a choice (``reason`` None) or disable it and say why under it, in place of its
        description (six choices with both would not fit)."""
        radio, note = self.radios[value], self.notes[value]
        radio.setEnabled(reason is None)
        text = self._descriptions[value] if reason is None else f"<i>Not available: {reason}</i>"
        if note.text() != text:
            note.setText(text)
        if reason is not None and radio.isChecked():
            self.group.setExclusive(False)
            radio.setChecked(False)
            self.group.setExclusive(True)


class SummaryPage(ProblemPage):
    """The operation about to run, as copyable text; its progress and failure on Finish."""

    def __init__(self, title: str, subtitle: str, intro: str, outro: str) -> None:
        super().__init__(title, subtitle)
        self.summary_text = QTextEdit()
        self.summary_text.setObjectName("summaryText")
        self.summary_text.setReadOnly(True)
        self.summary_text.setAcceptRichText(False)
        self._value_column = self.fontMetrics().horizontalAdvance("Physical sector size:") + 12
        self.summary_text.setTabStopDistance(self._value_column)
        self.status_label = QLabel()
        self.status_label.setObjectName("statusLabel")
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.hide()
        self.progress_bar = QProgressBar()
        self.progress_bar.setObjectName("progressBar")
        self.progress_bar.setRange(0, 100)
        self.progress_bar.hide()
        self._failure = ""
        self.body.addWidget(text_label(intro))
        self.body.addWidget(QLabel("Description:"))
        self.body.addWidget(self.summary_text, 1)
        self.body.addWidget(text_label(outro))
        self.body.addWidget(self.status_label)
        self.body.addWidget(self.progress_bar)
        self.expand_body()

    def set_summary(self, text: str) -> None:
        """Replace the summary (kept as is when unchanged, so a selection survives); wrapped values
        stay in the value column."""
        if self.summary_text.toPlainText() == text:
            return
        self.summary_text.setPlainText(text)
        hanging = QTextBlockFormat()
        hanging.setLeftMargin(self._value_column)
        hanging.setTextIndent(-self._value_column)
        cursor = QTextCursor(self.summary_text.document())
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.mergeBlockFormat(hanging)

    def show_problem(self, problem: str, finish_ok: bool, current: bool) -> None:
        """The first problem of any page; a failure that says the same is not repeated."""
        super().show_problem(problem, finish_ok, current)
        self.status_label.setVisible(bool(self.status_label.text()) and self.status_label.text() != problem)

    def show_running(self, text: str) -> None:
        """The operation started: what it does, and a progress bar."""
        self._failure = ""
        self.status_label.setPalette(self.palette())
        self.status_label.setText(text)
        self.status_label.show()
        self.progress_bar.setValue(0)
        self.progress_bar.show()

    def set_progress(self, percent: float) -> None:
        """The operation advanced."""
        self.progress_bar.setValue(int(percent))

    def show_failure(self, message: str) -> None:
        """The operation failed: why, in red."""
        self.progress_bar.hide()
        self._failure = message
        red(self.status_label).setText(message)
        self.status_label.show()

    def failure(self) -> str:
        """The failure shown ("" when none)."""
        return self._failure

    def clear_status(self) -> None:
        """Forget a failure once the user changes something."""
        self._failure = ""
        self.status_label.hide()
        self.status_label.setText("")


def format_page() -> ChoicePage:
    """Choose Disk Format (QCOW2 chosen: the format VMs here run best from)."""
    page = ChoicePage(
        "Choose Disk Format", "What format do you want to use for the virtual hard disk?", FORMAT_CHOICES
    )
    page.select("qcow2")
    return page


def type_page() -> ChoicePage:
    """Choose Disk Type (dynamically expanding chosen, as in Hyper-V)."""
    choices: list[tuple[object, str, str, str]] = [
        (kind, text, f"type{kind.value}Radio", description) for kind, text, description in TYPE_CHOICES
    ]
    page = ChoicePage("Choose Disk Type", "What type of virtual hard disk do you want to create?", choices)
    page.select(DiskType.DYNAMIC)
    return page
