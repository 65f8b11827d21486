"""The Virtual Switch Manager's list and pages: what the dialog shows and how edits are checked
(``switch_manager_dialog`` adds applying them).

On the left, **Virtual Switches** with *New virtual network switch* and every switch of the server
(an icon for its type, the type or the host adapter under its name), and **Global Network
Settings** with *MAC Address Range*; on the right, the selected entry's page. The dialog reads the
server's switches, its host adapters and the MAC address range in the background when it opens.

What a switch page shows is checked by the back end as it is typed (``switch_problems``, off the GUI
thread), together with the dialog's own check that no two switches of the list share a name; the
problems are shown under the pages, and OK and Apply stay disabled while there are any.
"""

from __future__ import annotations

import functools

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QStackedWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import HostAdapter, SwitchInfo, SwitchSpec, SwitchType
from hvmanager.controllers.network import NetworkController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.resources import icon
from hvmanager.ui.settings_tree import PAGE_ROLE, SUMMARY_ROLE, SettingsTree, tree_beside_pages
from hvmanager.ui.switch_manager_apply import SwitchEntry
from hvmanager.ui.switch_manager_pages import (
    TYPE_ICONS,
    MacRangePage,
    NewSwitchPage,
    type_summary,
    unique_new_name,
)
from hvmanager.ui.switch_properties_page import SwitchPropertiesPage

_RED = "color: #b3261e;"
_GREY = "color: #5f6b7a;"


