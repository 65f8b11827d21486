"""The ``hvctl`` verbs for virtual hard disk files (Hyper-V's ``*-VHD`` cmdlets): new-vhd, get-vhd,
test-vhd, resize-vhd, convert-vhd, optimize-vhd, merge-vhd and set-vhd (declared in
``disk_commands``).

The files are worked on by ``backend.vhd``; which VMs use a file comes from ``backend.disk_usage``
(``Attached``, and the refusal to edit a file a running VM has open); a running VM's disk is
expanded online by ``backend.vm_storage``. Bad input is an ``HvError`` raised before anything is
written; a wrong combination of options is a usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import os
import shlex
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation

from hvmanager.backend import disk_usage, passthrough, vhd, vm_storage
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.formatting import format_bytes
from hvmanager.backend.limits import GIB, MIB
from hvmanager.backend.vhd_types import DiskType, NewVhd, Progress, VhdInfo
from hvmanager.cli import disk_check, output
from hvmanager.cli.context import Context

FORMAT_CHOICES = ("vhdx", "vhd", "vpc", "qcow2", "raw")
_FORMAT_NAMES = {"vhd": "vpc"}
_EXTENSION_FORMATS = {
    ".vhdx": "vhdx",
    ".vhd": "vpc",
    ".qcow2": "qcow2",
    ".img": "raw",
    ".raw": "raw",
}
_SIZE_DIGITS_MAX = 30  # far beyond every format's limit; keeps int() of "1e999999999" cheap
TYPE_CHOICES = {"fixed": DiskType.FIXED, "dynamic": DiskType.DYNAMIC}


class UsageError(Exception):
    """A combination of options argparse could not rule out (exit status 2)."""


# --- reading the options ------------------------------------------------------------------------


def absolute(path: str) -> str:
    """A user's path made absolute (messages and records then name the file unambiguously)."""
    return os.path.abspath(path)


def disk_format(given: str | None, path: str) -> str:
    """The qemu-img format: ``--format``, else from the file's extension."""
    if given:
        return _FORMAT_NAMES.get(given, given)
    extension = os.path.splitext(path)[1].lower()
    if extension not in _EXTENSION_FORMATS:
        raise UsageError(
            f"can't tell the format of '{os.path.basename(path)}' from its extension: give --format "
            "(vhdx, vhd, qcow2 or raw), or name it .vhdx, .vhd, .qcow2 or .img"
        )
    return _EXTENSION_FORMATS[extension]


