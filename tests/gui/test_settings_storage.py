"""Settings ▸ Hardware storage pages (Add Hardware, IDE and SCSI controllers, Hard Drive, DVD Drive)
driven like a user: clicks on the tree, the lists, the buttons, the drop-downs' pop-ups and the
radio buttons, typing paths, and Qt's own file dialog. Checks the tree, what each VM state locks
and why, every problem the dialog's label shows, the New/Edit/Inspect signals, and the exact
layout OK hands over. No libvirt: the dialog gets a ``StorageLayout``; disk files are made with
qemu-img in tmp_path.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path
from typing import TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialogButtonBox,
    QFileDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)
from pytestqt.qtbot import QtBot

from hvmanager.backend.models import VmConfig, VmState
from hvmanager.backend.storage_layout import Bus, Drive, DriveKind, HostDisk, StorageLayout
from hvmanager.backend.vmsettings_rules import SettingsChange
from hvmanager.ui.settings_pages import SettingsPage
from hvmanager.ui.settings_tree import PAGE_ROLE
from hvmanager.ui.vm_settings_dialog import SUMMARY_ROLE, VmSettingsDialog
from tests.gui.test_vm_settings_dialog import HOST, OFF_VM, buttons_enabled, problem_text, retype

W = TypeVar("W", bound=QWidget)
HD, DVD = DriveKind.HARD_DISK, DriveKind.DVD
IDE, SCSI = Bus.IDE, Bus.SCSI


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def disks(tmp_path: Path) -> dict[str, str]:
    """Real image files: two qcow2 disks, a VHD, a VHDX (VMs can't run it here) and an "ISO"."""
    made = {}
    for name, fmt in (
        ("web.qcow2", "qcow2"),
        ("data.qcow2", "qcow2"),
        ("old.vhd", "vpc"),
        ("new.vhdx", "vhdx"),
    ):
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(tmp_path / name), "16M"], check=True)
        made[name] = str(tmp_path / name)
    (tmp_path / "debian.iso").write_bytes(b"\0" * 65536)
    made["debian.iso"] = str(tmp_path / "debian.iso")
    return made


def gen1_layout(disks: dict[str, str]) -> StorageLayout:
    """Hyper-V's Generation 1 defaults: the boot disk on IDE 0:0, the DVD drive on IDE 1:0."""
    return StorageLayout(
        1,
        0,
        (
            Drive(HD, IDE, 0, 0, disks["web.qcow2"], "qcow2"),
            Drive(DVD, IDE, 1, 0, disks["debian.iso"], "raw"),
        ),
    )


def open_dialog(
    qtbot: QtBot,
    layout: StorageLayout,
    state: VmState = VmState.OFF,
    host_disks: tuple[HostDisk, ...] = (),
    config: VmConfig = OFF_VM,
) -> VmSettingsDialog:
    dialog = VmSettingsDialog(config, state, HOST, frozenset({"db"}), storage=layout, host_disks=host_disks)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def tree(dialog: QWidget) -> QTreeWidget:
    found = dialog.findChild(QTreeWidget, "settingsTree")
    assert found is not None
    return found


def hardware_outline(dialog: QWidget) -> list[object]:
    """The Hardware group as (title, summary, [children]) tuples."""

    def describe(item: QTreeWidgetItem) -> object:
        children = [describe(item.child(i)) for i in range(item.childCount())]
        summary = item.data(0, SUMMARY_ROLE)
        return (item.text(0), summary, children) if children else (item.text(0), summary)

    hardware = tree(dialog).topLevelItem(0)
    assert hardware is not None and hardware.text(0) == "Hardware"
    return [describe(hardware.child(i)) for i in range(hardware.childCount())]


def entry(dialog: QWidget, *titles: str, nth: int = 0) -> QTreeWidgetItem:
    """The tree entry at a path of titles under Hardware (``nth`` among equal last titles)."""
    item = tree(dialog).topLevelItem(0)
    assert item is not None
    for depth, title in enumerate(titles):
        matches = [item.child(i) for i in range(item.childCount()) if item.child(i).text(0) == title]
        assert matches, f"no tree entry {titles[: depth + 1]}"
        item = matches[nth if depth == len(titles) - 1 else 0]
    return item


def click_entry(qtbot: QtBot, dialog: QWidget, *titles: str, nth: int = 0) -> QWidget:
    """Click a tree entry; returns the page shown."""
    view = tree(dialog)
    item = entry(dialog, *titles, nth=nth)
    view.scrollToItem(item)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(item).center())
    page = shown(dialog)
    assert page is item.data(0, PAGE_ROLE)
    return page


