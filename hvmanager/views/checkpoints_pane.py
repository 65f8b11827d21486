"""The Checkpoints pane under the VM list.

The checkpoint tree itself arrives with the checkpoint feature; until then the pane says what
Hyper-V Manager says for a VM without checkpoints.
"""

from __future__ import annotations

from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout, QWidget


class CheckpointsPane(QGroupBox):
    """Checkpoints of the selected VM."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Checkpoints", parent)
        self.setObjectName("checkpointsPane")
        layout = QVBoxLayout(self)
        self.message = QLabel()
        self.message.setObjectName("checkpointsMessage")
        self.message.setStyleSheet("color: #5a5a5a;")
        layout.addWidget(self.message)
        layout.addStretch(1)
        self.show_vm(None)

    def show_vm(self, name: str | None) -> None:
        """Show the checkpoints of VM ``name`` (None: nothing selected)."""
        if name is None:
            self.message.setText("")
        else:
            self.message.setText("The selected virtual machine has no checkpoints.")