def parse_size(text: str, unit: int, option: str) -> int:
    """A size given as text (``--size-gb 1.5``) in bytes; ``ValidationError`` when it is not a
    number or not a whole number of bytes (the limits are the back end's to check)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValidationError(f"The size '{text}' given with {option} is not a number.")
    if value.adjusted() > _SIZE_DIGITS_MAX:
        raise ValidationError(f"The size '{text}' given with {option} is far too large.")
    size = value * unit
    if size != size.to_integral_value():
        raise ValidationError(f"The size '{text}' given with {option} is not a whole number of bytes.")
    return int(size)


def size_option(args: argparse.Namespace) -> int | None:
    """``--size-bytes`` or ``--size-gb`` in bytes, None when neither was given."""
    if args.size_bytes is not None:
        return parse_size(args.size_bytes, 1, "--size-bytes")
    if args.size_gb is not None:
        return parse_size(args.size_gb, GIB, "--size-gb")
    return None


@contextmanager
def progress_on(ctx: Context, what: str) -> Iterator[Progress]:
    """A ``Progress`` callback writing ``<what> (n %)`` on stderr when it is a terminal."""
    line = output.ProgressLine(ctx.err)
    try:
        yield lambda percent: line(what, percent)
    finally:
        line.finish()


def refuse_if_running(ctx: Context, path: str, doing: str) -> None:
    """``InvalidStateError`` when a running VM has the file open (it can't be edited offline)."""
    user = disk_usage.running_user(ctx.conn, path)
    if user is not None:
        raise InvalidStateError(
            f"'{path}' can't be {doing}: the running virtual machine '{user.vm_name}' uses it "
            f"(drive {user.target}).",
            f"Shut the VM down first: hvctl stop-vm {shlex.quote(user.vm_name)}",
        )


# --- how a disk is shown ------------------------------------------------------------------------


def show_disk(ctx: Context, info: VhdInfo) -> None:
    """Print one disk as get-vhd does (one JSON object with --json)."""
    record = output.vhd_record(info, disk_usage.users_of(ctx.conn, info.path))
    if ctx.json:
        output.write_json(ctx.out, record)
    else:
        output.write_text(ctx.out, output.vhd_text(record))


def is_block_device(path: str) -> bool:
    """True for a host block device (a physical disk as the source of a copy)."""
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def _copy_source_problems(ctx: Context, device: str) -> list[str]:
    """A physical disk is copied only while nothing else uses it (a mounted file system or a
    running VM would change under the copy), as the wizard offers only such disks."""
    problem = passthrough.passthrough_problem(ctx.conn, device)
    return [problem.replace("can't be used as a physical disk", "can't be copied")] if problem else []


# --- the verbs ----------------------------------------------------------------------------------


def new_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``new-vhd PATH (--size-gb N | --size-bytes N | --parent-path P | --source-disk F) ...``."""
    path = absolute(args.path)
    if args.vhd_type is DiskType.DIFFERENCING and args.parent_path is None:
        raise UsageError("--differencing needs --parent-path")
    if args.parent_path is not None and args.vhd_type not in (None, DiskType.DIFFERENCING):
        raise UsageError("--parent-path makes a differencing disk: leave out --fixed and --dynamic")
    request = NewVhd(
        path=path,
        format=disk_format(args.format, path),
        type=DiskType.DIFFERENCING if args.parent_path else (args.vhd_type or DiskType.DYNAMIC),
        size_bytes=size_option(args),
        parent=absolute(args.parent_path) if args.parent_path else None,
        source=absolute(args.source_disk) if args.source_disk else None,
        block_size=args.block_size_mb * MIB if args.block_size_mb is not None else None,
        logical_sector_size=args.logical_sector_size,
        physical_sector_size=args.physical_sector_size,
    )
    problems = vhd.new_vhd_problems(request)
    if not problems and request.source and is_block_device(request.source):
        problems = _copy_source_problems(ctx, request.source)
    if problems:
        raise ValidationError(" ".join(problems), "Nothing was created.")
    with progress_on(ctx, "Creating") as report:
        info = vhd.create(request, report)
    show_disk(ctx, info)
    return 0


def get_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vhd PATH...`` (Get-VHD); each path in turn, going on after a failure."""
    records = []
    for given in args.paths:
        path = absolute(given)
        try:
            info = vhd.inspect(path, with_minimum_size=True)
            records.append(output.vhd_record(info, disk_usage.users_of(ctx.conn, path)))
        except HvError as exc:
            ctx.error(exc)
    if ctx.json:
        output.write_json(ctx.out, records)
    else:
        output.write_text(ctx.out, "\n\n".join(output.vhd_text(r) for r in records))
    return ctx.exit_code


def test_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``test-vhd PATH...`` (Test-VHD): exit status 0 when every file and its chain are usable."""
    rows = []
    for given in args.paths:
        path = absolute(given)
        reason = disk_check.unusable_reason(path)
        if reason:
            ctx.error(HvError(f"'{path}' is not usable: {reason}"))
        rows.append({"path": path, "usable": reason is None, "reason": reason})
    if ctx.json:
        output.write_json(ctx.out, rows)
    else:
        table = [[r["path"], str(r["usable"]), r["reason"] or ""] for r in rows]
        output.write_text(ctx.out, output.format_table(("Path", "Usable", "Reason"), table))
    return ctx.exit_code


def resize_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``resize-vhd PATH (--size-gb N | --size-bytes N | --to-minimum-size)`` (Resize-VHD); online
    for a disk of a running VM (expand only, on SCSI)."""
    path = absolute(args.path)
    user = disk_usage.running_user(ctx.conn, path)
    size = size_option(args)
    if args.to_minimum_size:
        if user is not None:
            refuse_if_running(ctx, path, "shrunk")
        size = vhd.inspect(path, with_minimum_size=True).minimum_size
        if size is None:
            raise ValidationError(f"'{path}' can't be shrunk: its type and format have no minimum size.")
    if size is None:
        raise UsageError("give --size-gb, --size-bytes or --to-minimum-size")
    if user is None:
        with progress_on(ctx, "Resizing") as report:
            info = vhd.resize(path, size, report)
    else:
        with libvirt_errors(f"Finding the virtual machine '{user.vm_name}'"):
            dom = ctx.conn.lookupByUUIDString(user.uuid)
        vm_storage.expand_online(ctx.conn, dom, path, size)
        ctx.note(f"Expanded online: '{user.vm_name}' is running and sees the new size on {user.target}.")
        info = vhd.inspect(path)
    show_disk(ctx, info)
    return 0


def convert_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``convert-vhd PATH DESTINATION [--vhd-type T] [--format F] [--delete-source]``."""
    source, destination = absolute(args.path), absolute(args.destination)
    fmt = disk_format(args.format, destination)
    refuse_if_running(ctx, source, "converted")
    info = vhd.inspect(source)
    disk_type = TYPE_CHOICES[args.vhd_type] if args.vhd_type else info.type
    if disk_type is DiskType.DIFFERENCING:  # the new file holds the whole content
        disk_type = DiskType.DYNAMIC
    if args.delete_source:
        users = disk_usage.users_of(ctx.conn, source)
        if users:
            names = ", ".join(sorted({u.vm_name for u in users}))
            raise InvalidStateError(
                f"Not converting: --delete-source would delete '{source}', which {names} uses.",
                "Convert without --delete-source, or take the disk out of the VM first.",
            )
    with progress_on(ctx, "Converting") as report:
        converted = vhd.convert(source, destination, fmt, disk_type, report)
    if args.delete_source:
        vhd.flush(converted.path)  # the copy is on stable storage before its source goes
        os.unlink(source)
        ctx.note(f"Deleted the source '{source}'.")
    show_disk(ctx, converted)
    return 0


def optimize_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``optimize-vhd PATH`` (Optimize-VHD): compact a dynamic or differencing disk."""
    path = absolute(args.path)
    refuse_if_running(ctx, path, "compacted")
    with progress_on(ctx, "Compacting") as report:
        before, after = vhd.compact(path, report)
    if ctx.json:
        output.write_json(ctx.out, {"path": path, "file_size_before": before, "file_size_after": after})
    else:
        ctx.say(
            f"Compacted '{path}': {format_bytes(before)} -> {format_bytes(after)} "
            f"({before} -> {after} bytes)."
        )
    return 0


def merge_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``merge-vhd PATH [--destination-path NEW [--vhd-type T] [--format F]]`` (Merge-VHD)."""
    path = absolute(args.path)
    if args.destination_path is None and (args.vhd_type or args.format):
        raise UsageError("--vhd-type and --format need --destination-path")
    refuse_if_running(ctx, path, "merged")
    if args.destination_path is None:
        with progress_on(ctx, "Merging") as report:
            merged = vhd.merge_into_parent(path, report)
        ctx.note(f"Merged '{path}' into its parent '{merged.path}' and deleted it.")
    else:
        destination = absolute(args.destination_path)
        fmt = disk_format(args.format, destination)
        disk_type = TYPE_CHOICES[args.vhd_type] if args.vhd_type else DiskType.DYNAMIC
        with progress_on(ctx, "Merging") as report:
            merged = vhd.merge_to_new(path, destination, fmt, disk_type, report)
    show_disk(ctx, merged)
    return 0


def set_vhd(ctx: Context, args: argparse.Namespace) -> int:
    """``set-vhd PATH --parent-path NEWPARENT [--ignore-id-mismatch]`` (Set-VHD): reconnect."""
    path = absolute(args.path)
    refuse_if_running(ctx, path, "reconnected")
    info = vhd.reconnect(path, absolute(args.parent_path), args.ignore_id_mismatch)
    show_disk(ctx, info)
    return 0
