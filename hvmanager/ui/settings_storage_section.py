"""The storage part of the VM Settings dialog: Add Hardware, the controllers and their drives.

``StorageSection`` owns the storage pages and the layout they show together. It adds and removes
controllers and drives when the pages ask, then tells the dialog (``rebuilt``) which page to show
once the dialog has rebuilt the tree from ``entries()``. A drive page lives as long as its drive, so
what the user typed survives a move to another location; a controller page is remade whenever the
controllers change (it holds nothing the user typed). Pages taken out are handed to the dialog
(``take_discarded``) to remove from its stack.

The layout keeps the drives in the order loaded, new ones last, so that an untouched window gives
back exactly the layout it was given.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from hvmanager.backend.models import VmState
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, HostDisk, StorageLayout, free_slot
from hvmanager.ui.settings_drive_pages import DrivePage, DvdDrivePage, Slot
from hvmanager.ui.settings_hard_drive_page import HardDrivePage
from hvmanager.ui.settings_pages import SettingsPage
from hvmanager.ui.settings_storage_pages import AddHardwarePage, ControllerPage, StorageRules

Entry = tuple[ControllerPage, list[DrivePage]]


class StorageSection(QObject):
    """The storage pages of one Settings window and the layout they show.

    Signals:
        changed(): a storage value was edited (re-check, update the summaries).
        rebuilt(QWidget): controllers or drives were added, removed or moved: rebuild the tree from
            ``entries()`` and show this page.
        new_disk_requested(), edit_disk_requested(str), inspect_disk_requested(str): a Hard Drive
            page's New, Edit or Inspect button.
    """

    changed = Signal()
    rebuilt = Signal(object)
    new_disk_requested = Signal()
    edit_disk_requested = Signal(str)
    inspect_disk_requested = Signal(str)

    def __init__(
        self, generation: int, host_disks: Sequence[HostDisk], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._rules = StorageRules(generation, VmState.OFF)
        self._host_disks = tuple(host_disks)
        self._scsi_count = 0
        self.add_hardware_page = AddHardwarePage(self._rules)
        self.add_hardware_page.add_requested.connect(self._on_add_controller)
        self._controllers: list[ControllerPage] = []
        self._drives: list[DrivePage] = []
        self._discarded: list[QWidget] = []

    # --- loading and reading -------------------------------------------------------------------

    def load(self, layout: StorageLayout, state: VmState) -> None:
        """Show ``layout`` of a VM in ``state``; every drive in it counts as attached."""
        self._rules = StorageRules(layout.generation, state)
        self.add_hardware_page.rules = self._rules
        self._discarded += self._drives
        scsi_used = [d.controller + 1 for d in layout.drives if d.bus is Bus.SCSI]
        self._scsi_count = max([layout.scsi_controllers, *scsi_used])
        self._drives = [self._drive_page(drive, attached=True) for drive in layout.drives]
        self._make_controllers()
        self._refresh()

    def layout(self) -> StorageLayout:
        """The layout as the pages show it."""
        drives = tuple(page.drive() for page in self._drives)
        return StorageLayout(self._rules.generation, self._scsi_count, drives)

    def entries(self) -> list[Entry]:
        """Every controller page in tree order, each with its drive pages by location."""
        found = []
        for controller in self._controllers:
            drives = [p for p in self._drives if p.slot[:2] == (controller.bus, controller.index)]
            found.append((controller, sorted(drives, key=lambda p: p.slot[2])))
        return found

    def pages(self) -> list[SettingsPage]:
        """Every storage page but Add Hardware."""
        return [*self._controllers, *self._drives]

    def file_problems(self, qemu_user: str | None = None) -> dict[str, str]:
        """Why the files the drives name can't be used, keyed by path (see ``file_problem``)."""
        found = {}
        for page in self._drives:
            problem = page.file_problem(qemu_user)
            if problem:
                found[page.drive().path or ""] = problem
        return found

    def with_file_problems(self, problems: list[str], qemu_user: str | None = None) -> list[str]:
        """The files' own problems, then the rules' ``problems`` but those naming a file that has a
        problem of its own (its format is unknown because it does not exist, ...): the file's
        problem says more."""
        files = self.file_problems(qemu_user)
        broken = [path for path in files if path]
        return list(files.values()) + [p for p in problems if not any(path in p for path in broken)]

    def take_discarded(self) -> list[QWidget]:
        """The pages taken out since the last call (for the dialog to remove and delete)."""
        discarded, self._discarded = self._discarded, []
        return discarded

    def key_of(self, page: QWidget) -> tuple[object, ...] | None:
        """Where a page sits (to find its successor after a reload), None for other pages."""
        if isinstance(page, ControllerPage):
            return (page.bus, page.index)
        if isinstance(page, DrivePage):
            return page.slot
        return None

    def page_for(self, key: tuple[object, ...] | None) -> SettingsPage | None:
        """The page at ``key`` (see ``key_of``), if there is one."""
        for page in self.pages():
            if key is not None and self.key_of(page) == key:
                return page
        return None

    def set_drive_path(self, slot: Slot, path: str) -> bool:
        """Make the hard drive at ``slot`` use the virtual hard disk at ``path``; False if no hard
        drive is there."""
        for page in self._drives:
            if page.slot == slot and isinstance(page, HardDrivePage):
                page.set_path(path)
                return True
        return False

    # --- building pages ------------------------------------------------------------------------

    def _drive_page(self, drive: Drive, attached: bool) -> DrivePage:
        page: DrivePage
        if drive.kind is DriveKind.HARD_DISK:
            hard = HardDrivePage(drive, self._rules, attached, self._host_disks)
            hard.new_disk_requested.connect(self.new_disk_requested)
            hard.edit_disk_requested.connect(self.edit_disk_requested)
            hard.inspect_disk_requested.connect(self.inspect_disk_requested)
            page = hard
        else:
            page = DvdDrivePage(drive, self._rules, attached)
        page.changed.connect(self.changed)
        page.moved.connect(lambda: self._on_moved(page))
        page.remove_requested.connect(lambda: self._on_remove_drive(page))
        return page

    def _make_controllers(self) -> None:
        self._discarded += self._controllers
        # Generation 2 has no IDE; a VM made elsewhere may still have drives there: show them.
        ide_numbers = (
            {0, 1}
            if self._rules.generation == 1
            else {p.slot[1] for p in self._drives if p.slot[0] is Bus.IDE}
        )
        ide = [(Bus.IDE, index) for index in sorted(ide_numbers)]
        scsi = [(Bus.SCSI, index) for index in range(self._scsi_count)]
        self._controllers = []
        for bus, index in ide + scsi:
            page = ControllerPage(bus, index, self._rules)
            page.add_requested.connect(lambda kind, page=page: self._on_add_drive(page, kind))
            page.remove_requested.connect(lambda page=page: self._on_remove_controller(page))
            self._controllers.append(page)

    def _refresh(self) -> None:
        """Let every page show what the current layout still allows."""
        layout = self.layout()
        self.add_hardware_page.refresh(layout)
        for controller in self._controllers:
            controller.refresh(layout)
        for drive in self._drives:
            drive.place(layout)

    def _changed_to(self, page: QWidget) -> None:
        self._refresh()
        self.rebuilt.emit(page)
        self.changed.emit()

    # --- the pages' requests -------------------------------------------------------------------

    def _on_add_controller(self, _bus: Bus) -> None:
        self._scsi_count += 1
        self._make_controllers()
        self._changed_to(self._controllers[-1])

    def _on_add_drive(self, controller: ControllerPage, kind: DriveKind) -> None:
        location = free_slot(self.layout(), controller.bus, controller.index)
        if location is None:
            return
        path = "" if kind is DriveKind.HARD_DISK else None
        page = self._drive_page(Drive(kind, controller.bus, controller.index, location, path), attached=False)
        self._drives.append(page)
        self._changed_to(page)

    def _on_remove_drive(self, page: DrivePage) -> None:
        if page not in self._drives:
            return
        self._drives.remove(page)
        self._discarded.append(page)
        self._changed_to(self.page_for(page.slot[:2]) or self.add_hardware_page)

    def _on_remove_controller(self, controller: ControllerPage) -> None:
        """Remove a SCSI controller with its drives; the ones after it move down by one."""
        index = controller.index
        for page in list(self._drives):
            bus, number, location = page.slot
            if bus is Bus.SCSI and number == index:
                self._drives.remove(page)
                self._discarded.append(page)
            elif bus is Bus.SCSI and number > index:
                page.slot = (bus, number - 1, location)
        self._scsi_count -= 1
        self._make_controllers()
        self._changed_to(self._previous_controller(index) or self.add_hardware_page)

    def _previous_controller(self, removed: int) -> ControllerPage | None:
        """The controller shown above a removed SCSI controller in the tree."""
        above = [c for c in self._controllers if c.bus is Bus.IDE or c.index < removed]
        return above[-1] if above else None

    def _on_moved(self, page: DrivePage) -> None:
        self._changed_to(page)
