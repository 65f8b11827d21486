"""Plain typed data shared by every layer: VMs, their configuration, their live figures.

Nothing here talks to libvirt; the views may import this module.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from datetime import datetime

from hvmanager.backend.network_models import PortStats


class Heartbeat(enum.Enum):
    """The Heartbeat line of the Summary tab, as Hyper-V words it (from the guest agent)."""

    NO_CHANNEL = "No guest agent channel"
    NO_CONTACT = "No contact"  # the channel is closed: no agent runs in the guest
    OK = "OK"
    LOST = "Lost communication"  # the channel is open but the agent does not answer


class VmState(enum.Enum):
    """The VM states shown in the State column, named as Hyper-V names them."""

    OFF = "Off"
    RUNNING = "Running"
    PAUSED = "Paused"
    SAVED = "Saved"
    STOPPING = "Stopping"
    STARTING = "Starting"
    OTHER = "Other"

    @property
    def is_active(self) -> bool:
        """True while a QEMU process exists for the VM."""
        return self in (VmState.RUNNING, VmState.PAUSED, VmState.STOPPING, VmState.STARTING)


class StartAction(enum.Enum):
    """Automatic Start Action (Settings ▸ Management)."""

    NOTHING = "Nothing"
    START_IF_RUNNING = "StartIfRunning"
    START = "Start"


class StopAction(enum.Enum):
    """Automatic Stop Action (Settings ▸ Management)."""

    SAVE = "Save"
    TURN_OFF = "TurnOff"
    SHUT_DOWN = "ShutDown"


class BootDevice(enum.Enum):
    """Entries of the BIOS startup order / firmware boot order."""

    CD = "cdrom"
    HARD_DRIVE = "hd"
    NETWORK = "network"

    @property
    def label(self) -> str:
        """The name shown in the Settings dialog."""
        return {"cdrom": "CD", "hd": "Hard Drive", "network": "Network Adapter"}[self.value]


DEFAULT_BOOT_ORDER = (BootDevice.CD, BootDevice.HARD_DRIVE, BootDevice.NETWORK)


@dataclass(frozen=True)
class MemoryConfig:
    """Startup memory and, with dynamic memory, the balloon's range (all in MiB)."""

    startup_mib: int
    dynamic: bool = False
    minimum_mib: int | None = None
    maximum_mib: int | None = None

    @property
    def ceiling_mib(self) -> int:
        """The most memory the guest can ever be given (libvirt's ``<memory>``)."""
        if self.dynamic and self.maximum_mib:
            return max(self.maximum_mib, self.startup_mib)
        return self.startup_mib


@dataclass(frozen=True)
class DiskConfig:
    """One disk or DVD drive attached to a VM."""

    device: str  # "disk" or "cdrom"
    path: str | None
    format: str | None
    bus: str  # "ide", "scsi", "virtio", "sata"
    target: str  # "hda", "sda", ...
    readonly: bool = False
    source_type: str = "file"  # "file", "block", ...
    slot: tuple[int, int] | None = None  # (controller, location) as Hyper-V numbers IDE and SCSI


@dataclass(frozen=True)
class NicConfig:
    """One network adapter: where it is connected and its MAC address."""

    mac: str
    source_type: str  # "network", "bridge", "direct", "user", "none"
    source: str | None  # network or bridge name; None when not connected
    model: str = "virtio"
    link_up: bool = True

    @property
    def connected_to(self) -> str:
        """The switch name as the Networking tab shows it."""
        if self.source is None or not self.link_up:
            return "Not connected"
        return self.source


@dataclass(frozen=True)
class KernelBoot:
    """Direct Linux kernel boot: kernel, initrd and command line on the host."""

    kernel: str
    initrd: str = ""
    cmdline: str = ""


