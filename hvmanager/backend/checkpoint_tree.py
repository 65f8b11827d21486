"""The checkpoint tree of one VM: what each checkpoint froze, where "Now" hangs, and the rules
that say which image may be merged or deleted.

This module is pure (no libvirt, no files): ``checkpoints.py`` does the work and keeps the tree
persisted in the domain's ``<metadata>`` under ``CHECKPOINTS_NS``.

The invariant, kept by every operation and checked by the model-based test:

* a checkpoint's disk state is exactly the content of its ``images`` (each image reads through
  its ``backing`` chain), and none of those images is ever written again;
* "Now" runs on ``now_images``: overlays created by hvmanager over the images of ``now``;
* an image is deleted only when no checkpoint and no running state reads it or through it.

A checkpoint that the user deleted while two or more images still read through it stays in the
tree as *hidden* (not shown, not applicable); it is merged or deleted as soon as only one or none
of its readers remains.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

import defusedxml.ElementTree as SafeET

CHECKPOINTS_NS = "https://hvmanager.dev/xmlns/checkpoints/1"
CHECKPOINTS_PREFIX = "hvc"
ET.register_namespace(CHECKPOINTS_PREFIX, CHECKPOINTS_NS)

MAX_CHECKPOINTS = 50  # per VM, as Hyper-V

NOW = "now"  # the owner name of the running state's images


class CheckpointType(enum.Enum):
    """The per-VM checkpoint policy (Hyper-V's ``CheckpointType``)."""

    DISABLED = "disabled"
    PRODUCTION = "production"  # disk-only, guest frozen; falls back to standard
    PRODUCTION_ONLY = "production-only"  # disk-only, guest frozen; never falls back
    STANDARD = "standard"  # disks, memory and configuration


@dataclass(frozen=True)
class Image:
    """One image file of a checkpoint or of Now, and the image it reads through."""

    file: str
    backing: str | None  # None: not made by hvmanager (the VM's own disk), never deleted
    format: str = "qcow2"  # known, never probed: a raw disk's bytes belong to the guest


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint: frozen images per disk target, and what else it captured."""

    id: str
    name: str
    parent: str | None
    created: datetime
    vm_state: str  # "Running", "Paused", "Saved" or "Off" when taken
    production: bool  # taken as a production checkpoint (guest file systems frozen)
    memory: bool  # a memory image exists in the checkpoint's folder
    images: dict[str, Image] = field(default_factory=dict)
    hidden: bool = False

    @property
    def kind(self) -> str:
        """ "Standard" or "Production", as Hyper-V's SnapshotType column."""
        return "Production" if self.production else "Standard"


@dataclass(frozen=True)
class CheckpointTree:
    """All checkpoints of a VM, the checkpoint Now derives from and Now's own overlays."""

    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    now: str | None = None
    now_images: dict[str, Image] = field(default_factory=dict)

    # --- questions ----------------------------------------------------------------------------

    def visible(self) -> list[Checkpoint]:
        """The checkpoints the user sees, oldest first."""
        return sorted((c for c in self.checkpoints.values() if not c.hidden), key=lambda c: c.created)

    def get(self, checkpoint_id: str) -> Checkpoint:
        """A checkpoint by id (KeyError when unknown)."""
        return self.checkpoints[checkpoint_id]

    def by_name(self, name: str) -> list[Checkpoint]:
        """Visible checkpoints with that name (names need not be unique, as in Hyper-V)."""
        return [c for c in self.visible() if c.name == name]

    def visible_ancestor(self, checkpoint_id: str | None) -> str | None:
        """``checkpoint_id`` itself when visible, else its nearest visible ancestor."""
        current = checkpoint_id
        while current is not None and self.checkpoints[current].hidden:
            current = self.checkpoints[current].parent
        return current

    def visible_parent(self, checkpoint_id: str) -> str | None:
        """The parent shown in the tree (hidden checkpoints are skipped)."""
        return self.visible_ancestor(self.checkpoints[checkpoint_id].parent)

    def visible_children(self, checkpoint_id: str | None) -> list[Checkpoint]:
        """The children shown under a checkpoint (or at the top level for None), oldest first."""
        return [c for c in self.visible() if self.visible_parent(c.id) == checkpoint_id]

    def now_parent(self) -> str | None:
        """The visible checkpoint the Now marker hangs under (None: at the top)."""
        return self.visible_ancestor(self.now)

    def children(self, checkpoint_id: str) -> list[Checkpoint]:
        """Direct children, hidden ones included."""
        return [c for c in self.checkpoints.values() if c.parent == checkpoint_id]

    def descendants(self, checkpoint_id: str) -> list[Checkpoint]:
        """Every checkpoint below one, hidden ones included."""
        found: list[Checkpoint] = []
        stack = [checkpoint_id]
        while stack:
            for child in self.children(stack.pop()):
                found.append(child)
                stack.append(child.id)
        return found

    def owned_images(self) -> Iterator[tuple[str, str, Image]]:
        """Every image with its owner (a checkpoint id or ``NOW``) and disk target."""
        for checkpoint in self.checkpoints.values():
            for target, image in checkpoint.images.items():
                yield checkpoint.id, target, image
        for target, image in self.now_images.items():
            yield NOW, target, image

    def owner_of(self, file: str) -> str | None:
        """The owner of an image file (a checkpoint id or ``NOW``), None if not in the tree."""
        for owner, _target, image in self.owned_images():
            if image.file == file:
                return owner
        return None

    def readers(self, file: str) -> list[tuple[str, str, Image]]:
        """The images that read through ``file`` directly (it is their backing file)."""
        return [entry for entry in self.owned_images() if entry[2].backing == file]

    def format_of(self, file: str) -> str:
        """The format of an image of the tree (qcow2 for the overlays hvmanager made)."""
        for _owner, _target, image in self.owned_images():
            if image.file == file:
                return image.format
        return "qcow2"

    def files(self) -> set[str]:
        """Every image file the tree needs."""
        return {image.file for _owner, _target, image in self.owned_images()}

    # --- changes (each returns a new tree) ------------------------------------------------------

    def with_checkpoint(self, checkpoint: Checkpoint) -> CheckpointTree:
        """The tree with a checkpoint added or replaced."""
        return replace(self, checkpoints={**self.checkpoints, checkpoint.id: checkpoint})

    def without_checkpoint(self, checkpoint_id: str) -> CheckpointTree:
        """The tree without a checkpoint that owns no image any more; its children move up."""
        gone = self.checkpoints[checkpoint_id]
        assert not gone.images, "a checkpoint is removed only once its images are merged or deleted"
        kept = {
            cid: (replace(c, parent=gone.parent) if c.parent == checkpoint_id else c)
            for cid, c in self.checkpoints.items()
            if cid != checkpoint_id
        }
        now = gone.parent if self.now == checkpoint_id else self.now
        return replace(self, checkpoints=kept, now=now)

    def with_image(self, owner: str, target: str, image: Image | None) -> CheckpointTree:
        """The tree with one image of an owner set (or removed when ``image`` is None)."""
        images = dict(self.now_images) if owner == NOW else dict(self.checkpoints[owner].images)
        if image is None:
            images.pop(target, None)
        else:
            images[target] = image
        if owner == NOW:
            return replace(self, now_images=images)
        return self.with_checkpoint(replace(self.checkpoints[owner], images=images))

    def with_backing(self, old: str, new: str | None) -> CheckpointTree:
        """Every image that read through ``old`` now reads through ``new``."""
        tree = self
        for owner, target, image in self.readers(old):
            tree = tree.with_image(owner, target, replace(image, backing=new))
        return tree


# --- planning: what the next step of a delete is ----------------------------------------------


@dataclass(frozen=True)
class MergeStep:
    """Merge ``top`` (the only reader of ``base``) into ``base``, then delete ``top``.

    ``base`` belongs to a hidden checkpoint; afterwards ``top``'s owner uses ``base`` and the
    images that read through ``top`` read through ``base``.
    """

    target: str
    base: str
    top: str
    base_owner: str
    top_owner: str


@dataclass(frozen=True)
class DropStep:
    """An image of a hidden checkpoint that nothing reads: forget it (and delete the file when
    hvmanager made it)."""

    owner: str
    target: str
    image: Image


SettleStep = MergeStep | DropStep


def next_settle_step(tree: CheckpointTree) -> SettleStep | CheckpointTree | None:
    """The next thing to do for hidden checkpoints.

    Returns a ``DropStep`` or ``MergeStep`` for the caller to carry out, a new tree when only the
    bookkeeping changes (a hidden checkpoint with no images left is removed), or None when every
    hidden checkpoint still has two or more readers per image (nothing to do).
    """
    for checkpoint in tree.checkpoints.values():
        if not checkpoint.hidden:
            continue
        if not checkpoint.images:
            return tree.without_checkpoint(checkpoint.id)
        for target, image in checkpoint.images.items():
            readers = tree.readers(image.file)
            if not readers:
                return DropStep(checkpoint.id, target, image)
            if len(readers) == 1:
                top_owner, _t, top = readers[0]
                return MergeStep(target, image.file, top.file, checkpoint.id, top_owner)
    return None


def after_drop(tree: CheckpointTree, step: DropStep) -> CheckpointTree:
    """The tree once a dropped image is gone."""
    return tree.with_image(step.owner, step.target, None)


def after_merge(tree: CheckpointTree, step: MergeStep) -> CheckpointTree:
    """The tree once ``top`` is merged into ``base`` and deleted."""
    base_image = tree.get(step.base_owner).images[step.target]
    tree = tree.with_backing(step.top, step.base)
    tree = tree.with_image(step.base_owner, step.target, None)
    return tree.with_image(step.top_owner, step.target, base_image)


def hide(tree: CheckpointTree, checkpoint_ids: list[str]) -> CheckpointTree:
    """The tree with checkpoints marked deleted (settling merges or deletes their images)."""
    for checkpoint_id in checkpoint_ids:
        tree = tree.with_checkpoint(replace(tree.get(checkpoint_id), hidden=True))
    return tree


# --- persistence in the domain <metadata> -------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{CHECKPOINTS_NS}}}{tag}"


def _image_element(parent: ET.Element, tag: str, target: str, image: Image) -> None:
    attrib = {"target": target, "file": image.file, "format": image.format}
    if image.backing is not None:
        attrib["backing"] = image.backing
    ET.SubElement(parent, _q(tag), attrib)


def tree_to_xml(tree: CheckpointTree) -> str:
    """The ``<hvc:checkpoints>`` element for the domain's metadata."""
    root = ET.Element(_q("checkpoints"), {"now": tree.now or ""})
    for checkpoint in tree.checkpoints.values():
        element = ET.SubElement(
            root,
            _q("checkpoint"),
            {
                "id": checkpoint.id,
                "name": checkpoint.name,
                "parent": checkpoint.parent or "",
                "created": checkpoint.created.isoformat(timespec="microseconds"),
                "state": checkpoint.vm_state,
                "type": "production" if checkpoint.production else "standard",
                "memory": "yes" if checkpoint.memory else "no",
                "hidden": "yes" if checkpoint.hidden else "no",
            },
        )
        for target, image in sorted(checkpoint.images.items()):
            _image_element(element, "image", target, image)
    for target, image in sorted(tree.now_images.items()):
        _image_element(root, "now", target, image)
    return ET.tostring(root, encoding="unicode")


def _image(element: ET.Element) -> tuple[str, Image]:
    image = Image(element.get("file", ""), element.get("backing"), element.get("format", "qcow2"))
    return element.get("target", ""), image


def tree_from_element(root: ET.Element) -> CheckpointTree:
    """Read a ``<hvc:checkpoints>`` element."""
    checkpoints: dict[str, Checkpoint] = {}
    for element in root.findall(_q("checkpoint")):
        checkpoint = Checkpoint(
            id=element.get("id", ""),
            name=element.get("name", ""),
            parent=element.get("parent") or None,
            created=datetime.fromisoformat(element.get("created", "1970-01-01T00:00:00")),
            vm_state=element.get("state", "Off"),
            production=element.get("type") == "production",
            memory=element.get("memory") == "yes",
            images=dict(_image(i) for i in element.findall(_q("image"))),
            hidden=element.get("hidden") == "yes",
        )
        checkpoints[checkpoint.id] = checkpoint
    now_images = dict(_image(i) for i in root.findall(_q("now")))
    return CheckpointTree(checkpoints, root.get("now") or None, now_images)


def tree_from_xml(xml: str | None) -> CheckpointTree:
    """Read the tree from its metadata XML (an empty tree for None or empty text)."""
    if not xml:
        return CheckpointTree()
    return tree_from_element(SafeET.fromstring(xml))


def tree_from_domain_xml(domain_xml: str) -> CheckpointTree:
    """Read the tree from a whole domain XML (an empty tree when it has none)."""
    root = SafeET.fromstring(domain_xml)
    element = root.find(f"metadata/{_q('checkpoints')}")
    return tree_from_element(element) if element is not None else CheckpointTree()
