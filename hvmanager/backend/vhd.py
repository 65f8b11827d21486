"""Virtual hard disk files: New, Inspect and Edit (Hyper-V's New-VHD, Get-VHD, Convert-VHD, ...).

The public face of the disk-file back end, used by the wizards (through a controller) and by hvctl.
No libvirt and no Qt here: which VM uses a disk is ``disk_usage``'s job; online expand of a running
VM's disk is ``vm_storage``'s.

Formats are qemu-img names: ``qcow2``, ``vhdx``, ``vpc`` (VHD), ``raw``. Every function that writes a
new file writes it under a temporary name in the target folder and renames it when complete; a
failure leaves no file behind. Long operations take ``progress``: called with a percentage (0-100).
"""

from __future__ import annotations

from hvmanager.backend.vhd_create import create, differencing_format, new_vhd_problems
from hvmanager.backend.vhd_edit import (
    action_problems,
    compact,
    convert,
    merge_into_parent,
    merge_to_new,
    reconnect,
    resize,
)
from hvmanager.backend.vhd_files import flush
from hvmanager.backend.vhd_inspect import inspect
from hvmanager.backend.vhd_types import DiskType, EditAction, NewVhd, ParentLink, Progress, VhdInfo

__all__ = [
    "DiskType",
    "EditAction",
    "NewVhd",
    "ParentLink",
    "Progress",
    "VhdInfo",
    "action_problems",
    "compact",
    "convert",
    "create",
    "differencing_format",
    "flush",
    "inspect",
    "merge_into_parent",
    "merge_to_new",
    "new_vhd_problems",
    "reconnect",
    "resize",
]
