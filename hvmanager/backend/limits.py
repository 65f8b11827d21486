"""The limits of the reference product (hyperv-manager.md §5) and the checks built on them.

Each ``*_problem`` function returns ``None`` when the value is acceptable, otherwise a sentence that
says what is wrong; wizards show it and keep Next disabled. ``require`` turns a problem into a
``ValidationError`` for the backend and ``hvctl``. No libvirt here: the views use this module.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from hvmanager.backend.errors import ValidationError
from hvmanager.backend.models import MemoryConfig

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TIB = 1024 * GIB

NAME_MAX = 100
MEMORY_MIN_MIB = 32
MEMORY_STEP_MIB = 2
MEMORY_MAX_MIB = {1: 1024 * 1024, 2: 12 * 1024 * 1024}  # 1 TB Gen 1, 12 TB Gen 2
PROCESSORS_MAX = {1: 64, 2: 240}
DISK_MIN_BYTES = 3 * MIB

# Disk formats: user-facing name -> (qemu-img format, file extension, largest virtual size).
DISK_FORMATS: dict[str, tuple[str, str, int]] = {
    "QCOW2": ("qcow2", ".qcow2", 64 * TIB),
    "VHDX": ("vhdx", ".vhdx", 64 * TIB),
    "VHD": ("vpc", ".vhd", 2040 * GIB),
    "RAW": ("raw", ".img", 64 * TIB),
}
GEN1_BOOT_DISK_MAX = {"vpc": 2040 * GIB}

# Formats a VM can run from. libvirt 9.0 has no "vhdx" disk format ("unknown driver format
# value 'vhdx'") and reports a VHDX backing file as raw, so VHDX is an interchange format only.
ATTACHABLE_FORMATS = ("qcow2", "vpc", "raw")
GEN1_BOOT_DISK_MAX_DEFAULT = 2 * TIB


def format_for_qemu(qemu_format: str) -> str:
    """The user-facing name (``"VHDX"``) of a qemu-img format name (``"vhdx"``)."""
    for label, (fmt, _ext, _max) in DISK_FORMATS.items():
        if fmt == qemu_format:
            return label
    return qemu_format.upper()


def extension_for(qemu_format: str) -> str:
    """The file extension used for new disks of a qemu-img format."""
    for fmt, ext, _max in DISK_FORMATS.values():
        if fmt == qemu_format:
            return ext
    return "." + qemu_format


def attach_problem(qemu_format: str) -> str | None:
    """Why a disk of this format can't be attached to a VM, or None."""
    if qemu_format in ATTACHABLE_FORMATS:
        return None
    label = format_for_qemu(qemu_format)
    return (
        f"Virtual machines can't use {label} disks directly here (libvirt has no {label} disk "
        f"format): convert it to QCOW2 first, e.g. qemu-img convert -f {qemu_format} -O qcow2 ..."
    )


def require(problem: str | None) -> None:
    """Raise ``ValidationError`` when a check found a problem."""
    if problem:
        raise ValidationError(problem)


def vm_name_problem(name: str, existing: Iterable[str] = ()) -> str | None:
    """Check a VM name: 1 to 100 characters, usable as a folder name, unique on the server."""
    if not name.strip():
        return "Enter a name for the virtual machine."
    if len(name) > NAME_MAX:
        return f"The name is {len(name)} characters long; the limit is {NAME_MAX}."
    if name != name.strip():
        return "The name can't start or end with a space."
    if "/" in name or any(unicodedata.category(c).startswith("C") for c in name):
        return "The name can't contain '/' or control characters: it also names the VM's folder."
    if name in (".", ".."):
        return "'.' and '..' can't be used as a name."
    if name in set(existing):
        return f"A virtual machine named '{name}' already exists on this server."
    return None


def checkpoint_name_problem(name: str) -> str | None:
    """Check a checkpoint name: 1 to 100 characters, not blank."""
    if not name.strip():
        return "Enter a name for the checkpoint."
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "The name can't contain control characters (tabs, line breaks, ...)."
    if len(name) > NAME_MAX:
        return f"The name is {len(name)} characters long; the limit is {NAME_MAX}."
    return None


def _memory_value_problem(label: str, mib: int, ceiling: int) -> str | None:
    if mib < MEMORY_MIN_MIB:
        return f"{label} must be at least {MEMORY_MIN_MIB} MB."
    if mib % MEMORY_STEP_MIB:
        return f"{label} must be a multiple of {MEMORY_STEP_MIB} MB."
    if mib > ceiling:
        return f"{label} can be at most {ceiling} MB on this server."
    return None


def memory_ceiling_mib(generation: int, host_memory_mib: int | None) -> int:
    """The largest memory a VM of this generation may have on a host with this much memory."""
    limit = MEMORY_MAX_MIB.get(generation, MEMORY_MAX_MIB[1])
    if host_memory_mib:
        limit = min(limit, host_memory_mib - host_memory_mib % MEMORY_STEP_MIB)
    return limit


