"""Deleting checkpoints: their differencing data is merged into the one image that still reads
through it, or deleted when nothing does; a checkpoint still read by two branches waits (hidden)
until one of them is gone.

A merge is live while QEMU reads the image (libvirt block commit: of the active image with a
pivot, or of an intermediate one) and offline otherwise (``qemu-img commit``). Every step is
journalled first (``checkpoint_journal``) so a crash leaves a state ``recover`` completes or
rolls back. Callers hold the VM's checkpoint lock.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend import checkpoint_images as images
from hvmanager.backend import checkpoint_journal as journal
from hvmanager.backend.checkpoint_state import (
    DomainState,
    define,
    live_chain,
    read_state,
    wait_block_job,
    write_tree,
)
from hvmanager.backend.checkpoint_tree import (
    NOW,
    CheckpointTree,
    DropStep,
    MergeStep,
    after_drop,
    after_merge,
    next_settle_step,
    tree_to_xml,
)
from hvmanager.backend.checkpoint_xml import set_disk_sources
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError

# (what is being done, percent done) for the Status column: "Merging (42 %)".
MergeProgress = Callable[[str, float], None]


def checkpoint_folder(state: DomainState, checkpoint_id: str) -> Path:
    """The folder of one checkpoint's configuration and memory."""
    return state.folder / checkpoint_id


def settle(conn: Any, dom: Any, progress: MergeProgress | None = None) -> None:
    """Merge or delete the images of hidden checkpoints until none can be resolved further."""
    while True:
        state = read_state(dom)
        step = next_settle_step(state.tree)
        if step is None:
            return
        if isinstance(step, CheckpointTree):
            write_tree(dom, step)
        elif isinstance(step, DropStep):
            _drop(dom, state, step)
        else:
            _merge(conn, dom, state, step, progress)


def _drop(dom: Any, state: DomainState, step: DropStep) -> None:
    after = after_drop(state.tree, step)
    garbage = [step.image.file] if step.image.backing is not None else []
    journal.write(state.folder, journal.Journal("drop", tree_to_xml(after), garbage=garbage))
    write_tree(dom, after)
    for file in garbage:
        images.delete(file)
    journal.remove(state.folder)


def _merge(conn: Any, dom: Any, state: DomainState, step: MergeStep, progress: MergeProgress | None) -> None:
    after = after_merge(state.tree, step)
    chain = live_chain(dom, step.target) if state.active else []
    live = step.top in chain
    active_commit = live and chain[0] == step.top
    entry = journal.Journal(
        "merge",
        tree_to_xml(after),
        garbage=[step.top],
        commit_marker={step.target: step.base} if active_commit else {},
        gone_marker={step.target: step.top} if live and not active_commit else {},
    )
    journal.write(state.folder, entry)

    def report(percent: float) -> None:
        if progress is not None:
            progress("Merging", percent)

    if live:
        _live_commit(dom, step, active_commit, report)
    else:
        images.commit(step.top, step.base, report)
    base_format = state.tree.format_of(step.base)
    for _owner, _target, reader in state.tree.readers(step.top):
        if reader.file not in chain:
            images.rebase_unsafe(reader.file, step.base, base_format)
    sources = {step.target: step.base} if step.top_owner == NOW else None
    define(conn, state.xml, after, sources)
    if state.state == "Saved" and step.target in after.now_images:
        now = after.now_images[step.target]
        _update_saved_state(dom, {step.target: (now.file, now.format)})
    images.delete(step.top)
    journal.remove(state.folder)


def _live_commit(dom: Any, step: MergeStep, active: bool, report: images.Progress) -> None:
    flags = libvirt.VIR_DOMAIN_BLOCK_COMMIT_ACTIVE if active else 0
    with libvirt_errors(f"Merging '{Path(step.top).name}' into '{Path(step.base).name}'"):
        dom.blockCommit(step.target, step.base, step.top if not active else None, 0, flags)
        wait_block_job(dom, step.target, report, pivot=active)
    if step.top in live_chain(dom, step.target):
        raise HvError(f"The merge of '{step.top}' did not complete; the file is still in use.")


def _update_saved_state(dom: Any, sources: dict[str, tuple[str, str]]) -> None:
    """A saved VM's memory image names its disk files and their chain: point it at the current
    ones (the chain, which a merge changed, is probed again)."""
    with libvirt_errors("Updating the saved state's disk files"):
        xml = dom.managedSaveGetXMLDesc(0)
        fixed = set_disk_sources(xml, sources)
        dom.managedSaveDefineXML(fixed, 0)


def remove_checkpoint_folders(state: DomainState, checkpoint_ids: list[str]) -> None:
    """Delete the configuration and memory of checkpoints that can no longer be applied."""
    for checkpoint_id in checkpoint_ids:
        shutil.rmtree(checkpoint_folder(state, checkpoint_id), ignore_errors=True)


# --- what a delete will cost --------------------------------------------------------------------


@dataclass(frozen=True)
class MergeEstimate:
    """Space a delete needs before it starts (merges may grow the image merged into)."""

    needed_bytes: int
    free_bytes: int
    folder: str

    @property
    def enough(self) -> bool:
        """Whether the file system has room for the worst case."""
        return self.free_bytes >= self.needed_bytes


def estimate(tree: CheckpointTree, checkpoint_ids: list[str]) -> MergeEstimate:
    """Worst-case space needed to delete checkpoints: the data of each image merged into another."""
    needed = 0
    folder = ""
    for checkpoint_id in checkpoint_ids:
        for image in tree.get(checkpoint_id).images.values():
            folder = folder or str(Path(image.file).parent)
            readers = tree.readers(image.file)
            if len(readers) == 1:
                needed += images.allocated_bytes(readers[0][2].file)
    if not folder:
        return MergeEstimate(0, 0, "")
    return MergeEstimate(needed, images.free_bytes(folder), folder)
