"""The network adapter pictures of the documentation (called by scripts/screenshots.py): the Network
Adapter page of VM Settings with its Hardware Acceleration and Advanced Features sub-pages, the
Legacy Network Adapter page, and Add Hardware offering network adapters.

Everything is real: the Settings window shows a demo VM's adapters as the server reports them
(``ServerController.network_settings``), with the server's switches in the drop-down; the fields
are filled in as a user would, and nothing is applied (the window is closed with Cancel).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QListWidget, QPushButton, QWidget

from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.settings_network_pages import AdapterPage
from hvmanager.ui.vm_settings_dialog import VmSettingsDialog

Save = Callable[[QWidget, str], Awaitable[None]]
Until = Callable[..., Awaitable[Any]]

URI = "qemu:///system"


def _child(page: QWidget, cls: type[Any], name: str) -> Any:
    child = page.findChild(cls, name)
    assert child is not None, name
    return child


def _show(dialog: VmSettingsDialog, page: QWidget) -> None:
    dialog.tree.select_page(page)


async def _dialog_for(window: MainWindow, vm: str) -> VmSettingsDialog:
    """The Settings window of ``vm`` with its network adapters (no storage: a shorter tree)."""
    controller = window.manager.servers[URI]
    uuid = next(u for u, info in controller.vms.items() if info.name == vm)
    config = await controller.inactive_config(uuid)
    network = await controller.network_settings(uuid)
    assert config is not None and network is not None and controller.host is not None
    others = frozenset(info.name for info in controller.vms.values()) - {vm}
    dialog = VmSettingsDialog(
        config, controller.vms[uuid].state, controller.host, others, window, network=network
    )
    dialog.resize(900, 640)
    dialog.show()
    return dialog


def _adapter_pages(dialog: VmSettingsDialog, legacy: bool) -> list[QWidget]:
    """The pages (adapter page, then its sub-pages) of the first adapter of that kind."""
    assert dialog.network_section is not None
    for page, subs in dialog.network_section.entries():
        if page.legacy == legacy:
            return [page, *subs]
    raise AssertionError("no such adapter")


async def shoot_adapter_pages(
    window: MainWindow, save: Save, until: Until, vm: str = "Test Lab", switch: str = "lab-switch"
) -> None:
    """adapter-network-adapter, adapter-hardware-acceleration, adapter-advanced-features,
    adapter-add-hardware and adapter-legacy-network-adapter, of ``vm`` (a Generation 1 VM that is
    off, with one adapter), its adapter connected to ``switch`` in the window."""
    dialog = await _dialog_for(window, vm)
    adapter, acceleration, advanced = _adapter_pages(dialog, legacy=False)
    assert isinstance(adapter, AdapterPage)
    combo = _child(adapter, QComboBox, "switchCombo")
    combo.setCurrentIndex(combo.findText(switch))
    combo.activated.emit(combo.currentIndex())
    _show(dialog, adapter)
    await save(dialog, "adapter-network-adapter")
    _child(acceleration, QCheckBox, "vmqCheck").setChecked(True)
    _show(dialog, acceleration)
    await save(dialog, "adapter-hardware-acceleration")
    _show(dialog, advanced)
    await save(dialog, "adapter-advanced-features")

    add_page = dialog.add_hardware_page
    assert add_page is not None
    _show(dialog, add_page)
    listing = _child(add_page, QListWidget, "hardwareList")
    listing.setCurrentRow(
        next(r for r in range(listing.count()) if listing.item(r).text() == "Network Adapter")
    )
    await save(dialog, "adapter-add-hardware")
    listing.setCurrentRow(
        next(r for r in range(listing.count()) if listing.item(r).text() == "Legacy Network Adapter")
    )
    _child(add_page, QPushButton, "addHardwareButton").click()
    await until(lambda: dialog.stack.currentWidget() is _adapter_pages(dialog, legacy=True)[0])
    await save(dialog, "adapter-legacy-network-adapter")
    dialog.reject()
