"""VM actions: start, turn off, shut down, save, pause, resume, reset, rename, delete.

Every function blocks (call it from an executor in the GUI), checks the VM's state against
``vmactions`` first and raises ``HvError`` with the reason when the action is not possible.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend import checkpoints, limits, passthrough, paths
from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.checkpoint_journal import forget_lock, is_locked
from hvmanager.backend.checkpoint_state import load_tree
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.domxml import edit_domain_type, parse_domain_xml
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.inventory import domain_xml, vm_info
from hvmanager.backend.models import VmConfig, VmState
from hvmanager.backend.vmactions import VmAction, state_problem

log = logging.getLogger(__name__)


def _require_state(dom: Any, action: VmAction) -> VmState:
    info = vm_info(dom)
    problem = state_problem(action, info.name, info.state)
    if problem:
        raise InvalidStateError(problem)
    return info.state


def apply_acceleration(conn: Any, dom: Any, decision: AccelDecision) -> bool:
    """Switch an hvmanager VM to the domain type of ``decision``; True when it changed."""
    xml = domain_xml(dom)
    config = parse_domain_xml(xml)
    if not config.managed or config.accel_mode != "auto":
        return False
    if config.domain_type == decision.domain_type:
        return False
    with libvirt_errors(f"Switching '{config.name}' to {decision.label}"):
        conn.defineXML(edit_domain_type(xml, decision.domain_type))
    return True


def start(conn: Any, dom: Any, decision: AccelDecision | None = None) -> None:
    """Start a VM that is off, or resume one from its saved state."""
    state = _require_state(dom, VmAction.START)
    if state is not VmState.PAUSED and is_locked(dom.UUIDString()):
        raise InvalidStateError(
            f"'{dom.name()}' can't start while its checkpoints are being merged or changed.",
            "Wait until its Status column no longer shows Merging, then start it.",
        )
    if state is not VmState.PAUSED:
        problem = passthrough.start_problem(conn, dom)  # the host must keep off a pass-through disk
        if problem:
            raise InvalidStateError(problem, passthrough.START_HINT)
    if decision is not None and state is VmState.OFF:
        apply_acceleration(conn, dom, decision)
    with libvirt_errors(f"Starting '{dom.name()}'"):
        dom.create()


def turn_off(dom: Any) -> None:
    """Power off at once, as pulling the plug (Turn Off)."""
    _require_state(dom, VmAction.TURN_OFF)
    with libvirt_errors(f"Turning off '{dom.name()}'"):
        dom.destroy()


def shut_down(dom: Any) -> None:
    """Ask the guest to shut down (ACPI power button or guest agent); returns at once."""
    _require_state(dom, VmAction.SHUT_DOWN)
    with libvirt_errors(f"Shutting down '{dom.name()}'"):
        dom.shutdownFlags(0)


def save(dom: Any) -> None:
    """Save the VM's memory to disk and stop it (Saved state); blocks until done."""
    _require_state(dom, VmAction.SAVE)
    with libvirt_errors(f"Saving '{dom.name()}'"):
        dom.managedSave(0)


def pause(dom: Any) -> None:
    """Pause the VM's processors."""
    _require_state(dom, VmAction.PAUSE)
    with libvirt_errors(f"Pausing '{dom.name()}'"):
        dom.suspend()


def resume(dom: Any) -> None:
    """Resume a paused VM."""
    _require_state(dom, VmAction.RESUME)
    with libvirt_errors(f"Resuming '{dom.name()}'"):
        dom.resume()


def reset(dom: Any) -> None:
    """Hard reset, as pressing the reset button."""
    _require_state(dom, VmAction.RESET)
    with libvirt_errors(f"Resetting '{dom.name()}'"):
        dom.reset(0)


def delete_saved_state(dom: Any) -> None:
    """Discard the saved memory; the VM becomes Off and its disks are untouched."""
    _require_state(dom, VmAction.DELETE_SAVED_STATE)
    with libvirt_errors(f"Deleting the saved state of '{dom.name()}'"):
        dom.managedSaveRemove(0)


