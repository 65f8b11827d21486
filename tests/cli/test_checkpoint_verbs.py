"""The ``hvctl`` checkpoint verbs: checkpoint-vm, get-vmcheckpoint, restore-vmcheckpoint, revert-vm,
remove-vmcheckpoint, rename-vmcheckpoint and get-vmcheckpoint-chain.

The first tests are fast (no daemon): the tree and table rendering, finding checkpoints by name or
id, the progress line, the refusal on a server that is not this machine. The others run the
installed ``hvctl`` against the real ``qemu:///system`` on real VMs, write data into the disks with
``qemu-io`` while the VM is off, and check every effect with independent observers: ``virsh``,
``qemu-img info --backing-chain``, ``qemu-io`` reads and the disk folder's listing.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import checkpoint_journal, checkpoints
from hvmanager.backend.checkpoint_tree import Checkpoint, CheckpointTree, CheckpointType, Image
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import ValidationError
from hvmanager.cli import checkpoint_commands
from hvmanager.cli.checkpoint_commands import (
    CheckpointNotFoundError,
    MergeProgressLine,
    find_checkpoint,
    select_checkpoints,
    tree_lines,
    tree_table,
)
from hvmanager.cli.hvctl import main, parse_args
from tests.conftest import SYSTEM_URI, vm_name
from tests.vm.helpers import backing_chain, virsh
from tests.vm.test_hvctl import hvctl, hvctl_path, new_vm, ok

KIB = 1024
MIB = 1024 * KIB

# --- fast tests: rendering and resolution, no daemon --------------------------------------------

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def _checkpoint(cid: str, name: str, parent: str | None, minutes: int, hidden: bool = False) -> Checkpoint:
    return Checkpoint(
        id=cid,
        name=name,
        parent=parent,
        created=T0 + timedelta(minutes=minutes),
        vm_state="Off",
        production=cid == "b",
        memory=False,
        images={"vda": Image(f"/d/{cid}.qcow2", None)},
        hidden=hidden,
    )


def branched_tree(now: str | None = "c") -> CheckpointTree:
    """Checkpoint a with children b and c; b's child h is hidden (deleted, still read by d)."""
    checkpoints_ = [
        _checkpoint("a", "base", None, 0),
        _checkpoint("b", "update", "a", 1),
        _checkpoint("c", "experiment", "a", 2),
        _checkpoint("h", "deleted", "b", 3, hidden=True),
        _checkpoint("d", "update", "h", 4),
    ]
    return CheckpointTree({c.id: c for c in checkpoints_}, now, {"vda": Image("/d/now.qcow2", "/d/c.qcow2")})


def test_tree_lines_put_now_last_under_its_checkpoint_and_skip_hidden_ones() -> None:
    lines = [(depth, c.id if c else "Now") for depth, c in tree_lines(branched_tree())]
    assert lines == [(0, "a"), (1, "b"), (2, "d"), (1, "c"), (2, "Now")]
    # Now under a hidden checkpoint hangs under its nearest visible ancestor.
    lines = [(depth, c.id if c else "Now") for depth, c in tree_lines(branched_tree(now="h"))]
    assert lines == [(0, "a"), (1, "b"), (2, "d"), (2, "Now"), (1, "c")]
    # No checkpoint at all: only Now, at the top.
    assert list(tree_lines(CheckpointTree())) == [(0, None)]


def test_tree_table_has_get_vmsnapshot_columns_and_indents_names() -> None:
    lines = tree_table("web1", branched_tree()).splitlines()
    assert lines[0].split() == ["VMName", "Name", "SnapshotType", "CreationTime", "ParentSnapshotName"]
    start, end = lines[0].index(" Name ") + 1, lines[0].index("SnapshotType")
    names = [line[start:end].rstrip() for line in lines[2:]]
    assert names == ["base", "  update", "    update", "  experiment", "    Now"]
    assert lines[3].split()[1:3] == ["update", "Production"]
    assert lines[-1].split() == ["web1", "Now", "experiment"]
    assert tree_table("web1", CheckpointTree()) == ""


