"""Changing a VM's controllers and drives through libvirt, and expanding a running VM's disk.

``apply_layout`` checks the rules of ``storage_rules`` against the VM as libvirt sees it (its
state, and its running configuration while it runs), checks each added disk file, image and
physical disk, then:

- for a VM that is off, defines the edited persistent XML in one call;
- for a running or paused VM, removes hard drives, changes DVD media and adds hard drives, each on
  the running VM and in its configuration at once (``vm_storage_live``). When a step fails, the
  steps before it are undone, so the VM ends as it was.

These functions block (run them in an executor) and take no lock: ``vmsettings.apply_settings``
calls them under the VM's checkpoint lock, so no merge runs on a disk while it goes.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from hvmanager.backend import inventory, limits, paths, qemuimg, storage_xml, storage_xml_edit
from hvmanager.backend.connection import is_local_uri, libvirt_errors, local_qemu_user
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.passthrough import passthrough_problem
from hvmanager.backend.storage_layout import Drive, DriveKind, StorageLayout, normalized
from hvmanager.backend.storage_rules import storage_problems
from hvmanager.backend.vm_storage_live import CONFIG_XML_FLAGS, Undo, apply_live


def current_xml(dom: Any) -> str:
    """The XML storage changes are checked against: the running configuration while the VM runs,
    else the persistent one."""
    flags = 0 if dom.isActive() else CONFIG_XML_FLAGS
    with libvirt_errors(f"Reading the configuration of '{dom.name()}'"):
        return str(dom.XMLDesc(flags))


def current_layout(dom: Any) -> StorageLayout:
    """The VM's controllers and drives as ``apply_layout`` sees them (blocking)."""
    return storage_xml.read_layout(current_xml(dom))


# --- checks of added media ----------------------------------------------------------------------


def _file_problem(drive: Drive, qemu_user: str | None) -> str | None:
    assert drive.path is not None
    problem = paths.existing_file_problem(drive.path, qemu_user)
    if problem or drive.kind is DriveKind.DVD:
        return problem
    found = qemuimg.detect_format(drive.path)
    if drive.format != found:
        label, claimed = limits.format_for_qemu(found), limits.format_for_qemu(drive.format or "?")
        return f"'{drive.path}' is a {label} disk, not {claimed}."
    return None


def media_problems(conn: Any, uuid: str, current: StorageLayout, new: StorageLayout) -> list[str]:
    """Why the disk files, images and physical disks ``new`` adds can't be used (blocking)."""
    added = [d for d in new.drives if d not in current.drives and d.path]
    if not added:
        return []
    with libvirt_errors("Reading the server's address"):
        local = is_local_uri(str(conn.getURI()))
    qemu_user = local_qemu_user(conn) if local else None
    problems = []
    for drive in added:
        if drive.passthrough:
            problem = passthrough_problem(conn, drive.path or "", uuid)
        else:
            problem = _file_problem(drive, qemu_user) if local else None
        if problem and problem not in problems:
            problems.append(problem)
    return problems


def _notes(current: StorageLayout, new: StorageLayout) -> list[str]:
    return [
        f"The host must not use the physical disk {d.path} while the virtual machine has it: don't "
        "mount it on the host. The virtual machine won't start while the host uses it."
        for d in new.drives
        if d.passthrough and d.kind is DriveKind.HARD_DISK and d not in current.drives
    ]


# --- applying -----------------------------------------------------------------------------------


def apply_layout(conn: Any, dom: Any, new: StorageLayout) -> list[str]:
    """Give the VM the controllers and drives of ``new`` (blocking); returns notes for the user.

    Raises ``ValidationError`` when a rule forbids it (nothing is touched) and ``HvError`` when
    libvirt fails (what was done so far is undone first).
    """
    notes, _undo = apply_layout_undoable(conn, dom, new)
    return notes


def apply_layout_undoable(conn: Any, dom: Any, new: StorageLayout) -> tuple[list[str], Undo]:
    """``apply_layout``, also returning a function that puts the old layout back (for callers
    that undo the whole change when a later part of it fails)."""
    info = inventory.vm_info(dom)
    xml = current_xml(dom)
    current = storage_xml.read_layout(xml)
    problems = storage_problems(current, new, info.state)
    if not problems:
        problems = media_problems(conn, info.uuid, current, new)
    if problems:
        raise ValidationError(" ".join(problems))
    if normalized(new) == current:
        return [], lambda: None
    undo = apply_live(dom, xml, new) if info.state.is_active else _apply_offline(conn, dom, xml, new)
    return _notes(current, new), undo


