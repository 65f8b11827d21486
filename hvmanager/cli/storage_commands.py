"""hvctl's verbs for a VM's storage controllers and drives (Hyper-V's ``*-VMHardDiskDrive``,
``*-VMDvdDrive`` and ``*-VMScsiController`` cmdlets): their command lines. The handlers are in
``storage_verbs``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hvmanager.cli import storage_verbs
from hvmanager.cli.context import VerbMaker

_PLACE_HELP = """

Without --controller-type, --controller-number and --location, the drive goes to the first free
location, as Hyper-V picks it: IDE first on a Generation 1 VM that is off, SCSI otherwise."""
_JSON_HELP = "\n\nWith --json, prints a list of objects with: vm_name, controller_type, controller_number,\n"


def _place_options(
    parser: argparse.ArgumentParser, required: bool, type_required: bool | None = None
) -> None:
    """--controller-type (required like the others unless ``type_required`` says otherwise; when
    it is optional for a DVD drive, the generation decides), --controller-number, --location."""
    type_required = required if type_required is None else type_required
    type_help = "IDE or SCSI" if type_required or not required else "IDE or SCSI (default: the generation's)"
    parser.add_argument(
        "--controller-type", type=str.lower, choices=("ide", "scsi"), required=type_required, help=type_help
    )
    parser.add_argument(
        "--controller-number", type=int, metavar="N", required=required, help="controller number"
    )
    parser.add_argument(
        "--location", type=int, metavar="L", required=required, help="location on the controller"
    )


def _hard_drive_media(parser: argparse.ArgumentParser) -> None:
    media = parser.add_mutually_exclusive_group(required=True)
    media.add_argument("--path", metavar="FILE", help="a virtual hard disk file")
    media.add_argument("--physical", metavar="DEV", help="a host block device, e.g. /dev/sdb")
    _place_options(parser, required=False)


def _dvd_media(parser: argparse.ArgumentParser) -> None:
    media = parser.add_mutually_exclusive_group(required=True)
    media.add_argument("--path", metavar="ISO", help="an ISO image")
    media.add_argument("--none", action="store_true", help="no media")
    _place_options(parser, required=True, type_required=False)


def _new_dvd(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--path", metavar="ISO", help="an ISO image")
    _place_options(parser, required=False)


def _controller_number(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--controller-number", type=int, metavar="N", required=True, help="controller number")


_VERBS: tuple[
    tuple[str, str, str, Callable[..., int], Callable[[argparse.ArgumentParser], None] | None], ...
] = (
    (
        "get-vmharddiskdrive",
        "List a VM's hard drives (Get-VMHardDiskDrive).",
        "Prints VMName, ControllerType, ControllerNumber, ControllerLocation, DiskType (format, or\n"
        "Physical for a pass-through disk) and Path."
        + _JSON_HELP
        + "controller_location, path, format and passthrough.",
        storage_verbs.get_vmharddiskdrive,
        None,
    ),
    (
        "add-vmharddiskdrive",
        "Attach a virtual hard disk or a physical disk to a VM (Add-VMHardDiskDrive).",
        "--path attaches a virtual hard disk file (QCOW2, VHD or RAW; its format is detected);\n"
        "--physical passes a host disk through (it must not be mounted or otherwise used by\n"
        "the host or another VM). While the VM runs, only SCSI controllers take new drives." + _PLACE_HELP,
        storage_verbs.add_vmharddiskdrive,
        _hard_drive_media,
    ),
    (
        "remove-vmharddiskdrive",
        "Detach a hard drive from a VM (Remove-VMHardDiskDrive).",
        "The disk file itself is kept. While the VM runs, only drives on SCSI can be removed; the\n"
        "guest must release the disk.",
        storage_verbs.remove_vmharddiskdrive,
        lambda parser: _place_options(parser, required=True),
    ),
    (
        "add-vmscsicontroller",
        "Add a SCSI controller to a VM (Add-VMScsiController).",
        "A VM can have 4 SCSI controllers, each with 64 locations. The VM must be off.",
        storage_verbs.add_vmscsicontroller,
        None,
    ),
    (
        "remove-vmscsicontroller",
        "Remove a SCSI controller from a VM (Remove-VMScsiController).",
        "The controller must have no drives; the controllers after it move down one number.\n"
        "The VM must be off.",
        storage_verbs.remove_vmscsicontroller,
        _controller_number,
    ),
    (
        "get-vmdvddrive",
        "List a VM's DVD drives (Get-VMDvdDrive).",
        "Prints VMName, ControllerType, ControllerNumber, ControllerLocation, DvdMediaType (ISO or\n"
        "None) and Path." + _JSON_HELP + "controller_location, path and media_type.",
        storage_verbs.get_vmdvddrive,
        None,
    ),
    (
        "add-vmdvddrive",
        "Add a DVD drive to a VM (Add-VMDvdDrive).",
        "On IDE for Generation 1, on SCSI for Generation 2. --path puts an ISO image in it.\n"
        "The VM must be off." + _PLACE_HELP,
        storage_verbs.add_vmdvddrive,
        _new_dvd,
    ),
    (
        "set-vmdvddrive",
        "Change the media of a DVD drive (Set-VMDvdDrive).",
        "--path puts an ISO image in the drive, --none empties it; also while the VM runs.",
        storage_verbs.set_vmdvddrive,
        _dvd_media,
    ),
    (
        "remove-vmdvddrive",
        "Remove a DVD drive from a VM (Remove-VMDvdDrive).",
        "The VM must be off.",
        storage_verbs.remove_vmdvddrive,
        lambda parser: _place_options(parser, required=True, type_required=False),
    ),
)


def add_verbs(sub: Any, verb: VerbMaker, common_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Declare this module's verbs on hvctl's sub-command parser."""
    for name, summary, description, handler, options in _VERBS:
        parser = verb(sub, name, summary, description, handler)
        parser.add_argument("vm", metavar="VM", help="the virtual machine (its name or UUID)")
        if options is not None:
            options(parser)
        common_options(parser)
