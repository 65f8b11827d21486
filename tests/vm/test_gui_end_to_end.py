"""End to end through the GUI with a real guest: create it with the wizard (real clicks), start,
shut down, save and restore, turn off, delete with its disk. virsh, qemu-img and the guest's own
serial output confirm every step; a watchdog reports the longest GUI stall."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWizard,
)

from hvmanager.backend.vmactions import VmAction
from hvmanager.views.vm_table_model import Column, VmRole
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.table import cell, row_of
from tests.vm.helpers import domain_exists, dominfo, domstate, last_tick, qemu_img_info, serial_text, virsh

pytestmark = pytest.mark.vm


def _click_vm_action(window: Any, label: str) -> None:
    """Click an entry of the VM block of the Actions pane, as a user does."""
    buttons = [
        b
        for b in window.actions_pane.vm_block.buttons()
        if b.defaultAction().text() == label and b.isVisible()
    ]
    assert buttons, f"no visible {label} entry in the Actions pane"
    button = buttons[0]
    assert button.isEnabled(), f"{label} is disabled"
    button.click()


async def _confirm() -> None:
    box = await wait_until(QApplication.activeModalWidget, 10, "a confirmation")
    box.findChild(QPushButton, "confirmButton").click()


def _child(wizard: QWizard, kind: type, name: str) -> Any:
    widget = wizard.findChild(kind, name)
    assert widget is not None, name
    return widget


async def _create_with_wizard(window: Any, name: str, location: Path, guest: Any) -> None:
    window.app_actions.new_vm.trigger()
    wizard = await wait_until(lambda: window.findChild(QWizard, "newVmWizard"), 20, "the wizard")
    nxt = wizard.button(QWizard.WizardButton.NextButton)

    async def click_next() -> None:
        nxt.click()
        await asyncio.sleep(0.05)  # a person can't click faster; lets the loop breathe

    await click_next()  # Before You Begin
    _child(wizard, QLineEdit, "nameEdit").setText(name)
    _child(wizard, QCheckBox, "differentLocationCheck").setChecked(True)
    _child(wizard, QLineEdit, "locationEdit").setText(str(location))
    await click_next()
    _child(wizard, QRadioButton, "gen1Radio").click()
    await click_next()
    _child(wizard, QLineEdit, "startupMemoryEdit").setText("256")
    await click_next()
    assert _child(wizard, QComboBox, "networkCombo").currentText() == "Not Connected"
    await click_next()
    _child(wizard, QRadioButton, "newDiskRadio").click()
    _child(wizard, QLineEdit, "diskSizeEdit").setText("1")
    await click_next()
    _child(wizard, QRadioButton, "kernelRadio").click()
    _child(wizard, QLineEdit, "kernelEdit").setText(str(guest.kernel))
    _child(wizard, QLineEdit, "initrdEdit").setText(str(guest.initrd))
    _child(wizard, QLineEdit, "cmdlineEdit").setText(guest.cmdline)
    await click_next()
    finish = wizard.button(QWizard.WizardButton.FinishButton)
    assert finish.isEnabled()
    finish.click()
    await wait_until(lambda: row_of(window, name) is not None, 20, "the new VM in the list")


def test_create_start_shut_down_save_turn_off_delete(
    run: Any, make_window: Any, clean_domains: str, vm_location: Path, test_guest: Any, watchdog: Any
) -> None:
    name = vm_name("e2e")
    window = make_window(SYSTEM_URI, vm_folder=str(vm_location))
    serial = vm_location / name / "Virtual Machines" / "serial.log"
    disk = vm_location / name / "Virtual Hard Disks" / f"{name}.qcow2"

    async def body() -> None:
        await wait_until(lambda: window.app_actions.new_vm.isEnabled(), 20, "the connection")
        await _create_with_wizard(window, name, vm_location, test_guest)
        assert await asyncio.to_thread(domstate, name) == "shut off"
        assert (await asyncio.to_thread(qemu_img_info, disk))["format"] == "qcow2"
        uuid = await asyncio.to_thread(virsh, "domuuid", name)
        await wait_until(lambda: window.selected_uuids() == [uuid], 10, "the new VM to be selected")

        # Start: Running in the list and for virsh, CPU in use, the guest's serial says it booted.
        _click_vm_action(window, "Start")
        await wait_until(lambda: cell(window, name, Column.STATE) == "Running", 30, "Running")
        assert await asyncio.to_thread(domstate, name) == "running"
        await wait_until(lambda: "HVTEST: ready" in serial_text(serial), 90, "the guest to boot")
        await wait_until(lambda: (cell(window, name, Column.CPU, VmRole.SORT) or 0) > 0, 20, "CPU usage")
        assert cell(window, name, Column.MEMORY).endswith(" MB")
        assert cell(window, name, Column.UPTIME)

        # Shut Down: the guest obeys ACPI and the VM turns Off.
        _click_vm_action(window, "Shut Down...")
        await _confirm()
        try:
            await wait_until(lambda: cell(window, name, Column.STATE) == "Off", 60, "Off after shut down")
        except AssertionError as exc:
            state = await asyncio.to_thread(domstate, name)
            tail = "\n".join(serial_text(serial).splitlines()[-12:])
            raise AssertionError(
                f"{exc}; virsh says {state}; the guest's serial ends with:\n{tail}"
            ) from None
        assert "HVTEST: acpi power button" in serial_text(serial)
        await wait_until(lambda: cell(window, name, Column.STATUS) == "", 10, "the Status to clear")
        assert await asyncio.to_thread(domstate, name) == "shut off"

        # Save, then Start resumes from the saved memory (the tick counter goes on).
        _click_vm_action(window, "Start")
        await wait_until(
            lambda: "HVTEST: tick 2" in serial_text(serial)[serial_text(serial).rfind("booted") :],
            90,
            "the second boot",
        )
        _click_vm_action(window, "Save")
        await wait_until(lambda: cell(window, name, Column.STATE) == "Saved", 60, "Saved")
        info = await asyncio.to_thread(dominfo, name)
        assert info["State"] == "shut off" and info["Managed save"] == "yes"
        ticks, offset = last_tick(serial_text(serial)), len(serial_text(serial))
        _click_vm_action(window, "Start")
        await wait_until(lambda: cell(window, name, Column.STATE) == "Running", 60, "restored")
        await wait_until(lambda: last_tick(serial_text(serial)) >= ticks + 2, 30, "ticks after restore")
        assert "HVTEST: booted" not in serial_text(serial)[offset:]

        # Turn Off, then Delete with the disk.
        _click_vm_action(window, "Turn Off...")
        await _confirm()
        await wait_until(lambda: cell(window, name, Column.STATE) == "Off", 30, "Off")
        assert await asyncio.to_thread(domstate, name) == "shut off"
        window.vm_action(VmAction.DELETE).trigger()
        dialog = await wait_until(QApplication.activeModalWidget, 10, "the Delete dialog")
        assert [dialog.files.item(i).text() for i in range(dialog.files.count())] == [str(disk)]
        dialog.delete_disks.setChecked(True)
        dialog.findChild(QPushButton, "okButton").click()
        await wait_until(lambda: row_of(window, name) is None, 30, "the VM to leave the list")
        assert not await asyncio.to_thread(domain_exists, name)
        assert not disk.exists() and not (vm_location / name).exists()
        await settle()

    run(body, timeout=600)
