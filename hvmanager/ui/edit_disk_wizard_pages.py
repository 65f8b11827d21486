"""The Edit Virtual Hard Disk wizard's own pages: Locate Disk, Choose Action and the action's page
(Before You Begin and Summary are ``disk_wizard_pages``').

The action page is one page whose title and fields follow the chosen action: Compact (text only),
Convert (format, type, new file), Expand and Shrink (new size), Merge (into the parent or a new
file) and Reconnect (the moved parent). Pages only hold inputs; the wizard (``edit_disk_wizard``)
checks them and runs the action.
"""

from __future__ import annotations

from functools import partial

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import limits
from hvmanager.backend.vhd_types import DiskType, EditAction
from hvmanager.ui.disk_wizard_pages import DISK_FILTERS, ChoicePage, browse_disk_file, size_edit
from hvmanager.ui.new_vm_wizard_base import (
    INDENT,
    FileDialogs,
    ProblemPage,
    add_browse_row,
    add_row,
    indented_form,
    radio_button,
    set_form_enabled,
    text_label,
    with_unit,
)

ACTION_CHOICES: tuple[tuple[object, str, str, str], ...] = (
    (
        EditAction.COMPACT,
        "&Compact",
        "compactRadio",
        "Shrinks the file by removing the blocks that hold no data; the disk's size stays the same.",
    ),
    (
        EditAction.CONVERT,
        "Con&vert",
        "convertRadio",
        "Copies the contents into a new virtual hard disk of another format or type; the disk is kept.",
    ),
    (EditAction.EXPAND, "&Expand", "expandRadio", "Makes the virtual hard disk larger."),
    (
        EditAction.SHRINK,
        "&Shrink",
        "shrinkRadio",
        "Makes the virtual hard disk smaller, down to where its data ends (shrink the partitions "
        "inside the guest first).",
    ),
    (
        EditAction.MERGE,
        "&Merge",
        "mergeRadio",
        "Merges the changes of this differencing disk into its parent, or into a new disk.",
    ),
    (
        EditAction.RECONNECT,
        "&Reconnect",
        "reconnectRadio",
        "Points this differencing disk at its parent disk, after the parent was moved or renamed.",
    ),
)
ACTION_TITLES = {
    EditAction.COMPACT: ("Compact Virtual Hard Disk", "The file will be compacted."),
    EditAction.CONVERT: ("Convert Virtual Hard Disk", "Choose the format, type and file of the new disk."),
    EditAction.EXPAND: ("Expand Virtual Hard Disk", "What size do you want to make the virtual hard disk?"),
    EditAction.SHRINK: ("Shrink Virtual Hard Disk", "What size do you want to make the virtual hard disk?"),
    EditAction.MERGE: ("Configure Disk", "Where do you want to merge the changes?"),
    EditAction.RECONNECT: (
        "Reconnect Virtual Hard Disk",
        "Where is the parent of this differencing disk now?",
    ),
}
FORMATS = (("VHDX", "vhdx"), ("VHD", "vpc"), ("QCOW2", "qcow2"), ("RAW", "raw"))


# --- 2. Locate Disk --------------------------------------------------------------------------


class LocateDiskPage(ProblemPage):
    """The disk to edit, and what the wizard found out about it."""

    def __init__(self) -> None:
        super().__init__("Locate Disk", "Where is the virtual hard disk located?")
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("diskPathEdit")
        self.path_edit.textChanged.connect(self.notify)
        self.facts = text_label("", "diskFactsLabel")
        self.note = text_label("", "diskNoteLabel")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        browse = partial(browse_disk_file, self, self.path_edit)
        add_browse_row(form, "&Path:", self.path_edit, "diskBrowseButton", browse)
        self.body.addWidget(
            text_label(
                "Specify the virtual hard disk to edit. If the disk belongs to a virtual machine "
                "with checkpoints, edit the most recent differencing disk only through the "
                "checkpoint actions: editing a disk others read through can lose their data."
            )
        )
        self.body.addLayout(form)
        self.body.addSpacing(8)
        self.body.addWidget(self.facts)
        self.body.addWidget(self.note)

    def path(self) -> str:
        """The disk as typed."""
        return self.path_edit.text().strip()

    def show_facts(self, facts: str, note: str) -> None:
        """What the disk is, and who uses it."""
        self.facts.setText(facts)
        self.note.setText(note)
        self.note.setVisible(bool(note))


def action_page() -> ChoicePage:
    """Choose Action: one radio button per action, each disabled with its reason when not offered."""
    return ChoicePage("Choose Action", "What do you want to do to the virtual hard disk?", ACTION_CHOICES)


# --- 4. the action's page --------------------------------------------------------------------


def _format_combo(object_name: str) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(object_name)
    for label, fmt in FORMATS:
        combo.addItem(label, fmt)
    return combo


