"""End to end: the Settings window, opened from the main window on a running test guest, hot-adds a
network adapter (the guest sees eth1), moves it live to another switch, and hot-removes it (eth1
goes). The guest reports its adapters on the serial console (``hvtest.watchnet``); virsh
``domiflist`` is the other observer. What the window never offers on a running VM (a queue change,
a legacy adapter) is refused by ``apply_settings`` too, with the window's reasons."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from hvmanager.backend import creation, operations, switches, vm_network, vmsettings
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.network_models import LEGACY_ADAPTER_NAME, AdapterSpec, SwitchSpec, SwitchType
from hvmanager.backend.vm_network_rules import LIVE_QUEUES_REASON
from hvmanager.backend.vmsettings_rules import LIVE_LEGACY_REASON, SettingsChange
from hvmanager.ui.settings_tree import SUMMARY_ROLE
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.test_settings_network import add_hardware, open_settings
from tests.gui.test_settings_storage import choose, click, click_button, click_entry, entry, on_page
from tests.vm.conftest import create_guest_vm
from tests.vm.helpers import serial_text, virsh, wait_serial

pytestmark = pytest.mark.vm


def _net_line(serial: str) -> str:
    """The guest's latest ``HVTEST: net ...`` line."""
    return [line for line in serial.splitlines() if "HVTEST: net" in line][-1]


def _new_net_line(log: Path, after: int) -> str | None:
    """The latest net line, once one came after offset ``after``."""
    serial = serial_text(log)
    return _net_line(serial) if "HVTEST: net" in serial[after:] else None


def _interfaces(name: str) -> dict[str, str]:
    """``virsh domiflist`` of the running VM: MAC → source (switch)."""
    found = {}
    for line in virsh("domiflist", name).splitlines()[2:]:
        fields = line.split()
        if len(fields) == 5:
            found[fields[4]] = fields[2]
    return found


@pytest.fixture
def two_switches(libvirtd: str) -> Iterator[tuple[str, str]]:
    """Two Private switches made with the back end; removed afterwards (with a connection of its
    own: the test's may be gone by then)."""
    names = (f"hvt-gnet-a-{os.getpid()}", f"hvt-gnet-b-{os.getpid()}")
    made: list[str] = []
    try:
        with _connection(libvirtd) as server:
            for name in names:
                switches.create_switch(server.conn, SwitchSpec(name, SwitchType.PRIVATE))
                made.append(name)
        yield names
    finally:
        with _connection(libvirtd) as server:
            for name in made:
                switches.remove_switch(server.conn, name, disconnect_users=True)


@contextmanager
def _connection(uri: str) -> Iterator[Server]:
    server = Server(uri)
    server.open()
    try:
        yield server
    finally:
        server.close()


def test_settings_hot_add_reconnect_and_remove_a_network_adapter(
    qtbot: QtBot,
    run: Any,
    make_window: Any,
    clean_domains: str,
    vm_location: Path,
    test_guest: Any,
    two_switches: tuple[str, str],
) -> None:
    first, second = two_switches
    server = Server(clean_domains)
    server.open()
    try:
        dom = create_guest_vm(server, vm_location, vm_name("gui-network"), test_guest, "hvtest.watchnet")
        operations.start(server.conn, dom, creation.decide_acceleration(server, "tcg"))
        name, uuid = dom.name(), dom.UUIDString()
    finally:
        server.close()
    log = vm_location / name / "Virtual Machines" / "serial.log"
    wait_serial(log, "HVTEST: net eth0=", 120)
    before_macs = set(_interfaces(name))
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        dialog = await open_settings(window, uuid)
        add_hardware(qtbot, dialog, "Network Adapter")
        choose(qtbot, on_page(dialog, QComboBox, "switchCombo"), first)
        before = len(serial_text(log))
        click(qtbot, dialog.ok_button)
        line = await wait_until(
            lambda: "eth1=" in (_new_net_line(log, before) or "") and _net_line(serial_text(log)),
            60,
            "the guest to see eth1",
        )
        added = {mac: source for mac, source in _interfaces(name).items() if mac not in before_macs}
        assert list(added.values()) == [first], line
        (mac,) = added
        assert mac in _net_line(serial_text(log))  # the guest's eth1 has the adapter's address

        dialog = await open_settings(window, uuid)
        assert dialog.change() == SettingsChange()
        assert entry(dialog, "Network Adapter", nth=1).data(0, SUMMARY_ROLE) == first
        click_entry(qtbot, dialog, "Network Adapter", nth=1)
        choose(qtbot, on_page(dialog, QComboBox, "switchCombo"), second)
        click(qtbot, dialog.ok_button)
        await wait_until(lambda: _interfaces(name).get(mac) == second, 30, "the live reconnection")
        assert f"network='{second}'" in virsh("dumpxml", "--inactive", name)  # and in the configuration
        assert "eth1=" in _net_line(serial_text(log))  # the same adapter, still there

        dialog = await open_settings(window, uuid)
        click_entry(qtbot, dialog, "Network Adapter", nth=1)
        click_button(qtbot, dialog, "removeAdapterButton")
        before = len(serial_text(log))
        click(qtbot, dialog.ok_button)
        await wait_until(lambda: "eth1=" not in (_new_net_line(log, before) or "eth1="), 60, "eth1 to go")
        # The guest lets go first; libvirt drops the device when QEMU says it is gone.
        await wait_until(lambda: mac not in _interfaces(name), 30, "virsh to drop the adapter")
        await wait_until(lambda: mac not in virsh("dumpxml", "--inactive", name), 30, "the configuration")
        await settle()

    run(body)
    with _connection(clean_domains) as server:  # what the window never offers, apply_settings refuses too
        dom = server.lookup(uuid)
        (eth0,) = vm_network.adapters(dom)
        host = server.host_info()
        for wanted, reason in (
            (dataclasses.replace(eth0, vmq=True, queues=1), LIVE_QUEUES_REASON),
            (AdapterSpec(None, legacy=True, name=LEGACY_ADAPTER_NAME), LIVE_LEGACY_REASON),
        ):
            adapters = (wanted,) if wanted.mac else (eth0, wanted)
            with pytest.raises(ValidationError, match=re.escape(reason)):
                vmsettings.apply_settings(server.conn, dom, SettingsChange(adapters=adapters), host)
        assert vm_network.adapters(dom) == (eth0,)
