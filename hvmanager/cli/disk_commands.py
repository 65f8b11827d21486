"""hvctl's verbs for virtual hard disk files (Hyper-V's New-VHD, Get-VHD, Test-VHD, Resize-VHD,
Convert-VHD, Optimize-VHD, Merge-VHD and Set-VHD): their command lines. The handlers are in
``disk_verbs``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hvmanager.backend.vhd_types import DiskType
from hvmanager.cli import disk_verbs
from hvmanager.cli.context import Context, VerbMaker

Handler = Callable[[Context, argparse.Namespace], int]

_FORMATS_HELP = "vhdx, vhd, qcow2 or raw (default: from the extension: .vhdx, .vhd, .qcow2, .img)"
_SIZE_HELP = "a size in GB (1 GB = 1024^3 bytes; decimals allowed: 1.5)"


def _with_usage_errors(parser: argparse.ArgumentParser, handler: Handler) -> Handler:
    """Run ``handler``; a wrong combination of options it finds is reported as argparse does
    (usage line, ``hvctl VERB: error: ...``) with exit status 2."""

    def run(ctx: Context, args: argparse.Namespace) -> int:
        try:
            return handler(ctx, args)
        except disk_verbs.UsageError as exc:
            parser.print_usage(ctx.err)
            ctx.err.write(f"{parser.prog}: error: {exc}\n")
            return 2

    return run


def _declare(
    sub: Any, verb: VerbMaker, name: str, summary: str, description: str, handler: Handler
) -> argparse.ArgumentParser:
    parser = verb(sub, name, summary, description, handler)
    parser.set_defaults(handler=_with_usage_errors(parser, handler))
    return parser


def _path(parser: argparse.ArgumentParser, help_text: str = "the virtual hard disk file") -> None:
    parser.add_argument("path", metavar="PATH", help=help_text)


def _size_options(group: Any) -> None:
    group.add_argument("--size-gb", metavar="N", help=_SIZE_HELP)
    group.add_argument("--size-bytes", metavar="N", help="a size in bytes (a whole number of MB)")


def _type_option(parser: argparse.ArgumentParser, default_help: str) -> None:
    parser.add_argument(
        "--vhd-type",
        type=str.lower,
        choices=tuple(disk_verbs.TYPE_CHOICES),
        help=f"fixed size or dynamically expanding (default: {default_help})",
    )


def _format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", type=str.lower, choices=disk_verbs.FORMAT_CHOICES, help=_FORMATS_HELP)


def add_verbs(sub: Any, verb: VerbMaker, common_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Declare this module's verbs on hvctl's sub-command parser."""
    _new_vhd(sub, verb, common_options)
    p = _declare(
        sub,
        verb,
        "get-vhd",
        "Show virtual hard disk files (Get-VHD).",
        """\
Prints, for each file, Get-VHD's fields: Path, VhdFormat (VHDX, VHD, QCOW2, RAW), VhdType
(Fixed, Dynamic, Differencing), FileSize (bytes on the host), Size (virtual size),
MinimumSize (the smallest size it can be shrunk to, when it can), LogicalSectorSize,
PhysicalSectorSize, BlockSize, ParentPath, DiskIdentifier, Attached (True when a VM of the
server uses it) and AttachedTo; and the chain of parents, each present or missing. Works on
files made by other tools too (Hyper-V, VirtualBox, qemu-img).

With --json, prints a list of objects with: path, vhd_format, format (qemu-img's name),
vhd_type, file_size, size, minimum_size, logical_sector_size, physical_sector_size,
block_size, parent_path, disk_identifier, attached, attached_to (vm_name, uuid, running,
target) and parents (path, format, present), nearest first.

Example:
  hvctl get-vhd '/srv/vms/web1/Virtual Hard Disks/web1.vhdx' --json""",
        disk_verbs.get_vhd,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="virtual hard disk files")
    common_options(p)

    p = _declare(
        sub,
        verb,
        "test-vhd",
        "Check that virtual hard disk files can be used (Test-VHD).",
        """\
A file is usable when it opens, every parent of its chain is present and 'qemu-img check'
finds no corruption. Prints Path, Usable (True or False) and the Reason; the exit status is
0 when every file is usable, 1 otherwise.""",
        disk_verbs.test_vhd,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="virtual hard disk files")
    common_options(p)

    p = _declare(
        sub,
        verb,
        "resize-vhd",
        "Expand or shrink a virtual hard disk (Resize-VHD).",
        """\
Expands a fixed or dynamic disk, or shrinks it down to its minimum size (no allocated data
may lie beyond the new size; shrink the partitions in the guest first). When a running VM
uses the disk, it is expanded online and the guest sees the new size at once: only a disk
on a SCSI controller can be, and it can't be shrunk. Prints the disk as get-vhd does.

Example:
  hvctl resize-vhd /srv/disks/data.qcow2 --size-gb 80""",
        disk_verbs.resize_vhd,
    )
    _path(p)
    group = p.add_mutually_exclusive_group(required=True)
    _size_options(group)
    group.add_argument(
        "--to-minimum-size", action="store_true", help="shrink to the smallest size the data allows"
    )
    common_options(p)

    p = _declare(
        sub,
        verb,
        "convert-vhd",
        "Convert a virtual hard disk to another format or type (Convert-VHD).",
        """\
Writes the disk's content to a new file of the format of DESTINATION's extension (or
--format) and of --vhd-type (default: the type of the source; a differencing disk becomes
dynamically expanding). The source is kept unless --delete-source is given. No running VM
may use the source. Prints the new disk as get-vhd does.

Example:
  hvctl convert-vhd old.vhd new.qcow2 --vhd-type dynamic""",
        disk_verbs.convert_vhd,
    )
    _path(p, "the disk to convert")
    p.add_argument("destination", metavar="DESTINATION", help="the new file (must not exist)")
    _type_option(p, "the source's type")
    _format_option(p)
    p.add_argument("--delete-source", action="store_true", help="delete the source once converted")
    common_options(p)

    p = _declare(
        sub,
        verb,
        "optimize-vhd",
        "Compact a dynamic or differencing virtual hard disk (Optimize-VHD).",
        """\
Gives the host back the space of blocks the guest zeroed or discarded. No running VM may
use the disk. Prints the file size before and after.""",
        disk_verbs.optimize_vhd,
    )
    _path(p)
    common_options(p)

    p = _declare(
        sub,
        verb,
        "merge-vhd",
        "Merge a differencing disk into its parent, or into a new disk (Merge-VHD).",
        """\
Without --destination-path, writes the differencing disk's data into its parent and deletes
it (the parent then holds the whole content; other differencing disks of that parent are
no longer valid). With --destination-path, writes the whole content of the disk and its
parents into a new standalone disk, leaving them as they are. No running VM may use the
disk. Prints the resulting disk as get-vhd does.

Examples:
  hvctl merge-vhd child.qcow2
  hvctl merge-vhd child.qcow2 --destination-path whole.vhdx --vhd-type fixed""",
        disk_verbs.merge_vhd,
    )
    _path(p, "the differencing disk")
    p.add_argument("--destination-path", metavar="NEW", help="merge into this new disk instead")
    _type_option(p, "dynamic")
    _format_option(p)
    common_options(p)

    p = _declare(
        sub,
        verb,
        "set-vhd",
        "Reconnect a differencing disk to its moved parent (Set-VHD -ParentPath).",
        """\
The new parent must be the old one (moved or copied): same disk identifier, unless
--ignore-id-mismatch is given, and same size.""",
        disk_verbs.set_vhd,
    )
    _path(p, "the differencing disk")
    p.add_argument("--parent-path", metavar="NEWPARENT", required=True, help="where its parent is now")
    p.add_argument(
        "--ignore-id-mismatch",
        action="store_true",
        help="accept a parent whose disk identifier differs (its content must still be the same)",
    )
    common_options(p)


