"""The VM Settings dialog driven like a user: clicks on the tree, buttons, radios and check boxes,
typing into the fields. Checks what ``change()`` reports, the problem label, what is locked in
each VM state, and ``apply_requested`` on OK and Apply. No libvirt: the dialog gets plain data.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)
from pytestqt.qtbot import QtBot

from hvmanager.backend.models import (
    BootDevice,
    HostInfo,
    KernelBoot,
    MemoryConfig,
    StartAction,
    StopAction,
    VmConfig,
    VmState,
)
from hvmanager.backend.vmsettings import SettingsChange
from hvmanager.ui.vm_settings_dialog import SUMMARY_ROLE, VmSettingsDialog

W = TypeVar("W", bound=QWidget)
HOST = HostInfo(
    "qemu:///system", "hyperhost", cpus=4, memory_mib=16384, libvirt_version="9.0.0", hypervisor="QEMU"
)
OFF_VM = VmConfig("web", "u-1", "qemu", MemoryConfig(1024), processors=1, generation=1, notes="Front end")
DYNAMIC_VM = dataclasses.replace(OFF_VM, memory=MemoryConfig(1024, True, 512, 2048))
TREE = {
    "Hardware": ["BIOS", "Memory", "Processor"],
    "Management": ["Name", "Automatic Start Action", "Automatic Stop Action"],
}


# --- helpers --------------------------------------------------------------------------------


def open_dialog(qtbot: QtBot, config: VmConfig = OFF_VM, state: VmState = VmState.OFF) -> VmSettingsDialog:
    dialog = VmSettingsDialog(config, state, HOST, frozenset({"db", "mail"}))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def find(dialog: QWidget, kind: type[W], name: str) -> W:
    widget = dialog.findChild(kind, name)
    assert widget is not None, f"no {kind.__name__} named {name}"
    return widget


def tree_item(dialog: QWidget, title: str) -> QTreeWidgetItem:
    tree = find(dialog, QTreeWidget, "settingsTree")
    flags = Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive
    items = tree.findItems(title, flags, 0)
    assert len(items) == 1, f"tree entry {title!r}"
    return items[0]


def click_tree(qtbot: QtBot, dialog: QWidget, title: str) -> None:
    tree = find(dialog, QTreeWidget, "settingsTree")
    rect = tree.visualItemRect(tree_item(dialog, title))
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def summary(dialog: QWidget, title: str) -> str:
    return str(tree_item(dialog, title).data(0, SUMMARY_ROLE))


def click(qtbot: QtBot, widget: QWidget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=QPoint(8, widget.height() // 2))


def type_number(qtbot: QtBot, spin: QSpinBox, value: int) -> None:
    """Select the spin box's text and type ``value``, as a user would."""
    editor = spin.lineEdit()
    assert editor is not None
    qtbot.mouseClick(editor, Qt.MouseButton.LeftButton)
    qtbot.keyClick(editor, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(editor, str(value))


def retype(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton)
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(edit, text)


def problem_text(dialog: QWidget) -> str:
    label = find(dialog, QLabel, "problemLabel")
    return label.text() if label.isVisible() else ""


def buttons_enabled(dialog: QWidget) -> tuple[bool, bool]:
    """(OK, Apply) enabled."""
    return (
        find(dialog, QPushButton, "okButton").isEnabled(),
        find(dialog, QPushButton, "applyButton").isEnabled(),
    )


def select_list_row(qtbot: QtBot, listing: QListWidget, row: int) -> None:
    item = listing.item(row)
    assert item is not None
    rect = listing.visualItemRect(item)
    qtbot.mouseClick(listing.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


# --- window and tree ------------------------------------------------------------------------


def test_title_tree_and_summaries(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)

    assert dialog.windowTitle() == "Settings for web on hyperhost"
    tree = find(dialog, QTreeWidget, "settingsTree")
    groups = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    assert {
        g.text(0): [g.child(j).text(0) for j in range(g.childCount())] for g in groups if g is not None
    } == TREE
    assert [summary(dialog, t) for t in [*TREE["Hardware"], *TREE["Management"]]] == [
        "Boot from CD",
        "1024 MB",
        "1 Virtual processor",
        "web",
        "None",
        "Save",
    ]


def test_generation_2_has_firmware_instead_of_bios(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, dataclasses.replace(OFF_VM, generation=2))

    tree = find(dialog, QTreeWidget, "settingsTree")
    assert not tree.findItems("BIOS", Qt.MatchFlag.MatchRecursive, 0)
    click_tree(qtbot, dialog, "Firmware")
    assert dialog.stack.currentWidget() is dialog.boot_page
    assert dialog.boot_page.title == "Firmware"


@pytest.mark.parametrize(
    ("title", "widget"),
    [
        ("BIOS", "bootOrderList"),
        ("Memory", "startupMemoryEdit"),
        ("Processor", "processorSpin"),
        ("Name", "nameEdit"),
        ("Automatic Start Action", "startDelaySpin"),
        ("Automatic Stop Action", "stopSaveRadio"),
    ],
)
def test_clicking_a_tree_entry_shows_its_page(qtbot: QtBot, title: str, widget: str) -> None:
    dialog = open_dialog(qtbot)
    if title == "BIOS":
        click_tree(qtbot, dialog, "Name")

    click_tree(qtbot, dialog, title)

    assert find(dialog, QWidget, widget).isVisible()


def test_clicking_a_group_keeps_the_page(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Memory")

    click_tree(qtbot, dialog, "Management")

    assert find(dialog, QSpinBox, "startupMemoryEdit").isVisible()
    selected = find(dialog, QTreeWidget, "settingsTree").selectedItems()
    assert [item.text(0) for item in selected] == ["Memory"]


def test_nothing_changed_at_first(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)

    assert dialog.change() == SettingsChange()
    assert problem_text(dialog) == ""
    assert buttons_enabled(dialog) == (True, False)


# --- BIOS / boot order ----------------------------------------------------------------------


def test_move_up_and_down_change_the_boot_order(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    listing = find(dialog, QListWidget, "bootOrderList")
    up = find(dialog, QPushButton, "moveUpButton")
    down = find(dialog, QPushButton, "moveDownButton")
    assert [listing.item(i).text() for i in range(3)] == ["CD", "Hard Drive", "Network Adapter"]
    assert not up.isEnabled()

    select_list_row(qtbot, listing, 2)
    assert not down.isEnabled()
    click(qtbot, up)
    click(qtbot, up)

    assert [listing.item(i).text() for i in range(3)] == ["Network Adapter", "CD", "Hard Drive"]
    assert not up.isEnabled()
    assert dialog.change() == SettingsChange(
        boot_order=(BootDevice.NETWORK, BootDevice.CD, BootDevice.HARD_DRIVE)
    )
    assert summary(dialog, "BIOS") == "Boot from Network Adapter"
    assert buttons_enabled(dialog) == (True, True)

    click(qtbot, down)
    click(qtbot, down)
    assert dialog.change() == SettingsChange()
    assert buttons_enabled(dialog) == (True, False)


def test_kernel_boot_says_the_boot_order_is_unused(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, dataclasses.replace(OFF_VM, kernel_boot=KernelBoot("/k/vmlinuz")))

    assert summary(dialog, "BIOS") == "Boot from Linux kernel"
    assert dialog.boot_page.note.isVisible()
    assert "/k/vmlinuz" in dialog.boot_page.note.label.text()
    assert "not used while a kernel is set" in dialog.boot_page.note.label.text()


def test_boot_order_of_a_running_vm_is_for_the_next_start(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, state=VmState.RUNNING)

    assert find(dialog, QListWidget, "bootOrderList").isEnabled()
    assert dialog.boot_page.note.label.text() == "The boot order takes effect at the next start."


# --- memory ---------------------------------------------------------------------------------


def test_typing_startup_memory(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Memory")

    type_number(qtbot, find(dialog, QSpinBox, "startupMemoryEdit"), 2048)

    assert dialog.change() == SettingsChange(memory=MemoryConfig(2048))
    assert summary(dialog, "Memory") == "2048 MB"
    assert buttons_enabled(dialog) == (True, True)


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        (16, "Startup memory must be at least 32 MB."),
        (1025, "Startup memory must be a multiple of 2 MB."),
        (20000, "Startup memory can be at most 16384 MB on this server."),
    ],
)
def test_invalid_startup_memory_shows_a_problem(qtbot: QtBot, typed: int, reason: str) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Memory")
    spin = find(dialog, QSpinBox, "startupMemoryEdit")

    type_number(qtbot, spin, typed)

    assert problem_text(dialog) == reason
    assert buttons_enabled(dialog) == (False, False)
    type_number(qtbot, spin, 1024)
    assert problem_text(dialog) == ""
    assert buttons_enabled(dialog) == (True, False)


def test_enabling_dynamic_memory(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Memory")
    minimum = find(dialog, QSpinBox, "minimumMemoryEdit")
    maximum = find(dialog, QSpinBox, "maximumMemoryEdit")
    assert not minimum.isEnabled() and not maximum.isEnabled()

    click(qtbot, find(dialog, QCheckBox, "dynamicMemoryCheck"))

    assert minimum.isEnabled() and maximum.isEnabled()
    assert dialog.change() == SettingsChange(memory=MemoryConfig(1024, True, 512, 2048))
    type_number(qtbot, maximum, 4096)
    type_number(qtbot, minimum, 256)
    assert dialog.change() == SettingsChange(memory=MemoryConfig(1024, True, 256, 4096))

    click(qtbot, find(dialog, QCheckBox, "dynamicMemoryCheck"))
    assert dialog.change() == SettingsChange()


def test_dynamic_range_problems_while_off(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, DYNAMIC_VM)
    click_tree(qtbot, dialog, "Memory")

    type_number(qtbot, find(dialog, QSpinBox, "minimumMemoryEdit"), 1536)

    assert problem_text(dialog) == "Minimum memory can't be larger than startup memory."
    assert buttons_enabled(dialog) == (False, False)


def test_memory_while_running(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, DYNAMIC_VM, VmState.RUNNING)
    click_tree(qtbot, dialog, "Memory")

    assert not find(dialog, QSpinBox, "startupMemoryEdit").isEnabled()
    assert not find(dialog, QCheckBox, "dynamicMemoryCheck").isEnabled()
    assert find(dialog, QSpinBox, "minimumMemoryEdit").isEnabled()
    assert find(dialog, QSpinBox, "maximumMemoryEdit").isEnabled()
    assert "following state when this window was opened: running" in (dialog.memory_page.note.label.text())
    assert "Minimum RAM can be lowered and Maximum RAM raised" in (dialog.memory_page.note.label.text())


def test_growing_minimum_while_running_is_refused(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, DYNAMIC_VM, VmState.RUNNING)
    click_tree(qtbot, dialog, "Memory")
    minimum = find(dialog, QSpinBox, "minimumMemoryEdit")

    type_number(qtbot, minimum, 768)
    assert problem_text(dialog) == (
        "While the virtual machine is running, Minimum RAM can only be decreased (it is 512 MB)."
    )
    assert buttons_enabled(dialog) == (False, False)

    type_number(qtbot, minimum, 256)
    assert problem_text(dialog) == ""
    assert dialog.change() == SettingsChange(memory=MemoryConfig(1024, True, 256, 2048))
    assert buttons_enabled(dialog) == (True, True)


def test_shrinking_maximum_while_running_is_refused(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, DYNAMIC_VM, VmState.RUNNING)
    click_tree(qtbot, dialog, "Memory")

    type_number(qtbot, find(dialog, QSpinBox, "maximumMemoryEdit"), 1536)

    assert problem_text(dialog) == (
        "While the virtual machine is running, Maximum RAM can only be increased (it is 2048 MB)."
    )


def test_static_memory_is_locked_while_running(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, OFF_VM, VmState.RUNNING)
    click_tree(qtbot, dialog, "Memory")

    assert not find(dialog, QSpinBox, "startupMemoryEdit").isEnabled()
    assert not find(dialog, QCheckBox, "dynamicMemoryCheck").isEnabled()
    assert not find(dialog, QSpinBox, "minimumMemoryEdit").isEnabled()


def test_memory_is_locked_while_saved(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, DYNAMIC_VM, VmState.SAVED)
    click_tree(qtbot, dialog, "Memory")

    for name in ("startupMemoryEdit", "minimumMemoryEdit", "maximumMemoryEdit"):
        assert not find(dialog, QSpinBox, name).isEnabled(), name
    assert not find(dialog, QCheckBox, "dynamicMemoryCheck").isEnabled()
    assert "delete its saved state" in dialog.memory_page.note.label.text()


# --- processor ------------------------------------------------------------------------------


def test_typing_processors(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Processor")
    spin = find(dialog, QSpinBox, "processorSpin")
    assert (spin.minimum(), spin.maximum()) == (1, 4)  # the host has 4 logical processors

    type_number(qtbot, spin, 3)

    assert dialog.change() == SettingsChange(processors=3)
    assert summary(dialog, "Processor") == "3 Virtual processors"


def test_processors_are_read_only_while_running(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, state=VmState.RUNNING)
    click_tree(qtbot, dialog, "Processor")

    assert not find(dialog, QSpinBox, "processorSpin").isEnabled()
    assert dialog.processor_page.note.isVisible()
    assert "shut down the virtual machine" in dialog.processor_page.note.label.text()


def test_more_processors_than_the_host_are_shown_unchanged(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, dataclasses.replace(OFF_VM, processors=8))

    assert find(dialog, QSpinBox, "processorSpin").value() == 8
    assert dialog.change() == SettingsChange()


# --- name and notes -------------------------------------------------------------------------


def test_renaming_and_notes(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Name")

    retype(qtbot, find(dialog, QLineEdit, "nameEdit"), "web-2")
    notes = find(dialog, QPlainTextEdit, "notesEdit")
    qtbot.mouseClick(notes.viewport(), Qt.MouseButton.LeftButton)
    qtbot.keyClick(notes, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(notes, Qt.Key.Key_Return)
    qtbot.keyClicks(notes, "Owner: ops")

    assert dialog.change() == SettingsChange(name="web-2", notes="Front end\nOwner: ops")
    assert summary(dialog, "Name") == "web-2"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("db", "A virtual machine named 'db' already exists on this server."),
        ("a/b", "The name can't contain '/' or control characters: it also names the VM's folder."),
        ("x" * 101, "The name is 101 characters long; the limit is 100."),
    ],
)
def test_bad_names_show_a_problem(qtbot: QtBot, name: str, reason: str) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Name")

    retype(qtbot, find(dialog, QLineEdit, "nameEdit"), name)

    assert problem_text(dialog) == reason
    assert buttons_enabled(dialog) == (False, False)


def test_emptied_name_shows_a_problem(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Name")
    edit = find(dialog, QLineEdit, "nameEdit")
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton)
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(edit, Qt.Key.Key_Delete)

    assert problem_text(dialog) == "Enter a name for the virtual machine."


@pytest.mark.parametrize("state", [VmState.RUNNING, VmState.PAUSED, VmState.SAVED])
def test_name_is_read_only_unless_off_but_notes_are_editable(qtbot: QtBot, state: VmState) -> None:
    dialog = open_dialog(qtbot, state=state)
    click_tree(qtbot, dialog, "Name")
    edit = find(dialog, QLineEdit, "nameEdit")

    assert edit.isReadOnly()
    reason = dialog.name_page.note.label.text()
    assert reason.startswith(f"Can't rename 'web' while it is {state.value}")
    qtbot.keyClicks(edit, "-2")
    qtbot.keyClicks(find(dialog, QPlainTextEdit, "notesEdit"), "Live ")
    assert dialog.change() == SettingsChange(notes="Live Front end")


# --- automatic actions ----------------------------------------------------------------------


def test_automatic_start_action_and_delay(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Automatic Start Action")
    delay = find(dialog, QSpinBox, "startDelaySpin")
    assert find(dialog, QRadioButton, "startNothingRadio").isChecked()
    assert not delay.isEnabled()

    click(qtbot, find(dialog, QRadioButton, "startAlwaysRadio"))
    assert delay.isEnabled()
    type_number(qtbot, delay, 120)

    assert dialog.change() == SettingsChange(start_action=StartAction.START, start_delay_s=120)
    assert summary(dialog, "Automatic Start Action") == "Always start"
    click(qtbot, find(dialog, QRadioButton, "startIfRunningRadio"))
    assert dialog.change().start_action is StartAction.START_IF_RUNNING
    assert summary(dialog, "Automatic Start Action") == "Restart if previously running"
    click(qtbot, find(dialog, QRadioButton, "startNothingRadio"))
    assert not delay.isEnabled()


def test_automatic_stop_action(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Automatic Stop Action")
    assert find(dialog, QRadioButton, "stopSaveRadio").isChecked()

    click(qtbot, find(dialog, QRadioButton, "stopShutDownRadio"))
    assert dialog.change() == SettingsChange(stop_action=StopAction.SHUT_DOWN)
    assert summary(dialog, "Automatic Stop Action") == "Shut down"

    click(qtbot, find(dialog, QRadioButton, "stopTurnOffRadio"))
    assert dialog.change() == SettingsChange(stop_action=StopAction.TURN_OFF)


# --- OK, Apply, Cancel ----------------------------------------------------------------------


def test_apply_emits_the_change_and_keeps_the_window_open(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Processor")
    type_number(qtbot, find(dialog, QSpinBox, "processorSpin"), 2)
    click_tree(qtbot, dialog, "Automatic Stop Action")
    click(qtbot, find(dialog, QRadioButton, "stopTurnOffRadio"))

    with qtbot.waitSignal(dialog.apply_requested) as emitted:
        click(qtbot, find(dialog, QPushButton, "applyButton"))

    assert emitted.args == [SettingsChange(processors=2, stop_action=StopAction.TURN_OFF)]
    assert dialog.isVisible()
    dialog.set_config(dataclasses.replace(OFF_VM, processors=2, stop_action=StopAction.TURN_OFF), VmState.OFF)
    assert dialog.change() == SettingsChange()
    assert buttons_enabled(dialog) == (True, False)
    assert summary(dialog, "Processor") == "2 Virtual processors"


def test_ok_emits_the_change_and_closes(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Name")
    retype(qtbot, find(dialog, QLineEdit, "nameEdit"), "web-renamed")

    with qtbot.waitSignal(dialog.apply_requested) as emitted:
        click(qtbot, find(dialog, QPushButton, "okButton"))

    assert emitted.args == [SettingsChange(name="web-renamed")]
    assert not dialog.isVisible()
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_ok_without_changes_just_closes(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)

    with qtbot.assertNotEmitted(dialog.apply_requested):
        click(qtbot, find(dialog, QPushButton, "okButton"))

    assert not dialog.isVisible()


def test_cancel_discards_the_change(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    click_tree(qtbot, dialog, "Processor")
    type_number(qtbot, find(dialog, QSpinBox, "processorSpin"), 2)

    with qtbot.assertNotEmitted(dialog.apply_requested):
        click(qtbot, find(dialog, QPushButton, "cancelButton"))

    assert not dialog.isVisible()
    assert dialog.result() == QDialog.DialogCode.Rejected


def test_set_config_after_the_vm_stopped_unlocks_the_fields(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, state=VmState.RUNNING)

    dialog.set_config(OFF_VM, VmState.OFF)

    assert find(dialog, QSpinBox, "processorSpin").isEnabled()
    assert find(dialog, QSpinBox, "startupMemoryEdit").isEnabled()
    assert not find(dialog, QLineEdit, "nameEdit").isReadOnly()
    assert not dialog.processor_page.note.isVisible()


def test_every_input_has_its_object_name(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot)
    names: dict[str, type[Any]] = {
        "startupMemoryEdit": QSpinBox,
        "dynamicMemoryCheck": QCheckBox,
        "minimumMemoryEdit": QSpinBox,
        "maximumMemoryEdit": QSpinBox,
        "processorSpin": QSpinBox,
        "bootOrderList": QListWidget,
        "moveUpButton": QPushButton,
        "moveDownButton": QPushButton,
        "nameEdit": QLineEdit,
        "notesEdit": QPlainTextEdit,
        "startNothingRadio": QRadioButton,
        "startIfRunningRadio": QRadioButton,
        "startAlwaysRadio": QRadioButton,
        "startDelaySpin": QSpinBox,
        "stopSaveRadio": QRadioButton,
        "stopTurnOffRadio": QRadioButton,
        "stopShutDownRadio": QRadioButton,
        "settingsTree": QTreeWidget,
        "okButton": QPushButton,
        "applyButton": QPushButton,
        "cancelButton": QPushButton,
        "problemLabel": QLabel,
    }
    for name, kind in names.items():
        find(dialog, kind, name)


def test_the_dialog_does_not_load_libvirt() -> None:
    code = (
        "import sys, hvmanager.ui.vm_settings_dialog; "
        "print(sorted(m for m in sys.modules if m.startswith('libvirt')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
