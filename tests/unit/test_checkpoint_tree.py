"""The checkpoint tree on its own (no libvirt, no files): questions, hiding, the settle planner
(merge, drop, forget), and the XML it is persisted as.

The planner is also driven by a randomized simulation: images are dictionaries of blocks, a
merge copies the top's blocks into the base, and after every step each visible checkpoint and
Now must still read the same blocks, with no image left that nothing reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from defusedxml import EntitiesForbidden

from hvmanager.backend.checkpoint_tree import (
    NOW,
    Checkpoint,
    CheckpointTree,
    DropStep,
    Image,
    MergeStep,
    after_drop,
    after_merge,
    hide,
    next_settle_step,
    tree_from_domain_xml,
    tree_from_xml,
    tree_to_xml,
)
from hvmanager.backend.checkpoint_xml import set_tree
from hvmanager.backend.limits import checkpoint_name_problem

T0 = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
BASE = "/vms/web/Virtual Hard Disks/web.qcow2"
DISK = "hda"


def _checkpoint(cid: str, parent: str | None, file: str, backing: str | None, minute: int) -> Checkpoint:
    return Checkpoint(
        id=cid,
        name=f"name {cid}",
        parent=parent,
        created=T0 + timedelta(minutes=minute),
        vm_state="Off",
        production=False,
        memory=False,
        images={DISK: Image(file, backing)},
    )


def _chain() -> CheckpointTree:
    """A, then B under A, then Now under B: as two takes leave it."""
    return CheckpointTree(
        {
            "A": _checkpoint("A", None, BASE, None, 1),
            "B": _checkpoint("B", "A", "/o1.qcow2", BASE, 2),
        },
        now="B",
        now_images={DISK: Image("/o2.qcow2", "/o1.qcow2")},
    )


def _branches() -> CheckpointTree:
    """A with two children B and C; Now under C (A applied, C taken)."""
    return CheckpointTree(
        {
            "A": _checkpoint("A", None, BASE, None, 1),
            "B": _checkpoint("B", "A", "/o1.qcow2", BASE, 2),
            "C": _checkpoint("C", "A", "/o3.qcow2", BASE, 3),
        },
        now="C",
        now_images={DISK: Image("/o4.qcow2", "/o3.qcow2")},
    )


# --- questions ----------------------------------------------------------------------------------


def test_questions_on_a_branched_tree() -> None:
    tree = _branches()
    assert [c.id for c in tree.visible()] == ["A", "B", "C"]
    assert [c.id for c in tree.visible_children(None)] == ["A"]
    assert [c.id for c in tree.visible_children("A")] == ["B", "C"]
    assert tree.now_parent() == "C"
    assert sorted(c.id for c in tree.descendants("A")) == ["B", "C"]
    assert [(owner, image.file) for owner, _t, image in tree.readers(BASE)] == [
        ("B", "/o1.qcow2"),
        ("C", "/o3.qcow2"),
    ]
    assert tree.files() == {BASE, "/o1.qcow2", "/o3.qcow2", "/o4.qcow2"}
    assert tree.owner_of("/o4.qcow2") == NOW and tree.owner_of(BASE) == "A"
    assert tree.owner_of("/elsewhere.qcow2") is None
    assert [c.id for c in tree.by_name("name B")] == ["B"]


def test_hidden_checkpoints_are_skipped_everywhere_the_user_looks() -> None:
    tree = hide(_branches(), ["A", "C"])
    assert tree.get("A").hidden and tree.get("C").hidden and not tree.get("B").hidden
    assert [c.id for c in tree.visible()] == ["B"]
    assert [c.id for c in tree.visible_children(None)] == ["B"]
    assert tree.visible_parent("B") is None
    assert tree.now_parent() is None  # Now hangs under C, whose ancestors are all hidden
    assert tree.by_name("name A") == []
    assert sorted(c.id for c in tree.descendants("A")) == ["B", "C"]  # hidden ones included
    assert tree.files() == _branches().files()  # hiding deletes nothing


def test_without_checkpoint_moves_children_and_now_up() -> None:
    tree = _chain().with_image("B", DISK, None)
    tree = tree.without_checkpoint("B")
    assert set(tree.checkpoints) == {"A"} and tree.now == "A"
    tree = _branches().with_image("A", DISK, None).without_checkpoint("A")
    assert tree.get("B").parent is None and tree.get("C").parent is None and tree.now == "C"


def test_a_checkpoint_that_still_owns_images_is_not_removed() -> None:
    with pytest.raises(AssertionError):
        _chain().without_checkpoint("B")


def test_with_backing_repoints_every_reader() -> None:
    tree = _branches().with_backing(BASE, "/new.qcow2")
    assert tree.get("B").images[DISK] == Image("/o1.qcow2", "/new.qcow2")
    assert tree.get("C").images[DISK] == Image("/o3.qcow2", "/new.qcow2")
    assert tree.get("A").images[DISK] == Image(BASE, None)


# --- the settle planner -------------------------------------------------------------------------


def test_nothing_to_settle_without_hidden_checkpoints() -> None:
    assert next_settle_step(_chain()) is None
    assert next_settle_step(CheckpointTree()) is None


def test_deleting_the_checkpoint_now_derives_from_merges_now_into_it() -> None:
    tree = hide(_chain(), ["B"])
    step = next_settle_step(tree)
    assert step == MergeStep(DISK, base="/o1.qcow2", top="/o2.qcow2", base_owner="B", top_owner=NOW)
    assert isinstance(step, MergeStep)
    tree = after_merge(tree, step)
    assert tree.now_images == {DISK: Image("/o1.qcow2", BASE)} and tree.get("B").images == {}
    forgotten = next_settle_step(tree)
    assert isinstance(forgotten, CheckpointTree)
    assert set(forgotten.checkpoints) == {"A"} and forgotten.now == "A"
    assert next_settle_step(forgotten) is None


def test_deleting_the_first_checkpoint_merges_its_child_into_the_base_disk() -> None:
    tree = hide(_chain(), ["A"])
    step = next_settle_step(tree)
    assert step == MergeStep(DISK, base=BASE, top="/o1.qcow2", base_owner="A", top_owner="B")
    assert isinstance(step, MergeStep)
    tree = after_merge(tree, step)
    assert tree.get("B").images == {DISK: Image(BASE, None)}
    assert tree.now_images == {DISK: Image("/o2.qcow2", BASE)}  # read through the merged base now
    settled = _settle(tree)[0]
    assert set(settled.checkpoints) == {"B"} and settled.get("B").parent is None


def test_a_checkpoint_two_branches_read_through_waits_hidden() -> None:
    tree = hide(_branches(), ["A"])
    assert next_settle_step(tree) is None
    assert tree.get("A").hidden and tree.get("A").images == {DISK: Image(BASE, None)}


def test_an_image_nothing_reads_is_dropped() -> None:
    tree = replace(_branches(), now="A", now_images={DISK: Image("/o5.qcow2", BASE)})  # A applied
    tree = hide(tree.with_image("C", DISK, Image("/o3.qcow2", BASE)), ["C"])
    step = next_settle_step(tree)
    assert step == DropStep("C", DISK, Image("/o3.qcow2", BASE))
    assert isinstance(step, DropStep)
    tree = after_drop(tree, step)
    assert tree.get("C").images == {}
    settled = _settle(tree)[0]
    assert set(settled.checkpoints) == {"A", "B"} and settled.now == "A"


def test_deleting_a_subtree_settles_down_to_its_parent() -> None:
    """A → B → C → Now; B and C deleted: Now ends on B's image, merged, under A."""
    tree = CheckpointTree(
        {
            "A": _checkpoint("A", None, BASE, None, 1),
            "B": _checkpoint("B", "A", "/o1.qcow2", BASE, 2),
            "C": _checkpoint("C", "B", "/o2.qcow2", "/o1.qcow2", 3),
        },
        now="C",
        now_images={DISK: Image("/o3.qcow2", "/o2.qcow2")},
    )
    settled, steps = _settle(hide(tree, ["B", "C"]))
    assert set(settled.checkpoints) == {"A"} and settled.now == "A"
    assert settled.now_images == {DISK: Image("/o1.qcow2", BASE)}
    merged_away = {s.top for s in steps if isinstance(s, MergeStep)}
    assert len(steps) == 2 and merged_away == {"/o2.qcow2", "/o3.qcow2"}  # in either order


