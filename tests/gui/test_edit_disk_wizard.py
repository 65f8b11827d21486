"""The Edit Virtual Hard Disk wizard, driven through its real buttons, radio buttons and fields.

Each action runs on real images made with qemu-img and written with qemu-io; the results are
checked with ``qemu-img info`` / ``compare`` against copies taken before (the independent observer),
and ``virsh domblkinfo`` for the online expand of a running VM's disk. Every validation message is
checked on its page with Next and Finish disabled. Pages are rendered to /tmp/h4-shots/.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QListWidget,
    QMessageBox,
    QPushButton,
    QTextEdit,
)

from hvmanager.backend import limits, vhd
from hvmanager.backend.vhd_types import DiskType, EditAction, NewVhd
from hvmanager.controllers.disks import DiskController
from hvmanager.ui.disk_commands import open_edit_disk_wizard
from hvmanager.ui.edit_disk_wizard import EditDiskPage, EditDiskWizard
from hvmanager.ui.new_vm_wizard_base import FileDialogs
from tests.conftest import vm_name
from tests.gui import disk_helpers
from tests.gui.conftest import Runner, settle, wait_until
from tests.gui.disk_helpers import (
    MIB,
    assert_accepted,
    assert_rejected,
    checked,
    choose_in_combo,
    click,
    click_next,
    edit,
    find,
    finish,
    finish_button,
    go_to,
    jump,
    leftovers,
    qemu_compare,
    qemu_create,
    qemu_info,
    qemu_write,
    radio,
    retype,
    same_content,
    shot,
)
from tests.vm.helpers import disk_domain_xml, virsh

ACTION_RADIOS = {
    EditAction.COMPACT: "compactRadio",
    EditAction.CONVERT: "convertRadio",
    EditAction.EXPAND: "expandRadio",
    EditAction.SHRINK: "shrinkRadio",
    EditAction.MERGE: "mergeRadio",
    EditAction.RECONNECT: "reconnectRadio",
}


disks = disk_helpers.connected_disks  # the connected local server's: it also finds who uses a disk


WizardFactory = Callable[..., EditDiskWizard]


@pytest.fixture
def make_wizard(qtbot: Any, disks: DiskController) -> WizardFactory:
    """Build and show a wizard (inside the test's async body: it starts checking at once)."""

    def _make(path: str = "", action: EditAction | None = None) -> EditDiskWizard:
        wizard = open_edit_disk_wizard(disks, path, None, action)
        qtbot.addWidget(wizard)
        return wizard

    return _make


async def choose_action(qtbot: Any, wizard: EditDiskWizard, action: EditAction) -> None:
    """On Choose Action, click the action's radio button, then Next."""
    await go_to(wizard, EditDiskPage.ACTION)
    click(qtbot, radio(wizard, ACTION_RADIOS[action]))
    await click_next(wizard)
    assert wizard.currentId() == EditDiskPage.CONFIGURE


def offered(wizard: EditDiskWizard) -> dict[EditAction, bool]:
    return {action: radio(wizard, name).isEnabled() for action, name in ACTION_RADIOS.items()}


def note(wizard: EditDiskWizard, action: EditAction) -> str:
    return find(wizard, QLabel, ACTION_RADIOS[action].replace("Radio", "Note")).text()


def copy_of(path: Path) -> Path:
    """A byte-for-byte copy, to compare the edited disk with afterwards."""
    kept = path.with_name(f"kept-{path.name}")
    shutil.copyfile(path, kept)
    return kept


# --- Locate Disk, Choose Action ---------------------------------------------------------------------


def test_locate_disk_and_choose_action(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path, monkeypatch: Any
) -> None:
    dynamic = qemu_create(tmp_path / "data.qcow2", "qcow2", "16M")
    fixed = qemu_create(tmp_path / "fixed.vhd", "vpc", "16M", "-o", "subformat=fixed,force_size=on")
    monkeypatch.setattr(FileDialogs, "choose_file", staticmethod(lambda *_args: str(fixed)))

    async def body() -> None:
        wizard = make_wizard()
        assert wizard.windowTitle() == "Edit Virtual Hard Disk Wizard"
        pages = find(wizard, QListWidget, "pageList")
        assert [pages.item(row).text() for row in range(pages.count())] == [
            "Before You Begin",
            "Locate Disk",
            "Choose Action",
            "Compact Virtual Hard Disk",
            "Summary",
        ]
        shot(wizard, "edit-disk-1-before-you-begin")
        await click_next(wizard)
        path = edit(wizard, "diskPathEdit")
        await assert_rejected(wizard, "Enter the path of the virtual hard disk to edit.")
        retype(qtbot, path, str(tmp_path / "missing.vhdx"))
        await assert_rejected(
            wizard, f"'{tmp_path / 'missing.vhdx'}' does not exist.\nCheck the path of the virtual hard disk."
        )
        retype(qtbot, path, str(tmp_path))
        await assert_rejected(
            wizard, f"'{tmp_path}' is not a virtual hard disk file (it is a folder or a special file)."
        )
        retype(qtbot, path, str(dynamic))
        await assert_accepted(wizard)
        assert (
            find(wizard, QLabel, "diskFactsLabel")
            .text()
            .startswith("QCOW2, dynamically expanding, 16 MB (the file takes ")
        )
        assert find(wizard, QLabel, "diskNoteLabel").text() == "No virtual machine uses this disk."
        shot(wizard, "edit-disk-2-locate-disk")
        await click_next(wizard)
        assert offered(wizard) == {
            EditAction.COMPACT: True,
            EditAction.CONVERT: True,
            EditAction.EXPAND: True,
            EditAction.SHRINK: True,
            EditAction.MERGE: False,
            EditAction.RECONNECT: False,
        }
        assert radio(wizard, "compactRadio").isChecked()  # the first action offered
        assert not finish_button(wizard).isEnabled()  # an edit: Finish only from the action's page on
        assert note(wizard, EditAction.MERGE).endswith(
            "<i>Not available: Only a differencing disk can be merged.</i>"
        )
        shot(wizard, "edit-disk-3-choose-action")
        await jump(qtbot, wizard, EditDiskPage.LOCATE)
        click(qtbot, find(wizard, QPushButton, "diskBrowseButton"))
        assert path.text() == str(fixed)
        await jump(qtbot, wizard, EditDiskPage.ACTION)
        assert not radio(wizard, "compactRadio").isEnabled()
        assert note(wizard, EditAction.COMPACT).endswith(
            "Not available: A fixed-size disk has no unused blocks to remove.</i>"
        )
        assert radio(wizard, "convertRadio").isChecked()
        await settle()

    run(body)


# --- Expand, Shrink ------------------------------------------------------------------------------------


def test_expand_messages_and_result(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path
) -> None:
    disk = qemu_create(tmp_path / "data.qcow2", "qcow2", "16M")
    qemu_write(disk, "qcow2", "write -P 0x42 0 1M", "write -P 0x43 15M 1M")
    kept = copy_of(disk)
    vhd_disk = qemu_create(tmp_path / "old.vhd", "vpc", "16M", "-o", "force_size=on")

    async def body() -> None:
        wizard = make_wizard(str(vhd_disk))
        await choose_action(qtbot, wizard, EditAction.EXPAND)
        size = edit(wizard, "newSizeEdit")
        retype(qtbot, size, "2041")
        await assert_rejected(wizard, "A VHD disk can be at most 2040 GB.")
        await jump(qtbot, wizard, EditDiskPage.LOCATE)
        retype(qtbot, edit(wizard, "diskPathEdit"), str(disk))
        await checked(wizard)
        await jump(qtbot, wizard, EditDiskPage.ACTION)
        click(qtbot, radio(wizard, "expandRadio"))
        await click_next(wizard)
        assert wizard.currentPage().title() == "Expand Virtual Hard Disk"
        assert find(wizard, QLabel, "currentSizeLabel").text() == "The current size of the disk is 16 MB."
        cases = [
            ("", "Enter the size of the virtual hard disk in GB."),
            ("abc", "'abc' is not a number: enter the size in GB, such as 127 or 1.5."),
            ("0.001", "A virtual hard disk must be at least 3 MB."),
            ("0.02", "The size must be a whole number of megabytes."),
            ("0.015625", "The new size must be larger than the current size (16 MB)."),
            ("0.0078125", "The new size must be larger than the current size (16 MB)."),
            ("65537", "A QCOW2 disk can be at most 64 TB."),
        ]
        for text, message in cases:
            retype(qtbot, size, text)
            await assert_rejected(wizard, message)
        retype(qtbot, size, "0.03125")
        await assert_accepted(wizard)
        shot(wizard, "edit-disk-4-expand")
        await click_next(wizard)
        summary = find(wizard, QTextEdit, "summaryText").toPlainText()
        assert "Action:\tExpand" in summary and "New size:\t0.03125 GB" in summary
        shot(wizard, "edit-disk-5-summary")
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    assert qemu_info(disk, "qcow2")["virtual-size"] == 32 * MIB
    same_content(kept, "qcow2", disk, "qcow2")  # the first 16 MiB are unchanged, the rest reads as zeros


def test_shrink_down_to_the_minimum(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path
) -> None:
    disk = qemu_create(tmp_path / "data.img", "raw", "16M")
    qemu_write(disk, "raw", "write -P 0x61 0 1M", "write -P 0x62 7M 1M")  # data ends at 8 MiB
    kept = copy_of(disk)

    async def body() -> None:
        wizard = make_wizard(str(disk))
        await choose_action(qtbot, wizard, EditAction.SHRINK)
        assert wizard.currentPage().title() == "Shrink Virtual Hard Disk"
        assert find(wizard, QLabel, "currentSizeLabel").text() == (
            "The current size of the disk is 16 MB; its minimum size is 8 MB."
        )
        size = edit(wizard, "newSizeEdit")
        retype(qtbot, size, "0.015625")
        await assert_rejected(wizard, "The new size must be smaller than the current size (16 MB).")
        retype(qtbot, size, "0.0068359375")  # 7 MiB
        await assert_rejected(
            wizard, "The disk holds data up to 8 MB: its minimum size. Enter at least 8 MB."
        )
        shot(wizard, "edit-disk-4-shrink")
        retype(qtbot, size, "0.009765625")  # 10 MiB
        await assert_accepted(wizard)
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    assert qemu_info(disk, "raw")["virtual-size"] == 10 * MIB
    same_content(kept, "raw", disk, "raw")  # nothing but zeros was cut off


# --- Convert ---------------------------------------------------------------------------------------


def test_convert_messages_and_result(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path, monkeypatch: Any
) -> None:
    chosen = str(tmp_path / "new.vhdx")
    monkeypatch.setattr(FileDialogs, "choose_new_file", staticmethod(lambda *_args: chosen))
    disk = qemu_create(tmp_path / "data.qcow2", "qcow2", "16M")
    qemu_write(disk, "qcow2", "write -P 0x33 1M 3M")
    huge = qemu_create(tmp_path / "huge.qcow2", "qcow2", "3T")
    (tmp_path / "taken.vhdx").write_bytes(b"mine")

    async def body() -> None:
        wizard = make_wizard(str(huge))
        await choose_action(qtbot, wizard, EditAction.CONVERT)
        choose_in_combo(qtbot, find(wizard, QComboBox, "convertFormatCombo"), "VHD")
        await assert_rejected(
            wizard,
            "The disk is 3 TB; a VHD disk can be at most 2040 GB.\n"
            "Choose VHDX or QCOW2, or shrink the disk first.",
        )
        await jump(qtbot, wizard, EditDiskPage.LOCATE)
        retype(qtbot, edit(wizard, "diskPathEdit"), str(disk))
        await checked(wizard)
        await jump(qtbot, wizard, EditDiskPage.ACTION)
        click(qtbot, radio(wizard, "convertRadio"))
        await click_next(wizard)
        target = edit(wizard, "convertPathEdit")
        assert target.text() == str(tmp_path / "data-new.vhdx")  # VHDX suggested beside the disk
        choose_in_combo(qtbot, find(wizard, QComboBox, "convertFormatCombo"), "VHDX")
        retype(qtbot, target, "")
        await assert_rejected(wizard, "Enter the path of the new virtual hard disk.")
        retype(qtbot, target, str(tmp_path / "taken.vhdx"))
        await assert_rejected(
            wizard,
            f"'{tmp_path / 'taken.vhdx'}' already exists.\nChoose another name: the editor never overwrites.",
        )
        retype(qtbot, target, str(tmp_path / "nowhere" / "new.vhdx"))
        await assert_rejected(wizard, f"The folder '{tmp_path / 'nowhere'}' does not exist.")
        retype(qtbot, target, str(disk))
        await assert_rejected(
            wizard, f"'{disk}' already exists.\nChoose another name: the editor never overwrites."
        )
        retype(qtbot, target, str(tmp_path / "new.vhd"))
        await assert_rejected(wizard, "A VHDX disk's name can't end in .vhd (that is a VHD name): use .vhdx.")
        click(qtbot, find(wizard, QPushButton, "convertBrowseButton"))  # Save As: a new file
        assert target.text() == str(tmp_path / "new.vhdx")
        click(qtbot, radio(wizard, "convertFixedRadio"))
        await assert_accepted(wizard)
        shot(wizard, "edit-disk-4-convert")
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    info = qemu_info(tmp_path / "new.vhdx", "vhdx")
    assert info["virtual-size"] == 16 * MIB and info["actual-size"] >= 16 * MIB
    qemu_compare(disk, "qcow2", tmp_path / "new.vhdx", "vhdx")
    assert (tmp_path / "taken.vhdx").read_bytes() == b"mine"


# --- Compact -----------------------------------------------------------------------------------------


def test_compact(qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path) -> None:
    disk = qemu_create(tmp_path / "data.qcow2", "qcow2", "16M")
    qemu_write(disk, "qcow2", "write -P 0x77 0 1M", "write -P 0 2M 8M")  # 8 MiB of written zeros
    kept = copy_of(disk)
    before = qemu_info(disk, "qcow2")["actual-size"]

    async def body() -> None:
        wizard = make_wizard(str(disk))
        await choose_action(qtbot, wizard, EditAction.COMPACT)
        assert find(wizard, QLabel, "compactText").text().startswith("The file takes ")
        shot(wizard, "edit-disk-4-compact")
        wizard.completed.connect(lambda result: results.append(result))
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    results: list[object] = []
    run(body)
    after = qemu_info(disk, "qcow2")["actual-size"]
    assert after < before - 4 * MIB
    assert results and results[0] == (before, after)
    boxes = [
        w for w in QApplication.topLevelWidgets() if w.objectName() == "compactResultBox" and w.isVisible()
    ]
    assert len(boxes) == 1 and isinstance(boxes[0], QMessageBox)
    assert boxes[0].text() == (
        f"The file was compacted from {limits.human_size(before)} to {limits.human_size(after)}."
    )
    boxes[0].close()
    qemu_compare(kept, "qcow2", disk, "qcow2")


# --- Merge -------------------------------------------------------------------------------------------


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A parent with data, a differencing child with more, and their flattened content."""
    parent = qemu_create(tmp_path / "parent.qcow2", "qcow2", "16M")
    qemu_write(parent, "qcow2", "write -P 0x01 0 4M")
    child = qemu_create(tmp_path / "child.qcow2", "qcow2", "16M", "-b", str(parent), "-F", "qcow2")
    qemu_write(child, "qcow2", "write -P 0x02 2M 4M")
    flat = tmp_path / "flat.img"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(child), str(flat)], check=True)
    return parent, child, flat


def test_merge_into_the_parent(qtbot: Any, run: Runner, make_wizard: WizardFactory, chain: Any) -> None:
    parent, child, flat = chain

    async def body() -> None:
        wizard = make_wizard(str(child))
        await go_to(wizard, EditDiskPage.ACTION)
        assert offered(wizard) == {
            EditAction.COMPACT: True,
            EditAction.CONVERT: True,
            EditAction.EXPAND: True,
            EditAction.SHRINK: False,
            EditAction.MERGE: True,
            EditAction.RECONNECT: False,
        }
        assert note(wizard, EditAction.RECONNECT).endswith(
            "Not available: The parent disk is where the differencing disk expects it; Reconnect is for a "
            "moved parent.</i>"
        )
        click(qtbot, radio(wizard, "mergeRadio"))
        await click_next(wizard)
        assert radio(wizard, "mergeParentRadio").isChecked()
        assert find(wizard, QLabel, "mergeParentLabel").text() == str(parent)
        assert not edit(wizard, "mergePathEdit").isEnabled()
        shot(wizard, "edit-disk-4-merge")
        await click_next(wizard)
        assert f"Into:\t{parent}" in find(wizard, QTextEdit, "summaryText").toPlainText()
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    assert not child.exists()
    qemu_compare(flat, "raw", parent, "qcow2")


def test_merge_to_a_new_disk(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, chain: Any, tmp_path: Path
) -> None:
    parent, child, flat = chain
    parent_before = copy_of(parent)

    async def body() -> None:
        wizard = make_wizard(str(child))
        await choose_action(qtbot, wizard, EditAction.MERGE)
        click(qtbot, radio(wizard, "mergeNewRadio"))
        target = edit(wizard, "mergePathEdit")
        assert target.isEnabled()
        retype(qtbot, target, str(parent))
        await assert_rejected(
            wizard, f"'{parent}' already exists.\nChoose another name: the editor never overwrites."
        )
        retype(qtbot, target, str(tmp_path / "merged.qcow2"))
        await assert_accepted(wizard)
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    assert "backing-filename" not in qemu_info(tmp_path / "merged.qcow2", "qcow2")
    qemu_compare(flat, "raw", tmp_path / "merged.qcow2", "qcow2")
    qemu_compare(flat, "raw", child, "qcow2")  # the differencing disk and its parent are kept
    qemu_compare(parent_before, "qcow2", parent, "qcow2")


# --- Reconnect ------------------------------------------------------------------------------------------


def test_reconnect_messages_and_result(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path
) -> None:
    base = vhd.create(NewVhd(str(tmp_path / "base.vhdx"), "vhdx", DiskType.DYNAMIC, 16 * MIB))
    child = vhd.create(
        NewVhd(str(tmp_path / "child.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=base.path)
    )
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(base.path, moved / "base.vhdx")
    wrong_size = qemu_create(tmp_path / "other.vhdx", "vhdx", "32M")
    same_size = qemu_create(tmp_path / "lookalike.vhdx", "vhdx", "16M")

    async def body() -> None:
        wizard = make_wizard(child.path)
        await go_to(wizard, EditDiskPage.LOCATE)
        await checked(wizard)
        await click_next(wizard)
        assert offered(wizard) == {action: action is EditAction.RECONNECT for action in EditAction}
        assert note(wizard, EditAction.MERGE).endswith(
            f"Not available: The parent disk '{base.path}' is missing: reconnect the differencing disk to "
            "it first.</i>"
        )
        assert radio(wizard, "reconnectRadio").isChecked()
        await click_next(wizard)
        assert wizard.currentPage().title() == "Reconnect Virtual Hard Disk"
        parent = edit(wizard, "newParentEdit")
        await assert_rejected(wizard, "Enter the path of the parent disk.")
        retype(qtbot, parent, str(tmp_path / "nothere.vhdx"))
        await assert_rejected(
            wizard, f"The new parent is not usable: '{tmp_path / 'nothere.vhdx'}' does not exist."
        )
        retype(qtbot, parent, str(wrong_size))
        await assert_accepted(wizard)
        shot(wizard, "edit-disk-4-reconnect")
        await finish(wizard)  # the size only the back end knows: refused on Finish
        assert wizard.isVisible()
        assert wizard.summary_page.failure() == (
            f"'other.vhdx' has a virtual size of {32 * MIB} bytes (32 MB); the parent of 'child.qcow2' had "
            f"{16 * MIB} bytes (16 MB).\nChoose the disk it was made from."
        )
        shot(wizard, "edit-disk-reconnect-failure")
        await jump(qtbot, wizard, EditDiskPage.CONFIGURE)
        retype(qtbot, parent, str(same_size))
        await finish(wizard)
        assert wizard.summary_page.failure().startswith("'lookalike.vhdx' has the identifier ")
        await jump(qtbot, wizard, EditDiskPage.CONFIGURE)
        retype(qtbot, parent, str(moved / "base.vhdx"))
        ignore = find(wizard, QCheckBox, "ignoreIdCheck")
        assert not ignore.isChecked()
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    info = qemu_info(child.path, "qcow2")
    assert info["backing-filename"] == str(moved / "base.vhdx")
    assert qemu_info(wrong_size, "vhdx")["virtual-size"] == 32 * MIB  # untouched


def test_reconnect_ignoring_the_id_mismatch(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, tmp_path: Path
) -> None:
    base = vhd.create(NewVhd(str(tmp_path / "base.qcow2"), "qcow2", DiskType.DYNAMIC, 16 * MIB))
    child = vhd.create(
        NewVhd(str(tmp_path / "child.qcow2"), "qcow2", DiskType.DIFFERENCING, parent=base.path)
    )
    Path(base.path).unlink()
    lookalike = qemu_create(tmp_path / "lookalike.qcow2", "qcow2", "16M")

    async def body() -> None:
        wizard = make_wizard(child.path, EditAction.RECONNECT)  # as Inspect Disk's Reconnect... opens it
        await wait_until(lambda: wizard.currentId() == EditDiskPage.CONFIGURE, 20, "the Reconnect page")
        retype(qtbot, edit(wizard, "newParentEdit"), str(lookalike))
        click(qtbot, find(wizard, QCheckBox, "ignoreIdCheck"))
        await click_next(wizard)
        assert "Ignore ID mismatch:\tYes" in find(wizard, QTextEdit, "summaryText").toPlainText()
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    assert qemu_info(child.path, "qcow2")["backing-filename"] == str(lookalike)


# --- a running VM's disk: Expand only, online ------------------------------------------------------------


@pytest.fixture
def running_vm(clean_domains: str, vm_location: Path) -> Iterator[tuple[str, Path]]:
    """A VM started paused (no guest needed) with a SCSI data disk: QEMU holds the disk open."""
    disk = qemu_create(vm_location / "data.qcow2", "qcow2", "16M")
    name = vm_name("edit-disk-online")
    conn = libvirt.open(clean_domains)
    try:
        dom = conn.defineXML(disk_domain_xml(name, [(disk, "qcow2", "sda", "scsi")]))
        dom.createWithFlags(libvirt.VIR_DOMAIN_START_PAUSED)
        yield name, disk
    finally:
        conn.close()


def test_a_running_vms_disk_can_only_be_expanded(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, running_vm: Any
) -> None:
    name, disk = running_vm

    async def body() -> None:
        wizard = make_wizard(str(disk))
        await go_to(wizard, EditDiskPage.LOCATE)
        assert find(wizard, QLabel, "diskNoteLabel").text() == (
            f"Used by '{name}' (running, sda). While its virtual machine runs, the disk can only be expanded."
        )
        await click_next(wizard)
        assert offered(wizard) == {action: action is EditAction.EXPAND for action in EditAction}
        why = f"the running virtual machine '{name}' uses the disk; shut it down first."
        assert note(wizard, EditAction.COMPACT).endswith(f"Not available: {why}</i>")
        shot(wizard, "edit-disk-3-running-vm")
        await click_next(wizard)
        retype(qtbot, edit(wizard, "newSizeEdit"), "0.03125")
        await click_next(wizard)
        assert f"Online:\twhile '{name}' runs" in find(wizard, QTextEdit, "summaryText").toPlainText()
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    capacity = next(
        line for line in virsh("domblkinfo", name, "sda").splitlines() if line.startswith("Capacity")
    )
    assert int(capacity.split()[1]) == 32 * MIB


def test_an_offline_action_on_a_running_vms_disk_is_refused(
    run: Runner, disks: DiskController, running_vm: Any
) -> None:
    """The controller's own guard (the wizard never offers it): the error says why and what to do."""
    name, disk = running_vm

    async def body() -> None:
        with pytest.raises(Exception) as caught:
            await disks.compact(str(disk))
        assert str(caught.value) == (
            f"'{disk}' is in use by the running virtual machine '{name}'.\n"
            "Shut the virtual machine down first (a running VM's disk can only be expanded)."
        )
        await settle()

    run(body)
    assert leftovers(disk.parent) == []


# --- from the main window -----------------------------------------------------------------------------


def test_opens_from_the_main_window(
    run: Runner, make_window: Any, qtbot: Any, libvirtd: str, tmp_path: Path
) -> None:
    disk = qemu_create(tmp_path / "data.vhd", "vpc", "16M", "-o", "force_size=on")
    window = make_window(libvirtd)

    async def body() -> None:
        await wait_until(lambda: window.app_actions.edit_disk.isEnabled(), 30, "the server to connect")
        window.app_actions.edit_disk.trigger()
        wizard = window.disk_commands.last_dialog
        assert isinstance(wizard, EditDiskWizard)
        await go_to(wizard, EditDiskPage.LOCATE)
        retype(qtbot, edit(wizard, "diskPathEdit"), str(disk))
        await choose_action(qtbot, wizard, EditAction.CONVERT)
        await finish(wizard)
        assert not wizard.isVisible(), wizard.summary_page.failure()
        await settle()

    run(body)
    qemu_compare(disk, "vpc", tmp_path / "data-new.qcow2", "qcow2")
