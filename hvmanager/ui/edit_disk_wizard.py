"""The Edit Virtual Hard Disk Wizard, as in Hyper-V Manager (Actions ▸ Edit Disk, or the Settings'
Hard Drive page's Edit button).

Before You Begin → Locate Disk → Choose Action → the action's page → Summary. The disk is
inspected (with its minimum size and the VMs that use it) as soon as its path is typed; Choose
Action offers what ``vhd.action_problems`` allows and shows the reason under the others. A disk a
running VM has open can only be expanded, online through libvirt (``vm_storage.expand_online``):
the other actions say so. Finish runs the action through the ``DiskController`` with a progress
bar and emits ``disk_edited(path)`` with the disk changed or made.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from hvmanager.backend import limits, vhd
from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_types import EditAction, VhdInfo
from hvmanager.controllers.disks import DiskController, DiskReport
from hvmanager.ui.disk_wizard_base import DiskWizard
from hvmanager.ui.disk_wizard_pages import (
    TYPE_LABELS,
    SummaryPage,
    TextPage,
    maximum_size,
    size_bytes,
    size_field_problem,
)
from hvmanager.ui.edit_disk_wizard_pages import ActionPage, LocateDiskPage, NewFileFields, action_page
from hvmanager.ui.inspect_disk_dialog import describe, usage_text

RUNNING_TEXT = {
    EditAction.COMPACT: "Compacting the virtual hard disk...",
    EditAction.CONVERT: "Converting the virtual hard disk...",
    EditAction.EXPAND: "Expanding the virtual hard disk...",
    EditAction.SHRINK: "Shrinking the virtual hard disk...",
    EditAction.MERGE: "Merging the virtual hard disk...",
    EditAction.RECONNECT: "Reconnecting the virtual hard disk...",
}


class EditDiskPage(enum.IntEnum):
    """The wizard's pages, in order (also their ids)."""

    BEFORE_YOU_BEGIN = 0
    LOCATE = 1
    ACTION = 2
    CONFIGURE = 3
    SUMMARY = 4