class SwitchListDialog(QDialog):
    """The switches of one server, their pages and the checks of what is typed."""

    def __init__(
        self, controller: NetworkController, server_title: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("switchManagerDialog")
        self.setWindowTitle(f"Virtual Switch Manager for {server_title}")
        self.resize(900, 700)
        self.controller = controller
        self.entries: list[SwitchEntry] = []
        self.adapters: list[HostAdapter] = []
        self._loaded = self._busy = self._closed = False
        self.tree = SettingsTree()
        self.tree.setObjectName("switchTree")
        self.tree.setFixedWidth(280)
        self.stack = QStackedWidget()
        self.new_page = NewSwitchPage()
        self.mac_page = MacRangePage()
        self.problem = _label("problemLabel", _RED)
        self.message = _label("messageLabel", _RED)
        self.buttons = QDialogButtonBox()
        self.ok_button = self._button("OK", "okButton", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self._button("Cancel", "cancelButton", QDialogButtonBox.ButtonRole.RejectRole)
        self.apply_button = self._button("Apply", "applyButton", QDialogButtonBox.ButtonRole.ApplyRole)
        self.ok_button.setDefault(True)
        self._build()
        self._say("Reading the virtual switches...", failure=False)
        self._refresh()
        spawn(self._load())

    # --- building ------------------------------------------------------------------------------

    def _button(self, text: str, name: str, role: QDialogButtonBox.ButtonRole) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAutoDefault(False)
        self.buttons.addButton(button, role)
        return button

    def _build(self) -> None:
        self.switch_group = self.tree.add_group("Virtual Switches")
        self.new_item = self._entry_item(self.switch_group, self.new_page, "virtual-switch")
        settings_group = self.tree.add_group("Global Network Settings")
        self.mac_item = self._entry_item(settings_group, self.mac_page, "network-adapter", "")
        for group in (self.switch_group, settings_group):
            group.setExpanded(True)
        layout = QVBoxLayout(self)
        layout.addLayout(tree_beside_pages(self.tree, self.stack), 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.tree.currentItemChanged.connect(self._on_current_item)
        self.tree.setCurrentItem(self.new_item)
        self.new_page.create_requested.connect(self._create)
        self.mac_page.changed.connect(self._refresh)
        self.cancel_button.clicked.connect(self.reject)

    def _entry_item(
        self, parent: QTreeWidgetItem, page: QWidget, icon_name: str, summary: str | None = None
    ) -> QTreeWidgetItem:
        self.stack.addWidget(page)
        item = self.tree.add_entry(parent, getattr(page, "title", ""), page, summary)
        item.setIcon(0, icon(icon_name))
        return item

    # --- state for callers and tests -----------------------------------------------------------

    def loaded(self) -> bool:
        """Whether the server's switches have been read."""
        return self._loaded

    def busy(self) -> bool:
        """Whether changes are being applied."""
        return self._busy

    def checked(self) -> bool:
        """Whether the back end has checked what every pending switch page shows now."""
        return self._loaded and all(entry.checked() for entry in self.entries if entry.pending())

    def pending(self) -> bool:
        """Whether Apply has anything to do."""
        return any(entry.pending() for entry in self.entries) or self.mac_page.wanted() is not None

    # --- loading -------------------------------------------------------------------------------

    async def _load(self, select: str | None = None) -> None:
        try:
            infos = await self.controller.switches()
            configured = await self.controller.mac_range()
            default = await self.controller.default_mac_range()
        except HvError as exc:
            self._say(f"The virtual switches could not be read: {exc}")
            return
        note = ""
        try:
            self.adapters = await self.controller.host_adapters()
        except HvError as exc:
            self.adapters, note = [], f"The host's network adapters could not be listed: {exc}"
        if self._closed:
            return
        self._set_entries(infos)
        self.mac_page.load(configured, default)
        self._loaded = True
        self._say(note)
        self._select(next((e.item for e in self.entries if e.current_name == select), None))
        self._refresh()

    def _set_entries(self, infos: list[SwitchInfo]) -> None:
        """Show ``infos`` in place of every entry (edits are dropped: they were applied)."""
        shown = self.stack.currentWidget()
        blocked = self.tree.blockSignals(True)
        for entry in self.entries:
            self._drop(entry)
        self.entries = []
        for info in infos:
            self._add_entry(info.spec, info)
        self.tree.blockSignals(blocked)
        self.tree.setCurrentItem(self.mac_item if shown is self.mac_page else self.new_item)
        self.stack.setCurrentWidget(self.mac_page if shown is self.mac_page else self.new_page)

    def _drop(self, entry: SwitchEntry) -> None:
        """Forget an entry: its tree item and its page go."""
        entry.dropped = True
        if entry.item is not None:
            self.switch_group.removeChild(entry.item)
            entry.item = None
        self.stack.removeWidget(entry.page)
        entry.page.deleteLater()

    def _add_entry(self, spec: SwitchSpec, original: SwitchInfo | None) -> SwitchEntry:
        page = SwitchPropertiesPage()
        page.load(spec, self.adapters, new=original is None, managed=original is None or original.managed)
        entry = SwitchEntry(page, original, page.spec())
        page.changed.connect(self._refresh)
        page.remove_requested.connect(functools.partial(self._remove, entry))
        self.stack.addWidget(page)
        self.entries.append(entry)
        self._show_item(entry)
        return entry

    def _show_item(self, entry: SwitchEntry) -> None:
        """The entry's line in the tree, after the other switches."""
        entry.item = self.tree.add_entry(self.switch_group, entry.spec().name, entry.page, "")
        self._update_item(entry)

    # --- editing -------------------------------------------------------------------------------

    def _create(self, kind: SwitchType) -> None:
        """Create Virtual Switch: a new entry, named and selected for typing its name."""
        name = unique_new_name({entry.spec().name for entry in self.entries})
        entry = self._add_entry(SwitchSpec(name, kind, dhcp=kind is SwitchType.NAT), None)
        self._select(entry.item)
        entry.page.name_edit.setFocus()
        entry.page.name_edit.selectAll()

    def _remove(self, entry: SwitchEntry) -> None:
        """Remove: the switch leaves the list; it is removed from the server on Apply."""
        self.tree.setCurrentItem(self.new_item)
        if entry.original is None:
            self.entries.remove(entry)
            self._drop(entry)
        elif entry.item is not None:
            self.switch_group.removeChild(entry.item)
            entry.item = None
            entry.removed = True
        self._refresh()

    def _current_entry(self) -> SwitchEntry | None:
        page = self.stack.currentWidget()
        return next((entry for entry in self.entries if entry.page is page), None)

    def _on_current_item(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        page = item.data(0, PAGE_ROLE) if item is not None else None
        if isinstance(page, QWidget):
            self.stack.setCurrentWidget(page)
            self._refresh()
        elif item is not None:  # a group heading: keep the page shown selected
            self.tree.select_page(self.stack.currentWidget() or self.new_page)

    def _select(self, item: QTreeWidgetItem | None) -> None:
        """Show an entry's page (nothing happens for an entry that is not listed)."""
        if item is not None:
            self.tree.setCurrentItem(item)

    def _update_item(self, entry: SwitchEntry) -> None:
        if entry.item is not None:
            spec = entry.spec()
            entry.item.setText(0, spec.name or "(no name)")
            entry.item.setData(0, SUMMARY_ROLE, type_summary(spec))
            entry.item.setIcon(0, icon(TYPE_ICONS[spec.type]))

    # --- checking ------------------------------------------------------------------------------

    def _refresh(self) -> None:
        """Follow an edit: the tree entry, the back end's check, the problems and the buttons."""
        entry = self._current_entry()
        if entry is not None:
            self._update_item(entry)
            if entry.pending() and not entry.checked() and not entry.checking and self._loaded:
                spawn(self._check(entry))
        mac_summary, mac_problems = self.mac_page.follow()
        if mac_summary is not None:
            self.mac_item.setData(0, SUMMARY_ROLE, mac_summary)
        problems = self._problems_of(entry) if entry is not None else []
        if self.stack.currentWidget() is self.mac_page:
            problems = mac_problems
        self.problem.setText("\n".join(problems))
        self.problem.setVisible(bool(problems))
        usable = self._loaded and not self._busy and not problems
        self.ok_button.setEnabled(usable)
        self.apply_button.setEnabled(usable and self.pending())

    def _problems_of(self, entry: SwitchEntry) -> list[str]:
        """What keeps the entry's change from being applied (none for a switch left as it is: what
        it is on the server is not the user's doing)."""
        return entry.problems_among(self.entries) if entry.pending() else []

    async def _check(self, entry: SwitchEntry) -> None:
        await entry.check(self.controller, lambda: self._closed)
        if not self._closed:
            self._refresh()

    def _say(self, text: str, failure: bool = True) -> None:
        """A message under the pages: why something failed (red), or what is going on (grey)."""
        self.message.setText(text)
        self.message.setStyleSheet(_RED if failure else _GREY)
        self.message.setVisible(bool(text))


def _label(name: str, style: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setStyleSheet(style)
    label.setVisible(False)
    return label
