"""The Actions pane on the right: a block for the server and one for the selected VM, or for the
selected checkpoint in its place.

Each entry is a flat button bound to a ``QAction``, so enabling, text and visibility follow the
action itself (the same actions live in the menus, the toolbar and the context menu).
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

_HEADER_STYLE = "background: #dde7f2; border-bottom: 1px solid #b6c6d8; padding: 3px 6px; font-weight: 600;"


class _ActionButton(QToolButton):
    """A link-like entry that hides itself when its action is hidden."""

    def __init__(self, action: QAction) -> None:
        super().__init__()
        self.setDefaultAction(action)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setAutoRaise(True)
        self.setIconSize(QSize(16, 16))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setStyleSheet(
            "QToolButton { text-align: left; padding: 2px 6px; border: none; }"
            "QToolButton:hover:enabled { background: #e5f1fb; }"
        )
        if action.menu() is not None:
            self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        action.changed.connect(self._follow_action)
        self._follow_action()

    def _follow_action(self) -> None:
        self.setVisible(self.defaultAction().isVisible())


class ActionsBlock(QWidget):
    """A titled list of actions."""

    def __init__(self, object_name: str) -> None:
        super().__init__()
        self.setObjectName(object_name)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.setSpacing(0)
        self.header = QLabel()
        self.header.setObjectName(f"{object_name}Title")
        self.header.setStyleSheet(_HEADER_STYLE)
        layout.addWidget(self.header)
        self._entries = QVBoxLayout()
        self._entries.setSpacing(0)
        layout.addLayout(self._entries)

    def set_actions(self, title: str, actions: list[QAction | None]) -> None:
        """Show ``actions`` (None is a separator) under ``title``."""
        self.header.setText(title)
        while self._entries.count():
            item = self._entries.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        for action in actions:
            if action is None:
                line = QFrame()
                line.setFrameShape(QFrame.Shape.HLine)
                line.setStyleSheet("color: #d0d7de;")
                self._entries.addWidget(line)
            else:
                self._entries.addWidget(_ActionButton(action))

    def buttons(self) -> list[QToolButton]:
        """The entries (for tests)."""
        return self.findChildren(QToolButton)


class ActionsPane(QWidget):
    """The right-hand pane titled "Actions"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("actionsPane")
        self.setMinimumWidth(210)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        title = QLabel("Actions")
        title.setStyleSheet("background: #c7d7ea; padding: 4px 6px; font-weight: 700;")
        layout.addWidget(title)
        self.server_block = ActionsBlock("serverActions")
        self.vm_block = ActionsBlock("vmActions")
        self.checkpoint_block = ActionsBlock("checkpointActions")
        layout.addWidget(self.server_block)
        layout.addWidget(self.vm_block)
        layout.addWidget(self.checkpoint_block)
        layout.addStretch(1)
        self._vm_selected = False
        self._checkpoint_selected = False
        self._follow_selection()

    def show_vm_block(self, visible: bool) -> None:
        """Show or hide the VM block (hidden when no VM is selected)."""
        self._vm_selected = visible
        self._follow_selection()

    def show_checkpoint_block(self, title: str | None) -> None:
        """Show the block of the selected checkpoint (titled with its name) in place of the VM's;
        None goes back to the VM block."""
        self._checkpoint_selected = title is not None
        if title is not None:
            self.checkpoint_block.header.setText(title)
        self._follow_selection()

    def _follow_selection(self) -> None:
        checkpoint = self._vm_selected and self._checkpoint_selected
        self.vm_block.setVisible(self._vm_selected and not checkpoint)
        self.checkpoint_block.setVisible(checkpoint)
