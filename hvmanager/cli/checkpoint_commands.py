"""The ``hvctl`` checkpoint verbs (Hyper-V's ``*-VMSnapshot`` / ``*-VMCheckpoint`` cmdlets):
checkpoint-vm, get-vmcheckpoint, restore-vmcheckpoint, revert-vm, remove-vmcheckpoint,
rename-vmcheckpoint and get-vmcheckpoint-chain.

A checkpoint is named by its id or by its name. Names need not be unique (Hyper-V allows
duplicates): a name that several checkpoints share is refused with their ids, so that the user can
give one of those instead. Each verb takes the parsed arguments and a ``Context`` and returns an
exit code; every failure is an ``HvError`` raised before anything is changed.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shlex
from collections.abc import Iterator, Sequence
from typing import Any

from hvmanager.backend import checkpoint_chain, checkpoints
from hvmanager.backend.checkpoint_journal import ChainBusyError, is_locked
from hvmanager.backend.checkpoint_tree import Checkpoint, CheckpointTree
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.formatting import format_bytes, format_created
from hvmanager.cli import output
from hvmanager.cli.context import Context, find_vm
from hvmanager.cli.state_commands import state_record

GET_VMCHECKPOINT_HEADERS = ("VMName", "Name", "SnapshotType", "CreationTime", "ParentSnapshotName")
CHAIN_HEADERS = ("File", "Format", "FileSize", "VirtualSize", "Owner")
NOW_LABEL = "Now"
INDENT = "  "  # per tree level in get-vmcheckpoint's Name column

_GLOB_CHARS = re.compile(r"[*?\[]")


class CheckpointNotFoundError(HvError):
    """No checkpoint of that name or id."""


# --- finding the VM and the checkpoint ----------------------------------------------------------


def _local_vm(ctx: Context, name: str) -> Any:
    """The VM, once it is known that checkpoints can be managed on this server."""
    checkpoints.require_local(ctx.server.local)
    return find_vm(ctx, name)


def _list_hint(vm_name: str) -> str:
    return f"List its checkpoints with: hvctl get-vmcheckpoint {shlex.quote(vm_name)}"


def find_checkpoint(tree: CheckpointTree, text: str, vm_name: str) -> Checkpoint:
    """The visible checkpoint whose id is ``text``, or the only one named ``text``.

    A name several checkpoints share is refused with their ids (``ValidationError``); an unknown
    name or id raises ``CheckpointNotFoundError``.
    """
    by_id = tree.checkpoints.get(text)
    if by_id is not None and not by_id.hidden:
        return by_id
    named = tree.by_name(text)
    if len(named) == 1:
        return named[0]
    if named:
        listing = "; ".join(f"{c.id} (created {format_created(c.created)})" for c in named)
        raise ValidationError(
            f"{len(named)} checkpoints of '{vm_name}' are named '{text}': {listing}.",
            "Give the id of the one you mean instead of its name.",
        )
    raise CheckpointNotFoundError(f"'{vm_name}' has no checkpoint named '{text}'.", _list_hint(vm_name))


def select_checkpoints(tree: CheckpointTree, pattern: str, vm_name: str) -> list[Checkpoint]:
    """Checkpoints for ``get-vmcheckpoint --name``: an id, every one with a name, or a wildcard.

    An exact name or id that matches nothing is an error; a wildcard that matches nothing is not
    (``Get-VMSnapshot -Name x*`` returns nothing without an error).
    """
    if _GLOB_CHARS.search(pattern):
        return [c for c in tree.visible() if fnmatch.fnmatchcase(c.name, pattern)]
    by_id = tree.checkpoints.get(pattern)
    if by_id is not None and not by_id.hidden:
        return [by_id]
    named = tree.by_name(pattern)
    if not named:
        raise CheckpointNotFoundError(
            f"'{vm_name}' has no checkpoint named '{pattern}'.", _list_hint(vm_name)
        )
    return named


# --- records and tables -------------------------------------------------------------------------


def checkpoint_record(tree: CheckpointTree, checkpoint: Checkpoint) -> dict[str, Any]:
    """One checkpoint as the checkpoint verbs print it with ``--json``."""
    parent_id = tree.visible_parent(checkpoint.id)
    return {
        "id": checkpoint.id,
        "name": checkpoint.name,
        "parent_id": parent_id,
        "parent_name": tree.get(parent_id).name if parent_id else None,
        "created": checkpoint.created.isoformat(),
        "type": checkpoint.kind,
        "memory": checkpoint.memory,
        "vm_state": checkpoint.vm_state,
        "children": [c.id for c in tree.visible_children(checkpoint.id)],
    }


def tree_record(vm: Any, tree: CheckpointTree, shown: Sequence[Checkpoint]) -> dict[str, Any]:
    """``get-vmcheckpoint --json``: the VM, where Now hangs, and the checkpoints (oldest first)."""
    return {
        "vm_name": vm.name(),
        "vm_uuid": vm.UUIDString(),
        "now": tree.now_parent(),
        "checkpoints": [checkpoint_record(tree, c) for c in shown],
    }


def tree_lines(tree: CheckpointTree) -> Iterator[tuple[int, Checkpoint | None]]:
    """The tree as Hyper-V's Checkpoints pane shows it, depth first: (depth, checkpoint), with
    ``None`` for the Now marker, which comes last under the checkpoint it derives from."""
    now_parent = tree.now_parent()

    def walk(parent: str | None, depth: int) -> Iterator[tuple[int, Checkpoint | None]]:
        for child in tree.visible_children(parent):
            yield depth, child
            yield from walk(child.id, depth + 1)
        if parent == now_parent:
            yield depth, None

    yield from walk(None, 0)


def _row(vm_name: str, tree: CheckpointTree, checkpoint: Checkpoint, depth: int) -> list[object]:
    parent_id = tree.visible_parent(checkpoint.id)
    return [
        vm_name,
        INDENT * depth + checkpoint.name,
        checkpoint.kind,
        format_created(checkpoint.created),
        tree.get(parent_id).name if parent_id else "",
    ]


def tree_table(vm_name: str, tree: CheckpointTree) -> str:
    """The whole tree as a ``Get-VMSnapshot`` table, indented, with the Now marker."""
    if not tree.visible():
        return ""
    rows: list[list[object]] = []
    for depth, checkpoint in tree_lines(tree):
        if checkpoint is not None:
            rows.append(_row(vm_name, tree, checkpoint, depth))
        else:
            parent = tree.now_parent()
            parent_name = tree.get(parent).name if parent else ""
            rows.append([vm_name, INDENT * depth + NOW_LABEL, "", "", parent_name])
    return output.format_table(GET_VMCHECKPOINT_HEADERS, rows)


def flat_table(vm_name: str, tree: CheckpointTree, shown: Sequence[Checkpoint]) -> str:
    """Some checkpoints (``--name``) as a ``Get-VMSnapshot`` table, without the tree."""
    return output.format_table(GET_VMCHECKPOINT_HEADERS, [_row(vm_name, tree, c, 0) for c in shown])


def chain_record(chain: checkpoint_chain.DiskChain) -> dict[str, Any]:
    """One disk's chain as ``get-vmcheckpoint-chain --json`` prints it (top file first)."""
    return {
        "target": chain.target,
        "total_size": chain.total_size,
        "files": [
            {
                "file": link.file,
                "format": link.format,
                "file_size": link.file_size,
                "virtual_size": link.virtual_size,
                "owner": link.owner,
                "owner_id": link.owner_id,
            }
            for link in chain.links
        ],
    }


