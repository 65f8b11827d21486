"""The Settings dialog's Hard Drive buttons New, Edit and Inspect open the real disk wizards: New
makes a disk (checked with qemu-img) and puts it on the drive whose page asked; Edit and Inspect
open on the drive's file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QWizard
from pytestqt.qtbot import QtBot

from hvmanager.backend.connection import Server
from hvmanager.backend.storage_layout import Bus
from hvmanager.controllers.disks import DiskController
from hvmanager.ui.edit_disk_wizard import EditDiskWizard
from hvmanager.ui.inspect_disk_dialog import InspectDiskDialog
from hvmanager.ui.new_disk_wizard import NewDiskWizard
from hvmanager.ui.settings_disk_links import connect_disk_buttons, disk_folder_of
from hvmanager.ui.vm_settings_dialog import VmSettingsDialog
from tests.conftest import SYSTEM_URI
from tests.gui import test_settings_storage
from tests.gui.conftest import Runner, wait_until
from tests.gui.test_settings_storage import (
    click_button,
    click_entry,
    gen1_layout,
    ok_change,
    on_page,
    open_dialog,
)
from tests.gui.test_vm_settings_dialog import retype

disks = test_settings_storage.disks  # the same image files as the storage pages' tests


@pytest.fixture
def controller(event_loop_qt: Any) -> Iterator[DiskController]:
    made = DiskController(Server(SYSTEM_URI))
    yield made
    made.close()


@pytest.fixture
def dialog(
    qtbot: QtBot, disks: dict[str, str], controller: DiskController, tmp_path: Path
) -> VmSettingsDialog:
    shown = open_dialog(qtbot, gen1_layout(disks))
    (tmp_path / "new").mkdir()
    connect_disk_buttons(shown, controller, str(tmp_path / "new"))
    return shown


def test_new_makes_a_disk_and_puts_it_on_the_drive_that_asked(
    qtbot: QtBot, run: Runner, dialog: VmSettingsDialog, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "extra.qcow2"

    async def body() -> None:
        click_entry(qtbot, dialog, "IDE Controller 0", "Hard Drive")
        click_button(qtbot, dialog, "newDiskButton")
        wizard = await wait_until(lambda: dialog.findChild(NewDiskWizard), 10, "the wizard")
        name = wizard.findChild(QLineEdit, "nameEdit")
        assert name is not None
        retype(qtbot, name, target.name)
        await wait_until(wizard.checked, 20, "the back end's check")
        qtbot.mouseClick(wizard.button(QWizard.WizardButton.FinishButton), Qt.MouseButton.LeftButton)
        path_edit = on_page(dialog, QLineEdit, "diskPathEdit")
        await wait_until(lambda: path_edit.text() == str(target), 60, "the new disk on the drive")

    run(body)
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", "-f", "qcow2", str(target)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert info["format"] == "qcow2"
    change = ok_change(qtbot, dialog)
    assert change.storage is not None
    drive = next(d for d in change.storage.drives if d.slot == (Bus.IDE, 0, 0))
    assert (drive.path, drive.format) == (str(target), "qcow2")


def test_edit_and_inspect_open_on_the_drives_file(
    qtbot: QtBot,
    run: Runner,
    dialog: VmSettingsDialog,
    disks: dict[str, str],
) -> None:
    async def body() -> None:
        click_entry(qtbot, dialog, "IDE Controller 0", "Hard Drive")
        click_button(qtbot, dialog, "inspectDiskButton")
        properties = await wait_until(lambda: dialog.findChild(InspectDiskDialog), 10, "the properties")
        await wait_until(properties.loaded, 20, "the disk to be read")
        file_name = properties.findChild(QLabel, "fileNameValue")
        assert file_name is not None and file_name.text() == "web.qcow2"
        properties.close()
        click_button(qtbot, dialog, "editDiskButton")
        wizard = await wait_until(lambda: dialog.findChild(EditDiskWizard), 10, "the wizard")
        path = wizard.findChild(QLineEdit, "diskPathEdit")
        assert path is not None and path.text() == disks["web.qcow2"]
        wizard.close()

    run(body)


def test_new_disks_go_to_the_vms_own_disk_folder(tmp_path: Path) -> None:
    (tmp_path / "vm" / "Virtual Hard Disks").mkdir(parents=True)
    assert disk_folder_of(str(tmp_path / "vm"), "/default") == str(tmp_path / "vm" / "Virtual Hard Disks")
    assert disk_folder_of(str(tmp_path / "other"), "/default") == "/default"
    assert disk_folder_of(None, "/default") == "/default"
