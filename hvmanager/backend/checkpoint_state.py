"""Reading and writing the checkpoint state of one domain: its tree (in the persistent
definition's ``<metadata>``), its checkpoint folder, the chain each disk runs on, and recovery of
an operation a crash interrupted.

Shared by ``checkpoints`` (take, apply, rename) and ``checkpoint_merge`` (delete, merge).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from hvmanager.backend import checkpoint_images as images
from hvmanager.backend import checkpoint_journal as journal
from hvmanager.backend.checkpoint_tree import (
    CheckpointTree,
    tree_from_domain_xml,
    tree_from_xml,
)
from hvmanager.backend.checkpoint_xml import (
    checkpoint_disks,
    set_disk_sources,
    set_tree,
    snapshot_folder,
    strip_backing_stores,
)
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError

log = logging.getLogger(__name__)

_BLOCK_JOB_POLL_S = 0.05

# The files of one checkpoint, in its folder ``<Snapshots>/<checkpoint id>/``.
CONFIG_FILE = "config.xml"  # the domain XML when it was taken
MEMORY_FILE = "memory.save"  # libvirt's save image of its memory (standard checkpoints)
SCREEN_STEM = "screen"  # + ".png" or ".ppm": its screen, as libvirt's QEMU driver returns it


@dataclass
class DomainState:
    """What a checkpoint operation needs to know about a domain, read at one moment."""

    dom: Any
    xml: str  # persistent (inactive) definition
    tree: CheckpointTree
    folder: Path
    state: str  # "Running", "Paused", "Saved", "Off"

    @property
    def active(self) -> bool:
        """Whether QEMU runs (Running or Paused)."""
        return self.state in ("Running", "Paused")


def vm_state_name(dom: Any) -> str:
    """Running, Paused, Saved or Off (the states a checkpoint can be taken in)."""
    state, _reason = dom.state(0)
    if state == libvirt.VIR_DOMAIN_RUNNING:
        return "Running"
    if state in (libvirt.VIR_DOMAIN_PAUSED, libvirt.VIR_DOMAIN_PMSUSPENDED):
        return "Paused"
    if state in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
        return "Saved" if dom.hasManagedSaveImage(0) else "Off"
    return "Other"


def read_state(dom: Any) -> DomainState:
    """The domain's persistent XML, tree, checkpoint folder and state."""
    with libvirt_errors(f"Reading the checkpoints of '{dom.name()}'"):
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        state = vm_state_name(dom)
    try:
        folder = snapshot_folder(xml)
    except ValueError as exc:
        raise HvError(f"'{dom.name()}' has no checkpoints: {exc}") from exc
    return DomainState(dom, xml, tree_from_domain_xml(xml), folder, state)


def load_tree(dom: Any) -> CheckpointTree:
    """The checkpoint tree of a domain (empty when it has none)."""
    with libvirt_errors(f"Reading the checkpoints of '{dom.name()}'"):
        return tree_from_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


def write_tree(dom: Any, tree: CheckpointTree) -> None:
    """Persist the tree in the domain's persistent definition (one define: atomic in libvirt)."""
    with libvirt_errors(f"Saving the checkpoint tree of '{dom.name()}'"):
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        dom.connect().defineXML(set_tree(strip_backing_stores(xml), tree))


def define(conn: Any, xml: str, tree: CheckpointTree, sources: dict[str, str] | None = None) -> None:
    """Define the persistent XML with the tree and (optionally) disks pointed at new files (their
    formats are the tree's)."""
    if sources:
        xml = set_disk_sources(xml, {t: (f, tree.format_of(f)) for t, f in sources.items()})
    with libvirt_errors("Saving the virtual machine's configuration"):
        conn.defineXML(set_tree(strip_backing_stores(xml), tree))


def live_chain(dom: Any, target: str) -> list[str]:
    """The files QEMU reads for a disk (active image first) from the live XML."""
    root = SafeET.fromstring(dom.XMLDesc(0))
    for disk in root.findall("devices/disk"):
        element = disk.find("target")
        if element is None or element.get("dev") != target:
            continue
        files = []
        node: Any = disk
        while node is not None:
            source = node.find("source")
            if source is None or not source.get("file"):
                break
            files.append(source.get("file"))
            node = node.find("backingStore")
        return files
    return []