class EditDiskWizard(DiskWizard):
    """Hyper-V's Edit Virtual Hard Disk Wizard; ``disk_edited(str path)`` once the action is done."""

    disk_edited = Signal(str)

    def __init__(
        self,
        controller: DiskController,
        path: str = "",
        action: EditAction | None = None,
        parent: QWidget | None = None,
    ) -> None:
        """``path`` and ``action`` preset the disk and the action (Inspect Disk's Reconnect…)."""
        super().__init__(controller, "Edit Virtual Hard Disk Wizard", self.perform, parent)
        self.setObjectName("editDiskWizard")
        self._report: DiskReport | None = None
        self._report_path: str | None = None
        self._report_error = ""
        self._offered: dict[EditAction, str | None] = {}
        self._suggested_for: str | None = None
        self._preset_action = action
        self.before_page = TextPage(
            "Before You Begin",
            "This wizard helps you edit a virtual hard disk.",
            [
                "You can compact, convert, expand, shrink, merge or reconnect a virtual hard disk, "
                "depending on its format and type.",
                "Edit a disk only while no virtual machine uses it: a disk of a running virtual "
                "machine can only be expanded. Editing a disk that other differencing disks or "
                "checkpoints read through can make their data unusable.",
            ],
        )
        self.locate_page = LocateDiskPage()
        self.action_page = action_page()
        self.configure_page = ActionPage()
        summary = SummaryPage(
            "Completing the Edit Virtual Hard Disk Wizard",
            "You have successfully completed the Edit Virtual Hard Disk Wizard.",
            "You are about to make the following change.",
            "To make the change and close this wizard, click Finish.",
        )
        pages = [self.before_page, self.locate_page, self.action_page, self.configure_page, summary]
        names = ("beforePage", "locatePage", "actionPage", "configurePage", "summaryPage")
        for page, name in zip(pages, names, strict=True):
            page.setObjectName(name)
        titles = ["Before You Begin", "Locate Disk", "Choose Action", self.configure_page.title(), "Summary"]
        self.locate_page.path_edit.setText(path)
        self.install_pages(pages, titles)

    # --- what the user chose ----------------------------------------------------------------------

    def report(self) -> DiskReport | None:
        """What the wizard knows about the disk typed on Locate Disk (None until it is inspected)."""
        if self._report_path != self.locate_page.path():
            return None
        return self._report

    def action(self) -> EditAction | None:
        """The action chosen on Choose Action."""
        value = self.action_page.value()
        return value if isinstance(value, EditAction) else None

    def new_file_fields(self) -> NewFileFields | None:
        """The new disk's fields of Convert, or of Merge to a new disk (None for other actions)."""
        action, page = self.action(), self.configure_page
        if action is EditAction.CONVERT:
            return page.convert_fields
        if action is EditAction.MERGE and not page.merge_to_parent():
            return page.merge_fields
        return None

    def check_key(self) -> Hashable:
        """The disk, the action and the action's fields the back end checks."""
        fields, page = self.new_file_fields(), self.configure_page
        target = (fields.path(), fields.disk_format(), fields.disk_type()) if fields is not None else None
        parent = page.parent_edit.text().strip() if self.action() is EditAction.RECONNECT else None
        return self.locate_page.path(), self.action(), target, parent

    # --- checks ---------------------------------------------------------------------------------

    async def run_checks(self, key: Hashable) -> dict[int, str]:
        """Inspect the disk (once per path), then the new file's or the new parent's problems."""
        assert isinstance(key, tuple)
        path, action, target, parent = key
        if not path:
            return {}
        if path != self._report_path:
            await self._inspect(path)
        if self._report is None:
            return {EditDiskPage.LOCATE: self._report_error}
        info = self._report.info
        if target is not None and action is not None:
            destination, fmt, disk_type = target
            found = await self.controller.destination_problems(info, destination, fmt, disk_type)
            return {EditDiskPage.CONFIGURE: found[0]} if found else {}
        if parent:
            try:
                await self.controller.inspect(parent, with_users=False)
            except HvError as exc:
                return {EditDiskPage.CONFIGURE: f"The new parent is not usable: {exc.message}"}
        return {}

    async def _inspect(self, path: str) -> None:
        self._report_path = path
        try:
            self._report = await self.controller.inspect(path, with_minimum_size=True)
        except HvError as exc:
            self._report, self._report_error, self._offered = None, str(exc), {}
            return
        self._offered = offered_actions(self._report)

    def finish_allowed(self) -> bool:
        """Finish only once the action's page was seen (an edit is not undone by Cancel)."""
        return self.currentId() >= EditDiskPage.CONFIGURE

    def checks_finished(self) -> None:
        """A preset action (Reconnect... of Inspect Disk) opens at its page once the disk is known
        and the action chosen (choosing it starts one more check, which must end first)."""
        preset = self._preset_action
        if preset is None or self.report() is None or not self.checked():
            return
        self._preset_action = None
        if self.action() is preset:  # else it is not offered: Choose Action says why
            self.jump_to(EditDiskPage.CONFIGURE)

    def propagate(self) -> None:
        """Facts on Locate Disk, the actions offered, the action's page."""
        report = self.report()
        self.locate_page.show_facts(*facts(report))
        for action in EditAction:
            reason = self._offered.get(action) if report is not None else "locate the disk first."
            self.action_page.set_available(action, reason)
        chosen = self.action()
        if chosen is None and report is not None:
            offered = [action for action in EditAction if self._offered.get(action) is None]
            first = self._preset_action if self._preset_action in offered else next(iter(offered), None)
            if first is not None:
                self.action_page.select(first)
                chosen = first
        self.configure_page.show_action(chosen or EditAction.COMPACT)
        if report is not None:
            self._fill_action_page(report.info)

    def _fill_action_page(self, info: VhdInfo) -> None:
        page = self.configure_page
        if self._suggested_for != info.path:
            self._suggested_for = info.path
            page.convert_fields.suggest(info.path, "qcow2" if info.format != "qcow2" else "vhdx")
            page.merge_fields.suggest(info.path, "qcow2")
            page.size_edit.setText("")
        page.compact_text.setText(
            f"The file takes {limits.human_size(info.file_size)} now. Compacting rewrites it without "
            "the blocks that hold no data or only zeros; the content stays the same. To free the "
            "space of deleted files, zero or discard it inside the guest first (fstrim)."
        )
        minimum = f"; its minimum size is {limits.human_size(info.minimum_size)}" if info.minimum_size else ""
        current = f"The current size of the disk is {limits.human_size(info.size)}"
        page.size_note.setText(current + (minimum if self.action() is EditAction.SHRINK else "") + ".")
        page.size_limit.setText(f"(Maximum: {limits.human_size(maximum_size(info.format))})")
        page.merge_parent_label.setText(info.parent_path or "")
        page.reconnect_text.setText(
            f"The parent of this differencing disk is missing: '{info.parent_path or '?'}'. Choose "
            "the parent disk where it is now; it must have the parent's identifier (unless you "
            "ignore the ID mismatch) and its size."
        )

    def field_problem(self, page_id: int) -> str | None:
        """What is wrong with the path, the chosen action or its fields as typed."""
        if page_id == EditDiskPage.LOCATE and not self.locate_page.path():
            return "Enter the path of the virtual hard disk to edit."
        report = self.report()
        if page_id == EditDiskPage.ACTION and report is not None and self.action() is None:
            reasons = "; ".join(f"{a.value}: {r}" for a, r in self._offered.items() if r)
            return f"No action can be done on this disk ({reasons})"
        if page_id == EditDiskPage.CONFIGURE and report is not None:
            return self._configure_problem(report.info)
        return None

    def _configure_problem(self, info: VhdInfo) -> str | None:
        action, page = self.action(), self.configure_page
        fields = self.new_file_fields()
        if fields is not None and not fields.path():
            return "Enter the path of the new virtual hard disk."
        if action is EditAction.RECONNECT and not page.parent_edit.text().strip():
            return "Enter the path of the parent disk."
        if action not in (EditAction.EXPAND, EditAction.SHRINK):
            return None
        text = page.size_edit.text()
        problem = size_field_problem(text, info.format)
        size = size_bytes(text) or 0
        if problem:
            return problem
        current = limits.human_size(info.size)
        if action is EditAction.EXPAND and size <= info.size:
            return f"The new size must be larger than the current size ({current})."
        if action is EditAction.SHRINK and size >= info.size:
            return f"The new size must be smaller than the current size ({current})."
        if action is EditAction.SHRINK and info.minimum_size is not None and size < info.minimum_size:
            minimum = limits.human_size(info.minimum_size)
            return f"The disk holds data up to {minimum}: its minimum size. Enter at least {minimum}."
        return None

    # --- summary and Finish ---------------------------------------------------------------------

    def summary(self) -> str:
        """One ``Description:<tab>value`` line per fact (copyable)."""
        report, action = self.report(), self.action()
        rows = [("Disk", self.locate_page.path())]
        if report is not None:
            rows.append(("Disk is", describe(report.info)))
        rows.append(("Action", action.value if action else ""))
        page, fields = self.configure_page, self.new_file_fields()
        if action in (EditAction.EXPAND, EditAction.SHRINK):
            rows.append(("New size", f"{page.size_edit.text().strip()} GB"))
            if report is not None and report.running_user is not None:
                rows.append(("Online", f"while '{report.running_user.vm_name}' runs"))
        if fields is not None:
            rows.append(("New disk", fields.path()))
            rows.append(("Format", limits.format_for_qemu(fields.disk_format())))
            rows.append(("Type", TYPE_LABELS[fields.disk_type()]))
        elif action is EditAction.MERGE and report is not None:
            rows.append(("Into", report.info.parent_path or ""))
        if action is EditAction.RECONNECT:
            rows.append(("New parent", page.parent_edit.text().strip()))
            rows.append(("Ignore ID mismatch", "Yes" if page.ignore_id_check.isChecked() else "No"))
        return "\n".join(f"{label}:\t{value}" for label, value in rows)

    def running_text(self) -> str:
        """What the progress bar stands for."""
        action = self.action()
        return RUNNING_TEXT[action] if action else ""

    async def perform(self, on_progress: Callable[[float], None]) -> object:
        """Run the chosen action."""
        report, action, page = self.report(), self.action(), self.configure_page
        assert report is not None and action is not None
        path, controller = report.info.path, self.controller
        result: object
        fields = self.new_file_fields()
        if action is EditAction.COMPACT:
            result = await controller.compact(path, on_progress)
        elif fields is not None:
            write = controller.convert if action is EditAction.CONVERT else controller.merge_to_new
            result = await write(path, fields.path(), fields.disk_format(), fields.disk_type(), on_progress)
        elif action is EditAction.MERGE:
            result = await controller.merge_into_parent(path, on_progress)
        elif action is EditAction.RECONNECT:
            parent = page.parent_edit.text().strip()
            result = await controller.reconnect(path, parent, page.ignore_id_check.isChecked())
        elif report.running_user is not None:
            result = await controller.expand_online(path, size_bytes(page.size_edit.text()) or 0)
        else:
            result = await controller.resize(path, size_bytes(page.size_edit.text()) or 0, on_progress)
        self.disk_edited.emit(result.path if isinstance(result, VhdInfo) else path)
        return result


def offered_actions(report: DiskReport) -> dict[EditAction, str | None]:
    """``vhd.action_problems``; a disk a running VM has open can only be expanded (online)."""
    offered = vhd.action_problems(report.info)
    running = report.running_user
    if running is not None:
        why = f"the running virtual machine '{running.vm_name}' uses the disk; shut it down first."
        offered = {
            action: reason if action is EditAction.EXPAND else why for action, reason in offered.items()
        }
    return offered


def facts(report: DiskReport | None) -> tuple[str, str]:
    """What Locate Disk says about the disk, and who uses it."""
    if report is None:
        return "", ""
    note = usage_text(report)
    if report.running_user is not None:
        note += " While its virtual machine runs, the disk can only be expanded."
    return describe(report.info), note