def test_every_disk_of_a_checkpoint_is_settled() -> None:
    two = CheckpointTree(
        {
            "A": replace(
                _checkpoint("A", None, BASE, None, 1),
                images={"hda": Image(BASE, None), "hdb": Image("/b.img", None, "raw")},
            )
        },
        now="A",
        now_images={"hda": Image("/n1.qcow2", BASE), "hdb": Image("/n2.qcow2", "/b.img")},
    )
    settled, steps = _settle(hide(two, ["A"]))
    assert settled.checkpoints == {} and settled.now is None
    assert settled.now_images == {"hda": Image(BASE, None), "hdb": Image("/b.img", None, "raw")}
    assert settled.format_of("/b.img") == "raw"  # the raw disk is still known as raw
    assert sorted(s.target for s in steps if isinstance(s, MergeStep)) == ["hda", "hdb"]


def _settle(tree: CheckpointTree) -> tuple[CheckpointTree, list[MergeStep | DropStep]]:
    """Run the planner to the end without files (at most 100 steps: it must terminate)."""
    steps: list[MergeStep | DropStep] = []
    for _ in range(100):
        step = next_settle_step(tree)
        if step is None:
            return tree, steps
        if isinstance(step, CheckpointTree):
            tree = step
        elif isinstance(step, DropStep):
            steps.append(step)
            tree = after_drop(tree, step)
        else:
            steps.append(step)
            tree = after_merge(tree, step)
    raise AssertionError("the settle planner did not terminate")


