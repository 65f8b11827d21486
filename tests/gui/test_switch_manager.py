"""The Virtual Switch Manager driven like a user (clicks on the tree, the type list, buttons, radio
buttons and check boxes; typing) against the real libvirt daemon and host network.

Private, Internal, NAT and External switches are created (External on a veth pair whose far end is
in a namespace of the test's own), renamed with notes and removed; ``virsh net-dumpxml`` and
``ip -d link`` are the independent observers. Every message the dialog can show is reached: a
duplicate name, an overlapping address range, an adapter already bound, the kernel's VLAN refusal,
MAC range errors; the questions before touching a host adapter, before binding the default-route
adapter (answered No: the host's own adapter is never touched) and before cutting VMs off a
switch. Everything made here is removed (``tests/network/conftest.py``'s fixtures), and
``ip_forward`` is put back after a NAT switch.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import defusedxml.ElementTree as SafeET
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)
from pytestqt.qtbot import QtBot

from hvmanager.backend import kernel_features, mac_pool, switch_changes, switches
from hvmanager.backend.connection import Server
from hvmanager.backend.network_models import MacRange, SwitchSpec, SwitchType
from hvmanager.backend.settings import AppSettings, load_settings
from hvmanager.backend.switch_errors import ConfirmationNeeded
from hvmanager.controllers.manager import ServerManager
from hvmanager.controllers.network import NetworkController
from hvmanager.ui.network_commands import open_switch_manager
from hvmanager.ui.settings_tree import SUMMARY_ROLE
from hvmanager.ui.switch_manager_dialog import SwitchManagerDialog
from hvmanager.ui.switch_manager_prompts import DISRUPTION_TEXT, SwitchUsersDialog
from tests.conftest import vm_name
from tests.gui.conftest import Runner, settle, wait_until
from tests.gui.disk_helpers import choose_in_combo, click, retype
from tests.network import conftest as network_fixtures
from tests.network.conftest import (
    OutsideNetwork,
    free_subnet,
    host_in,
    link_info,
    our_networks,
    switch_name,
)

# The switch tests' fixtures: the libvirt connection, this run's switches removed before and after,
# ip_forward put back, veth pairs with their far end in a namespace.
conn = network_fixtures.conn
switch_cleanup = network_fixtures.switch_cleanup
ip_forward = network_fixtures.ip_forward
outside_network = network_fixtures.outside_network

W = TypeVar("W", bound=QWidget)
SYSTEM_URI = "qemu:///system"

pytestmark = pytest.mark.usefixtures("switch_cleanup")


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def store() -> ServerManager:
    """The application's settings, saved into this test's own settings folder."""
    return ServerManager(AppSettings(servers=[]))


@pytest.fixture
def network(event_loop_qt: Any, libvirtd: str, store: ServerManager) -> Iterator[NetworkController]:
    """The network controller of the connected local server."""
    server = Server(libvirtd)
    server.open()
    controller = NetworkController(server, store)
    yield controller
    controller.close()
    server.close()


DialogFactory = Callable[[], SwitchManagerDialog]


@pytest.fixture
def make_dialog(qtbot: QtBot, network: NetworkController) -> DialogFactory:
    """Open a Virtual Switch Manager (call it inside the test's async body)."""

    def _make() -> SwitchManagerDialog:
        dialog = open_switch_manager(network, "test host")
        qtbot.addWidget(dialog)
        return dialog

    return _make


# --- driving the dialog ---------------------------------------------------------------------------


def find(widget: QWidget, cls: type[W], name: str) -> W:
    found = [child for child in widget.findChildren(cls, name) if child.isVisibleTo(widget)]
    assert found, f"no visible {cls.__name__} named {name}"
    return found[0]


def page(dialog: SwitchManagerDialog) -> QWidget:
    shown = dialog.stack.currentWidget()
    assert shown is not None
    return shown


def tree_item(dialog: SwitchManagerDialog, text: str) -> QTreeWidgetItem | None:
    items = dialog.tree.findItems(text, Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 0)
    return items[0] if items else None


def tree_texts(dialog: SwitchManagerDialog) -> list[str]:
    return [
        item.text(0)
        for item in dialog.tree.findItems("*", Qt.MatchFlag.MatchWildcard | Qt.MatchFlag.MatchRecursive)
    ]


def click_item(qtbot: QtBot, dialog: SwitchManagerDialog, text: str) -> None:
    """Click a tree entry by its text."""
    item = tree_item(dialog, text)
    assert item is not None, f"no tree entry {text!r}; the tree has {tree_texts(dialog)}"
    tree: QTreeWidget = dialog.tree
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center())
    assert tree.currentItem() is item


