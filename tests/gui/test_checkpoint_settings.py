"""Settings ▸ Management ▸ Checkpoints, driven with clicks and typing.

The real-VM tests open the Settings window the way the application does (the VM's persistent
configuration and ``vmsettings.checkpoint_settings`` read from the system libvirt daemon), apply
what OK or Apply asks for with ``vmsettings.apply_settings``, and check the result with
``virsh dumpxml --inactive``. The others give the window plain data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialogButtonBox,
    QFileDialog,
    QGroupBox,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QWidget,
)
from pytestqt.qtbot import QtBot

from hvmanager.backend import checkpoints, inventory, vmsettings
from hvmanager.backend.checkpoint_tree import CheckpointType
from hvmanager.backend.checkpoint_xml import CheckpointPolicy
from hvmanager.backend.domxml import METADATA_NS
from hvmanager.backend.errors import InvalidStateError
from hvmanager.backend.models import VmState
from hvmanager.backend.vmsettings import CheckpointSettings, SettingsChange
from hvmanager.ui.vm_settings_dialog import VmSettingsDialog
from tests.gui.test_checkpoint_chain_dialog import OffVm, off_vm  # noqa: F401 (a fixture)
from tests.gui.test_vm_settings_dialog import (
    HOST,
    OFF_VM,
    buttons_enabled,
    click,
    click_tree,
    find,
    problem_text,
    retype,
    summary,
)

LOCKED = (
    "The checkpoint file location can be changed only while the virtual machine has no "
    "checkpoints; it has 1 checkpoint. Delete its checkpoints first."
)


# --- opening the window -------------------------------------------------------------------------


def open_settings(qtbot: QtBot, vm: OffVm) -> VmSettingsDialog:
    """The Settings window of a real VM; OK and Apply apply the change to it."""
    conn, dom = vm.server.conn, vm.dom
    host = vm.server.host_info()
    dialog = VmSettingsDialog(
        inventory.vm_config(dom, inactive=True),
        VmState.OFF,
        host,
        frozenset(),
        checkpoints=vmsettings.checkpoint_settings(conn, dom),
    )

    def apply(change: SettingsChange) -> None:
        """What the application does (off the GUI thread there): apply, then show the result."""
        vmsettings.apply_settings(conn, dom, change, host)
        dialog.set_config(inventory.vm_config(dom, inactive=True), VmState.OFF)

    dialog.apply_requested.connect(apply)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    click_tree(qtbot, dialog, "Checkpoints")
    return dialog


def open_plain(qtbot: QtBot, settings: CheckpointSettings) -> VmSettingsDialog:
    dialog = VmSettingsDialog(OFF_VM, VmState.OFF, HOST, frozenset(), checkpoints=settings)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    click_tree(qtbot, dialog, "Checkpoints")
    return dialog


def location_edit(dialog: QWidget) -> QLineEdit:
    return find(dialog, QLineEdit, "checkpointLocationEdit")


def page_note(dialog: VmSettingsDialog) -> str:
    page = dialog.checkpoints_page
    assert page is not None
    return page.note.label.text() if page.note.isVisible() else ""


# --- the independent observer -------------------------------------------------------------------


def policy_in_libvirt(name: str) -> dict[str, str]:
    """The attributes of ``<checkpoints>`` in hvmanager's metadata, from ``virsh dumpxml --inactive``."""
    root = ET.fromstring(inactive_xml(name))
    element = root.find(f"metadata/{{{METADATA_NS}}}vm/{{{METADATA_NS}}}checkpoints")
    return dict(element.attrib) if element is not None else {}


