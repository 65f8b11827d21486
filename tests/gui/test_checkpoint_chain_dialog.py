"""The disk chain window on real chains: a VM (off) on the system libvirt daemon, data written with
``qemu-io``, checkpoints taken with the backend; the rows the window shows are compared with what
``qemu-img info --backing-chain`` reports for the disk ``virsh domblklist`` names.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel, QTreeWidget, QTreeWidgetItem
from pytestqt.qtbot import QtBot

from hvmanager.backend import checkpoints, creation
from hvmanager.backend.checkpoint_chain import BASE_OWNER, PENDING_OWNER, DiskChain, disk_chains
from hvmanager.backend.checkpoint_merge import MergeEstimate
from hvmanager.backend.connection import Server
from hvmanager.backend.formatting import format_bytes
from hvmanager.backend.limits import MIB
from hvmanager.backend.models import MemoryConfig, NewDisk, VmSpec
from hvmanager.ui.checkpoint_chain_dialog import (
    BYTES_ROLE,
    FILE,
    FILE_SIZE,
    FORMAT,
    OWNER,
    VIRTUAL_SIZE,
    CheckpointChainDialog,
)
from tests.conftest import vm_name
from tests.vm.helpers import backing_chain

QEMU_FORMAT_LABELS = {"qcow2": "QCOW2", "raw": "RAW", "vpc": "VHD"}


@dataclass(frozen=True)
class OffVm:
    server: Server
    dom: Any
    name: str


@pytest.fixture
def off_vm(clean_domains: str, vm_location: Path, request: pytest.FixtureRequest) -> Iterator[OffVm]:
    """A VM that stays off, with a new 1 GB QCOW2 disk."""
    server = Server(clean_domains)
    server.open()
    name = vm_name(request.node.name.removeprefix("test_")[:30])
    spec = VmSpec(name=name, location=str(vm_location), memory=MemoryConfig(128), disk=NewDisk(1))
    uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    yield OffVm(server, server.lookup(uuid), name)
    server.close()


# --- independent observers ----------------------------------------------------------------------


def active_file(name: str, target: str = "hda") -> str:
    """The file ``virsh domblklist`` says the disk runs on."""
    out = subprocess.run(
        ["virsh", "-c", "qemu:///system", "domblklist", name], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == target:
            return parts[1].strip()
    raise AssertionError(f"no disk {target} in {out}")


def write(file: str, pattern: int, offset_mib: int, length_mib: int) -> None:
    """Write a pattern into an image (the VM is off) so each file of the chain holds data."""
    command = f"write -P {pattern} {offset_mib}M {length_mib}M"
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, file], capture_output=True, check=True)


# --- reading the window -------------------------------------------------------------------------


def open_dialog(qtbot: QtBot, chains: list[DiskChain], **kwargs: Any) -> CheckpointChainDialog:
    dialog = CheckpointChainDialog("Disk chain of the VM", chains, **kwargs)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def disk_rows(dialog: CheckpointChainDialog) -> list[QTreeWidgetItem]:
    tree = dialog.findChild(QTreeWidget, "chainTree")
    assert tree is not None
    rows = (tree.topLevelItem(i) for i in range(tree.topLevelItemCount()))
    return [row for row in rows if row is not None]


def file_rows(disk: QTreeWidgetItem) -> list[QTreeWidgetItem]:
    rows = (disk.child(i) for i in range(disk.childCount()))
    return [row for row in rows if row is not None]


def estimate_label(dialog: CheckpointChainDialog) -> QLabel:
    label = dialog.findChild(QLabel, "mergeEstimateLabel")
    assert label is not None
    return label


def assert_matches_qemu_img(disk: QTreeWidgetItem, chain: list[dict[str, Any]], owners: list[str]) -> None:
    """Every file row shows what qemu-img reports for that file, in chain order."""
    rows = file_rows(disk)
    assert len(rows) == len(chain) == len(owners)
    for row, entry, owner in zip(rows, chain, owners, strict=True):
        assert row.toolTip(FILE) == entry["filename"]
        assert row.text(FILE) == Path(entry["filename"]).name
        assert row.text(FORMAT) == QEMU_FORMAT_LABELS[entry["format"]]
        assert row.data(FILE_SIZE, BYTES_ROLE) == entry["actual-size"]
        assert row.text(FILE_SIZE) == format_bytes(entry["actual-size"])
        assert row.text(VIRTUAL_SIZE) == format_bytes(entry["virtual-size"]) == "1 GB"
        assert row.text(OWNER) == owner
    total = sum(entry["actual-size"] for entry in chain)
    assert disk.data(FILE_SIZE, BYTES_ROLE) == total
    assert disk.text(FILE_SIZE) == format_bytes(total)


# --- tests --------------------------------------------------------------------------------------


def test_a_disk_without_checkpoints_is_its_base_disk(qtbot: QtBot, off_vm: OffVm) -> None:
    write(active_file(off_vm.name), 0x11, 0, 3)

    dialog = open_dialog(qtbot, disk_chains(off_vm.dom))

    (disk,) = disk_rows(dialog)
    assert disk.text(FILE) == "Disk hda"
    assert disk.text(OWNER) == "1 file"
    assert_matches_qemu_img(disk, backing_chain(active_file(off_vm.name)), [BASE_OWNER])
    assert dialog.windowTitle() == "Disk chain of the VM"
    assert not estimate_label(dialog).isVisible()


def test_the_chain_shows_now_and_each_checkpoint_with_its_file(qtbot: QtBot, off_vm: OffVm) -> None:
    conn, dom, name = off_vm.server.conn, off_vm.dom, off_vm.name
    write(active_file(name), 0x11, 0, 4)
    first = checkpoints.take(conn, dom, "Before the update").checkpoint
    write(active_file(name), 0x22, 8, 2)
    second = checkpoints.take(conn, dom, "After the update").checkpoint
    write(active_file(name), 0x33, 16, 1)
    estimate = checkpoints.delete_estimate(dom, first.id)

    dialog = open_dialog(qtbot, disk_chains(dom), estimate=(first.name, estimate))

    (disk,) = disk_rows(dialog)
    chain = backing_chain(active_file(name))
    assert len(chain) == 3
    assert disk.text(OWNER) == "3 files"
    assert_matches_qemu_img(disk, chain, ["Now", "After the update", "Before the update"])
    # Deleting the first checkpoint merges the file of the second one (its only reader) into it.
    reader_size = chain[1]["actual-size"]
    assert estimate.needed_bytes == reader_size
    label = estimate_label(dialog)
    assert label.isVisible()
    assert label.text() == (
        f"Deleting 'Before the update' may need up to {format_bytes(reader_size)}; "
        f"{format_bytes(estimate.free_bytes)} free on {Path(chain[2]['filename']).parent}."
    )
    assert second.name == "After the update"


def test_a_deleted_checkpoint_two_branches_read_shows_as_waiting_for_its_merge(
    qtbot: QtBot, off_vm: OffVm
) -> None:
    conn, dom, name = off_vm.server.conn, off_vm.dom, off_vm.name
    write(active_file(name), 0x11, 0, 2)
    base = checkpoints.take(conn, dom, "Base").checkpoint
    write(active_file(name), 0x22, 4, 2)
    checkpoints.take(conn, dom, "Branch")
    checkpoints.apply(conn, dom, base.id)  # Now reads the base again: a second branch
    checkpoints.delete(conn, dom, base.id)

    dialog = open_dialog(qtbot, disk_chains(dom))

    (disk,) = disk_rows(dialog)
    assert_matches_qemu_img(disk, backing_chain(active_file(name)), ["Now", PENDING_OWNER])


def test_the_estimate_warns_when_the_space_is_short(qtbot: QtBot) -> None:
    estimate = MergeEstimate(needed_bytes=3 * 1024 * MIB, free_bytes=512 * MIB, folder="/srv/vms")

    dialog = open_dialog(qtbot, [], estimate=("Nightly", estimate))

    label = estimate_label(dialog)
    assert label.text() == (
        "Deleting 'Nightly' may need up to 3 GB; 512 MB free on /srv/vms. "
        "That is not enough: free some space before deleting it."
    )
    assert "#b3261e" in label.styleSheet()
    (row,) = disk_rows(dialog)
    assert row.text(FILE) == "This virtual machine has no virtual hard disk files."
