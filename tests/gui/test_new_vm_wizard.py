"""The New Virtual Machine wizard, driven through its real Next/Finish buttons and named widgets.

Every validation message a user can reach is checked on its page: the red ``problemLabel`` shows
it and Next (and Finish) stay disabled. Locations live under ``tmp_path``; the tests run as root,
so "can't write" is shown with a path under a regular file, and the QEMU user's reachability with
a 0700 folder. No libvirt is needed: the wizard only builds a ``VmSpec``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QTextEdit,
    QWidget,
    QWizard,
)

from hvmanager.backend.models import (
    ExistingDisk,
    IsoInstall,
    KernelBoot,
    MemoryConfig,
    NetworkInstall,
    NewDisk,
    VmSpec,
)
from hvmanager.backend.settings import AppSettings
from hvmanager.backend.vmspec import HostContext
from hvmanager.ui.new_vm_wizard import FileDialogs, NewVmWizard, PageId
from tests.gui.disk_helpers import edit, find, radio

NETWORKS = ("default", "lan")
HOST_MEMORY_MIB = 4096
WizardFactory = Callable[..., NewVmWizard]


# --- PySide6 6.12.0 on Python 3.11 -------------------------------------------------------------


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def location(tmp_path: Path) -> Path:
    """The default VM folder of these tests (AppSettings.vm_folder)."""
    folder = tmp_path / "vms"
    folder.mkdir()
    return folder


@pytest.fixture
def make_wizard(qtbot: Any, location: Path) -> WizardFactory:
    """Build a shown wizard; keyword arguments override HostContext fields (and vm_folder)."""

    def _make(vm_folder: str | None = None, **ctx_fields: Any) -> NewVmWizard:
        fields: dict[str, Any] = {"host_memory_mib": HOST_MEMORY_MIB, "networks": NETWORKS}
        fields.update(ctx_fields)
        settings = AppSettings(vm_folder=vm_folder or str(location))
        wizard = NewVmWizard(HostContext(**fields), settings)
        qtbot.addWidget(wizard)
        wizard.show()
        qtbot.waitExposed(wizard)
        return wizard

    return _make


@pytest.fixture
def wizard(make_wizard: WizardFactory) -> NewVmWizard:
    """A wizard with the default test context."""
    return make_wizard()


def next_button(wizard: NewVmWizard) -> QPushButton:
    button = wizard.button(QWizard.WizardButton.NextButton)
    assert isinstance(button, QPushButton)
    return button


def finish_button(wizard: NewVmWizard) -> QPushButton:
    button = wizard.button(QWizard.WizardButton.FinishButton)
    assert isinstance(button, QPushButton)
    return button


def shown_problem(wizard: NewVmWizard) -> str:
    """The red problem text of the current page ("" when it is hidden)."""
    page = wizard.currentPage()
    assert page is not None
    label = page.findChild(QLabel, "problemLabel")
    assert label is not None
    return label.text() if label.isVisible() else ""


def go_to(wizard: NewVmWizard, page_id: PageId) -> None:
    """Click Next until ``page_id`` is shown; every page on the way must be valid."""
    while wizard.currentId() < page_id:
        assert next_button(wizard).isEnabled(), shown_problem(wizard)
        next_button(wizard).click()
    assert wizard.currentId() == page_id


def back(wizard: NewVmWizard) -> None:
    wizard.button(QWizard.WizardButton.BackButton).click()


def assert_rejected(wizard: NewVmWizard, message: str) -> None:
    """The current page shows ``message`` and neither Next nor Finish can be clicked."""
    assert shown_problem(wizard) == message
    assert not next_button(wizard).isEnabled()
    assert not finish_button(wizard).isEnabled()


def assert_accepted(wizard: NewVmWizard) -> None:
    """The current page shows no problem and Next is enabled."""
    assert shown_problem(wizard) == ""
    assert next_button(wizard).isEnabled()


def retype(qtbot: Any, line_edit: QLineEdit, text: str) -> None:
    """Replace the text of a line edit by typing, as a user does."""
    line_edit.selectAll()
    qtbot.keyClick(line_edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(line_edit, text)


def touch(path: Path, data: bytes = b"\0" * 512) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def default_disk(location: Path, name: str, fmt: str = "qcow2", ext: str = ".qcow2") -> NewDisk:
    return NewDisk(127, fmt, name + ext, f"{location}/{name}/Virtual Hard Disks")


@pytest.fixture
def reachable_root() -> Iterator[Path]:
    """A folder the QEMU user can reach (pytest's tmp_path is under a 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="hvtest-wizard-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# --- defaults, Finish early, navigation --------------------------------------------------------


def test_defaults_and_finish_on_the_first_page(qtbot: Any, wizard: NewVmWizard, location: Path):
    assert wizard.windowTitle() == "New Virtual Machine Wizard"
    assert wizard.currentId() == PageId.BEFORE_YOU_BEGIN
    assert next_button(wizard).isEnabled()
    assert finish_button(wizard).isVisible() and finish_button(wizard).isEnabled()
    expected = VmSpec(
        name="New Virtual Machine",
        location=str(location),
        generation=1,
        memory=MemoryConfig(1024),
        network=None,
        disk=default_disk(location, "New Virtual Machine"),
        install=None,
    )
    assert wizard.spec() == expected
    with qtbot.waitSignal(wizard.spec_accepted, timeout=2000) as blocker:
        finish_button(wizard).click()
    assert blocker.args == [expected]
    assert wizard.result() == QDialog.DialogCode.Accepted


def test_default_name_is_unique(make_wizard: WizardFactory, location: Path):
    taken = frozenset({"New Virtual Machine", "New Virtual Machine (2)"})
    assert edit(make_wizard(existing_names=taken), "nameEdit").text() == "New Virtual Machine (3)"
    touch(location / "New Virtual Machine" / "leftover.txt")  # a folder in use also counts
    assert edit(make_wizard(), "nameEdit").text() == "New Virtual Machine (2)"


def test_finish_is_disabled_while_another_page_is_invalid(qtbot: Any, wizard: NewVmWizard):
    go_to(wizard, PageId.MEMORY)
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "33")
    assert_rejected(wizard, "Startup memory must be a multiple of 2 MB.")
    back(wizard)
    back(wizard)
    assert wizard.currentId() == PageId.NAME_LOCATION
    assert shown_problem(wizard) == "" and next_button(wizard).isEnabled()
    assert not finish_button(wizard).isEnabled()  # the memory page is still wrong
    go_to(wizard, PageId.MEMORY)
    assert edit(wizard, "startupMemoryEdit").text() == "33"  # Back keeps what was typed
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "34")
    assert_accepted(wizard)
    assert finish_button(wizard).isEnabled()