def rename(conn: Any, dom: Any, new_name: str) -> None:
    """Give the VM a new name (its files and folders keep theirs, as in Hyper-V)."""
    if new_name == dom.name():
        return
    names = {d.name() for d in conn.listAllDomains(0)}
    problem = limits.vm_name_problem(new_name, names)
    if problem:
        raise ValidationError(problem)
    _require_state(dom, VmAction.RENAME)
    with libvirt_errors(f"Renaming '{dom.name()}'"):
        dom.rename(new_name, 0)


# --- delete -------------------------------------------------------------------------------------


@dataclass
class DeleteReport:
    """What ``delete`` removed and what it kept (and why)."""

    deleted: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def disk_files(config: VmConfig) -> list[str]:
    """The VM's virtual hard disk files (not DVD images, not host block devices)."""
    files = []
    for disk in config.hard_disks:
        if disk.source_type == "file" and disk.path and disk.path not in files:
            files.append(disk.path)
    return files


def _files_used_elsewhere(conn: Any, uuid: str) -> set[str]:
    used: set[str] = set()
    for other in conn.listAllDomains(0):
        if other.UUIDString() == uuid:
            continue
        try:
            used.update(d.path for d in parse_domain_xml(other.XMLDesc(0)).disks if d.path)
        except libvirt.libvirtError:
            continue
    return used


def _undefine_flags(dom: Any, config: VmConfig) -> int:
    """Remove saved state and metadata with the VM; ask only for what exists (drivers differ)."""
    flags = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    if config.firmware == "efi":
        flags |= libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    try:
        has_checkpoints = bool(dom.listAllCheckpoints(0))
    except libvirt.libvirtError:
        has_checkpoints = False  # the driver has no checkpoints at all
    if has_checkpoints:
        flags |= libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    return int(flags)


def delete(conn: Any, dom: Any, delete_disks: bool = False, local: bool = True) -> DeleteReport:
    """Remove the VM; with ``delete_disks`` also its disk files that no other VM uses.

    ``local`` says whether the server is this machine: only then are its files ours to delete.
    """
    if delete_disks and not local:
        raise ValidationError(
            "The disk files of a remote server's VMs are not on this machine, so they can't be deleted here.",
            "Delete the virtual machine and keep its disks, then remove them on that server.",
        )
    _require_state(dom, VmAction.DELETE)
    checkpoint_images: list[str] = []
    checkpoint_folders: list[str] = []
    if local and load_tree(dom).checkpoints:
        if delete_disks:
            checkpoint_images, checkpoint_folders = checkpoints.owned_files(dom)
        else:
            checkpoints.delete_all(conn, dom)  # the disks kept hold the VM's current state
    config = parse_domain_xml(domain_xml(dom))
    report = DeleteReport()
    candidates = disk_files(config) if delete_disks else []
    candidates += [f for f in checkpoint_images if f not in candidates]
    shared = _files_used_elsewhere(conn, config.uuid) if candidates else set()
    with libvirt_errors(f"Deleting '{config.name}'"):
        dom.undefineFlags(_undefine_flags(dom, config))
    for path in candidates:
        if path in shared:
            report.kept[path] = "another virtual machine uses it"
            continue
        try:
            Path(path).unlink()
            report.deleted.append(path)
        except FileNotFoundError:
            report.kept[path] = "it was already gone"
        except OSError as exc:
            report.kept[path] = exc.strerror or str(exc)
    for folder in checkpoint_folders:
        shutil.rmtree(folder, ignore_errors=True)
    if local:
        forget_lock(config.uuid)
    if local:
        _remove_empty_vm_folders(config)
    return report


def _remove_empty_vm_folders(config: VmConfig) -> None:
    """Remove the serial log and the VM's folders once nothing else is left in them."""
    if not config.managed or not config.folder:
        return
    folders = paths.VmFolders(Path(config.folder))
    if config.serial_log and Path(config.serial_log).parent == folders.machines:
        Path(config.serial_log).unlink(missing_ok=True)
    for folder in reversed(folders.all()):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty
