"""The reference model of the model-based checkpoint test, and the independent observers that
read what a VM's disk files really hold.

The model knows nothing of files: it keeps the bytes every disk must show in every checkpoint and
in the current state ("Now"), and a tree with Hyper-V's rules (apply: Now becomes a copy of the
checkpoint; delete: the checkpoint disappears, its children move up, nothing else changes).

The observers use only ``qemu-img``, ``qemu-io`` and ``virsh`` (no hvmanager code): images are
read back with ``qemu-img convert``, checked with ``qemu-img check``, their chains listed with
``qemu-img info --backing-chain``. Those results are pure functions of the bytes of the files in
an image's chain, so ``ImageObserver`` re-runs a tool only when one of those files' bytes changed
(compared by a hash of the whole file, taken again at every step): every image is still checked
after every step, at the cost of only the images a step touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET

BLOCK = 64 * 1024  # the qcow2 cluster size of the test disks: "block for block" means these


def digest(data: bytes | bytearray) -> str:
    """A content hash (the model's and the observers' common currency; SHA-256 is the fastest
    hashlib offers on CPUs with SHA instructions)."""
    return hashlib.sha256(data).hexdigest()


# --- the reference model ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCheckpoint:
    """What a checkpoint must hold: the bytes of every disk, frozen when it was taken."""

    id: str
    name: str
    parent: str | None
    contents: dict[str, bytes]
    digests: dict[str, str]


@dataclass
class ReferenceModel:
    """The expected disks of Now and of every visible checkpoint, and the tree's shape."""

    now: dict[str, bytearray]
    now_parent: str | None = None
    checkpoints: dict[str, ModelCheckpoint] = field(default_factory=dict)  # in creation order
    _interned: dict[str, bytes] = field(default_factory=dict)
    _now_digests: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, sizes: dict[str, int]) -> ReferenceModel:
        """Disks of the given sizes (target -> bytes), all zeros, and no checkpoint."""
        return cls({target: bytearray(size) for target, size in sizes.items()})

    def write(self, target: str, offset: int, data: bytes) -> None:
        """The guest (qemu-io) wrote ``data`` at ``offset`` of the current state."""
        disk = self.now[target]
        assert offset >= 0 and offset + len(data) <= len(disk), "write outside the disk"
        disk[offset : offset + len(data)] = data
        self._now_digests.pop(target, None)

    def now_digest(self, target: str) -> str:
        """The hash of Now's expected bytes on one disk."""
        if target not in self._now_digests:
            self._now_digests[target] = digest(self.now[target])
        return self._now_digests[target]

    def _frozen(self, target: str) -> bytes:
        # Identical contents share one bytes object: dozens of checkpoints stay cheap.
        return self._interned.setdefault(self.now_digest(target), bytes(self.now[target]))

    def take(self, checkpoint_id: str, name: str) -> None:
        """A checkpoint of Now, under the checkpoint Now derives from; Now then derives from it."""
        contents = {target: self._frozen(target) for target in self.now}
        digests = {target: self.now_digest(target) for target in self.now}
        self.checkpoints[checkpoint_id] = ModelCheckpoint(
            checkpoint_id, name, self.now_parent, contents, digests
        )
        self.now_parent = checkpoint_id

    def apply(self, checkpoint_id: str) -> None:
        """Now becomes a copy of the checkpoint (the old Now is discarded)."""
        checkpoint = self.checkpoints[checkpoint_id]
        self.now = {target: bytearray(data) for target, data in checkpoint.contents.items()}
        self._now_digests = dict(checkpoint.digests)
        self.now_parent = checkpoint_id

    def children(self, checkpoint_id: str | None) -> list[str]:
        """The checkpoints directly under one (or at the top for None), oldest first."""
        return [c.id for c in self.checkpoints.values() if c.parent == checkpoint_id]

    def descendants(self, checkpoint_id: str) -> list[str]:
        """Every checkpoint below one."""
        found: list[str] = []
        stack = [checkpoint_id]
        while stack:
            below = self.children(stack.pop())
            found += below
            stack += below
        return found

    def delete(self, checkpoint_id: str) -> None:
        """The checkpoint disappears; its children (and Now) move up to its parent."""
        gone = self.checkpoints.pop(checkpoint_id)
        for child in self.children(checkpoint_id):
            self.checkpoints[child] = _with_parent(self.checkpoints[child], gone.parent)
        if self.now_parent == checkpoint_id:
            self.now_parent = gone.parent

    def delete_subtree(self, checkpoint_id: str) -> list[str]:
        """The checkpoint and everything below it disappear; Now moves up if it was below."""
        removed = [checkpoint_id, *self.descendants(checkpoint_id)]
        parent = self.checkpoints[checkpoint_id].parent
        for gone in removed:
            del self.checkpoints[gone]
        if self.now_parent in removed:
            self.now_parent = parent
        return removed

    def rename(self, checkpoint_id: str, name: str) -> None:
        """A checkpoint's new name (its contents do not change)."""
        old = self.checkpoints[checkpoint_id]
        self.checkpoints[checkpoint_id] = ModelCheckpoint(old.id, name, old.parent, old.contents, old.digests)

    def shape(self) -> dict[str, tuple[str, str | None]]:
        """``{id: (name, parent id)}`` of every checkpoint."""
        return {c.id: (c.name, c.parent) for c in self.checkpoints.values()}


