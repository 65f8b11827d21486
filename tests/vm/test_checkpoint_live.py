"""Checkpoints of a running guest: apply brings its disk and memory back, delete merges live
while the guest keeps writing, and nothing the guest wrote on the kept branch is lost.

The guest (``hvtest.writer``) writes a record ``HVTICK <n> <mark>`` at sector ``n`` of its disk on
every tick, where ``mark`` is read from a DVD whose file the test rewrites: the marks tell which
side of a checkpoint each record was written on. The disk is read afterwards with ``qemu-img``.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend import checkpoints
from hvmanager.backend.checkpoint_tree import tree_from_domain_xml
from hvmanager.backend.connection import Server
from hvmanager.backend.paths import vm_folders
from tests.conftest import vm_name
from tests.vm.conftest import create_guest_vm
from tests.vm.helpers import serial_text, virsh, wait_serial

MARK_SECTOR = 2048
_TICK = re.compile(r"^HVTEST: tick (\d+) uptime \S+ mark (\S*)$", re.M)


def _set_mark(path: Path, mark: str) -> None:
    """Rewrite the DVD the guest reads its mark from."""
    with open(path, "r+b") as handle:
        handle.write(f"{mark}\n".encode().ljust(MARK_SECTOR, b"\0"))
        handle.flush()


def _ticks(text: str) -> list[tuple[int, str]]:
    return [(int(n), mark) for n, mark in _TICK.findall(text)]


def _output_with_a_tick(log: Path, offset: int) -> str:
    """The serial output after ``offset`` once it holds a whole tick line (not half a line)."""
    deadline = time.monotonic() + 90
    while not _ticks(after := serial_text(log)[offset:]):
        assert time.monotonic() < deadline, f"no tick line after offset {offset}:\n{after[-800:]}"
        time.sleep(0.1)
    return after


def _wait_marked_ticks(log: Path, mark: str, count: int, after: int = 0) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if sum(1 for _n, m in _ticks(serial_text(log)[after:]) if m == mark) >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {count} ticks with mark {mark}:\n{serial_text(log)[-800:]}")


def _disk_records(active: str, tmp: Path) -> dict[int, str]:
    """The records on the VM's disk, read through its whole chain by qemu-img."""
    raw = tmp / "disk.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", active, str(raw)], check=True)
    records = {}
    with open(raw, "rb") as handle:
        for sector in range(1, 4096):
            handle.seek(sector * 512)
            block = handle.read(512)
            if block.startswith(b"HVTICK "):
                number, mark = block.split(b"\n", 1)[0].decode().split(" ")[1:3]
                assert int(number) == sector
                records[sector] = mark
    return records


def _active_file(name: str) -> str:
    for line in virsh("domblklist", name).splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] == "hda":
            return parts[1].strip()
    raise AssertionError("no hda")


