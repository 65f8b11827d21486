"""Settings ▸ Hardware network pages (Network Adapter, Hardware Acceleration, Advanced Features,
Legacy Network Adapter, and Add Hardware's adapters) driven like a user: clicks on the tree, the
lists, the check boxes, the radio buttons, the switch drop-down's pop-up, typing numbers and MAC
addresses. Checks the tree and its summaries, every problem the dialog's label shows, what each VM
state locks and why, and the exact adapters OK hands over. The last test opens the Settings window
of a real VM that is off from the main window and reads the result back with virsh.
"""

from __future__ import annotations

import dataclasses
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTreeWidgetItem,
)
from pytestqt.qtbot import QtBot

from hvmanager.backend import creation, kernel_features, switches
from hvmanager.backend.connection import Server
from hvmanager.backend.models import MemoryConfig, VmSpec, VmState
from hvmanager.backend.network_models import (
    LEGACY_ADAPTER_NAME,
    AdapterSpec,
    MacRange,
    SwitchInfo,
    SwitchSpec,
    SwitchType,
)
from hvmanager.backend.vm_network_rules import LIVE_QUEUES_REASON
from hvmanager.backend.vmactions import VmAction
from hvmanager.backend.vmsettings_rules import (
    LIVE_LEGACY_REASON,
    LIVE_MAC_REASON,
    NetworkSettings,
    SettingsChange,
)
from hvmanager.ui.vm_settings_dialog import PAGE_ROLE, SUMMARY_ROLE, VmSettingsDialog
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.test_settings_storage import (
    choose,
    click,
    click_button,
    click_entry,
    combo_texts,
    entry,
    hardware_outline,
    note,
    ok_change,
    on_page,
    pick_row,
    shown,
    tree,
)
from tests.gui.test_vm_settings_dialog import HOST, OFF_VM, buttons_enabled, problem_text, retype, type_number
from tests.vm.helpers import virsh

LAB = SwitchInfo(SwitchSpec("lab-switch", SwitchType.PRIVATE), "u-lab", "hvtlab0", True)
WAN = SwitchInfo(
    SwitchSpec("wan-switch", SwitchType.NAT, host_address="192.168.150.1/24", dhcp=True),
    "u-wan",
    "hvtwan0",
    True,
)
QOS = SwitchInfo(
    SwitchSpec("qos-switch", SwitchType.INTERNAL, host_address="192.168.151.1/24", minimum_bandwidth=True),
    "u-qos",
    "hvtqos0",
    True,
)
RANGE = MacRange("00:15:5d:0a:0b:00", "00:15:5d:0a:0b:ff")
WEB_NIC = AdapterSpec("lab-switch", "00:15:5d:0a:0b:01")
GEN2_VM = dataclasses.replace(OFF_VM, generation=2)


def network(*adapters: AdapterSpec) -> NetworkSettings:
    return NetworkSettings(adapters, (LAB, WAN, QOS), RANGE)


def open_dialog(
    qtbot: QtBot,
    settings: NetworkSettings,
    state: VmState = VmState.OFF,
    config: Any = OFF_VM,
) -> VmSettingsDialog:
    dialog = VmSettingsDialog(config, state, HOST, frozenset({"db"}), network=settings)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def hardware_list(dialog: VmSettingsDialog) -> list[str]:
    listing = on_page(dialog, QListWidget, "hardwareList")
    return [listing.item(row).text() for row in range(listing.count())]


def add_hardware(qtbot: QtBot, dialog: VmSettingsDialog, text: str) -> None:
    """Add Hardware ▸ select ``text`` ▸ Add."""
    click_entry(qtbot, dialog, "Add Hardware")
    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), text)
    click_button(qtbot, dialog, "addHardwareButton")


def sub_entry(dialog: VmSettingsDialog, title: str, adapter: int) -> QTreeWidgetItem:
    """The tree entry of a sub-page of the ``adapter``-th Network Adapter."""
    parent = entry(dialog, "Network Adapter", nth=adapter)
    found = [parent.child(i) for i in range(parent.childCount()) if parent.child(i).text(0) == title]
    assert len(found) == 1, title
    return found[0]


def click_sub_page(qtbot: QtBot, dialog: VmSettingsDialog, title: str, adapter: int) -> None:
    """Click a sub-page entry of the ``adapter``-th Network Adapter."""
    view = tree(dialog)
    item = sub_entry(dialog, title, adapter)
    view.scrollToItem(item)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(item).center())
    assert shown(dialog) is item.data(0, PAGE_ROLE)


