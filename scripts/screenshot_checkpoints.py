"""The checkpoint pictures of the documentation (called by scripts/screenshots.py): a branched
tree with Now on a running guest, a selected checkpoint, the Apply and Delete dialogs, the disk
chain, and a merge in progress in the Status column.

Everything is real: the checkpoints are taken, applied and merged on the demo guests with the
backend, and the pictures are grabbed from the real windows.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import libvirt
from PySide6.QtWidgets import QWidget

from hvmanager.backend import checkpoint_chain, checkpoints
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.checkpoint_chain_dialog import CheckpointChainDialog
from hvmanager.ui.checkpoint_dialogs import ApplyCheckpointDialog, DeleteCheckpointDialog
from hvmanager.ui.main_window import MainWindow

Save = Callable[[QWidget, str], Awaitable[None]]
Until = Callable[..., Awaitable[Any]]

URI = "qemu:///system"
MERGE_GIB = 2  # data written into the overlay, so that the merge lasts long enough to be seen


def _branched_tree(name: str) -> dict[str, str]:
    """On a running VM: Fresh install → Before updates → {Updates installed, Testing new kernel → Now}."""
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(name)
        ids = {}
        for label in ("Fresh install", "Before updates", "Updates installed"):
            ids[label] = checkpoints.take(conn, dom, label).checkpoint.id
        checkpoints.apply(conn, dom, ids["Before updates"])  # back to its memory: still running
        ids["Testing new kernel"] = checkpoints.take(conn, dom, "Testing new kernel").checkpoint.id
        return ids
    finally:
        conn.close()


def _chains_and_estimate(name: str, checkpoint_id: str) -> tuple[list[Any], Any]:
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(name)
        return checkpoint_chain.disk_chains(dom), checkpoints.delete_estimate(dom, checkpoint_id)
    finally:
        conn.close()


def _checkpoint_with_data(name: str) -> str:
    """On an Off VM: a checkpoint, then MERGE_GIB GiB written into its overlay with qemu-io."""
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(name)
        taken = checkpoints.take(conn, dom, "Baseline").checkpoint
        overlay = next(iter(checkpoints.load_tree(dom).now_images.values())).file
    finally:
        conn.close()
    commands = []
    for chunk in range(MERGE_GIB * 4):  # qemu-io takes at most about 2 GiB per request
        commands += ["-c", f"write -P 0x5a {chunk * 256}M 256M"]
    subprocess.run(["qemu-io", "-f", "qcow2", *commands, overlay], check=True, capture_output=True)
    return taken.id


def _uuid_of(window: MainWindow, name: str) -> str:
    controller = window.manager.servers[URI]
    return next(u for u, info in controller.vms.items() if info.name == name)


async def checkpoint_shots(window: MainWindow, save: Save, until: Until) -> None:
    """Every checkpoint picture."""
    ids = await asyncio.to_thread(_branched_tree, "Web Server")
    uuid = _uuid_of(window, "Web Server")
    window.select_vm(uuid)
    pane = window.checkpoints
    await until(lambda: pane.select(ids["Testing new kernel"]) and _shown(pane) >= 5)
    pane.clear_selection()
    window.select_vm(uuid)
    pane.tree.scrollToTop()
    await asyncio.sleep(1.0)
    await save(window, "checkpoints-tree")
    pane.select(ids["Updates installed"])
    pane.tree.scrollToTop()
    await asyncio.sleep(1.0)  # its screen picture is read in the background
    await save(window, "checkpoint-selected")

    dialog: QWidget = ApplyCheckpointDialog("Updates installed", window)
    dialog.show()
    await save(dialog, "checkpoint-apply")
    dialog.close()

    chains, estimate = await asyncio.to_thread(_chains_and_estimate, "Web Server", ids["Testing new kernel"])
    dialog = CheckpointChainDialog(
        "Disk Chain - Web Server", chains, window, estimate=("Testing new kernel", estimate)
    )
    dialog.resize(900, 380)
    dialog.show()
    await save(dialog, "checkpoint-disk-chain")
    dialog.close()
    dialog = DeleteCheckpointDialog("Testing new kernel", False, estimate, window)
    dialog.show()
    await save(dialog, "checkpoint-delete")
    dialog.close()
    await merge_shot(window, save, until)


def _shown(pane: Any) -> int:
    """Rows the checkpoint tree shows (checkpoints and Now, at every depth)."""
    model = pane.tree.model()
    count, stack = 0, [model.index(r, 0) for r in range(model.rowCount())]
    while stack:
        index = stack.pop()
        count += 1
        stack.extend(model.index(r, 0, index) for r in range(model.rowCount(index)))
    return count


async def merge_shot(window: MainWindow, save: Save, until: Until) -> None:
    """A delete merging 2 GiB, grabbed while the Status column shows its progress."""
    checkpoint_id = await asyncio.to_thread(_checkpoint_with_data, "Test Lab")
    controller = window.manager.servers[URI]
    uuid = _uuid_of(window, "Test Lab")
    window.select_vm(uuid)
    spawn(controller.checkpoints.delete(uuid, checkpoint_id, False))
    await until(lambda: _merge_percent(controller.checkpoints.status_text(uuid)) >= 15, timeout=120)
    await save(window, "checkpoint-merging")
    await until(lambda: not controller.checkpoints.busy(uuid), timeout=300)


def _merge_percent(status: str) -> float:
    if "Merging (" not in status:
        return -1.0
    return float(status.split("Merging (", 1)[1].split("%", 1)[0].strip())

