"""Taking a checkpoint: the checks, the switch of every disk to a new differencing disk (live
with the memory saved alongside, or offline), and the roll-back when anything fails.

Called by ``checkpoints`` with the VM's checkpoint lock held.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid as uuidlib
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend import checkpoint_images as images
from hvmanager.backend import checkpoint_journal as journal
from hvmanager.backend import memory_staging
from hvmanager.backend.checkpoint_merge import checkpoint_folder
from hvmanager.backend.checkpoint_state import (
    CONFIG_FILE,
    MEMORY_FILE,
    SCREEN_STEM,
    DomainState,
    define,
    move_into_place,
    read_state,
    recover,
    write_tree,
)
from hvmanager.backend.checkpoint_tree import (
    MAX_CHECKPOINTS,
    Checkpoint,
    CheckpointTree,
    CheckpointType,
    Image,
    tree_to_xml,
)
from hvmanager.backend.checkpoint_xml import (
    CheckpointPolicy,
    all_disk_targets,
    checkpoint_disks,
    domain_name,
    edit_policy,
    overlay_snapshot_xml,
    parse_policy,
    set_disk_sources,
    set_name,
    set_tree,
    unsupported_disk_reason,
)
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.guest_agent import AGENT_TIMEOUT_S, agent_answers, bounded_agent
from hvmanager.backend.limits import checkpoint_name_problem, human_size
from hvmanager.backend.live_downtime import short_downtime
from hvmanager.backend.paths import nearest_existing
from hvmanager.backend.screenshot import take_screenshot

log = logging.getLogger(__name__)

_AGENT_HINT = (
    "Start the QEMU guest agent in the guest, or allow standard checkpoints in "
    "Settings ▸ Management ▸ Checkpoints."
)


@dataclass(frozen=True)
class TakeResult:
    """A checkpoint taken, and why it is a standard one when a production one was asked for."""

    checkpoint: Checkpoint
    fallback_reason: str = ""


def default_name(vm_name: str, when: datetime) -> str:
    """Hyper-V's default: ``<VM> - (MM/DD/YYYY - hh:mm:ss AM/PM)``."""
    return f"{vm_name} - ({when:%m/%d/%Y - %I:%M:%S %p})"


def _check_can_take(state: DomainState, name: str) -> None:
    policy = parse_policy(state.xml)
    if not policy.enabled:
        raise InvalidStateError(
            f"Checkpoints are disabled for '{domain_name(state.xml)}'.",
            "Enable them in Settings ▸ Management ▸ Checkpoints.",
        )
    problem = checkpoint_name_problem(name)
    if problem:
        raise ValidationError(problem)
    if len(state.tree.visible()) >= MAX_CHECKPOINTS:
        raise InvalidStateError(
            f"The virtual machine already has {MAX_CHECKPOINTS} checkpoints, the most it can have.",
            "Delete a checkpoint first.",
        )
    reason = unsupported_disk_reason(state.xml)
    if reason:
        raise InvalidStateError(f"A checkpoint cannot be taken: {reason}", "Remove that disk first.")
    if not checkpoint_disks(state.xml):
        raise InvalidStateError("A checkpoint cannot be taken: the VM has no virtual hard disk.")
    if state.state == "Other":
        raise InvalidStateError("A checkpoint cannot be taken while the VM is starting or stopping.")


def _production_choice(dom: Any, policy: CheckpointPolicy, state: str) -> tuple[bool, str]:
    """(production?, fall-back reason) for the VM's policy and whether its guest agent answers."""
    if policy.type not in (CheckpointType.PRODUCTION, CheckpointType.PRODUCTION_ONLY):
        return False, ""
    if state != "Running":
        return True, ""  # nothing runs in the guest to freeze: the disks are consistent already
    if agent_answers(dom):
        return True, ""
    reason = (
        f"the guest agent did not answer within {AGENT_TIMEOUT_S} s, so the guest's file systems "
        "could not be frozen"
    )
    if policy.type is CheckpointType.PRODUCTION_ONLY:
        raise InvalidStateError(f"A production checkpoint could not be taken: {reason}.", _AGENT_HINT)
    return False, f"A standard checkpoint was taken instead of a production one: {reason}."