def _assert_clean_chain(active: str) -> None:
    done = subprocess.run(
        ["qemu-img", "check", "-U", "-f", "qcow2", active], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def writer_vm(clean_domains: str, vm_location: Path, test_guest: Any, request: Any) -> Any:
    """A running guest writing tick records to its 1 GiB qcow2 disk, with its mark DVD."""
    name = vm_name(request.node.name.removeprefix("test_")[:30])
    server = Server(clean_domains)
    server.open()
    folders = vm_folders(vm_location, name)
    mark = vm_location / f"{name}-mark.iso"
    mark.write_bytes(b"\0" * MARK_SECTOR * 16)
    _set_mark(mark, "A")
    dom = create_guest_vm(server, vm_location, name, test_guest, "hvtest.writer=sda hvtest.tick=0.5")
    dvd = (
        "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
        f"<source file='{mark}'/><target dev='hdc' bus='ide'/><readonly/></disk>"
    )
    dom.attachDeviceFlags(dvd, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
    dom.create()
    _wait_marked_ticks(folders.serial_log, "A", 3)
    yield server, dom, folders, mark
    if dom.isActive():
        dom.destroy()
    server.close()


def test_apply_restores_disk_and_memory_of_running_guest(writer_vm: Any, tmp_path: Path) -> None:
    server, dom, folders, mark = writer_vm
    log = folders.serial_log
    taken = checkpoints.take(server.conn, dom, "marker A").checkpoint
    assert taken.memory and taken.vm_state == "Running"
    screen = checkpoints.checkpoint_screen(dom, taken.id)
    assert screen is not None and screen.startswith((b"\x89PNG", b"P6")), "its screen is kept with it"
    _set_mark(mark, "B")
    _wait_marked_ticks(log, "B", 3)
    offset = len(serial_text(log))
    highest_before = max(n for n, _m in _ticks(serial_text(log)))
    _set_mark(mark, "C")  # whatever the guest writes once back at the checkpoint is marked C

    checkpoints.apply(server.conn, dom, taken.id)

    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    after = _output_with_a_tick(log, offset)
    first_tick = _ticks(after)[0][0]
    assert first_tick < highest_before, "the tick counter went back: the guest resumed from memory"
    assert "HVTEST: booted" not in after, "resumed from memory, not booted again"
    _wait_marked_ticks(log, "C", 3, after=offset)
    active = _active_file(dom.name())
    dom.destroy()

    records = _disk_records(active, tmp_path)
    marks = set(records.values())
    assert "B" not in marks, "what was written after the checkpoint is gone"
    assert {"A", "C"} <= marks
    assert sorted(records) == list(range(1, max(records) + 1)), "no record is missing"
    _assert_clean_chain(active)
    tree = tree_from_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert tree.now_parent() == taken.id


def test_delete_merges_live_while_guest_writes(writer_vm: Any, tmp_path: Path) -> None:
    server, dom, folders, mark = writer_vm
    log = folders.serial_log
    base = _active_file(dom.name())
    taken = checkpoints.take(server.conn, dom, "before B").checkpoint
    overlay = _active_file(dom.name())
    assert overlay != base
    _set_mark(mark, "B")
    _wait_marked_ticks(log, "B", 3)
    percents: list[float] = []

    checkpoints.delete(server.conn, dom, taken.id, progress=lambda _what, pct: percents.append(pct))

    assert dom.state()[0] == libvirt.VIR_DOMAIN_RUNNING
    assert _active_file(dom.name()) == base, "the overlay was merged into the base disk and dropped"
    assert not Path(overlay).exists()
    assert not (folders.snapshots / taken.id).exists()
    assert percents and percents[-1] == pytest.approx(100.0)
    offset = len(serial_text(log))
    _set_mark(mark, "C")
    _wait_marked_ticks(log, "C", 3, after=offset)
    dom.destroy()

    records = _disk_records(base, tmp_path)
    assert {"A", "B", "C"} <= set(records.values()), "both sides of the merge are on the disk"
    assert sorted(records) == list(range(1, max(records) + 1))
    _assert_clean_chain(base)
    assert tree_from_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).checkpoints == {}


def _resume_and_check(dom: Any, log: Path) -> tuple[int, str]:
    """Start a saved VM; returns the first tick it prints and everything it printed meanwhile."""
    offset = len(serial_text(log))
    dom.create()
    after = _output_with_a_tick(log, offset)
    assert "HVTEST: booted" not in after, "resumed from its saved state, not booted"
    return _ticks(after)[0][0], after


def test_saved_vm_checkpoint_apply_and_merge(writer_vm: Any, tmp_path: Path) -> None:
    server, dom, folders, mark = writer_vm
    log = folders.serial_log
    dom.managedSave(0)
    taken = checkpoints.take(server.conn, dom, "while saved").checkpoint
    assert taken.vm_state == "Saved" and taken.memory
    assert dom.hasManagedSaveImage(0), "still saved after the checkpoint"

    _set_mark(mark, "B")
    _resume_and_check(dom, log)
    _wait_marked_ticks(log, "B", 3)
    highest = max(n for n, _m in _ticks(serial_text(log)))
    _set_mark(mark, "C")
    checkpoints.apply(server.conn, dom, taken.id)
    assert dom.hasManagedSaveImage(0) and not dom.isActive(), "back to Saved, as it was captured"
    first, _ = _resume_and_check(dom, log)
    assert first < highest

    dom.managedSave(0)
    checkpoints.delete(server.conn, dom, taken.id)  # offline merge under a saved state
    _resume_and_check(dom, log)
    _wait_marked_ticks(log, "C", 3)
    active = _active_file(dom.name())
    dom.destroy()
    records = _disk_records(active, tmp_path)
    assert "B" not in set(records.values())
    assert sorted(records) == list(range(1, max(records) + 1))
    _assert_clean_chain(active)


def test_vm_starts_again_after_live_merge(writer_vm: Any) -> None:
    server, dom, folders, _mark = writer_vm
    first = checkpoints.take(server.conn, dom, "one").checkpoint
    second = checkpoints.take(server.conn, dom, "two").checkpoint
    checkpoints.delete(server.conn, dom, first.id)  # an intermediate image, merged live
    checkpoints.delete(server.conn, dom, second.id)  # the active image, merged live with a pivot
    dom.destroy()
    offset = len(serial_text(folders.serial_log))
    dom.create()
    wait_serial(folders.serial_log, "HVTEST: ready", after=offset)
    assert "<backingStore" not in virsh("dumpxml", "--inactive", dom.name())
