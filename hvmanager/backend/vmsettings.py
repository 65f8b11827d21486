"""The VM Settings dialog's changes: editing the configuration and applying it with rollback.

``apply_settings`` checks the rules of ``vmsettings_rules`` against the VM as libvirt sees it, then
applies the whole change or nothing: a rename first, then the edited persistent XML in one
``defineXML`` call (the checkpoint policy included), then the storage (``vm_storage``: another
definition for a VM that is off, hot add and remove for a running one), then the network adapters
(``vm_network``: likewise, live and in the configuration for a running VM), then autostart and, for a
running VM, the live notes, metadata and balloon target. When a later step fails the earlier ones
are undone, so the configuration is never left half-changed. The rules (``SettingsChange``,
``change_problems``, ...) are importable from here too; the Settings dialog imports them from
``vmsettings_rules``, which needs no libvirt.

The persistent definition also holds the checkpoint tree, which checkpoint operations rewrite: the
whole apply holds the VM's checkpoint lock, so neither the define nor its undo can put back a tree
a checkpoint operation has changed in the meantime.
"""

from __future__ import annotations

import copy as copy_module
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from hvmanager.backend import (
    checkpoint_journal,
    domxml,
    inventory,
    operations,
    switches,
    vm_network,
    vm_storage,
)
from hvmanager.backend.checkpoint_xml import edit_policy
from hvmanager.backend.checkpoints import require_local
from hvmanager.backend.connection import libvirt_errors, local_qemu_user
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.models import HostInfo, MemoryConfig, StartAction, VmConfig, VmState
from hvmanager.backend.network_models import MacRange
from hvmanager.backend.vmsettings_rules import (
    NOTE_BOOT_ORDER,
    NOTE_KERNEL_BOOT,
    START_DELAY_MAX_S,
    CheckpointSettings,
    NetworkSettings,
    SettingsChange,
    change_problems,
    generation_of,
    hardware_locked,
    rename_problem,
)

__all__ = [
    "MIB_KIB",
    "NOTE_BOOT_ORDER",
    "NOTE_KERNEL_BOOT",
    "START_DELAY_MAX_S",
    "CheckpointSettings",
    "NetworkSettings",
    "SettingsChange",
    "apply_notes",
    "apply_settings",
    "balloon_target_kib",
    "change_problems",
    "checkpoint_settings",
    "edit_config_xml",
    "editable_xml",
    "generation_of",
    "hardware_locked",
    "live_metadata_xml",
    "local_qemu_user",
    "metadata_element_xml",
    "network_settings",
    "rename_problem",
]

log = logging.getLogger(__name__)

MIB_KIB = 1024


# --- editing the XML (pure) ---------------------------------------------------------------------


def edit_config_xml(xml: str, change: SettingsChange) -> str:
    """The domain XML with ``change`` made (not the name: libvirt renames separately)."""
    if change.memory is not None:
        xml = domxml.edit_memory(xml, change.memory)
    if change.processors is not None:
        xml = domxml.edit_processors(xml, change.processors)
    if change.boot_order is not None:
        xml = domxml.edit_boot_order(xml, change.boot_order)
    if change.notes is not None:
        xml = domxml.edit_notes(xml, change.notes)
    if _touches_actions(change):
        xml = _edit_actions(xml, change)
    if change.checkpoint_policy is not None:
        xml = edit_policy(xml, change.checkpoint_policy)
    return xml


def _touches_actions(change: SettingsChange) -> bool:
    actions = (change.start_action, change.start_delay_s, change.stop_action)
    return any(value is not None for value in actions)


def _edit_actions(xml: str, change: SettingsChange) -> str:
    """Set the automatic actions, keeping those the change leaves alone."""
    config = change.applied_to(domxml.parse_domain_xml(xml))
    return domxml.edit_automatic_actions(xml, config.start_action, config.start_delay_s, config.stop_action)


def metadata_element_xml(xml: str) -> str | None:
    """hvmanager's ``<vm>`` metadata element of a domain XML, ready for ``virDomainSetMetadata``.

    libvirt puts the element into the namespace it is given, so it is written with that namespace
    as the default one (a prefixed element makes libvirt fail to declare the prefix again).
    """
    root = SafeET.fromstring(xml)
    element = root.find(f"metadata/{{{domxml.METADATA_NS}}}vm")
    if element is None:
        return None
    copy = copy_module.deepcopy(element)
    prefix = f"{{{domxml.METADATA_NS}}}"
    for node in copy.iter():
        node.tag = node.tag.removeprefix(prefix)
    copy.set("xmlns", domxml.METADATA_NS)  # ElementTree's default_namespace refuses attributes
    return ET.tostring(copy, encoding="unicode")


def live_metadata_xml(live_xml: str, change: SettingsChange) -> str | None:
    """The running VM's metadata element with the memory range and automatic actions changed.

    Only the metadata element is taken from the edited XML: the live memory ceiling stays as QEMU
    has it.
    """
    if change.memory is None and not _touches_actions(change):
        return None
    metadata_only = SettingsChange(
        memory=change.memory,
        start_action=change.start_action,
        start_delay_s=change.start_delay_s,
        stop_action=change.stop_action,
    )
    return metadata_element_xml(edit_config_xml(live_xml, metadata_only))