@dataclass(frozen=True)
class VmConfig:
    """A VM's configuration, read from its libvirt domain XML and hvmanager metadata."""

    name: str
    uuid: str
    domain_type: str  # "kvm" or "qemu"
    memory: MemoryConfig
    processors: int
    generation: int | None = None
    boot_order: tuple[BootDevice, ...] = DEFAULT_BOOT_ORDER
    disks: tuple[DiskConfig, ...] = ()
    nics: tuple[NicConfig, ...] = ()
    kernel_boot: KernelBoot | None = None
    notes: str = ""
    created: datetime | None = None
    start_action: StartAction = StartAction.NOTHING
    start_delay_s: int = 0
    stop_action: StopAction = StopAction.SAVE
    running_at_host_stop: bool = False
    folder: str | None = None
    accel_mode: str = "auto"
    serial_log: str | None = None
    machine: str = ""
    firmware: str = "bios"  # "bios" or "efi"
    managed: bool = False  # True when the VM carries hvmanager metadata

    @property
    def hard_disks(self) -> tuple[DiskConfig, ...]:
        """Attached hard drives (not DVD drives)."""
        return tuple(d for d in self.disks if d.device == "disk")


@dataclass(frozen=True)
class VmInfo:
    """A row of the VM list: identity and state."""

    uuid: str
    name: str
    state: VmState
    has_saved_state: bool = False
    persistent: bool = True
    reason: str = ""


@dataclass(frozen=True)
class DiskThroughput:
    """One drive's I/O between the last two ticks: bytes and requests per second.

    The rates are None on the first tick a drive is seen (they need two samples) and after its
    counters started again from zero (new media, a restarted VM).
    """

    target: str  # libvirt's device name: "hda", "sdb", ...
    path: str  # the file (or host block device) behind it
    read_bps: float | None = None
    write_bps: float | None = None
    read_iops: float | None = None
    write_iops: float | None = None


@dataclass(frozen=True)
class VmStats:
    """Live figures of one VM from one bulk stats call.

    The start time (not the uptime) is kept, so that a VM whose figures did not change compares
    equal from one tick to the next; the uptime is worked out when it is shown.
    """

    uuid: str
    cpu_percent: float | None = None
    assigned_mib: int | None = None
    demand_mib: int | None = None
    started_at: float | None = None  # wall-clock time (time.time()) the VM's process started
    disks: tuple[DiskThroughput, ...] = ()  # drives with media, in libvirt's order
    ports: tuple[PortStats, ...] = ()  # adapters with a host device (switch ports), in libvirt's order

    def uptime(self, now: float | None = None) -> float | None:
        """Seconds since the VM started (at ``now``, by default the current time)."""
        if self.started_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.started_at)


@dataclass(frozen=True)
class HostInfo:
    """Facts about a connected server."""

    uri: str
    hostname: str
    cpus: int
    memory_mib: int
    libvirt_version: str
    hypervisor: str


# --- what the New Virtual Machine wizard and ``hvctl new-vm`` ask for ------------------------


@dataclass(frozen=True)
class NewDisk:
    """Create a new dynamically expanding disk in the VM's ``Virtual Hard Disks`` folder."""

    size_gib: int
    format: str = "qcow2"
    name: str = ""  # file name; empty means "<vm name>.<ext>"
    folder: str = ""  # empty means "<vm folder>/Virtual Hard Disks"


@dataclass(frozen=True)
class ExistingDisk:
    """Attach an existing virtual hard disk file."""

    path: str


@dataclass(frozen=True)
class IsoInstall:
    """Install from a bootable ISO image (DVD first in the boot order)."""

    path: str


@dataclass(frozen=True)
class NetworkInstall:
    """Install from a network-based installation server (network first in the boot order)."""


DiskChoice = NewDisk | ExistingDisk | None
InstallChoice = IsoInstall | NetworkInstall | KernelBoot | None


@dataclass(frozen=True)
class VmSpec:
    """Everything needed to create a VM."""

    name: str
    location: str
    generation: int = 1
    memory: MemoryConfig = field(default_factory=lambda: MemoryConfig(1024))
    processors: int = 1
    network: str | None = None
    disk: DiskChoice = None
    install: InstallChoice = None
    notes: str = ""