def test_finish_is_disabled_when_the_default_folder_is_unusable(make_wizard: WizardFactory, tmp_path: Path):
    blocker = touch(tmp_path / "file.txt")
    wizard = make_wizard(vm_folder=str(blocker / "vms"))
    assert not finish_button(wizard).isEnabled()
    next_button(wizard).click()
    assert_rejected(wizard, f"'{blocker}' is a file, not a folder.")


def _click_page_title(qtbot: Any, wizard: NewVmWizard, page_id: PageId) -> None:
    page_list = find(wizard, QListWidget, "pageList")
    item = page_list.item(page_id)
    center: QPoint = page_list.visualItemRect(item).center()
    qtbot.mouseClick(page_list.viewport(), Qt.MouseButton.LeftButton, pos=center)


def test_page_list_jumps_up_to_the_furthest_valid_page(qtbot: Any, wizard: NewVmWizard):
    page_list = find(wizard, QListWidget, "pageList")
    titles = [page_list.item(row).text() for row in range(page_list.count())]
    assert titles == [
        "Before You Begin",
        "Specify Name and Location",
        "Specify Generation",
        "Assign Memory",
        "Configure Networking",
        "Connect Virtual Hard Disk",
        "Installation Options",
        "Summary",
    ]
    assert page_list.item(0).font().bold() and not page_list.item(1).font().bold()
    _click_page_title(qtbot, wizard, PageId.SUMMARY)
    assert wizard.currentId() == PageId.SUMMARY
    assert page_list.item(PageId.SUMMARY).font().bold()
    _click_page_title(qtbot, wizard, PageId.NAME_LOCATION)
    assert wizard.currentId() == PageId.NAME_LOCATION
    edit(wizard, "nameEdit").clear()
    assert_rejected(wizard, "Enter a name for the virtual machine.")
    assert not page_list.item(PageId.MEMORY).flags() & Qt.ItemFlag.ItemIsEnabled
    _click_page_title(qtbot, wizard, PageId.MEMORY)
    assert wizard.currentId() == PageId.NAME_LOCATION  # out of reach while the name is wrong
    _click_page_title(qtbot, wizard, PageId.BEFORE_YOU_BEGIN)
    assert wizard.currentId() == PageId.BEFORE_YOU_BEGIN
    qtbot.keyClicks(edit(wizard, "nameEdit"), "web")
    _click_page_title(qtbot, wizard, PageId.DISK)
    assert wizard.currentId() == PageId.DISK
    assert edit(wizard, "diskNameEdit").text() == "web.qcow2"