# --- notes for the user -------------------------------------------------------------------------


def apply_notes(current: VmConfig, state: VmState, change: SettingsChange) -> list[str]:
    """What the user should know after ``change`` was applied (when it takes effect)."""
    notes = []
    if change.boot_order is not None and change.boot_order != current.boot_order:
        if current.kernel_boot is not None:
            notes.append(NOTE_KERNEL_BOOT)
        elif state is not VmState.OFF:
            notes.append(NOTE_BOOT_ORDER)
    memory = change.memory
    if memory is not None and state.is_active and memory.ceiling_mib > current.memory.ceiling_mib:
        notes.append(
            f"The new Maximum RAM ({memory.ceiling_mib} MB) takes effect at the next start: QEMU "
            "can't raise the memory ceiling of a running virtual machine."
        )
    return notes


def balloon_target_kib(memory: MemoryConfig, live_max_kib: int, current_kib: int) -> int | None:
    """Where to move a running VM's memory so it lies in the Dynamic Memory range, or None."""
    if not memory.dynamic:
        return None
    low = (memory.minimum_mib or memory.startup_mib) * MIB_KIB
    high = min((memory.maximum_mib or memory.startup_mib) * MIB_KIB, live_max_kib)
    if current_kib < low:
        return min(low, live_max_kib)
    if current_kib > high:
        return high
    return None


# --- applying (libvirt) -------------------------------------------------------------------------


class _Undo:
    """Steps that undo what was applied so far, run in reverse order when a later step fails."""

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, step: Callable[[], object]) -> None:
        self._steps.append((what, step))

    def run(self) -> None:
        for what, step in reversed(self._steps):
            try:
                step()
            except Exception:  # undo is best effort; the caller raises the first error
                log.exception("undoing a settings change failed: %s", what)


def editable_xml(dom: Any) -> str:
    """The persistent domain XML including secrets (a VNC password must survive a redefine)."""
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
    with libvirt_errors("Reading the configuration of a virtual machine"):
        return str(dom.XMLDesc(flags))


def checkpoint_settings(conn: Any, dom: Any) -> CheckpointSettings | None:
    """What the Settings dialog's Checkpoints page needs (blocking); None on a remote server,
    where checkpoints are not supported."""
    qemu_user = local_qemu_user(conn)
    if qemu_user is None:
        return None
    return CheckpointSettings.from_domain_xml(editable_xml(dom), qemu_user)


def network_settings(conn: Any, dom: Any, mac_range: MacRange | None = None) -> NetworkSettings:
    """What the Settings dialog's network pages need (blocking): the VM's adapters as configured
    (what ``vm_network.apply_adapters_undoable`` changes; a running VM's are the same but for
    changes waiting for its next start), the server's switches, and ``mac_range``."""
    return NetworkSettings(vm_network.adapters(dom), tuple(switches.list_switches(conn)), mac_range)


def apply_settings(
    conn: Any, dom: Any, change: SettingsChange, host: HostInfo, mac_range: MacRange | None = None
) -> list[str]:
    """Apply ``change`` to the VM (blocking); returns notes for the user. New adapters with a
    dynamic MAC address take one from ``mac_range`` (None: the range of the saved settings).

    Raises ``ValidationError`` when a rule forbids the change (nothing is touched), ``ChainBusyError``
    while a checkpoint operation (a merge) runs on the VM, and ``HvError`` when libvirt fails
    (what was applied so far is undone first).
    """
    info = inventory.vm_info(dom)
    if not info.persistent:
        raise ValidationError(
            f"'{info.name}' is a transient virtual machine: libvirt keeps no configuration "
            "for it, so its settings can't be changed."
        )
    with ExitStack() as held:
        try:
            held.enter_context(checkpoint_journal.vm_lock(info.uuid, wait=False))
        except checkpoint_journal.ChainBusyError:
            raise
        except HvError as exc:  # no lock folder for this user, who then cannot run checkpoints either
            log.warning("applying settings without the checkpoint lock of %s: %s", info.name, exc)
        return _apply_locked(conn, dom, change, host, info.state, mac_range)


def _apply_locked(
    conn: Any, dom: Any, change: SettingsChange, host: HostInfo, state: VmState, mac_range: MacRange | None
) -> list[str]:
    original = editable_xml(dom)
    current = domxml.parse_domain_xml(original)
    checkpoints = None
    if change.checkpoint_policy is not None:
        qemu_user = local_qemu_user(conn)
        require_local(qemu_user is not None)
        checkpoints = CheckpointSettings.from_domain_xml(original, qemu_user)
    storage = vm_storage.current_layout(dom) if change.storage is not None else None
    network = network_settings(conn, dom, mac_range) if change.adapters is not None else None
    names = inventory.vm_names(conn)
    problems = change_problems(current, state, change, host, names, checkpoints, storage, network)
    if problems:
        raise ValidationError(" ".join(problems))
    undo = _Undo()
    try:
        _rename(conn, dom, change, current, undo)
        _define(conn, dom, change, original, undo)
        stored = _apply_storage(conn, dom, change, undo)
        connected = _apply_adapters(conn, dom, change, mac_range, undo)
        _set_autostart(dom, change, undo)
        moved = _update_live(dom, change, undo) if state.is_active else []
    except Exception:
        undo.run()
        raise
    return apply_notes(current, state, change) + stored + connected + moved


