"""End to end: the Settings window, opened from the main window on a running test guest, hot-adds a
hard drive on its SCSI controller and hot-removes it again. The guest reports its disks on the
serial console (``hvtest.watchdisks``); virsh is the other observer."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialog, QPushButton
from pytestqt.qtbot import QtBot

from hvmanager.backend import creation, operations, vm_storage
from hvmanager.backend.connection import Server
from hvmanager.backend.vmactions import VmAction
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.test_settings_storage import add_drive, click_button, click_entry, type_path
from tests.vm.conftest import create_guest_vm
from tests.vm.helpers import serial_text, virsh, wait_serial

pytestmark = pytest.mark.vm

SECTORS = 64 * 1024 * 1024 // 512


def _block_line(serial: str) -> str:
    """The guest's latest ``HVTEST: block ...`` line."""
    return [line for line in serial.splitlines() if "HVTEST: block" in line][-1]


def _lost_sdb(log: Path, after: int) -> bool:
    """A new block line came after ``after`` and the latest one has no sdb."""
    serial = serial_text(log)
    return "HVTEST: block" in serial[after:] and "sdb=" not in _block_line(serial)


async def _settings(window: Any, uuid: str) -> QDialog:
    await wait_until(lambda: window.select_vm(uuid), 20, "the VM in the list")
    window.vm_action(VmAction.SETTINGS).trigger()
    dialog: QDialog = await wait_until(lambda: _shown_settings(window), 20, "the Settings window")
    return dialog


def _shown_settings(window: Any) -> QDialog | None:
    """The Settings window on screen (an earlier one may still exist, hidden)."""
    shown = [d for d in window.findChildren(QDialog, "vmSettingsDialog") if d.isVisible()]
    return shown[0] if len(shown) == 1 else None


async def _ok(qtbot: QtBot, dialog: QDialog) -> None:
    ok = dialog.findChild(QPushButton, "okButton")
    assert ok is not None and ok.isEnabled()
    ok.click()
    await wait_until(lambda: not dialog.isVisible(), 20, "the window to close")


def test_settings_hot_add_and_remove_a_scsi_disk(
    qtbot: QtBot, run: Any, make_window: Any, clean_domains: str, vm_location: Path, test_guest: Any
) -> None:
    server = Server(clean_domains)
    server.open()
    try:
        dom = create_guest_vm(server, vm_location, vm_name("gui-storage"), test_guest, "hvtest.watchdisks")
        layout = vm_storage.current_layout(dom)
        vm_storage.apply_layout(server.conn, dom, dataclasses.replace(layout, scsi_controllers=1))
        operations.start(server.conn, dom, creation.decide_acceleration(server, "tcg"))
        name, uuid = dom.name(), dom.UUIDString()
    finally:
        server.close()
    log = vm_location / name / "Virtual Machines" / "serial.log"
    wait_serial(log, "HVTEST: block sda=", 120)
    data = vm_location / "data.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(data), "64M"], check=True)
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        dialog = await _settings(window, uuid)
        click_entry(qtbot, dialog, "SCSI Controller 0")
        add_drive(qtbot, dialog, "Hard Drive")
        type_path(qtbot, dialog, "diskPathEdit", str(data))
        before = len(serial_text(log))
        await _ok(qtbot, dialog)
        await wait_until(lambda: f"sdb={SECTORS}" in serial_text(log)[before:], 60, "the guest to see sdb")
        assert str(data) in virsh("domblklist", name)
        assert str(data) in virsh("dumpxml", "--inactive", name)  # also in the configuration

        dialog = await _settings(window, uuid)
        click_entry(qtbot, dialog, "SCSI Controller 0", "Hard Drive")
        click_button(qtbot, dialog, "removeDriveButton")
        before = len(serial_text(log))
        await _ok(qtbot, dialog)
        await wait_until(lambda: _lost_sdb(log, before), 60, "the guest to lose sdb")
        assert str(data) not in virsh("domblklist", name)
        await settle()

    run(body)
    assert data.exists()  # Remove disconnects the disk; the file stays
