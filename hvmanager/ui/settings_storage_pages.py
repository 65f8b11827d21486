"""Settings ▸ Hardware storage pages for controllers: IDE Controller 0 and 1 (Generation 1), SCSI
Controller 0-3, and Add Hardware (a SCSI controller, network adapters), with the rules of what a
VM's state allows.

The pages never edit a layout themselves: they ask (``add_requested``, ``remove_requested``) and
the Settings dialog's storage section does it, then calls ``refresh`` with the new layout so that
each page can say what is still possible and why not (Hyper-V greys the button and says why).
The drive pages (Hard Drive, DVD Drive) are in ``settings_drive_pages``.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QPushButton, QWidget

from hvmanager.backend.models import VmState
from hvmanager.backend.network_models import LEGACY_ADAPTER_NAME, SYNTHETIC_ADAPTER_NAME
from hvmanager.backend.storage_layout import (
    IDE_LOCATIONS,
    SCSI_CONTROLLERS_MAX,
    SCSI_LOCATIONS,
    Bus,
    DriveKind,
    StorageLayout,
)
from hvmanager.ui.resources import icon
from hvmanager.ui.settings_pages import SettingsPage, state_note, wrapped_label

KIND_LABELS = {DriveKind.HARD_DISK: "Hard Drive", DriveKind.DVD: "DVD Drive"}
"""Tree and list names of the drive kinds, as Hyper-V names them."""


def controller_name(bus: Bus, index: int) -> str:
    """ "IDE Controller 0", "SCSI Controller 2", ..."""
    return f"{'IDE' if bus is Bus.IDE else 'SCSI'} Controller {index}"


def location_count(bus: Bus) -> int:
    """How many locations a controller of this bus has."""
    return IDE_LOCATIONS if bus is Bus.IDE else SCSI_LOCATIONS


def used_locations(layout: StorageLayout, bus: Bus, controller: int) -> set[int]:
    """The locations of a controller that hold a drive."""
    return {d.location for d in layout.drives if d.bus is bus and d.controller == controller}


def free_locations(layout: StorageLayout, bus: Bus, controller: int) -> list[int]:
    """The empty locations of a controller, in order."""
    used = used_locations(layout, bus, controller)
    return [location for location in range(location_count(bus)) if location not in used]


@dataclass(frozen=True)
class StorageRules:
    """What the VM's state (when the window was loaded) lets the storage pages change.

    Hyper-V's rules, as ``storage_rules.storage_change_problems`` checks them: while the VM runs
    (or is paused), hard drives on SCSI can be added and removed, but nothing on IDE, no controller
    and no DVD drive; an attached drive keeps its controller and location; the media of a DVD
    drive may change. A saved VM resumes with the hardware it was saved with, and a VM starting or
    stopping can't change either: nothing changes then.
    """

    generation: int
    state: VmState

    @property
    def live(self) -> bool:
        """The VM runs or is paused: what can be hot-plugged may change."""
        return self.state in (VmState.RUNNING, VmState.PAUSED)

    def _words(self) -> str:
        return self.state.value.lower()

    def locked(self) -> str | None:
        """Why no storage setting can change now (saved, starting, stopping), or None."""
        if self.state is VmState.SAVED:
            return (
                state_note(self.state) + " A saved virtual machine resumes with the drives it was saved with."
            )
        if self.live or self.state is VmState.OFF:
            return None
        return (
            f"Storage controllers and drives can't be changed while the virtual machine is {self._words()}. "
            "Wait until it is running or off, then reopen this window."
        )

    def controllers_locked(self) -> str | None:
        """Why SCSI controllers can't be added or removed now, or None."""
        if self.live:
            return (
                f"SCSI controllers can't be added or removed while the virtual machine is {self._words()}. "
                "To change them, shut down the virtual machine and then reopen this window."
            )
        return self.locked()

    def bus_locked(self, bus: Bus) -> str | None:
        """Why drives on this bus can't be added, changed or removed now, or None."""
        if self.live and bus is Bus.IDE:
            return (
                "Drives on an IDE controller can't be added, changed or removed while the virtual machine "
                f"is {self._words()}; hard drives on a SCSI controller can. To change this one, shut down "
                "the virtual machine and then reopen this window."
            )
        return self.locked()

    def kind_locked(self, kind: DriveKind) -> str | None:
        """Why drives of this kind can't be added or removed now (DVD drives while the VM runs)."""
        if self.live and kind is DriveKind.DVD:
            return (
                f"DVD drives can't be added or removed while the virtual machine is {self._words()}; only "
                "their media can change. Shut down the virtual machine first."
            )
        return None

    def slot_locked(self, bus: Bus, attached: bool) -> str | None:
        """Why a drive can't move to another controller or location (``attached``: it was there when
        the window opened, as opposed to added since), or None."""
        reason = self.bus_locked(bus)
        if reason is None and self.live and attached:
            return (
                "The controller and location of an attached drive can't be changed while the virtual "
                f"machine is {self._words()}; remove the drive and add a new one instead."
            )
        return reason

    def buses(self) -> tuple[Bus, ...]:
        """The buses a drive may be added to (or moved to) now."""
        if self.locked() is not None:
            return ()
        ide = (Bus.IDE,) if self.generation == 1 and not self.live else ()
        return (*ide, Bus.SCSI)

    def kinds(self, bus: Bus) -> tuple[DriveKind, ...]:
        """The drive kinds a controller of this bus takes: SCSI DVD drives are Generation 2 only."""
        if bus is Bus.SCSI and self.generation == 1:
            return (DriveKind.HARD_DISK,)
        return (DriveKind.HARD_DISK, DriveKind.DVD)


