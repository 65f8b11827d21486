"""The VM Settings dialog's rules: what may change in which state (pure, no libvirt).

``change_problems`` lists every reason why a ``SettingsChange`` can't be applied; the Settings
dialog checks every keystroke with it and ``vmsettings.apply_settings`` checks it again against the
VM as libvirt sees it.

The rules follow Hyper-V (hyperv-manager.md §5): while a VM runs, startup memory, Dynamic Memory
on/off and the processor count are fixed; with Dynamic Memory, Minimum RAM may only go down and
Maximum RAM only up (the new maximum takes effect at the next start: QEMU can't raise the memory
ceiling of a running guest). A saved VM keeps its hardware too: it resumes from a memory image
taken with that hardware. The boot order may always change; it is used at the next boot.

Checkpoints (Management ▸ Checkpoints) may be turned on or off and their type changed in any state;
their file location only while the VM has no checkpoints (§5), and only to an existing folder the
QEMU user can reach. ``CheckpointSettings`` is what the page needs to know besides the policy.

Storage (IDE and SCSI controllers, hard drives, DVD drives) follows ``storage_layout``'s rules:
hard drives on SCSI come and go while the VM runs, DVD media change, nothing else.

Network adapters are checked one by one with ``vm_network_rules.adapter_problems`` (switch, VLAN,
bandwidth, queues, MAC, how many); while the VM runs they can be added, removed and reconnected,
and their VLAN and bandwidth changed, but not their queues, and legacy adapters neither come nor go
(``network_problems``). An adapter is known by its MAC address; one without is new.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from hvmanager.backend import limits, paths, vmactions
from hvmanager.backend.checkpoint_tree import CheckpointType, tree_from_domain_xml
from hvmanager.backend.checkpoint_xml import CheckpointPolicy, edit_policy, parse_policy, snapshot_folder
from hvmanager.backend.models import (
    BootDevice,
    HostInfo,
    MemoryConfig,
    StartAction,
    StopAction,
    VmConfig,
    VmState,
)
from hvmanager.backend.network_models import AdapterSpec, MacRange, SwitchInfo
from hvmanager.backend.storage_layout import StorageLayout
from hvmanager.backend.storage_rules import storage_problems
from hvmanager.backend.vm_network_rules import LIVE_QUEUES_REASON, adapter_problems

START_DELAY_MAX_S = 86400

NOTE_BOOT_ORDER = "The boot order takes effect at the next start."
NOTE_KERNEL_BOOT = (
    "The boot order is saved, but it is not used while the virtual machine boots a Linux kernel directly."
)

# Characters XML 1.0 can't hold (libvirt would refuse the definition).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class SettingsChange:
    """What the user changed in the Settings dialog; ``None`` means unchanged."""

    memory: MemoryConfig | None = None
    processors: int | None = None
    boot_order: tuple[BootDevice, ...] | None = None
    name: str | None = None
    notes: str | None = None
    start_action: StartAction | None = None
    start_delay_s: int | None = None
    stop_action: StopAction | None = None
    checkpoint_policy: CheckpointPolicy | None = None  # kept in metadata, not in ``VmConfig``
    storage: StorageLayout | None = None  # controllers and drives (IDE, SCSI), not in ``VmConfig``
    adapters: tuple[AdapterSpec, ...] | None = None  # network adapters, not in ``VmConfig``

    @property
    def is_empty(self) -> bool:
        """True when nothing is changed."""
        return all(getattr(self, f.name) is None for f in dataclasses.fields(self))

    def applied_to(self, config: VmConfig) -> VmConfig:
        """``config`` with this change made (the fields ``VmConfig`` has)."""
        config_fields = {f.name for f in dataclasses.fields(config)}
        changed = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name in config_fields and getattr(self, f.name) is not None
        }
        return dataclasses.replace(config, **changed)


@dataclass(frozen=True)
class CheckpointSettings:
    """What the Checkpoints page shows and checks: the policy, the checkpoints that lock the file
    location, the default location, and the user QEMU runs as (None: don't check reachability)."""

    policy: CheckpointPolicy
    checkpoints: int = 0  # visible checkpoints
    pending_merges: int = 0  # deleted checkpoints whose images still wait to be merged
    default_folder: str = ""  # the VM's own Snapshots folder, used while ``policy.location`` is ""
    qemu_user: str | None = None

    @property
    def location_locked(self) -> bool:
        """Whether the file location is fixed: the VM has checkpoints (pending merges count)."""
        return self.checkpoints + self.pending_merges > 0

    @classmethod
    def from_domain_xml(cls, xml: str, qemu_user: str | None = None) -> CheckpointSettings:
        """Read them from a VM's persistent domain XML."""
        policy = parse_policy(xml)
        tree = tree_from_domain_xml(xml)
        visible = len(tree.visible())
        try:
            default = str(snapshot_folder(edit_policy(xml, dataclasses.replace(policy, location=""))))
        except ValueError:  # neither a folder nor a disk: nothing to show as the default
            default = ""
        return cls(policy, visible, len(tree.checkpoints) - visible, default, qemu_user)


CHECKPOINT_TYPE_LABELS = {
    CheckpointType.DISABLED: "Disabled",
    CheckpointType.PRODUCTION: "Production",
    CheckpointType.PRODUCTION_ONLY: "Production only",
    CheckpointType.STANDARD: "Standard",
}


def normalized_location(text: str, default_folder: str) -> str:
    """The location to store for what the user typed: "" for the default folder (or nothing)."""
    text = text.strip()
    if not text:
        return ""
    normal = str(Path(text)) if Path(text).is_absolute() else text
    return "" if default_folder and normal == str(Path(default_folder)) else normal


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def location_lock_reason(settings: CheckpointSettings) -> str | None:
    """Why the checkpoint file location can't be changed now, or None."""
    if not settings.location_locked:
        return None
    counts = []
    if settings.checkpoints:
        counts.append(_count(settings.checkpoints, "checkpoint"))
    if settings.pending_merges:
        counts.append(
            _count(settings.pending_merges, "deleted checkpoint") + " whose files wait to be merged"
        )
    what_to_do = (
        "Delete its checkpoints first."
        if settings.checkpoints
        else "They merge once only one branch of the tree still reads them."
    )
    return (
        "The checkpoint file location can be changed only while the virtual machine has no "
        f"checkpoints; it has {' and '.join(counts)}. {what_to_do}"
    )


def checkpoint_problems(settings: CheckpointSettings, policy: CheckpointPolicy) -> list[str]:
    """Why ``policy`` can't replace the VM's checkpoint policy ``settings.policy`` (empty: it can)."""
    location = policy.location
    if location == settings.policy.location:
        return []
    reason = location_lock_reason(settings)
    if reason:
        return [reason]
    if not location:
        return []  # back to the VM's own Snapshots folder
    if not Path(location).is_absolute():
        return [f"The checkpoint file location '{location}' is not an absolute path."]
    if not Path(location).is_dir():
        return [f"The checkpoint file location '{location}' does not exist or is not a folder."]
    problem = paths.folder_problem(location, settings.qemu_user)
    return [f"Checkpoint file location: {problem}"] if problem else []


def generation_of(config: VmConfig) -> int:
    """The VM's generation; a VM made elsewhere counts as Generation 2 when it boots with UEFI."""
    if config.generation in limits.PROCESSORS_MAX:
        return config.generation
    return 2 if config.firmware == "efi" else 1


def hardware_locked(state: VmState) -> bool:
    """Whether memory and processors are fixed in this state (running, paused, saved, ...)."""
    return state.is_active or state is VmState.SAVED


def _state_words(state: VmState) -> str:
    return state.value.lower()


def rename_problem(name: str, state: VmState) -> str | None:
    """Why the VM can't be renamed in ``state``, or None."""
    if state is VmState.SAVED:
        return (
            f"Can't rename '{name}' while it is Saved: libvirt can't rename a virtual machine "
            "that has a saved state. Start it and shut it down, or delete the saved state, first."
        )
    return vmactions.state_problem(vmactions.VmAction.RENAME, name, state)


def _memory_state_problems(current: MemoryConfig, new: MemoryConfig, state: VmState) -> list[str]:
    """The rules for changing memory while the VM runs or is saved."""
    if state is VmState.SAVED:
        return [
            "Memory can't be changed while the virtual machine is saved: it resumes with the "
            "memory it was saved with. Start it and shut it down, or delete the saved state, "
            "first."
        ]
    if not state.is_active:
        return []
    words = _state_words(state)
    problems = []
    if new.dynamic != current.dynamic:
        problems.append(
            f"Dynamic Memory can't be turned {'on' if new.dynamic else 'off'} while the virtual "
            f"machine is {words}. Shut it down first."
        )
    if new.startup_mib != current.startup_mib:
        problems.append(
            f"Startup RAM can't be changed while the virtual machine is {words}. Shut it down first."
        )
    if new.dynamic and current.dynamic:
        problems += _dynamic_range_problems(current, new, words)
    return problems


def _dynamic_range_problems(current: MemoryConfig, new: MemoryConfig, words: str) -> list[str]:
    problems = []
    old_min = current.minimum_mib or current.startup_mib
    old_max = current.maximum_mib or current.ceiling_mib
    if (new.minimum_mib or new.startup_mib) > old_min:
        problems.append(
            f"While the virtual machine is {words}, Minimum RAM can only be decreased (it is {old_min} MB)."
        )
    if (new.maximum_mib or new.startup_mib) < old_max:
        problems.append(
            f"While the virtual machine is {words}, Maximum RAM can only be increased (it is {old_max} MB)."
        )
    return problems


def _memory_problems(current: VmConfig, state: VmState, new: MemoryConfig, host: HostInfo) -> list[str]:
    if new == current.memory:
        return []
    problem = limits.memory_problem(new, generation_of(current), host.memory_mib)
    return ([problem] if problem else []) + _memory_state_problems(current.memory, new, state)


def _processor_problems(current: VmConfig, state: VmState, count: int, host: HostInfo) -> list[str]:
    if count == current.processors:
        return []
    problems = []
    problem = limits.processors_problem(count, generation_of(current), host.cpus)
    if problem:
        problems.append(problem)
    if hardware_locked(state):
        problems.append(
            "The number of virtual processors can't be changed while the virtual machine is "
            f"{_state_words(state)}. Shut it down first."
        )
    return problems


def _boot_order_problems(order: tuple[BootDevice, ...]) -> list[str]:
    if sorted(d.value for d in order) == sorted(d.value for d in BootDevice):
        return []
    names = ", ".join(d.label for d in BootDevice)
    return [f"The boot order must list each of {names} exactly once."]


def _name_problems(current: VmConfig, state: VmState, name: str, others: frozenset[str]) -> list[str]:
    if name == current.name:
        return []
    problems = []
    problem = limits.vm_name_problem(name, others - {current.name})
    if problem:
        problems.append(problem)
    problem = rename_problem(current.name, state)
    if problem:
        problems.append(problem)
    return problems


def _notes_problems(notes: str) -> list[str]:
    if _XML_INVALID.search(notes):
        return ["The notes can't contain control characters other than tabs and line breaks."]
    return []


def _start_delay_problems(delay_s: int) -> list[str]:
    if 0 <= delay_s <= START_DELAY_MAX_S:
        return []
    return [f"The startup delay must be between 0 and {START_DELAY_MAX_S} seconds."]


def change_problems(
    current: VmConfig,
    state: VmState,
    change: SettingsChange,
    host: HostInfo,
    other_names: frozenset[str],
    checkpoints: CheckpointSettings | None = None,
    storage: StorageLayout | None = None,
    network: NetworkSettings | None = None,
) -> list[str]:
    """Every reason why ``change`` can't be applied to a VM in ``state`` (empty when it can).

    ``current`` is the VM's persistent configuration and ``other_names`` the names of the other
    VMs on the server (the VM's own name is ignored if present); ``checkpoints`` is needed to
    check a new checkpoint policy, ``storage`` (the VM's current controllers and drives, of the
    running VM while it runs) to check new storage, ``network`` (its adapters, likewise, and the
    server's switches) to check new network adapters.
    """
    problems: list[str] = []
    if change.memory is not None:
        problems += _memory_problems(current, state, change.memory, host)
    if change.processors is not None:
        problems += _processor_problems(current, state, change.processors, host)
    if change.boot_order is not None:
        problems += _boot_order_problems(change.boot_order)
    if change.name is not None:
        problems += _name_problems(current, state, change.name, other_names)
    if change.notes is not None:
        problems += _notes_problems(change.notes)
    if change.start_delay_s is not None:
        problems += _start_delay_problems(change.start_delay_s)
    if change.checkpoint_policy is not None:
        if checkpoints is None:
            problems.append("The checkpoint settings of this virtual machine could not be read.")
        else:
            problems += checkpoint_problems(checkpoints, change.checkpoint_policy)
    if change.storage is not None:
        if storage is None:
            problems.append("The storage controllers and drives of this virtual machine could not be read.")
        else:
            problems += storage_problems(storage, change.storage, state)
    if change.adapters is not None:
        if network is None:
            problems.append("The network adapters of this virtual machine could not be read.")
        else:
            processors = change.processors if change.processors is not None else current.processors
            problems += network_problems(network, change.adapters, state, generation_of(current), processors)
    return problems


# --- network adapters ---------------------------------------------------------------------------

LIVE_MAC_REASON = (
    "The MAC address of an attached network adapter can't be changed while the virtual machine is "
    "running. Shut down the virtual machine first, or add a new adapter."
)
LIVE_LEGACY_REASON = (
    "Legacy network adapters can be added or removed only while the virtual machine is off: the "
    "emulated adapter is not hot-plugged. Shut down the virtual machine first."
)


@dataclass(frozen=True)
class NetworkSettings:
    """What the Network Adapter pages show and check: the VM's adapters (as configured), the
    server's virtual switches, and the range dynamic MAC addresses come from."""

    adapters: tuple[AdapterSpec, ...]
    switches: tuple[SwitchInfo, ...] = ()
    mac_range: MacRange | None = None


def _live(state: VmState) -> bool:
    return state in (VmState.RUNNING, VmState.PAUSED)


def adapters_locked(state: VmState) -> str | None:
    """Why no network adapter can change in ``state`` (saved, starting, stopping), or None."""
    if state is VmState.SAVED:
        return (
            "Network adapters can't be changed while the virtual machine is saved: it resumes with the "
            "adapters it was saved with. Start it and shut it down, or delete the saved state, first."
        )
    if state is VmState.OFF or _live(state):
        return None
    return (
        f"Network adapters can't be changed while the virtual machine is {_state_words(state)}. "
        "Wait until it is running or off, then reopen this window."
    )


def _live_adapter_problems(current: tuple[AdapterSpec, ...], wanted: tuple[AdapterSpec, ...]) -> list[str]:
    """What a running VM's adapters can't do: change queues, add or remove a legacy adapter."""
    before = {spec.mac: spec for spec in current if spec.mac}
    problems = []
    for spec in wanted:
        old = before.get(spec.mac) if spec.mac else None
        if old is None and spec.legacy:
            problems.append(LIVE_LEGACY_REASON)
        elif old is not None and (old.vmq, old.queues) != (spec.vmq, spec.queues):
            problems.append(LIVE_QUEUES_REASON)
    kept = {spec.mac for spec in wanted}
    if any(spec.legacy and spec.mac not in kept for spec in current):
        problems.append(LIVE_LEGACY_REASON)
    return problems


def network_problems(
    network: NetworkSettings,
    wanted: tuple[AdapterSpec, ...],
    state: VmState,
    generation: int,
    processors: int,
) -> list[str]:
    """Why the VM's adapters can't become ``wanted`` (empty when they can); adapters left as they
    were are not blamed (a switch deleted since, ...)."""
    if wanted == network.adapters:
        return []
    locked = adapters_locked(state)
    if locked:
        return [locked]
    switches = {switch.name: switch for switch in network.switches}
    problems = []
    for index, spec in enumerate(wanted):
        if spec in network.adapters:
            continue
        if not spec.dynamic_mac and not spec.mac:
            problems.append("Type the static MAC address of the network adapter, or choose Dynamic.")
        others = wanted[:index] + wanted[index + 1 :]
        problems += adapter_problems(spec, generation, processors, others, switches)
    if _live(state):
        problems += _live_adapter_problems(network.adapters, wanted)
    return list(dict.fromkeys(problems))
