"""The Virtual Switch Manager, as in Hyper-V Manager (Actions ▸ Virtual Switch Manager...).

New switches, edits and removals are held until **Apply** or **OK**; **Cancel** drops them. Applying
checks every pending switch once more, asks first when a change touches a host adapter ("Pending
changes may disrupt network connectivity"), then applies the changes one switch at a time
(removals first), asking again when the back end needs it (the default-route adapter, VMs on a
switch being removed or retyped). Each switch's change is applied whole or not at all: a failure
or a No is shown in the dialog, which stays open with what was not applied still pending; what was
applied before it stays applied. The list is read again from the server afterwards.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import SwitchInfo
from hvmanager.controllers.network import NetworkController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.switch_manager_apply import SwitchEntry, UserDeclinedError, apply_entry, apply_order
from hvmanager.ui.switch_manager_base import SwitchListDialog
from hvmanager.ui.switch_manager_prompts import answer, disruption_warning

_APPLYING = "Applying changes..."


class SwitchManagerDialog(SwitchListDialog):
    """The Virtual Switch Manager of one server.

    Signals:
        apply_finished(bool): an Apply (or OK) ended; True when everything pending was applied.
    """

    apply_finished = Signal(bool)

    def __init__(
        self, controller: NetworkController, server_title: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(controller, server_title, parent)
        self.ok_button.clicked.connect(lambda: spawn(self._ok()))
        self.apply_button.clicked.connect(lambda: spawn(self._apply()))

    async def _validate(self) -> bool:
        """Check every pending switch now; show the first one with a problem."""
        for entry in apply_order(self.entries):
            if entry.removed:
                continue
            while not entry.checked() and not self._closed:
                await (self._check(entry) if not entry.checking else asyncio.sleep(0.02))
            if self._problems_of(entry):
                self._select(entry.item)
                return False
        if self.mac_page.parsed()[1]:
            self.tree.setCurrentItem(self.mac_item)
            return False
        return True

    # --- applying ------------------------------------------------------------------------------

    async def _ok(self) -> None:
        if await self._apply() and not self._closed:
            self.accept()

    async def _apply(self) -> bool:
        """Apply every pending change; False (with the reason shown) when something was not."""
        if self._busy or not self._loaded:
            return False
        self._set_busy(True)
        done = False
        try:
            done = await self._apply_all()
        finally:
            if self.message.text() == _APPLYING:
                self._say("")
            self._set_busy(False)
            self.apply_finished.emit(done)
        return done

    async def _apply_all(self) -> bool:
        if not await self._validate():
            return False
        entries, wanted = apply_order(self.entries), self.mac_page.wanted()
        if not entries and wanted is None:
            return True
        if any(entry.touches_host_adapter() for entry in entries) and not await answer(
            disruption_warning(self)
        ):
            self._say("Nothing was applied.")
            return False
        for entry in entries:
            try:
                info = await apply_entry(self.controller, self, entry)
            except (UserDeclinedError, HvError) as exc:
                self._not_applied(entry, exc)
                return False
            self._applied(entry, info)
        try:
            if wanted is not None:
                await self.controller.save_mac_range(wanted)
        except HvError as exc:
            self._say(f"The MAC address range was not saved: {exc}")
            return False
        current = self._current_entry()
        await self._load(current.current_name if current is not None else None)
        return True

    def _not_applied(self, entry: SwitchEntry, exc: Exception) -> None:
        """Say why ``entry`` was not applied; a switch that stays is listed (and shown) again."""
        describe = entry.describe()
        if entry.removed:
            entry.removed = False
            self._show_item(entry)
        self._select(entry.item)
        self._say(str(exc) if isinstance(exc, UserDeclinedError) else f"Could not {describe}: {exc}")

    def _applied(self, entry: SwitchEntry, info: SwitchInfo | None) -> None:
        """One change is on the server: the entry now stands for the switch as it is."""
        if info is None:
            self.entries.remove(entry)
            self._drop(entry)
            return
        entry.original = info
        entry.page.load(info.spec, self.adapters, new=False, managed=info.managed)
        entry.baseline = entry.page.spec()
        entry.checked_key = None
        self._update_item(entry)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.tree.setEnabled(not busy)
        self.stack.setEnabled(not busy)
        self.cancel_button.setEnabled(not busy)
        if busy:
            self._say(_APPLYING, failure=False)
        self._refresh()

    # --- closing -------------------------------------------------------------------------------

    def done(self, result: int) -> None:
        """Closing: not while changes are being applied (they can't be stopped halfway)."""
        if self._busy:
            return
        self._closed = True
        super().done(result)
