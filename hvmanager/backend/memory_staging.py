"""Where a running VM's memory is written while a checkpoint is taken.

libvirt keeps the VM paused until its memory image is on stable storage (its I/O helper ends with
``fdatasync``). Written straight into the VM's folder, that flush is most of the guest-visible
pause (about 100-150 ms for 256 MiB here). Written first to RAM-backed ``/dev/shm`` and moved
into the checkpoint folder afterwards, while the VM runs again, the pause is only QEMU's own
switch-over. The journal carries the move, so a crash in between completes it (or, after a host
reboot emptied ``/dev/shm``, leaves that checkpoint disk-only, which is still consistent).

Staging is used only when ``/dev/shm`` has room for the VM's whole memory with a margin; set
``HVMANAGER_MEMORY_STAGING=0`` to always write to the folder directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

STAGING_DIR = Path("/dev/shm")
_MARGIN = 1.25  # room for QEMU's device state and headroom for the rest of the system
_MIB = 1024 * 1024


def staging_enabled() -> bool:
    """Whether the user left memory staging on (the default)."""
    return os.environ.get("HVMANAGER_MEMORY_STAGING", "1") != "0"


def staging_file(dom: Any, checkpoint_id: str) -> Path | None:
    """A file in RAM to stage the VM's memory image in, or None to write it in place."""
    if not staging_enabled() or not STAGING_DIR.is_dir():
        return None
    memory_bytes = int(dom.maxMemory()) * 1024
    stats = os.statvfs(STAGING_DIR)
    if stats.f_bavail * stats.f_frsize < memory_bytes * _MARGIN + 64 * _MIB:
        return None
    if _available_ram() < memory_bytes * _MARGIN:
        return None
    return STAGING_DIR / f"hvmanager-{dom.UUIDString()}-{checkpoint_id}.save"


def _available_ram() -> int:
    """MemAvailable of the host, in bytes (0 when unknown: then no staging)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
