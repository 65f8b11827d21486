"""Settings ▸ Management ▸ Checkpoints: enable checkpoints, production or standard ones (with
or without the fall-back to standard), and the folder for their configuration and memory, which
Hyper-V lets change only while the VM has no checkpoints.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import vmsettings_rules as vmsettings
from hvmanager.backend.checkpoint_tree import CheckpointType
from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.ui.settings_pages import SettingsPage, indented, wrapped_label


class CheckpointsPage(SettingsPage):
    """Checkpoints: on or off, production or standard, and where their files go.

    Hyper-V's four checkpoint types map onto the widgets: DISABLED is "Enable checkpoints"
    unchecked; PRODUCTION and PRODUCTION_ONLY are "Production checkpoints" with the fall-back box
    checked or not; STANDARD is "Standard checkpoints". The file location is editable only while
    the VM has no checkpoints; empty means the VM's own Snapshots folder (shown greyed).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Checkpoints",
            "You can configure checkpoint options for this virtual machine.",
            parent,
        )
        self._default_folder = ""
        self.enabled = QCheckBox("Enable checkpoints")
        self.enabled.setObjectName("checkpointsEnabledCheck")
        self.type_box = QGroupBox("Checkpoint Type")
        self.type_box.setObjectName("checkpointTypeBox")
        self.production = QRadioButton("Production checkpoints")
        self.production.setObjectName("productionCheckpointsRadio")
        self.fallback = QCheckBox(
            "Create standard checkpoints if it's not possible to create a production checkpoint"
        )
        self.fallback.setObjectName("standardFallbackCheck")
        self.standard = QRadioButton("Standard checkpoints")
        self.standard.setObjectName("standardCheckpointsRadio")
        self.kinds = QButtonGroup(self)
        self.kinds.addButton(self.production)
        self.kinds.addButton(self.standard)
        self.location = QLineEdit()
        self.location.setObjectName("checkpointLocationEdit")
        self.browse = QPushButton("Browse...")
        self.browse.setObjectName("checkpointBrowseButton")
        self.browse_dialog: QFileDialog | None = None
        self._build()
        self.enabled.toggled.connect(self._on_edited)
        self.kinds.buttonToggled.connect(self._on_kind_toggled)
        self.fallback.toggled.connect(self._on_edited)
        self.location.textChanged.connect(self.changed)
        self.browse.clicked.connect(self._on_browse)

    def _build(self) -> None:
        self.add(self.enabled)
        types = QVBoxLayout(self.type_box)
        types.addWidget(self.production)
        types.addWidget(
            indented(
                wrapped_label("Disks only, with the guest's file systems frozen by the QEMU guest agent."),
                self.fallback,
            )
        )
        types.addWidget(self.standard)
        types.addWidget(
            indented(wrapped_label("Disks, memory and device state: the VM resumes where it was."))
        )
        self.add(self.type_box)
        location_box = QGroupBox("Checkpoint File Location")
        column = QVBoxLayout(location_box)
        column.addWidget(wrapped_label("Folder for the checkpoints' configuration and memory files:"))
        row = QHBoxLayout()
        row.addWidget(self.location, 1)
        row.addWidget(self.browse)
        column.addLayout(row)
        self.add(location_box)
        self.finish()

    def load(self, policy: CheckpointPolicy, default_folder: str, lock_reason: str | None) -> None:
        """Show a VM's policy; ``lock_reason`` says why the location can't change (None: it can)."""
        self._default_folder = default_folder
        widgets = (self.enabled, self.kinds, self.fallback, self.location)
        blocked = [widget.blockSignals(True) for widget in widgets]
        self.enabled.setChecked(policy.enabled)
        kind = policy.type if policy.enabled else CheckpointPolicy().type
        production = kind in (CheckpointType.PRODUCTION, CheckpointType.PRODUCTION_ONLY)
        (self.production if production else self.standard).setChecked(True)
        self.fallback.setChecked(kind is not CheckpointType.PRODUCTION_ONLY)
        self.location.setText(policy.location)
        for widget, was in zip(widgets, blocked, strict=True):
            widget.blockSignals(was)
        self.location.setPlaceholderText(default_folder)
        self.location.setEnabled(lock_reason is None)
        self.browse.setEnabled(lock_reason is None)
        self.location.setToolTip(lock_reason or "")
        self.note.set_text(lock_reason or "")
        self._update_enabled()

    def policy(self) -> CheckpointPolicy:
        """The policy as shown."""
        location = vmsettings.normalized_location(self.location.text(), self._default_folder)
        if not self.enabled.isChecked():
            kind = CheckpointType.DISABLED
        elif self.standard.isChecked():
            kind = CheckpointType.STANDARD
        elif self.fallback.isChecked():
            kind = CheckpointType.PRODUCTION
        else:
            kind = CheckpointType.PRODUCTION_ONLY
        return CheckpointPolicy(kind, location)

    def _update_enabled(self) -> None:
        self.type_box.setEnabled(self.enabled.isChecked())
        self.fallback.setEnabled(self.production.isChecked())

    def _on_edited(self) -> None:
        self._update_enabled()
        self.changed.emit()

    def _on_kind_toggled(self, _button: QAbstractButton, checked: bool) -> None:
        if checked:
            self._on_edited()

    def _on_browse(self) -> None:
        """A folder picker (Qt's own, so it behaves alike everywhere and tests can drive it)."""
        start = self.location.text().strip() or self._default_folder
        dialog = QFileDialog(self, "Checkpoint File Location", start)
        dialog.setObjectName("checkpointLocationDialog")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.fileSelected.connect(self.location.setText)
        dialog.open()
        self.browse_dialog = dialog