def shown(dialog: VmSettingsDialog | QWidget) -> QWidget:
    assert isinstance(dialog, VmSettingsDialog)
    page = dialog.stack.currentWidget()
    assert page is not None
    return page


def on_page(dialog: QWidget, kind: type[W], name: str) -> W:
    """A widget of the page shown (several pages have widgets of the same name)."""
    widget = shown(dialog).findChild(kind, name)
    assert widget is not None, f"no {kind.__name__} named {name} on the page shown"
    return widget


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isVisible(), widget.objectName()
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(8, widget.height() // 2))


def click_button(qtbot: QtBot, dialog: QWidget, name: str) -> None:
    button = on_page(dialog, QPushButton, name)
    assert button.isEnabled(), f"{name} is disabled: {button.toolTip()}"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def pick_row(qtbot: QtBot, listing: QListWidget, text: str) -> None:
    items = listing.findItems(text, Qt.MatchFlag.MatchExactly)
    assert len(items) == 1, text
    qtbot.mouseClick(
        listing.viewport(), Qt.MouseButton.LeftButton, pos=listing.visualItemRect(items[0]).center()
    )


def add_drive(qtbot: QtBot, dialog: QWidget, kind_text: str) -> QWidget:
    """On a controller page: select the kind and click Add; returns the new drive's page."""
    pick_row(qtbot, on_page(dialog, QListWidget, "driveKindList"), kind_text)
    click_button(qtbot, dialog, "addDriveButton")
    return shown(dialog)


def combo_texts(combo: QComboBox) -> list[str]:
    return [combo.itemText(i) for i in range(combo.count())]


def choose(qtbot: QtBot, combo: QComboBox, text: str) -> None:
    """Open the drop-down with a click, type the entry's text in its pop-up and press Enter (the
    pop-up ignores a click that comes too soon after it opened)."""
    assert combo.findText(text) >= 0, f"{text!r} not offered: {combo_texts(combo)}"
    qtbot.mouseClick(combo, Qt.MouseButton.LeftButton)
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    qtbot.keyClicks(view, text)
    qtbot.keyClick(view, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not view.isVisible())
    assert combo.currentText() == text


def type_path(qtbot: QtBot, dialog: QWidget, name: str, text: str) -> None:
    retype(qtbot, on_page(dialog, QLineEdit, name), text)


def clear_path(qtbot: QtBot, dialog: QWidget, name: str) -> None:
    edit = on_page(dialog, QLineEdit, name)
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton)
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(edit, Qt.Key.Key_Delete)


def browse_and_pick(qtbot: QtBot, dialog: QWidget, field: str, file: Path) -> None:
    """Click the ``{field}BrowseButton``, then pick ``file`` in the ``{field}BrowseDialog`` it
    opens: go to its folder, type its name, click the dialog's Open button."""
    click_button(qtbot, dialog, f"{field}BrowseButton")
    picker = shown(dialog).findChild(QFileDialog, f"{field}BrowseDialog")
    assert picker is not None
    qtbot.waitExposed(picker)
    picker.setDirectory(str(file.parent))
    name_edit = picker.findChild(QLineEdit, "fileNameEdit")
    assert name_edit is not None
    qtbot.keyClicks(name_edit, file.name)
    button_box = picker.findChild(QDialogButtonBox, "buttonBox")
    assert button_box is not None
    qtbot.mouseClick(button_box.buttons()[0], Qt.MouseButton.LeftButton)


def note(dialog: QWidget) -> str:
    page = shown(dialog)
    assert isinstance(page, SettingsPage)
    return page.note.label.text() if page.note.isVisible() else ""


def ok_change(qtbot: QtBot, dialog: QWidget) -> SettingsChange:
    """Click OK; returns the change it emitted."""
    assert isinstance(dialog, VmSettingsDialog)
    with qtbot.waitSignal(dialog.apply_requested) as emitted:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    change = emitted.args[0]
    assert isinstance(change, SettingsChange)
    return change


# --- the tree -------------------------------------------------------------------------------


