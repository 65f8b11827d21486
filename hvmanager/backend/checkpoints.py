"""Checkpoints of a VM, as Hyper-V makes them: take, apply, revert, delete (merge), rename, and
the disk chains behind them.

hvmanager owns the tree (``checkpoint_tree``, kept in the domain's ``<metadata>``); libvirt is used
only for its primitives: a live switch to pre-made overlays with the memory saved alongside
(``virDomainSnapshotCreateXML`` with ``NO_METADATA``, so libvirt keeps no snapshot of its own),
restore of a memory image with an edited XML, and block commit. This works on libvirt 9.0, which
cannot revert external snapshots.

Every function blocks (run it in an executor), takes the VM's checkpoint lock (operations on one
VM queue behind each other, also across processes), and first completes or rolls back whatever
a crash interrupted.
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
from hvmanager.backend.checkpoint_merge import (
    MergeEstimate,
    MergeProgress,
    checkpoint_folder,
    estimate,
    remove_checkpoint_folders,
    settle,
)
from hvmanager.backend.checkpoint_state import (
    DomainState,
    define,
    load_tree,
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
    hide,
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
from hvmanager.backend.domxml import parse_domain_xml
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.guest_agent import AGENT_TIMEOUT_S, agent_answers, bounded_agent
from hvmanager.backend.limits import checkpoint_name_problem, human_size
from hvmanager.backend.live_downtime import short_downtime
from hvmanager.backend.models import VmConfig
from hvmanager.backend.paths import nearest_existing
from hvmanager.backend.screenshot import take_screenshot

__all__ = [
    "CheckpointPolicy",
    "MergeEstimate",
    "TakeResult",
    "apply",
    "checkpoint_config",
    "checkpoint_screen",
    "default_name",
    "delete",
    "delete_all",
    "delete_estimate",
    "load_tree",
    "recover_vm",
    "rename",
    "revert",
    "set_policy",
    "take",
]

CONFIG_FILE = "config.xml"
MEMORY_FILE = "memory.save"
SCREEN_STEM = "screen"  # + ".png" or ".ppm", as libvirt's QEMU driver returns it

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TakeResult:
    """A checkpoint taken, and why it is a standard one when a production one was asked for."""

    checkpoint: Checkpoint
    fallback_reason: str = ""


def default_name(vm_name: str, when: datetime) -> str:
    """Hyper-V's default: ``<VM> - (MM/DD/YYYY - hh:mm:ss AM/PM)``."""
    return f"{vm_name} - ({when:%m/%d/%Y - %I:%M:%S %p})"


def needs_recovery(dom: Any) -> bool:
    """Whether a crash interrupted a checkpoint operation of the VM: its journal is there and no
    operation holds the VM's lock (a running operation has its journal too)."""
    try:
        pending = journal.journal_path(read_state(dom).folder).exists()
        return pending and not journal.is_locked(dom.UUIDString())
    except HvError:
        return False  # a VM without disks or folder has no checkpoints


def recover_vm(conn: Any, dom: Any) -> str | None:
    """Complete or roll back an interrupted checkpoint operation (None when there was none), then
    finish the merges of checkpoints deleted before the interruption."""
    with journal.vm_lock(dom.UUIDString()):
        outcome = recover(conn, dom)
        settle(conn, dom)
        return outcome


# --- take ---------------------------------------------------------------------------------------


def take(conn: Any, dom: Any, name: str | None = None, wait: bool = True) -> TakeResult:
    """Take a checkpoint of a VM that is running, paused, saved or off."""
    with journal.vm_lock(dom.UUIDString(), wait):
        recover(conn, dom)
        return _take(conn, dom, name)


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
        raise InvalidStateError(
            f"A production checkpoint could not be taken: {reason}.",
            "Start the QEMU guest agent in the guest, or allow standard checkpoints in "
            "Settings ▸ Management ▸ Checkpoints.",
        )
    return False, f"A standard checkpoint was taken instead of a production one: {reason}."


def _take(conn: Any, dom: Any, name: str | None) -> TakeResult:
    state = read_state(dom)
    name = default_name(dom.name(), datetime.now()) if name is None else name
    _check_can_take(state, name)
    production, fallback = _production_choice(dom, parse_policy(state.xml), state.state)
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


def checkpoint_screen(dom: Any, checkpoint_id: str) -> bytes | None:
    """The picture of the VM's screen taken with a checkpoint (None when there is none)."""
    state = read_state(dom)
    for path in sorted(checkpoint_folder(state, checkpoint_id).glob(f"{SCREEN_STEM}.*")):
        try:
            return path.read_bytes()
        except OSError:
            continue
    return None


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
            _restore_from(conn, dom, str(memory_file), overlays, after, paused=True)
    finally:
        if dom.isActive():
            with libvirt_errors(f"Saving '{dom.name()}' again"):
                dom.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)  # Start resumes it, as before