def test_checkpoints_are_found_by_id_or_unique_name() -> None:
    tree = branched_tree()
    assert find_checkpoint(tree, "experiment", "web1").id == "c"
    assert find_checkpoint(tree, "d", "web1").id == "d"
    with pytest.raises(ValidationError) as ambiguous:
        find_checkpoint(tree, "update", "web1")
    assert "2 checkpoints of 'web1' are named 'update'" in ambiguous.value.message
    assert "b (created" in ambiguous.value.message and "d (created" in ambiguous.value.message
    for unknown in ("nothing", "h", "deleted"):  # a hidden checkpoint is gone for the user
        with pytest.raises(CheckpointNotFoundError):
            find_checkpoint(tree, unknown, "web1")
    assert [c.id for c in select_checkpoints(tree, "update", "web1")] == ["b", "d"]
    assert [c.id for c in select_checkpoints(tree, "*e*", "web1")] == ["a", "b", "c", "d"]
    assert select_checkpoints(tree, "zz*", "web1") == []
    with pytest.raises(CheckpointNotFoundError):
        select_checkpoints(tree, "zz", "web1")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_merge_progress_is_written_only_to_a_terminal() -> None:
    pipe = io.StringIO()
    line = MergeProgressLine(pipe)
    line("Merging", 42.5)
    line.finish()
    assert pipe.getvalue() == ""
    terminal = _Terminal()
    line = MergeProgressLine(terminal)
    for percent in (0.0, 0.4, 42.5, 100.0):
        line("Merging", percent)
    line.finish()
    assert terminal.getvalue() == "\rMerging (0 %)\rMerging (42 %)\rMerging (100 %)\n"


def test_checkpoint_verbs_parse() -> None:
    args = parse_args(["remove-vmcheckpoint", "web1", "old", "--subtree", "--no-wait", "--force"])
    assert (args.vm, args.checkpoint) == ("web1", "old")
    assert args.subtree and args.no_wait and args.force
    assert parse_args(["checkpoint-vm", "web1"]).name is None
    assert parse_args(["restore-vmcheckpoint", "web1", "x", "--take-checkpoint-first"]).take_checkpoint_first
    assert parse_args(["rename-vmcheckpoint", "web1", "x", "y"]).new_name == "y"
    assert parse_args(["get-vmcheckpoint-chain", "web1", "--checkpoint", "x", "--json"]).json
    assert parse_args(["revert-vm", "web1"]).handler is checkpoint_commands.revert_vm
    assert main(["restore-vmcheckpoint", "web1"]) == 2  # CHECKPOINT is missing


def test_checkpoint_verbs_refuse_remote_servers(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--connect", "test:///default", "checkpoint-vm", "test"])
    captured = capsys.readouterr()
    assert code == 1
    assert "hvctl: error: Checkpoints work on VMs of this computer only." in captured.err
    assert captured.out == ""


# --- observers for the real-VM tests -------------------------------------------------------------


def active_file(name: str) -> str:
    """The file the VM's hard disk writes to, from ``virsh domblklist``."""
    for line in virsh("domblklist", name, "--details").splitlines()[2:]:
        kind, device, _target, source = line.split(None, 3)
        if kind == "file" and device == "disk":
            return source.strip()
    raise AssertionError(f"{name} has no disk file:\n{virsh('domblklist', name, '--details')}")


def write_pattern(file: str, pattern: int, length: int = 64 * KIB) -> None:
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern:#x} 0 {length}", file],
        check=True,
        capture_output=True,
    )


