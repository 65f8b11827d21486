"""The checkpoint dialogs of the main window: Apply (Hyper-V's three choices), Revert, Delete
(with the space a merge may need) and the read-only Settings of a checkpoint.

Like every dialog of the main window they are window-modal and opened with ``open()``; the caller
connects to ``accepted`` (or ``choice_made``).
"""

from __future__ import annotations

import enum

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractButton,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.checkpoints import MergeEstimate
from hvmanager.backend.formatting import format_bytes, format_memory
from hvmanager.backend.models import VmConfig
from hvmanager.ui import dialogs

APPLY_TITLE = "Apply Checkpoint"
APPLY_TEXT = (
    "Are you sure you want to apply the selected checkpoint? Your current virtual machine state will be lost."
)
REVERT_TITLE = "Revert Virtual Machine"
DELETE_TEXT = "Are you sure you want to delete the selected checkpoint?"
DELETE_SUBTREE_TEXT = (
    "Are you sure you want to delete the selected checkpoint and all its subsequent checkpoints?"
)


class ApplyChoice(enum.Enum):
    """What the user chose in the Apply Checkpoint dialog."""

    TAKE_AND_APPLY = "Take Checkpoint and Apply"
    APPLY = "Apply"
    CANCEL = "Cancel"


class ApplyCheckpointDialog(QMessageBox):
    """Hyper-V's question before applying: take a checkpoint of the current state first, apply
    at once, or cancel. ``choice_made`` carries the ``ApplyChoice`` (also on Cancel)."""

    choice_made = Signal(object)

    def __init__(self, checkpoint_name: str, parent: QWidget | None = None) -> None:
        super().__init__(
            QMessageBox.Icon.Question, APPLY_TITLE, APPLY_TEXT, QMessageBox.StandardButton.NoButton, parent
        )
        self.setObjectName("applyCheckpointDialog")
        self.setInformativeText(f"Checkpoint: {checkpoint_name}")
        roles = {
            ApplyChoice.TAKE_AND_APPLY: (QMessageBox.ButtonRole.AcceptRole, "takeAndApplyButton"),
            ApplyChoice.APPLY: (QMessageBox.ButtonRole.AcceptRole, "applyButton"),
            ApplyChoice.CANCEL: (QMessageBox.ButtonRole.RejectRole, "cancelButton"),
        }
        self.choice_buttons: dict[ApplyChoice, QPushButton] = {}
        for choice, (role, name) in roles.items():
            button = self.addButton(choice.value, role)
            button.setObjectName(name)
            self.choice_buttons[choice] = button
        self.setDefaultButton(self.choice_buttons[ApplyChoice.TAKE_AND_APPLY])
        self.setEscapeButton(self.choice_buttons[ApplyChoice.CANCEL])
        self.buttonClicked.connect(self._on_clicked)

    def _on_clicked(self, button: QAbstractButton) -> None:
        chosen = [
            c for c, candidate in self.choice_buttons.items() if candidate.objectName() == button.objectName()
        ]
        self.choice_made.emit(chosen[0] if chosen else ApplyChoice.CANCEL)


def confirm_revert(parent: QWidget, vm_name: str, checkpoint_name: str) -> QMessageBox:
    """Revert Virtual Machine: Revert / Cancel (opened; connect to ``accepted``)."""
    text = (
        f"Are you sure you want to revert '{vm_name}' to the checkpoint '{checkpoint_name}'? "
        "If you revert, the current state will be lost."
    )
    return dialogs.confirm(parent, REVERT_TITLE, text, "Revert")


class DeleteCheckpointDialog(QDialog):
    """Delete Checkpoint (or Subtree): the question, and the space the merge may need against what
    is free, with a warning when it may not be enough."""

    def __init__(
        self, checkpoint_name: str, subtree: bool, estimate: MergeEstimate, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Delete Checkpoint Subtree" if subtree else "Delete Checkpoint")
        self.setObjectName("deleteCheckpointDialog")
        layout = QVBoxLayout(self)
        self.question = QLabel(DELETE_SUBTREE_TEXT if subtree else DELETE_TEXT)
        self.question.setObjectName("deleteQuestion")
        self.question.setWordWrap(True)
        layout.addWidget(self.question)
        name = QLabel(f"Checkpoint: {checkpoint_name}")
        name.setWordWrap(True)
        layout.addWidget(name)
        self.space = QLabel(space_text(estimate))
        self.space.setObjectName("mergeSpaceLabel")
        self.space.setWordWrap(True)
        layout.addWidget(self.space)
        self.warning = QLabel(space_warning(estimate))
        self.warning.setObjectName("mergeSpaceWarning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b3261e;")
        self.warning.setVisible(not estimate.enough)
        layout.addWidget(self.warning)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Delete")
        ok.setObjectName("okButton")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def space_text(estimate: MergeEstimate) -> str:
    """What merging the deleted checkpoints' data may need, and what is free where it goes."""
    if not estimate.folder or not estimate.needed_bytes:
        return "No merge is needed: the checkpoint's files are deleted or kept for other branches."
    return (
        f"Merging may need up to {format_bytes(estimate.needed_bytes)} of free space in "
        f"{estimate.folder}; {format_bytes(estimate.free_bytes)} is free."
    )


def space_warning(estimate: MergeEstimate) -> str:
    """The warning shown when the merge may not fit (empty when it does)."""
    if estimate.enough:
        return ""
    return (
        "There may not be enough free space for the merge: it could fail part-way (nothing is lost; "
        "the checkpoint then stays). Free some space first."
    )


class CheckpointSettingsDialog(QDialog):
    """The configuration a checkpoint captured, read-only (Settings... on a checkpoint)."""

    def __init__(self, checkpoint_name: str, config: VmConfig, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Settings for {checkpoint_name}")
        self.setObjectName("checkpointSettingsDialog")
        layout = QVBoxLayout(self)
        note = QLabel(
            "The configuration saved with this checkpoint. It is read-only: "
            "applying the checkpoint restores it."
        )
        note.setWordWrap(True)
        layout.addWidget(note)
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        for key, title, text in settings_rows(config):
            label = QLabel(text)
            label.setObjectName(f"{key}Value")
            label.setWordWrap(True)
            self.values[key] = label
            form.addRow(f"{title}:", label)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def settings_rows(config: VmConfig) -> list[tuple[str, str, str]]:
    """(key, title, text) of each line of the read-only settings."""
    memory = config.memory
    memory_text = format_memory(memory.startup_mib)
    if memory.dynamic:
        memory_text += (
            f" (dynamic: {format_memory(memory.minimum_mib)} to {format_memory(memory.maximum_mib)})"
        )
    firmware = "UEFI" if config.firmware == "efi" else "BIOS"
    generation = f"{config.generation} ({firmware})" if config.generation else f"Unknown ({firmware})"
    disks = [
        f"{disk.target} ({disk.bus}): {disk.path or 'no media'}"
        + (f" [{disk.format}]" if disk.format else "")
        for disk in config.disks
    ]
    nics = [f"{nic.connected_to} ({nic.mac})" for nic in config.nics]
    return [
        ("generation", "Generation", generation),
        ("memory", "Memory", memory_text),
        ("processors", "Processors", str(config.processors)),
        ("disks", "Drives", "\n".join(disks) or "None"),
        ("nics", "Network adapters", "\n".join(nics) or "None"),
        ("notes", "Notes", config.notes or "None"),
    ]
