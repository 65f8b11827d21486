"""The ``hvctl`` verbs for a VM's storage controllers and drives (Hyper-V's ``*-VMHardDiskDrive``,
``*-VMDvdDrive`` and ``*-VMScsiController`` cmdlets; declared in ``storage_commands``).

Each verb reads the VM's layout, makes one change to it and applies it with
``vmsettings.apply_settings`` (the Settings dialog's path: the same rules, the VM's checkpoint
lock, nothing changed when a rule refuses). Without a place, a new drive goes where Hyper-V puts
it: the first free location of the first controller with one, IDE before SCSI on a Generation 1
VM that is off, SCSI otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from hvmanager.backend import limits, paths, qemuimg, storage_layout, vm_storage
from hvmanager.backend.connection import is_local_uri
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, StorageLayout, slot_label
from hvmanager.backend.vmsettings import SettingsChange, apply_settings
from hvmanager.cli import output
from hvmanager.cli.context import Context, find_vm

HARD_DRIVE_HEADERS = (
    "VMName",
    "ControllerType",
    "ControllerNumber",
    "ControllerLocation",
    "DiskType",
    "Path",
)
DVD_HEADERS = ("VMName", "ControllerType", "ControllerNumber", "ControllerLocation", "DvdMediaType", "Path")


# --- records and tables -------------------------------------------------------------------------


def drive_record(vm_name: str, drive: Drive) -> dict[str, Any]:
    """One drive as the storage verbs print it with ``--json``."""
    record: dict[str, Any] = {
        "vm_name": vm_name,
        "controller_type": drive.bus.name,
        "controller_number": drive.controller,
        "controller_location": drive.location,
        "path": drive.path,
    }
    if drive.kind is DriveKind.DVD:
        record["media_type"] = "ISO" if drive.path else "None"
    else:
        record.update(format=drive.format, passthrough=drive.passthrough)
    return record


def _row(vm_name: str, drive: Drive) -> list[object]:
    if drive.kind is DriveKind.DVD:
        kind = "ISO" if drive.path else "None"
    else:
        kind = "Physical" if drive.passthrough else limits.format_for_qemu(drive.format or "raw")
    return [vm_name, drive.bus.name, drive.controller, drive.location, kind, drive.path or ""]


def _show(ctx: Context, dom: Any, kind: DriveKind) -> int:
    drives = [d for d in vm_storage.current_layout(dom).drives if d.kind is kind]
    if ctx.json:
        output.write_json(ctx.out, [drive_record(dom.name(), d) for d in drives])
    else:
        headers = HARD_DRIVE_HEADERS if kind is DriveKind.HARD_DISK else DVD_HEADERS
        output.write_text(ctx.out, output.format_table(headers, [_row(dom.name(), d) for d in drives]))
    return 0


def _apply(ctx: Context, dom: Any, new: StorageLayout, done: str, drive: Drive | None = None) -> int:
    notes = apply_settings(ctx.conn, dom, SettingsChange(storage=new), ctx.server.host_info())
    for note in notes:
        ctx.note(note)
    if ctx.json:
        output.write_json(ctx.out, drive_record(dom.name(), drive) if drive else {"vm_name": dom.name()})
    ctx.say(done)
    return 0


# --- places and media ---------------------------------------------------------------------------


def _bus(text: str | None) -> Bus | None:
    return Bus(text.lower()) if text else None


def _place(
    layout: StorageLayout, args: argparse.Namespace, kind: DriveKind, active: bool
) -> tuple[Bus, int, int]:
    """Where a new drive goes: the given place, or the first free one that fits it."""
    given = _bus(args.controller_type)
    if given is not None:
        buses = [given]
    elif layout.generation == 2 or (kind is DriveKind.HARD_DISK and active):
        buses = [Bus.SCSI]  # IDE can't change while the VM runs
    else:
        buses = [Bus.IDE] if kind is DriveKind.DVD else [Bus.IDE, Bus.SCSI]
    if args.controller_number is not None and args.location is not None:
        bus = buses[0]
        taken = storage_layout.drive_at(layout, bus, args.controller_number, args.location)
        if taken is not None:
            raise ValidationError(
                f"{slot_label(bus, args.controller_number, args.location)} already holds a "
                f"{storage_layout.KIND_LABELS[taken.kind]} ({taken.path or 'no media'})."
            )
        return bus, args.controller_number, args.location
    for bus in buses:
        numbers = storage_layout.controllers(layout, bus)
        for number in [args.controller_number] if args.controller_number is not None else numbers:
            if args.location is not None and number in numbers:
                if storage_layout.drive_at(layout, bus, number, args.location) is None:
                    return bus, number, args.location
            elif (
                args.location is None and (free := storage_layout.free_slot(layout, bus, number)) is not None
            ):
                return bus, number, free
    names = " or ".join(b.name for b in buses)
    raise ValidationError(
        f"There is no free location for it on the {names} controllers of the virtual machine.",
        "Give --controller-type, --controller-number and --location, or add a SCSI controller "
        "with: hvctl add-vmscsicontroller VM",
    )


def _local_file(ctx: Context, path: str) -> str:
    """An existing file on this machine (paths are relative to the current folder)."""
    if not is_local_uri(ctx.server.uri):
        raise ValidationError(
            "hvctl can attach files only on this machine's server.", "Run hvctl on that server instead."
        )
    absolute = os.path.abspath(path)
    limits.require(paths.existing_file_problem(absolute))
    return absolute


def _slot_of(args: argparse.Namespace, default: Bus) -> tuple[Bus, int, int]:
    return _bus(args.controller_type) or default, args.controller_number, args.location


def _existing(dom: Any, layout: StorageLayout, slot: tuple[Bus, int, int], kind: DriveKind) -> Drive:
    drive = storage_layout.drive_at(layout, *slot)
    what = storage_layout.KIND_LABELS[kind]
    if drive is None or drive.kind is not kind:
        raise ValidationError(f"'{dom.name()}' has no {what} at {slot_label(*slot)}.")
    return drive


def _without(layout: StorageLayout, drive: Drive) -> StorageLayout:
    return dataclasses.replace(layout, drives=tuple(d for d in layout.drives if d != drive))


def _dvd_bus(layout: StorageLayout) -> Bus:
    return Bus.SCSI if layout.generation == 2 else Bus.IDE


# --- the verbs ----------------------------------------------------------------------------------


def get_vmharddiskdrive(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmharddiskdrive VM`` (Get-VMHardDiskDrive)."""
    return _show(ctx, find_vm(ctx, args.vm), DriveKind.HARD_DISK)