def erase(qtbot: QtBot, edit: QLineEdit) -> None:
    qtbot.mouseClick(edit, Qt.MouseButton.LeftButton)
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(edit, Qt.Key.Key_Delete)


def tick(qtbot: QtBot, dialog: VmSettingsDialog, name: str) -> None:
    box = on_page(dialog, QCheckBox, name)
    assert box.isEnabled(), name
    click(qtbot, box)


def type_into(qtbot: QtBot, dialog: VmSettingsDialog, name: str, value: int) -> None:
    spin = on_page(dialog, QSpinBox, name)
    assert spin.isEnabled(), name
    type_number(qtbot, spin, value)


# --- the tree -------------------------------------------------------------------------------


def test_each_adapter_has_an_entry_showing_its_switch(qtbot: QtBot) -> None:
    legacy = AdapterSpec(None, "00:15:5d:0a:0b:02", legacy=True, name=LEGACY_ADAPTER_NAME)
    dialog = open_dialog(qtbot, network(WEB_NIC, legacy))

    assert hardware_outline(dialog) == [
        ("Add Hardware", None),
        ("BIOS", "Boot from CD"),
        ("Memory", "1024 MB"),
        ("Processor", "1 Virtual processor"),
        ("Network Adapter", "lab-switch", [("Hardware Acceleration", None), ("Advanced Features", None)]),
        ("Legacy Network Adapter", "Not connected"),
    ]
    assert not entry(dialog, "Network Adapter").icon(0).isNull()
    click_entry(qtbot, dialog, "Add Hardware")
    assert hardware_list(dialog) == ["Network Adapter", "Legacy Network Adapter"]
    assert dialog.change() == SettingsChange()
    assert buttons_enabled(dialog) == (True, False)


def test_generation_2_offers_no_legacy_adapter(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC), config=GEN2_VM)

    click_entry(qtbot, dialog, "Add Hardware")

    assert hardware_list(dialog) == ["Network Adapter"]
    assert [row[0] for row in hardware_outline(dialog)] == [
        "Add Hardware",
        "Firmware",
        "Memory",
        "Processor",
        "Network Adapter",
    ]


def test_without_network_settings_there_are_no_adapter_pages(qtbot: QtBot) -> None:
    dialog = VmSettingsDialog(OFF_VM, VmState.OFF, HOST, frozenset())
    qtbot.addWidget(dialog)

    assert [row[0] for row in hardware_outline(dialog)] == ["BIOS", "Memory", "Processor"]
    assert dialog.change().adapters is None


# --- the Network Adapter page -----------------------------------------------------------------


def test_add_an_adapter_connect_it_and_ok_hands_it_over(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC))

    add_hardware(qtbot, dialog, "Network Adapter")

    assert shown(dialog).objectName() == "networkAdapterPage"
    assert tree(dialog).currentItem() is entry(dialog, "Network Adapter", nth=1)
    assert entry(dialog, "Network Adapter", nth=1).data(0, SUMMARY_ROLE) == "Not connected"
    switch = on_page(dialog, QComboBox, "switchCombo")
    assert combo_texts(switch) == ["Not connected", "lab-switch", "wan-switch", "qos-switch"]
    assert dialog.change() == SettingsChange(adapters=(WEB_NIC, AdapterSpec(None)))

    choose(qtbot, switch, "wan-switch")

    assert entry(dialog, "Network Adapter", nth=1).data(0, SUMMARY_ROLE) == "wan-switch"
    assert problem_text(dialog) == ""
    assert ok_change(qtbot, dialog) == SettingsChange(adapters=(WEB_NIC, AdapterSpec("wan-switch")))
    assert not dialog.isVisible()


def test_reconnect_to_not_connected_and_remove(qtbot: QtBot) -> None:
    other = AdapterSpec("wan-switch", "00:15:5d:0a:0b:07")
    dialog = open_dialog(qtbot, network(WEB_NIC, other))
    click_entry(qtbot, dialog, "Network Adapter")

    choose(qtbot, on_page(dialog, QComboBox, "switchCombo"), "Not connected")
    assert entry(dialog, "Network Adapter").data(0, SUMMARY_ROLE) == "Not connected"
    click_entry(qtbot, dialog, "Network Adapter", nth=1)
    click_button(qtbot, dialog, "removeAdapterButton")

    assert [row[0] for row in hardware_outline(dialog)][4:] == ["Network Adapter"]
    assert shown(dialog) is entry(dialog, "Network Adapter").data(0, PAGE_ROLE)
    assert ok_change(qtbot, dialog) == SettingsChange(adapters=(dataclasses.replace(WEB_NIC, switch=None),))