class NewFileFields(QWidget):
    """Format, type and file of a new disk (Convert, Merge to a new disk)."""

    def __init__(self, prefix: str, on_change: object) -> None:
        super().__init__()
        self.format_combo = _format_combo(f"{prefix}FormatCombo")
        self.fixed_radio = radio_button("&Fixed size", f"{prefix}FixedRadio")
        self.dynamic_radio = radio_button("D&ynamically expanding", f"{prefix}DynamicRadio")
        self.dynamic_radio.setChecked(True)
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName(f"{prefix}PathEdit")
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.form.addRow("F&ormat:", self.format_combo)
        types = QVBoxLayout()
        types.addWidget(self.fixed_radio)
        types.addWidget(self.dynamic_radio)
        add_row(self.form, "&Type:", types, self.dynamic_radio)
        add_browse_row(self.form, "Pat&h:", self.path_edit, f"{prefix}BrowseButton", self._browse)
        group = QButtonGroup(self)
        group.addButton(self.fixed_radio)
        group.addButton(self.dynamic_radio)
        group.buttonToggled.connect(on_change)
        self.format_combo.currentIndexChanged.connect(on_change)
        self.format_combo.currentIndexChanged.connect(self._follow_extension)
        self.path_edit.textChanged.connect(on_change)

    def disk_format(self) -> str:
        """The chosen format (qemu-img name)."""
        return str(self.format_combo.currentData())

    def disk_type(self) -> DiskType:
        """Fixed or dynamic."""
        return DiskType.FIXED if self.fixed_radio.isChecked() else DiskType.DYNAMIC

    def path(self) -> str:
        """The new file as typed."""
        return self.path_edit.text().strip()

    def suggest(self, source: str, fmt: str) -> None:
        """Start from the source's format and a free-looking name beside it (until edited)."""
        self.format_combo.setCurrentIndex(max(self.format_combo.findData(fmt), 0))
        stem = source.rsplit(".", 1)[0] if "." in source.rsplit("/", 1)[-1] else source
        self.path_edit.setText(f"{stem}-new{limits.extension_for(self.disk_format())}")

    def _follow_extension(self) -> None:
        path = self.path()
        for _label, fmt in FORMATS:
            extension = limits.extension_for(fmt)
            if path.endswith(extension):
                self.path_edit.setText(path[: -len(extension)] + limits.extension_for(self.disk_format()))
                return

    def _browse(self) -> None:
        path = FileDialogs.choose_new_file(self, "Save As", self.path_edit.text(), DISK_FILTERS)
        if path:
            self.path_edit.setText(path)


class ActionPage(ProblemPage):
    """The fields of the chosen action (one stacked page each)."""

    def __init__(self) -> None:
        super().__init__(*ACTION_TITLES[EditAction.COMPACT])
        self.stack = QStackedWidget()
        self.compact_text = text_label("", "compactText")
        self.convert_fields = NewFileFields("convert", self.notify)
        self.size_note = text_label("", "currentSizeLabel")
        self.size_edit = size_edit("newSizeEdit", "")
        self.size_edit.textChanged.connect(self.notify)
        self.size_limit = QLabel()
        self.size_limit.setObjectName("sizeLimitLabel")
        self.merge_parent_radio = radio_button("To the &parent virtual hard disk:", "mergeParentRadio")
        self.merge_new_radio = radio_button("To a &new virtual hard disk", "mergeNewRadio")
        self.merge_parent_radio.setChecked(True)
        self.merge_parent_label = text_label("", "mergeParentLabel")
        self.merge_fields = NewFileFields("merge", self.notify)
        self.reconnect_text = text_label("", "reconnectText")
        self.parent_edit = QLineEdit()
        self.parent_edit.setObjectName("newParentEdit")
        self.parent_edit.textChanged.connect(self.notify)
        self.ignore_id_check = QCheckBox("&Ignore ID mismatch")
        self.ignore_id_check.setObjectName("ignoreIdCheck")
        self.ignore_id_check.toggled.connect(self.notify)
        self._pages: dict[EditAction, QWidget] = {}
        self._build()
        self.body.addWidget(self.stack)
        self.show_action(EditAction.COMPACT)

    def _page(self, actions: tuple[EditAction, ...], *widgets: QWidget) -> QVBoxLayout:
        page = QWidget()
        page.setObjectName(f"{actions[0].name.lower()}Fields")
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            layout.addWidget(widget)
        layout.addStretch(1)
        self.stack.addWidget(page)
        for action in actions:
            self._pages[action] = page
        return layout

    def _build(self) -> None:
        self._page((EditAction.COMPACT,), self.compact_text)
        self._page((EditAction.CONVERT,), self.convert_fields)
        resize = self._page((EditAction.EXPAND, EditAction.SHRINK), self.size_note)
        size_form = QFormLayout()
        add_row(size_form, "&New size:", with_unit(self.size_edit, "GB", self.size_limit), self.size_edit)
        resize.insertLayout(1, size_form)
        merge = self._page((EditAction.MERGE,), self.merge_parent_radio, self.merge_parent_label)
        self.merge_parent_label.setContentsMargins(INDENT, 0, 0, 6)
        merge.insertWidget(2, self.merge_new_radio)
        self.merge_form = indented_form()
        self.merge_form.addRow(self.merge_fields)
        merge.insertLayout(3, self.merge_form)
        group = QButtonGroup(self)
        group.addButton(self.merge_parent_radio)
        group.addButton(self.merge_new_radio)
        group.buttonToggled.connect(self._merge_toggled)
        self._merge_toggled()
        reconnect = self._page((EditAction.RECONNECT,), self.reconnect_text)
        parent_form = QFormLayout()
        parent_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        browse = partial(browse_disk_file, self, self.parent_edit)
        add_browse_row(parent_form, "&Parent:", self.parent_edit, "newParentBrowseButton", browse)
        parent_form.addRow("", self.ignore_id_check)
        reconnect.insertLayout(1, parent_form)

    def show_action(self, action: EditAction) -> None:
        """Show the title and fields of ``action``."""
        title, subtitle = ACTION_TITLES[action]
        if self.title() != title or self.subTitle() != subtitle:
            self.setTitle(title)
            self.setSubTitle(subtitle)
        self.stack.setCurrentWidget(self._pages[action])

    def merge_to_parent(self) -> bool:
        """Merge into the parent (else into a new disk)."""
        return self.merge_parent_radio.isChecked()

    def _merge_toggled(self, *_args: object) -> None:
        set_form_enabled(self.merge_form, self.merge_new_radio.isChecked())
        self.changed.emit()
