"""The Checkpoints pane under the VM list: the selected VM's checkpoint tree with its "Now" row,
or Hyper-V Manager's sentence for a VM without checkpoints.

The pane only shows what it is given (``set_tree``); reading the tree and acting on it belong to
the application shell, which listens to the signals.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import QItemSelection, QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.checkpoint_tree import Checkpoint, CheckpointTree
from hvmanager.views.checkpoint_tree_model import (
    CheckpointColumn,
    CheckpointRole,
    CheckpointTreeModel,
    IconKind,
)

NO_CHECKPOINTS = "The selected virtual machine has no checkpoints."
_NAME_WIDTH = 300


class CheckpointsPane(QGroupBox):
    """Checkpoints of the selected VM.

    Signals:
        checkpoint_selected(object): the selected Checkpoint, or None (Now or nothing selected).
        context_menu_requested(object, QPoint): right-click on a row: its Checkpoint (None for
            Now) and the global position.
        rename_requested(str id, str name), rename_refused(str message): from the inline editor.
    """

    checkpoint_selected = Signal(object)
    context_menu_requested = Signal(object, QPoint)
    rename_requested = Signal(str, str)
    rename_refused = Signal(str)

    def __init__(self, icons: Mapping[IconKind, QIcon] | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Checkpoints", parent)
        self.setObjectName("checkpointsPane")
        self.model = CheckpointTreeModel(icons, self)
        self.model.rename_requested.connect(self.rename_requested)
        self.model.rename_refused.connect(self.rename_refused)
        self.model.rowsInserted.connect(self._expand_inserted)
        self.tree = self._build_tree()
        self.message = QLabel()
        self.message.setObjectName("checkpointsMessage")
        self.message.setStyleSheet("color: #5a5a5a;")
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.tree, 1)
        self._shown: Checkpoint | None = None
        self.vm_name: str | None = None
        self.set_vm(None)

    def _build_tree(self) -> QTreeView:
        tree = QTreeView()
        tree.setObjectName("checkpointTree")
        tree.setModel(self.model)
        tree.setUniformRowHeights(True)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        tree.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        tree.header().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        tree.header().setStretchLastSection(True)
        tree.setColumnWidth(CheckpointColumn.NAME, _NAME_WIDTH)
        tree.selectionModel().selectionChanged.connect(self._on_selection_changed)
        tree.customContextMenuRequested.connect(self._on_context_menu)
        return tree

    # --- what is shown --------------------------------------------------------------------------

    def set_vm(self, name: str | None) -> None:
        """Show a VM whose tree is still being read (None: no VM selected): an empty pane."""
        self.vm_name = name
        self.model.set_tree(CheckpointTree())
        self.message.setText("")
        self.message.hide()
        self.tree.hide()

    def set_tree(self, tree: CheckpointTree) -> None:
        """Show the VM's tree (rows change in place: selection and expansion stay)."""
        self.model.set_tree(tree)
        empty = not tree.visible()
        self.message.setText(NO_CHECKPOINTS if empty and self.vm_name is not None else "")
        self.message.setVisible(empty)
        self.tree.setVisible(not empty)
        self._announce_selection()

    def _expand_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        self.tree.expand(parent)
        for row in range(first, last + 1):
            self.tree.expand(self.model.index(row, 0, parent))

    # --- selection and editing ------------------------------------------------------------------

    def selected_index(self) -> QModelIndex:
        """The selected row (first column), or an invalid index."""
        rows = self.tree.selectionModel().selectedRows(CheckpointColumn.NAME)
        return rows[0] if rows else QModelIndex()

    def selected_checkpoint(self) -> Checkpoint | None:
        """The selected checkpoint (None when Now or nothing is selected)."""
        index = self.selected_index()
        checkpoint = index.data(CheckpointRole.CHECKPOINT) if index.isValid() else None
        return checkpoint if isinstance(checkpoint, Checkpoint) else None

    def select(self, key: str) -> bool:
        """Select a checkpoint (or ``NOW``) by id; False when it has no row."""
        index = self.model.index_of(key)
        if not index.isValid():
            return False
        self.tree.setCurrentIndex(index)
        return True

    def clear_selection(self) -> None:
        """Select nothing (the user went back to the VM list)."""
        self.tree.clearSelection()

    def edit_selected(self) -> None:
        """Open the inline editor on the selected checkpoint's name."""
        index = self.selected_index()
        if index.isValid() and self.selected_checkpoint() is not None:
            self.tree.setFocus()
            self.tree.edit(index)

    def _on_selection_changed(self, _selected: QItemSelection, _deselected: QItemSelection) -> None:
        self._announce_selection()

    def _announce_selection(self) -> None:
        """Say which checkpoint is selected when that, or what it shows, changed."""
        checkpoint = self.selected_checkpoint()
        if checkpoint != self._shown:
            self._shown = checkpoint
            self.checkpoint_selected.emit(checkpoint)

    def _on_context_menu(self, position: QPoint) -> None:
        index = self.tree.indexAt(position)
        if not index.isValid():
            return
        self.tree.setCurrentIndex(index.siblingAtColumn(CheckpointColumn.NAME))
        global_position = self.tree.viewport().mapToGlobal(position)
        self.context_menu_requested.emit(self.selected_checkpoint(), global_position)