async def opened(make_dialog: DialogFactory) -> SwitchManagerDialog:
    dialog = make_dialog()
    await wait_until(dialog.loaded, 20, "the switches to be read")
    assert dialog.message.text() == "" or not dialog.message.isVisible(), dialog.message.text()
    return dialog


async def new_switch(qtbot: QtBot, dialog: SwitchManagerDialog, kind: str, name: str) -> QWidget:
    """New virtual network switch ▸ the type ▸ Create Virtual Switch, then type the name."""
    click_item(qtbot, dialog, "New virtual network switch")
    types = find(dialog, QListWidget, "switchTypeList")
    row = next(row for row in range(types.count()) if types.item(row).text() == kind)
    qtbot.mouseClick(
        types.viewport(), Qt.MouseButton.LeftButton, pos=types.visualItemRect(types.item(row)).center()
    )
    click(qtbot, find(dialog, QPushButton, "createSwitchButton"))
    shown = page(dialog)
    assert find(shown, QRadioButton, f"{kind.lower()}Radio").isChecked()
    retype(qtbot, find(shown, QLineEdit, "switchNameEdit"), name)
    return shown


async def checked(dialog: SwitchManagerDialog) -> None:
    await wait_until(dialog.checked, 20, "the back end's check")


async def problem(dialog: SwitchManagerDialog) -> str:
    """The problem shown under the pages once what is typed is checked ("" when none)."""
    await checked(dialog)
    return dialog.problem.text() if dialog.problem.isVisible() else ""


def button(dialog: SwitchManagerDialog, name: str) -> QPushButton:
    return find(dialog, QPushButton, name)


def start_apply(qtbot: QtBot, dialog: SwitchManagerDialog, which: str = "applyButton") -> list[bool]:
    """Click Apply (or OK); the list receives the result when applying ended."""
    results: list[bool] = []
    dialog.apply_finished.connect(results.append)
    click(qtbot, button(dialog, which))
    return results


async def finished(results: list[bool]) -> bool:
    await wait_until(lambda: results, 120, "applying to end")
    return results[0]


async def question(kind: type[W], name: str) -> W:
    """The question box the dialog opened."""

    def shown() -> W | None:
        widget = QApplication.activeModalWidget()
        return widget if isinstance(widget, kind) and widget.objectName() == name else None

    return await wait_until(shown, 30, name)


async def say(qtbot: QtBot, box: QMessageBox, answer: QMessageBox.StandardButton) -> None:
    qtbot.mouseClick(box.button(answer), Qt.MouseButton.LeftButton)


async def apply_through_warning(
    qtbot: QtBot, dialog: SwitchManagerDialog, answer: QMessageBox.StandardButton
) -> bool:
    """Apply a change to an External switch: Hyper-V's warning comes first."""
    results = start_apply(qtbot, dialog)
    box = await question(QMessageBox, "disruptionWarning")
    assert box.text() == DISRUPTION_TEXT
    await say(qtbot, box, answer)
    return await finished(results)


# --- observers -------------------------------------------------------------------------------------


