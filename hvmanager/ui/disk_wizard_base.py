"""The frame the New and Edit Virtual Hard Disk wizards share (their common pages are in
``disk_wizard_pages``).

``DiskWizard`` is a Hyper-V wizard with the list of its pages on the left (a click jumps to any
page up to the first one with a problem) whose inputs are checked in two ways: each page's own
fields as they are typed (``field_problem``: pure checks such as ``limits``), and the whole
request by the back end (``run_checks``), which reads files and so runs off the GUI thread through
the ``DiskController``. A page shows the first problem of either in red and keeps Next and Finish
disabled; Next also waits for the check of what was typed last. Finish runs the operation the
subclass hands to the constructor on the Summary page with a progress bar; a failure is shown
there in red and the wizard stays open (the back end leaves nothing half-made behind).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QStyle, QWidget, QWizard

from hvmanager.controllers.disks import DiskController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.disk_wizard_pages import SummaryPage
from hvmanager.ui.new_vm_wizard_base import ProblemPage
from hvmanager.ui.wizard_frame import PageListWizard

Operation = Callable[[Callable[[float], None]], Awaitable[object]]
"""What Finish runs: called with ``on_progress(percent)``; raises on failure."""

log = logging.getLogger(__name__)

WIZARD_SIZE = (760, 560)
_UNCHECKED = object()


# --- the wizard ------------------------------------------------------------------------------


class DiskWizard(PageListWizard):
    """A disk wizard: pages in a line, the last one a ``SummaryPage``.

    Subclasses pass the operation Finish runs to the constructor and provide ``field_problem``,
    ``check_key``/``run_checks``, ``summary`` and ``running_text``. Signal ``completed(object)``:
    the operation's result.
    """

    completed = Signal(object)

    def __init__(
        self, controller: DiskController, title: str, operation: Operation, parent: QWidget | None = None
    ) -> None:
        """``operation(on_progress)`` is what Finish runs (``on_progress(percent)`` on the GUI
        thread); it raises on failure."""
        super().__init__(parent)
        self.controller = controller
        self._operation = operation
        self.setWindowTitle(title)
        self._pages: list[ProblemPage] = []
        self._refreshing = False
        self._checking = False
        self._checked_key: object = _UNCHECKED
        self._checked_problems: dict[int, str] = {}
        self._running = False
        self._closed = False
        self._failed_key: object = _UNCHECKED
        self._check_done = asyncio.Event()
        self.setup_frame(QStyle.StandardPixmap.SP_DriveHDIcon)
        self.resize(*WIZARD_SIZE)

    def install_pages(self, pages: Sequence[ProblemPage], list_titles: Sequence[str]) -> None:
        """Add the pages (the last one the Summary) and the page list on the left."""
        self._pages = list(pages)
        for page_id, page in enumerate(self._pages):
            self.setPage(page_id, page)
            page.changed.connect(self.refresh)
        self.add_page_list(list_titles)
        self.currentIdChanged.connect(self.refresh)
        self.refresh()

    @property
    def summary_page(self) -> SummaryPage:
        """The last page."""
        page = self._pages[-1]
        assert isinstance(page, SummaryPage)
        return page

    # --- what subclasses provide ------------------------------------------------------------------

    def propagate(self) -> None:
        """Make fields follow other pages' choices (before every check)."""

    def field_problem(self, page_id: int) -> str | None:
        """What is wrong with a page's own fields as typed (pure checks only)."""
        return None

    def check_key(self) -> Hashable:
        """Everything ``run_checks`` depends on; a change starts a new check."""
        return None

    async def run_checks(self, key: Hashable) -> dict[int, str]:
        """The back end's problems of the inputs ``key`` stands for, by page id."""
        return {}

    def checks_finished(self) -> None:
        """The back end's check of what is typed now has arrived (and was shown)."""

    def summary(self) -> str:
        """The Summary page's text."""
        return ""

    def running_text(self) -> str:
        """What the progress bar stands for ("Creating the virtual hard disk...")."""
        return ""

    # --- state --------------------------------------------------------------------------------

    def checked(self) -> bool:
        """Whether the back end has checked what is typed now."""
        return not self._checking and self._checked_key == self.check_key()

    def running(self) -> bool:
        """Whether Finish started the operation and it has not ended."""
        return self._running

    def closed(self) -> bool:
        """Whether the wizard was closed (late results of its tasks are dropped)."""
        return self._closed

    def finish_allowed(self) -> bool:
        """Whether Finish may be offered on the current page once everything is valid."""
        return True

    def problem_of(self, page_id: int) -> str:
        """The problem a page shows ("" when none); the Summary shows the first of any page."""
        if page_id == len(self._pages) - 1:
            return next(iter(self.problems()), "")
        return self.field_problem(page_id) or self._checked_problems.get(page_id, "")

    def problems(self) -> list[str]:
        """Every input page's problem, in page order (and a check that failed on the Summary)."""
        last = len(self._pages) - 1
        found = [problem for page_id in range(last) if (problem := self.problem_of(page_id))]
        return found + ([self._checked_problems[last]] if self._checked_problems.get(last) else [])

    def furthest_reachable(self) -> int:
        """The last page the page list can jump to: every page before it is valid."""
        for page_id in range(len(self._pages)):
            if self.problem_of(page_id):
                return page_id
        return len(self._pages) - 1

    def page_list_locked(self) -> bool:
        """The page list takes no clicks while the operation runs."""
        return self._running

    def validateCurrentPage(self) -> bool:  # noqa: N802 (Qt's name)
        """Next waits for the check of what was typed last."""
        return not self._running and self.checked() and not self.problem_of(self.currentId())

    # --- keeping pages in step ----------------------------------------------------------------

    def refresh(self, *_args: object) -> None:
        """Re-check the fields, start the back end's check when they changed, show problems."""
        if self._refreshing or self._closed or self._running or not self._pages:
            return
        self._refreshing = True
        try:
            self.propagate()
            key = self.check_key()
            if key != self._checked_key and not self._checking:
                self._checking = True
                spawn(self._check_loop())
            if self._failed_key is not _UNCHECKED and key != self._failed_key:
                self.summary_page.clear_status()
                self._failed_key = _UNCHECKED
            finish_ok = self.checked() and not self.problems() and self.finish_allowed()
            current = self.currentPage()
            for page_id, page in enumerate(self._pages):
                page.show_problem(self.problem_of(page_id), finish_ok, page is current)
            self.summary_page.set_summary(self.summary())
            self.update_page_list()
        finally:
            self._refreshing = False

    async def _check_loop(self) -> None:
        """Check until the result is for what is typed now (typing goes on during a check)."""
        try:
            while not self._closed:
                key = self.check_key()
                try:
                    found = await self.run_checks(key)
                except Exception as exc:  # the back end could not check: say why, stay blocked
                    log.debug("disk wizard check failed", exc_info=exc)
                    found = {max(self.currentId(), 0): str(exc) or type(exc).__name__}
                if key == self.check_key():
                    self._checked_key, self._checked_problems = key, found
                    break
        finally:
            self._checking = False
            self._check_done.set()
        if not self._closed:
            self.refresh()
            self.checks_finished()

    # --- Finish -------------------------------------------------------------------------------

    def accept(self) -> None:
        """Finish: run the operation on the Summary page (the wizard closes when it succeeds)."""
        if not self._running:
            spawn(self._finish())

    async def _finish(self) -> None:
        while not self.checked() and not self._closed:
            self._check_done.clear()
            self.refresh()  # starts the check of what is typed now, if none runs
            if not self._checking:
                break
            await self._check_done.wait()
        if self._closed or self._running or self.problems() or not self.finish_allowed():
            return
        self.jump_to(len(self._pages) - 1)
        self._set_running(True)
        self.summary_page.show_running(self.running_text())
        try:
            result = await self._operation(self.summary_page.set_progress)
        except Exception as exc:  # every failure is shown; HvErrors say what to do
            log.debug("disk wizard operation failed", exc_info=exc)
            self._set_running(False)
            self.summary_page.show_failure(str(exc) or type(exc).__name__)
            self._failed_key = self.check_key()
            self._checked_key = _UNCHECKED  # the files changed meanwhile, maybe: check again
            self.refresh()
            return
        self._set_running(False)
        self._closed = True
        self.completed.emit(result)
        QDialog.done(self, QDialog.DialogCode.Accepted)

    def _set_running(self, running: bool) -> None:
        self._running = running
        for page in self._pages[:-1]:
            page.setEnabled(not running)
        for button in (
            QWizard.WizardButton.BackButton,
            QWizard.WizardButton.NextButton,
            QWizard.WizardButton.FinishButton,
            QWizard.WizardButton.CancelButton,
        ):
            self.button(button).setEnabled(not running)
        self.update_page_list()

    def done(self, result: int) -> None:
        """Closing: not while the operation runs (it can't be stopped halfway)."""
        if self._running:
            return
        if result != QDialog.DialogCode.Accepted.value:
            self._closed = True
        super().done(result)

    def reject(self) -> None:
        """Cancel (or Esc): not while the operation runs."""
        if not self._running:
            super().reject()

    def closeEvent(self, event: QCloseEvent) -> None:
        """The window's close button: not while the operation runs."""
        if self._running:
            event.ignore()
            return
        self._closed = True
        super().closeEvent(event)