# --- apply and revert ---------------------------------------------------------------------------


def apply(conn: Any, dom: Any, checkpoint_id: str, take_first: bool = False) -> TakeResult | None:
    """Return the VM to a checkpoint; with ``take_first``, checkpoint the current state before.

    The current state is discarded (its overlays are deleted); the checkpoint itself is never
    modified: new overlays are created over its images. A checkpoint with memory leaves the VM
    running (or paused, or saved) as it was captured; one without leaves it off.
    """
    with journal.vm_lock(dom.UUIDString()):
        recover(conn, dom)
        taken = _take(conn, dom, None) if take_first else None
        _apply(conn, dom, checkpoint_id)
        return taken


def revert(conn: Any, dom: Any) -> Checkpoint:
    """Apply the checkpoint the current state derives from (discarding the current state)."""
    with journal.vm_lock(dom.UUIDString()):
        recover(conn, dom)
        tree = load_tree(dom)
        target = tree.now_parent()
        if target is None:
            raise InvalidStateError(f"'{dom.name()}' has no checkpoint to revert to.")
        _apply(conn, dom, target)
        return tree.get(target)


def _apply(conn: Any, dom: Any, checkpoint_id: str) -> None:
    state = read_state(dom)
    checkpoint = _visible(state.tree, checkpoint_id)
    _discard_running_state(dom, state.state)
    state = read_state(dom)
    overlays: dict[str, str] = {}
    try:
        for target, image in checkpoint.images.items():
            overlays[target] = images.create_overlay(image.file, image.format)
    except BaseException:
        for file in overlays.values():
            images.delete(file)
        raise
    discard = [image.file for image in state.tree.now_images.values() if image.backing is not None]
    now_images = {t: Image(overlays[t], image.file) for t, image in checkpoint.images.items()}
    after = replace(state.tree, now=checkpoint.id, now_images=now_images)
    config = _checkpoint_config(state, checkpoint, dom.name())
    journal.write(
        state.folder, journal.Journal("apply", tree_to_xml(after), list(overlays.values()), discard)
    )
    try:
        define(conn, config, after, overlays)
    except BaseException:
        recover(conn, dom)
        raise
    for file in discard:
        images.delete(file)
    journal.remove(state.folder)
    settle(conn, dom)
    if checkpoint.memory:
        _restore_memory(conn, dom, checkpoint, overlays)


def _visible(tree: CheckpointTree, checkpoint_id: str) -> Checkpoint:
    checkpoint = tree.checkpoints.get(checkpoint_id)
    if checkpoint is None or checkpoint.hidden:
        raise ValidationError("That checkpoint does not exist (any more).")
    return checkpoint


def _discard_running_state(dom: Any, state: str) -> None:
    with libvirt_errors(f"Stopping '{dom.name()}' to apply the checkpoint"):
        if state in ("Running", "Paused", "Other"):
            dom.destroy()
        if dom.hasManagedSaveImage(0):
            dom.managedSaveRemove(0)


def _checkpoint_config(state: DomainState, checkpoint: Checkpoint, current_name: str) -> str:
    """The configuration the checkpoint captured, with today's name and checkpoint policy."""
    path = checkpoint_folder(state, checkpoint.id) / CONFIG_FILE
    try:
        config = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        config = state.xml
    return edit_policy(set_name(config, current_name), parse_policy(state.xml))


def _restore_memory(conn: Any, dom: Any, checkpoint: Checkpoint, overlays: dict[str, str]) -> None:
    """Resume the VM from the checkpoint's memory, its disks pointed at the new overlays."""
    state = read_state(dom)
    memory = str(checkpoint_folder(state, checkpoint.id) / MEMORY_FILE)
    with libvirt_errors(
        f"The disks of '{dom.name()}' were returned to the checkpoint, but its memory could not be restored",
        "Start the VM: it boots from the checkpoint's disks.",
    ):
        _restore_from(conn, dom, memory, overlays, state.tree, paused=checkpoint.vm_state != "Running")
        if checkpoint.vm_state == "Saved":
            dom.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)


def _restore_from(
    conn: Any, dom: Any, memory: str, overlays: dict[str, str], tree: CheckpointTree, paused: bool
) -> None:
    """Restore a memory image with the VM's name, policy and tree, its disks on ``overlays``."""
    current = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
    xml = conn.saveImageGetXMLDesc(memory, 0)
    xml = set_disk_sources(set_name(xml, dom.name()), {t: (f, "qcow2") for t, f in overlays.items()})
    xml = set_tree(edit_policy(xml, parse_policy(current)), tree)
    flags = libvirt.VIR_DOMAIN_SAVE_PAUSED if paused else libvirt.VIR_DOMAIN_SAVE_RUNNING
    conn.restoreFlags(memory, xml, flags)


