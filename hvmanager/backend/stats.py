"""Live figures for every VM of a server from one bulk ``getAllDomainStats`` call per tick.

CPU usage is the share of the whole host's processor time used since the previous tick, as
Hyper-V Manager shows it. Uptime comes from the QEMU process's start time on the local machine,
otherwise from when the VM was first seen running. Each drive's read and write throughput (bytes
and requests per second) comes from the same call's block counters, between two ticks, and each
network adapter's traffic (a switch port: ``backend.switch_stats``) from its interface counters,
with one netlink dump of the host's bridge ports per tick telling which switch each port is on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend.bridge_netlink import bridge_ports
from hvmanager.backend.connection import is_local_uri, libvirt_errors
from hvmanager.backend.models import DiskThroughput, VmStats
from hvmanager.backend.network_models import PortStats
from hvmanager.backend.port_map import (
    SwitchDirectory,
    SwitchOf,
    local_switch_lookup,
    switch_from_xml,
)
from hvmanager.backend.switch_stats import PortTracker

log = logging.getLogger(__name__)

LIST_GROUPS = (
    libvirt.VIR_DOMAIN_STATS_STATE
    | libvirt.VIR_DOMAIN_STATS_CPU_TOTAL
    | libvirt.VIR_DOMAIN_STATS_BALLOON
    | libvirt.VIR_DOMAIN_STATS_BLOCK
    | libvirt.VIR_DOMAIN_STATS_INTERFACE
)
# A drive's cumulative counters: bytes read, bytes written, read requests, write requests.
_COUNTER_KEYS = ("rd.bytes", "wr.bytes", "rd.reqs", "wr.reqs")
Counters = tuple[int, int, int, int]
_ACTIVE_STATES = {
    libvirt.VIR_DOMAIN_RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED,
    libvirt.VIR_DOMAIN_PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN,
    libvirt.VIR_DOMAIN_PMSUSPENDED,
}


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("btime "):
                return float(line.split()[1])
    return 0.0


def process_start_time(pid: int) -> float | None:
    """The wall-clock start time of a process (from /proc), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = int(fields[19])  # field 22 of stat(5), counted after "pid (comm) "
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def qemu_pid_file(name: str, session: bool) -> Path:
    """Where libvirt's QEMU driver keeps a running VM's process id."""
    if session:
        runtime = os.environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.geteuid()}")
        return Path(runtime) / "libvirt" / "qemu" / "run" / f"{name}.pid"
    return Path("/run/libvirt/qemu") / f"{name}.pid"