def take_locked(conn: Any, dom: Any, name: str | None) -> TakeResult:
    """Take a checkpoint (the caller holds the VM's lock and has recovered the journal).

    A production checkpoint whose freeze fails all the same (the agent answered the ping, then
    not the freeze) is rolled back and, when the policy allows, taken as a standard one.
    """
    state = read_state(dom)
    name = default_name(dom.name(), datetime.now()) if name is None else name
    _check_can_take(state, name)
    policy = parse_policy(state.xml)
    production, fallback = _production_choice(dom, policy, state.state)
    try:
        return _take_as(conn, dom, state, name, production, fallback)
    except HvError as exc:
        if not production or state.state != "Running" or not _freeze_failure(exc):
            raise
        why = f"freezing the guest's file systems failed ({exc.message})"
        if policy.type is CheckpointType.PRODUCTION_ONLY:
            raise InvalidStateError(
                f"A production checkpoint could not be taken: {why}.", _AGENT_HINT
            ) from exc
        reason = f"A standard checkpoint was taken instead of a production one: {why}."
        return _take_as(conn, dom, read_state(dom), name, False, reason)


def _freeze_failure(exc: HvError) -> bool:
    """Whether a failed quiesced switch failed in the guest agent (its freeze), not elsewhere."""
    text = exc.message.lower()
    return "agent" in text or "freeze" in text or "frozen" in text


def _take_as(
    conn: Any, dom: Any, state: DomainState, name: str, production: bool, fallback: str
) -> TakeResult:
    """Take a production (disks, guest frozen) or standard checkpoint; all or nothing."""
    memory = not production and state.state != "Off"
    checkpoint_id = str(uuidlib.uuid4())
    folder = checkpoint_folder(state, checkpoint_id)
    memory_file = folder / MEMORY_FILE
    if memory:
        _check_memory_room(dom, folder.parent)
    staged = memory_staging.staging_file(dom, checkpoint_id) if memory else None
    disks = checkpoint_disks(state.xml)
    overlays: dict[str, str] = {}
    entry: journal.Journal | None = None
    try:
        folder.mkdir(parents=True)
        (folder / CONFIG_FILE).write_text(state.xml, encoding="utf-8")
        for disk in disks:
            overlays[disk.target] = images.create_overlay(disk.file, disk.format)
        checkpoint = Checkpoint(
            id=checkpoint_id,
            name=name,
            parent=state.tree.now,
            created=datetime.now().astimezone(),
            vm_state=state.state,
            production=production,
            memory=memory,
            images={d.target: _frozen_image(state.tree, d.target, d.file, d.format) for d in disks},
        )
        now_images = {d.target: Image(overlays[d.target], d.file) for d in disks}
        after = replace(state.tree.with_checkpoint(checkpoint), now=checkpoint_id, now_images=now_images)
        created = [*overlays.values(), str(folder), *([str(staged)] if staged else [])]
        moves = {str(staged): str(memory_file)} if staged else {}
        entry = journal.Journal("take", tree_to_xml(after), created, commit_marker=overlays, moves=moves)
        journal.write(state.folder, entry)
        target = (staged or memory_file) if memory else None
        freezing = production and state.state == "Running"
        with bounded_agent(dom) if freezing else contextlib.nullcontext():
            _switch(conn, dom, state, after, overlays, target, production)
        if staged:
            fallback = _place_memory(dom, after, checkpoint, str(staged), memory_file) or fallback
        journal.remove(state.folder)
        if dom.isActive():
            _keep_screen(conn, dom, folder)
    except BaseException:
        _undo_take(conn, dom, state, entry, overlays, folder)
        raise
    return TakeResult(checkpoint, fallback)


def _keep_screen(conn: Any, dom: Any, folder: Path) -> None:
    """Keep a picture of the VM's screen with the checkpoint (shown when it is selected, as in
    Hyper-V); best effort: a VM without a display simply has none."""
    try:
        mime, data = take_screenshot(conn, dom)
        extension = "png" if mime == "image/png" else "ppm"
        (folder / f"{SCREEN_STEM}.{extension}").write_bytes(data)
    except (HvError, OSError, libvirt.libvirtError) as exc:
        log.info("no screen picture for the checkpoint of %s: %s", dom.name(), exc)


def _check_memory_room(dom: Any, folder: Path) -> None:
    """Refuse before anything changes when the memory image may not fit (worst case: all RAM)."""
    needed = int(dom.maxMemory()) * 1024
    free = images.free_bytes(str(nearest_existing(folder)))
    if free < needed:
        raise HvError(
            f"There is not enough space in '{folder}' for the VM's memory: it may need up to "
            f"{human_size(needed)}, and {human_size(free)} is free.",
            "Free some space, or choose another checkpoint file location in Settings ▸ Checkpoints.",
        )


