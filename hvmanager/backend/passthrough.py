"""Host block devices as physical (pass-through) hard disks, and whether the host uses them.

Hyper-V offers only disks that are offline on the host. Here a host disk can be passed through
when the host does not use it: it is not mounted (nor any of its partitions: the major:minor
numbers of ``/proc/self/mountinfo``), not swap (``/proc/swaps``), no other device is built on it
(``holders`` in sysfs: LVM, RAID, device mapper, of the disk or of a partition), it is writable,
it is not an unbound loop device, and no other VM has it. RAM disks, zram and device-mapper volumes
are not disks and are not offered; neither are CD/DVD and floppy drives.

The host must keep off the disk while a VM has it: ``start_problem`` tells why a VM can't start
(``operations.start`` refuses with it). Everything here reads this machine's ``/sys`` and ``/proc``,
so it works for the local server only.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend.connection import is_local_uri, libvirt_errors
from hvmanager.backend.domxml import parse_domain_xml
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.storage_layout import HostDisk

__all__ = [
    "START_HINT",
    "HostDisk",
    "HostUse",
    "host_disks",
    "host_use",
    "passthrough_problem",
    "start_problem",
]

SYS_BLOCK = Path("/sys/block")
SYS_DEV_BLOCK = Path("/sys/dev/block")
MOUNTINFO = Path("/proc/self/mountinfo")
SWAPS = Path("/proc/swaps")
SECTOR = 512
NOT_DISKS = {
    "zram": "a compressed RAM disk",
    "ram": "a RAM disk",
    "dm-": "a device-mapper volume (LVM, encryption)",
    "sr": "a CD/DVD drive",
    "fd": "a floppy drive",
}
START_HINT = (
    "Stop using the disk on the host (unmount it, turn off swap on it, deactivate its LVM volumes), "
    "or remove it from the virtual machine's settings."
)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class HostUse:
    """What uses block devices now, by device number: mount points, swap, and VMs."""

    mounts: dict[int, str]
    swaps: frozenset[int]
    vms: dict[int, str]


# --- what the host uses -------------------------------------------------------------------------


def _device_number(text: str) -> int | None:
    major, _, minor = text.strip().partition(":")
    if not (major.isdigit() and minor.isdigit()):
        return None
    return os.makedev(int(major), int(minor))


def _mounts() -> dict[int, str]:
    mounts: dict[int, str] = {}
    for line in MOUNTINFO.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split()
        number = _device_number(fields[2]) if len(fields) > 4 else None
        if number is not None:
            point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            mounts.setdefault(number, point)
    return mounts


def _block_number(path: str) -> int | None:
    """The device number of a block device path (symlinks followed), or None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_rdev if stat.S_ISBLK(info.st_mode) else None


def _swaps() -> frozenset[int]:
    lines = SWAPS.read_text(encoding="utf-8", errors="replace").splitlines()[1:]
    numbers = (
        _block_number(_OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), line.split()[0]))
        for line in lines
        if line.strip()
    )
    return frozenset(n for n in numbers if n is not None)