def get_vmdvddrive(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmdvddrive VM`` (Get-VMDvdDrive)."""
    return _show(ctx, find_vm(ctx, args.vm), DriveKind.DVD)


def add_vmharddiskdrive(ctx: Context, args: argparse.Namespace) -> int:
    """``add-vmharddiskdrive VM --path FILE | --physical DEV [place]`` (Add-VMHardDiskDrive)."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    if args.path is not None:
        path = _local_file(ctx, args.path)
        media: dict[str, Any] = {"path": path, "format": qemuimg.detect_format(path)}
    else:
        media = {"path": os.path.abspath(args.physical), "passthrough": True}
    place = _place(layout, args, DriveKind.HARD_DISK, bool(dom.isActive()))
    drive = Drive(DriveKind.HARD_DISK, *place, **media)
    new = dataclasses.replace(layout, drives=(*layout.drives, drive))
    return _apply(ctx, dom, new, f"Added a hard drive to '{dom.name()}' at {slot_label(*place)}.", drive)


def remove_vmharddiskdrive(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vmharddiskdrive VM --controller-type T --controller-number N --location L``."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    drive = _existing(dom, layout, _slot_of(args, Bus.IDE), DriveKind.HARD_DISK)
    done = f"Removed the hard drive at {slot_label(*drive.slot)} from '{dom.name()}' (the disk is kept)."
    return _apply(ctx, dom, _without(layout, drive), done, drive)


def add_vmscsicontroller(ctx: Context, args: argparse.Namespace) -> int:
    """``add-vmscsicontroller VM`` (Add-VMScsiController)."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    new = dataclasses.replace(layout, scsi_controllers=layout.scsi_controllers + 1)
    return _apply(ctx, dom, new, f"Added SCSI Controller {layout.scsi_controllers} to '{dom.name()}'.")


def remove_vmscsicontroller(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vmscsicontroller VM --controller-number N``: the controllers above move down one."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    number = args.controller_number
    if number not in storage_layout.controllers(layout, Bus.SCSI):
        raise ValidationError(f"'{dom.name()}' has no SCSI Controller {number}.")
    on_it = [d for d in layout.drives if d.bus is Bus.SCSI and d.controller == number]
    if on_it:
        raise ValidationError(
            f"SCSI Controller {number} of '{dom.name()}' still has {len(on_it)} drive(s).",
            "Remove them first with remove-vmharddiskdrive / remove-vmdvddrive.",
        )
    moved = tuple(
        dataclasses.replace(d, controller=d.controller - 1)
        if d.bus is Bus.SCSI and d.controller > number
        else d
        for d in layout.drives
    )
    new = StorageLayout(layout.generation, layout.scsi_controllers - 1, moved)
    return _apply(ctx, dom, new, f"Removed SCSI Controller {number} from '{dom.name()}'.")


def add_vmdvddrive(ctx: Context, args: argparse.Namespace) -> int:
    """``add-vmdvddrive VM [--path ISO] [place]`` (Add-VMDvdDrive)."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    path = _local_file(ctx, args.path) if args.path else None
    if args.controller_type is None:
        args.controller_type = _dvd_bus(layout).value
    place = _place(layout, args, DriveKind.DVD, bool(dom.isActive()))
    drive = Drive(DriveKind.DVD, *place, path, "raw" if path else None)
    new = dataclasses.replace(layout, drives=(*layout.drives, drive))
    return _apply(ctx, dom, new, f"Added a DVD drive to '{dom.name()}' at {slot_label(*place)}.", drive)


def set_vmdvddrive(ctx: Context, args: argparse.Namespace) -> int:
    """``set-vmdvddrive VM --controller-number N --location L (--path ISO | --none)``."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    old = _existing(dom, layout, _slot_of(args, _dvd_bus(layout)), DriveKind.DVD)
    path = _local_file(ctx, args.path) if args.path else None
    drive = dataclasses.replace(old, path=path, format="raw" if path else None)
    new = dataclasses.replace(layout, drives=(*_without(layout, old).drives, drive))
    media = f"the image {path}" if path else "no media"
    return _apply(
        ctx, dom, new, f"The DVD drive at {slot_label(*old.slot)} of '{dom.name()}' has {media}.", drive
    )


def remove_vmdvddrive(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vmdvddrive VM --controller-number N --location L`` (Remove-VMDvdDrive)."""
    dom = find_vm(ctx, args.vm)
    layout = vm_storage.current_layout(dom)
    drive = _existing(dom, layout, _slot_of(args, _dvd_bus(layout)), DriveKind.DVD)
    done = f"Removed the DVD drive at {slot_label(*drive.slot)} from '{dom.name()}'."
    return _apply(ctx, dom, _without(layout, drive), done, drive)
