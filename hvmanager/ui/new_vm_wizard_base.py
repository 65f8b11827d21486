"""What every page of the New Virtual Machine wizard shares: the page base class and its helpers.

``WizardPage`` owns the inputs of one Hyper-V wizard page and knows how to check them: it runs the
matching ``vmspec`` check on the spec the wizard builds from every field, shows the problem in its
red ``problemLabel`` and reports itself incomplete so that Next and Finish stay disabled. Its base,
``ProblemPage``, only shows the problem its owner found (the disk wizards use it). Pages
announce every edit with ``changed``; the wizard then refreshes all pages at once.

Also here: ``PageId`` (the pages in order), ``FileDialogs`` (the Browse… hooks tests replace) and
the small widget helpers the pages are built with. The pages themselves are in
``new_vm_wizard_machine_pages`` and ``new_vm_wizard_media_pages``; the wizard in ``new_vm_wizard``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator

from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QRegularExpressionValidator
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from hvmanager.backend.models import VmSpec
from hvmanager.backend.vmspec import HostContext

SpecSource = Callable[[], VmSpec]
Check = Callable[[VmSpec, HostContext], str | None]

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

    @staticmethod
    def choose_new_file(parent: QWidget, caption: str, start: str, filters: str) -> str:
        """Ask for the name of a file to create."""
        path, _selected_filter = QFileDialog.getSaveFileName(
            parent, caption, start, filters, options=QFileDialog.Option.DontConfirmOverwrite
        )
        return path


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


class ProblemPage(QWizardPage):
    """A page with a body and a red ``problemLabel`` under it; Next and Finish follow ``problem``.

    The owner decides what the problem is (``show_problem``); the VM wizard's ``WizardPage``
    computes it from a ``VmSpec``, the disk wizards from their requests.
    """

    changed = Signal()

    def __init__(self, title: str, subtitle: str) -> None:
        super().__init__()
        self.setTitle(title)
        self.setSubTitle(subtitle)
        self._problem = ""
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

    def isComplete(self) -> bool:
        """Next (and Finish) are enabled only while no problem is shown."""
        return not self._problem

    def show_problem(self, problem: str, finish_ok: bool, current: bool) -> None:
        """Show ``problem`` ("" for none) and offer Finish when ``finish_ok``.

        The page on screen also re-checks Next and Finish (``completeChanged``); the wizard asks
        the other pages again when it shows them.
        """
        self._problem = problem
        if self.problem_label.text() != problem:
            self.problem_label.setText(problem)
            self.problem_label.setVisible(bool(problem))
        self.setFinalPage(finish_ok)
        if current:
            self.completeChanged.emit()

    def cleanupPage(self) -> None:
        """Keep what the user entered when they go back (Hyper-V does)."""

    def notify(self, *_args: object) -> None:
        """Slot for every input's change signal."""
        self.changed.emit()


class WizardPage(ProblemPage):
    """A page that checks its fields with a ``vmspec`` check and shows the problem in red."""

    def __init__(
        self, title: str, subtitle: str, spec_source: SpecSource, ctx: HostContext, check: Check
    ) -> None:
        super().__init__(title, subtitle)
        self._spec_source = spec_source
        self._ctx = ctx
        self._check = check

    def problem_for(self, spec: VmSpec) -> str | None:
        """What is wrong with this page's part of ``spec`` (None when it is fine)."""
        return self._check(spec, self._ctx)

    def isComplete(self) -> bool:
        """Next (and Finish) are enabled only when this page's fields pass its check."""
        return self.problem_for(self._spec_source()) is None

    def refresh(self, spec: VmSpec, spec_ok: bool, current: bool) -> None:
        """Show this page's problem and offer Finish if the whole spec is valid."""
        self.show_problem(self.problem_for(spec) or "", spec_ok, current)


def no_problem(_spec: VmSpec, _ctx: HostContext) -> str | None:
    """The check of pages without inputs."""
    return None
