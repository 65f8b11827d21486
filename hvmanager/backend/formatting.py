"""How figures read in the VM list, the details pane and ``hvctl`` (Hyper-V's formats).

Pure functions, shared by the views and the command-line tool.
"""

from __future__ import annotations

from datetime import datetime


def format_cpu(percent: float | None) -> str:
    """CPU usage as a whole percentage (``"3 %"``); blank when the VM isn't running."""
    return "" if percent is None else f"{round(percent):d} %"


def format_memory(mib: int | None) -> str:
    """Memory in MB as Hyper-V writes it (``"1024 MB"``); blank when unknown."""
    return "" if mib is None else f"{mib} MB"


def format_uptime(seconds: float | None) -> str:
    """Uptime as ``hh:mm:ss``, with days in front (``1.02:03:04``), as a PowerShell TimeSpan;
    blank when unknown (the VM is off)."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}.{clock}" if days else clock


def format_created(moment: datetime | None) -> str:
    """A creation time in the local time zone; blank when unknown."""
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_bytes(count: int) -> str:
    """A size in bytes as Hyper-V Manager writes it: ``512 B``, ``196 KB``, ``1.5 MB``, ``40 GB``
    (powers of 1024, one decimal below 100 units, none when it is a whole number)."""
    value = float(count)
    unit = "B"
    for bigger in ("KB", "MB", "GB", "TB", "PB"):
        if abs(value) < 1024:
            break
        value /= 1024
        unit = bigger
    if unit == "B" or abs(value) >= 100 or value == int(value):
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}"
