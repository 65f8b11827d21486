"""Inspect Disk ("Virtual Hard Disk Properties"): its fields against ``qemu-img info`` (the
independent observer), a fixed VHD written by another tool (recognised by its footer only), the
parent chain with Inspect Parent and Reconnect..., who uses the disk, and the main window's
Actions ▸ Inspect Disk.
"""

from __future__ import annotations

import os
import shutil
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt
import pytest
from PySide6.QtWidgets import QLabel, QPushButton, QTreeWidget

from hvmanager.backend import limits
from hvmanager.controllers.disks import DiskController
from hvmanager.ui.disk_commands import open_inspect_dialog
from hvmanager.ui.edit_disk_wizard import EditDiskPage, EditDiskWizard
from hvmanager.ui.inspect_disk_dialog import InspectDiskDialog
from hvmanager.ui.new_vm_wizard_base import FileDialogs
from tests.conftest import vm_name
from tests.gui import disk_helpers
from tests.gui.conftest import Runner, settle, wait_until
from tests.gui.disk_helpers import (
    MIB,
    click,
    edit,
    find,
    finish,
    qemu_create,
    qemu_info,
    retype,
    shot,
)
from tests.support.vhd_writer import write_fixed

disks = disk_helpers.connected_disks


DialogFactory = Callable[[Path], InspectDiskDialog]


@pytest.fixture
def inspect(qtbot: Any, disks: DiskController) -> DialogFactory:
    """Open the properties of a disk (inside the test's async body: they are read at once)."""

    def _open(path: Path) -> InspectDiskDialog:
        dialog = open_inspect_dialog(disks, str(path))
        qtbot.addWidget(dialog)
        return dialog

    return _open


def value(dialog: InspectDiskDialog, key: str) -> str:
    """A field's text, without the zero-width spaces that let long paths wrap."""
    return find(dialog, QLabel, f"{key}Value").text().replace("\u200b", "")


def exact(size: int) -> str:
    return f"{limits.human_size(size)} ({size:,} bytes)"


def chain_rows(dialog: InspectDiskDialog) -> list[tuple[str, str, str]]:
    tree = find(dialog, QTreeWidget, "parentChain")
    items = [tree.topLevelItem(row) for row in range(tree.topLevelItemCount())]
    return [(item.text(0), item.text(1), item.text(2)) for item in items]


@pytest.mark.parametrize(
    ("name", "fmt", "options", "label", "kind"),
    [
        ("dynamic.qcow2", "qcow2", (), "QCOW2", "Dynamically expanding"),
        ("fixed.img", "raw", ("-o", "preallocation=falloc"), "RAW", "Fixed size"),
        ("dynamic.vhdx", "vhdx", (), "VHDX", "Dynamically expanding"),
        ("dynamic.vhd", "vpc", ("-o", "force_size=on"), "VHD", "Dynamically expanding"),
        ("sparse.img", "raw", (), "RAW", "Dynamically expanding"),
    ],
)
def test_fields_match_qemu_img_info(
    run: Runner,
    inspect: DialogFactory,
    tmp_path: Path,
    name: str,
    fmt: str,
    options: Any,
    label: str,
    kind: str,
) -> None:
    disk = qemu_create(tmp_path / name, fmt, "16M", *options)
    observed = qemu_info(disk, fmt)

    async def body() -> None:
        dialog = inspect(disk)
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert dialog.windowTitle() == "Virtual Hard Disk Properties"
        assert value(dialog, "format") == label
        assert value(dialog, "type") == f"{kind} virtual hard disk"
        assert value(dialog, "location") == str(tmp_path)
        assert value(dialog, "fileName") == name
        assert value(dialog, "maximumSize") == exact(observed["virtual-size"])
        assert value(dialog, "fileSize") == exact(observed["actual-size"])
        assert value(dialog, "minimumSize") == exact(limits.DISK_MIN_BYTES)  # no data: the smallest disk
        if fmt == "qcow2" and kind != "Fixed size":
            assert value(dialog, "blockSize") == exact(observed["cluster-size"])
        assert value(dialog, "logicalSector") == "512 bytes"
        assert not find(dialog, QLabel, "parentValue").isVisible()
        assert find(dialog, QLabel, "usageLabel").text() == "No virtual machine uses this disk."
        shot(dialog, f"inspect-disk-{name.replace('.', '-')}")
        await settle()

    run(body)


def test_a_fixed_vhd_made_by_another_tool(run: Runner, inspect: DialogFactory, tmp_path: Path) -> None:
    disk = tmp_path / "other-tool.vhd"
    identifier = uuid.uuid4()
    write_fixed(disk, 8 * MIB, {0: b"\x55" * 512}, identifier)

    async def body() -> None:
        dialog = inspect(disk)
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert value(dialog, "format") == "VHD"
        assert value(dialog, "type") == "Fixed size virtual hard disk"
        assert value(dialog, "maximumSize") == exact(8 * MIB)
        assert value(dialog, "blockSize") == "0 (none: all space is allocated)"
        assert value(dialog, "identifier").lower() == str(identifier)
        await settle()

    run(body)
    assert qemu_info(disk, "vpc")["virtual-size"] == 8 * MIB


