"""Render the documentation screenshots (docs/screenshots/*.png) from the real windows.

Run with ``scripts/screenshots.sh`` (it sets up everything first). The main window shows real
VMs on the local libvirt daemon, booted from the test guest under software emulation, in four
states; the wizard, Settings and other dialogs are the real widgets, filled in as a user would.
Everything is offscreen with the Fusion style and the bundled font, at fixed sizes. The VMs and
the switch made for the pictures are removed at the end (names already in use are never touched).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["QT_SCALE_FACTOR"] = "1"
os.environ["HVMANAGER_ACCEL"] = "tcg"
os.environ["HVMANAGER_CONFIG_DIR"] = tempfile.mkdtemp(prefix="hvdocs-config-")

import libvirt
import qasync
from PySide6.QtWidgets import QApplication, QDialog, QWidget, QWizard

from hvmanager.backend import creation, operations, switches, vm_storage
from hvmanager.backend.connection import Server, start_event_thread
from hvmanager.backend.models import KernelBoot, MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.network_models import SwitchSpec, SwitchType
from hvmanager.backend.settings import AppSettings
from hvmanager.backend.vmspec import HostContext
from hvmanager.controllers.manager import ServerManager
from hvmanager.ui.dialogs import ConnectServerDialog, DeleteDialog
from hvmanager.ui.hyperv_settings_dialog import HyperVSettingsDialog
from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.new_vm_wizard import NewVmWizard
from hvmanager.ui.theme import apply_theme
from hvmanager.ui.vm_settings_dialog import VmSettingsDialog
from scripts.screenshot_adapters import shoot_adapter_pages
from scripts.screenshot_checkpoints import checkpoint_shots
from scripts.screenshot_disks import disk_shots, with_storage
from tests.support.guest import build_test_guest

OUT = REPO / "docs" / "screenshots"
URI = "qemu:///system"
LOCATION = Path("/var/lib/hvmanager-docs")
SWITCH = "lab-switch"
HOST_ADDRESS = "192.168.150.1/24"
GUEST_ADDRESS = "192.168.150.10"
VMS = [  # name, memory, final state
    ("Web Server", MemoryConfig(256, True, 192, 512), "running"),
    ("Database", MemoryConfig(384), "paused"),
    ("Build Agent", MemoryConfig(256), "saved"),
    ("Test Lab", MemoryConfig(512), "off"),
]


async def save(widget: QWidget, name: str) -> None:
    """Let the widget lay out and paint, then grab it into docs/screenshots/<name>.png."""
    await asyncio.sleep(0.2)
    path = OUT / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")
    print(f"  {path.relative_to(REPO)}")


@contextmanager
def lab_switch() -> Iterator[None]:
    """An Internal switch (the host is 192.168.150.1 on it) for the Networking tab and the monitor."""
    conn = libvirt.open(URI)
    spec = SwitchSpec(SWITCH, SwitchType.INTERNAL, notes="Test bench", host_address=HOST_ADDRESS)
    switches.create_switch(conn, spec)
    try:
        yield
    finally:
        switches.remove_switch(conn, SWITCH, disconnect_users=True)
        conn.close()


def cmdline_of(guest: Any, index: int) -> str:
    """The first VM's guest writes records to its disk each second (the Storage tab's figures) and
    has an address on the lab switch (the Networking tab's and the Switch Monitor's traffic)."""
    first = f" hvtest.writer=sda hvtest.markdev=sda hvtest.ip={GUEST_ADDRESS}/24 hvtest.ping=192.168.150.1"
    return guest.cmdline + (first if index == 0 else "")


@contextmanager
def demo_vms() -> Iterator[list[str]]:
    """The VMs of the main window picture, in their states; removed afterwards."""
    server = Server(URI)
    server.open()
    existing = {d.name() for d in server.conn.listAllDomains(0)}
    clash = [name for name, _m, _s in VMS if name in existing]
    if clash:
        raise SystemExit(f"VMs named {clash} exist already; not touching them.")
    guest = build_test_guest()
    decision = creation.decide_acceleration(server, "tcg")
    shutil.rmtree(LOCATION, ignore_errors=True)
    LOCATION.mkdir(parents=True)
    LOCATION.chmod(0o755)
    uuids = []
    try:
        for index, (name, memory, state) in enumerate(VMS):
            spec = VmSpec(
                name,
                str(LOCATION),
                (1, 2, 2, 1)[index],  # Test Lab (off) is Generation 1: IDE and SCSI pages
                memory,
                network=SWITCH if index < 2 else None,
                disk=NewDisk(20),
                install=KernelBoot(str(guest.kernel), str(guest.initrd), cmdline_of(guest, index)),
                notes="Front end of the intranet site." if index == 0 else "",
            )
            uuids.append(creation.create_vm(server, spec, decision))
            dom = server.lookup(uuids[-1])
            if state != "off":
                operations.start(server.conn, dom, decision)
        wait_booted(len(VMS) - 1)
        for uuid, (_name, _memory, state) in zip(uuids, VMS, strict=True):
            dom = server.lookup(uuid)
            if state == "paused":
                operations.pause(dom)
            elif state == "saved":
                operations.save(dom)
        yield uuids
    finally:
        for uuid in uuids:
            dom = server.conn.lookupByUUIDString(uuid)
            if dom.isActive():
                dom.destroy()
            operations.delete(server.conn, dom, delete_disks=True)
        server.close()
        shutil.rmtree(LOCATION, ignore_errors=True)


def wait_booted(count: int, timeout: float = 120) -> None:
    """Wait until ``count`` guests have printed their ready marker."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = LOCATION.glob("*/Virtual Machines/serial.log")
        if sum("HVTEST: ready" in p.read_text(errors="replace") for p in logs) >= count:
            return
        time.sleep(0.5)
    raise RuntimeError("the demo guests did not boot")


