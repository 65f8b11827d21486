"""Live figures from bulk stats records, and how the list writes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import libvirt

from hvmanager.backend.formatting import format_cpu, format_memory, format_uptime
from hvmanager.backend.models import DiskConfig, DiskThroughput
from hvmanager.backend.stats import StatsSampler, process_start_time
from hvmanager.views.storage_tab import StorageTab, drive_label, format_iops, format_rate


@dataclass
class FakeDom:
    """What the sampler needs of a virDomain."""

    uuid: str
    vm_name: str = "vm"

    def UUIDString(self) -> str:  # noqa: N802 (libvirt's name)
        return self.uuid

    def name(self) -> str:
        return self.vm_name


RUNNING = libvirt.VIR_DOMAIN_RUNNING


def test_cpu_share_of_the_whole_host() -> None:
    sampler = StatsSampler(host_cpus=4, start_time_of=lambda _name: 1000.0)
    dom = FakeDom("a")
    first = sampler.digest([(dom, {"state.state": RUNNING, "cpu.time": 0})], now=10.0, wall=1010.0)
    assert first["a"].cpu_percent is None  # needs two samples
    second = sampler.digest(
        [(dom, {"state.state": RUNNING, "cpu.time": 2_000_000_000})], now=11.0, wall=1011.0
    )
    assert second["a"].cpu_percent == 50.0  # 2 s of CPU in 1 s on 4 CPUs
    assert second["a"].started_at == 1000.0 and second["a"].uptime(1011.0) == 11.0


def test_memory_figures_from_the_balloon() -> None:
    sampler = StatsSampler(host_cpus=1)
    record = {
        "state.state": RUNNING,
        "balloon.current": 1048576,
        "balloon.available": 1000000,
        "balloon.usable": 600000,
    }
    stats = sampler.digest([(FakeDom("a"), record)], now=1.0, wall=5.0)["a"]
    assert stats.assigned_mib == 1024 and stats.demand_mib == 390
    assert stats.started_at == 5.0  # first seen now


def test_vms_that_stop_are_forgotten() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a")
    sampler.digest([(dom, {"state.state": RUNNING, "cpu.time": 5})], now=1.0, wall=1.0)
    off = sampler.digest([(dom, {"state.state": libvirt.VIR_DOMAIN_SHUTOFF})], now=2.0, wall=2.0)
    assert off == {}
    again = sampler.digest([(dom, {"state.state": RUNNING, "cpu.time": 9})], now=3.0, wall=3.0)
    assert again["a"].cpu_percent is None and again["a"].started_at == 3.0


def test_process_start_time_of_this_process() -> None:
    import os
    import time

    started = process_start_time(os.getpid())
    assert started is not None and started <= time.time()
    assert process_start_time(999_999_999) is None


def test_formats() -> None:
    assert format_cpu(None) == "" and format_cpu(3.4) == "3 %"
    assert format_memory(256) == "256 MB" and format_memory(None) == ""
    assert format_uptime(None) == "" and format_uptime(312) == "00:05:12"
    assert format_uptime(93_784) == "1.02:03:04"


# --- per-drive throughput -------------------------------------------------------------------------


def _block_record(*drives: tuple[str, str | None, int, int, int, int]) -> dict[str, object]:
    """A bulk record with the block group: (target, path, rd bytes, wr bytes, rd reqs, wr reqs)."""
    record: dict[str, object] = {"state.state": RUNNING, "block.count": len(drives)}
    for index, (target, path, rd_bytes, wr_bytes, rd_reqs, wr_reqs) in enumerate(drives):
        prefix = f"block.{index}."
        record[prefix + "name"] = target
        if path is not None:
            record[prefix + "path"] = path
        record.update(
            {
                prefix + "rd.bytes": rd_bytes,
                prefix + "wr.bytes": wr_bytes,
                prefix + "rd.reqs": rd_reqs,
                prefix + "wr.reqs": wr_reqs,
            }
        )
    return record


def test_the_sampler_asks_for_the_block_group_in_its_one_bulk_call() -> None:
    calls: list[tuple[int, int]] = []

    class Conn:
        def getAllDomainStats(self, groups: int, flags: int) -> list[object]:  # noqa: N802
            calls.append((groups, flags))
            return []

    StatsSampler(host_cpus=1).sample(Conn())
    assert len(calls) == 1 and calls[0][0] & libvirt.VIR_DOMAIN_STATS_BLOCK


def test_disk_rates_from_two_samples() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a")
    first = sampler.digest(
        [(dom, _block_record(("hda", "/d/a.qcow2", 1000, 5000, 10, 20), ("hdc", None, 7, 0, 1, 0)))],
        now=10.0,
        wall=10.0,
    )["a"]
    # The empty DVD drive (no path) is left out; rates need two samples.
    assert first.disks == (DiskThroughput("hda", "/d/a.qcow2"),)
    second = sampler.digest(
        [(dom, _block_record(("hda", "/d/a.qcow2", 3000, 9096, 14, 30), ("hdc", None, 7, 0, 1, 0)))],
        now=12.0,
        wall=12.0,
    )["a"]
    assert second.disks == (DiskThroughput("hda", "/d/a.qcow2", 1000.0, 2048.0, 2.0, 5.0),)
    # A checkpoint puts a new file on top: same drive, counters go on.
    third = sampler.digest(
        [(dom, _block_record(("hda", "/d/a-now.qcow2", 3000, 9096, 14, 30)))], now=13.0, wall=13.0
    )["a"]
    assert third.disks == (DiskThroughput("hda", "/d/a-now.qcow2", 0.0, 0.0, 0.0, 0.0),)


def test_unchanged_figures_give_the_same_object_and_reset_counters_give_no_rate() -> None:
    sampler = StatsSampler(host_cpus=1, start_time_of=lambda _name: 1.0)
    dom = FakeDom("a")
    record = _block_record(("sda", "/d/b.img", 100, 100, 1, 1))
    sampler.digest([(dom, record)], now=1.0, wall=1.0)
    idle = sampler.digest([(dom, record)], now=2.0, wall=2.0)["a"]
    assert idle.disks[0].write_bps == 0.0
    assert sampler.digest([(dom, record)], now=3.0, wall=3.0)["a"] is idle
    # Counters lower than before (the drive started again): no rate rather than a negative one.
    restarted = _block_record(("sda", "/d/b.img", 10, 10, 1, 1))
    assert sampler.digest([(dom, restarted)], now=4.0, wall=4.0)["a"].disks[0].read_bps is None
    # A new drive appears with no rate; one that went is dropped.
    both = _block_record(("sda", "/d/b.img", 10, 20, 1, 2), ("sdb", "/d/c.img", 0, 0, 0, 0))
    rates = sampler.digest([(dom, both)], now=5.0, wall=5.0)["a"].disks
    assert [(d.target, d.write_bps) for d in rates] == [("sda", 10.0), ("sdb", None)]
    assert [d.target for d in sampler.digest([(dom, restarted)], now=6.0, wall=6.0)["a"].disks] == ["sda"]


def test_a_tick_without_block_figures_keeps_the_last_rates() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a")
    sampler.digest([(dom, _block_record(("vda", "/d/v", 0, 0, 0, 0)))], now=1.0, wall=1.0)
    busy = sampler.digest([(dom, _block_record(("vda", "/d/v", 100, 100, 1, 1)))], now=2.0, wall=2.0)
    skipped = sampler.digest([(dom, {"state.state": RUNNING})], now=3.0, wall=3.0)
    assert skipped["a"].disks == busy["a"].disks == (DiskThroughput("vda", "/d/v", 100.0, 100.0, 1.0, 1.0),)
    after = sampler.digest([(dom, _block_record(("vda", "/d/v", 400, 400, 4, 4)))], now=4.0, wall=4.0)
    assert after["a"].disks[0].read_bps == 150.0  # since the last tick that had figures


def test_a_vm_that_stops_forgets_its_disk_counters() -> None:
    sampler = StatsSampler(host_cpus=1)
    dom = FakeDom("a")
    sampler.digest([(dom, _block_record(("vda", "/d/v", 0, 0, 0, 0)))], now=1.0, wall=1.0)
    sampler.digest([(dom, {"state.state": libvirt.VIR_DOMAIN_SHUTOFF})], now=2.0, wall=2.0)
    again = sampler.digest([(dom, _block_record(("vda", "/d/v", 50, 50, 5, 5)))], now=3.0, wall=3.0)
    assert again["a"].disks == (DiskThroughput("vda", "/d/v"),)


def test_rate_formats() -> None:
    assert format_rate(None) == "" and format_rate(0.0) == "0 B/s"
    assert format_rate(1536.0) == "1.5 KB/s" and format_rate(3 * 1024 * 1024) == "3 MB/s"
    assert format_iops(None) == "" and format_iops(0.0) == "0" and format_iops(0.5) == "0.5"
    assert format_iops(12.4) == "12"
    assert drive_label("hdb", DiskConfig("disk", "/d/a", "qcow2", "ide", "hdb")) == "IDE 0:1"
    assert drive_label("hdc", DiskConfig("cdrom", "/d/x.iso", "raw", "ide", "hdc")) == "IDE 1:0"
    assert drive_label("sdb", DiskConfig("disk", "/d/a", "qcow2", "scsi", "sdb")) == "SCSI (sdb)"
    assert drive_label("sda", DiskConfig("cdrom", "/d/x.iso", "raw", "scsi", "sda")) == "SCSI DVD (sda)"
    assert drive_label("vda", DiskConfig("disk", "/d/a", "qcow2", "virtio", "vda")) == "VIRTIO (vda)"
    assert drive_label("sdc", None) == "sdc"  # hot-added, its configuration not read yet
    scsi = DiskConfig("disk", "/d/a", "qcow2", "scsi", "sdb", slot=(1, 3))
    assert drive_label("sdb", scsi) == "SCSI 1:3"  # from the drive's address
    assert drive_label("hdc", DiskConfig("cdrom", "/d/x.iso", "raw", "ide", "hdc", slot=(1, 0))) == "IDE 1:0"


def _column(table: StorageTab, column: int) -> list[str]:
    return [table.item(row, column).text() for row in range(table.rowCount())]


def test_storage_tab_updates_rows_in_place_and_keeps_the_selection(qtbot: Any) -> None:
    table = StorageTab()
    qtbot.addWidget(table)
    table.set_drives(
        [
            DiskConfig("disk", "/vms/web/Virtual Hard Disks/web.qcow2", "qcow2", "ide", "hda"),
            DiskConfig("cdrom", None, None, "ide", "hdc"),  # empty DVD drive: not listed
            DiskConfig("disk", "/vms/web/data.vhd", "vpc", "scsi", "sda"),
        ]
    )
    assert _column(table, 0) == ["IDE 0:0", "SCSI (sda)"]
    assert _column(table, 1) == ["web.qcow2", "data.vhd"]
    assert _column(table, 3) == ["", ""]  # off: no figures
    table.selectRow(1)
    item = table.item(1, 3)
    table.set_throughput(
        [
            DiskThroughput("hda", "/vms/web/Virtual Hard Disks/web.qcow2", 0.0, 0.0, 0.0, 0.0),
            DiskThroughput("sda", "/vms/web/data.vhd", 2048.0, 512.0, 4.0, 1.0),
            DiskThroughput("sdb", "/tmp/hot.qcow2", None, None, None, None),  # hot-added since
        ]
    )
    assert _column(table, 0) == ["IDE 0:0", "SCSI (sda)", "sdb"]
    assert _column(table, 2) == ["0 B/s", "2 KB/s", ""]
    assert _column(table, 3) == ["0 B/s", "512 B/s", ""]
    assert _column(table, 5) == ["0", "1", ""]
    assert table.item(1, 1).toolTip() == "/vms/web/data.vhd"
    assert table.item(1, 3) is item and [i.row() for i in table.selectionModel().selectedRows()] == [1]
    table.set_throughput([])  # the VM stopped
    assert _column(table, 0) == ["IDE 0:0", "SCSI (sda)"] and _column(table, 3) == ["", ""]
    assert [i.row() for i in table.selectionModel().selectedRows()] == [1]
