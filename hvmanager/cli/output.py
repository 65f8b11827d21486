"""How ``hvctl`` shows things: ``Format-Table``-like tables, TimeSpan uptimes, JSON, progress."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from hvmanager.backend import formatting
from hvmanager.backend.models import VmConfig, VmInfo, VmStats
from hvmanager.backend.vhd_types import VhdInfo

GET_VM_HEADERS = ("Name", "State", "CPUUsage(%)", "MemoryAssigned(M)", "Uptime", "Status")
STATUS_NORMAL = "Operating normally"


def format_uptime(seconds: float | None) -> str:
    """Uptime as a PowerShell TimeSpan; an off VM shows ``00:00:00`` as Get-VM does."""
    return formatting.format_uptime(seconds or 0)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns with a dashed underline under each header, as ``Format-Table`` does.

    Columns are separated by one space; trailing spaces are stripped. Returns the text without a
    final newline (empty when there are no rows: PowerShell prints nothing for no objects).
    """
    if not rows:
        return ""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return " ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    underline = ["-" * len(h) for h in headers]
    return "\n".join([line(headers), line(underline), *(line(r) for r in cells)])


def format_list(pairs: Sequence[tuple[str, object]]) -> str:
    """``Name : value`` lines with aligned colons, as ``Format-List`` does."""
    width = max((len(k) for k, _v in pairs), default=0)
    return "\n".join(f"{k.ljust(width)} : {'' if v is None else v}".rstrip() for k, v in pairs)


def status_text(info: VmInfo) -> str:
    """The Status column: what is going on, or "Operating normally"."""
    return info.reason or STATUS_NORMAL


def vm_record(
    info: VmInfo,
    stats: VmStats | None,
    config: VmConfig | None,
    assigned_fallback_mib: int | None = None,
) -> dict[str, Any]:
    """One VM as ``get-vm --json`` prints it.

    ``cpu_usage`` is a whole percentage of the host's processor time (None while running when it
    is not measurable, e.g. on the test driver); memory and uptime are 0 for a VM that is not
    running, as in Hyper-V.
    """
    active = info.state.is_active
    cpu = stats.cpu_percent if stats is not None else None
    assigned = stats.assigned_mib if stats is not None else None
    if assigned is None:
        assigned = assigned_fallback_mib
    uptime = stats.uptime() if stats is not None else None
    record: dict[str, Any] = {
        "name": info.name,
        "uuid": info.uuid,
        "state": info.state.value,
        "cpu_usage": (round(cpu) if cpu is not None else None) if active else 0,
        "memory_assigned_mib": (assigned or 0) if active else 0,
        "uptime_s": int(uptime or 0) if active else 0,
        "status": status_text(info),
        "has_saved_state": info.has_saved_state,
    }
    if config is not None:
        memory = config.memory
        record.update(
            generation=config.generation,
            processors=config.processors,
            memory_startup_mib=memory.startup_mib,
            dynamic_memory=memory.dynamic,
            memory_minimum_mib=memory.minimum_mib if memory.dynamic else None,
            memory_maximum_mib=memory.maximum_mib if memory.dynamic else None,
            notes=config.notes,
            path=config.folder,
            hard_drives=[d.path for d in config.hard_disks],
            dvd_drives=[d.path for d in config.disks if d.device == "cdrom"],
            network_adapters=[{"switch": n.connected_to, "mac": n.mac} for n in config.nics],
            kernel=config.kernel_boot.kernel if config.kernel_boot else None,
        )
    return record


def vm_row(record: dict[str, Any]) -> list[object]:
    """A ``get-vm`` table row from a record made by ``vm_record``."""
    return [
        record["name"],
        record["state"],
        record["cpu_usage"] or 0,
        record["memory_assigned_mib"],
        format_uptime(record["uptime_s"]),
        record["status"],
    ]


def vm_table(records: Sequence[dict[str, Any]]) -> str:
    """The ``get-vm`` table."""
    return format_table(GET_VM_HEADERS, [vm_row(r) for r in records])


def vhd_record(info: VhdInfo, users: Sequence[Any]) -> dict[str, Any]:
    """One disk as ``get-vhd --json`` prints it (Get-VHD's fields in snake_case, and more)."""
    return {
        "path": info.path,
        "vhd_format": info.format_label,
        "format": info.format,
        "vhd_type": info.type.value,
        "file_size": info.file_size,
        "size": info.size,
        "minimum_size": info.minimum_size,
        "logical_sector_size": info.logical_sector_size,
        "physical_sector_size": info.physical_sector_size,
        "block_size": info.block_size,
        "parent_path": info.parent_path,
        "disk_identifier": info.identifier,
        "attached": bool(users),
        "attached_to": [
            {"vm_name": u.vm_name, "uuid": u.uuid, "running": u.running, "target": u.target} for u in users
        ],
        "parents": [{"path": p.path, "format": p.format, "present": p.present} for p in info.parents],
    }


def vhd_text(record: dict[str, Any]) -> str:
    """A disk as Get-VHD lists it (``Format-List``), with who uses it and the parent chain."""
    users = ", ".join(
        f"{u['vm_name']} ({u['target']}{', running' if u['running'] else ''})" for u in record["attached_to"]
    )
    chain = "; ".join(f"{p['path']} ({'present' if p['present'] else 'missing'})" for p in record["parents"])
    return format_list(
        [
            ("Path", record["path"]),
            ("VhdFormat", record["vhd_format"]),
            ("VhdType", record["vhd_type"]),
            ("FileSize", record["file_size"]),
            ("Size", record["size"]),
            ("MinimumSize", record["minimum_size"]),
            ("LogicalSectorSize", record["logical_sector_size"]),
            ("PhysicalSectorSize", record["physical_sector_size"]),
            ("BlockSize", record["block_size"]),
            ("ParentPath", record["parent_path"]),
            ("DiskIdentifier", record["disk_identifier"]),
            ("Attached", str(record["attached"])),
            ("AttachedTo", users),
            ("ParentChain", chain),
        ]
    )


def write_json(out: TextIO, value: object) -> None:
    """Pretty, stable JSON followed by a newline."""
    json.dump(value, out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_text(out: TextIO, text: str) -> None:
    """Text followed by a newline; nothing at all for empty text."""
    if text:
        out.write(text + "\n")


def error_text(message: str, hint: str = "") -> str:
    """``hvctl: error: <message>`` and, when there is one, ``hvctl: hint: <hint>`` below it."""
    text = f"hvctl: error: {message}"
    return f"{text}\nhvctl: hint: {hint}" if hint else text


class ProgressLine:
    """``Merging (n %)`` on one terminal line, rewritten in place; silent when not a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = _isatty(stream)
        self._last: tuple[str, int] | None = None

    def __call__(self, what: str, percent: float) -> None:
        shown = (what, int(percent))
        if not self._enabled or shown == self._last:
            return
        self._last = shown
        self._stream.write(f"\r{what} ({shown[1]} %)")
        self._stream.flush()

    def finish(self) -> None:
        """End the progress line (when one was written)."""
        if self._last is not None:
            self._stream.write("\n")
            self._stream.flush()
            self._last = None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