def virsh(*args: str) -> str:
    done = subprocess.run(["virsh", "-c", SYSTEM_URI, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def net_xml(name: str) -> Any:
    return SafeET.fromstring(virsh("net-dumpxml", "--inactive", name))


def notes_of(name: str) -> str | None:
    return net_xml(name).findtext(
        "metadata/{https://hvmanager.dev/xmlns/switch/1}switch/{https://hvmanager.dev/xmlns/switch/1}notes"
    )


def vlan_refusal() -> str | None:
    """The kernel's reason for refusing a management OS VLAN (netlink probes: off the GUI thread)."""
    return kernel_features.vlan_problem() or kernel_features.adapter_vlan_problem()


def master_of(device: str) -> str | None:
    link = link_info(device)
    return link.get("master") if link is not None else None


# --- the list, the pages ------------------------------------------------------------------------------


def test_tree_pages_and_types(run: Runner, qtbot: QtBot, make_dialog: DialogFactory, conn: Any) -> None:
    name = switch_name("smlst")
    switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))

    async def body() -> None:
        dialog = await opened(make_dialog)
        assert dialog.windowTitle() == "Virtual Switch Manager for test host"
        groups = [dialog.tree.topLevelItem(i).text(0) for i in range(dialog.tree.topLevelItemCount())]
        assert groups == ["Virtual Switches", "Global Network Settings"]
        switches_group = dialog.tree.topLevelItem(0)
        assert switches_group.child(0).text(0) == "New virtual network switch"
        item = tree_item(dialog, name)
        assert item is not None and item.data(0, SUMMARY_ROLE) == "Private virtual switch"
        assert dialog.tree.topLevelItem(1).child(0).text(0) == "MAC Address Range"
        click_item(qtbot, dialog, "New virtual network switch")
        types = find(dialog, QListWidget, "switchTypeList")
        assert [types.item(row).text() for row in range(types.count())] == [
            "External",
            "Internal",
            "Private",
            "NAT",
        ]
        description = find(dialog, QLabel, "switchTypeDescription")
        texts = set()
        for row in range(types.count()):
            qtbot.mouseClick(
                types.viewport(),
                Qt.MouseButton.LeftButton,
                pos=types.visualItemRect(types.item(row)).center(),
            )
            texts.add(description.text())
        assert len(texts) == 4 and all(texts)
        click_item(qtbot, dialog, name)
        assert find(page(dialog), QLineEdit, "switchNameEdit").text() == name
        assert not button(dialog, "applyButton").isEnabled()  # nothing changed yet
        click(qtbot, button(dialog, "cancelButton"))
        await settle()

    run(body)


# --- creating each type -------------------------------------------------------------------------------


def test_creates_private_internal_and_nat_switches(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, ip_forward: str
) -> None:
    private, internal, nat = switch_name("smpri"), switch_name("smint"), switch_name("smnat")
    internal_net, nat_net = free_subnet(), free_subnet()

    async def body() -> None:
        dialog = await opened(make_dialog)
        shown = await new_switch(qtbot, dialog, "Private", private)
        qtbot.keyClicks(find(shown, QPlainTextEdit, "switchNotesEdit"), "VMs only")
        assert await problem(dialog) == ""
        assert await finished(start_apply(qtbot, dialog))
        root = net_xml(private)
        assert root.find("forward") is None and root.find("ip") is None and root.find("bridge") is not None
        assert notes_of(private) == "VMs only"
        assert tree_item(dialog, private) is not None

        shown = await new_switch(qtbot, dialog, "Internal", internal)
        assert (
            await problem(dialog)
            == "The host's address on the switch is needed (for example 192.168.150.1/24)."
        )
        assert not button(dialog, "applyButton").isEnabled() and not button(dialog, "okButton").isEnabled()
        retype(qtbot, find(shown, QLineEdit, "hostAddressEdit"), host_in(internal_net, 1))
        click(qtbot, find(shown, QCheckBox, "dhcpCheck"))
        assert await problem(dialog) == ""
        assert await finished(start_apply(qtbot, dialog))
        ip = net_xml(internal).find("ip")
        assert (ip.get("address"), ip.get("prefix")) == (host_in(internal_net, 1, False), "24")
        assert ip.find("dhcp/range") is not None and net_xml(internal).find("forward") is None

        shown = await new_switch(qtbot, dialog, "NAT", nat)
        dhcp = find(shown, QCheckBox, "dhcpCheck")
        assert dhcp.isChecked() and not dhcp.isEnabled()  # NAT always hands out addresses
        retype(qtbot, find(shown, QLineEdit, "hostAddressEdit"), host_in(nat_net, 1))
        assert await problem(dialog) == ""
        results = start_apply(qtbot, dialog, "okButton")
        assert await finished(results)
        await wait_until(lambda: not dialog.isVisible(), 10, "OK to close the dialog")
        root = net_xml(nat)
        assert root.find("forward").get("mode") == "nat" and root.find("ip/dhcp/range") is not None
        assert {private, internal, nat} <= our_networks()
        await settle()

    run(body)


