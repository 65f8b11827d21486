"""Live figures from bulk stats records, and how the list writes them."""

from __future__ import annotations

from dataclasses import dataclass

import libvirt

from hvmanager.backend.formatting import format_cpu, format_memory, format_uptime
from hvmanager.backend.stats import StatsSampler, process_start_time


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
