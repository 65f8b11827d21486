"""The data of virtual hard disk files (pure: the wizards, hvctl and the back end share it)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[float], None]


class DiskType(enum.Enum):
    """Hyper-V's VhdType."""

    FIXED = "Fixed"
    DYNAMIC = "Dynamic"
    DIFFERENCING = "Differencing"


class EditAction(enum.Enum):
    """The Edit Virtual Hard Disk wizard's actions."""

    COMPACT = "Compact"
    CONVERT = "Convert"
    EXPAND = "Expand"
    SHRINK = "Shrink"
    MERGE = "Merge"
    RECONNECT = "Reconnect"


@dataclass(frozen=True)
class ParentLink:
    """One parent in a differencing disk's chain, nearest first."""

    path: str
    format: str | None  # None when the file is missing
    present: bool


@dataclass(frozen=True)
class VhdInfo:
    """What Inspect Disk and ``hvctl get-vhd`` show (Get-VHD's fields)."""

    path: str
    format: str  # qemu-img name
    type: DiskType
    size: int  # virtual size, bytes
    file_size: int  # space the file takes on the host, bytes
    minimum_size: int | None  # smallest size a shrink can reach (None: not computed / not offered)
    block_size: int  # 0 for fixed and raw disks
    logical_sector_size: int
    physical_sector_size: int
    identifier: str  # disk identifier (UUID text), "" when the file has none
    parent_path: str | None
    parents: tuple[ParentLink, ...] = ()

    @property
    def format_label(self) -> str:
        """``VHDX``, ``VHD``, ``QCOW2`` or ``RAW``."""
        return {"vpc": "VHD"}.get(self.format, self.format.upper())


@dataclass(frozen=True)
class NewVhd:
    """A New Virtual Hard Disk request (the wizard's pages, or ``hvctl new-vhd``'s options).

    ``size_bytes`` is None for a differencing disk (the parent's size) and when ``source`` is given
    (the source's size). ``source`` is a virtual disk file or a host block device whose contents are
    copied. ``block_size``, ``logical_sector_size`` and ``physical_sector_size`` apply to VHDX.
    """

    path: str
    format: str
    type: DiskType
    size_bytes: int | None = None
    parent: str | None = None
    source: str | None = None
    block_size: int | None = None
    logical_sector_size: int | None = None
    physical_sector_size: int | None = None