def test_renames_with_notes_and_removes(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, conn: Any
) -> None:
    old, new = switch_name("smold"), switch_name("smnew")
    uuid = switches.create_switch(conn, SwitchSpec(old, SwitchType.PRIVATE)).uuid

    async def body() -> None:
        dialog = await opened(make_dialog)
        click_item(qtbot, dialog, old)
        shown = page(dialog)
        retype(qtbot, find(shown, QLineEdit, "switchNameEdit"), new)
        qtbot.keyClicks(find(shown, QPlainTextEdit, "switchNotesEdit"), "Second floor")
        assert tree_item(dialog, new) is not None  # the tree follows the name typed
        assert await problem(dialog) == ""
        assert button(dialog, "applyButton").isEnabled()
        assert await finished(start_apply(qtbot, dialog, "okButton"))
        await wait_until(lambda: not dialog.isVisible(), 10, "OK to close the dialog")
        assert old not in our_networks() and new in our_networks()
        assert net_xml(new).findtext("uuid") == uuid and notes_of(new) == "Second floor"

        dialog = await opened(make_dialog)  # Remove, then Cancel: nothing happens
        click_item(qtbot, dialog, new)
        click(qtbot, find(page(dialog), QPushButton, "removeSwitchButton"))
        assert tree_item(dialog, new) is None and new in our_networks()
        click(qtbot, button(dialog, "cancelButton"))
        assert new in our_networks()

        dialog = await opened(make_dialog)  # Remove, then Apply
        click_item(qtbot, dialog, new)
        click(qtbot, find(page(dialog), QPushButton, "removeSwitchButton"))
        assert await finished(start_apply(qtbot, dialog))
        assert new not in our_networks() and tree_item(dialog, new) is None
        click(qtbot, button(dialog, "cancelButton"))
        await settle()

    run(body)


def test_external_switch_on_a_veth(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, outside_network: Callable[..., OutsideNetwork]
) -> None:
    outside = outside_network("smx", host_address=True)
    name = switch_name("smext")

    async def body() -> None:
        dialog = await opened(make_dialog)
        shown = await new_switch(qtbot, dialog, "External", name)
        combo = find(shown, QComboBox, "adapterCombo")
        row = combo.findData(outside.adapter)
        assert row >= 0, [combo.itemText(i) for i in range(combo.count())]
        choose_in_combo(qtbot, combo, combo.itemText(row))
        assert find(shown, QCheckBox, "shareCheck").isChecked()
        assert await problem(dialog) == ""
        assert not await apply_through_warning(qtbot, dialog, QMessageBox.StandardButton.No)
        assert dialog.message.text() == "Nothing was applied." and name not in our_networks()
        assert await apply_through_warning(qtbot, dialog, QMessageBox.StandardButton.Yes)
        root = net_xml(name)
        bridge = root.find("bridge").get("name")
        assert root.find("forward").get("mode") == "bridge" and master_of(outside.adapter) == bridge

        # A second External switch: the adapter is listed, greyed out, with the switch using it.
        shown = await new_switch(qtbot, dialog, "External", switch_name("smex2"))
        combo = find(shown, QComboBox, "adapterCombo")
        model = combo.model()
        assert isinstance(model, QStandardItemModel)
        item = model.item(combo.findData(outside.adapter))
        assert not item.isEnabled() and name in item.text() and name in item.toolTip()
        assert combo.currentData() != outside.adapter
        click(qtbot, find(shown, QPushButton, "removeSwitchButton"))  # a new switch goes at once
        assert tree_item(dialog, switch_name("smex2")) is None

        # Sharing off: the adapter leaves the host bridge and VMs bind to it with macvtap.
        click_item(qtbot, dialog, name)
        click(qtbot, find(page(dialog), QCheckBox, "shareCheck"))
        assert await problem(dialog) == ""
        assert await apply_through_warning(qtbot, dialog, QMessageBox.StandardButton.Yes)
        forward = net_xml(name).find("forward")
        assert forward.get("mode") == "bridge" and forward.find("interface").get("dev") == outside.adapter
        assert master_of(outside.adapter) is None
        click(qtbot, button(dialog, "cancelButton"))
        await settle()

    run(body)


