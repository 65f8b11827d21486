"""The New Virtual Hard Disk wizard, driven through its real buttons, radio buttons and fields.

Every validation message a user can reach is checked on the page that shows it, with Next and
Finish disabled; the disks Finish creates are checked with ``qemu-img info`` and ``qemu-img
compare`` (the independent observer), a failure leaves nothing behind, and the wizard also opens
from the main window's Actions ▸ New ▸ Hard Disk. Pages are rendered into $HVTEST_SHOTS when it is set.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QListWidget,
    QPushButton,
    QTextEdit,
    QTreeWidget,
    QWidget,
)

from hvmanager.backend.connection import Server
from hvmanager.controllers.disks import DiskController
from hvmanager.ui.new_disk_wizard import NewDiskPage, NewDiskWizard
from hvmanager.ui.new_vm_wizard_base import FileDialogs
from tests.conftest import SYSTEM_URI
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
    next_button,
    qemu_compare,
    qemu_create,
    qemu_info,
    qemu_write,
    radio,
    retype,
    shot,
    shown_problem,
)
from tests.support.vhd_writer import make_vhdx_differencing

SMALL_GB = "0.015625"  # 16 MiB

connected_disks = disk_helpers.connected_disks  # who uses a disk, host disks


@pytest.fixture
def disks(event_loop_qt: Any) -> Iterator[DiskController]:
    """The local server's disk controller (no connection needed for new disks)."""
    controller = DiskController(Server(SYSTEM_URI))
    yield controller
    controller.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "disks"
    made.mkdir()
    return made


WizardFactory = Callable[..., NewDiskWizard]


@pytest.fixture
def make_wizard(qtbot: Any, disks: DiskController, folder: Path) -> WizardFactory:
    """Build and show a wizard; call it inside the test's async body (the wizard starts checking
    at once, on the running loop)."""

    def _make(controller: DiskController | None = None) -> NewDiskWizard:
        wizard = NewDiskWizard(controller or disks, str(folder))
        qtbot.addWidget(wizard)
        wizard.show()
        return wizard

    return _make


# --- pages, defaults, navigation --------------------------------------------------------------------


def test_pages_defaults_and_page_list(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, folder: Path
) -> None:
    async def body() -> None:
        wizard = make_wizard()
        assert wizard.windowTitle() == "New Virtual Hard Disk Wizard"
        pages = find(wizard, QListWidget, "pageList")
        assert [pages.item(row).text() for row in range(pages.count())] == [
            "Before You Begin",
            "Choose Disk Format",
            "Choose Disk Type",
            "Specify Name and Location",
            "Configure Disk",
            "Summary",
        ]
        await checked(wizard)
        assert finish_button(wizard).isEnabled()  # Hyper-V: Finish with the defaults at once
        titles = []
        for page_id in NewDiskPage:
            await go_to(wizard, page_id)
            titles.append(wizard.currentPage().title())
            shot(wizard, f"new-disk-{page_id + 1}-{page_id.name.lower().replace('_', '-')}")
        assert titles == [
            "Before You Begin",
            "Choose Disk Format",
            "Choose Disk Type",
            "Specify Name and Location",
            "Configure Disk",
            "Completing the New Virtual Hard Disk Wizard",
        ]
        assert radio(wizard, "formatQcow2Radio").isChecked()
        assert radio(wizard, "typeDynamicRadio").isChecked()
        assert edit(wizard, "nameEdit").text() == "New Virtual Hard Disk.qcow2"
        assert edit(wizard, "locationEdit").text() == str(folder)
        assert edit(wizard, "sizeEdit").text() == "127"
        assert find(wizard, QLabel, "sizeLimitLabel").text() == "(Maximum: 64 TB)"
        summary = find(wizard, QTextEdit, "summaryText").toPlainText()
        assert summary.splitlines() == [
            "Format:\tQCOW2",
            "Type:\tDynamically expanding",
            "Name:\tNew Virtual Hard Disk.qcow2",
            f"Location:\t{folder}",
            "Size:\t127 GB",
        ]
        await jump(qtbot, wizard, NewDiskPage.FORMAT)
        click(qtbot, radio(wizard, "formatVhdRadio"))
        await checked(wizard)
        assert edit(wizard, "nameEdit").text() == "New Virtual Hard Disk.vhd"  # follows the format
        assert find(wizard, QLabel, "sizeLimitLabel").text() == "(Maximum: 2040 GB)"
        await jump(qtbot, wizard, NewDiskPage.CONFIGURE)
        await settle()

    run(body)


