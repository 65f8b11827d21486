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

AGENT_TIMEOUT_S = 5


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


def agent_answers(dom: Any) -> bool:
    """Whether the guest agent is there and answers within ``AGENT_TIMEOUT_S`` (blocking)."""
    if not agent_connected(dom):
        return False
    with bounded_agent(dom):
        try:
            dom.getTime(0)
        except libvirt.libvirtError:
            return False
    return True