# --- delete, rename, settings -------------------------------------------------------------------


def delete(
    conn: Any,
    dom: Any,
    checkpoint_id: str,
    subtree: bool = False,
    progress: MergeProgress | None = None,
    wait: bool = True,
) -> None:
    """Delete a checkpoint (or it and everything below it); its data is merged, never lost.

    With ``wait`` the call queues behind an operation already running on the VM; without, it
    is refused with the reason (``ChainBusyError``).
    """
    with journal.vm_lock(dom.UUIDString(), wait):
        recover(conn, dom)
        state = read_state(dom)
        checkpoint = _visible(state.tree, checkpoint_id)
        ids = [checkpoint.id]
        if subtree:
            ids += [c.id for c in state.tree.descendants(checkpoint.id) if not c.hidden]
        _hide(dom, state, ids)
        settle(conn, dom, progress)


def _hide(dom: Any, state: DomainState, ids: list[str]) -> None:
    """Take checkpoints out of the tree (their images wait for ``settle``) and drop their
    configuration and memory, which can no longer be applied."""
    after = hide(state.tree, ids)
    folders = [str(checkpoint_folder(state, i)) for i in ids]
    journal.write(state.folder, journal.Journal("delete", tree_to_xml(after), garbage=folders))
    write_tree(dom, after)
    remove_checkpoint_folders(state, ids)
    journal.remove(state.folder)


def delete_all(conn: Any, dom: Any, progress: MergeProgress | None = None) -> None:
    """Delete every checkpoint: the running state is merged into the VM's own disks (as Hyper-V
    does when a VM with checkpoints is removed but its disks are kept)."""
    with journal.vm_lock(dom.UUIDString()):
        recover(conn, dom)
        state = read_state(dom)
        ids = [c.id for c in state.tree.visible()]
        if ids:
            _hide(dom, state, ids)
        settle(conn, dom, progress)


def owned_files(dom: Any) -> tuple[list[str], list[str]]:
    """(every image file of the checkpoint tree, checkpoint folders) of a VM, for its deletion."""
    state = read_state(dom)
    made = sorted({image.file for _o, _t, image in state.tree.owned_images()})
    folders = [str(checkpoint_folder(state, c.id)) for c in state.tree.checkpoints.values()]
    return made, folders


def delete_estimate(dom: Any, checkpoint_id: str, subtree: bool = False) -> MergeEstimate:
    """The space deleting a checkpoint (or its subtree) may need, and what is free."""
    tree = load_tree(dom)
    ids = [checkpoint_id]
    if subtree:
        ids += [c.id for c in tree.descendants(checkpoint_id)]
    return estimate(tree, ids)


def rename(dom: Any, checkpoint_id: str, new_name: str) -> None:
    """Give a checkpoint another name (1 to 100 characters, not blank)."""
    problem = checkpoint_name_problem(new_name)
    if problem:
        raise ValidationError(problem)
    with journal.vm_lock(dom.UUIDString()):
        tree = load_tree(dom)
        checkpoint = _visible(tree, checkpoint_id)
        write_tree(dom, tree.with_checkpoint(replace(checkpoint, name=new_name)))


def set_policy(conn: Any, dom: Any, policy: CheckpointPolicy) -> None:
    """Change the VM's checkpoint type and file location (the location only without checkpoints)."""
    with journal.vm_lock(dom.UUIDString()):
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        current = parse_policy(xml)
        tree = load_tree(dom)
        if policy.location != current.location and tree.checkpoints:
            raise ValidationError(
                "The checkpoint file location can be changed only while the VM has no checkpoints."
            )
        if policy.location and not Path(policy.location).is_absolute():
            raise ValidationError("The checkpoint file location must be an absolute path.")
        with libvirt_errors(f"Saving the checkpoint settings of '{dom.name()}'"):
            conn.defineXML(edit_policy(xml, policy))


def checkpoint_config(dom: Any, checkpoint_id: str) -> VmConfig:
    """The configuration a checkpoint captured (shown read-only by Settings… on a checkpoint)."""
    state = read_state(dom)
    checkpoint = _visible(state.tree, checkpoint_id)
    return parse_domain_xml(_checkpoint_config(state, checkpoint, dom.name()))


def require_local(server_local: bool) -> None:
    """Checkpoints create and merge image files on the host: only local servers are supported."""
    if not server_local:
        raise HvError(
            "Checkpoints work on VMs of this computer only.",
            "Connect to the server's own hvmanager (or use hvctl there).",
        )