# --- the planner against simulated images -------------------------------------------------------


@dataclass
class FakeImages:
    """Image files as dictionaries of blocks, each reading through its backing file."""

    blocks: dict[str, dict[int, int]] = field(default_factory=dict)
    backing: dict[str, str | None] = field(default_factory=dict)
    made: int = 0

    def new(self, backing: str | None) -> str:
        self.made += 1
        name = f"/img{self.made}"
        self.blocks[name], self.backing[name] = {}, backing
        return name

    def read(self, file: str) -> dict[int, int]:
        chain: list[str] = []
        current: str | None = file
        while current is not None:
            chain.append(current)
            current = self.backing[current]
        view: dict[int, int] = {}
        for name in reversed(chain):
            view.update(self.blocks[name])
        return view

    def carry_out(self, tree: CheckpointTree, step: MergeStep | DropStep) -> CheckpointTree:
        """What checkpoint_merge does with the files, then the tree afterwards."""
        if isinstance(step, DropStep):
            if step.image.backing is not None:
                self._remove(step.image.file)
            return after_drop(tree, step)
        self.blocks[step.base].update(self.blocks[step.top])  # qemu-img commit
        for _owner, _target, reader in tree.readers(step.top):
            self.backing[reader.file] = step.base  # qemu-img rebase -u
        self._remove(step.top)
        return after_merge(tree, step)

    def _remove(self, file: str) -> None:
        assert not [f for f, b in self.backing.items() if b == file], f"{file} is still read through"
        del self.blocks[file], self.backing[file]


@dataclass
class Simulation:
    """Take, apply, write and delete as ``checkpoints`` does them, on ``FakeImages``."""

    rng: random.Random
    images: FakeImages = field(default_factory=FakeImages)
    tree: CheckpointTree = field(default_factory=CheckpointTree)
    base: str = ""
    minute: int = 0

    def __post_init__(self) -> None:
        self.base = self.images.new(None)
        self.tree = replace(self.tree, now_images={DISK: Image(self.base, None)})

    def now_file(self) -> str:
        return self.tree.now_images[DISK].file

    def write(self) -> None:
        self.images.blocks[self.now_file()][self.rng.randrange(16)] = self.rng.randrange(1000)

    def take(self) -> None:
        self.minute += 1
        cid = f"c{self.minute}"
        frozen = self.tree.now_images[DISK]
        overlay = self.images.new(frozen.file)
        checkpoint = _checkpoint(cid, self.tree.now, frozen.file, frozen.backing, self.minute)
        self.tree = replace(
            self.tree.with_checkpoint(checkpoint), now=cid, now_images={DISK: Image(overlay, frozen.file)}
        )

    def apply(self, cid: str) -> None:
        old = self.tree.now_images[DISK]
        image = self.tree.get(cid).images[DISK]
        overlay = self.images.new(image.file)
        self.tree = replace(self.tree, now=cid, now_images={DISK: Image(overlay, image.file)})
        if old.backing is not None:
            self.images._remove(old.file)
        self.settle()

    def delete(self, cid: str, subtree: bool) -> None:
        ids = [cid] + ([c.id for c in self.tree.descendants(cid) if not c.hidden] if subtree else [])
        self.tree = hide(self.tree, ids)
        self.settle()

    def settle(self) -> None:
        for _ in range(200):
            step = next_settle_step(self.tree)
            if step is None:
                return
            self.tree = step if isinstance(step, CheckpointTree) else self.images.carry_out(self.tree, step)
        raise AssertionError("the settle planner did not terminate")

    def views(self) -> dict[str, dict[int, int]]:
        shown = {c.id: self.images.read(c.images[DISK].file) for c in self.tree.visible()}
        return {**shown, NOW: self.images.read(self.now_file())}


def _reachable(sim: Simulation) -> set[str]:
    found: set[str] = set()
    tops = [c.images[DISK].file for c in sim.tree.visible()] + [sim.now_file()]
    for top in tops:
        current: str | None = top
        while current is not None:
            found.add(current)
            current = sim.images.backing[current]
    return found