def chain_text(chains: Sequence[checkpoint_chain.DiskChain]) -> str:
    """Each disk's chain: a heading and a table of its files, the one written to first."""
    blocks = []
    for chain in chains:
        count = len(chain.links)
        heading = (
            f"Disk {chain.target}: {count} file{'s' if count != 1 else ''}, "
            f"{format_bytes(chain.total_size)} on the host"
        )
        rows = [
            [
                link.file,
                link.format,
                format_bytes(link.file_size),
                format_bytes(link.virtual_size),
                link.owner,
            ]
            for link in chain.links
        ]
        blocks.append(f"{heading}\n{output.format_table(CHAIN_HEADERS, rows)}")
    return "\n\n".join(blocks)


# Kept under its old name: the progress printer moved to ``output`` (the disk verbs use it too).
MergeProgressLine = output.ProgressLine


# --- the verbs ----------------------------------------------------------------------------------


def checkpoint_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``checkpoint-vm VM [--name NAME]`` (Checkpoint-VM)."""
    dom = _local_vm(ctx, args.vm)
    result = checkpoints.take(ctx.conn, dom, args.name)
    if result.fallback_reason:
        ctx.warn(result.fallback_reason)
    tree = checkpoints.load_tree(dom)
    if ctx.json:
        record = checkpoint_record(tree, result.checkpoint)
        output.write_json(ctx.out, {**record, "fallback_reason": result.fallback_reason or None})
    else:
        checkpoint = result.checkpoint
        ctx.say(f"Created {checkpoint.kind.lower()} checkpoint '{checkpoint.name}' of '{dom.name()}'.")
        ctx.say(f"  Id: {checkpoint.id}")
    return 0


def get_vmcheckpoint(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmcheckpoint VM [--name NAME]`` (Get-VMSnapshot)."""
    dom = _local_vm(ctx, args.vm)
    tree = checkpoints.load_tree(dom)
    name = dom.name()
    shown = tree.visible() if args.name is None else select_checkpoints(tree, args.name, name)
    if ctx.json:
        output.write_json(ctx.out, tree_record(dom, tree, shown))
    elif args.name is None:
        output.write_text(ctx.out, tree_table(name, tree))
    else:
        output.write_text(ctx.out, flat_table(name, tree, shown))
    if not shown and not ctx.json:
        ctx.note(f"'{name}' has no checkpoints" + (f" matching '{args.name}'." if args.name else "."))
    return 0