def local_start_time(name: str, session: bool = False) -> float | None:
    """The start time of a local VM's QEMU process, or None when unknown."""
    try:
        pid = int(qemu_pid_file(name, session).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return process_start_time(pid)


class StatsSampler:
    """Turns successive bulk stats calls into per-VM ``VmStats``.

    Args:
        host_cpus: logical processors of the host (CPU usage is a share of all of them).
        start_time_of: returns the wall-clock start time of a running VM by name, or None.
    """

    def __init__(self, host_cpus: int, start_time_of: Callable[[str], float | None] | None = None):
        self.host_cpus = max(host_cpus, 1)
        self._start_time_of = start_time_of
        self._previous: dict[str, tuple[float, int]] = {}
        self._previous_disks: dict[str, dict[str, tuple[float, Counters]]] = {}
        self._started: dict[str, float] = {}
        self._last: dict[str, VmStats] = {}
        self.ports = PortTracker()
        self.switches = SwitchDirectory()
        self._locality: tuple[int, bool] | None = None  # (id of the connection, local?)

    def sample(self, conn: Any) -> dict[str, VmStats]:
        """One tick: a single bulk call for every VM (blocking)."""
        # Only running VMs: the others have no figures, and their states come from events.
        flags = (
            libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE
            | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT
        )
        with libvirt_errors("Reading live figures"):
            records = conn.getAllDomainStats(LIST_GROUPS, flags)
        return self.digest(records, time.monotonic(), time.time(), self._switch_lookup(conn, records))

    def _switch_lookup(self, conn: Any, records: list[tuple[Any, dict[str, Any]]]) -> SwitchOf:
        """Where this tick's ports are: from this host's bridge ports (one netlink dump, only when
        some VM has a port), or, for another machine's VMs, from their live XML."""
        if not any(stats.get("net.count") for _dom, stats in records):
            return switch_from_xml
        if not self._is_local(conn):
            return switch_from_xml
        try:
            bridges = bridge_ports()
        except OSError as exc:
            log.warning("reading the host's bridge ports failed (%s); switches from the VMs' XML", exc)
            return switch_from_xml
        return local_switch_lookup(conn, self.switches, bridges)

    def adapters_changed(self, uuid: str) -> None:
        """A running VM's adapters changed without new devices (a live "Not connected" takes the
        link down and leaves the tap on its bridge): its live XML is read again at the next tick.
        Call it after changing a running VM's adapters, or on its device or metadata events; safe
        from any thread."""
        self.ports.invalidate(uuid)

    def _is_local(self, conn: Any) -> bool:
        """Whether the connection's VMs run on this machine (whose kernel knows their ports)."""
        if self._locality is None or self._locality[0] != id(conn):
            with libvirt_errors("Reading the server's address"):
                self._locality = (id(conn), is_local_uri(str(conn.getURI())))
        return self._locality[1]

    def digest(
        self,
        records: list[tuple[Any, dict[str, Any]]],
        now: float,
        wall: float,
        switch_of: SwitchOf = switch_from_xml,
    ) -> dict[str, VmStats]:
        """Compute figures from bulk records taken at monotonic time ``now``; ``switch_of`` says
        which switch each port device is on at this tick."""
        result: dict[str, VmStats] = {}
        seen: set[str] = set()
        for dom, stats in records:
            uuid = dom.UUIDString()
            if stats.get("state.state") not in _ACTIVE_STATES:
                continue
            seen.add(uuid)
            figures = VmStats(
                uuid,
                self._cpu_percent(uuid, stats.get("cpu.time"), now),
                _kib_to_mib(stats.get("balloon.current")),
                _demand_mib(stats),
                self._start(uuid, dom, wall),
                self._disk_rates(uuid, stats, now),
                self._ports(dom, uuid, stats, now, switch_of),
            )
            last = self._last.get(uuid)
            # The same object as last tick when nothing changed: the next comparison costs nothing.
            result[uuid] = last if last == figures else figures
        self._last = result
        for memory in (self._previous, self._previous_disks, self._started):
            for gone in set(memory) - seen:
                del memory[gone]
        self.ports.forget_all_but(seen)
        return result

    def _cpu_percent(self, uuid: str, cpu_ns: int | None, now: float) -> float | None:
        if cpu_ns is None:
            return None
        previous = self._previous.get(uuid)
        self._previous[uuid] = (now, int(cpu_ns))
        if previous is None or now <= previous[0]:
            return None
        used = (int(cpu_ns) - previous[1]) / 1e9
        share = used / ((now - previous[0]) * self.host_cpus) * 100
        return max(0.0, min(100.0, share))

    def _disk_rates(self, uuid: str, stats: dict[str, Any], now: float) -> tuple[DiskThroughput, ...]:
        if "block.count" not in stats:
            # No block figures this tick (NOWAIT: the VM was busy, e.g. a job held it; or a driver
            # without them): keep the last ones rather than start the rates over.
            last = self._last.get(uuid)
            return last.disks if last is not None else ()
        previous = self._previous_disks.get(uuid, {})
        current: dict[str, tuple[float, Counters]] = {}
        rates = []
        for target, path, counters in block_counters(stats):
            current[target] = (now, counters)
            rates.append(DiskThroughput(target, path, *_rates(previous.get(target), now, counters)))
        self._previous_disks[uuid] = current
        return tuple(rates)

    def _ports(
        self, dom: Any, uuid: str, stats: dict[str, Any], now: float, switch_of: SwitchOf
    ) -> tuple[PortStats, ...]:
        if "net.count" not in stats:
            # No interface figures this tick (a driver without them): keep the last ones.
            last = self._last.get(uuid)
            return last.ports if last is not None else ()
        return self.ports.ports(dom, uuid, stats, now, switch_of)

    def _start(self, uuid: str, dom: Any, wall: float) -> float:
        if uuid not in self._started:
            started = self._start_time_of(dom.name()) if self._start_time_of else None
            self._started[uuid] = started if started is not None else wall
        return self._started[uuid]


def block_counters(stats: dict[str, Any]) -> list[tuple[str, str, Counters]]:
    """Each drive with media in a bulk stats record: (target, path, cumulative counters).

    Keyed by target, not path: a checkpoint puts a new file on top of a drive while its counters
    go on. A drive without media (an empty DVD drive) has no path and is left out.
    """
    drives = []
    for index in range(int(stats.get("block.count", 0))):
        prefix = f"block.{index}."
        target, path = stats.get(prefix + "name"), stats.get(prefix + "path")
        if not target or not path:
            continue
        rd_bytes, wr_bytes, rd_reqs, wr_reqs = (int(stats.get(prefix + key, 0)) for key in _COUNTER_KEYS)
        drives.append((str(target), str(path), (rd_bytes, wr_bytes, rd_reqs, wr_reqs)))
    return drives


def _rates(
    before: tuple[float, Counters] | None, now: float, counters: Counters
) -> tuple[float | None, float | None, float | None, float | None]:
    """Per-second rates of the counters since ``before`` (None: no earlier sample, or they went
    backwards because the drive's counters started again)."""
    if before is None or now <= before[0] or any(n < o for n, o in zip(counters, before[1], strict=True)):
        return (None, None, None, None)
    elapsed = now - before[0]
    read_bps, write_bps, read_iops, write_iops = (
        (n - o) / elapsed for n, o in zip(counters, before[1], strict=True)
    )
    return (read_bps, write_bps, read_iops, write_iops)


def _kib_to_mib(value: int | None) -> int | None:
    return None if value is None else int(value) // 1024


def _demand_mib(stats: dict[str, Any]) -> int | None:
    """Memory the guest uses: what it has minus what it could give back (guest balloon stats)."""
    available = stats.get("balloon.available")
    spare = stats.get("balloon.usable", stats.get("balloon.unused"))
    if available is None or spare is None:
        return None
    return max(0, int(available) - int(spare)) // 1024
