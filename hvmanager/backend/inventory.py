"""Listing VMs and reading one VM's state and configuration (blocking libvirt calls).

The whole list costs one bulk stats call for the states plus one call per VM that is off (to see
whether it has a saved state); names and UUIDs come with the domain objects.
"""

from __future__ import annotations

from typing import Any

import libvirt

from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.domxml import agent_channel_state, parse_domain_xml
from hvmanager.backend.models import VmConfig, VmInfo, VmState

_STATE_MAP = {
    libvirt.VIR_DOMAIN_NOSTATE: VmState.OTHER,
    libvirt.VIR_DOMAIN_RUNNING: VmState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: VmState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: VmState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: VmState.STOPPING,
    libvirt.VIR_DOMAIN_SHUTOFF: VmState.OFF,
    libvirt.VIR_DOMAIN_CRASHED: VmState.OFF,
    libvirt.VIR_DOMAIN_PMSUSPENDED: VmState.PAUSED,
}

_PAUSED_REASONS = {
    libvirt.VIR_DOMAIN_PAUSED_IOERROR: "Paused-Critical: a disk write failed (is the disk full?)",
    libvirt.VIR_DOMAIN_PAUSED_SAVE: "Saving",
    libvirt.VIR_DOMAIN_PAUSED_SNAPSHOT: "Taking a checkpoint",
    libvirt.VIR_DOMAIN_PAUSED_MIGRATION: "Migrating",
    libvirt.VIR_DOMAIN_PAUSED_STARTING_UP: "Starting",
}

_SHUTOFF_REASONS = {
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "The guest crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "Failed to start",
}


def map_state(state: int, reason: int, has_saved_state: bool) -> tuple[VmState, str]:
    """The Hyper-V state and a status text for a libvirt state and reason."""
    vm_state = _STATE_MAP.get(state, VmState.OTHER)
    if vm_state is VmState.OFF and has_saved_state:
        return VmState.SAVED, ""
    if state == libvirt.VIR_DOMAIN_PAUSED:
        return vm_state, _PAUSED_REASONS.get(reason, "")
    if state == libvirt.VIR_DOMAIN_SHUTOFF:
        return vm_state, _SHUTOFF_REASONS.get(reason, "")
    if state == libvirt.VIR_DOMAIN_CRASHED:
        return vm_state, "The guest crashed"
    return vm_state, ""


def _saved(dom: Any, state: int) -> bool:
    if state not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_CRASHED):
        return False
    try:
        return bool(dom.hasManagedSaveImage(0))
    except libvirt.libvirtError:
        return False


def vm_info(dom: Any) -> VmInfo:
    """One VM's row (blocking: two calls)."""
    with libvirt_errors("Reading the state of a virtual machine"):
        state, reason = dom.state(0)
        persistent = bool(dom.isPersistent())
    saved = _saved(dom, state)
    vm_state, text = map_state(state, reason, saved)
    return VmInfo(dom.UUIDString(), dom.name(), vm_state, saved, persistent, text)


def list_vms(conn: Any) -> list[VmInfo]:
    """Every VM of the server, in libvirt's order."""
    with libvirt_errors("Listing the virtual machines"):
        records = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
    infos = []
    for dom, stats in records:
        state = int(stats.get("state.state", libvirt.VIR_DOMAIN_NOSTATE))
        reason = int(stats.get("state.reason", 0))
        saved = _saved(dom, state)
        vm_state, text = map_state(state, reason, saved)
        try:
            persistent = bool(dom.isPersistent())
        except libvirt.libvirtError:
            continue  # the domain vanished while we listed
        infos.append(VmInfo(dom.UUIDString(), dom.name(), vm_state, saved, persistent, text))
    return infos


def vm_config(dom: Any, inactive: bool = False) -> VmConfig:
    """A VM's configuration: the running one, or with ``inactive`` the one for its next start."""
    flags = libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0
    with libvirt_errors("Reading the configuration of a virtual machine"):
        return parse_domain_xml(dom.XMLDesc(flags))


def domain_xml(dom: Any, inactive: bool = True) -> str:
    """A VM's domain XML (by default the persistent definition, for editing).

    It includes secrets (``VIR_DOMAIN_XML_SECURE``): XML defined again without them would drop
    the VM's console password.
    """
    flags = libvirt.VIR_DOMAIN_XML_SECURE | (libvirt.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
    with libvirt_errors("Reading the configuration of a virtual machine"):
        return str(dom.XMLDesc(flags))


def vm_names(conn: Any) -> frozenset[str]:
    """The names of every VM of the server."""
    with libvirt_errors("Listing the virtual machines"):
        return frozenset(dom.name() for dom in conn.listAllDomains(0))


def network_names(conn: Any) -> tuple[str, ...]:
    """The libvirt networks (virtual switches) of the server, sorted."""
    with libvirt_errors("Listing the virtual switches"):
        return tuple(sorted(net.name() for net in conn.listAllNetworks(0)))


def agent_connected(dom: Any) -> bool | None:
    """Heartbeat: whether the guest agent channel is connected (None when there is no channel)."""
    try:
        return agent_channel_state(dom.XMLDesc(0))
    except libvirt.libvirtError:
        return None


def interface_addresses(dom: Any) -> dict[str, list[str]]:
    """IP addresses per MAC, from DHCP leases or the guest agent (empty when unknown)."""
    found: dict[str, list[str]] = {}
    for source in (
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
        libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
    ):
        try:
            ifaces = dom.interfaceAddresses(source, 0)
        except libvirt.libvirtError:
            continue
        for iface in ifaces.values():
            mac = (iface.get("hwaddr") or "").lower()
            for addr in iface.get("addrs") or []:
                found.setdefault(mac, []).append(f"{addr['addr']}/{addr['prefix']}")
        if found:
            break
    return found