def test_vlan_id_needs_vlan_filtering_in_the_kernel(qtbot: QtBot) -> None:
    missing = kernel_features.adapter_vlan_problem()
    assert missing is not None, "this host's kernel has no bridge VLAN filtering (environment.md)"
    dialog = open_dialog(qtbot, network(WEB_NIC))
    click_entry(qtbot, dialog, "Network Adapter")
    assert not on_page(dialog, QSpinBox, "vlanIdSpin").isEnabled()

    tick(qtbot, dialog, "vlanCheck")
    type_into(qtbot, dialog, "vlanIdSpin", 10)

    assert missing in problem_text(dialog)
    assert buttons_enabled(dialog) == (False, False)
    assert dialog.change() == SettingsChange(adapters=(dataclasses.replace(WEB_NIC, vlan_id=10),))

    tick(qtbot, dialog, "vlanCheck")  # off again: nothing to refuse
    assert problem_text(dialog) == ""
    assert dialog.change() == SettingsChange()


def test_bandwidth_minimum_above_maximum_is_refused(qtbot: QtBot) -> None:
    on_qos = dataclasses.replace(WEB_NIC, switch="qos-switch")
    dialog = open_dialog(qtbot, network(on_qos))
    click_entry(qtbot, dialog, "Network Adapter")

    tick(qtbot, dialog, "bandwidthCheck")
    type_into(qtbot, dialog, "minimumBandwidthSpin", 200)
    type_into(qtbot, dialog, "maximumBandwidthSpin", 100)

    order = "The minimum bandwidth (200 Mbps) is above the maximum (100 Mbps)."
    assert order in problem_text(dialog)
    assert buttons_enabled(dialog) == (False, False)

    type_into(qtbot, dialog, "maximumBandwidthSpin", 500)
    assert "above the maximum" not in problem_text(dialog)
    assert dialog.change() == SettingsChange(
        adapters=(dataclasses.replace(on_qos, minimum_mbps=200, maximum_mbps=500),)
    )


def test_bandwidth_unticked_hands_over_no_limits(qtbot: QtBot) -> None:
    limited = dataclasses.replace(WEB_NIC, maximum_mbps=100)
    dialog = open_dialog(qtbot, network(limited))
    click_entry(qtbot, dialog, "Network Adapter")
    assert on_page(dialog, QCheckBox, "bandwidthCheck").isChecked()
    assert on_page(dialog, QSpinBox, "maximumBandwidthSpin").value() == 100

    tick(qtbot, dialog, "bandwidthCheck")

    assert not on_page(dialog, QSpinBox, "maximumBandwidthSpin").isEnabled()
    assert ok_change(qtbot, dialog) == SettingsChange(adapters=(WEB_NIC,))


# --- Hardware Acceleration and Advanced Features -----------------------------------------------


def test_virtual_machine_queue_hands_over_the_queues(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC), config=dataclasses.replace(OFF_VM, processors=4))
    click_entry(qtbot, dialog, "Network Adapter", "Hardware Acceleration")
    assert shown(dialog).objectName() == "hardwareAccelerationPage"
    assert not on_page(dialog, QSpinBox, "queuesSpin").isEnabled()

    tick(qtbot, dialog, "vmqCheck")
    type_into(qtbot, dialog, "queuesSpin", 4)

    assert problem_text(dialog) == ""
    assert ok_change(qtbot, dialog) == SettingsChange(
        adapters=(dataclasses.replace(WEB_NIC, vmq=True, queues=4),)
    )


def test_more_queues_than_processors_is_refused(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC))  # 1 virtual processor
    click_entry(qtbot, dialog, "Network Adapter", "Hardware Acceleration")

    tick(qtbot, dialog, "vmqCheck")
    type_into(qtbot, dialog, "queuesSpin", 3)

    assert problem_text(dialog) == (
        "The network adapter can have at most 1 queue: one per virtual processor of the virtual machine, "
        "which has 1. Give it more processors first."
    )
    assert buttons_enabled(dialog) == (False, False)