def _report_applied(
    ctx: Context, dom: Any, applied: Checkpoint, taken: checkpoints.TakeResult | None
) -> None:
    if taken is not None and taken.fallback_reason:
        ctx.warn(taken.fallback_reason)
    tree = checkpoints.load_tree(dom)
    state = state_record(dom)
    if ctx.json:
        output.write_json(
            ctx.out,
            {
                **state,
                "applied": checkpoint_record(tree, applied),
                "taken": checkpoint_record(tree, taken.checkpoint) if taken is not None else None,
            },
        )
        return
    if taken is not None:
        ctx.say(f"Created checkpoint '{taken.checkpoint.name}' (Id {taken.checkpoint.id}) first.")
    ctx.say(f"Applied checkpoint '{applied.name}' to '{dom.name()}'; it is now {state['state']}.")


def restore_vmcheckpoint(ctx: Context, args: argparse.Namespace) -> int:
    """``restore-vmcheckpoint VM CHECKPOINT [--take-checkpoint-first]`` (Restore-VMSnapshot)."""
    dom = _local_vm(ctx, args.vm)
    checkpoint = find_checkpoint(checkpoints.load_tree(dom), args.checkpoint, dom.name())
    taken = checkpoints.apply(ctx.conn, dom, checkpoint.id, take_first=args.take_checkpoint_first)
    _report_applied(ctx, dom, checkpoint, taken)
    return 0