def _new_vhd(sub: Any, verb: VerbMaker, common_options: Callable[[argparse.ArgumentParser], None]) -> None:
    p = _declare(
        sub,
        verb,
        "new-vhd",
        "Create a virtual hard disk file (New-VHD).",
        """\
Formats: VHDX (up to 64 TB), VHD (up to 2040 GB), QCOW2 (the best for running VMs here;
libvirt can't run VMs from VHDX files) and RAW. Types: --dynamic (the default: the file grows
as data is written), --fixed (all its space taken at once), or a differencing disk over
--parent-path (QEMU makes differencing disks only in QCOW2: name it .qcow2). --source-disk
copies the content (and size) of another virtual disk file or of a host block device.
The file is written under a temporary name and appears only once complete; when anything
is wrong, nothing is created. Prints the new disk as get-vhd does.

Examples:
  hvctl new-vhd /srv/disks/data.vhdx --size-gb 40
  hvctl new-vhd /srv/disks/fixed.vhd --size-gb 2 --fixed
  hvctl new-vhd /srv/disks/child.qcow2 --parent-path /srv/disks/base.vhdx
  hvctl new-vhd /srv/disks/copy.qcow2 --source-disk /dev/sdb""",
        disk_verbs.new_vhd,
    )
    _path(p, "the new file")
    group = p.add_mutually_exclusive_group(required=True)
    _size_options(group)
    group.add_argument("--parent-path", metavar="P", help="make a differencing disk of this parent")
    group.add_argument(
        "--source-disk", metavar="FILE_OR_DEV", help="copy this virtual disk file or host block device"
    )
    kind = p.add_mutually_exclusive_group()
    for option, disk_type in (
        ("--fixed", DiskType.FIXED),
        ("--dynamic", DiskType.DYNAMIC),
        ("--differencing", DiskType.DIFFERENCING),
    ):
        kind.add_argument(
            option,
            dest="vhd_type",
            action="store_const",
            const=disk_type,
            help=f"{disk_type.value.lower()} disk"
            + (" (needs --parent-path)" if option == "--differencing" else ""),
        )
    _format_option(p)
    vhdx = p.add_argument_group("VHDX options")
    vhdx.add_argument("--block-size-mb", type=int, metavar="N", help="block size, 1-256 MB, a power of 2")
    for which in ("logical", "physical"):
        vhdx.add_argument(
            f"--{which}-sector-size", type=int, choices=(512, 4096), help=f"{which} sector size in bytes"
        )
    common_options(p)
