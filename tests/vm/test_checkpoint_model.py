"""Checkpoints never lose data: a model-based test (issue 3, "What must be proven", first bullet).

A real VM on the system daemon, kept off, with two small disks (a qcow2 and a VHD or raw one),
goes through a seeded random sequence of guest writes (``qemu-io``: patterns, data, zeroes, on
aligned and unaligned ranges), take, apply (with and without taking a checkpoint first), revert,
delete, delete subtree, delete all, rename, and refused bad input. The base disks start with data that carries
image-format signatures (a guest may store an image file on its disk): a disk must be read as the
format it is, never as the one its contents look like. ``ReferenceModel`` says what every disk
must hold in Now and in every checkpoint. After every single step the test checks, with
``qemu-img`` and ``virsh`` (and ``checkpoint_tree``'s reader for the tree's own XML):

(a) each disk of Now reads (through its whole chain) exactly as the model says, block for block;
(b) every visible checkpoint's images read exactly as the model says (every step: the observer
    re-reads only images whose chain files changed, so this stays fast; at the end everything is
    read again without that cache);
(c) ``qemu-img check`` is clean on every image file of the disk folder;
(d) every file of the disk folder is read by Now or a checkpoint (no orphan), every file the tree
    names exists, and every backing file ``qemu-img info --backing-chain`` names exists;
(e) the tree in the domain XML (``virsh dumpxml --inactive``) has the model's checkpoints, names,
    parents and Now position, its bookkeeping matches the image headers, and ``Snapshots/`` holds
    exactly the visible checkpoints' folders.

``HVTEST_MODEL_SEED`` picks the sequence (printed on failure; the default is fixed), and
``HVTEST_MODEL_OPS`` its length; ``HVTEST_MODEL_NO_CACHE=1`` makes the observers re-run every
``qemu-img`` command at every step.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hvmanager.backend import checkpoints, creation
from hvmanager.backend.checkpoint_tree import CheckpointTree, next_settle_step, tree_from_domain_xml
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.models import MemoryConfig, VmSpec
from hvmanager.backend.paths import vm_folders
from tests.conftest import record_measurement, vm_name
from tests.support.disk_model import (
    BLOCK,
    ChainEntry,
    ImageObserver,
    ReferenceModel,
    domain_disks,
    domblklist,
    is_overlay_name,
    qemu_io_write,
    run,
)
from tests.vm.helpers import virsh

pytestmark = pytest.mark.vm

SEED = int(os.environ.get("HVTEST_MODEL_SEED", "20261125"))
OPS = int(os.environ.get("HVTEST_MODEL_OPS", "220"))
NO_CACHE = os.environ.get("HVTEST_MODEL_NO_CACHE") == "1"
DISK_SIZE = 4 * 1024 * 1024  # 64 blocks of 64 KiB
FIRST, SECOND = "hda", "hdb"
TARGETS = (FIRST, SECOND)
SIZES = dict.fromkeys(TARGETS, DISK_SIZE)
BUSY = 12  # from this many checkpoints on, deletes become likelier than takes
HISTORY_SHOWN = 30

_DEFAULT_NAME = r" - \(\d\d/\d\d/\d{4} - \d\d:\d\d:\d\d [AP]M\)$"
_BAD_NAMES = ("", "   ", "x" * 101, "bell \x07")
IMAGE_SIGNATURES = (b"QFI\xfb", b"conectix", b"vhdxfile")

T = TypeVar("T")


@dataclass(frozen=True)
class ModelVm:
    """The VM under test and its base disks (``{target: (file, format)}``)."""

    name: str
    conn: Any
    dom: Any
    disk_folder: Path
    snapshots: Path
    bases: dict[str, tuple[str, str]]


def _create_disk(path: Path, fmt: str) -> None:
    options = {
        "qcow2": ["-o", f"cluster_size={BLOCK}"],
        "vpc": ["-o", "subformat=dynamic,force_size=on"],
        "raw": [],
    }[fmt]
    run(["qemu-img", "create", "-q", "-f", fmt, *options, str(path), str(DISK_SIZE)])
    path.chmod(0o644)


@pytest.fixture
def model_vm(server: Server, vm_location: Path, request: pytest.FixtureRequest) -> Iterator[ModelVm]:
    """A VM made by the backend (no disk), then given two small disks with ``virsh attach-disk``."""
    second_format: str = request.param
    name = vm_name(f"ckpt-model-{second_format}")
    spec = VmSpec(name=name, location=str(vm_location), memory=MemoryConfig(256))
    creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    folders = vm_folders(vm_location, name)
    extension = {"vpc": "vhd", "raw": "img"}[second_format]
    bases = {
        FIRST: (str(folders.disks / "model.qcow2"), "qcow2"),
        SECOND: (str(folders.disks / f"second.{extension}"), second_format),
    }
    for target, (file, fmt) in bases.items():
        _create_disk(Path(file), fmt)
        options = f"--driver qemu --subdriver {fmt} --targetbus ide --config".split()
        virsh("attach-disk", name, file, target, *options)
    dom = server.conn.lookupByName(name)
    yield ModelVm(name, server.conn, dom, folders.disks, folders.snapshots, bases)


def _domain_xml_and_disks(name: str) -> tuple[str, dict[str, str]]:
    """``virsh dumpxml --inactive`` and ``virsh domblklist --inactive`` (one virsh run for both)."""
    out = virsh(f"dumpxml --inactive {name}; domblklist --inactive {name}")
    end = out.index("</domain>") + len("</domain>")
    return out[:end], domblklist(out[end:].strip())


# --- the sequence -------------------------------------------------------------------------------


@dataclass
class ModelRun:
    """One seeded sequence of operations on the VM, each followed by the full verification."""

    vm: ModelVm
    rng: random.Random
    observer: ImageObserver
    pool: ThreadPoolExecutor
    model: ReferenceModel = field(default_factory=lambda: ReferenceModel.blank(SIZES))
    history: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    deleted: list[str] = field(default_factory=list)
    xml: str = ""
    listed: dict[str, str] = field(default_factory=dict)
    names: int = 0
    most_checkpoints: int = 0
    most_files: int = 0
    most_hidden: int = 0

    # --- choosing --------------------------------------------------------------------------------

    def step(self) -> None:
        """Pick an operation by weight (depending on how many checkpoints exist) and run it."""
        count = len(self.model.checkpoints)
        some = 1 if count else 0
        weights: dict[str, int] = {
            "write": 36,
            "take": 18 if count < BUSY else 5,
            "apply": 12 * some,
            "revert": 6,
            "delete": (10 if count < BUSY else 22) * some,
            "delete_subtree": 4 * some,
            "rename": 5 * some,
            "delete_all": 1 * some,
            "refused": 3,
        }
        kind = self.rng.choices(list(weights), list(weights.values()))[0]
        getattr(self, f"_{kind}")()
        self.most_checkpoints = max(self.most_checkpoints, len(self.model.checkpoints))

    def _note(self, kind: str, text: str) -> None:
        self.counts[kind] += 1
        self.history.append(f"{len(self.history) + 1:3d} {text}")

    def _pick(self) -> str:
        return self.rng.choice(list(self.model.checkpoints))

    def _label(self, checkpoint_id: str) -> str:
        return f"'{self.model.checkpoints[checkpoint_id].name[:24]}' ({checkpoint_id[:8]})"

    def _new_name(self) -> str | None:
        self.names += 1
        style = self.rng.randrange(10)
        if style == 0:
            return None  # the default name, "<VM> - (<date time>)"
        if style == 1:
            return f"Checkpoint {self.names} – vor dem Update «ü» & <tag> \"q\" 'a'"
        if style == 2:
            return f"{self.names:03d}".ljust(100, "x")  # the longest name allowed
        return f"cp{self.names:03d}"

    # --- operations ------------------------------------------------------------------------------

    def _write(self) -> None:
        target = self.rng.choice([FIRST, SECOND])
        offset, length = self._range()
        kind = self.rng.choices(["pattern", "zeroes", "data", "lookalike"], [72, 15, 9, 4])[0]
        if kind == "pattern":
            byte = self.rng.randint(1, 255)
            self._put(target, offset, bytes([byte]) * length, byte, f"pattern {byte:#04x}")
        elif kind == "zeroes":
            self._put(target, offset, bytes(length), None, "zeroes")
        elif kind == "data":
            self._put(target, offset, self.rng.randbytes(length), "data", "random data")
        else:
            self.write_lookalike(target, self.rng.choice(IMAGE_SIGNATURES))

    def write_lookalike(self, target: str, signature: bytes) -> None:
        """Data with an image format's signature where a format prober looks for one (the first
        bytes, or the last sector for a VHD footer): a guest may keep an image file on its disk."""
        offset = DISK_SIZE - 512 if signature == b"conectix" else 0
        data = signature + self.rng.randbytes(512 - len(signature))
        self._put(target, offset, data, "data", f"data starting with {signature!r}")

    def _put(self, target: str, offset: int, data: bytes, how: int | str | None, what: str) -> None:
        """Write with ``qemu-io``: a byte pattern (int), zeroes (None) or the bytes ("data")."""
        payload: int | Path | None = how if not isinstance(how, str) else self.observer.scratch / "payload"
        if isinstance(payload, Path):
            payload.write_bytes(data)
        file, fmt = self._active(target)
        self._note("write", f"write {what} to {target} at {offset} length {len(data)} ({Path(file).name})")
        qemu_io_write(file, fmt, offset, len(data), payload)
        self.model.write(target, offset, data)

    def _range(self) -> tuple[int, int]:
        """Half the writes cover whole blocks, half start and end anywhere."""
        if self.rng.random() < 0.5:
            blocks = self.rng.randint(1, 4)
            return self.rng.randrange(DISK_SIZE // BLOCK - blocks + 1) * BLOCK, blocks * BLOCK
        offset = self.rng.randrange(DISK_SIZE)
        return offset, self.rng.randint(1, min(3 * BLOCK, DISK_SIZE - offset))

    def _active(self, target: str) -> tuple[str, str]:
        """The file Now writes to (``virsh domblklist``, read with the XML after the last step)."""
        file, fmt = domain_disks(self.xml)[target]
        assert self.listed[target] == file, f"domblklist shows {self.listed[target]}, the XML {file}"
        return file, fmt

    def _take(self) -> None:
        name = self._new_name()
        self._note("take", f"take {name!r}")
        result = checkpoints.take(self.vm.conn, self.vm.dom, name)
        self._check_taken(result, name)
        self.model.take(result.checkpoint.id, result.checkpoint.name)

    def _check_taken(self, result: checkpoints.TakeResult, name: str | None) -> None:
        taken = result.checkpoint
        assert result.fallback_reason == "" and not taken.memory and taken.vm_state == "Off"
        if name is None:
            assert re.fullmatch(re.escape(self.vm.name) + _DEFAULT_NAME, taken.name), taken.name
        else:
            assert taken.name == name

    def _apply(self) -> None:
        checkpoint_id = self._pick()
        take_first = self.rng.random() < 0.35
        self._note("apply", f"apply {self._label(checkpoint_id)} take_first={take_first}")
        result = checkpoints.apply(self.vm.conn, self.vm.dom, checkpoint_id, take_first=take_first)
        if take_first:
            assert result is not None
            self._check_taken(result, None)
            self.model.take(result.checkpoint.id, result.checkpoint.name)
        else:
            assert result is None
        self.model.apply(checkpoint_id)

    def _revert(self) -> None:
        parent = self.model.now_parent
        if parent is None:
            self._note("revert", "revert (nothing to revert to: refused)")
            with pytest.raises(InvalidStateError):
                checkpoints.revert(self.vm.conn, self.vm.dom)
            return
        self._note("revert", f"revert to {self._label(parent)}")
        assert checkpoints.revert(self.vm.conn, self.vm.dom).id == parent
        self.model.apply(parent)

    def _delete(self) -> None:
        checkpoint_id = self._pick()
        self._note("delete", f"delete {self._label(checkpoint_id)}")
        checkpoints.delete(self.vm.conn, self.vm.dom, checkpoint_id, progress=self._progress)
        self.model.delete(checkpoint_id)
        self.deleted.append(checkpoint_id)

    def _delete_subtree(self) -> None:
        checkpoint_id = self._pick()
        size = 1 + len(self.model.descendants(checkpoint_id))
        self._note("delete_subtree", f"delete subtree of {self._label(checkpoint_id)} ({size} checkpoints)")
        checkpoints.delete(self.vm.conn, self.vm.dom, checkpoint_id, subtree=True, progress=self._progress)
        self.deleted += self.model.delete_subtree(checkpoint_id)

    def _delete_all(self) -> None:
        """Every checkpoint goes (a VM removed with its disks kept): Now is merged into the bases."""
        self._note("delete_all", f"delete all {len(self.model.checkpoints)} checkpoints")
        checkpoints.delete_all(self.vm.conn, self.vm.dom, progress=self._progress)
        for checkpoint_id in self.model.children(None):
            self.deleted += self.model.delete_subtree(checkpoint_id)
        listed = _domain_xml_and_disks(self.vm.name)[1]
        assert listed == {target: base for target, (base, _fmt) in self.vm.bases.items()}, listed

    @staticmethod
    def _progress(label: str, percent: float) -> None:
        assert label == "Merging" and 0.0 <= percent <= 100.0, (label, percent)

    def _rename(self) -> None:
        checkpoint_id = self._pick()
        name = self._new_name() or f"renamed {self.names}"
        self._note("rename", f"rename {self._label(checkpoint_id)} to {name!r}")
        checkpoints.rename(self.vm.dom, checkpoint_id, name)
        self.model.rename(checkpoint_id, name)

    def _refused(self) -> None:
        """Bad input is refused and changes nothing (the verification after it proves that)."""
        bad_name = self.rng.choice(_BAD_NAMES)
        choice = self.rng.randrange(4) if self.model.checkpoints else self.rng.choice([0, 3])
        if choice == 0:
            self._note("refused", f"take named {bad_name!r} (refused)")
            with pytest.raises(ValidationError):
                checkpoints.take(self.vm.conn, self.vm.dom, bad_name)
        elif choice == 1:
            checkpoint_id = self._pick()
            self._note("refused", f"rename {self._label(checkpoint_id)} to {bad_name!r} (refused)")
            with pytest.raises(ValidationError):
                checkpoints.rename(self.vm.dom, checkpoint_id, bad_name)
        elif choice == 2 and self.deleted:
            gone = self.rng.choice(self.deleted)
            self._note("refused", f"apply the deleted checkpoint {gone[:8]} (refused)")
            with pytest.raises(ValidationError):
                checkpoints.apply(self.vm.conn, self.vm.dom, gone)
        else:
            self._note("refused", "delete an unknown checkpoint (refused)")
            with pytest.raises(ValidationError):
                checkpoints.delete(self.vm.conn, self.vm.dom, "no-such-checkpoint")

    # --- verification ----------------------------------------------------------------------------

    def verify(self) -> None:
        """Checks (a) to (e) of the module docstring, on the state after the last step."""
        self.xml, self.listed = _domain_xml_and_disks(self.vm.name)
        tree = tree_from_domain_xml(self.xml)
        disks = domain_disks(self.xml)
        self._verify_tree(tree, disks)
        self._verify_snapshot_folders()
        digests = self.observer.refresh()
        tops = self._tops(tree, disks)
        chains = self._map(lambda top: self.observer.chain(top.file, top.fmt), tops)
        self._verify_files(tree, set(digests), chains)
        self._verify_checks(set(digests))
        self._verify_contents(tops)
        self.most_files = max(self.most_files, len(digests))
        self.most_hidden = max(self.most_hidden, sum(c.hidden for c in tree.checkpoints.values()))

    def _map(self, work: Callable[[Top], T], items: list[Top]) -> list[T]:
        return list(self.pool.map(work, items))

    def _verify_tree(self, tree: CheckpointTree, disks: dict[str, tuple[str, str]]) -> None:
        shown = {c.id: (c.name, tree.visible_parent(c.id)) for c in tree.visible()}
        assert shown == self.model.shape(), f"tree {shown}\nmodel {self.model.shape()}"
        assert tree.now_parent() == self.model.now_parent, (tree.now_parent(), self.model.now_parent)
        assert next_settle_step(tree) is None, "a deleted checkpoint could be merged but was not"
        assert set(disks) == {FIRST, SECOND}
        now_files = {target: image.file for target, image in tree.now_images.items()}
        if not tree.now_images and not tree.checkpoints:  # no checkpoint was ever taken
            now_files = {target: base for target, (base, _fmt) in self.vm.bases.items()}
        assert now_files == {target: file for target, (file, _fmt) in disks.items()}, now_files
        for checkpoint in tree.checkpoints.values():
            assert set(checkpoint.images) == {FIRST, SECOND} or checkpoint.hidden, checkpoint
            assert not checkpoint.memory and checkpoint.vm_state == "Off"
        for target, (file, fmt) in disks.items():
            expected_fmt = self.vm.bases[target][1] if file == self.vm.bases[target][0] else "qcow2"
            assert fmt == expected_fmt, f"{target} runs on {file} as {fmt}"

    def _verify_snapshot_folders(self) -> None:
        entries = {p.name for p in self.vm.snapshots.iterdir()}
        assert entries == set(self.model.checkpoints), f"Snapshots/ holds {sorted(entries)}"
        for checkpoint_id in entries:
            assert sorted(p.name for p in (self.vm.snapshots / checkpoint_id).iterdir()) == ["config.xml"]

    def _tops(self, tree: CheckpointTree, disks: dict[str, tuple[str, str]]) -> list[Top]:
        tops = [
            Top(f"Now {target}", file, fmt, self.model.now[target], self.model.now_digest(target))
            for target, (file, fmt) in disks.items()
        ]
        for expected in self.model.checkpoints.values():
            for target, image in tree.get(expected.id).images.items():
                base, base_fmt = self.vm.bases[target]
                fmt = base_fmt if image.file == base else "qcow2"
                tops.append(
                    Top(
                        f"checkpoint '{expected.name}' {target}",
                        image.file,
                        fmt,
                        expected.contents[target],
                        expected.digests[target],
                    )
                )
        return tops

    def _verify_files(self, tree: CheckpointTree, present: set[str], chains: list[list[ChainEntry]]) -> None:
        bases = {file: fmt for file, fmt in self.vm.bases.values()}
        backing_of: dict[str, str | None] = {}
        format_of: dict[str, str] = {}
        for chain in chains:
            assert chain[-1].file in bases and chain[-1].format == bases[chain[-1].file], chain[-1]
            for upper, lower in itertools.pairwise(chain):
                assert upper.format == "qcow2" and upper.backing_format == lower.format, upper
            for entry in chain:
                backing_of[entry.file], format_of[entry.file] = entry.backing, entry.format
                assert entry.virtual_size == DISK_SIZE, entry
        orphans = present - set(backing_of)
        assert not orphans, f"files nothing reads through: {sorted(orphans)}"
        missing = (tree.files() | set(backing_of)) - present
        assert not missing, f"files the tree or a chain needs are missing: {sorted(missing)}"
        untracked = present - tree.files() - set(bases)
        assert not untracked, f"files the tree does not know: {sorted(untracked)}"
        strays = [f for f in present - set(bases) if not any(is_overlay_name(f, b) for b in bases)]
        assert not strays, f"files not named as differencing disks: {strays}"
        for owner, target, image in tree.owned_images():
            found = (backing_of.get(image.file), format_of.get(image.file))
            said = (image.backing, image.format)
            assert found == said, f"{owner} {target}: the tree says {image}, the image {found}"

    def _verify_checks(self, present: set[str]) -> None:
        bases = dict(self.vm.bases.values())
        files = sorted(present)
        problems = list(self.pool.map(lambda f: self.observer.check(f, bases.get(f, "qcow2")), files))
        bad = {f: p for f, p in zip(files, problems, strict=True) if p}
        assert not bad, f"qemu-img check: {bad}"

    def _verify_contents(self, tops: list[Top]) -> None:
        results = self._map(
            lambda top: self.observer.content_matches(top.file, top.fmt, top.expected, top.digest), tops
        )
        wrong = [f"{top.what} ({top.file}): {diff}" for top, diff in zip(tops, results, strict=True) if diff]
        assert not wrong, "contents differ from the model:\n" + "\n".join(wrong)


@dataclass(frozen=True)
class Top:
    """An image whose virtual disk is checked, and what it must read as."""

    what: str
    file: str
    fmt: str
    expected: bytes | bytearray
    digest: str


# --- the test -----------------------------------------------------------------------------------


def _seed_bases(sequence: ModelRun) -> None:
    """Data on the base disks before the first checkpoint: some writes, and image signatures at
    both ends (a disk that holds a stored image file must still be read as what it is)."""
    for target in TARGETS:
        for signature in (b"QFI\xfb", b"conectix"):
            sequence.write_lookalike(target, signature)
    for _ in range(4):
        sequence._write()


def _report(sequence: ModelRun, test_id: str, exc: BaseException) -> str:
    shown = "\n".join(sequence.history[-HISTORY_SHOWN:])
    return (
        f"checkpoint model diverged at operation {len(sequence.history)} (numbered as below); "
        f"reproduce with HVTEST_MODEL_SEED={SEED} HVTEST_MODEL_OPS={OPS} pytest '{test_id}'\n"
        f"{type(exc).__name__}: {exc}\nlast operations:\n{shown}"
    )


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """Where the observers write the raw images they read (memory when /dev/shm exists: fast)."""
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="hvtest-model-", dir=shm if shm.is_dir() else tmp_path))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("model_vm", ["vpc", "raw"], indirect=True)
def test_random_checkpoint_sequences_keep_every_byte(
    model_vm: ModelVm, scratch: Path, request: pytest.FixtureRequest
) -> None:
    seed = SEED + (0 if model_vm.bases[SECOND][1] == "vpc" else 1)  # another sequence per variant
    print(f"HVTEST_MODEL_SEED={SEED} (sequence seed {seed})")  # shown with a failure's output
    started = time.monotonic()
    spent = {"operations": 0.0, "checks": 0.0}
    with ThreadPoolExecutor(max_workers=2) as pool:
        observer = ImageObserver(model_vm.disk_folder, scratch, cache=not NO_CACHE)
        sequence = ModelRun(model_vm, random.Random(seed), observer, pool)
        try:
            sequence.verify()
            _seed_bases(sequence)
            sequence.verify()
            sequence.counts.clear()
            for _ in range(OPS):
                began = time.monotonic()
                sequence.step()
                checked = time.monotonic()
                sequence.verify()
                spent["operations"] += checked - began
                spent["checks"] += time.monotonic() - checked
            observer.cache = False  # once more at the end, every qemu-img command re-run
            sequence.verify()
        except BaseException as exc:
            print("\n".join(sequence.history))
            raise AssertionError(_report(sequence, request.node.nodeid, exc)) from exc
    elapsed = time.monotonic() - started
    ops = ", ".join(f"{kind} {n}" for kind, n in sorted(sequence.counts.items()))
    record_measurement(
        f"checkpoint model ({model_vm.bases[SECOND][1]}, seed {seed}): {OPS} operations in {elapsed:.1f} s "
        f"({spent['operations']:.1f} s operating, {spent['checks']:.1f} s checking; {ops}); "
        f"at most {sequence.most_checkpoints} checkpoints, {sequence.most_hidden} deleted ones waiting "
        f"for a merge and {sequence.most_files} image files; "
        f"qemu-img runs {observer.runs}, reused {observer.reused}"
    )