def test_static_mac_address_is_checked_and_normalized(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC))
    click_entry(qtbot, dialog, "Network Adapter", "Advanced Features")
    assert on_page(dialog, QRadioButton, "dynamicMacRadio").isChecked()
    assert on_page(dialog, QLineEdit, "dynamicMacEdit").text() == "00-15-5D-0A-0B-01"
    assert not on_page(dialog, QLineEdit, "staticMacEdit").isEnabled()

    click(qtbot, on_page(dialog, QRadioButton, "staticMacRadio"))
    static = on_page(dialog, QLineEdit, "staticMacEdit")
    assert static.text() == "00-15-5D-0A-0B-01"  # starts from the address it has
    retype(qtbot, static, "00-15-5D-0A-0B-ZZ")

    assert problem_text(dialog) == "'00-15-5D-0A-0B-ZZ' is not a MAC address."
    assert buttons_enabled(dialog) == (False, False)
    erase(qtbot, static)
    assert problem_text(dialog) == "Type the static MAC address of the network adapter, or choose Dynamic."
    retype(qtbot, static, "01-15-5D-0A-0B-42")
    assert "is a multicast address" in problem_text(dialog)

    retype(qtbot, static, "00-15-5d-0a-0b-42")
    assert problem_text(dialog) == ""
    assert ok_change(qtbot, dialog) == SettingsChange(
        adapters=(dataclasses.replace(WEB_NIC, mac="00:15:5d:0a:0b:42", dynamic_mac=False),)
    )


def test_a_new_adapter_gets_its_dynamic_address_when_applied(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network())
    add_hardware(qtbot, dialog, "Network Adapter")

    click_entry(qtbot, dialog, "Network Adapter", "Advanced Features")

    current = on_page(dialog, QLineEdit, "dynamicMacEdit")
    assert current.text() == ""
    assert current.placeholderText() == "assigned when applied"
    texts = [label.text() for label in shown(dialog).findChildren(QLabel)]
    assert any("range 00-15-5D-0A-0B-00 to 00-15-5D-0A-0B-FF" in text for text in texts), texts
    assert dialog.change() == SettingsChange(adapters=(AdapterSpec(None),))


# --- Legacy Network Adapter -------------------------------------------------------------------


def test_legacy_adapter_has_switch_vlan_and_mac_on_one_page(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC))

    add_hardware(qtbot, dialog, "Legacy Network Adapter")

    assert shown(dialog).objectName() == "legacyNetworkAdapterPage"
    assert hardware_outline(dialog)[-1] == ("Legacy Network Adapter", "Not connected")
    assert shown(dialog).findChild(QCheckBox, "bandwidthCheck") is None
    choose(qtbot, on_page(dialog, QComboBox, "switchCombo"), "lab-switch")
    click(qtbot, on_page(dialog, QRadioButton, "staticMacRadio"))
    retype(qtbot, on_page(dialog, QLineEdit, "staticMacEdit"), "00:15:5D:0A:0B:33")

    assert problem_text(dialog) == ""
    legacy = AdapterSpec(
        "lab-switch", "00:15:5d:0a:0b:33", dynamic_mac=False, legacy=True, name=LEGACY_ADAPTER_NAME
    )
    assert ok_change(qtbot, dialog) == SettingsChange(adapters=(WEB_NIC, legacy))


# --- limits ------------------------------------------------------------------------------------


def test_a_65th_adapter_and_a_5th_legacy_one_are_refused(qtbot: QtBot) -> None:
    many = tuple(AdapterSpec(None, f"00:15:5d:0a:0c:{n:02x}") for n in range(64))
    legacy = tuple(
        AdapterSpec(None, f"00:15:5d:0a:0d:{n:02x}", legacy=True, name=LEGACY_ADAPTER_NAME) for n in range(4)
    )
    dialog = open_dialog(qtbot, network(*many, *legacy))
    click_entry(qtbot, dialog, "Add Hardware")
    add = on_page(dialog, QPushButton, "addHardwareButton")

    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), "Network Adapter")
    assert not add.isEnabled()
    assert note(dialog) == (
        "This virtual machine already has 64 network adapters, the most a virtual machine can have."
    )
    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), "Legacy Network Adapter")
    assert not add.isEnabled()
    assert note(dialog) == (
        "This virtual machine already has 4 legacy network adapters, the most a virtual machine can have."
    )
    assert add.toolTip() == note(dialog)

    click_entry(qtbot, dialog, "Network Adapter")  # one fewer: Add comes back
    click_button(qtbot, dialog, "removeAdapterButton")
    click_entry(qtbot, dialog, "Add Hardware")
    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), "Network Adapter")
    assert add.isEnabled()