@pytest.mark.parametrize("seed", range(20))
def test_settling_never_changes_what_a_checkpoint_or_now_reads(seed: int) -> None:
    sim = Simulation(random.Random(seed))
    for _ in range(150):
        visible = [c.id for c in sim.tree.visible()]
        before = sim.views()
        roll = sim.rng.random()
        if roll < 0.35 or not visible:
            sim.write() if roll < 0.2 else sim.take()
            continue
        chosen = sim.rng.choice(visible)
        if roll < 0.55:
            sim.apply(chosen)
            before[NOW] = before[chosen]
        else:
            subtree = roll > 0.9
            below = [c.id for c in sim.tree.descendants(chosen)] if subtree else []
            sim.delete(chosen, subtree)
            for gone in [chosen, *below]:
                before.pop(gone, None)
        assert sim.views() == before  # the deleted ones went, nothing else changed
        assert next_settle_step(sim.tree) is None
        assert set(sim.images.blocks) == _reachable(sim) == sim.tree.files()


# --- persistence --------------------------------------------------------------------------------

NAMES = [
    "plain",
    "Checkpoint – vor dem Update «ü» 日本",
    "quotes \" ' & <tag> > and ]]>",
    "  leading and trailing spaces  ",
    "tab\tnew line\nreturn\r",
    "x" * 100,
    "bell \x07 and escape \x1b",
]


def _rich_tree(name: str) -> CheckpointTree:
    first = replace(_checkpoint("A", None, BASE, None, 1), name=name, production=True, vm_state="Running")
    second = replace(
        _checkpoint("B", "A", "/o1.qcow2", BASE, 2),
        memory=True,
        hidden=True,
        images={DISK: Image("/o1.qcow2", BASE), "hdb": Image("/d2.vhd", None, "vpc")},
    )
    return CheckpointTree(
        {"A": first, "B": second},
        now="B",
        now_images={DISK: Image("/o2.qcow2", "/o1.qcow2"), "hdb": Image("/o9.qcow2", "/d2.vhd")},
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_accepted_name_survives_the_xml_round_trip(name: str) -> None:
    """A name the check lets through must come back from the domain metadata unchanged."""
    tree = _rich_tree(name)
    assert checkpoint_name_problem(name) is not None or tree_from_xml(tree_to_xml(tree)) == tree


def test_names_that_cannot_be_kept_are_refused() -> None:
    assert checkpoint_name_problem("plain") is None and checkpoint_name_problem("x" * 100) is None
    for name in ("bell \x07", "nul \x00", "escape \x1b", "del \x7f"):
        assert checkpoint_name_problem(name) is not None, repr(name)


def test_round_trip_keeps_every_field() -> None:
    tree = _rich_tree("plain")
    back = tree_from_xml(tree_to_xml(tree))
    first, second = back.get("A"), back.get("B")
    assert first.created == T0 + timedelta(minutes=1) and first.created.tzinfo is not None
    assert first.production and first.kind == "Production" and first.vm_state == "Running"
    assert second.memory and second.hidden and second.parent == "A" and first.parent is None
    assert second.images["hdb"] == Image("/d2.vhd", None, "vpc")
    assert back.now == "B" and back.now_images == tree.now_images


def test_empty_tree_round_trip() -> None:
    assert tree_from_xml(tree_to_xml(CheckpointTree())) == CheckpointTree()
    assert tree_from_xml(None) == CheckpointTree() and tree_from_xml("") == CheckpointTree()


DOMAIN = """<domain type='qemu'>
  <name>web</name>
  <metadata>
    <other:thing xmlns:other="https://example.org/other">kept</other:thing>
  </metadata>
  <memory unit='KiB'>262144</memory>
</domain>"""


def test_tree_in_the_domain_metadata() -> None:
    assert tree_from_domain_xml(DOMAIN) == CheckpointTree()
    assert tree_from_domain_xml("<domain><name>bare</name></domain>") == CheckpointTree()
    tree = _rich_tree("plain")
    once = set_tree(DOMAIN, tree)
    assert tree_from_domain_xml(once) == tree
    assert "https://example.org/other" in once and "kept" in once
    twice = set_tree(once, _chain())
    assert tree_from_domain_xml(twice) == _chain()
    assert twice.count("hvmanager.dev/xmlns/checkpoints") == 1  # replaced, not added again


def test_xml_from_outside_is_parsed_safely() -> None:
    hostile = (
        '<!DOCTYPE d [<!ENTITY e "x">]>'
        '<hvc:checkpoints xmlns:hvc="https://hvmanager.dev/xmlns/checkpoints/1" now="">&e;</hvc:checkpoints>'
    )
    with pytest.raises(EntitiesForbidden):
        tree_from_xml(hostile)