# --- every validation message -------------------------------------------------------------------------


def test_size_messages(qtbot: Any, run: Runner, make_wizard: WizardFactory) -> None:
    async def body() -> None:
        wizard = make_wizard()
        size = edit(wizard, "sizeEdit")
        await go_to(wizard, NewDiskPage.CONFIGURE)
        cases = [
            ("", "Enter the size of the virtual hard disk in GB."),
            ("abc", "'abc' is not a number: enter the size in GB, such as 127 or 1.5."),
            ("1e", "'1e' is not a number: enter the size in GB, such as 127 or 1.5."),
            ("0.002", "A virtual hard disk must be at least 3 MB."),
            ("0.01", "The size must be a whole number of megabytes."),
            ("1.0000001", "The size must be a whole number of megabytes."),
            ("65537", "A QCOW2 disk can be at most 64 TB."),
        ]
        for text, message in cases:
            retype(qtbot, size, text)
            await assert_rejected(wizard, message)
        shot(wizard, "new-disk-problem-size")
        retype(qtbot, size, "0.5")
        await assert_accepted(wizard)
        for fmt, label, too_big, maximum in (
            ("Vhd", "VHD", "2041", "2040 GB"),
            ("Vhdx", "VHDX", "65537", "64 TB"),
        ):
            await jump(qtbot, wizard, NewDiskPage.FORMAT)
            click(qtbot, radio(wizard, f"format{fmt}Radio"))
            await jump(qtbot, wizard, NewDiskPage.CONFIGURE)
            retype(qtbot, size, too_big)
            await assert_rejected(wizard, f"A {label} disk can be at most {maximum}.")
            retype(qtbot, size, "2040")
            await assert_accepted(wizard)
        await settle()

    run(body)


def test_name_and_folder_messages(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, folder: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(FileDialogs, "choose_folder", staticmethod(lambda *_args: str(folder)))

    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.NAME_LOCATION)
        name, location = edit(wizard, "nameEdit"), edit(wizard, "locationEdit")
        retype(qtbot, name, "")
        await assert_rejected(wizard, "Enter a name for the virtual hard disk file.")
        retype(qtbot, name, "a/b.qcow2")
        await assert_rejected(wizard, "The name can't contain '/' or control characters.")
        retype(qtbot, name, "data.vhdx")
        await assert_rejected(
            wizard, "A QCOW2 disk's name can't end in .vhdx (that is a VHDX name): use .qcow2."
        )
        retype(qtbot, name, "data.qcow2")
        await assert_accepted(wizard)
        retype(qtbot, location, "")
        await assert_rejected(wizard, "Enter the folder of the virtual hard disk file.")
        retype(qtbot, location, str(folder / "missing"))
        await assert_rejected(wizard, f"The folder '{folder / 'missing'}' does not exist.")
        shot(wizard, "new-disk-problem-folder")
        (folder / "plain-file").write_text("not a folder")
        retype(qtbot, location, str(folder / "plain-file"))
        await assert_rejected(wizard, f"'{folder / 'plain-file'}' is not a folder.")
        click(qtbot, find(wizard, QPushButton, "locationBrowseButton"))
        assert location.text() == str(folder)
        (folder / "data.qcow2").write_bytes(b"taken")
        retype(qtbot, name, "data.qcow")
        qtbot.keyClicks(name, "2")  # the last keystroke names the existing file
        await assert_rejected(
            wizard,
            f"'{folder / 'data.qcow2'}' already exists: choose another name (an existing file is never "
            "overwritten).",
        )
        assert (folder / "data.qcow2").read_bytes() == b"taken"
        retype(qtbot, name, "other.qcow2")
        await assert_accepted(wizard)
        await settle()

    run(body)


