"""Per-drive read/write throughput from the bulk stats, in the sampler and in the details pane.

One booted test guest writes a record to its disk on every tick (``hvtest.writer``) and reads
that disk with O_DIRECT (``hvtest.markdev``); ``virsh domblkstat`` is the independent observer.
No timing assertions: the observer's counters, read around the sampler's two samples, grew by at
least what the sampler's rates imply over the time between those samples.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from hvmanager.backend.connection import Server
from hvmanager.backend.models import DiskThroughput
from hvmanager.backend.paths import vm_folders
from hvmanager.backend.stats import StatsSampler
from hvmanager.views.storage_tab import STORAGE_HEADERS
from hvmanager.views.vm_table_model import Column
from tests.conftest import SYSTEM_URI, vm_name
from tests.gui.conftest import settle, wait_until
from tests.gui.table import row_of
from tests.vm.conftest import create_guest_vm
from tests.vm.helpers import virsh, wait_serial

pytestmark = pytest.mark.vm

DRIVE = "hda"  # the Generation 1 VM's disk on IDE 0:0 (sda in the guest)
WRITE_COLUMN = STORAGE_HEADERS.index("Write")
READ_COLUMN = STORAGE_HEADERS.index("Read")


def domblkstat(name: str, target: str) -> dict[str, int]:
    """``virsh domblkstat`` of one drive: rd_req, rd_bytes, wr_req, wr_bytes, ..."""
    figures = {}
    for line in virsh("domblkstat", name, target).splitlines():
        parts = line.split()
        if len(parts) == 3:
            figures[parts[1]] = int(parts[2])
    return figures


def _drive(stats: Any, target: str) -> DiskThroughput:
    return next(d for d in stats.disks if d.target == target)


@pytest.fixture
def writing_guest(server: Server, vm_location: Path, test_guest: Any) -> Any:
    """A running test guest writing (and reading) its disk every half second."""
    name = vm_name("throughput")
    dom = create_guest_vm(
        server, vm_location, name, test_guest, "hvtest.writer=sda hvtest.markdev=sda hvtest.tick=0.5"
    )
    dom.create()
    wait_serial(vm_folders(vm_location, name).serial_log, "HVTEST: tick 2 ", 120)
    yield dom
    if dom.isActive():
        dom.destroy()


def test_sampler_and_details_pane_show_the_guest_writing(
    server: Server, writing_guest: Any, run: Any, make_window: Any, qtbot: Any
) -> None:
    dom, name = writing_guest, writing_guest.name()
    sampler = StatsSampler(os.cpu_count() or 1)

    before = domblkstat(name, DRIVE)
    first = _drive(sampler.sample(server.conn)[dom.UUIDString()], DRIVE)
    after_first = time.monotonic()
    time.sleep(2)  # about four of the guest's ticks
    before_second = time.monotonic()
    second = _drive(sampler.sample(server.conn)[dom.UUIDString()], DRIVE)
    after = domblkstat(name, DRIVE)

    assert first.write_bps is None  # a rate needs two samples
    assert second.path == virsh("domblklist", name).split(DRIVE, 1)[1].splitlines()[0].strip()
    assert second.write_bps and second.write_bps > 0 and second.write_iops and second.write_iops > 0
    assert second.read_bps and second.read_bps > 0 and second.read_iops and second.read_iops > 0
    # The sampler's interval lies within the observer's, and lasted at least the sleep: the
    # observer saw at least rate x that long (a rate made up or too high by far would fail).
    inner = before_second - after_first
    assert after["wr_bytes"] - before["wr_bytes"] >= second.write_bps * inner * 0.999
    assert after["wr_req"] - before["wr_req"] >= second.write_iops * inner * 0.999
    assert after["rd_bytes"] - before["rd_bytes"] >= second.read_bps * inner * 0.999

    window = make_window(SYSTEM_URI, interval_ms=500)
    pane = window.details_pane
    table = pane.storage

    def click_on_vm() -> bool:
        row = row_of(window, name)
        if row is None:
            return False
        index = window.table.model().index(row, Column.NAME)
        window.table.scrollTo(index)
        qtbot.mouseClick(
            window.table.viewport(), Qt.MouseButton.LeftButton, pos=window.table.visualRect(index).center()
        )
        return bool(window.selected_uuids() == [dom.UUIDString()])

    def write_cell() -> str:
        rows = [r for r in range(table.rowCount()) if table.item(r, 0).text() == "IDE 0:0"]
        return table.item(rows[0], WRITE_COLUMN).text() if rows else ""

    async def body() -> None:
        await wait_until(lambda: row_of(window, name) is not None, 30, "the VM in the list")
        await wait_until(click_on_vm, 10, "the VM selected")
        tab_bar = pane.tabs.tabBar()
        storage_index = pane.tabs.indexOf(table)
        assert pane.tabs.tabText(storage_index) == "Storage"

        def click_storage_tab() -> bool:
            tab = tab_bar.tabRect(storage_index).center()
            qtbot.mouseClick(tab_bar, Qt.MouseButton.LeftButton, pos=tab)
            return pane.tabs.currentWidget() is table

        # The tabs are enabled once the VM's configuration has been read.
        await wait_until(lambda: pane.title() == name and pane.tabs.isEnabled(), 20, "the VM's details")
        await wait_until(click_storage_tab, 10, "the Storage tab shown")
        await wait_until(lambda: write_cell().endswith("/s") and write_cell() != "0 B/s", 20, "a write rate")
        row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "IDE 0:0")
        assert table.item(row, 1).text() == os.path.basename(second.path)
        assert table.item(row, READ_COLUMN).text().endswith("/s")
        # Select the drive's row: the following ticks change the figures, not the selection.
        qtbot.mouseClick(
            table.viewport(),
            Qt.MouseButton.LeftButton,
            pos=table.visualRect(table.model().index(row, 1)).center(),
        )
        assert [i.row() for i in table.selectionModel().selectedRows()] == [row]
        controller = window.manager.servers[SYSTEM_URI]
        ticks = controller.ticks
        await wait_until(lambda: controller.ticks >= ticks + 3, 20, "three more ticks")
        assert [i.row() for i in table.selectionModel().selectedRows()] == [row]
        assert write_cell().endswith("/s")
        await settle()

    run(body)