# --- what the dialog refuses ----------------------------------------------------------------------------


def test_adapter_bound_meanwhile(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, conn: Any,
    outside_network: Callable[..., OutsideNetwork],
) -> None:  # fmt: skip
    outside = outside_network("smb")
    other = switch_name("smoth")

    async def body() -> None:
        dialog = await opened(make_dialog)
        shown = await new_switch(qtbot, dialog, "External", switch_name("smbnd"))
        combo = find(shown, QComboBox, "adapterCombo")
        choose_in_combo(qtbot, combo, combo.itemText(combo.findData(outside.adapter)))
        assert await problem(dialog) == ""
        # Another client (hvctl, say) binds the adapter while the dialog is open.
        spec = SwitchSpec(other, SwitchType.EXTERNAL, host_adapter=outside.adapter, share_with_host=False)
        await asyncio.to_thread(switches.create_switch, conn, spec)  # netlink: off the GUI thread
        qtbot.keyClicks(find(shown, QLineEdit, "switchNameEdit"), "x")
        assert await problem(dialog) == (
            f"The network adapter '{outside.adapter}' is already bound to the External switch '{other}' "
            "(one External switch per host adapter)."
        )
        assert not button(dialog, "okButton").isEnabled() and not button(dialog, "applyButton").isEnabled()
        click(qtbot, button(dialog, "cancelButton"))
        assert our_networks() == {other}
        await settle()

    run(body)


