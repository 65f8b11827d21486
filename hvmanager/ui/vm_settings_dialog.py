"""The VM Settings window: "Settings for <VM> on <server>", as in Hyper-V Manager.

A tree on the left (Hardware: Add Hardware, BIOS or Firmware, Memory, Processor, IDE Controller 0
and 1, SCSI Controllers, each controller with its drives, Network Adapters, each with Hardware
Acceleration and Advanced Features, Legacy Network Adapters; Management: Name, Checkpoints,
Automatic Start Action, Automatic Stop Action), each entry with a one-line summary under its name,
and the selected entry's page on the right. The storage entries are there when the caller passes
the VM's ``StorageLayout`` (``settings_storage_section``), the network adapters when it passes the
VM's ``NetworkSettings`` (``settings_network_section``), the Checkpoints page when it passes the
VM's ``CheckpointSettings`` (local servers: checkpoints are not supported on remote ones). Every edit is
checked at once with ``vmsettings.change_problems``; OK and Apply stay disabled while a problem is
shown.

The dialog works on plain data (``VmConfig``, ``VmState``, ``HostInfo``) and never talks to
libvirt: OK and Apply emit ``apply_requested`` with a ``SettingsChange``; the caller applies it
off the GUI thread, reports errors and calls ``set_config`` with the new configuration. A Hard
Drive page's New, Edit and Inspect buttons are re-emitted as signals for the caller, which may then
fill a new disk in with ``set_drive_path``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from PySide6.QtCore import Signal
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

from hvmanager.backend.models import HostInfo, VmConfig, VmState
from hvmanager.backend.storage_layout import Bus, HostDisk, StorageLayout, describe
from hvmanager.backend.vmsettings_rules import (
    CheckpointSettings,
    NetworkSettings,
    SettingsChange,
    change_problems,
    generation_of,
    location_lock_reason,
)
from hvmanager.ui.resources import icon
from hvmanager.ui.settings_checkpoints_page import CheckpointsPage
from hvmanager.ui.settings_drive_pages import DrivePage
from hvmanager.ui.settings_network_pages import AdapterPage
from hvmanager.ui.settings_network_section import NetworkSection
from hvmanager.ui.settings_pages import (
    BootOrderPage,
    MemoryPage,
    NamePage,
    ProcessorPage,
    SettingsPage,
    StartActionPage,
    StopActionPage,
)
from hvmanager.ui.settings_storage_pages import AddHardwarePage, StorageRules
from hvmanager.ui.settings_storage_section import StorageSection
from hvmanager.ui.settings_tree import (
    PAGE_ROLE,
    SUMMARY_ROLE,
    SettingsTree,
    entry_summaries,
    tree_beside_pages,
)

__all__ = ["PAGE_ROLE", "SUMMARY_ROLE", "VmSettingsDialog"]


class VmSettingsDialog(QDialog):
    """Hyper-V's Settings window for one VM.

    ``checkpoints`` (optional) adds the Checkpoints page, showing and checking those settings;
    ``storage`` (optional) adds Add Hardware and the controller and drive pages, with
    ``host_disks`` offered as physical hard disks; ``network`` (optional) adds Add Hardware and
    the network adapter pages.

    Signals:
        apply_requested(SettingsChange): OK or Apply was pressed with this change (OK then
            closes the window); the caller applies it and reports failures.
        new_disk_requested(): a Hard Drive page's New was clicked (``current_drive_slot`` says
            which drive; ``set_drive_path`` fills the new disk in).
        edit_disk_requested(str), inspect_disk_requested(str): a Hard Drive page's Edit or
            Inspect was clicked, with the path it shows.
    """

    apply_requested = Signal(object)
    new_disk_requested = Signal()
    edit_disk_requested = Signal(str)
    inspect_disk_requested = Signal(str)

    def __init__(
        self,
        config: VmConfig,
        state: VmState,
        host: HostInfo,
        other_names: frozenset[str],
        parent: QWidget | None = None,
        *,
        checkpoints: CheckpointSettings | None = None,
        storage: StorageLayout | None = None,
        host_disks: Sequence[HostDisk] = (),
        network: NetworkSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("vmSettingsDialog")
        self.resize(800, 620)
        self._config, self._state, self._host = config, state, host
        self._other_names = other_names
        self._checkpoints = checkpoints
        self._storage = storage
        self._network = network
        self._baseline = SettingsChange()
        generation = generation_of(config)
        self.boot_page = BootOrderPage(generation)
        self.memory_page = MemoryPage(generation, host.memory_mib)
        self.processor_page = ProcessorPage(generation, host.cpus)
        self.name_page = NamePage()
        self.checkpoints_page = CheckpointsPage() if checkpoints is not None else None
        self.start_page = StartActionPage()
        self.stop_page = StopActionPage()
        self.storage_section = StorageSection(generation, host_disks, self) if storage is not None else None
        self.add_hardware_page = self._make_add_hardware_page(generation, state, network is not None)
        self.network_section = (
            NetworkSection(generation, self.add_hardware_page, self)
            if network is not None and self.add_hardware_page is not None
            else None
        )
        self.tree = SettingsTree()
        self.stack = QStackedWidget()
        self.problem = QLabel()
        self.buttons = QDialogButtonBox()
        self._build()
        self.set_config(config, state, checkpoints, storage=storage, network=network)
        self._select(self.boot_page)

    # --- building ------------------------------------------------------------------------------

    def _make_add_hardware_page(
        self, generation: int, state: VmState, adapters: bool
    ) -> AddHardwarePage | None:
        """The storage section's Add Hardware page, or one of its own for network adapters only."""
        if self.storage_section is not None:
            return self.storage_section.add_hardware_page
        if adapters:
            return AddHardwarePage(StorageRules(generation, state), scsi=False)
        return None

    def _build(self) -> None:
        self._build_tree()
        self._build_buttons()
        self.problem.setObjectName("problemLabel")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b3261e;")
        self.problem.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addLayout(tree_beside_pages(self.tree, self.stack), 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        for page in self._hardware_pages() + self._management_pages():
            page.changed.connect(self._on_edited)
        network = self.network_section
        if network is not None:
            network.changed.connect(self._on_edited)
            network.rebuilt.connect(self._rebuild_devices)
        section = self.storage_section
        if section is not None:
            section.changed.connect(self._on_edited)
            section.rebuilt.connect(self._rebuild_devices)
            section.new_disk_requested.connect(self.new_disk_requested)
            section.edit_disk_requested.connect(self.edit_disk_requested)
            section.inspect_disk_requested.connect(self.inspect_disk_requested)

    def _hardware_pages(self) -> list[SettingsPage]:
        """The Hardware pages above the controllers, in tree order."""
        add = [self.add_hardware_page] if self.add_hardware_page is not None else []
        return [*add, self.boot_page, self.memory_page, self.processor_page]

    def _management_pages(self) -> list[SettingsPage]:
        """The Management pages, in tree order."""
        checkpoints = [self.checkpoints_page] if self.checkpoints_page is not None else []
        return [self.name_page, *checkpoints, self.start_page, self.stop_page]

    def _build_tree(self) -> None:
        groups = (("Hardware", self._hardware_pages()), ("Management", self._management_pages()))
        for title, pages in groups:
            group = self.tree.add_group(title)
            for page in pages:
                self._add_entry(group, page, None if page is self.add_hardware_page else "")
            group.setExpanded(True)
        self.tree.currentItemChanged.connect(self._on_current_item)
        self.tree.itemSelectionChanged.connect(self._keep_selection)

    def _add_entry(
        self, parent: QTreeWidgetItem, page: SettingsPage, summary: str | None, with_icon: str = ""
    ) -> QTreeWidgetItem:
        if self.stack.indexOf(page) < 0:
            self.stack.addWidget(page)
        return self.tree.add_entry(parent, page.title, page, summary, icon(with_icon) if with_icon else None)

    def _rebuild_devices(self, show: QWidget | None = None) -> None:
        """Remake the controller, drive and network adapter entries at the end of Hardware, then
        show ``show`` (by default the page shown, if it is still there)."""
        hardware = self.tree.topLevelItem(0)
        if hardware is None:
            return
        show = show if show is not None else self.stack.currentWidget()
        blocked = self.tree.blockSignals(True)
        fixed = len(self._hardware_pages())
        for row in reversed(range(fixed, hardware.childCount())):
            hardware.takeChild(row)
        discarded: list[QWidget] = []
        if self.storage_section is not None:
            for controller, drives in self.storage_section.entries():
                controller_item = self._add_entry(hardware, controller, None)
                for drive in drives:
                    self._add_entry(controller_item, drive, drive.summary())
                controller_item.setExpanded(True)
            discarded += self.storage_section.take_discarded()
        if self.network_section is not None:
            for adapter, subs in self.network_section.entries():
                adapter_item = self._add_entry(hardware, adapter, adapter.summary(), "network-adapter")
                for sub in subs:
                    self._add_entry(adapter_item, sub, None)
                adapter_item.setExpanded(True)
            discarded += self.network_section.take_discarded()
        for page in discarded:
            self.stack.removeWidget(page)
            page.deleteLater()
        self.tree.blockSignals(blocked)
        self._select(show if show is not None and self.stack.indexOf(show) >= 0 else self.boot_page)

    def _build_buttons(self) -> None:
        self.ok_button = self._add_button("OK", "okButton", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self._add_button(
            "Cancel", "cancelButton", QDialogButtonBox.ButtonRole.RejectRole
        )
        self.apply_button = self._add_button("Apply", "applyButton", QDialogButtonBox.ButtonRole.ApplyRole)
        self.ok_button.setDefault(True)
        self.ok_button.clicked.connect(self._on_ok)
        self.apply_button.clicked.connect(self._on_apply)
        self.cancel_button.clicked.connect(self.reject)

    def _add_button(self, text: str, name: str, role: QDialogButtonBox.ButtonRole) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAutoDefault(False)
        self.buttons.addButton(button, role)
        return button

    # --- public API ----------------------------------------------------------------------------

    def set_config(
        self,
        config: VmConfig,
        state: VmState,
        checkpoints: CheckpointSettings | None = None,
        *,
        storage: StorageLayout | None = None,
        network: NetworkSettings | None = None,
    ) -> None:
        """Show ``config`` (e.g. after an apply) as the unchanged state of every page.

        Without ``checkpoints`` the Checkpoints page keeps what it shows (just applied, after an
        Apply) as the VM's policy; without ``storage`` the storage pages do the same, and without
        ``network`` the network pages.
        """
        self._config, self._state = config, state
        self.setWindowTitle(f"Settings for {config.name} on {self._host.hostname}")
        self.boot_page.load(config.boot_order, config.kernel_boot, state)
        self.memory_page.load(config.memory, state)
        self.processor_page.load(config.processors, state)
        self.name_page.load(config.name, config.notes, state)
        self.start_page.load(config.start_action, config.start_delay_s)
        self.stop_page.load(config.stop_action)
        self._load_checkpoints(checkpoints)
        shown = self._shown_key()
        self._load_storage(state, storage)
        self._load_network(state, network)
        self._rebuild_devices(self._page_for_key(shown))
        self._baseline = self._shown()
        self._on_edited()

    def _load_checkpoints(self, checkpoints: CheckpointSettings | None) -> None:
        page = self.checkpoints_page
        if page is None:
            return
        if checkpoints is None and self._checkpoints is not None:
            checkpoints = dataclasses.replace(self._checkpoints, policy=page.policy())
        if checkpoints is None:
            return
        self._checkpoints = checkpoints
        page.load(checkpoints.policy, checkpoints.default_folder, location_lock_reason(checkpoints))

    def _shown_key(self) -> tuple[str, object] | None:
        """Which device page is shown, by where it sits (its page object may be remade)."""
        current = self.stack.currentWidget()
        if current is None:
            return None
        if self.storage_section is not None and (key := self.storage_section.key_of(current)) is not None:
            return ("storage", key)
        if self.network_section is not None and (place := self.network_section.key_of(current)) is not None:
            return ("network", place)
        return None

    def _page_for_key(self, shown: tuple[str, object] | None) -> QWidget | None:
        """The page at a place ``_shown_key`` gave (None: keep the page shown, if still there)."""
        if shown is None:
            return None
        kind, key = shown
        if kind == "storage" and self.storage_section is not None and isinstance(key, tuple):
            return self.storage_section.page_for(key)
        if kind == "network" and self.network_section is not None and isinstance(key, tuple):
            return self.network_section.page_for(key)
        return None

    def _load_storage(self, state: VmState, storage: StorageLayout | None) -> None:
        section = self.storage_section
        if section is None:
            return
        self._storage = storage if storage is not None else section.layout()
        section.load(self._storage, state)

    def _load_network(self, state: VmState, network: NetworkSettings | None) -> None:
        section = self.network_section
        if section is None or (network is None and self._network is None):
            return
        if network is None:
            assert self._network is not None
            network = dataclasses.replace(self._network, adapters=section.adapters())
        self._network = network
        section.load(network, state)

    def change(self) -> SettingsChange:
        """What the user changed: only the fields that differ from the loaded configuration."""
        shown, base = self._shown(), self._baseline
        return SettingsChange(
            **{
                field.name: getattr(shown, field.name)
                for field in dataclasses.fields(SettingsChange)
                if getattr(shown, field.name) != getattr(base, field.name)
            }
        )

    def problems(self) -> list[str]:
        """Why the change can't be applied (empty when it can)."""
        change = self.change()
        problems = change_problems(
            self._config,
            self._state,
            change,
            self._host,
            self._other_names,
            self._checkpoints,
            storage=self._storage,
            network=self._network,
        )
        if change.storage is None or self.storage_section is None:
            return problems
        return self.storage_section.with_file_problems(problems, self._qemu_user())

    def _qemu_user(self) -> str | None:
        """The user QEMU runs as, when known (it must reach the files of new drives)."""
        return self._checkpoints.qemu_user if self._checkpoints is not None else None

    @property
    def _items(self) -> list[QTreeWidgetItem]:
        """Every page entry of the tree (scripts/screenshots.py walks them; ``tree.entries()`` is the
        public way)."""
        return list(self.tree.entries())

    def current_drive_slot(self) -> tuple[Bus, int, int] | None:
        """The controller and location of the drive whose page is shown (None: not a drive page)."""
        page = self.stack.currentWidget()
        return page.slot if isinstance(page, DrivePage) else None

    def set_drive_path(self, slot: tuple[Bus, int, int], path: str) -> None:
        """Make the hard drive at ``slot`` use the virtual hard disk at ``path`` (e.g. after the New
        Virtual Hard Disk wizard made it); nothing happens if no hard drive is there."""
        if self.storage_section is not None:
            self.storage_section.set_drive_path(slot, path)

    # --- behaviour -----------------------------------------------------------------------------

    def _shown(self) -> SettingsChange:
        """Every field as the pages show it."""
        return SettingsChange(
            memory=self.memory_page.memory(),
            processors=self.processor_page.count(),
            boot_order=self.boot_page.order(),
            name=self.name_page.name.text(),
            notes=self.name_page.notes.toPlainText(),
            start_action=self.start_page.action(),
            start_delay_s=self.start_page.delay_s(),
            stop_action=self.stop_page.action(),
            checkpoint_policy=self.checkpoints_page.policy() if self.checkpoints_page is not None else None,
            storage=self.storage_section.layout() if self.storage_section is not None else None,
            adapters=self.network_section.adapters() if self.network_section is not None else None,
        )

    def _on_edited(self) -> None:
        change = self.change()
        problems = self.problems()
        self.problem.setText("\n".join(problems))
        self.problem.setVisible(bool(problems))
        self.ok_button.setEnabled(not problems)
        self.apply_button.setEnabled(not problems and not change.is_empty)
        self._update_summaries(change)

    def _update_summaries(self, change: SettingsChange) -> None:
        policy = self._checkpoints.policy if self._checkpoints is not None else None
        summaries = entry_summaries(change, self._config, policy)
        for item in self.tree.entries():
            page = item.data(0, PAGE_ROLE)
            if isinstance(page, DrivePage):
                item.setData(0, SUMMARY_ROLE, page.summary())
                item.setToolTip(0, describe(page.drive()))
            elif isinstance(page, AdapterPage):
                item.setData(0, SUMMARY_ROLE, page.summary())
            elif item.data(0, SUMMARY_ROLE) is not None:
                item.setData(0, SUMMARY_ROLE, summaries[item.text(0)])

    def _select(self, page: QWidget) -> None:
        if self.tree.select_page(page):
            self.stack.setCurrentWidget(page)

    def _on_current_item(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        page = item.data(0, PAGE_ROLE) if item is not None else None
        if isinstance(page, QWidget):
            self.stack.setCurrentWidget(page)

    def _keep_selection(self) -> None:
        """A click on a group heading clears the selection: highlight the shown page again."""
        page = self.stack.currentWidget()
        if page is not None and not self.tree.selectedItems():
            self._select(page)

    def _on_apply(self) -> None:
        change = self.change()
        if not change.is_empty and not self.problems():
            self.apply_requested.emit(change)

    def _on_ok(self) -> None:
        if self.problems():
            return
        change = self.change()
        if not change.is_empty:
            self.apply_requested.emit(change)
        self.accept()
