"""Asking the QEMU guest agent without hanging on it.

A connected agent channel only says that something in the guest opened the port; an agent that
is stopped or stuck never answers, and libvirt waits for it forever by default. Before a
production checkpoint freezes the guest's file systems, the agent is asked for the guest's time
with a bounded wait, and the freeze itself runs under that bound.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import libvirt

from hvmanager.backend.inventory import agent_connected
from hvmanager.backend.models import Heartbeat

AGENT_TIMEOUT_S = 5
HEARTBEAT_TIMEOUT_S = 2


@contextlib.contextmanager
def bounded_agent(dom: Any, seconds: int = AGENT_TIMEOUT_S) -> Iterator[None]:
    """Agent commands of the VM give up after ``seconds`` during the block (libvirt's default after)."""
    try:
        dom.agentSetResponseTimeout(seconds, 0)
    except libvirt.libvirtError:
        yield  # an older libvirt: the wait is not bounded
        return
    try:
        yield
    finally:
        with contextlib.suppress(libvirt.libvirtError):
            dom.agentSetResponseTimeout(libvirt.VIR_DOMAIN_AGENT_RESPONSE_TIMEOUT_DEFAULT, 0)


def _pings(dom: Any, seconds: int) -> bool:
    with bounded_agent(dom, seconds):
        try:
            dom.getTime(0)
        except libvirt.libvirtError:
            return False
    return True


def agent_answers(dom: Any) -> bool:
    """Whether the guest agent is there and answers within ``AGENT_TIMEOUT_S`` (blocking)."""
    return bool(agent_connected(dom)) and _pings(dom, AGENT_TIMEOUT_S)


def heartbeat(dom: Any) -> Heartbeat:
    """The VM's Heartbeat: no channel, no agent, an agent that answers, or one that stopped
    answering (blocking: up to ``HEARTBEAT_TIMEOUT_S``)."""
    connected = agent_connected(dom)
    if connected is None:
        return Heartbeat.NO_CHANNEL
    if not connected:
        return Heartbeat.NO_CONTACT
    return Heartbeat.OK if _pings(dom, HEARTBEAT_TIMEOUT_S) else Heartbeat.LOST