def memory_problem(
    memory: MemoryConfig, generation: int = 1, host_memory_mib: int | None = None
) -> str | None:
    """Check startup memory and the dynamic memory range (32 MB ≤ min ≤ startup ≤ max)."""
    ceiling = memory_ceiling_mib(generation, host_memory_mib)
    problem = _memory_value_problem("Startup memory", memory.startup_mib, ceiling)
    if problem or not memory.dynamic:
        return problem
    minimum = memory.minimum_mib if memory.minimum_mib is not None else memory.startup_mib
    maximum = memory.maximum_mib if memory.maximum_mib is not None else memory.startup_mib
    problem = _memory_value_problem("Minimum memory", minimum, ceiling)
    problem = problem or _memory_value_problem("Maximum memory", maximum, ceiling)
    if problem:
        return problem
    if minimum > memory.startup_mib:
        return "Minimum memory can't be larger than startup memory."
    if maximum < memory.startup_mib:
        return "Maximum memory can't be smaller than startup memory."
    return None


def processors_problem(count: int, generation: int = 1, host_cpus: int | None = None) -> str | None:
    """Check the number of virtual processors against the generation and the host."""
    limit = PROCESSORS_MAX.get(generation, PROCESSORS_MAX[1])
    if count < 1:
        return "A virtual machine needs at least one virtual processor."
    if count > limit:
        return f"A Generation {generation} virtual machine can have at most {limit} processors."
    if host_cpus and count > host_cpus:
        return f"This server has {host_cpus} logical processors; a VM can't have more."
    return None


def disk_size_problem(size_bytes: int, qemu_format: str, boot_disk_of_gen: int | None = None) -> str | None:
    """Check a virtual disk size against its format (and the Generation 1 boot disk limit)."""
    label = format_for_qemu(qemu_format)
    maximum = next((m for f, _e, m in DISK_FORMATS.values() if f == qemu_format), 64 * TIB)
    if boot_disk_of_gen == 1:
        maximum = min(maximum, GEN1_BOOT_DISK_MAX.get(qemu_format, GEN1_BOOT_DISK_MAX_DEFAULT))
    if size_bytes < DISK_MIN_BYTES:
        return "A virtual hard disk must be at least 3 MB."
    if size_bytes > maximum:
        where = " as a Generation 1 boot disk" if boot_disk_of_gen == 1 else ""
        return f"A {label} disk{where} can be at most {human_size(maximum)}."
    if size_bytes % MIB:
        return "The size must be a whole number of megabytes."
    return None


def human_size(size_bytes: float) -> str:
    """Format a byte count as Hyper-V Manager does (``127 GB``, ``2040 GB``, ``64 TB``, ``1.5 MB``).

    The largest unit that gives a whole number wins; otherwise the largest unit below the value,
    with one decimal.
    """
    units = (("TB", TIB), ("GB", GIB), ("MB", MIB), ("KB", KIB))
    for unit, factor in units:
        if size_bytes >= factor and size_bytes % factor == 0:
            return f"{int(size_bytes // factor)} {unit}"
    for unit, factor in units:
        if size_bytes >= factor:
            return f"{size_bytes / factor:.1f} {unit}"
    return f"{int(size_bytes)} B"


# VHDX options (New-VHD's -BlockSizeBytes, -LogicalSectorSizeBytes, -PhysicalSectorSizeBytes).
VHDX_BLOCK_MIN = 1 * MIB
VHDX_BLOCK_MAX = 256 * MIB
VHDX_DEFAULT_BLOCK_SIZE = 32 * MIB  # Hyper-V's default for a dynamic VHDX (2 MB for differencing)
SECTOR_SIZES = (512, 4096)
# QEMU 7.2 refuses to open a VHDX whose logical sector size is not 512 ("Operation not supported").
QEMU_VHDX_LOGICAL_SECTOR_SIZES = (512,)


def vhdx_block_size_problem(block_size: int) -> str | None:
    """Check a VHDX block size: a power of 2 from 1 MB to 256 MB."""
    if not VHDX_BLOCK_MIN <= block_size <= VHDX_BLOCK_MAX or block_size & (block_size - 1):
        return "The block size must be a power of 2 from 1 MB to 256 MB (Hyper-V's default is 32 MB)."
    return None


def sector_size_problem(which: str, size: int) -> str | None:
    """Check a VHDX ``which`` ("logical" or "physical") sector size: 512 or 4096 bytes, and a logical
    size QEMU can open."""
    if size not in SECTOR_SIZES:
        return f"The {which} sector size must be 512 or 4096 bytes."
    if which == "logical" and size not in QEMU_VHDX_LOGICAL_SECTOR_SIZES:
        return (
            "QEMU can't open VHDX disks with 4096-byte logical sectors (it supports 512 only), so such a "
            "disk would be unusable here; choose 512 (a 4096-byte physical sector size works)."
        )
    return None


def vhdx_options_problem(
    qemu_format: str,
    fixed: bool,
    differencing: bool,
    block_size: int | None,
    logical_sector_size: int | None,
    physical_sector_size: int | None,
) -> str | None:
    """Check the VHDX-only options of a new disk against its format and type."""
    if block_size is None and logical_sector_size is None and physical_sector_size is None:
        return None
    if differencing and logical_sector_size is not None:
        return "A differencing disk has no logical sector size of its own: it has its parent's."
    if qemu_format != "vhdx":
        label = format_for_qemu(qemu_format)
        return f"Block size and sector sizes can be chosen for VHDX disks only, not for {label}."
    if fixed and block_size is not None:
        return "A fixed size disk has no block size: all its space is allocated at once."
    if block_size is not None and (problem := vhdx_block_size_problem(block_size)):
        return problem
    for which, size in (("logical", logical_sector_size), ("physical", physical_sector_size)):
        if size is not None and (problem := sector_size_problem(which, size)):
            return problem
    return None