# --- what the VM's state locks -----------------------------------------------------------------


def test_a_running_vm_reconnects_but_keeps_queues_mac_and_legacy_adapters(qtbot: QtBot) -> None:
    legacy = AdapterSpec(None, "00:15:5d:0a:0b:02", legacy=True, name=LEGACY_ADAPTER_NAME)
    dialog = open_dialog(qtbot, network(WEB_NIC, legacy), VmState.RUNNING)

    click_entry(qtbot, dialog, "Network Adapter", "Hardware Acceleration")
    assert not on_page(dialog, QCheckBox, "vmqCheck").isEnabled()
    assert note(dialog) == LIVE_QUEUES_REASON
    click_entry(qtbot, dialog, "Network Adapter", "Advanced Features")
    assert not on_page(dialog, QRadioButton, "staticMacRadio").isEnabled()
    assert note(dialog) == LIVE_MAC_REASON
    click_entry(qtbot, dialog, "Legacy Network Adapter")
    assert not on_page(dialog, QPushButton, "removeAdapterButton").isEnabled()
    assert LIVE_LEGACY_REASON in note(dialog)
    click_entry(qtbot, dialog, "Add Hardware")
    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), "Legacy Network Adapter")
    assert not on_page(dialog, QPushButton, "addHardwareButton").isEnabled()
    assert note(dialog) == LIVE_LEGACY_REASON

    pick_row(qtbot, on_page(dialog, QListWidget, "hardwareList"), "Network Adapter")
    click_button(qtbot, dialog, "addHardwareButton")
    click_entry(qtbot, dialog, "Network Adapter")
    choose(qtbot, on_page(dialog, QComboBox, "switchCombo"), "wan-switch")

    assert problem_text(dialog) == ""
    assert ok_change(qtbot, dialog) == SettingsChange(
        adapters=(dataclasses.replace(WEB_NIC, switch="wan-switch"), legacy, AdapterSpec(None))
    )


def test_a_new_adapter_of_a_running_vm_may_have_queues(qtbot: QtBot) -> None:
    config = dataclasses.replace(OFF_VM, processors=2)
    dialog = open_dialog(qtbot, network(WEB_NIC), VmState.RUNNING, config=config)
    add_hardware(qtbot, dialog, "Network Adapter")

    click_sub_page(qtbot, dialog, "Hardware Acceleration", adapter=1)
    tick(qtbot, dialog, "vmqCheck")
    type_into(qtbot, dialog, "queuesSpin", 2)

    assert note(dialog) == ""
    assert problem_text(dialog) == ""
    assert dialog.change() == SettingsChange(adapters=(WEB_NIC, AdapterSpec(None, vmq=True, queues=2)))


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (VmState.SAVED, "it resumes with the adapters it was saved with."),
        (VmState.STARTING, "Wait until it is running or off, then reopen this window."),
    ],
)
def test_a_saved_or_starting_vm_changes_no_adapter(qtbot: QtBot, state: VmState, reason: str) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC), state)

    click_entry(qtbot, dialog, "Add Hardware")
    assert not on_page(dialog, QPushButton, "addHardwareButton").isEnabled()
    assert reason in note(dialog)
    click_entry(qtbot, dialog, "Network Adapter")
    for name in ("switchCombo",):
        assert not on_page(dialog, QComboBox, name).isEnabled()
    for name in ("vlanCheck", "bandwidthCheck"):
        assert not on_page(dialog, QCheckBox, name).isEnabled()
    assert not on_page(dialog, QPushButton, "removeAdapterButton").isEnabled()
    assert reason in note(dialog)


# --- reloading ---------------------------------------------------------------------------------


def test_set_config_reloads_the_adapters_and_keeps_the_page(qtbot: QtBot) -> None:
    dialog = open_dialog(qtbot, network(WEB_NIC))
    add_hardware(qtbot, dialog, "Network Adapter")
    click_sub_page(qtbot, dialog, "Advanced Features", adapter=1)
    applied = network(WEB_NIC, AdapterSpec(None, "00:15:5d:0a:0b:02"))

    dialog.set_config(OFF_VM, VmState.RUNNING, network=applied)

    assert dialog.change() == SettingsChange()
    assert shown(dialog).objectName() == "advancedFeaturesPage"
    assert tree(dialog).currentItem() is sub_entry(dialog, "Advanced Features", adapter=1)
    assert on_page(dialog, QLineEdit, "dynamicMacEdit").text() == "00-15-5D-0A-0B-02"
    assert note(dialog) == LIVE_MAC_REASON  # running now