def disk_chain(dom: Any, xml: str, target: str) -> list[str]:
    """The chain of a disk: the live one while QEMU runs, else read from the image headers."""
    if dom.isActive():
        return live_chain(dom, target)
    for disk in checkpoint_disks(xml):
        if disk.target == target and Path(disk.file).exists():
            return [entry.file for entry in images.chain(disk.file, disk.format)]
    return []


# --- block jobs ---------------------------------------------------------------------------------


def wait_block_job(dom: Any, target: str, progress: images.Progress | None, pivot: bool) -> None:
    """Follow a block job to its end; an active commit is pivoted once it is ready."""
    while True:
        info = dom.blockJobInfo(target, 0)
        if not info:
            return
        end, cur = int(info.get("end", 0)), int(info.get("cur", 0))
        if progress is not None and end:
            progress(min(100.0, 100.0 * cur / end))
        if pivot and end and cur == end:
            try:
                dom.blockJobAbort(target, libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT)
            except libvirt.libvirtError as exc:
                if "not ready" not in str(exc) and "ready" not in str(exc):
                    raise
            else:
                _wait_job_gone(dom, target)
                return
        time.sleep(_BLOCK_JOB_POLL_S)


def _wait_job_gone(dom: Any, target: str) -> None:
    while dom.blockJobInfo(target, 0):
        time.sleep(_BLOCK_JOB_POLL_S)


# --- recovery -----------------------------------------------------------------------------------


def _remove_path(path: str) -> None:
    target = Path(path)
    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


def _marker_reached(dom: Any, xml: str, entry: journal.Journal) -> bool:
    if not entry.commit_marker and not entry.gone_marker:
        return False
    for target, file in entry.commit_marker.items():
        chain = disk_chain(dom, xml, target)
        if not chain or chain[0] != file:
            return False
    return all(file not in disk_chain(dom, xml, target) for target, file in entry.gone_marker.items())


def _finish_block_jobs(dom: Any, entry: journal.Journal) -> None:
    """A live merge the crash interrupted may still run in QEMU: let it end first."""
    if not dom.isActive():
        return
    for target in {**entry.commit_marker, **entry.gone_marker}:
        if dom.blockJobInfo(target, 0):
            wait_block_job(dom, target, None, pivot=target in entry.commit_marker)


def move_into_place(staged: str, final: str) -> None:
    """Copy a staged file to its place durably, then remove the staged copy."""
    tmp = f"{final}.partial"
    shutil.copyfile(staged, tmp)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.rename(tmp, final)
    Path(staged).unlink()


def _after_moves(tree: CheckpointTree, moves: dict[str, str]) -> CheckpointTree:
    """Finish the moves of a rolled-forward operation; a memory image lost with the RAM it was
    staged in (a host reboot) leaves its checkpoint disk-only, which it still is, consistently."""
    for staged, final in moves.items():
        if Path(staged).exists():
            move_into_place(staged, final)
        elif not Path(final).exists():
            checkpoint_id = Path(final).parent.name
            if checkpoint_id in tree.checkpoints:
                tree = tree.with_checkpoint(replace(tree.get(checkpoint_id), memory=False))
    return tree


def recover(conn: Any, dom: Any) -> str | None:
    """Complete or roll back an operation a crash interrupted; returns what was done, or None."""
    state = read_state(dom)
    entry = journal.read(state.folder)
    if entry is None:
        return None
    _finish_block_jobs(dom, entry)
    after = tree_from_xml(entry.tree_after)
    committed = state.tree == after
    if not committed and _marker_reached(dom, state.xml, entry):
        define(conn, state.xml, _after_moves(after, entry.moves), dict(entry.commit_marker))
        committed = True
    elif committed:
        moved = _after_moves(after, entry.moves)
        if moved != after:
            write_tree(dom, moved)
    for path in entry.garbage if committed else entry.created:
        _remove_path(path)
    journal.remove(state.folder)
    outcome = "completed" if committed else "rolled back"
    log.warning("Interrupted checkpoint operation '%s' on '%s' %s.", entry.op, dom.name(), outcome)
    return f"The interrupted checkpoint operation ({entry.op}) was {outcome}."