def _choice_list(name: str, entries: list[tuple[str, object]]) -> QListWidget:
    """A short list box with one row per entry, the first selected."""
    listing = QListWidget()
    listing.setObjectName(name)
    for text, data in entries:
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, data)
        listing.addItem(item)
    listing.setCurrentRow(0)
    rows = max(len(entries), 2)
    listing.setFixedHeight(listing.sizeHintForRow(0) * rows + 2 * listing.frameWidth() + 6)
    return listing


def right_aligned(button: QPushButton) -> QWidget:
    """``button`` at the right end of a row."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addStretch(1)
    layout.addWidget(button)
    return row


def page_button(text: str, name: str) -> QPushButton:
    """A push button of the storage pages, with its object name."""
    button = QPushButton(text)
    button.setObjectName(name)
    button.setMinimumWidth(90)
    return button


def _set_reason(button: QPushButton, reason: str | None) -> None:
    """Enable ``button``, or grey it with the reason as its tool tip."""
    button.setEnabled(reason is None)
    button.setToolTip(reason or "")


class ControllerPage(SettingsPage):
    """IDE Controller N or SCSI Controller N: pick a drive kind and Add it (SCSI: also Remove).

    Signals:
        add_requested(DriveKind): Add was clicked with this kind selected.
        remove_requested(): Remove (SCSI controller) was clicked.
    """

    add_requested = Signal(object)
    remove_requested = Signal()

    def __init__(self, bus: Bus, index: int, rules: StorageRules, parent: QWidget | None = None) -> None:
        ide = bus is Bus.IDE
        super().__init__(
            controller_name(bus, index),
            "You can add hard drives and CD/DVD drives to your IDE controller."
            if ide
            else "You can add hard drives to your SCSI controller or remove the SCSI controller from "
            "the machine.",
            parent,
        )
        self.bus, self.index, self.rules = bus, index, rules
        self._layout_now = StorageLayout(rules.generation, 0)
        self.setObjectName(f"{bus.value}Controller{index}Page")
        self.kinds = _choice_list("driveKindList", [(KIND_LABELS[k], k) for k in rules.kinds(bus)])
        self.add_button = page_button("Add", "addDriveButton")
        self.remove_button = page_button("Remove", "removeControllerButton")
        self.add(
            wrapped_label(
                "Select the type of drive you want to attach to the controller and then click Add."
                if ide
                else "Click on the Add button to add a new drive to this SCSI controller."
            )
        )
        self.add(self.kinds)
        self.add(right_aligned(self.add_button))
        if not ide:
            self._add_remove_part()
        self.finish()
        self.add_button.clicked.connect(self._on_add)
        self.remove_button.clicked.connect(self.remove_requested)
        self.kinds.itemDoubleClicked.connect(self._on_add)
        self.kinds.currentRowChanged.connect(lambda _row: self.refresh())

    def _add_remove_part(self) -> None:
        self.add(
            wrapped_label(
                "You can configure a hard drive to use a virtual hard disk or a physical hard disk "
                "after you attach the drive to the controller."
            )
        )
        self._layout.addSpacing(10)
        self.add(
            wrapped_label("To remove the SCSI controller and all the drives attached to it, click Remove.")
        )
        self.add(right_aligned(self.remove_button))

    def refresh(self, layout: StorageLayout | None = None) -> None:
        """Enable Add (for the kind selected) and Remove for ``layout`` (default: the last one), or
        say why not."""
        layout = self._layout_now = layout if layout is not None else self._layout_now
        item = self.kinds.currentItem()
        kind = item.data(Qt.ItemDataRole.UserRole) if item is not None else DriveKind.HARD_DISK
        add_reason = self.rules.bus_locked(self.bus) or self.rules.kind_locked(kind)
        if add_reason is None and not free_locations(layout, self.bus, self.index):
            name = controller_name(self.bus, self.index)
            add_reason = (
                f"Both locations of {name} are in use. Remove a drive from it, or add the drive to "
                "another controller."
                if self.bus is Bus.IDE
                else f"All {SCSI_LOCATIONS} locations of {name} are in use."
            )
        _set_reason(self.add_button, add_reason)
        remove_reason = self.rules.controllers_locked() if self.bus is Bus.SCSI else None
        _set_reason(self.remove_button, remove_reason)
        self.note.set_text(add_reason or remove_reason or "")

    def _on_add(self) -> None:
        item = self.kinds.currentItem()
        if item is not None and self.add_button.isEnabled():
            self.add_requested.emit(item.data(Qt.ItemDataRole.UserRole))


@dataclass(frozen=True)
class AdapterChoice:
    """An Add Hardware row that adds a network adapter (``legacy``: a Legacy Network Adapter)."""

    legacy: bool


class AddHardwarePage(SettingsPage):
    """Add Hardware: the devices that can be added: a SCSI controller (up to four) and, once
    ``offer_adapters`` was called, network adapters (legacy ones on Generation 1 only).

    Add is enabled for the row selected, or greyed with the reason in the note.

    Signals:
        add_requested(Bus): Add was clicked on SCSI Controller (``Bus.SCSI``).
        add_adapter_requested(bool): Add was clicked on Network Adapter (False) or Legacy Network
            Adapter (True).
    """

    add_requested = Signal(object)
    add_adapter_requested = Signal(bool)

    def __init__(self, rules: StorageRules, parent: QWidget | None = None, *, scsi: bool = True) -> None:
        """``scsi=False`` leaves SCSI Controller out (when the storage pages are not shown)."""
        super().__init__(
            "Add Hardware", "You can use this setting to add devices to your virtual machine.", parent
        )
        self.rules = rules
        self.setObjectName("addHardwarePage")
        self.hardware = _choice_list("hardwareList", [("SCSI Controller", Bus.SCSI)] if scsi else [])
        self.add_button = page_button("Add", "addHardwareButton")
        self._layout_now: StorageLayout | None = None
        self._adapter_reasons: dict[bool, str | None] = {}
        self.add(wrapped_label("Select the devices you want to add and click the Add button."))
        self.add(self.hardware)
        self.add(right_aligned(self.add_button))
        self.finish()
        self.add_button.clicked.connect(self._on_add)
        self.hardware.itemDoubleClicked.connect(self._on_add)
        self.hardware.currentRowChanged.connect(lambda _row: self._update())

    def offer_adapters(self, legacy: bool) -> None:
        """List Network Adapter and, when ``legacy`` (Generation 1), Legacy Network Adapter."""
        choices = [(SYNTHETIC_ADAPTER_NAME, AdapterChoice(False))]
        choices += [(LEGACY_ADAPTER_NAME, AdapterChoice(True))] if legacy else []
        for text, choice in choices:
            item = QListWidgetItem(icon("network-adapter"), text)
            item.setData(Qt.ItemDataRole.UserRole, choice)
            self.hardware.addItem(item)
        rows = max(self.hardware.count(), 2)
        self.hardware.setFixedHeight(
            self.hardware.sizeHintForRow(0) * rows + 2 * self.hardware.frameWidth() + 6
        )
        if self.hardware.currentRow() < 0:
            self.hardware.setCurrentRow(0)

    def refresh(self, layout: StorageLayout) -> None:
        """Say for ``layout`` whether a SCSI controller can be added (four at most, and only while
        the VM is off)."""
        self._layout_now = layout
        self._update()

    def set_adapter_reasons(self, synthetic: str | None, legacy: str | None) -> None:
        """Why a network adapter or a legacy one can't be added now (None: it can)."""
        self._adapter_reasons = {False: synthetic, True: legacy}
        self._update()

    def _reason(self) -> str | None:
        item = self.hardware.currentItem()
        choice = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        if isinstance(choice, AdapterChoice):
            return self._adapter_reasons.get(choice.legacy)
        reason = self.rules.controllers_locked()
        layout = self._layout_now
        if reason is None and layout is not None and layout.scsi_controllers >= SCSI_CONTROLLERS_MAX:
            reason = (
                f"This virtual machine already has {SCSI_CONTROLLERS_MAX} SCSI controllers, the most "
                "a virtual machine can have."
            )
        return reason

    def _update(self) -> None:
        reason = self._reason()
        _set_reason(self.add_button, reason)
        self.note.set_text(reason or "")

    def _on_add(self) -> None:
        item = self.hardware.currentItem()
        if item is None or not self.add_button.isEnabled():
            return
        choice = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(choice, AdapterChoice):
            self.add_adapter_requested.emit(choice.legacy)
        else:
            self.add_requested.emit(choice)