def _apply_offline(conn: Any, dom: Any, xml: str, new: StorageLayout) -> Undo:
    edited = storage_xml_edit.edit_layout(xml, new)
    with libvirt_errors(f"Saving the storage settings of '{dom.name()}'"):
        conn.defineXML(edited)

    def undo() -> None:
        conn.defineXML(xml)

    return undo


# --- online expand ------------------------------------------------------------------------------


def _find_disk(live_xml: str, path_or_target: str) -> ET.Element | None:
    root: ET.Element = SafeET.fromstring(live_xml)
    wanted = os.path.realpath(path_or_target) if os.path.isabs(path_or_target) else None
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        source = disk.find("source")
        file = source.get("file") or source.get("dev") if source is not None else None
        if target is not None and target.get("dev") == path_or_target:
            return disk
        if wanted is not None and file is not None and os.path.realpath(file) == wanted:
            return disk
    return None


def _expand_refusal(disk: ET.Element, path: str) -> str | None:
    """Why a running VM's disk can't be expanded online (Hyper-V: only on SCSI), or None."""
    target = disk.find("target")
    bus = target.get("bus", "") if target is not None else ""
    driver = disk.find("driver")
    fmt = driver.get("type", "raw") if driver is not None else "raw"
    running = "can't be expanded while the virtual machine runs"
    if disk.get("device", "disk") != "disk":
        return f"'{path}' is a DVD drive's image, not a hard disk."
    if bus == "ide":
        return f"'{path}' {running}: it is on an IDE controller. Shut the virtual machine down first."
    if bus not in ("scsi", "virtio"):
        return (
            f"'{path}' {running}: it is on a {bus.upper()} controller. Shut the virtual machine down first."
        )
    if disk.get("type", "file") == "block":
        return f"'{path}' is a physical disk: its size is the host disk's."
    if disk.find("backingStore/source") is not None:
        return (
            f"'{path}' is a differencing disk (the virtual machine has checkpoints): only fixed and "
            "dynamically expanding disks can be expanded. Delete the checkpoints first."
        )
    if fmt == "vpc":
        return f"'{path}' is a VHD disk, which QEMU can't resize: convert it to QCOW2 first (offline)."
    return None


def expand_online(conn: Any, dom: Any, path: str, size_bytes: int) -> None:
    """Grow a disk of a running VM to ``size_bytes`` (``path``: its file or its target name, e.g.
    ``sdb``); the guest sees the new size at once. Refused for IDE disks (Hyper-V §2.4), physical,
    differencing and VHD disks, for shrinking, and beyond the format's largest size."""
    del conn  # the domain carries its connection; kept for a uniform back-end signature
    name = dom.name()
    if not dom.isActive():
        raise InvalidStateError(f"'{name}' is not running: expand '{path}' offline instead.")
    with libvirt_errors(f"Reading the configuration of '{name}'"):
        disk = _find_disk(str(dom.XMLDesc(0)), path)
    if disk is None:
        raise ValidationError(f"'{path}' is not a disk of the running virtual machine '{name}'.")
    refusal = _expand_refusal(disk, path)
    if refusal:
        raise InvalidStateError(refusal)
    target_el, driver = disk.find("target"), disk.find("driver")
    target = target_el.get("dev", "") if target_el is not None else ""
    fmt = driver.get("type", "raw") if driver is not None else "raw"
    with libvirt_errors(f"Reading the size of '{path}'"):
        capacity = int(dom.blockInfo(target, 0)[0])
    if size_bytes < capacity:
        raise ValidationError(
            f"'{path}' can't shrink while the virtual machine runs: it is {limits.human_size(capacity)}, "
            f"more than {limits.human_size(size_bytes)}."
        )
    problem = limits.disk_size_problem(size_bytes, fmt)
    if problem:
        raise ValidationError(problem)
    if size_bytes == capacity:
        return
    with libvirt_errors(f"Expanding '{path}' of '{name}'"):
        dom.blockResize(target, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