def test_cancel_emits_nothing(qtbot: Any, wizard: NewVmWizard):
    with qtbot.assertNotEmitted(wizard.spec_accepted):
        wizard.button(QWizard.WizardButton.CancelButton).click()
    assert wizard.result() == QDialog.DialogCode.Rejected


# --- Specify Name and Location -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter a name for the virtual machine."),
        ("   ", "Enter a name for the virtual machine."),
        ("x" * 101, "The name is 101 characters long; the limit is 100."),
        (" web", "The name can't start or end with a space."),
        (
            "web/db",
            "The name can't contain '/' or control characters: it also names the VM's folder.",
        ),
        (
            "web\tdb",
            "The name can't contain '/' or control characters: it also names the VM's folder.",
        ),
        ("..", "'.' and '..' can't be used as a name."),
        ("taken", "A virtual machine named 'taken' already exists on this server."),
    ],
)
def test_name_problems(make_wizard: WizardFactory, name: str, message: str):
    wizard = make_wizard(existing_names=frozenset({"taken"}))
    go_to(wizard, PageId.NAME_LOCATION)
    edit(wizard, "nameEdit").setText(name)
    assert_rejected(wizard, message)
    edit(wizard, "nameEdit").setText("x" * 100)
    assert_accepted(wizard)


def test_name_typed_and_resolved_folder(qtbot: Any, wizard: NewVmWizard, location: Path):
    go_to(wizard, PageId.NAME_LOCATION)
    retype(qtbot, edit(wizard, "nameEdit"), "web/")
    assert "can't contain '/'" in shown_problem(wizard)
    qtbot.keyClick(edit(wizard, "nameEdit"), Qt.Key.Key_Backspace)
    assert_accepted(wizard)
    resolved = find(wizard, QLabel, "resolvedPathLabel").text()
    assert resolved.endswith(f"{location}/web/")


def test_location_problems(qtbot: Any, wizard: NewVmWizard, location: Path, tmp_path: Path):
    go_to(wizard, PageId.NAME_LOCATION)
    location_edit = edit(wizard, "locationEdit")
    check = find(wizard, QCheckBox, "differentLocationCheck")
    assert not location_edit.isEnabled() and location_edit.text() == str(location)
    check.click()
    assert location_edit.isEnabled()
    retype(qtbot, location_edit, "relative/vms")
    assert_rejected(wizard, "'relative/vms' is not an absolute path.")
    location_edit.clear()
    assert_rejected(wizard, "Enter a folder.")
    blocker = touch(tmp_path / "file.txt")
    location_edit.setText(f"{blocker}/sub")
    assert_rejected(wizard, f"'{blocker}' is a file, not a folder.")
    edit(wizard, "nameEdit").setText("busy")
    location_edit.setText(str(tmp_path / "other"))
    assert_accepted(wizard)
    touch(tmp_path / "other" / "busy" / "disk.qcow2")
    location_edit.setText(str(tmp_path / "other") + "/")  # any edit re-checks the folder
    assert_rejected(wizard, f"The folder '{tmp_path / 'other' / 'busy'}' already exists and is not empty.")
    check.click()  # back to the default location
    assert location_edit.text() == str(location) and not location_edit.isEnabled()
    assert_accepted(wizard)


def test_location_the_qemu_user_cannot_reach(qtbot: Any, make_wizard: WizardFactory, reachable_root: Path):
    private = reachable_root / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    wizard = make_wizard(vm_folder=str(reachable_root / "vms"), qemu_user="libvirt-qemu")
    assert finish_button(wizard).isEnabled()  # the default folder is reachable
    go_to(wizard, PageId.NAME_LOCATION)
    find(wizard, QCheckBox, "differentLocationCheck").click()
    retype(qtbot, edit(wizard, "locationEdit"), str(private / "vms"))
    assert_rejected(
        wizard,
        f"The QEMU user (libvirt-qemu) can't reach '{private / 'vms'}': pick a folder outside "
        "private home folders such as /root, or give that user access.",
    )