def _place_memory(dom: Any, after: CheckpointTree, checkpoint: Checkpoint, staged: str, final: Path) -> str:
    """Move the staged memory image into the checkpoint's folder; if that fails now that the VM
    runs on its new overlays, keep the checkpoint as a disk-only one and say why."""
    try:
        move_into_place(staged, str(final))
    except OSError as exc:
        Path(staged).unlink(missing_ok=True)
        Path(f"{final}.partial").unlink(missing_ok=True)
        write_tree(dom, after.with_checkpoint(replace(checkpoint, memory=False)))
        return (
            f"The memory image could not be written to '{final.parent}' ({exc.strerror or exc}): "
            "the checkpoint holds the disks and configuration only."
        )
    return ""


def _frozen_image(tree: CheckpointTree, target: str, file: str, fmt: str) -> Image:
    current = tree.now_images.get(target)
    return current if current is not None and current.file == file else Image(file, None, fmt)


def _undo_take(
    conn: Any,
    dom: Any,
    state: DomainState,
    entry: journal.Journal | None,
    overlays: dict[str, str],
    folder: Path,
) -> None:
    """Roll a failed take back (or forward, when the VM already runs on the new overlays)."""
    if entry is not None:
        recover(conn, dom)
        return
    for file in overlays.values():
        images.delete(file)
    shutil.rmtree(folder, ignore_errors=True)


def _switch(
    conn: Any,
    dom: Any,
    state: DomainState,
    after: CheckpointTree,
    overlays: dict[str, str],
    memory_file: Path | None,
    production: bool,
) -> None:
    """Make the VM write to the new overlays from now on (and save its memory alongside)."""
    if state.state == "Off":
        define(conn, state.xml, after, overlays)
        return
    if state.state == "Saved":
        _switch_saved(conn, dom, state, after, overlays, memory_file)
        return
    _switch_live(dom, state, overlays, memory_file, production)
    define(conn, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), after, overlays)


def _switch_live(
    dom: Any, state: DomainState, overlays: dict[str, str], memory_file: Path | None, production: bool
) -> None:
    flags = (
        libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
        | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT
        | libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC
    )
    if memory_file is None:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY
        if production and state.state == "Running":
            flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE
    elif state.state == "Running":
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_LIVE
    xml = overlay_snapshot_xml(
        overlays, all_disk_targets(dom.XMLDesc(0)), str(memory_file) if memory_file else None
    )
    live_memory = bool(flags & libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_LIVE)
    downtime = short_downtime(dom) if live_memory else contextlib.nullcontext()
    with libvirt_errors(f"Taking a checkpoint of '{dom.name()}'"), downtime:
        dom.snapshotCreateXML(xml, flags)


def _switch_saved(
    conn: Any,
    dom: Any,
    state: DomainState,
    after: CheckpointTree,
    overlays: dict[str, str],
    memory_file: Path | None,
) -> None:
    """A saved VM: resume it paused from its saved state, checkpoint it, and save it again.

    QEMU refuses a second outgoing migration after the checkpoint's memory was written, so the
    VM is saved again from a fresh restore of that memory image (exactly the saved state), never
    letting the guest run in between.
    """
    with libvirt_errors(f"Resuming '{dom.name()}' from its saved state for the checkpoint"):
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
    try:
        _switch_live(dom, replace(state, state="Paused"), overlays, memory_file, False)
        define(conn, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), after, overlays)
        if memory_file is not None:
            with libvirt_errors(f"Saving '{dom.name()}' again"):
                dom.destroy()
            restore_from(conn, dom, str(memory_file), overlays, after, paused=True)
    finally:
        if dom.isActive():
            with libvirt_errors(f"Saving '{dom.name()}' again"):
                dom.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)  # Start resumes it, as before


def restore_from(
    conn: Any, dom: Any, memory: str, overlays: dict[str, str], tree: CheckpointTree, paused: bool
) -> None:
    """Restore a memory image with the VM's name, policy and tree, its disks on ``overlays``."""
    current = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    xml = conn.saveImageGetXMLDesc(memory, 0)
    xml = set_disk_sources(set_name(xml, dom.name()), {t: (f, "qcow2") for t, f in overlays.items()})
    xml = set_tree(edit_policy(xml, parse_policy(current)), tree)
    flags = libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else libvirt.VIR_DOMAIN_SAVE_RUNNING
    conn.restoreFlags(memory, xml, flags)
