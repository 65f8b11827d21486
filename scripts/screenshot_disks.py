"""The disk pictures of the documentation (called by scripts/screenshots.py): every page of the New
Virtual Hard Disk wizard, the Edit Virtual Hard Disk wizard on its way to an Expand, Virtual Hard
Disk Properties of a differencing disk, and the storage pages of VM Settings.

Everything is real: the disks are made with the back end in the documentation's folder, the
Settings pages show a demo VM given a SCSI controller with a data disk and a DVD drive, and the
pictures are grabbed from the real windows.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLineEdit, QRadioButton, QWidget, QWizard

from hvmanager.backend import vhd
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout
from hvmanager.backend.vhd_types import DiskType, NewVhd
from hvmanager.controllers.disks import DiskController
from hvmanager.ui.edit_disk_wizard import EditDiskWizard
from hvmanager.ui.inspect_disk_dialog import InspectDiskDialog
from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.new_disk_wizard import NewDiskWizard

Save = Callable[[QWidget, str], Awaitable[None]]
Until = Callable[..., Awaitable[Any]]

GIB = 1024**3


def library(location: Path) -> dict[str, str]:
    """A VHD base disk, a differencing child over it and a data disk, in ``location``/Disk Library."""
    folder = location / "Disk Library"
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "Debian Base.vhd"
    child = folder / "Web Clone.qcow2"
    data = folder / "Data.qcow2"
    for path in (child, base, data):
        path.unlink(missing_ok=True)
    vhd.create(NewVhd(str(base), "vpc", DiskType.DYNAMIC, 40 * GIB))
    vhd.create(NewVhd(str(child), "qcow2", DiskType.DIFFERENCING, parent=str(base)))
    vhd.create(NewVhd(str(data), "qcow2", DiskType.DYNAMIC, 100 * GIB))
    files = {"folder": str(folder), "base": str(base), "child": str(child), "data": str(data)}
    iso = _tools_iso(folder)
    if iso:
        files["iso"] = iso
    return files


def _tools_iso(folder: Path) -> str | None:
    """A small real ISO image for the DVD drive (when xorriso is installed)."""
    if shutil.which("xorriso") is None:
        return None
    content = folder / "tools"
    content.mkdir(exist_ok=True)
    (content / "README.TXT").write_text("Guest tools for the documentation pictures.\n")
    iso = folder / "Guest Tools.iso"
    iso.unlink(missing_ok=True)
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-quiet", "-V", "TOOLS", "-o", str(iso), str(content)], check=True
    )
    return str(iso)


def with_storage(layout: StorageLayout, files: dict[str, str]) -> StorageLayout:
    """``layout`` plus a SCSI controller holding the data disk, and a DVD drive with the ISO image
    on IDE 1:0 (what the Settings pictures show)."""
    added = [Drive(DriveKind.HARD_DISK, Bus.SCSI, 0, 0, files["data"], "qcow2")]
    if "iso" in files:
        added.append(Drive(DriveKind.DVD, Bus.IDE, 1, 0, files["iso"], "raw"))
    return StorageLayout(layout.generation, max(layout.scsi_controllers, 1), (*layout.drives, *added))


def _click(widget: QWidget, cls: type[Any], name: str) -> None:
    child = widget.findChild(cls, name)
    assert child is not None, name
    child.click()


def _type(widget: QWidget, name: str, text: str) -> None:
    child = widget.findChild(QLineEdit, name)
    assert child is not None, name
    child.setText(text)


async def _next(wizard: QWizard, until: Until) -> None:
    await until(lambda: wizard.checked())
    wizard.button(QWizard.WizardButton.NextButton).click()


async def new_disk_shots(controller: DiskController, folder: str, save: Save, until: Until) -> None:
    """Every page of the New Virtual Hard Disk wizard, making a 200 GB dynamic VHDX."""
    wizard = NewDiskWizard(controller, folder)
    wizard.resize(760, 560)
    wizard.show()
    fill: dict[int, Callable[[], None]] = {
        1: lambda: _click(wizard, QRadioButton, "formatVhdxRadio"),
        3: lambda: _type(wizard, "nameEdit", "Data.vhdx"),
        4: lambda: _type(wizard, "sizeEdit", "200"),
    }
    names = ["before-you-begin", "format", "type", "name-and-location", "configure-disk", "summary"]
    for index, name in enumerate(names):
        if index in fill:
            fill[index]()
        await until(lambda: wizard.checked())
        await save(wizard, f"new-disk-{index + 1}-{name}")
        if index < len(names) - 1:
            await _next(wizard, until)
    wizard.close()


async def edit_disk_shots(controller: DiskController, path: str, save: Save, until: Until) -> None:
    """The Edit Virtual Hard Disk wizard: the disk, the actions it allows, Expand, the summary."""
    wizard = EditDiskWizard(controller, "")
    wizard.resize(760, 560)
    wizard.show()
    await save(wizard, "edit-disk-1-before-you-begin")
    await _next(wizard, until)
    _type(wizard, "diskPathEdit", path)
    await until(lambda: wizard.checked())
    await save(wizard, "edit-disk-2-locate-disk")
    await _next(wizard, until)
    _click(wizard, QRadioButton, "expandRadio")
    await save(wizard, "edit-disk-3-choose-action")
    await _next(wizard, until)
    _type(wizard, "newSizeEdit", "150")
    await until(lambda: wizard.checked())
    await save(wizard, "edit-disk-4-expand")
    await _next(wizard, until)
    await save(wizard, "edit-disk-5-summary")
    wizard.close()


async def inspect_shot(controller: DiskController, path: str, save: Save, until: Until) -> None:
    """Virtual Hard Disk Properties of a differencing disk over a VHD."""
    dialog = InspectDiskDialog(controller, path)
    dialog.show()
    await until(dialog.loaded)
    await save(dialog, "inspect-disk")
    dialog.close()


async def disk_shots(window: MainWindow, location: Path, save: Save, until: Until) -> dict[str, str]:
    """The wizards' and Inspect Disk's pictures; returns the library's files for the Settings ones."""
    files = library(location)
    server = window.manager.servers["qemu:///system"]
    controller = window.disk_commands.controller_for(server)
    await new_disk_shots(controller, files["folder"], save, until)
    await edit_disk_shots(controller, files["data"], save, until)
    await inspect_shot(controller, files["child"], save, until)
    return files