def test_tree_lists_controllers_and_drives_in_hyper_v_order(qtbot: QtBot, disks: dict[str, str]) -> None:
    layout = dataclasses.replace(
        gen1_layout(disks),
        scsi_controllers=2,
        drives=(
            *gen1_layout(disks).drives,
            Drive(HD, SCSI, 1, 3, disks["data.qcow2"], "qcow2"),
            Drive(HD, SCSI, 1, 0, "/dev/loop7", None, True),
            Drive(DVD, IDE, 0, 1, None),
        ),
    )
    dialog = open_dialog(qtbot, layout)

    assert hardware_outline(dialog) == [
        ("Add Hardware", None),
        ("BIOS", "Boot from CD"),
        ("Memory", "1024 MB"),
        ("Processor", "1 Virtual processor"),
        ("IDE Controller 0", None, [("Hard Drive", "web.qcow2"), ("DVD Drive", "None")]),
        ("IDE Controller 1", None, [("DVD Drive", "debian.iso")]),
        ("SCSI Controller 0", None),
        (
            "SCSI Controller 1",
            None,
            [("Hard Drive", "Physical disk /dev/loop7"), ("Hard Drive", "data.qcow2")],
        ),
    ]
    assert entry(dialog, "SCSI Controller 1", "Hard Drive", nth=1).toolTip(0) == (
        f"Hard drive on SCSI Controller 1, Location 3: {disks['data.qcow2']} (QCOW2)"
    )
    assert dialog.change() == SettingsChange()
    assert buttons_enabled(dialog) == (True, False)


def test_generation_2_has_no_ide_and_its_scsi_controllers_take_dvd_drives(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    layout = StorageLayout(2, 1, (Drive(HD, SCSI, 0, 0, disks["web.qcow2"], "qcow2"),))
    dialog = open_dialog(qtbot, layout, config=dataclasses.replace(OFF_VM, generation=2))

    assert [row[0] for row in hardware_outline(dialog)] == [
        "Add Hardware",
        "Firmware",
        "Memory",
        "Processor",
        "SCSI Controller 0",
    ]
    click_entry(qtbot, dialog, "SCSI Controller 0")
    kinds = on_page(dialog, QListWidget, "driveKindList")
    assert [kinds.item(i).text() for i in range(kinds.count())] == ["Hard Drive", "DVD Drive"]
    page = add_drive(qtbot, dialog, "DVD Drive")
    assert page.objectName() == "dvdDrivePage"
    assert dialog.change() == SettingsChange(
        storage=dataclasses.replace(layout, drives=(*layout.drives, Drive(DVD, SCSI, 0, 1, None)))
    )


def test_a_generation_1_scsi_controller_takes_only_hard_drives(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, dataclasses.replace(gen1_layout(disks), scsi_controllers=1))

    click_entry(qtbot, dialog, "SCSI Controller 0")

    kinds = on_page(dialog, QListWidget, "driveKindList")
    assert [kinds.item(i).text() for i in range(kinds.count())] == ["Hard Drive"]


def test_without_a_layout_there_are_no_storage_pages(qtbot: QtBot) -> None:
    dialog = VmSettingsDialog(OFF_VM, VmState.OFF, HOST, frozenset())
    qtbot.addWidget(dialog)

    assert [row[0] for row in hardware_outline(dialog)] == ["BIOS", "Memory", "Processor"]
    assert dialog.change().storage is None


# --- adding a SCSI controller and a hard drive, then OK --------------------------------------


def test_add_controller_and_hard_drive_then_ok_hands_over_that_layout(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))

    click_entry(qtbot, dialog, "Add Hardware")
    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), "SCSI Controller")
    click_button(qtbot, dialog, "addHardwareButton")

    assert shown(dialog).objectName() == "scsiController0Page"
    assert tree(dialog).currentItem() is entry(dialog, "SCSI Controller 0")
    assert dialog.change() == SettingsChange(
        storage=dataclasses.replace(gen1_layout(disks), scsi_controllers=1)
    )

    page = add_drive(qtbot, dialog, "Hard Drive")
    assert page.objectName() == "hardDrivePage"
    assert tree(dialog).currentItem() is entry(dialog, "SCSI Controller 0", "Hard Drive")
    assert on_page(dialog, QComboBox, "controllerCombo").currentText() == "SCSI Controller 0"
    assert on_page(dialog, QComboBox, "locationCombo").currentText() == "0"
    assert problem_text(dialog) == (
        "The hard drive at SCSI Controller 0, Location 0 has no disk: choose a virtual hard disk or a "
        "physical disk."
    )
    assert buttons_enabled(dialog) == (False, False)

    type_path(qtbot, dialog, "diskPathEdit", disks["data.qcow2"])
    choose(qtbot, on_page(dialog, QComboBox, "locationCombo"), "5")

    assert problem_text(dialog) == ""
    assert entry(dialog, "SCSI Controller 0", "Hard Drive").data(0, SUMMARY_ROLE) == "data.qcow2"
    expected = StorageLayout(
        1, 1, (*gen1_layout(disks).drives, Drive(HD, SCSI, 0, 5, disks["data.qcow2"], "qcow2"))
    )
    assert ok_change(qtbot, dialog) == SettingsChange(storage=expected)
    assert not dialog.isVisible()