def has_pattern(file: str, pattern: int, length: int = 64 * KIB) -> bool:
    done = subprocess.run(
        ["qemu-io", "-r", "-f", "qcow2", "-c", f"read -P {pattern:#x} 0 {length}", file],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0 and "verification failed" not in done.stdout + done.stderr


def image_clean(file: str) -> bool:
    return subprocess.run(["qemu-img", "check", "-U", file], capture_output=True, check=False).returncode == 0


def disk_folder(location: Path, name: str) -> Path:
    return location / name / "Virtual Hard Disks"


def images_in(folder: Path) -> set[str]:
    return {str(p) for p in folder.glob("*.qcow2")}


def vm_snapshot(name: str, location: Path) -> tuple[str, list[tuple[str, int, int]]]:
    """Everything a failed verb must leave alone: the persistent definition and the VM's files."""
    files = sorted(
        (str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (location / name).rglob("*") if p.is_file()
    )
    return virsh("dumpxml", "--inactive", name), files


def tree_json(name: str) -> dict[str, Any]:
    record = json.loads(ok("get-vmcheckpoint", name, "--json"))
    assert isinstance(record, dict)
    return record


def take(name: str, *extra: str) -> dict[str, Any]:
    record = json.loads(ok("checkpoint-vm", name, "--json", *extra))
    assert isinstance(record, dict)
    return record


def new_disk_vm(label: str, location: Path) -> str:
    name = vm_name(label)
    new_vm(name, location, "--new-vhd-size-gb", "1")
    return name


# --- the real-VM tests ---------------------------------------------------------------------------


@pytest.mark.vm
@pytest.mark.usefixtures("clean_domains")
def test_checkpoint_restore_rename_chain_and_remove_subtree(vm_location: Path) -> None:
    name = new_disk_vm("cli-ckpt", vm_location)
    base = active_file(name)
    write_pattern(base, 0x11)

    first = take(name, "--name", "first")
    assert (first["name"], first["type"], first["vm_state"]) == ("first", "Standard", "Off")
    assert first["memory"] is False
    assert first["parent_id"] is None and first["fallback_reason"] is None
    overlay = active_file(name)
    assert overlay != base
    assert [entry["filename"] for entry in backing_chain(overlay)] == [overlay, base]

    write_pattern(overlay, 0x22)
    assert has_pattern(active_file(name), 0x22)
    text = ok("checkpoint-vm", name)  # the default name: "<VM> - (<date> - <time>)"
    second_name = re.search(r"checkpoint '(.+)' of", text)
    assert second_name is not None and second_name.group(1).startswith(f"{name} - (")

    text = ok("restore-vmcheckpoint", name, "first")
    assert f"Applied checkpoint 'first' to '{name}'; it is now Off." in text
    assert has_pattern(active_file(name), 0x11)
    assert not has_pattern(active_file(name), 0x22)

    record = tree_json(name)
    by_name = {c["name"]: c for c in record["checkpoints"]}
    second = by_name[second_name.group(1)]
    assert record["vm_name"] == name and record["now"] == first["id"]
    assert by_name["first"]["children"] == [second["id"]]
    assert (second["parent_id"], second["parent_name"], second["children"]) == (first["id"], "first", [])
    assert datetime.fromisoformat(second["created"]) >= datetime.fromisoformat(by_name["first"]["created"])
    table = ok("get-vmcheckpoint", name).splitlines()
    assert [line.split()[1] for line in table[2:]] == ["first", name, "Now"]
    assert table[-1].split() == [name, "Now", "first"]
    assert table[-1].index("Now") == table[3].index(name + " -")  # Now and 'second' are both under 'first'

    ok("rename-vmcheckpoint", name, second["id"], "second, renamed")
    assert {c["name"] for c in tree_json(name)["checkpoints"]} == {"first", "second, renamed"}
    assert 'name="second, renamed"' in virsh("dumpxml", "--inactive", name)

    now_chain = json.loads(ok("get-vmcheckpoint-chain", name, "--json"))
    (disk,) = now_chain
    expected = backing_chain(active_file(name))
    assert [f["file"] for f in disk["files"]] == [e["filename"] for e in expected]
    assert [f["format"] for f in disk["files"]] == [e["format"] for e in expected]
    assert [f["virtual_size"] for f in disk["files"]] == [e["virtual-size"] for e in expected]
    assert [f["owner"] for f in disk["files"]] == ["Now", "first"]
    assert disk["total_size"] == sum(os.stat(f["file"]).st_blocks * 512 for f in disk["files"])
    second_chain = ok("get-vmcheckpoint-chain", name, "--checkpoint", "second, renamed", "--json")
    (second_disk,) = json.loads(second_chain)
    assert [f["owner_id"] for f in second_disk["files"]] == [second["id"], first["id"]]
    assert [f["file"] for f in second_disk["files"]][1:] == [base]
    text = ok("get-vmcheckpoint-chain", name)
    assert text.startswith("Disk hda: 2 files,") and "Owner" in text and base in text

    write_pattern(active_file(name), 0x44)
    assert f"Applied checkpoint 'first' to '{name}'" in ok("revert-vm", name)
    assert has_pattern(active_file(name), 0x11)

    write_pattern(active_file(name), 0x55)  # kept by "Take Checkpoint and Apply"
    applied = json.loads(ok("restore-vmcheckpoint", name, second["id"], "--take-checkpoint-first", "--json"))
    assert (applied["state"], applied["applied"]["id"]) == ("Off", second["id"])
    taken = applied["taken"]
    assert taken["parent_id"] == first["id"] and taken["name"].startswith(f"{name} - (")
    assert has_pattern(active_file(name), 0x22)
    (taken_disk,) = json.loads(ok("get-vmcheckpoint-chain", name, "--checkpoint", taken["id"], "--json"))
    assert has_pattern(taken_disk["files"][0]["file"], 0x55)
    assert tree_json(name)["now"] == second["id"]

    text = ok("remove-vmcheckpoint", name, "first", "--subtree")
    assert "Merging may need up to" in text
    assert f"Deleted checkpoint 'first' of '{name}', and the 2 checkpoints below it." in text
    emptied = tree_json(name)
    assert (emptied["vm_name"], emptied["now"], emptied["checkpoints"]) == (name, None, [])
    assert images_in(disk_folder(vm_location, name)) == {base}
    assert active_file(name) == base
    assert [entry["filename"] for entry in backing_chain(base)] == [base]
    assert image_clean(base)
    assert has_pattern(base, 0x22)  # the state Now had (that of 'second') is what remains
    assert list((vm_location / name / "Snapshots").iterdir()) == []


@pytest.mark.vm
@pytest.mark.usefixtures("clean_domains")
def test_bad_input_is_refused_and_changes_nothing(vm_location: Path) -> None:
    name = new_disk_vm("cli-ckpt-bad", vm_location)
    done = hvctl("revert-vm", name)
    assert done.returncode == 1 and f"'{name}' has no checkpoint to revert to." in done.stderr
    one = take(name, "--name", "twin")
    two = take(name, "--name", "twin")
    before = vm_snapshot(name, vm_location)

    long_name = "x" * 101
    refused = [
        (["checkpoint-vm", name, "--name", ""], "Enter a name for the checkpoint."),
        (["checkpoint-vm", name, "--name", "   "], "Enter a name for the checkpoint."),
        (["checkpoint-vm", name, "--name", long_name], "101 characters long; the limit is 100"),
        (["rename-vmcheckpoint", name, one["id"], ""], "Enter a name for the checkpoint."),
        (["rename-vmcheckpoint", name, one["id"], long_name], "101 characters long; the limit is 100"),
        (["restore-vmcheckpoint", name, "nothing"], f"'{name}' has no checkpoint named 'nothing'."),
        (["remove-vmcheckpoint", name, "nothing"], f"'{name}' has no checkpoint named 'nothing'."),
        (["rename-vmcheckpoint", name, "nothing", "y"], f"'{name}' has no checkpoint named 'nothing'."),
        (["get-vmcheckpoint", name, "--name", "nothing"], f"'{name}' has no checkpoint named 'nothing'."),
        (["get-vmcheckpoint-chain", name, "--checkpoint", "nothing"], "no checkpoint named 'nothing'"),
        (["restore-vmcheckpoint", name, "twin"], f"2 checkpoints of '{name}' are named 'twin'"),
        (["remove-vmcheckpoint", name, "twin", "--subtree"], f"2 checkpoints of '{name}' are named 'twin'"),
        (["rename-vmcheckpoint", name, "twin", "other"], f"2 checkpoints of '{name}' are named 'twin'"),
        (["checkpoint-vm", "no-such-vm-hvtest"], "No virtual machine named 'no-such-vm-hvtest'"),
    ]
    for args, message in refused:
        done = hvctl(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert done.stderr.startswith("hvctl: error: ")
        if "are named 'twin'" in message:
            assert one["id"] in done.stderr and two["id"] in done.stderr
            assert "Give the id of the one you mean" in done.stderr
        assert vm_snapshot(name, vm_location) == before, args

    # The id settles what the name could not.
    ok("rename-vmcheckpoint", name, two["id"], "twin, the second")
    names = {c["id"]: c["name"] for c in tree_json(name)["checkpoints"]}
    assert names == {one["id"]: "twin", two["id"]: "twin, the second"}


@pytest.fixture
def small_filesystem(vm_location: Path) -> Iterator[Path]:
    """A 16 MiB ext4 file system, loop-mounted in the test's folder (unmounted afterwards)."""
    image, mountpoint = vm_location / "fs.img", vm_location / "small"
    with open(image, "wb") as handle:
        handle.truncate(16 * MIB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], check=True, capture_output=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True, capture_output=True)
    try:
        mountpoint.chmod(0o755)
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False, capture_output=True)


@pytest.mark.vm
@pytest.mark.usefixtures("clean_domains")
def test_remove_refuses_when_the_merge_may_not_fit_unless_forced(small_filesystem: Path) -> None:
    name = new_disk_vm("cli-ckpt-space", small_filesystem)
    base = active_file(name)
    write_pattern(base, 0x11, 4 * MIB)  # the base holds these clusters already: the merge writes in place
    take(name, "--name", "full")
    overlay = active_file(name)
    write_pattern(overlay, 0x22, 4 * MIB)
    free = os.statvfs(small_filesystem).f_bavail * os.statvfs(small_filesystem).f_frsize
    filler = small_filesystem / "filler"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, free - 2 * MIB)
    before = vm_snapshot(name, small_filesystem)

    done = hvctl("remove-vmcheckpoint", name, "full")
    assert done.returncode == 1
    assert "Not deleting: merging may need up to 4" in done.stderr
    assert "is free" in done.stderr and "--force" in done.stderr
    assert "Merging may need up to" in done.stdout  # said before anything started
    assert vm_snapshot(name, small_filesystem) == before
    assert tree_json(name)["checkpoints"][0]["name"] == "full"

    done = hvctl("remove-vmcheckpoint", name, "full", "--force")
    assert done.returncode == 0, done.stderr
    assert "merging anyway (--force)" in done.stderr
    assert tree_json(name)["checkpoints"] == []
    assert images_in(disk_folder(small_filesystem, name)) == {base}
    assert active_file(name) == base and image_clean(base)
    assert has_pattern(base, 0x22, 4 * MIB)


