"""The disk chain window: for each disk of a VM, the files its running state (or a checkpoint)
reads through, from the image written to ("Now") down to the base disk.

Hyper-V Manager hides its AVHDX chains and the space a merge needs; its users asked to see both
(hyperv-manager.md §6, item 4). Each disk is a top-level row with the space all its files take;
under it one row per file: its name (the full path in the tooltip), who owns it (a checkpoint,
"Now", the base disk, or a deleted checkpoint waiting to be merged), its format, the space it
takes on the host and its virtual size. An optional line tells what deleting a checkpoint may
need and what is free.

The window shows plain data (``DiskChain``, ``MergeEstimate``) read off the GUI thread by the
caller (``checkpoint_chain.disk_chains``, ``checkpoints.delete_estimate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.checkpoint_chain import ChainLink, DiskChain
from hvmanager.backend.checkpoint_merge import MergeEstimate
from hvmanager.backend.formatting import format_bytes
from hvmanager.backend.limits import format_for_qemu

COLUMNS = ("File", "Owner", "Format", "Size on disk", "Virtual size")
FILE, OWNER, FORMAT, FILE_SIZE, VIRTUAL_SIZE = range(len(COLUMNS))
BYTES_ROLE = Qt.ItemDataRole.UserRole + 1
"""Item data role of the raw byte counts in the size columns (and the full path in the File column)."""

_WARNING_STYLE = "color: #b3261e;"


def estimate_text(checkpoint: str, estimate: MergeEstimate) -> str:
    """ "Deleting <checkpoint> may need up to X; Y free on <folder>", with a warning when short."""
    if not estimate.needed_bytes:
        return (
            f"Deleting '{checkpoint}' merges nothing now: "
            "its files are deleted or kept for other branches."
        )
    text = (
        f"Deleting '{checkpoint}' may need up to {format_bytes(estimate.needed_bytes)}; "
        f"{format_bytes(estimate.free_bytes)} free on {estimate.folder}."
    )
    if not estimate.enough:
        text += " That is not enough: free some space before deleting it."
    return text


class CheckpointChainDialog(QDialog):
    """The disk chains of a VM (or of one checkpoint), read-only."""

    def __init__(
        self,
        title: str,
        chains: Sequence[DiskChain],
        parent: QWidget | None = None,
        *,
        estimate: tuple[str, MergeEstimate] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("checkpointChainDialog")
        self.setWindowTitle(title)
        self.resize(860, 380)
        self.tree = QTreeWidget()
        self.estimate_label = QLabel()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self._build()
        self._fill(chains)
        self._show_estimate(estimate)

    def _build(self) -> None:
        self.tree.setObjectName("chainTree")
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(FILE, QHeaderView.ResizeMode.Stretch)
        for column in (OWNER, FORMAT, FILE_SIZE, VIRTUAL_SIZE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.estimate_label.setObjectName("mergeEstimateLabel")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setVisible(False)
        self.buttons.button(QDialogButtonBox.StandardButton.Close).setObjectName("closeButton")
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "The files each virtual hard disk reads through, from the one written to first down "
            "to the base disk, and the space they take on this computer."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.estimate_label)
        layout.addWidget(self.buttons)

    def _fill(self, chains: Sequence[DiskChain]) -> None:
        for chain in chains:
            disk = QTreeWidgetItem(self.tree)
            disk.setText(FILE, f"Disk {chain.target}")
            disk.setData(FILE, BYTES_ROLE, chain.target)
            font = QFont(disk.font(FILE))
            font.setBold(True)
            disk.setFont(FILE, font)
            count = len(chain.links)
            disk.setText(OWNER, f"{count} file{'' if count == 1 else 's'}")
            _set_size(disk, FILE_SIZE, chain.total_size)
            disk.setToolTip(FILE_SIZE, "Space all files of this disk take on the host")
            for link in chain.links:
                _link_item(disk, link)
            disk.setExpanded(True)
        if not chains:
            empty = QTreeWidgetItem(self.tree)
            empty.setText(FILE, "This virtual machine has no virtual hard disk files.")
            empty.setFlags(Qt.ItemFlag.ItemIsEnabled)

    def _show_estimate(self, estimate: tuple[str, MergeEstimate] | None) -> None:
        if estimate is None:
            return
        checkpoint, figures = estimate
        self.estimate_label.setText(estimate_text(checkpoint, figures))
        self.estimate_label.setStyleSheet("" if figures.enough else _WARNING_STYLE)
        self.estimate_label.setVisible(True)


def _link_item(parent: QTreeWidgetItem, link: ChainLink) -> QTreeWidgetItem:
    item = QTreeWidgetItem(parent)
    item.setText(FILE, Path(link.file).name)
    item.setToolTip(FILE, link.file)
    item.setData(FILE, BYTES_ROLE, link.file)
    item.setText(OWNER, link.owner)
    item.setText(FORMAT, format_for_qemu(link.format))
    _set_size(item, FILE_SIZE, link.file_size)
    _set_size(item, VIRTUAL_SIZE, link.virtual_size)
    return item


def _set_size(item: QTreeWidgetItem, column: int, size_bytes: int) -> None:
    item.setText(column, format_bytes(size_bytes))
    item.setData(column, BYTES_ROLE, size_bytes)
    item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