def test_browse_fills_in_the_file_chosen(qtbot: QtBot, disks: dict[str, str], tmp_path: Path) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 0")
    add_drive(qtbot, dialog, "Hard Drive")

    browse_and_pick(qtbot, dialog, "disk", tmp_path / "old.vhd")

    assert on_page(dialog, QLineEdit, "diskPathEdit").text() == disks["old.vhd"]
    assert problem_text(dialog) == ""
    assert dialog.change().storage == dataclasses.replace(
        gen1_layout(disks), drives=(*gen1_layout(disks).drives, Drive(HD, IDE, 0, 1, disks["old.vhd"], "vpc"))
    )


def test_iso_browse_fills_in_the_image_chosen(qtbot: QtBot, disks: dict[str, str], tmp_path: Path) -> None:
    dialog = open_dialog(qtbot, dataclasses.replace(gen1_layout(disks), drives=gen1_layout(disks).drives[:1]))
    click_entry(qtbot, dialog, "IDE Controller 1")
    add_drive(qtbot, dialog, "DVD Drive")
    click(qtbot, on_page(dialog, QRadioButton, "imageFileRadio"))

    browse_and_pick(qtbot, dialog, "iso", tmp_path / "debian.iso")

    assert on_page(dialog, QLineEdit, "isoPathEdit").text() == disks["debian.iso"]
    assert dialog.change().storage == gen1_layout(disks)  # the DVD drive the VM had, back at IDE 1:0
    assert dialog.change() == SettingsChange(storage=gen1_layout(disks))


# --- moving and removing ---------------------------------------------------------------------