def test_parent_chain_and_inspect_parent(
    run: Runner, inspect: DialogFactory, tmp_path: Path, qtbot: Any
) -> None:
    base = qemu_create(tmp_path / "base.vhdx", "vhdx", "16M")
    middle = qemu_create(tmp_path / "middle.qcow2", "qcow2", "16M", "-b", str(base), "-F", "vhdx")
    child = qemu_create(tmp_path / "child.qcow2", "qcow2", "16M", "-b", str(middle), "-F", "qcow2")

    async def body() -> None:
        dialog = inspect(child)
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert value(dialog, "type") == "Differencing virtual hard disk"
        assert value(dialog, "parent") == qemu_info(child, "qcow2")["backing-filename"]
        assert chain_rows(dialog) == [(str(middle), "QCOW2", "Yes"), (str(base), "VHDX", "Yes")]
        assert not find(dialog, QPushButton, "reconnectButton").isVisible()
        shot(dialog, "inspect-disk-differencing")
        click(qtbot, find(dialog, QPushButton, "inspectParentButton"))
        parent_dialog = dialog.findChild(InspectDiskDialog)
        assert parent_dialog is not None
        await wait_until(parent_dialog.loaded, 20, "the parent to be read")
        assert value(parent_dialog, "fileName") == "middle.qcow2"
        assert chain_rows(parent_dialog) == [(str(base), "VHDX", "Yes")]
        await settle()

    run(body)


def test_missing_parent_and_reconnect(
    run: Runner, inspect: DialogFactory, tmp_path: Path, qtbot: Any
) -> None:
    base = qemu_create(tmp_path / "base.qcow2", "qcow2", "16M")
    child = qemu_create(tmp_path / "child.qcow2", "qcow2", "16M", "-b", str(base), "-F", "qcow2")
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(base, moved / "base.qcow2")

    async def body() -> None:
        dialog = inspect(child)
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert value(dialog, "parent") == f"{base}  (missing)"
        assert chain_rows(dialog) == [(str(base), "?", "Missing")]
        assert not find(dialog, QPushButton, "inspectParentButton").isVisible()
        shot(dialog, "inspect-disk-missing-parent")
        click(qtbot, find(dialog, QPushButton, "reconnectButton"))
        wizard = dialog.findChild(EditDiskWizard)
        assert wizard is not None
        await wait_until(lambda: wizard.currentId() == EditDiskPage.CONFIGURE, 20, "the Reconnect page")
        assert wizard.currentPage().title() == "Reconnect Virtual Hard Disk"
        retype(qtbot, edit(wizard, "newParentEdit"), str(moved / "base.qcow2"))
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await wait_until(
            lambda: dialog.loaded() and find(dialog, QPushButton, "inspectParentButton").isVisible()
        )
        assert chain_rows(dialog) == [(str(moved / "base.qcow2"), "QCOW2", "Yes")]
        await settle()

    run(body)
    assert qemu_info(child, "qcow2")["backing-filename"] == str(moved / "base.qcow2")


def _vm_xml(name: str, disk: Path) -> str:
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = "64"
    os_node = ET.SubElement(domain, "os")
    ET.SubElement(os_node, "type", arch="x86_64", machine="pc").text = "hvm"
    devices = ET.SubElement(domain, "devices")
    element = ET.SubElement(devices, "disk", type="file", device="disk")
    ET.SubElement(element, "driver", name="qemu", type="qcow2")
    ET.SubElement(element, "source", file=str(disk))
    ET.SubElement(element, "target", dev="vdb", bus="virtio")
    return ET.tostring(domain, encoding="unicode")


def test_used_by(run: Runner, inspect: DialogFactory, clean_domains: str, vm_location: Path) -> None:
    disk = qemu_create(vm_location / "shared.qcow2", "qcow2", "16M")
    name = vm_name("inspect-used-by")
    conn = libvirt.open(clean_domains)
    try:
        conn.defineXML(_vm_xml(name, disk))
    finally:
        conn.close()

    async def body() -> None:
        dialog = inspect(disk)
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert find(dialog, QLabel, "usageLabel").text() == f"Used by '{name}' (not running, vdb)."
        await settle()

    run(body)


def test_unreadable_disk(run: Runner, inspect: DialogFactory, tmp_path: Path) -> None:
    async def body() -> None:
        dialog = inspect(tmp_path / "nothing.vhdx")
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert find(dialog, QLabel, "statusLabel").text() == (
            f"The disk can't be inspected: '{tmp_path / 'nothing.vhdx'}' does not exist.\n"
            "Check the path of the virtual hard disk."
        )
        assert value(dialog, "format") == ""
        await settle()

    run(body)


def test_opens_from_the_main_window(
    run: Runner, make_window: Any, libvirtd: str, tmp_path: Path, monkeypatch: Any
) -> None:
    disk = qemu_create(tmp_path / "data.vhdx", "vhdx", "16M")
    asked: list[str] = []

    def choose_file(_parent: Any, caption: str, start: str, filters: str) -> str:
        asked.append(caption)
        return str(disk)

    monkeypatch.setattr(FileDialogs, "choose_file", staticmethod(choose_file))
    window = make_window(libvirtd)

    async def body() -> None:
        await wait_until(lambda: window.app_actions.inspect_disk.isEnabled(), 30, "the server to connect")
        window.app_actions.inspect_disk.trigger()
        dialog = window.disk_commands.last_dialog
        assert isinstance(dialog, InspectDiskDialog)
        await wait_until(dialog.loaded, 20, "the disk to be read")
        assert value(dialog, "format") == "VHDX"
        assert value(dialog, "maximumSize") == exact(16 * MIB)
        dialog.close()
        await settle()

    run(body)
    assert asked == ["Open"]
    assert os.path.exists(disk)