@pytest.mark.vm
@pytest.mark.usefixtures("clean_domains")
def test_remove_waits_for_a_running_operation_or_refuses_with_no_wait(vm_location: Path) -> None:
    name = new_disk_vm("cli-ckpt-busy", vm_location)
    checkpoint = take(name, "--name", "busy")
    uuid = virsh("domuuid", name)
    before = vm_snapshot(name, vm_location)
    with checkpoint_journal.vm_lock(uuid):  # what a merge in the GUI or another hvctl holds
        done = hvctl("remove-vmcheckpoint", name, "busy", "--no-wait")
        assert done.returncode == 1
        assert "already running on this virtual machine" in done.stderr
        assert "leave out --no-wait" in done.stderr
        assert vm_snapshot(name, vm_location) == before

        waiting = subprocess.Popen(
            [hvctl_path(), "--connect", SYSTEM_URI, "remove-vmcheckpoint", name, checkpoint["id"]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert waiting.stderr is not None
        note = waiting.stderr.readline()
        assert "waiting for it to end" in note
        assert waiting.poll() is None  # it cannot go on while the lock is held
        assert tree_json(name)["checkpoints"] != []
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert "Deleted checkpoint 'busy'" in out
    assert tree_json(name)["checkpoints"] == []


def _run_with_terminal_stderr(*args: str) -> tuple[int, str, str]:
    """Run hvctl with standard error on a pseudo-terminal; returns (status, stdout, terminal text)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [hvctl_path(), "--connect", SYSTEM_URI, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    out, _err = process.communicate(timeout=120)
    reader.join(timeout=30)
    os.close(master)
    return process.returncode, out, b"".join(chunks).decode(errors="replace")


@pytest.mark.vm
@pytest.mark.usefixtures("clean_domains")
def test_merge_progress_shows_on_a_terminal_only(vm_location: Path) -> None:
    name = new_disk_vm("cli-ckpt-progress", vm_location)
    take(name, "--name", "one")
    write_pattern(active_file(name), 0x33, MIB)
    code, out, terminal = _run_with_terminal_stderr("remove-vmcheckpoint", name, "one")
    assert code == 0, terminal
    assert "Deleted checkpoint 'one'" in out
    assert re.search(r"\rMerging \(\d+ %\)", terminal), terminal
    assert "Merging (100 %)" in terminal

    take(name, "--name", "two")
    done = hvctl("remove-vmcheckpoint", name, "two")  # stderr is a pipe
    assert done.returncode == 0 and "Merging (" not in done.stderr
    assert has_pattern(active_file(name), 0x33, MIB)


@pytest.mark.vm
@pytest.mark.usefixtures("clean_domains")
def test_production_checkpoint_of_a_running_vm_without_agent_falls_back(vm_location: Path) -> None:
    name = new_disk_vm("cli-ckpt-prod", vm_location)
    server = Server(SYSTEM_URI)
    server.open()
    try:
        dom = server.conn.lookupByName(name)
        checkpoints.set_policy(server.conn, dom, checkpoints.CheckpointPolicy(CheckpointType.PRODUCTION))
    finally:
        server.close()
    ok("start-vm", name)  # no operating system and no guest agent: it sits in the firmware
    done = hvctl("checkpoint-vm", name, "--name", "live", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["type"] == "Standard" and record["memory"] is True and record["vm_state"] == "Running"
    assert "guest agent did not answer" in record["fallback_reason"]
    assert "hvctl: warning: A standard checkpoint was taken instead of a production one" in done.stderr
    assert virsh("domstate", name) == "running"
    assert (vm_location / name / "Snapshots" / record["id"] / "memory.save").exists()
    ok("stop-vm", name, "--turn-off")
