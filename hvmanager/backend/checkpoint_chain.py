"""The disk chain view: for each disk, the files from the running state (or a checkpoint) down
to the base disk, with each file's size and the checkpoint that owns it.

Hyper-V Manager hides this; its users asked for it (hyperv-manager.md §6.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hvmanager.backend import checkpoint_images as images
from hvmanager.backend.checkpoint_state import read_state
from hvmanager.backend.checkpoint_tree import NOW, CheckpointTree
from hvmanager.backend.checkpoint_xml import checkpoint_disks

BASE_OWNER = "Base disk"
PENDING_OWNER = "Deleted checkpoint (merges when one branch is left)"


@dataclass(frozen=True)
class ChainLink:
    """One file of a disk's chain."""

    file: str
    format: str
    virtual_size: int
    file_size: int  # bytes allocated on the host
    owner: str  # "Now", a checkpoint's name, BASE_OWNER or PENDING_OWNER
    owner_id: str | None  # the checkpoint id, NOW, or None for a base disk


@dataclass(frozen=True)
class DiskChain:
    """The chain of one disk, the file written to (or frozen by the checkpoint) first."""

    target: str
    links: tuple[ChainLink, ...]

    @property
    def total_size(self) -> int:
        """Space all files of the chain take on the host."""
        return sum(link.file_size for link in self.links)


def _owner(tree: CheckpointTree, file: str) -> tuple[str, str | None]:
    owner_id = tree.owner_of(file)
    if owner_id is None:
        return BASE_OWNER, None
    if owner_id == NOW:
        return "Now", NOW
    checkpoint = tree.get(owner_id)
    return (PENDING_OWNER if checkpoint.hidden else checkpoint.name), owner_id


def disk_chains(dom: Any, checkpoint_id: str | None = None) -> list[DiskChain]:
    """The chain of every disk of the running state, or of one checkpoint."""
    state = read_state(dom)
    tree = state.tree
    if checkpoint_id is None:
        tops = {d.target: (d.file, d.format) for d in checkpoint_disks(state.xml)}
    else:
        tops = {t: (image.file, image.format) for t, image in tree.get(checkpoint_id).images.items()}
    chains = []
    for target, (top, fmt) in sorted(tops.items()):
        links = []
        for entry in images.chain(top, fmt):
            owner, owner_id = _owner(tree, entry.file)
            links.append(
                ChainLink(
                    entry.file,
                    entry.format,
                    entry.virtual_size,
                    images.allocated_bytes(entry.file),
                    owner,
                    owner_id,
                )
            )
        chains.append(DiskChain(target, tuple(links)))
    return chains