def test_location_browse(qtbot: Any, wizard: NewVmWizard, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    answers = [str(tmp_path), ""]
    asked: list[str] = []

    def choose_folder(parent: QWidget, caption: str, start: str) -> str:
        asked.append(start)
        return answers.pop(0)

    monkeypatch.setattr(FileDialogs, "choose_folder", staticmethod(choose_folder))
    go_to(wizard, PageId.NAME_LOCATION)
    browse = find(wizard, QPushButton, "locationBrowseButton")
    assert not browse.isEnabled()
    find(wizard, QCheckBox, "differentLocationCheck").click()
    browse.click()
    assert edit(wizard, "locationEdit").text() == str(tmp_path)
    browse.click()  # cancelled: nothing changes
    assert edit(wizard, "locationEdit").text() == str(tmp_path)
    assert asked == [str(tmp_path / "vms"), str(tmp_path)]
    assert wizard.spec().location == str(tmp_path)


# --- Specify Generation and Assign Memory ------------------------------------------------------


def test_generation_choice(wizard: NewVmWizard):
    go_to(wizard, PageId.GENERATION)
    assert radio(wizard, "gen1Radio").isChecked()
    radio(wizard, "gen2Radio").click()
    assert wizard.spec().generation == 2
    assert_accepted(wizard)


@pytest.mark.parametrize(
    ("startup", "message"),
    [
        ("", "Startup memory must be at least 32 MB."),
        ("16", "Startup memory must be at least 32 MB."),
        ("33", "Startup memory must be a multiple of 2 MB."),
        ("4098", "Startup memory can be at most 4096 MB on this server."),
    ],
)
def test_startup_memory_problems(qtbot: Any, wizard: NewVmWizard, startup: str, message: str):
    go_to(wizard, PageId.MEMORY)
    retype(qtbot, edit(wizard, "startupMemoryEdit"), startup)
    assert_rejected(wizard, message)
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "4096")
    assert_accepted(wizard)


def test_memory_accepts_digits_only_and_shows_the_host_limit(qtbot: Any, wizard: NewVmWizard):
    go_to(wizard, PageId.MEMORY)
    note = find(wizard, QLabel, "memoryRangeLabel").text()
    assert "from 32 MB through 4096 MB" in note
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "2a0-48")
    assert edit(wizard, "startupMemoryEdit").text() == "2048"
    assert wizard.spec().memory == MemoryConfig(2048)


@pytest.mark.parametrize(
    ("minimum", "maximum", "message"),
    [
        ("2048", "4096", "Minimum memory can't be larger than startup memory."),
        ("512", "512", "Maximum memory can't be smaller than startup memory."),
        ("16", "4096", "Minimum memory must be at least 32 MB."),
        ("513", "4096", "Minimum memory must be a multiple of 2 MB."),
        ("512", "1025", "Maximum memory must be a multiple of 2 MB."),
        ("512", "5000", "Maximum memory can be at most 4096 MB on this server."),
    ],
)
def test_dynamic_memory_problems(qtbot: Any, wizard: NewVmWizard, minimum: str, maximum: str, message: str):
    go_to(wizard, PageId.MEMORY)
    minimum_edit = edit(wizard, "minimumMemoryEdit")
    maximum_edit = edit(wizard, "maximumMemoryEdit")
    assert not minimum_edit.isEnabled() and not maximum_edit.isEnabled()
    find(wizard, QCheckBox, "dynamicMemoryCheck").click()
    assert minimum_edit.isEnabled() and maximum_edit.isEnabled()
    assert (minimum_edit.text(), maximum_edit.text()) == ("512", "4096")
    assert_accepted(wizard)
    retype(qtbot, minimum_edit, minimum)
    retype(qtbot, maximum_edit, maximum)
    assert_rejected(wizard, message)
    find(wizard, QCheckBox, "dynamicMemoryCheck").click()  # static memory: the range is unused
    assert_accepted(wizard)


def test_memory_limit_follows_the_generation(qtbot: Any, make_wizard: WizardFactory):
    wizard = make_wizard(host_memory_mib=None)
    go_to(wizard, PageId.MEMORY)
    assert "through 1048576 MB" in find(wizard, QLabel, "memoryRangeLabel").text()
    assert edit(wizard, "maximumMemoryEdit").text() == "1048576"  # Hyper-V's default maximum
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "2097152")
    assert_rejected(wizard, "Startup memory can be at most 1048576 MB on this server.")
    back(wizard)
    radio(wizard, "gen2Radio").click()
    next_button(wizard).click()
    assert "through 12582912 MB" in find(wizard, QLabel, "memoryRangeLabel").text()
    assert edit(wizard, "maximumMemoryEdit").text() == "12582912"
    assert_accepted(wizard)