def revert_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``revert-vm VM``: apply the checkpoint the current state derives from (Revert)."""
    dom = _local_vm(ctx, args.vm)
    applied = checkpoints.revert(ctx.conn, dom)
    _report_applied(ctx, dom, applied, None)
    return 0


def _check_space(ctx: Context, estimate: checkpoints.MergeEstimate, force: bool) -> None:
    """Say what the merge may need, and refuse when it is more than is free (unless forced)."""
    if not estimate.folder:
        return
    needed, free = format_bytes(estimate.needed_bytes), format_bytes(estimate.free_bytes)
    ctx.say(f"Merging may need up to {needed} in {estimate.folder} ({free} free).")
    if estimate.enough:
        return
    if force:
        ctx.warn(f"Only {free} is free in {estimate.folder}; merging anyway (--force).")
        return
    raise HvError(
        f"Not deleting: merging may need up to {needed} in {estimate.folder}, and only {free} is free.",
        "Free some space there and try again, or add --force to merge anyway.",
    )


def remove_vmcheckpoint(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vmcheckpoint VM CHECKPOINT [--subtree] [--no-wait] [--force]`` (Remove-VMSnapshot)."""
    dom = _local_vm(ctx, args.vm)
    tree = checkpoints.load_tree(dom)
    checkpoint = find_checkpoint(tree, args.checkpoint, dom.name())
    below = [c for c in tree.descendants(checkpoint.id) if not c.hidden] if args.subtree else []
    estimate = checkpoints.delete_estimate(dom, checkpoint.id, args.subtree)
    _check_space(ctx, estimate, args.force)
    if not args.no_wait and is_locked(dom.UUIDString()):
        ctx.note(f"Another checkpoint operation is running on '{dom.name()}'; waiting for it to end.")
    progress = MergeProgressLine(ctx.err)
    try:
        checkpoints.delete(
            ctx.conn, dom, checkpoint.id, args.subtree, progress=progress, wait=not args.no_wait
        )
    except ChainBusyError as exc:
        exc.hint = "Try again once it has ended, or leave out --no-wait to wait for it."
        raise
    finally:
        progress.finish()
    removed = [checkpoint, *below]
    if ctx.json:
        output.write_json(
            ctx.out,
            {
                "vm_name": dom.name(),
                "removed": [{"id": c.id, "name": c.name} for c in removed],
                "estimate": {
                    "needed_bytes": estimate.needed_bytes,
                    "free_bytes": estimate.free_bytes,
                    "folder": estimate.folder,
                },
            },
        )
    else:
        more = f", and the {len(below)} checkpoint{'s' if len(below) != 1 else ''} below it" if below else ""
        ctx.say(f"Deleted checkpoint '{checkpoint.name}' of '{dom.name()}'{more}.")
    return 0


def rename_vmcheckpoint(ctx: Context, args: argparse.Namespace) -> int:
    """``rename-vmcheckpoint VM CHECKPOINT NEWNAME`` (Rename-VMSnapshot)."""
    dom = _local_vm(ctx, args.vm)
    checkpoint = find_checkpoint(checkpoints.load_tree(dom), args.checkpoint, dom.name())
    checkpoints.rename(dom, checkpoint.id, args.new_name)
    if ctx.json:
        tree = checkpoints.load_tree(dom)
        record = checkpoint_record(tree, tree.get(checkpoint.id))
        output.write_json(ctx.out, {"old_name": checkpoint.name, **record})
    else:
        ctx.say(f"Renamed checkpoint '{checkpoint.name}' of '{dom.name()}' to '{args.new_name}'.")
    return 0


def get_vmcheckpoint_chain(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmcheckpoint-chain VM [--checkpoint CHECKPOINT]``: the files behind each disk."""
    dom = _local_vm(ctx, args.vm)
    checkpoint_id = None
    if args.checkpoint is not None:
        checkpoint_id = find_checkpoint(checkpoints.load_tree(dom), args.checkpoint, dom.name()).id
    chains = checkpoint_chain.disk_chains(dom, checkpoint_id)
    if ctx.json:
        output.write_json(ctx.out, [chain_record(c) for c in chains])
    else:
        output.write_text(ctx.out, chain_text(chains))
        if not chains:
            ctx.note(f"'{dom.name()}' has no virtual hard disk files.")
    return 0