def _vm_devices(conn: Any, exclude_uuid: str | None, running_only: bool) -> dict[int, str]:
    """Device number -> name of a VM (other than ``exclude_uuid``) with it as a disk."""
    devices: dict[int, str] = {}
    with libvirt_errors("Listing the virtual machines"):
        domains = list(conn.listAllDomains(0))
    for dom in domains:
        try:
            if dom.UUIDString() == exclude_uuid or (running_only and not dom.isActive()):
                continue
            xmls = [dom.XMLDesc(0)]
            if dom.isActive() and dom.isPersistent():
                xmls.append(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
            name = dom.name()
        except libvirt.libvirtError:
            continue  # it went away meanwhile
        for xml in xmls:
            for disk in parse_domain_xml(xml).disks:
                number = _block_number(disk.path) if disk.source_type == "block" and disk.path else None
                if number is not None:
                    devices.setdefault(number, name)
    return devices


def host_use(conn: Any, exclude_uuid: str | None = None, running_only: bool = False) -> HostUse:
    """What uses block devices now (``running_only``: only running VMs count)."""
    return HostUse(_mounts(), _swaps(), _vm_devices(conn, exclude_uuid, running_only))


# --- one device ---------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def _partitions(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if (p / "partition").exists())


def _usage_problems(folder: Path, use: HostUse) -> list[str]:
    """How the host (or a VM) uses the disk of sysfs ``folder`` and its partitions."""
    problems = []
    for part in [folder, *_partitions(folder)]:
        number = _device_number(_read(part / "dev"))
        whose = "it" if part == folder else f"its partition {part.name}"
        holders = sorted(os.listdir(part / "holders")) if (part / "holders").is_dir() else []
        if number in use.mounts:
            problems.append(f"{whose} is mounted on the host at {use.mounts[number]}")
        if number in use.swaps:
            problems.append(f"the host uses {whose} as swap")
        if holders:
            problems.append(
                f"other host devices are built on {whose} ({', '.join(holders)}: LVM, RAID or device mapper)"
            )
        if number in use.vms:
            problems.append(f"the virtual machine '{use.vms[number]}' uses {whose}")
    return problems


def _disk_problems(folder: Path, use: HostUse) -> list[str]:
    """Why the disk of sysfs ``folder`` can't be passed through (fragments, empty when it can)."""
    problems = []
    if folder.name.startswith("loop") and not _read(folder / "loop" / "backing_file"):
        problems.append("it is a loop device with no backing file")
    elif _read(folder / "size") in ("", "0"):
        problems.append("it has no medium (its size is 0)")
    if _read(folder / "ro") == "1":
        problems.append("it is read-only")
    return problems + _usage_problems(folder, use)


def _sentence(fragments: list[str]) -> str:
    text = "; ".join(fragments)
    return text[:1].upper() + text[1:] + "."


def _description(folder: Path) -> str:
    name = folder.name
    if name.startswith("loop"):
        return f"Loop device on {_read(folder / 'loop' / 'backing_file')}"
    vendor, model = _read(folder / "device" / "vendor"), _read(folder / "device" / "model")
    if vendor.startswith("0x"):  # a PCI vendor id (virtio), not a name
        vendor = ""
    label = " ".join(part for part in (vendor, model) if part)
    if label:
        return label
    return {"vd": "Virtio disk", "nv": "NVMe disk", "sd": "SCSI disk"}.get(name[:2], "Disk")


def _sys_folder(number: int) -> Path:
    """The sysfs folder of a block device (of a disk, or of a partition inside its disk's)."""
    return (SYS_DEV_BLOCK / f"{os.major(number)}:{os.minor(number)}").resolve()


def _require_local(conn: Any) -> None:
    with libvirt_errors("Reading the server's address"):
        uri = str(conn.getURI())
    if not is_local_uri(uri):
        raise ValidationError(
            "Physical disks can be passed through only on this machine's server: hvmanager can't "
            f"see the disks of {uri}.",
            "Run hvmanager on that server to attach one of its disks.",
        )


def _not_a_disk(name: str) -> str | None:
    return next((what for prefix, what in NOT_DISKS.items() if name.startswith(prefix)), None)


def host_disks(conn: Any) -> list[HostDisk]:
    """The host's disks (and loop devices with a backing file) that could be passed through, each
    with the reason it can't be used now (``problem``), sorted by device name."""
    _require_local(conn)
    use = host_use(conn)
    disks = []
    for folder in sorted(SYS_BLOCK.iterdir()):
        name = folder.name
        if _not_a_disk(name) or (name.startswith("loop") and not _read(folder / "loop" / "backing_file")):
            continue
        size = int(_read(folder / "size") or 0) * SECTOR
        problems = _disk_problems(folder, use)
        disks.append(
            HostDisk(f"/dev/{name}", size, _description(folder), _sentence(problems) if problems else None)
        )
    return disks


def passthrough_problem(conn: Any, path: str, vm_uuid: str | None = None) -> str | None:
    """Why ``path`` can't be passed through to the VM ``vm_uuid`` (a VM having it already is no
    problem for that VM itself), or None."""
    _require_local(conn)
    if not os.path.isabs(path):
        return f"'{path}' is not an absolute path."
    if not os.path.exists(path):
        return f"'{path}' does not exist."
    number = _block_number(path)
    if number is None:
        return f"'{path}' is not a block device (a physical disk); a disk file is a virtual hard disk."
    folder = _sys_folder(number)
    if (folder / "partition").exists():
        return f"'{path}' is a partition ({folder.name}): pass through the whole disk ({folder.parent.name})."
    what = _not_a_disk(folder.name)
    if what:
        return f"'{path}' is {what}, not a disk."
    problems = _disk_problems(folder, host_use(conn, vm_uuid))
    return f"'{path}' can't be used as a physical disk: {'; '.join(problems)}." if problems else None


def start_problem(conn: Any, dom: Any) -> str | None:
    """Why the VM can't start now because the host (or a running VM) uses one of its physical
    disks, or None. Nothing is checked on a remote server."""
    with libvirt_errors(f"Reading the configuration of '{dom.name()}'"):
        xml = str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        uri = str(conn.getURI())
    devices = [d.path for d in parse_domain_xml(xml).disks if d.source_type == "block" and d.path]
    if not devices or not is_local_uri(uri):
        return None
    use = host_use(conn, dom.UUIDString(), running_only=True)
    name = dom.name()
    for device in devices:
        number = _block_number(device)
        if number is None:
            return (
                f"'{name}' can't start: its physical disk {device} does not exist or is not a block device."
            )
        problems = _usage_problems(_sys_folder(number), use)
        if problems:
            return f"'{name}' can't start while its physical disk {device} is in use: {'; '.join(problems)}."
    return None