def test_vhdx_options_messages(qtbot: Any, run: Runner, make_wizard: WizardFactory) -> None:
    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.FORMAT)
        click(qtbot, radio(wizard, "formatVhdxRadio"))
        await go_to(wizard, NewDiskPage.CONFIGURE)
        retype(qtbot, edit(wizard, "sizeEdit"), "1")
        box = find(wizard, QWidget, "vhdxAdvancedBox")
        assert box.isVisible()
        block = edit(wizard, "blockSizeEdit")
        logical = find(wizard, QComboBox, "logicalSectorCombo")
        physical = find(wizard, QComboBox, "physicalSectorCombo")
        bad_block = "The block size must be a power of 2 from 1 MB to 256 MB (Hyper-V's default is 32 MB)."
        for text in ("3", "512", "0"):
            retype(qtbot, block, text)
            await assert_rejected(wizard, bad_block)
        retype(qtbot, block, "8")
        await assert_accepted(wizard)
        choose_in_combo(qtbot, logical, "4096 bytes")
        await assert_rejected(
            wizard,
            "QEMU can't open VHDX disks with 4096-byte logical sectors (it supports 512 only), so such a "
            "disk would be unusable here; choose 512 (a 4096-byte physical sector size works).",
        )
        shot(wizard, "new-disk-configure-vhdx")
        choose_in_combo(qtbot, logical, "512 bytes")
        choose_in_combo(qtbot, physical, "4096 bytes")
        await assert_accepted(wizard)
        await jump(qtbot, wizard, NewDiskPage.TYPE)
        click(qtbot, radio(wizard, "typeFixedRadio"))
        await jump(qtbot, wizard, NewDiskPage.CONFIGURE)
        await assert_rejected(
            wizard, "A fixed size disk has no block size: all its space is allocated at once."
        )
        retype(qtbot, block, "")
        await assert_accepted(wizard)
        await jump(qtbot, wizard, NewDiskPage.TYPE)
        click(qtbot, radio(wizard, "typeDifferencingRadio"))
        await jump(qtbot, wizard, NewDiskPage.CONFIGURE)
        parent = qemu_create(Path(edit(wizard, "locationEdit").text()) / "base.qcow2", "qcow2", "16M")
        retype(qtbot, edit(wizard, "parentEdit"), str(parent))
        await assert_rejected(
            wizard, "A differencing disk has no logical sector size of its own: it has its parent's."
        )
        choose_in_combo(qtbot, logical, "Default")
        await assert_rejected(
            wizard, "Block size and sector sizes can be chosen for VHDX disks only, not for QCOW2."
        )
        choose_in_combo(qtbot, physical, "Default")
        await assert_accepted(wizard)
        await settle()

    run(body)


