"""The live steps of ``vm_storage.apply_layout`` for a running or paused VM: remove hard drives
(``detachDeviceFlags``, then wait until the live XML no longer has the disk: the guest must release
it), change DVD media (``updateDeviceFlags``) and add hard drives (``attachDeviceFlags`` with an
explicit address), each on the running VM and in its configuration at once. Each step records how
to undo it; when a step fails, the steps before it are undone, so the VM ends as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import libvirt

from hvmanager.backend import storage_xml, storage_xml_edit
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError
from hvmanager.backend.storage_layout import Drive, DriveKind, StorageLayout, slot_label, slot_order

log = logging.getLogger(__name__)

Undo = Callable[[], None]

DETACH_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.1
CONFIG_XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE  # the persistent XML


class _Steps:
    """Live steps done so far, undone in reverse order when a later one fails."""

    def __init__(self) -> None:
        self.undos: list[tuple[str, Undo]] = []

    def undo_all(self) -> None:
        for what, step in reversed(self.undos):
            try:
                step()
            except Exception:  # best effort: the caller raises the first error
                log.exception("undoing a storage change failed: %s", what)


def _flags(dom: Any) -> int:
    live = libvirt.VIR_DOMAIN_AFFECT_LIVE
    return int(live | libvirt.VIR_DOMAIN_AFFECT_CONFIG) if dom.isPersistent() else int(live)


def apply_live(dom: Any, live_xml: str, new: StorageLayout) -> Undo:
    """Change the running VM (whose live XML is ``live_xml``) to the drives of ``new``, step by step;
    returns the function that undoes every step (what failed halfway is undone before raising)."""
    flags = _flags(dom)
    with libvirt_errors(f"Reading the configuration of '{dom.name()}'"):
        config_xml = str(dom.XMLDesc(CONFIG_XML_FLAGS)) if dom.isPersistent() else live_xml
    config = {e.target: e.xml for e in storage_xml.read_drive_elements(config_xml)}
    elements = {e.drive.slot: e for e in storage_xml.read_drive_elements(live_xml)}
    wanted = {d.slot: d for d in new.drives}
    removed, media, added = [], [], []
    for slot in sorted(elements.keys() | wanted.keys(), key=slot_order):
        old, drive = elements.get(slot), wanted.get(slot)
        if old is not None and old.drive == drive:
            continue
        if old is not None and drive is not None and old.drive.kind is drive.kind is DriveKind.DVD:
            media.append((old, drive))
            continue
        if old is not None:
            removed.append(old)
        if drive is not None:
            added.append(drive)
    used = storage_xml.target_names(live_xml) | storage_xml.target_names(config_xml)
    steps = _Steps()
    try:
        for element in removed:
            _remove(dom, config.get(element.target, element.xml), element, flags, steps)
        for element, drive in media:
            _change_media(dom, config.get(element.target, element.xml), drive, flags, steps)
        for drive in added:
            target = storage_xml.free_target(drive, used)
            used.add(target)
            _add(dom, drive, target, flags, steps)
    except Exception:
        steps.undo_all()
        raise
    return steps.undo_all


def _live_and_config_targets(dom: Any) -> tuple[set[str], set[str]]:
    live = storage_xml.target_names(str(dom.XMLDesc(0)))
    config = storage_xml.target_names(str(dom.XMLDesc(CONFIG_XML_FLAGS))) if dom.isPersistent() else live
    return live, config


def _restore(dom: Any, disk_xml: str, target: str, flags: int) -> None:
    """Attach a disk again wherever it is missing (running VM, configuration)."""
    live, config = _live_and_config_targets(dom)
    missing = 0
    if target not in live:
        missing |= libvirt.VIR_DOMAIN_AFFECT_LIVE
    if target not in config:
        missing |= flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG
    if missing:
        dom.attachDeviceFlags(disk_xml, missing)


def _wait_gone(dom: Any, target: str, where: str) -> None:
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    while target in storage_xml.target_names(str(dom.XMLDesc(0))):
        if time.monotonic() >= deadline:
            raise HvError(
                f"The hard drive at {where} was not removed: the guest did not release it within "
                f"{DETACH_TIMEOUT_S:.0f} s.",
                "Stop using the disk in the guest (unmount it), then try again.",
            )
        time.sleep(POLL_INTERVAL_S)


def _remove(dom: Any, disk_xml: str, element: storage_xml.DriveElement, flags: int, steps: _Steps) -> None:
    where = slot_label(*element.drive.slot)
    steps.undos.append((f"put back {where}", lambda: _restore(dom, disk_xml, element.target, flags)))
    with libvirt_errors(f"Removing the hard drive at {where} from '{dom.name()}'"):
        dom.detachDeviceFlags(disk_xml, flags)
        _wait_gone(dom, element.target, where)


def _change_media(dom: Any, disk_xml: str, drive: Drive, flags: int, steps: _Steps) -> None:
    where = slot_label(*drive.slot)
    with libvirt_errors(f"Changing the media of the DVD drive at {where} of '{dom.name()}'"):
        dom.updateDeviceFlags(storage_xml_edit.media_xml(disk_xml, drive), flags)
    steps.undos.append((f"media of {where}", lambda: dom.updateDeviceFlags(disk_xml, flags)))


def _detach_new(dom: Any, disk_xml: str, target: str, flags: int, where: str) -> None:
    """Take a hot-added disk back from wherever it got (running VM, configuration)."""
    live, config = _live_and_config_targets(dom)
    present = (libvirt.VIR_DOMAIN_AFFECT_LIVE if target in live else 0) | (
        flags & libvirt.VIR_DOMAIN_AFFECT_CONFIG if target in config else 0
    )
    if present:
        dom.detachDeviceFlags(disk_xml, present)
    if present & libvirt.VIR_DOMAIN_AFFECT_LIVE:
        _wait_gone(dom, target, where)


def _add(dom: Any, drive: Drive, target: str, flags: int, steps: _Steps) -> None:
    where = slot_label(*drive.slot)
    disk_xml = storage_xml_edit.new_disk_xml(drive, target)
    with libvirt_errors(f"Adding the hard drive at {where} to '{dom.name()}'"):
        dom.attachDeviceFlags(disk_xml, flags)
    steps.undos.append((f"take back {where}", lambda: _detach_new(dom, disk_xml, target, flags, where)))
