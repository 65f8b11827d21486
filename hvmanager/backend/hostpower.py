"""Automatic Start and Stop Actions: what happens to each VM when the host starts or stops.

Hyper-V applies them when its management service starts or stops. Here ``hvctl host-shutdown``
and ``hvctl host-startup`` apply them, called by the host's shutdown and boot (the systemd unit
``resources/hvmanager-vms.service`` does that). "Always start" is also libvirt's autostart (set by
the Settings dialog), so libvirtd starts those VMs even without hvmanager.

Only VMs with hvmanager metadata are handled; others are libvirt's business (libvirt-guests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import libvirt

from hvmanager.backend import operations
from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.domxml import edit_running_at_host_stop, parse_domain_xml
from hvmanager.backend.errors import HvError
from hvmanager.backend.inventory import domain_xml, vm_info
from hvmanager.backend.models import StartAction, StopAction, VmConfig, VmState

SHUTDOWN_TIMEOUT_S = 300  # Hyper-V gives a guest five minutes to shut down
POLL_S = 0.5


@dataclass(frozen=True)
class HostActionResult:
    """What was done to one VM."""

    name: str
    action: str
    ok: bool
    detail: str = ""


def _managed(conn: Any, names: Collection[str] | None) -> list[tuple[Any, VmConfig]]:
    found = []
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_PERSISTENT):
        if names is not None and dom.name() not in names:
            continue
        try:
            config = parse_domain_xml(domain_xml(dom))
        except HvError:
            continue
        if config.managed:
            found.append((dom, config))
    return found


def _remember_running(conn: Any, dom: Any, running: bool) -> None:
    with libvirt_errors(f"Recording the state of '{dom.name()}'"):
        conn.defineXML(edit_running_at_host_stop(domain_xml(dom), running))


def _wait_off(dom: Any, timeout_s: float, sleep: Callable[[float], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not dom.isActive():
            return True
        sleep(POLL_S)
    return not dom.isActive()


def _stop_one(dom: Any, action: StopAction, timeout_s: float, sleep: Callable[[float], None]) -> str:
    if action is StopAction.SAVE:
        operations.save(dom)
        return "saved"
    if action is StopAction.TURN_OFF:
        operations.turn_off(dom)
        return "turned off"
    if vm_info(dom).state is VmState.PAUSED:
        operations.resume(dom)
    operations.shut_down(dom)
    if _wait_off(dom, timeout_s, sleep):
        return "shut down"
    operations.turn_off(dom)
    return f"turned off: the guest did not shut down within {timeout_s:.0f} s"


def host_shutdown(
    conn: Any,
    timeout_s: float = SHUTDOWN_TIMEOUT_S,
    sleep: Callable[[float], None] = time.sleep,
    names: Collection[str] | None = None,
) -> list[HostActionResult]:
    """Apply the Automatic Stop Action of every hvmanager VM (or of those ``names``); remember
    which ones were running."""
    results = []
    for dom, config in _managed(conn, names):
        active = bool(dom.isActive())
        try:
            _remember_running(conn, dom, active)
            if not active:
                continue
            done = _stop_one(dom, config.stop_action, timeout_s, sleep)
            results.append(HostActionResult(config.name, config.stop_action.value, True, done))
        except HvError as exc:
            results.append(HostActionResult(config.name, config.stop_action.value, False, exc.message))
    return results


def _wants_start(config: VmConfig) -> bool:
    if config.start_action is StartAction.START:
        return True
    return config.start_action is StartAction.START_IF_RUNNING and config.running_at_host_stop


def host_startup(
    conn: Any,
    decision: AccelDecision | None = None,
    sleep: Callable[[float], None] = time.sleep,
    honour_delays: bool = True,
    names: Collection[str] | None = None,
) -> list[HostActionResult]:
    """Apply the Automatic Start Action of every hvmanager VM (or of those ``names``), each after
    its startup delay."""
    candidates = sorted(_managed(conn, names), key=lambda pair: pair[1].start_delay_s)
    begun = time.monotonic()
    results = []
    for dom, config in candidates:
        try:
            if config.running_at_host_stop:
                _remember_running(conn, dom, False)
            if not _wants_start(config) or dom.isActive():
                continue
            if honour_delays:
                sleep(max(0.0, config.start_delay_s - (time.monotonic() - begun)))
            operations.start(conn, dom, decision)
            results.append(HostActionResult(config.name, config.start_action.value, True, "started"))
        except HvError as exc:
            results.append(HostActionResult(config.name, config.start_action.value, False, exc.message))
    return results
