"""The Checkpoints pane's item model over pure ``CheckpointTree`` objects: the model tester watches
every change, branches and the Now row land where Hyper-V shows them, and re-reads change rows in
place (no resets; nothing at all when nothing changed)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QIcon, QPixmap

from hvmanager.backend.checkpoint_tree import NOW, Checkpoint, CheckpointTree, Image
from hvmanager.views.checkpoint_tree_model import (
    CheckpointColumn,
    CheckpointRole,
    CheckpointTreeModel,
    IconKind,
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _checkpoint(cid: str, parent: str | None, minute: int, memory: bool = False, **kw: Any) -> Checkpoint:
    return Checkpoint(
        id=cid,
        name=kw.pop("name", f"cp {cid}"),
        parent=parent,
        created=T0 + timedelta(minutes=minute),
        vm_state="Running" if memory else "Off",
        production=kw.pop("production", False),
        memory=memory,
        images={"hda": Image(f"/vm/disk_{cid}.qcow2", None)},
        **kw,
    )


def _tree(*checkpoints: Checkpoint, now: str | None) -> CheckpointTree:
    return CheckpointTree({c.id: c for c in checkpoints}, now, {"hda": Image("/vm/disk_now.qcow2", "x")})


# a ─┬─ b ─── c
#    └─ d ─── Now        (a branch: d was taken after applying a)
A = _checkpoint("a", None, 0)
B = _checkpoint("b", "a", 1, memory=True)
C = _checkpoint("c", "b", 2)
D = _checkpoint("d", "a", 3)
BRANCHED = _tree(A, B, C, D, now="d")


class _Spy:
    """Counts the structural and data signals of a model."""

    def __init__(self, model: CheckpointTreeModel) -> None:
        self.signals: list[str] = []
        for name in (
            "modelReset",
            "rowsInserted",
            "rowsRemoved",
            "rowsMoved",
            "dataChanged",
            "layoutChanged",
        ):
            getattr(model, name).connect(lambda *_a, n=name: self.signals.append(n))


def _icons() -> dict[IconKind, QIcon]:
    icons = {}
    for kind, color in ((IconKind.MEMORY, Qt.GlobalColor.green), (IconKind.DISK, Qt.GlobalColor.gray)):
        pixmap = QPixmap(8, 8)
        pixmap.fill(color)
        icons[kind] = QIcon(pixmap)
    icons[IconKind.NOW] = QIcon(QPixmap(8, 8))
    return icons


@pytest.fixture
def model(qapp: Any) -> CheckpointTreeModel:
    return CheckpointTreeModel(_icons())


def test_branched_tree_passes_the_model_tester_through_every_change(
    model: CheckpointTreeModel, qtmodeltester: Any
) -> None:
    model.set_tree(BRANCHED)
    qtmodeltester.check(model, force_py=True)  # stays connected: checks each change below too
    e = _checkpoint("e", "d", 4, memory=True)
    model.set_tree(_tree(A, B, C, D, e, now="e"))  # take: Now moves under the new one
    model.set_tree(_tree(A, B, C, D, e, now="c"))  # apply c: Now moves to the other branch
    model.set_tree(_tree(A, replace(B, hidden=True), C, D, e, now="c"))  # delete b: c moves up
    model.set_tree(_tree(A, replace(B, name="renamed"), C, D, e, now="c"))  # b back, renamed
    model.set_tree(_tree(A, now="a"))  # delete subtrees
    model.set_tree(CheckpointTree())
    assert model.rowCount() == 0
    model.set_tree(BRANCHED)
    qtmodeltester.check(model, force_py=True)


def test_rows_show_branches_and_now_under_its_checkpoint(model: CheckpointTreeModel) -> None:
    model.set_tree(BRANCHED)
    assert model.outline() == [(0, "a"), (1, "b"), (2, "c"), (1, "d"), (2, NOW)]
    a = model.index(0, 0)
    assert a.data() == "cp a" and model.rowCount(a) == 2
    now = model.index_of(NOW)
    assert now.data() == "Now" and now.data(CheckpointRole.IS_NOW) is True
    assert now.parent().data(CheckpointRole.ID) == "d"
    assert not model.flags(now) & Qt.ItemFlag.ItemIsEditable
    assert model.flags(a) & Qt.ItemFlag.ItemIsEditable


def test_now_is_at_the_top_when_it_derives_from_no_checkpoint(model: CheckpointTreeModel) -> None:
    model.set_tree(_tree(A, B, now=None))  # the first checkpoint was applied away... or deleted
    assert model.outline() == [(0, "a"), (1, "b"), (0, NOW)]


def test_a_tree_without_visible_checkpoints_has_no_rows(model: CheckpointTreeModel) -> None:
    model.set_tree(_tree(replace(A, hidden=True), now="a"))
    assert model.rowCount() == 0 and model.outline() == []


def test_columns_icons_tooltips_and_raw_sort_values(model: CheckpointTreeModel) -> None:
    model.set_tree(BRANCHED)
    b = model.index_of("b")
    created = model.index_of("b", CheckpointColumn.CREATED)
    assert model.headerData(0, Qt.Orientation.Horizontal) == "Name"
    assert model.headerData(1, Qt.Orientation.Horizontal) == "Created"
    assert created.data() == B.created.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert created.data(CheckpointRole.SORT) == B.created.timestamp()
    assert b.data(CheckpointRole.SORT) == "cp b"
    assert b.data(CheckpointRole.CHECKPOINT) == B
    tip = b.data(Qt.ItemDataRole.ToolTipRole)
    assert "with memory" in tip and "Standard" in tip and "Created:" in tip
    assert "disk only" in model.index_of("a").data(Qt.ItemDataRole.ToolTipRole)
    memory_icon = b.data(Qt.ItemDataRole.DecorationRole)
    disk_icon = model.index_of("a").data(Qt.ItemDataRole.DecorationRole)
    assert memory_icon.cacheKey() == _icon_key(model, IconKind.MEMORY)
    assert disk_icon.cacheKey() == _icon_key(model, IconKind.DISK)
    assert model.index_of(NOW, CheckpointColumn.CREATED).data(CheckpointRole.SORT) == float("inf")


def _icon_key(model: CheckpointTreeModel, kind: IconKind) -> int:
    return model._icons[kind].cacheKey()


def test_rereading_the_same_tree_emits_nothing(model: CheckpointTreeModel) -> None:
    model.set_tree(BRANCHED)
    spy = _Spy(model)
    copy = _tree(*(replace(c) for c in (A, B, C, D)), now="d")
    model.set_tree(copy)
    # A merge changes which files a checkpoint owns, not what its row shows.
    merged = _tree(A, replace(B, images={"hda": Image("/vm/other.qcow2", None)}), C, D, now="d")
    model.set_tree(merged)
    assert spy.signals == []


def test_changes_insert_and_remove_rows_in_place(model: CheckpointTreeModel) -> None:
    model.set_tree(BRANCHED)
    spy = _Spy(model)
    kept = QPersistentModelIndex(model.index_of("c"))
    e = _checkpoint("e", "d", 4)
    model.set_tree(_tree(A, B, C, D, e, now="e"))
    assert model.outline() == [(0, "a"), (1, "b"), (2, "c"), (1, "d"), (2, "e"), (3, NOW)]
    assert "modelReset" not in spy.signals and "rowsInserted" in spy.signals
    assert kept.isValid() and kept.data(CheckpointRole.ID) == "c"
    spy.signals.clear()
    model.set_tree(_tree(A, replace(B, name="before upgrade"), C, D, e, now="e"))
    assert spy.signals == ["dataChanged"]
    assert model.index_of("b").data() == "before upgrade"
    spy.signals.clear()
    model.set_tree(_tree(A, B, C, now="a"))  # d and e deleted, Now applied back to a
    assert model.outline() == [(0, "a"), (1, "b"), (2, "c"), (1, NOW)]
    assert "modelReset" not in spy.signals
    assert kept.isValid()


def test_siblings_are_oldest_first_and_now_last(model: CheckpointTreeModel) -> None:
    late = _checkpoint("z", "a", 9)
    model.set_tree(_tree(A, late, B, now="a"))
    assert model.outline() == [(0, "a"), (1, "b"), (1, "z"), (1, NOW)]


def test_inline_rename_is_checked_before_it_is_requested(model: CheckpointTreeModel) -> None:
    model.set_tree(BRANCHED)
    requested: list[tuple[str, str]] = []
    refused: list[str] = []
    model.rename_requested.connect(lambda cid, name: requested.append((cid, name)))
    model.rename_refused.connect(refused.append)
    b = model.index_of("b")
    assert not model.setData(b, "x" * 101)
    assert not model.setData(b, "   ")
    assert refused == [
        "The name is 101 characters long; the limit is 100.",
        "Enter a name for the checkpoint.",
    ]
    assert not model.setData(b, "cp b")  # unchanged: nothing to do
    assert not model.setData(model.index_of(NOW), "Later")
    assert model.setData(b, "y" * 100)
    assert requested == [("b", "y" * 100)]
    assert model.index_of("b").data() == "cp b"  # shown once the tree is read again


def test_invalid_indexes_have_no_data(model: CheckpointTreeModel) -> None:
    model.set_tree(BRANCHED)
    assert model.data(QModelIndex()) is None
    assert model.flags(QModelIndex()) == Qt.ItemFlag.NoItemFlags
    assert not model.index(7, 0).isValid()
    assert not model.parent(model.index(0, 0)).isValid()