def _with_parent(checkpoint: ModelCheckpoint, parent: str | None) -> ModelCheckpoint:
    return ModelCheckpoint(checkpoint.id, checkpoint.name, parent, checkpoint.contents, checkpoint.digests)


# --- running the tools --------------------------------------------------------------------------


def run(args: list[str], ok: Iterable[int] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run a tool (argument list, no shell); any exit status outside ``ok`` fails the test."""
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode not in ok:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
        )
    return done


def qemu_io_write(file: str, fmt: str, offset: int, length: int, payload: int | Path | None) -> None:
    """Write into an image as a guest would: ``payload`` is a byte pattern (int), a file whose
    bytes are written, or None for zeroes (``write -z``, which a qcow2 overlay records as zero
    clusters over its backing data)."""
    if payload is None:
        command = f"write -z {offset} {length}"
    elif isinstance(payload, Path):
        assert " " not in str(payload), "qemu-io splits its command line on spaces"
        command = f"write -s {payload} {offset} {length}"
    else:
        command = f"write -P {payload:#04x} {offset} {length}"
    run(["qemu-io", "-f", fmt, "-c", command, file])


def read_disk(file: str, fmt: str, scratch: Path) -> bytes:
    """The virtual disk an image shows (through its whole backing chain), as ``qemu-img`` reads it."""
    handle, name = tempfile.mkstemp(dir=scratch, suffix=".raw")  # observers run in parallel
    os.close(handle)
    out = Path(name)
    try:
        run(["qemu-img", "convert", "-f", fmt, "-O", "raw", file, str(out)])
        return out.read_bytes()
    finally:
        out.unlink()


def check_problem(file: str, fmt: str) -> str | None:
    """``qemu-img check``: None when clean (or the format has nothing to check), else its report."""
    if fmt == "raw":
        return None
    done = run(["qemu-img", "check", "-f", fmt, "--output=json", file], ok=range(256))
    if done.returncode == 0:
        return None
    if done.returncode == 63 and "does not support checks" in done.stderr:
        return None  # vpc: QEMU has no checker for VHD
    return f"exit {done.returncode}: {(done.stdout + done.stderr).strip()}"


@dataclass(frozen=True)
class ChainEntry:
    """One file of a chain as ``qemu-img info --backing-chain`` lists it."""

    file: str
    format: str
    backing: str | None
    backing_format: str | None
    virtual_size: int


def backing_chain(file: str, fmt: str) -> list[ChainEntry]:
    """``qemu-img info --backing-chain``: fails the test when a file of the chain is missing."""
    done = run(["qemu-img", "info", "--backing-chain", "--output=json", "-f", fmt, file])
    return [
        ChainEntry(
            entry["filename"],
            entry["format"],
            entry.get("full-backing-filename") or entry.get("backing-filename"),
            entry.get("backing-filename-format"),
            int(entry["virtual-size"]),
        )
        for entry in json.loads(done.stdout)
    ]


def domain_disks(domain_xml: str) -> dict[str, tuple[str, str]]:
    """``{target: (file, format)}`` of a domain's hard disks, read from its XML."""
    root: ET.Element = SafeET.fromstring(domain_xml)
    disks = {}
    for disk in root.findall("devices/disk[@device='disk']"):
        source, target, driver = disk.find("source"), disk.find("target"), disk.find("driver")
        assert source is not None and target is not None and driver is not None
        disks[target.get("dev", "")] = (source.get("file", ""), driver.get("type", ""))
    return disks


def domblklist(virsh_output: str) -> dict[str, str]:
    """``{target: source}`` from ``virsh domblklist --inactive`` output."""
    found = {}
    for line in virsh_output.splitlines()[2:]:
        parts = line.split(None, 1)
        if len(parts) == 2:
            found[parts[0]] = parts[1].strip()
    return found


def block_differences(expected: bytes | bytearray, actual: bytes, limit: int = 8) -> str:
    """Which blocks differ, for the failure message (first bytes of each side)."""
    if len(expected) != len(actual):
        return f"size {len(actual)} instead of {len(expected)}"
    bad = [
        index
        for index in range(0, len(expected), BLOCK)
        if expected[index : index + BLOCK] != actual[index : index + BLOCK]
    ]
    lines = [f"{len(bad)} of {len(expected) // BLOCK} blocks differ"]
    for index in bad[:limit]:
        block_e, block_a = expected[index : index + BLOCK], actual[index : index + BLOCK]
        first = next(i for i in range(len(block_e)) if block_e[i] != block_a[i])
        lines.append(
            f"  block {index // BLOCK} (first difference at byte {index + first}): expected "
            f"{bytes(block_e[first : first + 8]).hex()} found {block_a[first : first + 8].hex()}"
        )
    return "\n".join(lines)


# --- observing with a cache keyed on file contents ----------------------------------------------


def file_digests(folder: Path) -> dict[str, str]:
    """The hash of every file in a folder (absolute path -> hash)."""
    return {str(p): digest(p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()}


@dataclass
class ImageObserver:
    """``qemu-img`` results per image, reused only while every file they depend on is unchanged.

    ``digests`` must be refreshed (``refresh``) after every step; set ``cache=False`` to re-run
    every tool every time.
    """

    folder: Path
    scratch: Path
    cache: bool = True
    digests: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    reused: int = 0
    _chains: dict[tuple[str, str], tuple[list[ChainEntry], dict[str, str]]] = field(default_factory=dict)
    _contents: dict[tuple[str, str], tuple[str, dict[str, str]]] = field(default_factory=dict)
    _checked: dict[str, str] = field(default_factory=dict)

    def refresh(self) -> dict[str, str]:
        """Hash every file of the disk folder again; returns the hashes."""
        self.digests = file_digests(self.folder)
        return self.digests

    def _unchanged(self, depends_on: dict[str, str]) -> bool:
        return self.cache and all(self.digests.get(f) == d for f, d in depends_on.items())

    def chain(self, file: str, fmt: str) -> list[ChainEntry]:
        """The image's backing chain (``qemu-img info --backing-chain``)."""
        cached = self._chains.get((file, fmt))
        if cached is not None and self._unchanged(cached[1]):
            self.reused += 1
            return cached[0]
        self.runs += 1
        entries = backing_chain(file, fmt)
        self._chains[(file, fmt)] = (entries, {e.file: self.digests.get(e.file, "?") for e in entries})
        return entries

    def content_matches(self, file: str, fmt: str, expected: bytes | bytearray, expected_digest: str) -> str:
        """An empty string when the image reads as ``expected``, else which blocks differ."""
        cached = self._contents.get((file, fmt))
        if cached is not None and cached[0] == expected_digest and self._unchanged(cached[1]):
            self.reused += 1
            return ""
        self.runs += 1
        depends_on = {e.file: self.digests.get(e.file, "?") for e in self.chain(file, fmt)}
        actual = read_disk(file, fmt, self.scratch)
        if actual != expected:
            self._contents.pop((file, fmt), None)
            return block_differences(expected, actual)
        self._contents[(file, fmt)] = (expected_digest, depends_on)
        return ""

    def check(self, file: str, fmt: str) -> str | None:
        """``qemu-img check`` of one file (None when clean)."""
        if self.cache and self._checked.get(file) == self.digests.get(file):
            self.reused += 1
            return None
        self.runs += 1
        problem = check_problem(file, fmt)
        if problem is None:
            self._checked[file] = self.digests.get(file, "?")
        return problem


def is_overlay_name(path: str, base: str) -> bool:
    """Whether ``path`` is named as differencing disks of ``base`` are: ``<stem>_<8 hex>.qcow2``
    next to it."""
    pattern = re.escape(Path(base).stem) + r"_[0-9a-f]{8}\.qcow2"
    return Path(path).parent == Path(base).parent and re.fullmatch(pattern, Path(path).name) is not None
