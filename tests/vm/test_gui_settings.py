"""The Settings and Hyper-V Settings windows, opened from the main window, change the real VM."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QPushButton, QSpinBox

from hvmanager.backend.settings import load_settings
from hvmanager.backend.vmactions import VmAction
from tests.conftest import SYSTEM_URI
from tests.gui.conftest import settle, wait_until
from tests.vm.conftest import GuestVm
from tests.vm.helpers import dominfo, virsh

pytestmark = pytest.mark.vm


def test_settings_dialog_applies_to_the_vm(run: Any, make_window: Any, guest_vm: GuestVm) -> None:
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        await wait_until(lambda: window.select_vm(guest_vm.uuid), 20, "the VM in the list")
        window.vm_action(VmAction.SETTINGS).trigger()
        dialog = await wait_until(
            lambda: window.findChild(QDialog, "vmSettingsDialog") or QApplication.activeModalWidget(),
            20,
            "the Settings window",
        )
        spin = dialog.findChild(QSpinBox, "processorSpin")
        spin.setValue(2)
        dialog.findChild(QPushButton, "okButton").click()
        await wait_until(lambda: dominfo(guest_vm.name)["CPU(s)"] == "2", 20, "2 processors for virsh")
        await settle()

    run(body)
    assert "<vcpu placement='static'>2</vcpu>" in virsh("dumpxml", "--inactive", guest_vm.name)


def test_hyperv_settings_change_the_refresh_interval(run: Any, make_window: Any, libvirtd: str) -> None:
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        controller = window.manager.servers[SYSTEM_URI]
        await wait_until(lambda: controller.accel is not None, 20)
        window.app_actions.hyperv_settings.trigger()
        dialog = await wait_until(QApplication.activeModalWidget, 10, "Hyper-V Settings")
        dialog.interval_spin.setValue(3000)
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        await wait_until(lambda: controller._stats_timer.interval() == 3000, 5, "the new interval")
        assert load_settings().stats_interval_ms == 3000  # saved for the next start
        await settle()

    run(body)
