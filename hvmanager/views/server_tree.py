"""The navigation tree: "Hyper-V Manager" and one node per connected server."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QTreeWidget, QTreeWidgetItem, QWidget

_URI_ROLE = Qt.ItemDataRole.UserRole + 1


class ServerTree(QTreeWidget):
    """Servers under a root node; emits the selected server's URI ("" for the root)."""

    server_selected = Signal(str)

    def __init__(self, root_icon: QIcon, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serverTree")
        self.setHeaderHidden(True)
        self.setMinimumWidth(170)
        self.root = QTreeWidgetItem(["Hyper-V Manager"])
        self.root.setIcon(0, root_icon)
        self.root.setData(0, _URI_ROLE, "")
        self.addTopLevelItem(self.root)
        self.root.setExpanded(True)
        self.currentItemChanged.connect(self._on_current_changed)

    def _item(self, uri: str) -> QTreeWidgetItem | None:
        for row in range(self.root.childCount()):
            child = self.root.child(row)
            if child is not None and child.data(0, _URI_ROLE) == uri:
                return child
        return None

    def add_server(self, uri: str, title: str, icon: QIcon) -> None:
        """Add a server node (or update it when it exists)."""
        item = self._item(uri)
        if item is None:
            item = QTreeWidgetItem([title])
            item.setData(0, _URI_ROLE, uri)
            self.root.addChild(item)
        self.update_server(uri, title, icon, "")

    def update_server(self, uri: str, title: str, icon: QIcon, tooltip: str) -> None:
        """Change a server node's title, icon and tooltip."""
        item = self._item(uri)
        if item is not None:
            item.setText(0, title)
            item.setIcon(0, icon)
            item.setToolTip(0, tooltip or uri)

    def remove_server(self, uri: str) -> None:
        """Remove a server node."""
        item = self._item(uri)
        if item is not None:
            self.root.removeChild(item)

    def select_server(self, uri: str) -> None:
        """Make a server the current node."""
        item = self._item(uri)
        if item is not None:
            self.setCurrentItem(item)

    def current_uri(self) -> str:
        """The selected server's URI, or "" when the root (or nothing) is selected."""
        item = self.currentItem()
        return str(item.data(0, _URI_ROLE)) if item is not None else ""

    def uris(self) -> list[str]:
        """Every server, in tree order."""
        items = [self.root.child(row) for row in range(self.root.childCount())]
        return [str(item.data(0, _URI_ROLE)) for item in items if item is not None]

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        self.server_selected.emit(str(current.data(0, _URI_ROLE)) if current is not None else "")