# --- Configure Networking ----------------------------------------------------------------------


def test_network_choices(wizard: NewVmWizard):
    go_to(wizard, PageId.NETWORKING)
    combo = find(wizard, QComboBox, "networkCombo")
    assert [combo.itemText(i) for i in range(combo.count())] == ["Not Connected", *NETWORKS]
    assert combo.currentIndex() == 0 and wizard.spec().network is None
    combo.setCurrentIndex(2)
    assert wizard.spec().network == "lan"
    assert_accepted(wizard)


# --- Connect Virtual Hard Disk -----------------------------------------------------------------


def _choose_format(wizard: NewVmWizard, label: str) -> None:
    combo = find(wizard, QComboBox, "diskFormatCombo")
    index = next(i for i in range(combo.count()) if combo.itemText(i).split()[0] == label)
    combo.setCurrentIndex(index)


def test_disk_format_choices(wizard: NewVmWizard):
    go_to(wizard, PageId.DISK)
    combo = find(wizard, QComboBox, "diskFormatCombo")
    assert [combo.itemText(i) for i in range(combo.count())] == [
        "QCOW2 (recommended)",
        "VHD",
    ]
    assert find(wizard, QLabel, "diskSizeLimitLabel").text() == "(Maximum: 2 TB)"


@pytest.mark.parametrize(
    ("generation", "fmt", "size", "message"),
    [
        (1, "QCOW2", "0", "A virtual hard disk must be at least 3 MB."),
        (1, "QCOW2", "", "A virtual hard disk must be at least 3 MB."),
        (1, "QCOW2", "2049", "A QCOW2 disk as a Generation 1 boot disk can be at most 2 TB."),
        (2, "QCOW2", "65537", "A QCOW2 disk can be at most 64 TB."),
        (1, "VHD", "2041", "A VHD disk as a Generation 1 boot disk can be at most 2040 GB."),
        (2, "VHD", "2041", "A VHD disk can be at most 2040 GB."),
    ],
)
def test_disk_size_problems(
    qtbot: Any, wizard: NewVmWizard, generation: int, fmt: str, size: str, message: str
):
    go_to(wizard, PageId.GENERATION)
    radio(wizard, f"gen{generation}Radio").click()
    go_to(wizard, PageId.DISK)
    _choose_format(wizard, fmt)
    retype(qtbot, edit(wizard, "diskSizeEdit"), size)
    assert_rejected(wizard, message)
    retype(qtbot, edit(wizard, "diskSizeEdit"), "2040")
    assert_accepted(wizard)


def test_disk_file_problems(qtbot: Any, wizard: NewVmWizard, tmp_path: Path):
    go_to(wizard, PageId.DISK)
    name_edit = edit(wizard, "diskNameEdit")
    folder_edit = edit(wizard, "diskLocationEdit")
    name_edit.setText("data.vhdx")
    assert_rejected(wizard, "A QCOW2 disk's file name must end with .qcow2.")
    existing = touch(tmp_path / "disks" / "data.qcow2")
    name_edit.setText("data.qcow2")
    folder_edit.setText(str(existing.parent))
    assert_rejected(wizard, f"'{existing}' already exists; choose another name or use the existing disk.")
    retype(qtbot, name_edit, "data2.qcow2")
    assert_accepted(wizard)
    folder_edit.setText("disks")
    assert_rejected(wizard, "'disks' is not an absolute path.")
    folder_edit.setText(f"{existing}/sub")
    assert_rejected(wizard, f"'{existing}' is a file, not a folder.")


