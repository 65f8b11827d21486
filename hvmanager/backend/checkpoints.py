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

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend import checkpoint_images as images
from hvmanager.backend import checkpoint_journal as journal
from hvmanager.backend.checkpoint_merge import (
    MergeEstimate,
    MergeProgress,
    checkpoint_folder,
    estimate,
    remove_checkpoint_folders,
    settle,
)
from hvmanager.backend.checkpoint_state import (
    CONFIG_FILE,
    MEMORY_FILE,
    SCREEN_STEM,
    DomainState,
    define,
    load_tree,
    read_state,
    recover,
    write_tree,
)
from hvmanager.backend.checkpoint_take import TakeResult, default_name, restore_from, take_locked
from hvmanager.backend.checkpoint_tree import (
    Checkpoint,
    CheckpointTree,
    Image,
    hide,
    tree_to_xml,
)
from hvmanager.backend.checkpoint_xml import (
    CheckpointPolicy,
    edit_policy,
    parse_policy,
    set_name,
)
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.domxml import parse_domain_xml
from hvmanager.backend.errors import HvError, InvalidStateError, ValidationError
from hvmanager.backend.limits import checkpoint_name_problem
from hvmanager.backend.models import VmConfig

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

log = logging.getLogger(__name__)


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
        return take_locked(conn, dom, name)


def checkpoint_screen(dom: Any, checkpoint_id: str) -> bytes | None:
    """The picture of the VM's screen taken with a checkpoint (None when there is none)."""
    state = read_state(dom)
    for path in sorted(checkpoint_folder(state, checkpoint_id).glob(f"{SCREEN_STEM}.*")):
        try:
            return path.read_bytes()
        except OSError:
            continue
    return None


# --- apply and revert ---------------------------------------------------------------------------


def apply(conn: Any, dom: Any, checkpoint_id: str, take_first: bool = False) -> TakeResult | None:
    """Return the VM to a checkpoint; with ``take_first``, checkpoint the current state before.

    The current state is discarded (its overlays are deleted); the checkpoint itself is never
    modified: new overlays are created over its images. A checkpoint with memory leaves the VM
    running (or paused, or saved) as it was captured; one without leaves it off.
    """
    with journal.vm_lock(dom.UUIDString()):
        recover(conn, dom)
        taken = take_locked(conn, dom, None) if take_first else None
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
    overlays: dict[str, str] = {}
    try:  # the overlays first: if they can't be made, the VM is still as it was
        for target, image in checkpoint.images.items():
            overlays[target] = images.create_overlay(image.file, image.format)
        _discard_running_state(dom, state.state)
    except BaseException:
        for file in overlays.values():
            images.delete(file)
        raise
    state = read_state(dom)
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
        restore_from(conn, dom, memory, overlays, state.tree, paused=checkpoint.vm_state != "Running")
        if checkpoint.vm_state == "Saved":
            dom.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)


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


def policy_of(dom: Any) -> CheckpointPolicy:
    """The VM's checkpoint policy."""
    return parse_policy(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def require_local(server_local: bool) -> None:
    """Checkpoints create and merge image files on the host: only local servers are supported."""
    if not server_local:
        raise HvError(
            "Checkpoints work on VMs of this computer only.",
            "Connect to the server's own hvmanager (or use hvctl there).",
        )
