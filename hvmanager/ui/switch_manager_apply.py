"""What the Virtual Switch Manager holds until Apply, and how one pending change is applied.

A ``SwitchEntry`` is one switch of the dialog: as it is on the server (``original``; None for a
switch not created yet), as edited on its page, or marked removed, with the back end's last check
of what its page shows (``check``, re-run until it is of what is shown now). ``apply_entry``
applies one entry's change through the ``NetworkController``; when the back end needs the user's
word (binding the default-route adapter, cutting VMs off a switch) it asks and tries again with the
confirmation, and a No stops with ``UserDeclinedError``. Each change is applied whole or not at
all by the back end, so a failure or a No leaves that switch exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtWidgets import QTreeWidgetItem, QWidget

from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.switches import ConfirmationNeeded, SwitchInUseError
from hvmanager.controllers.network import NetworkController
from hvmanager.ui.switch_manager_prompts import SwitchUsersDialog, answer, default_route_question
from hvmanager.ui.switch_properties_page import SwitchPropertiesPage

CheckKey = tuple[SwitchSpec, str | None]


class UserDeclinedError(Exception):
    """The user answered No to a question about one change; it and the rest were not applied."""


@dataclass(eq=False)
class SwitchEntry:
    """One switch in the dialog, with the back end's last check of its page."""

    page: SwitchPropertiesPage
    original: SwitchInfo | None
    baseline: SwitchSpec
    item: QTreeWidgetItem | None = None
    removed: bool = False
    dropped: bool = False  # its page is gone (removed before it was created, or the list re-read)
    checking: bool = False
    checked_key: CheckKey | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def current_name(self) -> str | None:
        """The switch's name on the server (None until it is created)."""
        return self.original.name if self.original is not None else None

    @property
    def managed(self) -> bool:
        """Whether hvmanager made this network (others are shown read-only)."""
        return self.original is None or self.original.managed

    def spec(self) -> SwitchSpec:
        """The switch as its page shows it."""
        return self.page.spec()

    def key(self) -> CheckKey:
        """What the back end's check depends on."""
        return self.spec(), self.current_name

    def checked(self) -> bool:
        """Whether ``problems`` are those of what the page shows now."""
        return not self.checking and self.checked_key == self.key()

    def edited(self) -> bool:
        """Whether the page differs from the switch as loaded."""
        return self.spec() != self.baseline

    def pending(self) -> bool:
        """Whether Apply has something to do for this switch."""
        if self.original is None:
            return not self.removed
        return self.removed or self.edited()

    def problems_among(self, entries: list[SwitchEntry]) -> list[str]:
        """The dialog's own check (no other switch of the list takes this name), then the back
        end's last check."""
        name = self.spec().name
        clash = any(
            other.spec().name == name and other.spec().name != other.current_name
            for other in entries
            if other is not self and not other.removed
        )
        local = [f"Another virtual switch in this list is named '{name}'."] if clash and name else []
        return local + self.problems

    async def check(self, controller: NetworkController, closed: Callable[[], bool]) -> None:
        """The back end's check, until it is of what the page shows now (typing goes on meanwhile);
        stops when the dialog is ``closed()`` or the entry dropped."""
        self.checking = True
        try:
            while not (closed() or self.dropped) and self.checked_key != self.key():
                spec, current = key = self.key()
                try:
                    found = await controller.switch_problems(spec, current)
                except HvError as exc:
                    found = [str(exc)]
                if not (closed() or self.dropped) and key == self.key():
                    self.checked_key, self.problems = key, found
        finally:
            self.checking = False

    def touches_host_adapter(self) -> bool:
        """Whether applying binds, releases or reconfigures a host adapter (an External switch)."""
        types = {self.spec().type}
        if self.original is not None:
            types.add(self.original.spec.type)
        return SwitchType.EXTERNAL in types

    def describe(self) -> str:
        """What applying does, for messages: "create 'x'", "change 'x'", "remove 'x'"."""
        if self.removed:
            return f"remove the virtual switch '{self.current_name}'"
        if self.original is None:
            return f"create the virtual switch '{self.spec().name}'"
        return f"change the virtual switch '{self.current_name}'"


def apply_order(entries: list[SwitchEntry]) -> list[SwitchEntry]:
    """Pending entries, removals first (they free names and adapters), then changes, then new ones."""
    pending = [entry for entry in entries if entry.pending()]

    def rank(entry: SwitchEntry) -> int:
        return 0 if entry.removed else 1 if entry.original is not None else 2

    return sorted(pending, key=rank)


async def apply_entry(
    controller: NetworkController, parent: QWidget, entry: SwitchEntry
) -> SwitchInfo | None:
    """Apply one entry's change; the switch as it is now (None once removed).

    Raises ``UserDeclinedError`` when the user says No to a question, ``HvError`` when the change fails.
    """
    confirm_default_route = disconnect_users = False
    while True:
        try:
            return await _apply_once(controller, entry, confirm_default_route, disconnect_users)
        except ConfirmationNeeded as exc:
            question = default_route_question(parent, entry.spec().name, exc.message)
            if confirm_default_route or not await answer(question):
                raise UserDeclinedError(
                    f"The change was not applied: you chose not to {entry.describe()}."
                ) from exc
            confirm_default_route = True
        except SwitchInUseError as exc:
            name = entry.current_name or entry.spec().name
            dialog = SwitchUsersDialog(name, entry.removed, exc.users, parent)
            if disconnect_users or not await answer(dialog):
                raise UserDeclinedError(
                    f"Nothing was changed: the virtual machines connected to '{name}' keep their connection."
                ) from exc
            disconnect_users = True


async def _apply_once(
    controller: NetworkController, entry: SwitchEntry, confirm_default_route: bool, disconnect_users: bool
) -> SwitchInfo | None:
    name = entry.current_name
    if name is None:
        return await controller.create_switch(entry.spec(), confirm_default_route)
    if entry.removed:
        await controller.remove_switch(name, disconnect_users)
        return None
    return await controller.set_switch(name, entry.spec(), confirm_default_route, disconnect_users)