def test_existing_disk_problems(
    qtbot: Any, wizard: NewVmWizard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    go_to(wizard, PageId.DISK)
    path_edit = edit(wizard, "existingDiskEdit")
    assert not path_edit.isEnabled()
    radio(wizard, "existingDiskRadio").click()
    assert path_edit.isEnabled() and not edit(wizard, "diskNameEdit").isEnabled()
    assert_rejected(wizard, "Choose a file.")
    retype(qtbot, path_edit, "disk.qcow2")
    assert_rejected(wizard, "'disk.qcow2' is not an absolute path.")
    missing = tmp_path / "missing.qcow2"
    path_edit.setText(str(missing))
    assert_rejected(wizard, f"'{missing}' does not exist or is not a file.")
    path_edit.setText(str(tmp_path))
    assert_rejected(wizard, f"'{tmp_path}' does not exist or is not a file.")
    vhdx = tmp_path / "real.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(vhdx), "8M"], check=True)
    path_edit.setText(str(vhdx))
    assert_rejected(
        wizard,
        "Virtual machines can't use VHDX disks directly here (libvirt has no VHDX disk "
        "format): convert it to QCOW2 first, e.g. qemu-img convert -f vhdx -O qcow2 ...",
    )
    disk = touch(tmp_path / "disk.img")
    monkeypatch.setattr(FileDialogs, "choose_file", staticmethod(lambda *_args: str(disk)))
    find(wizard, QPushButton, "existingDiskBrowseButton").click()
    assert path_edit.text() == str(disk)
    assert_accepted(wizard)
    assert wizard.spec().disk == ExistingDisk(str(disk))


def test_attach_disk_later(wizard: NewVmWizard):
    go_to(wizard, PageId.DISK)
    radio(wizard, "laterDiskRadio").click()
    assert not edit(wizard, "diskSizeEdit").isEnabled()
    assert not edit(wizard, "existingDiskEdit").isEnabled()
    assert_accepted(wizard)
    assert wizard.spec().disk is None


def test_new_disk_name_and_folder_follow_the_vm(qtbot: Any, wizard: NewVmWizard, tmp_path: Path):
    go_to(wizard, PageId.NAME_LOCATION)
    retype(qtbot, edit(wizard, "nameEdit"), "web")
    find(wizard, QCheckBox, "differentLocationCheck").click()
    edit(wizard, "locationEdit").setText(str(tmp_path / "elsewhere"))
    go_to(wizard, PageId.DISK)
    assert edit(wizard, "diskNameEdit").text() == "web.qcow2"
    assert edit(wizard, "diskLocationEdit").text() == f"{tmp_path}/elsewhere/web/Virtual Hard Disks"
    _choose_format(wizard, "VHD")
    assert edit(wizard, "diskNameEdit").text() == "web.vhd"
    assert find(wizard, QLabel, "diskSizeLimitLabel").text() == "(Maximum: 2040 GB)"
    _choose_format(wizard, "QCOW2")
    assert find(wizard, QLabel, "diskSizeLimitLabel").text() == "(Maximum: 2 TB)"
    retype(qtbot, edit(wizard, "diskNameEdit"), "data.qcow2")  # the user's own name stays...
    _click_back_to_name(wizard)
    retype(qtbot, edit(wizard, "nameEdit"), "db")
    go_to(wizard, PageId.DISK)
    assert edit(wizard, "diskNameEdit").text() == "data.qcow2"
    assert edit(wizard, "diskLocationEdit").text() == f"{tmp_path}/elsewhere/db/Virtual Hard Disks"
    _choose_format(wizard, "VHD")  # ...but its extension follows the format
    assert edit(wizard, "diskNameEdit").text() == "data.vhd"
    assert_accepted(wizard)


def _click_back_to_name(wizard: NewVmWizard) -> None:
    while wizard.currentId() > PageId.NAME_LOCATION:
        back(wizard)


# --- Installation Options ----------------------------------------------------------------------


def test_iso_problems(qtbot: Any, wizard: NewVmWizard, tmp_path: Path):
    go_to(wizard, PageId.INSTALLATION)
    assert radio(wizard, "installLaterRadio").isChecked()
    iso_edit = edit(wizard, "isoEdit")
    assert not iso_edit.isEnabled()
    radio(wizard, "isoRadio").click()
    assert_rejected(wizard, "Choose an image file (.iso).")
    image = touch(tmp_path / "install.img")
    retype(qtbot, iso_edit, str(image))
    assert_rejected(wizard, "Choose an image file (.iso).")
    missing = tmp_path / "missing.iso"
    iso_edit.setText(str(missing))
    assert_rejected(wizard, f"'{missing}' does not exist or is not a file.")
    iso_edit.setText("install.iso")
    assert_rejected(wizard, "'install.iso' is not an absolute path.")
    radio(wizard, "installLaterRadio").click()
    assert_accepted(wizard)


def test_network_install_needs_a_switch(wizard: NewVmWizard):
    go_to(wizard, PageId.INSTALLATION)
    network_radio = radio(wizard, "networkInstallRadio")
    assert not network_radio.isEnabled()
    assert network_radio.toolTip() == (
        "Installing from the network needs a network connection: choose a switch first."
    )
    back(wizard)
    back(wizard)
    assert wizard.currentId() == PageId.NETWORKING
    find(wizard, QComboBox, "networkCombo").setCurrentIndex(1)
    go_to(wizard, PageId.INSTALLATION)
    assert network_radio.isEnabled()
    network_radio.click()
    assert_accepted(wizard)
    assert wizard.spec().install == NetworkInstall()
    while wizard.currentId() > PageId.NETWORKING:
        back(wizard)
    find(wizard, QComboBox, "networkCombo").setCurrentIndex(0)  # disconnected again
    go_to(wizard, PageId.INSTALLATION)
    assert not network_radio.isEnabled()
    assert radio(wizard, "installLaterRadio").isChecked()
    assert wizard.spec().install is None


def test_kernel_boot_problems(qtbot: Any, wizard: NewVmWizard, tmp_path: Path):
    go_to(wizard, PageId.INSTALLATION)
    radio(wizard, "kernelRadio").click()
    assert edit(wizard, "cmdlineEdit").text() == "console=tty0 console=ttyS0"
    assert_rejected(wizard, "Choose a Linux kernel image.")
    missing = tmp_path / "vmlinuz"
    retype(qtbot, edit(wizard, "kernelEdit"), str(missing))
    assert_rejected(wizard, f"'{missing}' does not exist or is not a file.")
    touch(missing)
    edit(wizard, "cmdlineEdit").setText("console=ttyS0")  # any edit re-checks the files
    assert_accepted(wizard)
    missing_initrd = tmp_path / "initrd.img"
    edit(wizard, "initrdEdit").setText(str(missing_initrd))
    assert_rejected(wizard, f"'{missing_initrd}' does not exist or is not a file.")
    edit(wizard, "initrdEdit").clear()  # the initial ramdisk is optional
    assert_accepted(wizard)
    assert wizard.spec().install == KernelBoot(str(missing), "", "console=ttyS0")


def test_install_browse_buttons(wizard: NewVmWizard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    chosen = {"Open": str(tmp_path / "a.iso"), "Select Kernel": str(tmp_path / "vmlinuz")}
    filters: list[str] = []

    def choose_file(parent: QWidget, caption: str, start: str, file_filter: str) -> str:
        filters.append(file_filter)
        return chosen.get(caption, "")

    monkeypatch.setattr(FileDialogs, "choose_file", staticmethod(choose_file))
    go_to(wizard, PageId.INSTALLATION)
    radio(wizard, "isoRadio").click()
    find(wizard, QPushButton, "isoBrowseButton").click()
    assert edit(wizard, "isoEdit").text() == str(tmp_path / "a.iso")
    assert filters[-1].startswith("Image files (*.iso)")
    radio(wizard, "kernelRadio").click()
    find(wizard, QPushButton, "kernelBrowseButton").click()
    find(wizard, QPushButton, "initrdBrowseButton").click()  # cancelled
    assert edit(wizard, "kernelEdit").text() == str(tmp_path / "vmlinuz")
    assert edit(wizard, "initrdEdit").text() == ""


# --- full runs ---------------------------------------------------------------------------------


def test_generation_1_with_kernel_boot(qtbot: Any, wizard: NewVmWizard, tmp_path: Path):
    kernel = touch(tmp_path / "boot" / "vmlinuz")
    initrd = touch(tmp_path / "boot" / "initrd.img")
    where = tmp_path / "machines"
    next_button(wizard).click()
    retype(qtbot, edit(wizard, "nameEdit"), "hvtest-gen1")
    find(wizard, QCheckBox, "differentLocationCheck").click()
    retype(qtbot, edit(wizard, "locationEdit"), str(where))
    next_button(wizard).click()
    assert radio(wizard, "gen1Radio").isChecked()
    next_button(wizard).click()
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "2048")
    find(wizard, QCheckBox, "dynamicMemoryCheck").click()
    next_button(wizard).click()
    find(wizard, QComboBox, "networkCombo").setCurrentIndex(1)
    next_button(wizard).click()
    _choose_format(wizard, "VHD")
    retype(qtbot, edit(wizard, "diskSizeEdit"), "20")
    next_button(wizard).click()
    radio(wizard, "kernelRadio").click()
    edit(wizard, "kernelEdit").setText(str(kernel))
    edit(wizard, "initrdEdit").setText(str(initrd))
    next_button(wizard).click()
    assert wizard.currentId() == PageId.SUMMARY
    assert not next_button(wizard).isVisible()
    disk_folder = f"{where}/hvtest-gen1/Virtual Hard Disks"
    expected = VmSpec(
        name="hvtest-gen1",
        location=str(where),
        generation=1,
        memory=MemoryConfig(2048, True, 512, 4096),
        processors=1,
        network="default",
        disk=NewDisk(20, "vpc", "hvtest-gen1.vhd", disk_folder),
        install=KernelBoot(str(kernel), str(initrd), "console=tty0 console=ttyS0"),
    )
    assert wizard.spec() == expected
    summary = find(wizard, QTextEdit, "summaryText")
    assert summary.isReadOnly()
    assert summary.toPlainText().splitlines() == [
        "Name:\thvtest-gen1",
        "Generation:\tGeneration 1",
        "Memory:\t2048 MB (Dynamic Memory: 512 MB to 4096 MB)",
        "Network:\tdefault",
        f"Hard Disk:\t{disk_folder}/hvtest-gen1.vhd (VHD, dynamically expanding, 20 GB)",
        f"Operating System:\tBoots the Linux kernel {kernel} with the initial ramdisk {initrd}; "
        "command line: console=tty0 console=ttyS0",
        f"Location:\t{where}/hvtest-gen1/",
    ]
    assert shown_problem(wizard) == ""
    with qtbot.waitSignal(wizard.spec_accepted, timeout=2000) as blocker:
        finish_button(wizard).click()
    assert blocker.args == [expected]


def test_generation_2_with_an_iso(qtbot: Any, wizard: NewVmWizard, location: Path, tmp_path: Path):
    iso = touch(tmp_path / "media" / "install.iso", b"CD001" * 100)
    disk = touch(tmp_path / "disks" / "system.qcow2")
    go_to(wizard, PageId.NAME_LOCATION)
    retype(qtbot, edit(wizard, "nameEdit"), "hvtest-gen2")
    next_button(wizard).click()
    radio(wizard, "gen2Radio").click()
    next_button(wizard).click()
    retype(qtbot, edit(wizard, "startupMemoryEdit"), "3072")
    next_button(wizard).click()
    find(wizard, QComboBox, "networkCombo").setCurrentIndex(2)
    next_button(wizard).click()
    radio(wizard, "existingDiskRadio").click()
    qtbot.keyClicks(edit(wizard, "existingDiskEdit"), str(disk))
    next_button(wizard).click()
    radio(wizard, "isoRadio").click()
    qtbot.keyClicks(edit(wizard, "isoEdit"), str(iso))
    next_button(wizard).click()
    assert wizard.currentId() == PageId.SUMMARY
    expected = VmSpec(
        name="hvtest-gen2",
        location=str(location),
        generation=2,
        memory=MemoryConfig(3072),
        network="lan",
        disk=ExistingDisk(str(disk)),
        install=IsoInstall(str(iso)),
    )
    assert wizard.spec() == expected
    text = find(wizard, QTextEdit, "summaryText").toPlainText()
    assert "Generation:\tGeneration 2" in text
    assert f"Hard Disk:\t{disk}" in text
    assert f"Operating System:\tWill be installed from {iso}" in text
    with qtbot.waitSignal(wizard.spec_accepted, timeout=2000) as blocker:
        finish_button(wizard).click()
    assert blocker.args == [expected]
    assert wizard.result() == QDialog.DialogCode.Accepted


def test_new_disk_goes_to_the_hosts_disk_folder_when_one_is_set(qtbot: Any, location: Path, tmp_path: Path):
    fast = tmp_path / "fast-disks"
    settings = AppSettings(vm_folder=str(location), disk_folder=str(fast))
    wizard = NewVmWizard(HostContext(host_memory_mib=HOST_MEMORY_MIB, networks=NETWORKS), settings)
    qtbot.addWidget(wizard)
    wizard.show()
    go_to(wizard, PageId.DISK)
    assert edit(wizard, "diskLocationEdit").text() == str(fast)
    assert wizard.spec().disk == NewDisk(127, "qcow2", "New Virtual Machine.qcow2", str(fast))