def inactive_xml(name: str) -> str:
    return subprocess.run(
        ["virsh", "-c", "qemu:///system", "dumpxml", "--inactive", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def checkpoint_count_in_libvirt(name: str) -> int:
    """Checkpoints in the tree hvmanager keeps in the domain's metadata."""
    return inactive_xml(name).count("<hvc:checkpoint ")


# --- real VMs -----------------------------------------------------------------------------------


def test_the_checkpoint_type_chosen_reaches_the_vm_definition(qtbot: QtBot, off_vm: OffVm) -> None:  # noqa: F811
    dialog = open_settings(qtbot, off_vm)
    assert find(dialog, QRadioButton, "standardCheckpointsRadio").isChecked()
    assert summary(dialog, "Checkpoints") == "Standard"

    click(qtbot, find(dialog, QRadioButton, "productionCheckpointsRadio"))
    fallback = find(dialog, QCheckBox, "standardFallbackCheck")
    assert fallback.isEnabled() and fallback.isChecked()
    click(qtbot, fallback)
    assert summary(dialog, "Checkpoints") == "Production only"
    click(qtbot, find(dialog, QPushButton, "okButton"))

    assert policy_in_libvirt(off_vm.name) == {"type": "production-only", "location": ""}
    assert not dialog.isVisible()

    dialog = open_settings(qtbot, off_vm)
    assert find(dialog, QRadioButton, "productionCheckpointsRadio").isChecked()
    assert not find(dialog, QCheckBox, "standardFallbackCheck").isChecked()
    click(qtbot, find(dialog, QCheckBox, "checkpointsEnabledCheck"))
    assert not find(dialog, QGroupBox, "checkpointTypeBox").isEnabled()
    click(qtbot, find(dialog, QPushButton, "applyButton"))

    assert policy_in_libvirt(off_vm.name) == {"type": "disabled", "location": ""}
    assert summary(dialog, "Checkpoints") == "Disabled"
    assert buttons_enabled(dialog) == (True, False)  # what was applied is the new baseline
    with pytest.raises(InvalidStateError, match="Checkpoints are disabled"):
        checkpoints.take(off_vm.server.conn, off_vm.dom, "Refused")


def test_the_location_is_locked_while_the_vm_has_checkpoints(qtbot: QtBot, off_vm: OffVm) -> None:  # noqa: F811
    checkpoints.take(off_vm.server.conn, off_vm.dom, "Before")
    folder = Path(inventory.vm_config(off_vm.dom).folder or "")

    dialog = open_settings(qtbot, off_vm)

    edit = location_edit(dialog)
    assert not edit.isEnabled()
    assert not find(dialog, QPushButton, "checkpointBrowseButton").isEnabled()
    assert edit.text() == ""
    assert edit.placeholderText() == str(folder / "Snapshots")
    assert page_note(dialog) == LOCKED
    # The type may still change.
    click(qtbot, find(dialog, QRadioButton, "productionCheckpointsRadio"))
    click(qtbot, find(dialog, QPushButton, "okButton"))
    assert policy_in_libvirt(off_vm.name) == {"type": "production", "location": ""}
    assert checkpoint_count_in_libvirt(off_vm.name) == 1


def test_a_bad_location_is_refused_and_a_good_one_is_saved(
    qtbot: QtBot,
    off_vm: OffVm,  # noqa: F811
    vm_location: Path,
    private_folder: Path,
) -> None:
    dialog = open_settings(qtbot, off_vm)
    edit = location_edit(dialog)
    assert edit.isEnabled() and page_note(dialog) == ""
    default = edit.placeholderText()
    assert default.endswith("/Snapshots") and Path(default).is_absolute()

    retype(qtbot, edit, "relative/folder")
    assert problem_text(dialog) == "The checkpoint file location 'relative/folder' is not an absolute path."
    assert buttons_enabled(dialog) == (False, False)

    retype(qtbot, edit, str(vm_location / "missing"))
    assert problem_text(dialog) == (
        f"The checkpoint file location '{vm_location / 'missing'}' does not exist or is not a folder."
    )
    retype(qtbot, edit, str(private_folder))
    assert f"can't reach '{private_folder}'" in problem_text(dialog)
    assert buttons_enabled(dialog) == (False, False)

    retype(qtbot, edit, default + "/")  # the default folder, typed: nothing changes
    assert problem_text(dialog) == ""
    assert dialog.change() == SettingsChange()

    good = vm_location / "Checkpoint files"
    good.mkdir()
    retype(qtbot, edit, str(good))
    assert problem_text(dialog) == ""
    click(qtbot, find(dialog, QPushButton, "okButton"))

    assert policy_in_libvirt(off_vm.name) == {"type": "standard", "location": str(good)}


def test_browse_fills_in_the_folder_chosen(qtbot: QtBot, off_vm: OffVm, vm_location: Path) -> None:  # noqa: F811
    (vm_location / "picked").mkdir()
    dialog = open_settings(qtbot, off_vm)

    click(qtbot, find(dialog, QPushButton, "checkpointBrowseButton"))
    picker = find(dialog, QFileDialog, "checkpointLocationDialog")
    qtbot.waitExposed(picker)
    picker.setDirectory(str(vm_location))
    name_edit = find(picker, QLineEdit, "fileNameEdit")
    name_edit.clear()
    qtbot.keyClicks(name_edit, "picked")
    choose = find(picker, QDialogButtonBox, "buttonBox").buttons()[0]
    qtbot.mouseClick(choose, Qt.MouseButton.LeftButton)

    assert location_edit(dialog).text() == str(vm_location / "picked")
    assert dialog.change() == SettingsChange(
        checkpoint_policy=CheckpointPolicy(CheckpointType.STANDARD, str(vm_location / "picked"))
    )


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A folder under /root (mode 0700): this process may write there, the QEMU user can't."""
    folder = Path("/root") / f"hvtest-checkpoints-{os.getpid()}"
    folder.mkdir(exist_ok=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# --- plain data ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "enabled", "production", "fallback", "label"),
    [
        (CheckpointType.DISABLED, False, False, True, "Disabled"),
        (CheckpointType.PRODUCTION, True, True, True, "Production"),
        (CheckpointType.PRODUCTION_ONLY, True, True, False, "Production only"),
        (CheckpointType.STANDARD, True, False, True, "Standard"),
    ],
)
def test_each_checkpoint_type_is_shown_as_hyper_v_does(
    qtbot: QtBot, kind: CheckpointType, enabled: bool, production: bool, fallback: bool, label: str
) -> None:
    dialog = open_plain(
        qtbot, CheckpointSettings(CheckpointPolicy(kind), default_folder="/srv/web/Snapshots")
    )

    assert find(dialog, QCheckBox, "checkpointsEnabledCheck").isChecked() is enabled
    assert find(dialog, QRadioButton, "productionCheckpointsRadio").isChecked() is production
    assert find(dialog, QRadioButton, "standardCheckpointsRadio").isChecked() is not production
    assert find(dialog, QCheckBox, "standardFallbackCheck").isChecked() is fallback
    assert find(dialog, QRadioButton, "standardCheckpointsRadio").isEnabled() is enabled
    assert find(dialog, QCheckBox, "standardFallbackCheck").isEnabled() is (enabled and production)
    assert summary(dialog, "Checkpoints") == label
    assert dialog.change() == SettingsChange()
    assert buttons_enabled(dialog) == (True, False)


def test_turning_checkpoints_back_on_keeps_the_type_shown(qtbot: QtBot) -> None:
    dialog = open_plain(qtbot, CheckpointSettings(CheckpointPolicy(CheckpointType.PRODUCTION)))
    enable = find(dialog, QCheckBox, "checkpointsEnabledCheck")

    click(qtbot, enable)
    assert dialog.change() == SettingsChange(checkpoint_policy=CheckpointPolicy(CheckpointType.DISABLED))
    click(qtbot, enable)

    assert dialog.change() == SettingsChange()


def test_apply_sends_only_the_checkpoint_policy(qtbot: QtBot) -> None:
    dialog = open_plain(qtbot, CheckpointSettings(CheckpointPolicy(CheckpointType.STANDARD)))
    click(qtbot, find(dialog, QRadioButton, "productionCheckpointsRadio"))

    with qtbot.waitSignal(dialog.apply_requested) as sent:
        click(qtbot, find(dialog, QPushButton, "applyButton"))

    assert sent.args == [SettingsChange(checkpoint_policy=CheckpointPolicy(CheckpointType.PRODUCTION))]


def test_pending_merges_lock_the_location_too(qtbot: QtBot) -> None:
    dialog = open_plain(qtbot, CheckpointSettings(CheckpointPolicy(), checkpoints=0, pending_merges=2))

    assert not location_edit(dialog).isEnabled()
    assert page_note(dialog) == (
        "The checkpoint file location can be changed only while the virtual machine has no "
        "checkpoints; it has 2 deleted checkpoints whose files wait to be merged. They merge once "
        "only one branch of the tree still reads them."
    )


def test_without_checkpoint_settings_there_is_no_checkpoints_page(qtbot: QtBot) -> None:
    dialog = VmSettingsDialog(OFF_VM, VmState.OFF, HOST, frozenset())
    qtbot.addWidget(dialog)

    tree = find(dialog, QTreeWidget, "settingsTree")
    assert not tree.findItems("Checkpoints", Qt.MatchFlag.MatchRecursive, 0)
    assert dialog.findChild(QLineEdit, "checkpointLocationEdit") is None
    assert dialog.change().checkpoint_policy is None
