"""Helpers shared by the benchmarks: process figures from /proc, the machine, virsh, tables.

CPU time of a process is ``utime + stime`` of ``/proc/<pid>/stat`` (every thread of the process,
in clock ticks); its memory is ``VmRSS`` of ``/proc/<pid>/status``. The app probe and the
virt-manager measurement use the very same functions, so their figures compare.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SYSTEM_URI = "qemu:///system"
BENCH_PREFIX = "hvbench-"
BENCH_ROOT = Path("/var/lib/hvmanager-bench")
PROBE_MARK = "HVBENCH-RESULT "

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def repo_on_path() -> None:
    """Make ``tests.support`` importable (the test guest and the test-driver fleets live there)."""
    root = str(REPO_ROOT)
    if root not in sys.path:
        sys.path.insert(0, root)


# --- process and host figures -------------------------------------------------------------------


def proc_cpu_seconds(pid: int | str = "self") -> float:
    """CPU time (user + system, all threads) a process has used so far, in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # stat(5) fields 14 and 15


def proc_rss_mib(pid: int | str = "self") -> float:
    """Resident memory (``VmRSS``) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def host_cpu_ticks() -> tuple[int, int]:
    """``(busy, total)`` clock ticks of the whole host since boot (first line of /proc/stat)."""
    with open("/proc/stat", encoding="ascii") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


@dataclass
class CpuMeter:
    """CPU used by some processes (and the whole host) between ``start()`` and ``stop()``."""

    pids: Sequence[int | str]
    _cpu0: list[float | None] | None = None
    _host0: tuple[int, int] = (0, 0)
    _wall0: float = 0.0

    def start(self) -> None:
        """Take the first reading."""
        self._cpu0 = [_cpu_or_none(pid) for pid in self.pids]
        self._host0 = host_cpu_ticks()
        self._wall0 = time.monotonic()

    def stop(self) -> dict[str, object]:
        """Percent of one core per process (None for a process that vanished) and host busy %."""
        assert self._cpu0 is not None, "start() first"
        wall = time.monotonic() - self._wall0
        host1 = host_cpu_ticks()
        percents: list[float | None] = []
        for pid, before in zip(self.pids, self._cpu0, strict=True):
            after = _cpu_or_none(pid)
            percents.append(None if before is None or after is None else (after - before) / wall * 100)
        busy = host1[0] - self._host0[0]
        total = max(1, host1[1] - self._host0[1])
        return {
            "wall_s": wall,
            "cpu_percent_of_core": percents,
            "host_busy_percent_of_all_cores": busy / total * 100,
        }


def _cpu_or_none(pid: int | str) -> float | None:
    try:
        return proc_cpu_seconds(pid)
    except (OSError, ValueError):
        return None


def pid_of(name: str) -> int | None:
    """The process id of a daemon by its exact name (``pgrep -x``), or None."""
    done = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True, check=False)
    pids = [int(p) for p in done.stdout.split()]
    return pids[0] if pids else None


# --- the machine --------------------------------------------------------------------------------


def _first(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _command_line(args: list[str]) -> str:
    if shutil.which(args[0]) is None:
        return "not installed"
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"


def machine_info() -> dict[str, str]:
    """CPU, cores, RAM, OS and the virtualization stack's versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
    mem_kib = int(_first(r"^MemTotal:\s+(\d+)", meminfo))
    debian = Path("/etc/debian_version")
    import libvirt
    import PySide6
    from PySide6 import QtCore

    lib = libvirt.getVersion()
    return {
        "cpu_model": _first(r"^model name\s*:\s*(.+)$", cpuinfo),
        "cores": str(os.cpu_count()),
        "ram_gib": f"{mem_kib / 1024 / 1024:.1f}",
        "debian": debian.read_text(encoding="ascii").strip() if debian.exists() else "not Debian",
        "kernel": platform.release(),
        "libvirt": f"{lib // 1_000_000}.{lib // 1000 % 1000}.{lib % 1000}",
        "qemu": _command_line(["qemu-system-x86_64", "--version"]),
        "python": platform.python_version(),
        "pyside6": PySide6.__version__,
        "qt": QtCore.qVersion(),
    }


# --- tools --------------------------------------------------------------------------------------


def virsh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``virsh -c qemu:///system ARGS`` (an argument list, never a shell string)."""
    done = subprocess.run(["virsh", "-c", SYSTEM_URI, *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"virsh {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def ensure_daemons() -> None:
    """Start virtlogd and libvirtd when they are not running, and wait until they answer."""
    subprocess.run([str(REPO_ROOT / "scripts" / "start-daemons.sh")], check=True)
    deadline = time.monotonic() + 30
    while virsh("version", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the libvirt daemon did not come up")
        time.sleep(0.2)


# --- reporting ---------------------------------------------------------------------------------


def command_line(module: str) -> str:
    """How this benchmark was started, as one would type it in the repository root."""
    python = Path(sys.executable)
    shown = python.relative_to(REPO_ROOT) if python.is_relative_to(REPO_ROOT) else python
    return " ".join([str(shown), "-m", module, *sys.argv[1:]])


# --- tables --------------------------------------------------------------------------------------


def spread(values: Sequence[float]) -> dict[str, float]:
    """min / median / max of some samples."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def save_figures(path: Path, module: str, machine: dict[str, str], results: object) -> None:
    """Write a benchmark's figures as JSON, with the command, date and machine that made them."""
    saved = {
        "command": command_line(module),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine,
        "results": results,
    }
    path.write_text(json.dumps(saved, indent=2), encoding="utf-8")
    print(f"\nfigures saved to {path}")


def remove_bench_switch(conn: Any, name: str) -> None:
    """Remove a benchmark's switch with the product's call, then whatever that left (an
    interrupted run's network), ignoring what is already gone."""
    import libvirt  # imported here: most benchmarks need no libvirt network

    from hvmanager.backend import switches

    with contextlib.suppress(Exception):
        switches.remove_switch(conn, name, disconnect_users=True)
    with contextlib.suppress(libvirt.libvirtError):
        network = conn.networkLookupByName(name)
        if network.isActive():
            network.destroy()
        if network.isPersistent():
            network.undefine()