# --- a real VM that is off ---------------------------------------------------------------------


@pytest.fixture
def private_switch(libvirtd: str) -> Iterator[str]:
    """A Private switch made with the back end; removed afterwards."""
    name = f"hvt-adgui-{os.getpid()}"
    server = Server(libvirtd)
    server.open()
    try:
        switches.create_switch(server.conn, SwitchSpec(name, SwitchType.PRIVATE))
    finally:
        server.close()
    yield name
    server = Server(libvirtd)  # a connection of its own: the daemon may have restarted meanwhile
    server.open()
    try:
        switches.remove_switch(server.conn, name, disconnect_users=True)
    finally:
        server.close()


def test_an_off_vm_gets_the_adapter_ok_hands_over(
    qtbot: QtBot, run: Any, make_window: Any, clean_domains: str, vm_location: Path, private_switch: str
) -> None:
    server = Server(clean_domains)
    server.open()
    try:
        spec = VmSpec(vm_name("gui-net"), str(vm_location), memory=MemoryConfig(128), processors=2)
        uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    finally:
        server.close()
    name = spec.name
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        dialog = await open_settings(window, uuid)
        add_hardware(qtbot, dialog, "Network Adapter")
        choose(qtbot, on_page(dialog, QComboBox, "switchCombo"), private_switch)
        click_sub_page(qtbot, dialog, "Hardware Acceleration", adapter=1)
        tick(qtbot, dialog, "vmqCheck")
        type_into(qtbot, dialog, "queuesSpin", 2)
        click_sub_page(qtbot, dialog, "Advanced Features", adapter=1)
        click(qtbot, on_page(dialog, QRadioButton, "staticMacRadio"))
        retype(qtbot, on_page(dialog, QLineEdit, "staticMacEdit"), "00-15-5D-7E-00-01")
        assert problem_text(dialog) == ""
        click(qtbot, dialog.ok_button)
        await wait_until(
            lambda: "00:15:5d:7e:00:01" in virsh("dumpxml", "--inactive", name), 20, "the adapter"
        )
        nic = interface(virsh("dumpxml", "--inactive", name), "00:15:5d:7e:00:01")
        assert nic.find("source").get("network") == private_switch
        assert nic.find("model").get("type") == "virtio"
        assert nic.find("driver").get("queues") == "2"

        dialog = await open_settings(window, uuid)
        assert dialog.change() == SettingsChange()  # what the server reports reads back unchanged
        assert entry(dialog, "Network Adapter", nth=1).data(0, SUMMARY_ROLE) == private_switch
        click_sub_page(qtbot, dialog, "Advanced Features", adapter=1)
        assert on_page(dialog, QLineEdit, "staticMacEdit").text() == "00-15-5D-7E-00-01"
        click_sub_page(qtbot, dialog, "Hardware Acceleration", adapter=1)
        assert on_page(dialog, QSpinBox, "queuesSpin").value() == 2
        click_entry(qtbot, dialog, "Network Adapter", nth=1)
        click_button(qtbot, dialog, "removeAdapterButton")
        click(qtbot, dialog.ok_button)
        await wait_until(
            lambda: "00:15:5d:7e:00:01" not in virsh("dumpxml", "--inactive", name), 20, "removal"
        )
        await settle()

    run(body)


def interface(xml: str, mac: str) -> ET.Element:
    """The ``<interface>`` of a domain XML with this MAC address."""
    for nic in ET.fromstring(xml).iterfind("devices/interface"):
        if nic.find(f"mac[@address='{mac}']") is not None:
            return nic
    raise AssertionError(f"no interface {mac}")


async def open_settings(window: Any, uuid: str) -> VmSettingsDialog:
    """Select the VM in the main window and open its Settings (a fresh window each time)."""
    await wait_until(lambda: window.select_vm(uuid), 20, "the VM in the list")
    window.vm_action(VmAction.SETTINGS).trigger()

    def visible() -> VmSettingsDialog | None:
        shown_now = [d for d in window.findChildren(VmSettingsDialog) if d.isVisible()]
        return shown_now[0] if len(shown_now) == 1 else None

    dialog: VmSettingsDialog = await wait_until(visible, 20, "the Settings window")
    return dialog