def _rename(conn: Any, dom: Any, change: SettingsChange, current: VmConfig, undo: _Undo) -> None:
    if change.name is None or change.name == current.name:
        return
    operations.rename(conn, dom, change.name)
    undo.push("rename", lambda: dom.rename(current.name, 0))


def _define(conn: Any, dom: Any, change: SettingsChange, original: str, undo: _Undo) -> None:
    """Define the whole edited configuration in one call (read again: a rename changed it)."""
    fresh = editable_xml(dom)
    edited = edit_config_xml(fresh, change)
    if edited is fresh:
        return
    with libvirt_errors(f"Saving the settings of '{dom.name()}'"):
        conn.defineXML(edited)
    undo.push("definition", lambda: conn.defineXML(_with_name(original, dom.name())))


def _apply_storage(conn: Any, dom: Any, change: SettingsChange, undo: _Undo) -> list[str]:
    """Controllers and drives: after the definition, so that undoing runs the other way round
    (hot-added disks are detached from the running VM and its configuration before the old
    configuration is defined again)."""
    if change.storage is None:
        return []
    notes, undo_storage = vm_storage.apply_layout_undoable(conn, dom, change.storage)
    undo.push("storage", undo_storage)
    return notes


def _apply_adapters(
    conn: Any, dom: Any, change: SettingsChange, mac_range: MacRange | None, undo: _Undo
) -> list[str]:
    """Network adapters: after the storage, for the same reason (undone before the definition)."""
    if change.adapters is None:
        return []
    notes, undo_adapters = vm_network.apply_adapters_undoable(conn, dom, change.adapters, mac_range)
    undo.push("network adapters", undo_adapters)
    return notes


def _with_name(xml: str, name: str) -> str:
    root = SafeET.fromstring(xml)
    element = root.find("name")
    if element is not None:
        element.text = name
    return ET.tostring(root, encoding="unicode")


def _set_autostart(dom: Any, change: SettingsChange, undo: _Undo) -> None:
    """Automatic Start Action "Start" is libvirt's autostart; the other actions clear it."""
    if change.start_action is None:
        return
    wanted = 1 if change.start_action is StartAction.START else 0
    with libvirt_errors(f"Setting the automatic start of '{dom.name()}'"):
        before = int(dom.autostart())
        if before == wanted:
            return
        dom.setAutostart(wanted)
    undo.push("autostart", lambda: dom.setAutostart(before))


def _update_live(dom: Any, change: SettingsChange, undo: _Undo) -> list[str]:
    """Mirror notes and metadata into the running VM (the details pane reads the live XML), and
    keep its memory inside the Dynamic Memory range; returns a note when the memory moved."""
    with libvirt_errors(f"Updating the running '{dom.name()}'"):
        live_xml = str(dom.XMLDesc(0))
        if change.notes is not None:
            _set_live_notes(dom, change.notes)
            old_notes = domxml.parse_domain_xml(live_xml).notes
            undo.push("live notes", lambda: _set_live_notes(dom, old_notes))
        element = live_metadata_xml(live_xml, change)
        old_element = metadata_element_xml(live_xml)
        if element is not None and element != old_element:
            _set_live_metadata(dom, element)
            if old_element is not None:
                undo.push("live metadata", lambda: _set_live_metadata(dom, old_element))
        return _fit_balloon(dom, change.memory) if change.memory is not None else []


def _set_live_notes(dom: Any, notes: str) -> None:
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_DESCRIPTION,
        notes or None,
        None,
        None,
        libvirt.VIR_DOMAIN_AFFECT_LIVE,
    )


def _set_live_metadata(dom: Any, element: str) -> None:
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        element,
        domxml.METADATA_PREFIX,
        domxml.METADATA_NS,
        libvirt.VIR_DOMAIN_AFFECT_LIVE,
    )


def _fit_balloon(dom: Any, memory: MemoryConfig) -> list[str]:
    """Move the running VM's memory into the new Dynamic Memory range when it lies outside."""
    _state, live_max_kib, current_kib, *_rest = dom.info()
    target = balloon_target_kib(memory, int(live_max_kib), int(current_kib))
    if target is None:
        return []
    dom.setMemoryFlags(target, libvirt.VIR_DOMAIN_AFFECT_LIVE)
    return [
        f"The memory of the running virtual machine was moved to {target // MIB_KIB} MB to lie "
        "within the new range."
    ]