def test_validation_messages(run: Runner, qtbot: QtBot, make_dialog: DialogFactory, conn: Any) -> None:
    taken, subnet = switch_name("smtkn"), free_subnet()
    switches.create_switch(conn, SwitchSpec(taken, SwitchType.INTERNAL, host_address=host_in(subnet, 1)))

    async def body() -> None:
        dialog = await opened(make_dialog)
        await new_switch(qtbot, dialog, "Private", taken.upper())
        assert await problem(dialog) == f"A virtual switch named '{taken}' already exists."
        assert not button(dialog, "okButton").isEnabled()
        shown = await new_switch(qtbot, dialog, "Private", switch_name("smdup"))
        await new_switch(qtbot, dialog, "Private", switch_name("smdup"))
        assert (
            await problem(dialog) == f"Another virtual switch in this list is named '{switch_name('smdup')}'."
        )
        click(qtbot, find(page(dialog), QPushButton, "removeSwitchButton"))
        click_item(qtbot, dialog, switch_name("smdup"))
        assert page(dialog) is shown and await problem(dialog) == ""
        click(qtbot, find(shown, QPushButton, "removeSwitchButton"))

        shown = await new_switch(qtbot, dialog, "Internal", switch_name("smovl"))
        address = find(shown, QLineEdit, "hostAddressEdit")
        retype(qtbot, address, host_in(subnet, 9))
        assert await problem(dialog) == (
            f"The address range {subnet} overlaps the range {subnet} of the virtual switch '{taken}'."
        )
        retype(qtbot, address, "10.0.0.300/24")
        assert await problem(dialog) == (
            "'10.0.0.300/24' is not an IPv4 address with a prefix length (for example 192.168.150.1/24)."
        )
        retype(qtbot, address, host_in(free_subnet(), 1))
        assert await problem(dialog) == ""
        click(qtbot, find(shown, QCheckBox, "vlanCheck"))
        reason = await asyncio.to_thread(vlan_refusal)
        assert await problem(dialog) == (reason or "")
        assert reason is not None, "these machines' kernels have no 802.1Q: the refusal is what is tested"
        assert not button(dialog, "applyButton").isEnabled()
        click(qtbot, find(shown, QPushButton, "removeSwitchButton"))

        click_item(qtbot, dialog, "MAC Address Range")
        minimum, maximum = (
            find(dialog, QLineEdit, "minimumMacEdit"),
            find(dialog, QLineEdit, "maximumMacEdit"),
        )
        count = find(dialog, QLabel, "macCountLabel")
        retype(qtbot, minimum, "zz")
        assert await problem(dialog) == "Minimum: 'zz' is not a MAC address." and count.text() == "–"
        retype(qtbot, minimum, "00-15-5D-AA-00-20")
        retype(qtbot, maximum, "00-15-5D-AA-00-1F")
        assert (
            await problem(dialog)
            == mac_pool.range_problems(MacRange("00:15:5d:aa:00:20", "00:15:5d:aa:00:1f"))[0]
        )
        assert "above its maximum" in dialog.problem.text()
        retype(qtbot, maximum, "00-16-5D-AA-00-FF")
        assert "must share their first three bytes" in await problem(dialog)
        retype(qtbot, minimum, "01-16-5D-AA-00-00")
        assert "multicast" in await problem(dialog)
        assert not button(dialog, "okButton").isEnabled()
        retype(qtbot, minimum, "00-16-5D-AA-00-10")
        assert await problem(dialog) == "" and count.text() == "240"
        click(qtbot, button(dialog, "cancelButton"))
        assert our_networks() == {taken}
        await settle()

    run(body)


def test_a_failure_is_shown_and_the_rest_stays_pending(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, conn: Any
) -> None:
    gone, kept, renamed = switch_name("smgone"), switch_name("smkept"), switch_name("smrnm")
    for name in (gone, kept):
        switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))

    async def body() -> None:
        dialog = await opened(make_dialog)
        click_item(qtbot, dialog, kept)
        retype(qtbot, find(page(dialog), QLineEdit, "switchNameEdit"), renamed)
        click_item(qtbot, dialog, gone)
        click(qtbot, find(page(dialog), QPushButton, "removeSwitchButton"))
        virsh("net-destroy", gone)  # another client removes it meanwhile
        virsh("net-undefine", gone)
        results = start_apply(qtbot, dialog, "okButton")
        assert not await finished(results)
        assert dialog.isVisible()  # OK keeps the dialog open on a failure
        assert dialog.message.text() == (
            f"Could not remove the virtual switch '{gone}': There is no virtual switch named '{gone}'."
        )
        assert tree_item(dialog, gone) is not None  # listed again, and shown
        assert find(page(dialog), QLineEdit, "switchNameEdit").text() == gone
        # The rename after it was not applied, and is still pending.
        assert kept in our_networks() and renamed not in our_networks()
        assert tree_item(dialog, renamed) is not None and dialog.pending()
        click(qtbot, button(dialog, "cancelButton"))
        await settle()

    run(body)


# --- the questions ---------------------------------------------------------------------------------