def test_differencing_messages_and_child(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, folder: Path, monkeypatch: Any
) -> None:
    parent = qemu_create(folder / "base.vhd", "vpc", "16M", "-o", "force_size=on")
    qemu_write(parent, "vpc", "write -P 0x5a 0 1M")
    hyperv_child = qemu_create(folder / "hyperv-child.avhdx", "vhdx", "16M")
    make_vhdx_differencing(hyperv_child, {"relative_path": "base.vhdx"})  # as Hyper-V makes them
    monkeypatch.setattr(FileDialogs, "choose_file", staticmethod(lambda *_args: str(parent)))

    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.TYPE)
        click(qtbot, radio(wizard, "typeDifferencingRadio"))
        await go_to(wizard, NewDiskPage.CONFIGURE)
        assert not find(wizard, QWidget, "contentsSection").isVisible()
        parent_edit = edit(wizard, "parentEdit")
        await assert_rejected(wizard, "Enter the path of the parent virtual hard disk.")
        retype(qtbot, parent_edit, str(folder / "gone.vhdx"))
        await assert_rejected(wizard, f"The parent disk '{folder / 'gone.vhdx'}' does not exist.")
        retype(qtbot, parent_edit, str(folder))
        await assert_rejected(
            wizard, f"'{folder}' is not a virtual hard disk (it is a folder or a special file)."
        )
        (folder / "empty.img").write_bytes(b"")
        retype(qtbot, parent_edit, str(folder / "empty.img"))
        await assert_rejected(wizard, f"'{folder / 'empty.img'}' is not a virtual hard disk: it is empty.")
        orphan = folder / "orphan.qcow2"
        qemu_create(folder / "lost.qcow2", "qcow2", "16M")
        qemu_create(orphan, "qcow2", "16M", "-b", str(folder / "lost.qcow2"), "-F", "qcow2")
        (folder / "lost.qcow2").unlink()
        retype(qtbot, parent_edit, str(orphan))
        await assert_rejected(
            wizard,
            f"The chain of the parent disk is broken: its parent '{folder / 'lost.qcow2'}' is missing "
            f"(reconnect '{orphan}' to it first).",
        )
        retype(qtbot, parent_edit, str(hyperv_child))
        await assert_rejected(
            wizard,
            f"QEMU can't open VHDX differencing disks such as '{hyperv_child}'.",
        )
        click(qtbot, find(wizard, QPushButton, "parentBrowseButton"))
        assert parent_edit.text() == str(parent)
        await assert_accepted(wizard)
        note = find(wizard, QLabel, "parentNoteLabel")
        assert note.isVisible()
        assert note.text().startswith("The parent is a VHD disk of 16 MB. QEMU makes differencing disks only")
        shot(wizard, "new-disk-configure-differencing")
        await jump(qtbot, wizard, NewDiskPage.NAME_LOCATION)
        name = edit(wizard, "nameEdit")
        assert name.text() == "New Virtual Hard Disk.qcow2"  # a differencing disk is QCOW2 here
        retype(qtbot, name, "child.vhd")
        await assert_rejected(
            wizard,
            "A differencing disk is a QCOW2 file (the only format QEMU makes differencing disks in): "
            "its name must end in .qcow2.",
        )
        retype(qtbot, name, "child.qcow2")
        await finish(wizard)
        assert not wizard.isVisible()
        await settle()

    run(body)
    info = qemu_info(folder / "child.qcow2", "qcow2")
    assert info["backing-filename"] == str(parent)
    assert info["backing-filename-format"] == "vpc"
    qemu_compare(folder / "child.qcow2", "qcow2", parent, "vpc")


# --- creating every format and type --------------------------------------------------------------


FORMATS = [
    ("Vhdx", "vhdx", ".vhdx"),
    ("Vhd", "vpc", ".vhd"),
    ("Qcow2", "qcow2", ".qcow2"),
    ("Raw", "raw", ".img"),
]


@pytest.mark.parametrize("kind", ["Fixed", "Dynamic"])
@pytest.mark.parametrize(("radio_name", "fmt", "ext"), FORMATS)
def test_creates_each_format_and_type(
    qtbot: Any,
    run: Runner,
    make_wizard: WizardFactory,
    folder: Path,
    radio_name: str,
    fmt: str,
    ext: str,
    kind: str,
) -> None:
    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.FORMAT)
        click(qtbot, radio(wizard, f"format{radio_name}Radio"))
        await click_next(wizard)
        click(qtbot, radio(wizard, f"type{kind}Radio"))
        await click_next(wizard)
        retype(qtbot, edit(wizard, "nameEdit"), f"made{ext}")
        await click_next(wizard)
        retype(qtbot, edit(wizard, "sizeEdit"), SMALL_GB)
        await click_next(wizard)
        summary = find(wizard, QTextEdit, "summaryText").toPlainText()
        assert "Size:\t16 MB" in summary
        await finish(wizard)
        assert not wizard.isVisible(), find(wizard, QLabel, "statusLabel").text()
        await settle()

    run(body)
    info = qemu_info(folder / f"made{ext}", fmt)
    assert info["format"] == fmt
    assert info["virtual-size"] == 16 * MIB
    if kind == "Fixed":
        assert info["actual-size"] >= 16 * MIB
    else:
        assert info["actual-size"] < 16 * MIB
    assert leftovers(folder) == []