def test_moving_a_drive_offers_only_free_locations_and_moves_its_entry(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 0", "Hard Drive")
    controller = on_page(dialog, QComboBox, "controllerCombo")
    location = on_page(dialog, QComboBox, "locationCombo")
    assert combo_texts(controller) == ["IDE Controller 0", "IDE Controller 1"]
    assert combo_texts(location) == ["0", "1"]

    choose(qtbot, controller, "IDE Controller 1")

    assert combo_texts(location) == ["1"]  # 0 holds the DVD drive
    assert [row[0] for row in hardware_outline(dialog)][4:] == ["IDE Controller 0", "IDE Controller 1"]
    assert hardware_outline(dialog)[5] == (
        "IDE Controller 1",
        None,
        [("DVD Drive", "debian.iso"), ("Hard Drive", "web.qcow2")],
    )
    assert tree(dialog).currentItem() is entry(dialog, "IDE Controller 1", "Hard Drive")
    assert dialog.change() == SettingsChange(
        storage=dataclasses.replace(
            gen1_layout(disks),
            drives=(Drive(HD, IDE, 1, 1, disks["web.qcow2"], "qcow2"), gen1_layout(disks).drives[1]),
        )
    )


def test_remove_a_drive(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 1", "DVD Drive")

    click_button(qtbot, dialog, "removeDriveButton")

    assert shown(dialog).objectName() == "ideController1Page"
    assert hardware_outline(dialog)[5] == ("IDE Controller 1", None)
    assert ok_change(qtbot, dialog) == SettingsChange(
        storage=dataclasses.replace(gen1_layout(disks), drives=gen1_layout(disks).drives[:1])
    )


def test_remove_a_scsi_controller_with_its_drives_renumbers_the_later_ones(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    layout = StorageLayout(
        1,
        3,
        (
            *gen1_layout(disks).drives,
            Drive(HD, SCSI, 1, 0, disks["data.qcow2"], "qcow2"),
            Drive(HD, SCSI, 2, 4, disks["old.vhd"], "vpc"),
        ),
    )
    dialog = open_dialog(qtbot, layout)
    click_entry(qtbot, dialog, "SCSI Controller 1")

    click_button(qtbot, dialog, "removeControllerButton")

    assert [row[0] for row in hardware_outline(dialog)][6:] == ["SCSI Controller 0", "SCSI Controller 1"]
    assert hardware_outline(dialog)[7] == ("SCSI Controller 1", None, [("Hard Drive", "old.vhd")])
    assert shown(dialog).objectName() == "scsiController0Page"
    assert ok_change(qtbot, dialog) == SettingsChange(
        storage=StorageLayout(
            1, 2, (*gen1_layout(disks).drives, Drive(HD, SCSI, 1, 4, disks["old.vhd"], "vpc"))
        )
    )


# --- what is full --------------------------------------------------------------------------


def test_a_full_ide_controller_refuses_add_and_says_why(qtbot: QtBot, disks: dict[str, str]) -> None:
    layout = dataclasses.replace(
        gen1_layout(disks), drives=(*gen1_layout(disks).drives, Drive(DVD, IDE, 0, 1, None))
    )
    dialog = open_dialog(qtbot, layout)

    click_entry(qtbot, dialog, "IDE Controller 0")

    add = on_page(dialog, QPushButton, "addDriveButton")
    reason = (
        "Both locations of IDE Controller 0 are in use. Remove a drive from it, or add the drive to "
        "another controller."
    )
    assert not add.isEnabled()
    assert add.toolTip() == reason
    assert note(dialog) == reason
    click_entry(qtbot, dialog, "IDE Controller 1")
    assert on_page(dialog, QPushButton, "addDriveButton").isEnabled()
    assert note(dialog) == ""
    # the full controller is not offered to the other drives
    click_entry(qtbot, dialog, "IDE Controller 1", "DVD Drive")
    assert combo_texts(on_page(dialog, QComboBox, "controllerCombo")) == ["IDE Controller 1"]


def test_a_fifth_scsi_controller_is_refused(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, dataclasses.replace(gen1_layout(disks), scsi_controllers=3))
    click_entry(qtbot, dialog, "Add Hardware")

    click_button(qtbot, dialog, "addHardwareButton")

    assert shown(dialog).objectName() == "scsiController3Page"
    click_entry(qtbot, dialog, "Add Hardware")
    add = on_page(dialog, QPushButton, "addHardwareButton")
    assert not add.isEnabled()
    assert add.toolTip() == (
        "This virtual machine already has 4 SCSI controllers, the most a virtual machine can have."
    )
    assert note(dialog) == add.toolTip()


# --- media ---------------------------------------------------------------------------------


def test_dvd_drive_none_and_image_file(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 1", "DVD Drive")
    path = on_page(dialog, QLineEdit, "isoPathEdit")
    assert on_page(dialog, QRadioButton, "imageFileRadio").isChecked()
    assert path.text() == disks["debian.iso"]

    click(qtbot, on_page(dialog, QRadioButton, "noMediaRadio"))

    assert not path.isEnabled()
    assert not on_page(dialog, QPushButton, "isoBrowseButton").isEnabled()
    assert entry(dialog, "IDE Controller 1", "DVD Drive").data(0, SUMMARY_ROLE) == "None"
    none = dataclasses.replace(
        gen1_layout(disks), drives=(gen1_layout(disks).drives[0], Drive(DVD, IDE, 1, 0, None))
    )
    assert dialog.change() == SettingsChange(storage=none)

    click(qtbot, on_page(dialog, QRadioButton, "imageFileRadio"))
    clear_path(qtbot, dialog, "isoPathEdit")
    assert problem_text(dialog) == (
        "The DVD drive at IDE Controller 1, Location 0 has no image file: enter the path of one, or "
        "choose None."
    )
    type_path(qtbot, dialog, "isoPathEdit", disks["debian.iso"] + ".missing")
    assert problem_text(dialog) == (
        f"Image file at IDE Controller 1, Location 0: '{disks['debian.iso']}.missing' does not exist or "
        "is not a file."
    )
    assert buttons_enabled(dialog) == (False, False)
    type_path(qtbot, dialog, "isoPathEdit", disks["debian.iso"])
    assert dialog.change() == SettingsChange()


def test_physical_disk_offers_the_usable_host_disks_only(qtbot: QtBot, disks: dict[str, str]) -> None:
    host_disks = (
        HostDisk("/dev/sda", 20 << 30, "QEMU HARDDISK", "mounted at /"),
        HostDisk("/dev/loop7", 64 << 20, "loop device"),
        HostDisk("/dev/loop8", 32 << 20, "loop device", "used by the virtual machine 'db'"),
    )
    dialog = open_dialog(qtbot, gen1_layout(disks), host_disks=host_disks)
    click_entry(qtbot, dialog, "IDE Controller 0")
    add_drive(qtbot, dialog, "Hard Drive")
    combo = on_page(dialog, QComboBox, "physicalDiskCombo")
    assert not combo.isEnabled()

    click(qtbot, on_page(dialog, QRadioButton, "physicalDiskRadio"))

    assert combo.isEnabled()
    assert not on_page(dialog, QLineEdit, "diskPathEdit").isEnabled()
    assert combo_texts(combo) == [
        "/dev/sda (20 GB, QEMU HARDDISK)",
        "/dev/loop7 (64 MB, loop device)",
        "/dev/loop8 (32 MB, loop device)",
    ]
    model = combo.model()
    assert isinstance(model, QStandardItemModel)
    assert [model.item(row).isEnabled() for row in range(3)] == [False, True, False]
    assert model.item(0).toolTip() == "mounted at /"
    assert combo.currentText() == "/dev/loop7 (64 MB, loop device)"
    unusable = on_page(dialog, QLabel, "unusableDisksLabel")
    assert unusable.isVisible()
    assert unusable.text() == (
        "Not available: /dev/sda: mounted at /; /dev/loop8: used by the virtual machine 'db'"
    )
    assert problem_text(dialog) == ""
    assert entry(dialog, "IDE Controller 0", "Hard Drive", nth=1).data(0, SUMMARY_ROLE) == (
        "Physical disk /dev/loop7"
    )
    assert ok_change(qtbot, dialog) == SettingsChange(
        storage=dataclasses.replace(
            gen1_layout(disks),
            drives=(*gen1_layout(disks).drives, Drive(HD, IDE, 0, 1, "/dev/loop7", None, True)),
        )
    )


def test_physical_disk_radio_is_off_without_a_usable_disk(qtbot: QtBot, disks: dict[str, str]) -> None:
    host_disks = (HostDisk("/dev/sda", 20 << 30, "QEMU HARDDISK", "mounted at /"),)
    dialog = open_dialog(qtbot, gen1_layout(disks), host_disks=host_disks)
    click_entry(qtbot, dialog, "IDE Controller 0")
    add_drive(qtbot, dialog, "Hard Drive")

    assert not on_page(dialog, QRadioButton, "physicalDiskRadio").isEnabled()
    assert on_page(dialog, QLabel, "unusableDisksLabel").text() == "Not available: /dev/sda: mounted at /"


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        (
            "disk.qcow2",
            "Virtual hard disk at IDE Controller 0, Location 1: 'disk.qcow2' is not an absolute path.",
        ),
        (
            "{tmp}/missing.qcow2",
            "Virtual hard disk at IDE Controller 0, Location 1: '{tmp}/missing.qcow2' does not exist or is "
            "not a file.",
        ),
        (
            "{tmp}",
            "Virtual hard disk at IDE Controller 0, Location 1: '{tmp}' does not exist or is not a file.",
        ),
        (
            "{tmp}/new.vhdx",
            "{tmp}/new.vhdx: Virtual machines can't use VHDX disks directly here (libvirt has no VHDX disk "
            "format): convert it to QCOW2 first, e.g. qemu-img convert -f vhdx -O qcow2 ...",
        ),
        (
            "{tmp}/web.qcow2",
            "{tmp}/web.qcow2 is attached more than once; a disk can be attached to one location only.",
        ),
    ],
)
def test_each_bad_disk_path_is_shown(
    qtbot: QtBot, disks: dict[str, str], tmp_path: Path, typed: str, reason: str
) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 0")
    add_drive(qtbot, dialog, "Hard Drive")

    type_path(qtbot, dialog, "diskPathEdit", typed.format(tmp=tmp_path))

    assert problem_text(dialog) == reason.format(tmp=tmp_path)
    assert buttons_enabled(dialog) == (False, False)
    with qtbot.assertNotEmitted(dialog.apply_requested):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert dialog.isVisible()


def test_two_drives_in_one_location_from_elsewhere_are_shown_and_can_be_moved_apart(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    """The pages never offer a location in use, so the user can't put two drives in one; a VM
    defined elsewhere may have that, though: both drives are shown, the change isn't blamed for it,
    and moving one drive away clears it."""
    crowded = dataclasses.replace(
        gen1_layout(disks),
        drives=(*gen1_layout(disks).drives, Drive(HD, IDE, 0, 0, disks["data.qcow2"], "qcow2")),
    )
    dialog = open_dialog(qtbot, crowded)
    assert hardware_outline(dialog)[4] == (
        "IDE Controller 0",
        None,
        [("Hard Drive", "web.qcow2"), ("Hard Drive", "data.qcow2")],
    )

    click_entry(qtbot, dialog, "IDE Controller 0", "Hard Drive", nth=1)
    assert combo_texts(on_page(dialog, QComboBox, "locationCombo")) == ["0", "1"]
    choose(qtbot, on_page(dialog, QComboBox, "locationCombo"), "1")

    assert problem_text(dialog) == ""
    assert dialog.change() == SettingsChange(
        storage=dataclasses.replace(
            crowded, drives=(*gen1_layout(disks).drives, Drive(HD, IDE, 0, 1, disks["data.qcow2"], "qcow2"))
        )
    )


# --- New, Edit, Inspect ----------------------------------------------------------------------


def test_new_edit_and_inspect_ask_the_caller(qtbot: QtBot, disks: dict[str, str], tmp_path: Path) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 0", "Hard Drive")

    with qtbot.waitSignal(dialog.edit_disk_requested) as edit:
        click_button(qtbot, dialog, "editDiskButton")
    with qtbot.waitSignal(dialog.inspect_disk_requested) as inspect:
        click_button(qtbot, dialog, "inspectDiskButton")
    assert edit.args == [disks["web.qcow2"]]
    assert inspect.args == [disks["web.qcow2"]]

    click_entry(qtbot, dialog, "IDE Controller 0")
    add_drive(qtbot, dialog, "Hard Drive")
    assert not on_page(dialog, QPushButton, "editDiskButton").isEnabled()
    assert not on_page(dialog, QPushButton, "inspectDiskButton").isEnabled()
    with qtbot.waitSignal(dialog.new_disk_requested):
        click_button(qtbot, dialog, "newDiskButton")
    slot = dialog.current_drive_slot()
    assert slot == (IDE, 0, 1)
    made = tmp_path / "made-by-the-wizard.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(made), "8M"], check=True)
    dialog.set_drive_path(slot, str(made))

    assert on_page(dialog, QLineEdit, "diskPathEdit").text() == str(made)
    assert on_page(dialog, QPushButton, "inspectDiskButton").isEnabled()
    assert problem_text(dialog) == ""
    assert dialog.change().storage == dataclasses.replace(
        gen1_layout(disks), drives=(*gen1_layout(disks).drives, Drive(HD, IDE, 0, 1, str(made), "qcow2"))
    )


# --- what the VM's state allows --------------------------------------------------------------


def running_layout(disks: dict[str, str]) -> StorageLayout:
    return StorageLayout(
        1, 1, (*gen1_layout(disks).drives, Drive(HD, SCSI, 0, 0, disks["data.qcow2"], "qcow2"))
    )


def test_while_running_ide_is_read_only_and_controllers_are_fixed(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    dialog = open_dialog(qtbot, running_layout(disks), VmState.RUNNING)

    click_entry(qtbot, dialog, "IDE Controller 0")
    add = on_page(dialog, QPushButton, "addDriveButton")
    assert not add.isEnabled()
    assert note(dialog).startswith(
        "Drives on an IDE controller can't be added, changed or removed while the virtual machine is running"
    )
    assert add.toolTip() == note(dialog)

    click_entry(qtbot, dialog, "IDE Controller 0", "Hard Drive")
    for name in ("controllerCombo", "locationCombo"):
        assert not on_page(dialog, QComboBox, name).isEnabled()
    assert on_page(dialog, QLineEdit, "diskPathEdit").isReadOnly()
    for name in ("removeDriveButton", "newDiskButton", "diskBrowseButton"):
        assert not on_page(dialog, QPushButton, name).isEnabled(), name
    assert on_page(dialog, QPushButton, "inspectDiskButton").isEnabled()
    assert "IDE controller" in note(dialog)

    click_entry(qtbot, dialog, "Add Hardware")
    assert not on_page(dialog, QPushButton, "addHardwareButton").isEnabled()
    assert note(dialog) == (
        "SCSI controllers can't be added or removed while the virtual machine is running. To change them, "
        "shut down the virtual machine and then reopen this window."
    )
    click_entry(qtbot, dialog, "SCSI Controller 0")
    assert not on_page(dialog, QPushButton, "removeControllerButton").isEnabled()
    assert on_page(dialog, QPushButton, "addDriveButton").isEnabled()


def test_while_running_a_scsi_hard_drive_can_be_removed_and_added(
    qtbot: QtBot, disks: dict[str, str]
) -> None:
    dialog = open_dialog(qtbot, running_layout(disks), VmState.RUNNING)
    click_entry(qtbot, dialog, "SCSI Controller 0", "Hard Drive")
    assert not on_page(dialog, QComboBox, "locationCombo").isEnabled()
    assert note(dialog) == (
        "The controller and location of an attached drive can't be changed while the virtual machine is "
        "running; remove the drive and add a new one instead."
    )

    click_button(qtbot, dialog, "removeDriveButton")
    add_drive(qtbot, dialog, "Hard Drive")
    controller = on_page(dialog, QComboBox, "controllerCombo")
    assert combo_texts(controller) == ["SCSI Controller 0"]  # no IDE while running
    assert on_page(dialog, QComboBox, "locationCombo").isEnabled()
    type_path(qtbot, dialog, "diskPathEdit", disks["old.vhd"])
    choose(qtbot, on_page(dialog, QComboBox, "locationCombo"), "2")

    assert problem_text(dialog) == ""
    assert ok_change(qtbot, dialog) == SettingsChange(
        storage=StorageLayout(
            1, 1, (*gen1_layout(disks).drives, Drive(HD, SCSI, 0, 2, disks["old.vhd"], "vpc"))
        )
    )


def test_while_running_a_dvd_drive_changes_only_its_media(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, running_layout(disks), VmState.RUNNING)
    click_entry(qtbot, dialog, "IDE Controller 1", "DVD Drive")

    assert not on_page(dialog, QPushButton, "removeDriveButton").isEnabled()
    assert (
        note(dialog)
        == "While the virtual machine is running, only the media of this DVD drive can be changed."
    )
    click(qtbot, on_page(dialog, QRadioButton, "noMediaRadio"))

    assert problem_text(dialog) == ""
    drives = running_layout(disks).drives
    assert ok_change(qtbot, dialog) == SettingsChange(
        storage=dataclasses.replace(
            running_layout(disks), drives=(drives[0], Drive(DVD, IDE, 1, 0, None), drives[2])
        )
    )


def test_a_running_generation_2_vm_adds_no_dvd_drive(qtbot: QtBot, disks: dict[str, str]) -> None:
    layout = StorageLayout(2, 1, (Drive(HD, SCSI, 0, 0, disks["web.qcow2"], "qcow2"),))
    dialog = open_dialog(qtbot, layout, VmState.RUNNING, config=dataclasses.replace(OFF_VM, generation=2))
    click_entry(qtbot, dialog, "SCSI Controller 0")

    pick_row(qtbot, on_page(dialog, QListWidget, "driveKindList"), "DVD Drive")

    add = on_page(dialog, QPushButton, "addDriveButton")
    assert not add.isEnabled()
    assert add.toolTip().startswith(
        "DVD drives can't be added or removed while the virtual machine is running"
    )
    pick_row(qtbot, on_page(dialog, QListWidget, "driveKindList"), "Hard Drive")
    assert add.isEnabled()


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (VmState.SAVED, "A saved virtual machine resumes with the drives it was saved with."),
        (VmState.STOPPING, "Wait until it is running or off, then reopen this window."),
    ],
)
def test_a_saved_or_stopping_vm_changes_no_storage(
    qtbot: QtBot, disks: dict[str, str], state: VmState, reason: str
) -> None:
    dialog = open_dialog(qtbot, running_layout(disks), state)

    for titles in (("Add Hardware",), ("IDE Controller 1",), ("SCSI Controller 0",)):
        click_entry(qtbot, dialog, *titles)
        for button in shown(dialog).findChildren(QPushButton):
            assert not button.isEnabled() or not button.isVisible(), (titles, button.objectName())
        assert note(dialog).endswith(reason), titles
    click_entry(qtbot, dialog, "IDE Controller 1", "DVD Drive")
    assert not on_page(dialog, QRadioButton, "noMediaRadio").isEnabled()
    assert note(dialog).endswith(reason)
    click_entry(qtbot, dialog, "SCSI Controller 0", "Hard Drive")
    assert not on_page(dialog, QPushButton, "removeDriveButton").isEnabled()
    assert not on_page(dialog, QRadioButton, "physicalDiskRadio").isEnabled()
    assert on_page(dialog, QLineEdit, "diskPathEdit").isReadOnly()


# --- reloading -------------------------------------------------------------------------------


def test_set_config_reloads_the_storage_and_keeps_the_page(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "IDE Controller 1", "DVD Drive")
    click(qtbot, on_page(dialog, QRadioButton, "noMediaRadio"))
    applied = dialog.change().storage
    assert applied is not None

    dialog.set_config(OFF_VM, VmState.RUNNING, storage=applied)

    assert dialog.change() == SettingsChange()
    assert shown(dialog).objectName() == "dvdDrivePage"
    assert tree(dialog).currentItem() is entry(dialog, "IDE Controller 1", "DVD Drive")
    assert on_page(dialog, QRadioButton, "noMediaRadio").isChecked()
    click_entry(qtbot, dialog, "IDE Controller 0")
    assert not on_page(dialog, QPushButton, "addDriveButton").isEnabled()  # running now


def test_set_config_without_storage_keeps_what_is_shown(qtbot: QtBot, disks: dict[str, str]) -> None:
    dialog = open_dialog(qtbot, gen1_layout(disks))
    click_entry(qtbot, dialog, "Add Hardware")
    click_button(qtbot, dialog, "addHardwareButton")

    dialog.set_config(OFF_VM, VmState.OFF)

    assert dialog.change() == SettingsChange()
    assert [row[0] for row in hardware_outline(dialog)][-1] == "SCSI Controller 0"
    assert shown(dialog).objectName() == "scsiController0Page"
