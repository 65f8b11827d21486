"""The Checkpoints pane's item model: the checkpoints of one VM with their branches, and the "Now"
row under the checkpoint the running state derives from.

A thin adapter over a pure ``CheckpointTree``. ``set_tree`` turns a newly read tree into the few
row removals, moves, insertions and ``dataChanged`` signals that get the rows there, never a
reset: a re-read that changed nothing emits nothing, and selection and expansion survive.

Renaming is inline: ``setData`` checks the name and asks for the rename (``rename_requested``);
the new name shows once the tree is read again, as every change does.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QIcon

from hvmanager.backend.checkpoint_tree import NOW, Checkpoint, CheckpointTree
from hvmanager.backend.formatting import format_created
from hvmanager.backend.limits import checkpoint_name_problem

Index = QModelIndex | QPersistentModelIndex

NOW_TEXT = "Now"
_ROOT = ""  # the key of the invisible root


class CheckpointColumn(enum.IntEnum):
    """The columns: the tree of names, and when each checkpoint was taken."""

    NAME = 0
    CREATED = 1


HEADERS = {CheckpointColumn.NAME: "Name", CheckpointColumn.CREATED: "Created"}


class CheckpointRole(enum.IntEnum):
    """Custom item data roles."""

    ID = Qt.ItemDataRole.UserRole + 1  # the checkpoint id, or NOW for the Now row
    SORT = Qt.ItemDataRole.UserRole + 2  # raw values: name folded, creation as a timestamp
    IS_NOW = Qt.ItemDataRole.UserRole + 3
    CHECKPOINT = Qt.ItemDataRole.UserRole + 4  # the Checkpoint (None on the Now row)


class IconKind(enum.Enum):
    """The icons a view hands to the model (views do not load resources themselves)."""

    MEMORY = "memory"  # a checkpoint with the VM's memory
    DISK = "disk"  # a disk-only checkpoint
    NOW = "now"


# The roles that change when a checkpoint's shown facts change.
_CHANGED_ROLES = [
    Qt.ItemDataRole.DisplayRole,
    Qt.ItemDataRole.EditRole,
    Qt.ItemDataRole.ToolTipRole,
    Qt.ItemDataRole.DecorationRole,
    CheckpointRole.SORT,
    CheckpointRole.CHECKPOINT,
]


@dataclass(eq=False)
class _Node:
    """One row: a checkpoint or Now; ``serial`` is the internal id of its indexes."""

    key: str
    serial: int
    parent: _Node | None
    checkpoint: Checkpoint | None = None
    children: list[_Node] = field(default_factory=list)

    def row(self) -> int:
        """Its row under its parent."""
        assert self.parent is not None
        return self.parent.children.index(self)


def tree_layout(tree: CheckpointTree) -> dict[str, list[str]]:
    """Parent key (``""`` for the top) → the keys of its rows in order: checkpoints oldest first,
    Now last under the checkpoint it derives from. A tree without visible checkpoints has no rows."""
    visible = tree.visible()
    if not visible:
        return {_ROOT: []}
    layout: dict[str, list[str]] = {_ROOT: [], **{c.id: [] for c in visible}}
    for checkpoint in visible:  # oldest first
        layout[tree.visible_parent(checkpoint.id) or _ROOT].append(checkpoint.id)
    layout[tree.now_parent() or _ROOT].append(NOW)
    return layout


def _shown_facts(checkpoint: Checkpoint | None) -> tuple[Any, ...]:
    """What a row shows of a checkpoint (its images may change without the row changing)."""
    if checkpoint is None:
        return ()
    return (
        checkpoint.name,
        checkpoint.created,
        checkpoint.memory,
        checkpoint.production,
        checkpoint.vm_state,
    )


def tooltip(checkpoint: Checkpoint) -> str:
    """The tooltip of a checkpoint row: when, which kind, with memory or not."""
    memory = "with memory" if checkpoint.memory else "disk only"
    return (
        f"{checkpoint.name}\nCreated: {format_created(checkpoint.created)}\n"
        f"{checkpoint.kind} checkpoint, {memory} (the VM was {checkpoint.vm_state.lower()})"
    )


class CheckpointTreeModel(QAbstractItemModel):
    """Rows of checkpoints (a tree) and the Now row.

    Signals:
        rename_requested(str id, str name): a valid new name was typed for a checkpoint.
        rename_refused(str message): the typed name breaks a rule (why, in a sentence).
    """

    rename_requested = Signal(str, str)
    rename_refused = Signal(str)

    def __init__(self, icons: Mapping[IconKind, QIcon] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._icons = dict(icons or {})
        self._serials = itertools.count(1)
        self._root = _Node(_ROOT, 0, None)
        self._nodes: dict[int, _Node] = {}
        self.tree = CheckpointTree()

    # --- Qt interface -------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        """The index of a row under ``parent``."""
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        node = self._node(parent).children[row]
        return self.createIndex(row, column, node.serial)

    @overload
    def parent(self, /) -> QObject | None: ...
    @overload
    def parent(self, child: Index, /) -> QModelIndex: ...
    def parent(self, child: Index | None = None, /) -> QObject | QModelIndex | None:
        """The parent row of ``child`` (without an argument: the QObject parent)."""
        if child is None:
            return QObject.parent(self)
        if not child.isValid():
            return QModelIndex()
        node = self._nodes.get(child.internalId())
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        return self.createIndex(node.parent.row(), 0, node.parent.serial)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Rows under ``parent`` (only the first column has children)."""
        if parent.isValid() and parent.column() != 0:
            return 0
        return len(self._node(parent).children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Name and Created."""
        return len(CheckpointColumn)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        """Column titles."""
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS.get(CheckpointColumn(section)) if 0 <= section < len(CheckpointColumn) else None
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        """Selectable rows; checkpoint names are editable (inline rename)."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        node = self._node(index)
        if node.checkpoint is not None and index.column() == CheckpointColumn.NAME:
            flags |= Qt.ItemFlag.ItemIsEditable
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Names, creation times, icons, tooltips, ids and raw sort values."""
        if not index.isValid():
            return None
        node = self._node(index)
        column = CheckpointColumn(index.column())
        if role == CheckpointRole.ID:
            return node.key
        if role == CheckpointRole.IS_NOW:
            return node.checkpoint is None
        if role == CheckpointRole.CHECKPOINT:
            return node.checkpoint
        if node.checkpoint is None:
            return self._now_data(column, role)
        return self._checkpoint_data(node.checkpoint, column, role)

    def _now_data(self, column: CheckpointColumn, role: int) -> Any:
        if role == Qt.ItemDataRole.DisplayRole:
            return NOW_TEXT if column is CheckpointColumn.NAME else ""
        if role == Qt.ItemDataRole.DecorationRole and column is CheckpointColumn.NAME:
            return self._icons.get(IconKind.NOW)
        if role == Qt.ItemDataRole.ToolTipRole:
            return "The current state of the virtual machine"
        if role == CheckpointRole.SORT:  # Now sorts after every checkpoint
            return NOW_TEXT.casefold() if column is CheckpointColumn.NAME else float("inf")
        return None

    def _checkpoint_data(self, checkpoint: Checkpoint, column: CheckpointColumn, role: int) -> Any:
        name_column = column is CheckpointColumn.NAME
        if role == Qt.ItemDataRole.DisplayRole:
            return checkpoint.name if name_column else format_created(checkpoint.created)
        if role == Qt.ItemDataRole.EditRole:
            return checkpoint.name if name_column else None
        if role == Qt.ItemDataRole.DecorationRole and name_column:
            return self._icons.get(IconKind.MEMORY if checkpoint.memory else IconKind.DISK)
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(checkpoint)
        if role == CheckpointRole.SORT:
            return checkpoint.name.casefold() if name_column else checkpoint.created.timestamp()
        return None

    def setData(self, index: Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """An inline rename: refused with the reason, or requested (the tree re-read shows it)."""
        if not index.isValid() or role != Qt.ItemDataRole.EditRole or index.column() != CheckpointColumn.NAME:
            return False
        checkpoint = self._node(index).checkpoint
        name = str(value)
        if checkpoint is None or name == checkpoint.name:
            return False
        problem = checkpoint_name_problem(name)
        if problem:
            self.rename_refused.emit(problem)
            return False
        self.rename_requested.emit(checkpoint.id, name)
        return True

    # --- lookups --------------------------------------------------------------------------------

    def _node(self, index: Index) -> _Node:
        if not index.isValid():
            return self._root
        return self._nodes[index.internalId()]

    def index_of(self, key: str, column: int = 0) -> QModelIndex:
        """The index of a checkpoint (or of ``NOW``); invalid when it has no row."""
        for node in self._nodes.values():
            if node.key == key:
                return self.createIndex(node.row(), column, node.serial)
        return QModelIndex()

    def _index_of_node(self, node: _Node) -> QModelIndex:
        if node is self._root:
            return QModelIndex()
        return self.createIndex(node.row(), 0, node.serial)

    # --- updates --------------------------------------------------------------------------------

    def set_tree(self, tree: CheckpointTree) -> None:
        """Show ``tree``: remove, move and insert only the rows that differ, then refresh changed rows."""
        layout = tree_layout(tree)
        parent_of = {child: parent for parent, children in layout.items() for child in children}
        self._remove_displaced(self._root, parent_of)
        self._place_children(self._root, layout, tree)
        self._refresh_rows(tree)
        self.tree = tree

    def _remove_displaced(self, node: _Node, parent_of: dict[str, str]) -> None:
        """Remove the rows (with everything under them) that are gone or hang elsewhere now."""
        for child in reversed(list(node.children)):
            if parent_of.get(child.key) != node.key:
                row = node.children.index(child)
                self.beginRemoveRows(self._index_of_node(node), row, row)
                del node.children[row]
                self._forget(child)
                self.endRemoveRows()
            else:
                self._remove_displaced(child, parent_of)

    def _forget(self, node: _Node) -> None:
        self._nodes.pop(node.serial, None)
        for child in node.children:
            self._forget(child)

    def _place_children(self, node: _Node, layout: dict[str, list[str]], tree: CheckpointTree) -> None:
        """Make ``node``'s rows those of ``layout``, in order, then do the same one level down."""
        parent_index = self._index_of_node(node)
        for position, key in enumerate(layout.get(node.key, [])):
            keys = [child.key for child in node.children]
            if position < len(keys) and keys[position] == key:
                continue
            if key in keys:  # present further down: move it up (rows before it already match)
                source = keys.index(key)
                self.beginMoveRows(parent_index, source, source, parent_index, position)
                node.children.insert(position, node.children.pop(source))
                self.endMoveRows()
                continue
            self.beginInsertRows(parent_index, position, position)
            child = _Node(key, next(self._serials), node, None if key == NOW else tree.get(key))
            node.children.insert(position, child)
            self._nodes[child.serial] = child
            self.endInsertRows()
        for child in node.children:
            self._place_children(child, layout, tree)

    def _refresh_rows(self, tree: CheckpointTree) -> None:
        """One ``dataChanged`` per row whose shown facts changed (a rename, say)."""
        for node in list(self._nodes.values()):
            if node.checkpoint is None:
                continue
            new = tree.get(node.key)
            changed = _shown_facts(new) != _shown_facts(node.checkpoint)
            node.checkpoint = new
            if changed:
                row = node.row()
                self.dataChanged.emit(
                    self.createIndex(row, 0, node.serial),
                    self.createIndex(row, len(CheckpointColumn) - 1, node.serial),
                    _CHANGED_ROLES,
                )

    # --- reading the rows (for views and tests) -------------------------------------------------

    def outline(self) -> list[tuple[int, str]]:
        """Every row depth-first as (depth, key): what a fully expanded view shows."""
        rows: list[tuple[int, str]] = []

        def walk(node: _Node, depth: int) -> None:
            for child in node.children:
                rows.append((depth, child.key))
                walk(child, depth + 1)

        walk(self._root, 0)
        return rows