def test_vhdx_options_reach_the_file(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, folder: Path
) -> None:
    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.FORMAT)
        click(qtbot, radio(wizard, "formatVhdxRadio"))
        await go_to(wizard, NewDiskPage.CONFIGURE)
        retype(qtbot, edit(wizard, "sizeEdit"), SMALL_GB)
        retype(qtbot, edit(wizard, "blockSizeEdit"), "1")
        choose_in_combo(qtbot, find(wizard, QComboBox, "physicalSectorCombo"), "4096 bytes")
        await finish(wizard)
        await settle()

    run(body)
    path = folder / "New Virtual Hard Disk.vhdx"
    assert qemu_info(path, "vhdx")["virtual-size"] == 16 * MIB
    qemu_write(path, "vhdx", "write -P 0x11 0 64k")  # QEMU can write it
    # The block size and sector sizes, from the VHDX metadata region (MS-VHDX 2.6): read with the
    # back end's own parser, which the back end's tests check against Hyper-V-made files.
    from hvmanager.backend.vhdx_headers import read_vhdx

    header = read_vhdx(str(path))
    assert header.block_size == 1 * MIB
    assert header.physical_sector_size == 4096
    assert header.logical_sector_size == 512


# --- copied contents ----------------------------------------------------------------------------------


def test_copies_a_virtual_disk(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, folder: Path, disks: DiskController, monkeypatch: Any
) -> None:
    source = qemu_create(folder / "source.qcow2", "qcow2", "16M")
    qemu_write(source, "qcow2", "write -P 0xab 0 2M", "write -P 0xcd 10M 1M")
    monkeypatch.setattr(FileDialogs, "choose_file", staticmethod(lambda *_args: str(source)))
    reports: list[float] = []
    disks.progress.connect(lambda _path, percent: reports.append(percent))

    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.FORMAT)
        click(qtbot, radio(wizard, "formatVhdxRadio"))
        await go_to(wizard, NewDiskPage.CONFIGURE)
        click(qtbot, radio(wizard, "virtualRadio"))
        await assert_rejected(
            wizard, "Enter the path of the virtual hard disk whose contents the new disk gets."
        )
        retype(qtbot, edit(wizard, "sourceEdit"), str(folder / "nothing.qcow2"))
        await assert_rejected(wizard, f"The source disk '{folder / 'nothing.qcow2'}' does not exist.")
        click(qtbot, find(wizard, QPushButton, "sourceBrowseButton"))
        assert edit(wizard, "sourceEdit").text() == str(source)
        await assert_accepted(wizard)
        assert not edit(wizard, "sizeEdit").isEnabled()
        summary = find(wizard, QTextEdit, "summaryText").toPlainText()
        assert f"Copied from:\t{source}" in summary
        await finish(wizard)
        assert wizard.summary_page.progress_bar.value() == 100
        await settle()

    run(body)
    copy = folder / "New Virtual Hard Disk.vhdx"
    qemu_compare(source, "qcow2", copy, "vhdx")
    assert reports and reports[-1] == 100.0


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A loop device over a 8 MiB file with a pattern: a host disk nobody uses."""
    backing = tmp_path / "host-disk.img"
    backing.write_bytes(bytes(range(256)) * (8 * MIB // 256))
    device = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    yield device, backing
    subprocess.run(["losetup", "-d", device], check=False)


def test_copies_a_physical_disk(
    qtbot: Any,
    run: Runner,
    make_wizard: WizardFactory,
    connected_disks: DiskController,
    folder: Path,
    loop_device: Any,
) -> None:
    device, backing = loop_device

    async def body() -> None:
        wizard = make_wizard(connected_disks)
        await go_to(wizard, NewDiskPage.CONFIGURE)
        click(qtbot, radio(wizard, "physicalRadio"))
        await assert_rejected(wizard, "Select the physical disk whose contents the new disk gets.")
        disks = find(wizard, QTreeWidget, "hostDiskList")
        await wait_until(lambda: disks.topLevelItemCount() > 0, 20, "the host's disks")
        rows = [disks.topLevelItem(row) for row in range(disks.topLevelItemCount())]
        ours = next(item for item in rows if item.text(0) == device)
        assert ours.text(1) == "8 MB"
        shot(wizard, "new-disk-configure-physical")
        rect = disks.visualItemRect(ours)
        qtbot.mouseClick(disks.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        await assert_accepted(wizard)
        await finish(wizard)
        await settle()

    run(body)
    qemu_compare(backing, "raw", folder / "New Virtual Hard Disk.qcow2", "qcow2")


# --- failures ------------------------------------------------------------------------------------------


def test_failure_is_shown_and_leaves_nothing(
    qtbot: Any, run: Runner, make_wizard: WizardFactory, folder: Path
) -> None:
    async def body() -> None:
        wizard = make_wizard()
        await go_to(wizard, NewDiskPage.CONFIGURE)
        retype(qtbot, edit(wizard, "sizeEdit"), SMALL_GB)
        await checked(wizard)
        # Another program takes the name between the last check and Finish.
        (folder / "New Virtual Hard Disk.qcow2").write_bytes(b"someone else's")
        await finish(wizard)
        assert wizard.isVisible()
        status = find(wizard, QLabel, "statusLabel")
        assert status.text() == (
            f"'{folder / 'New Virtual Hard Disk.qcow2'}' already exists: choose another name (an existing "
            "file is never overwritten)."
        )
        assert not find(wizard, QWidget, "progressBar").isVisible()
        shot(wizard, "new-disk-failure")
        await checked(wizard)  # checked again after the failure: the file is there now
        assert not finish_button(wizard).isEnabled()
        await jump(qtbot, wizard, NewDiskPage.NAME_LOCATION)
        assert shown_problem(wizard).startswith(f"'{folder / 'New Virtual Hard Disk.qcow2'}' already exists")
        await settle()

    run(body)
    assert (folder / "New Virtual Hard Disk.qcow2").read_bytes() == b"someone else's"
    assert leftovers(folder) == []


def test_remote_server_is_refused(qtbot: Any, run: Runner, make_wizard: WizardFactory) -> None:
    async def body() -> None:
        wizard = make_wizard(DiskController(Server("qemu+ssh://nobody@192.0.2.1/system")))
        await checked(wizard)
        assert shown_problem(wizard).startswith(
            "Virtual hard disk files can be created, inspected and edited on this computer's server only."
        )
        assert not finish_button(wizard).isEnabled()
        assert not next_button(wizard).isEnabled()
        await settle()

    run(body)


# --- from the main window -------------------------------------------------------------------------------


def test_opens_from_the_main_window(
    run: Runner, make_window: Any, qtbot: Any, libvirtd: str, folder: Path
) -> None:
    window = make_window(libvirtd)

    async def body() -> None:
        await wait_until(lambda: window.app_actions.new_disk.isEnabled(), 30, "the server to connect")
        entries = [b.defaultAction().text() for b in window.actions_pane.server_block.buttons()]
        assert entries[:6] == [
            "New",
            "Hyper-V Settings...",
            "Virtual Switch Manager...",
            "Switch Monitor...",
            "Edit Disk...",
            "Inspect Disk...",
        ]
        assert window.app_actions.new_disk in window.app_actions.new_menu.actions()
        window.manager.settings.disk_folder = str(folder / "Virtual Hard Disks")
        window.app_actions.new_disk.trigger()
        await wait_until(lambda: isinstance(window.disk_commands.last_dialog, NewDiskWizard))
        wizard = window.disk_commands.last_dialog
        assert isinstance(wizard, NewDiskWizard)
        assert (folder / "Virtual Hard Disks").is_dir()  # the host's folder for disks is made
        assert edit(wizard, "locationEdit").text() == window.manager.settings.disk_folder
        await go_to(wizard, NewDiskPage.NAME_LOCATION)
        retype(qtbot, edit(wizard, "locationEdit"), str(folder))
        await go_to(wizard, NewDiskPage.CONFIGURE)
        retype(qtbot, edit(wizard, "sizeEdit"), SMALL_GB)
        await finish(wizard)
        assert not wizard.isVisible()
        await settle()

    run(body)
    assert qemu_info(folder / "New Virtual Hard Disk.qcow2", "qcow2")["virtual-size"] == 16 * MIB