def test_default_route_adapter_asks_first(
    run: Runner,
    qtbot: QtBot,
    make_dialog: DialogFactory,
    outside_network: Callable[..., OutsideNetwork],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Binding the adapter that carries the default route: the back end's warning is asked as a
    question; No creates nothing, Yes retries confirmed. The test's own veth stands for that
    adapter (the back end's rule itself is tested in a namespace, tests/network), so the host's
    adapter is never selected."""
    outside = outside_network("smd", host_address=True)
    name = switch_name("smdfl")
    confirmations: list[bool] = []

    def carries_default_route(_conn: Any, spec: Any, _current: Any, confirmed: bool) -> None:
        if spec.host_adapter == outside.adapter:
            confirmations.append(confirmed)
            if not confirmed:
                raise ConfirmationNeeded(outside.adapter)

    monkeypatch.setattr(switch_changes, "require_default_route_confirmation", carries_default_route)

    async def body() -> None:
        dialog = await opened(make_dialog)
        shown = await new_switch(qtbot, dialog, "External", name)
        combo = find(shown, QComboBox, "adapterCombo")
        choose_in_combo(qtbot, combo, combo.itemText(combo.findData(outside.adapter)))
        assert await problem(dialog) == ""
        for answer in (QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes):
            results = start_apply(qtbot, dialog)
            await say(qtbot, await question(QMessageBox, "disruptionWarning"), QMessageBox.StandardButton.Yes)
            box = await question(QMessageBox, "defaultRouteQuestion")
            assert f"'{outside.adapter}' carries this host's default route" in box.text()
            await say(qtbot, box, answer)
            if answer is QMessageBox.StandardButton.No:
                assert not await finished(results)
                assert "you chose not to create the virtual switch" in dialog.message.text()
                assert name not in our_networks() and tree_item(dialog, name) is not None  # pending
            else:
                assert await finished(results)
                assert name in our_networks()
        click(qtbot, button(dialog, "cancelButton"))
        await settle()

    run(body)
    assert confirmations == [False, False, True]


def _define_user_vm(name: str, network: str, mac: str, folder: Path) -> None:
    """A VM (never started) with one adapter on ``network``, defined with virsh."""
    xml = (
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>"
        f"<interface type='network'><source network='{network}'/><mac address='{mac}'/>"
        "<model type='virtio'/></interface></devices></domain>"
    )
    path = folder / "domain.xml"
    path.write_text(xml, encoding="utf-8")
    virsh("define", str(path))


def _interface(name: str) -> Any:
    return SafeET.fromstring(virsh("dumpxml", "--inactive", name)).find("devices/interface")


def test_switch_in_use_lists_its_vms(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, conn: Any, clean_domains: str, tmp_path: Path
) -> None:
    name, vm, mac = switch_name("smuse"), vm_name("swuser"), "52:54:00:5a:11:22"
    switches.create_switch(conn, SwitchSpec(name, SwitchType.PRIVATE))
    _define_user_vm(vm, name, mac, tmp_path)

    async def body() -> None:
        dialog = await opened(make_dialog)
        # Retyping a switch VMs use: asked, No keeps everything.
        click_item(qtbot, dialog, name)
        shown = page(dialog)
        click(qtbot, find(shown, QRadioButton, "internalRadio"))
        retype(qtbot, find(shown, QLineEdit, "hostAddressEdit"), host_in(free_subnet(), 1))
        assert await problem(dialog) == ""
        results = start_apply(qtbot, dialog)
        users = await question(SwitchUsersDialog, "switchInUseDialog")
        assert users.names() == [vm]
        assert any("change the connection type of" in label.text() for label in users.findChildren(QLabel))
        click(qtbot, find(users, QPushButton, "noButton"))
        assert not await finished(results)
        assert "keep their connection" in dialog.message.text()
        assert net_xml(name).find("ip") is None and _interface(vm).find("source").get("network") == name
        click(qtbot, find(page(dialog), QRadioButton, "privateRadio"))  # back as it was

        # Removing it: No keeps it (listed again), Yes disconnects the VM and removes the switch.
        click(qtbot, find(page(dialog), QPushButton, "removeSwitchButton"))
        results = start_apply(qtbot, dialog)
        users = await question(SwitchUsersDialog, "switchInUseDialog")
        click(qtbot, find(users, QPushButton, "noButton"))
        assert not await finished(results)
        assert name in our_networks() and tree_item(dialog, name) is not None
        click_item(qtbot, dialog, name)
        click(qtbot, find(page(dialog), QPushButton, "removeSwitchButton"))
        results = start_apply(qtbot, dialog)
        users = await question(SwitchUsersDialog, "switchInUseDialog")
        assert users.names() == [vm]
        click(qtbot, find(users, QPushButton, "yesButton"))
        assert await finished(results)
        assert name not in our_networks()
        interface = _interface(vm)
        assert (
            interface.get("type") == "user" and interface.find("mac").get("address") == mac
        )  # Not connected
        click(qtbot, button(dialog, "cancelButton"))
        await settle()

    run(body)


# --- Global Network Settings ---------------------------------------------------------------------------


def test_mac_range_is_saved(
    run: Runner, qtbot: QtBot, make_dialog: DialogFactory, store: ServerManager
) -> None:
    async def body() -> None:
        dialog = await opened(make_dialog)
        click_item(qtbot, dialog, "MAC Address Range")
        default = await asyncio.to_thread(mac_pool.default_range)  # netlink: never on the GUI thread
        minimum, maximum = (
            find(dialog, QLineEdit, "minimumMacEdit"),
            find(dialog, QLineEdit, "maximumMacEdit"),
        )
        assert minimum.text() == default.minimum.replace(":", "-").upper()
        assert find(dialog, QLabel, "macCountLabel").text() == "256"
        retype(qtbot, minimum, "00-15-5D-AB-CD-00")
        retype(qtbot, maximum, "00-15-5d-ab-cd-7f")
        assert await problem(dialog) == ""
        assert find(dialog, QLabel, "macCountLabel").text() == "128"
        assert await finished(start_apply(qtbot, dialog))
        saved = load_settings()  # the settings file, as the next start reads it
        assert (saved.mac_minimum, saved.mac_maximum) == ("00:15:5d:ab:cd:00", "00:15:5d:ab:cd:7f")
        assert store.settings.mac_minimum == "00:15:5d:ab:cd:00"
        click(qtbot, button(dialog, "cancelButton"))

        dialog = await opened(make_dialog)
        click_item(qtbot, dialog, "MAC Address Range")
        minimum, maximum = (
            find(dialog, QLineEdit, "minimumMacEdit"),
            find(dialog, QLineEdit, "maximumMacEdit"),
        )
        assert (minimum.text(), maximum.text()) == ("00-15-5D-AB-CD-00", "00-15-5D-AB-CD-7F")
        retype(qtbot, minimum, default.minimum)  # back to the default: kept as "the default"
        retype(qtbot, maximum, default.maximum)
        assert await finished(start_apply(qtbot, dialog, "okButton"))
        saved = load_settings()
        assert (saved.mac_minimum, saved.mac_maximum) == ("", "")
        await settle()

    run(body)


# --- from the main window ---------------------------------------------------------------------------------


def test_opens_from_the_main_window(run: Runner, make_window: Any, libvirtd: str) -> None:
    window = make_window(libvirtd)
    acts = window.app_actions

    async def body() -> None:
        await wait_until(lambda: acts.switch_manager.isEnabled(), 30, "the server to connect")
        entries = [b.defaultAction().text() for b in window.actions_pane.server_block.buttons()]
        assert "Virtual Switch Manager..." in entries and "Switch Monitor..." in entries
        assert acts.switch_monitor.isEnabled()
        acts.switch_manager.trigger()
        dialog = window.network_commands.last_dialog
        assert isinstance(dialog, SwitchManagerDialog) and dialog.isVisible()
        await wait_until(dialog.loaded, 20, "the switches to be read")
        server = window.current
        assert server is not None and dialog.windowTitle() == f"Virtual Switch Manager for {server.title}"
        acts.switch_manager.trigger()  # one window per server: brought to the front
        assert window.network_commands.last_dialog is dialog
        dialog.reject()
        acts.switch_monitor.trigger()
        monitor = window.network_commands.last_dialog
        assert isinstance(monitor, QWidget) and monitor.isVisible() and monitor is not dialog
        monitor.close()
        await settle()

    run(body)