async def until(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    """Let the loop run until ``predicate`` is true."""
    for _ in range(int(timeout / 0.1)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {predicate}")


async def main_window_shots(window: MainWindow) -> None:
    """The main window with the running VM selected, and its details tabs."""
    controller = window.manager.servers[URI]
    await until(lambda: len(controller.vms) >= len(VMS))
    await asyncio.sleep(3)  # a few stats ticks: CPU, memory, uptime
    uuid = next(u for u, info in controller.vms.items() if info.name == "Web Server")
    window.select_vm(uuid)
    await until(lambda: window.details_pane.title() == "Web Server")
    await until(
        lambda: (
            window.details_pane.thumbnail.pixmap() is not None
            and not window.details_pane.thumbnail.pixmap().isNull()
        )
    )
    await asyncio.sleep(1.5)
    await save(window, "main-window")
    window.details_pane.tabs.setCurrentIndex(1)
    await save(window.details_pane, "details-memory")
    window.details_pane.tabs.setCurrentIndex(2)
    await save(window.details_pane, "details-networking")
    tabs = window.details_pane.tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Storage"))
    await asyncio.sleep(2.5)  # two stats ticks: the disks' throughput
    await save(window.details_pane, "details-storage")
    window.details_pane.tabs.setCurrentIndex(0)
    await save(window.actions_pane, "actions-pane")


async def settings_shots(window: MainWindow, files: dict[str, str]) -> None:
    """Every page of the VM Settings dialog (of the Off VM, where everything is editable)."""
    controller = window.manager.servers[URI]
    uuid = next(u for u, info in controller.vms.items() if info.name == "Test Lab")
    config = await controller.inactive_config(uuid)
    assert config is not None and controller.host is not None
    others = frozenset(info.name for info in controller.vms.values()) - {"Test Lab"}
    checkpoints = await controller.checkpoint_settings(uuid)
    dom = controller.server.lookup(uuid)
    layout = with_storage(vm_storage.current_layout(dom), files)
    vm_storage.apply_layout(controller.server.conn, dom, layout)  # a SCSI controller with a data disk
    storage, host_disks = await controller.storage(uuid)
    dialog = VmSettingsDialog(
        config,
        controller.vms[uuid].state,
        controller.host,
        others,
        window,
        checkpoints=checkpoints,
        storage=storage,
        host_disks=host_disks,
    )
    dialog.resize(900, 640)
    dialog.show()
    seen: set[str] = set()
    for item in dialog.tree.entries():
        dialog.tree.setCurrentItem(item)
        slug = item.text(0).lower().replace(" ", "-")
        if slug in seen:
            continue  # the second Hard Drive looks like the first
        seen.add(slug)
        await save(dialog, f"settings-{slug}")
    dialog.close()


async def wizard_shots(ctx: HostContext, settings: AppSettings, guest: Any) -> None:
    """Every page of the New Virtual Machine wizard, filled in."""
    wizard = NewVmWizard(ctx, settings)
    wizard.resize(760, 560)
    wizard.show()
    fill: dict[int, Callable[[], None]] = {
        1: lambda: wizard.findChild(QWidget, "nameEdit").setText("File Server"),
        3: lambda: wizard.findChild(QWidget, "dynamicMemoryCheck").setChecked(True),
        4: lambda: wizard.findChild(QWidget, "networkCombo").setCurrentIndex(1),
        6: lambda: (
            wizard.findChild(QWidget, "kernelRadio").click(),
            wizard.findChild(QWidget, "kernelEdit").setText(str(guest.kernel)),
            wizard.findChild(QWidget, "initrdEdit").setText(str(guest.initrd)),
        ),
    }
    names = [
        "before-you-begin",
        "name-and-location",
        "generation",
        "memory",
        "networking",
        "virtual-hard-disk",
        "installation-options",
        "summary",
    ]
    for index, name in enumerate(names):
        if index in fill:
            fill[index]()
        await save(wizard, f"wizard-{index + 1}-{name}")
        if index < len(names) - 1:
            wizard.button(QWizard.WizardButton.NextButton).click()
    wizard.close()


async def dialog_shots(window: MainWindow) -> None:
    """Hyper-V Settings, Connect to Server, Delete."""
    dialog: QDialog = HyperVSettingsDialog(
        window.manager.settings, "Software emulation (TCG): chosen in the settings", window
    )
    dialog.show()
    await save(dialog, "hyperv-settings")
    dialog.pages.setCurrentRow(2)
    await save(dialog, "hyperv-settings-acceleration")
    dialog.close()
    dialog = ConnectServerDialog("qemu:///system", ["qemu:///system"], window)
    dialog.uri_edit.setText("qemu+ssh://admin@hv2.example.com/system")
    dialog.show()
    await save(dialog, "connect-to-server")
    dialog.close()
    dialog = DeleteDialog("Test Lab", [f"{LOCATION}/Test Lab/Virtual Hard Disks/Test Lab.qcow2"], window)
    dialog.show()
    await save(dialog, "delete-vm")
    dialog.close()


async def disconnected_shot(loop: Any) -> None:
    """The window when the daemon can't be reached."""
    settings = AppSettings(servers=["qemu+unix:///system?socket=/run/libvirt/no-daemon-here"])
    manager = ServerManager(settings)
    window = MainWindow(manager)
    window.resize(1100, 640)
    window.show()
    manager.start()
    await until(lambda: window.banner.isVisible() and "Can't connect" in window.banner.text())
    await save(window, "main-window-disconnected")
    window.close()


def main() -> int:
    """Render every picture; returns the exit code."""
    OUT.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    apply_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    start_event_thread()
    guest = build_test_guest()
    print("Rendering into docs/screenshots/:")
    with lab_switch(), demo_vms():
        settings = AppSettings(servers=[URI], vm_folder="/var/lib/hvmanager")
        manager = ServerManager(settings)
        window = MainWindow(manager)
        window.resize(1280, 800)
        window.show()
        manager.start()
        with loop:
            loop.run_until_complete(main_window_shots(window))
            files = loop.run_until_complete(disk_shots(window, LOCATION, save, until))
            loop.run_until_complete(settings_shots(window, files))
            loop.run_until_complete(shoot_adapter_pages(window, save, until))
            loop.run_until_complete(checkpoint_shots(window, save, until))
            ctx = loop.run_until_complete(manager.servers[URI].host_context())
            loop.run_until_complete(wizard_shots(ctx, settings, guest))
            loop.run_until_complete(dialog_shots(window))
            loop.run_until_complete(disconnected_shot(loop))
            window.close()
            loop.run_until_complete(asyncio.sleep(0.5))
    subprocess.run(["rm", "-rf", os.environ["HVMANAGER_CONFIG_DIR"]], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
