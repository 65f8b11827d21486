"""What the tests of the disk wizards and of Inspect Disk share: finding and driving widgets (the
New Virtual Machine wizard's tests find theirs with these too), waiting for a wizard's checks, and
``qemu-img``/``qemu-io`` as the independent observer."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QWidget,
    QWizard,
)

from hvmanager.backend import limits
from hvmanager.backend.connection import Server
from hvmanager.controllers.disks import DiskController
from hvmanager.ui.disk_wizard_base import DiskWizard
from tests.gui.conftest import wait_until

W = TypeVar("W", bound=QWidget)
SHOTS = Path(os.environ["HVTEST_SHOTS"]) if os.environ.get("HVTEST_SHOTS") else None
MIB = limits.MIB


@pytest.fixture
def connected_disks(event_loop_qt: Any, libvirtd: str) -> Iterator[DiskController]:
    """The disk controller of a connected local server (who uses a disk, host disks)."""
    server = Server(libvirtd)
    server.open()
    controller = DiskController(server)
    yield controller
    controller.close()
    server.close()


# --- widgets ---------------------------------------------------------------------------------------


def find(widget: QWidget, cls: type[W], name: str) -> W:
    """The child of ``widget`` with this objectName."""
    child = widget.findChild(cls, name)
    assert child is not None, f"no {cls.__name__} named {name}"
    return child


def radio(wizard: QWidget, name: str) -> QRadioButton:
    return find(wizard, QRadioButton, name)


def edit(wizard: QWidget, name: str) -> QLineEdit:
    return find(wizard, QLineEdit, name)


def button(wizard: QWizard, which: QWizard.WizardButton) -> QPushButton:
    found = wizard.button(which)
    assert isinstance(found, QPushButton)
    return found


def next_button(wizard: QWizard) -> QPushButton:
    return button(wizard, QWizard.WizardButton.NextButton)


def finish_button(wizard: QWizard) -> QPushButton:
    return button(wizard, QWizard.WizardButton.FinishButton)


def shown_problem(wizard: QWizard) -> str:
    """The red problem text of the current page ("" when it is hidden)."""
    page = wizard.currentPage()
    assert page is not None
    label = find(page, QLabel, "problemLabel")
    return label.text() if label.isVisible() else ""


# --- wizards --------------------------------------------------------------------------------------


async def checked(wizard: DiskWizard) -> None:
    """Wait for the back end's check of what is typed now."""
    await wait_until(wizard.checked, 20, "the back end's check")


async def click_next(wizard: DiskWizard) -> None:
    await checked(wizard)
    assert next_button(wizard).isEnabled(), shown_problem(wizard)
    before = wizard.currentId()
    next_button(wizard).click()
    assert wizard.currentId() == before + 1


async def go_to(wizard: DiskWizard, page_id: int) -> None:
    """Click Next until ``page_id`` is shown; every page on the way must be valid."""
    while wizard.currentId() < page_id:
        await click_next(wizard)
    assert wizard.currentId() == page_id


async def assert_rejected(wizard: DiskWizard, message: str) -> None:
    """The current page shows ``message``; neither Next nor Finish can be clicked."""
    await checked(wizard)
    assert shown_problem(wizard) == message
    assert not next_button(wizard).isEnabled()
    assert not finish_button(wizard).isEnabled()


async def assert_accepted(wizard: DiskWizard) -> None:
    await checked(wizard)
    assert shown_problem(wizard) == ""
    assert next_button(wizard).isEnabled() or wizard.currentId() == len(wizard.pageIds()) - 1


def retype(qtbot: Any, line_edit: QLineEdit, text: str) -> None:
    """Replace the text of a line edit by typing, as a user does."""
    line_edit.setFocus()
    line_edit.selectAll()
    qtbot.keyClick(line_edit, Qt.Key.Key_Delete)
    if text:
        qtbot.keyClicks(line_edit, text)
    assert line_edit.text() == text


def click(qtbot: Any, widget: QWidget) -> None:
    """Click a button; radio buttons and check boxes on their indicator (a stretched one's centre
    may be beyond its text, where a click does nothing)."""
    assert widget.isEnabled(), f"{widget.objectName()} is disabled"
    assert widget.isVisible(), f"{widget.objectName()} is hidden"
    if isinstance(widget, QRadioButton | QCheckBox):
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(8, widget.height() // 2))
    else:
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def choose_in_combo(qtbot: Any, combo: QComboBox, text: str) -> None:
    """Pick an entry with the keyboard (Home, then Down until it is current)."""
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Home)
    for _ in range(combo.count()):
        if combo.currentText() == text:
            return
        qtbot.keyClick(combo, Qt.Key.Key_Down)
    assert combo.currentText() == text


async def jump(qtbot: Any, wizard: DiskWizard, row: int) -> None:
    """Click an entry of the page list on the left, once what was typed is checked."""
    await checked(wizard)
    pages = find(wizard, QListWidget, "pageList")
    rect = pages.visualItemRect(pages.item(row))
    qtbot.mouseClick(pages.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert wizard.currentId() == row


async def finish(wizard: DiskWizard) -> None:
    """Click Finish and wait until the operation ended (the wizard closed, or showed a failure)."""
    await checked(wizard)
    assert finish_button(wizard).isEnabled(), shown_problem(wizard)
    finish_button(wizard).click()
    summary = wizard.summary_page
    await wait_until(lambda: not wizard.isVisible() or summary.failure(), 120, "the operation to end")


def shot(widget: QWidget, name: str) -> None:
    """Render a page for a look, into the folder named by HVTEST_SHOTS (when set)."""
    if SHOTS is not None:
        SHOTS.mkdir(exist_ok=True)
        assert widget.grab().save(str(SHOTS / f"{name}.png"))


# --- the independent observer: qemu-img and qemu-io ------------------------------------------------


def qemu_info(path: Path | str, fmt: str) -> dict[str, Any]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "-f", fmt, "--output=json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return dict(json.loads(out))


def qemu_create(path: Path, fmt: str, size: str, *options: str) -> Path:
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, *options, str(path), size], check=True)
    return path


def qemu_write(path: Path, fmt: str, *commands: str) -> None:
    """Write data with qemu-io (``write -P 0xab 0 1M`` ...)."""
    args = ["qemu-io", "-f", fmt]
    for command in commands:
        args += ["-c", command]
    subprocess.run([*args, str(path)], check=True, capture_output=True)


def same_content(first: Path | str, first_fmt: str, second: Path | str, second_fmt: str) -> None:
    """``qemu-img compare``: the same content (a larger disk's extra area reading as zeros)."""
    done = subprocess.run(
        ["qemu-img", "compare", "-f", first_fmt, "-F", second_fmt, str(first), str(second)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def qemu_compare(first: Path | str, first_fmt: str, second: Path | str, second_fmt: str) -> None:
    """The two disks have the same size and content (qemu-img info, qemu-img compare)."""
    assert qemu_info(first, first_fmt)["virtual-size"] == qemu_info(second, second_fmt)["virtual-size"]
    same_content(first, first_fmt, second, second_fmt)


def leftovers(folder: Path) -> list[str]:
    """Temporary files a failed operation might have left (the back end promises none)."""
    return sorted(name for name in os.listdir(folder) if name.startswith(".") or "partial" in name)
