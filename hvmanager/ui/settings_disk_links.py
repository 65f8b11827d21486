"""The Settings dialog's Hard Drive buttons New, Edit and Inspect, connected to the disk wizards.

New runs the New Virtual Hard Disk wizard in the VM's own disk folder (the host's disk folder for a
VM without one) and puts the new file on the drive that asked for it; Edit and Inspect open the
Edit Virtual Hard Disk wizard and Virtual Hard Disk Properties for the drive's file.
"""

from __future__ import annotations

from pathlib import Path

from hvmanager.backend.paths import DISKS
from hvmanager.controllers.disks import DiskController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.disk_commands import ask_new_disk, open_edit_disk_wizard, open_inspect_dialog
from hvmanager.ui.vm_settings_dialog import VmSettingsDialog


def disk_folder_of(vm_folder: str | None, default_folder: str) -> str:
    """Where a new disk of a VM goes: its ``Virtual Hard Disks`` folder when it has one."""
    if vm_folder and (Path(vm_folder) / DISKS).is_dir():
        return str(Path(vm_folder) / DISKS)
    return default_folder


def connect_disk_buttons(dialog: VmSettingsDialog, controller: DiskController, folder: str) -> None:
    """Make the dialog's New, Edit and Inspect buttons open the disk wizards."""
    dialog.new_disk_requested.connect(lambda: spawn(_new_disk(dialog, controller, folder)))
    dialog.edit_disk_requested.connect(lambda path: open_edit_disk_wizard(controller, path, dialog))
    dialog.inspect_disk_requested.connect(lambda path: open_inspect_dialog(controller, path, dialog))


async def _new_disk(dialog: VmSettingsDialog, controller: DiskController, folder: str) -> None:
    slot = dialog.current_drive_slot()
    path = await ask_new_disk(controller, folder, dialog)
    if path and slot is not None and dialog.isVisible():
        dialog.set_drive_path(slot, path)
