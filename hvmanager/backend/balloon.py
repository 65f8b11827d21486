"""Dynamic Memory: move each running VM's memory between its minimum and maximum by demand.

Hyper-V's balancer gives a VM what its guest uses plus a buffer (20 % by default) within the
range set in Settings ▸ Memory. Here the guest's virtio balloon reports what it uses (its
statistics every 5 s, enabled in every hvmanager VM) and ``rebalance`` sets the balloon target.
``hvctl balance-memory`` runs it, once or as a service (``resources/hvmanager-memory.service``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import libvirt

from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.domxml import parse_domain_xml
from hvmanager.backend.limits import MEMORY_STEP_MIB
from hvmanager.backend.models import MemoryConfig

BUFFER_PERCENT = 20
MIN_CHANGE_MIB = 16  # smaller moves are not worth disturbing the guest for
MIN_CHANGE_SHARE = 0.05


@dataclass(frozen=True)
class BalloonMove:
    """A VM's memory moved from ``current_mib`` to ``target_mib`` (its guest uses ``demand_mib``)."""

    name: str
    current_mib: int
    demand_mib: int
    target_mib: int


def balloon_target_mib(
    memory: MemoryConfig, demand_mib: int, current_mib: int, buffer_percent: int = BUFFER_PERCENT
) -> int | None:
    """The memory a dynamic-memory VM should have now, or None to leave it as it is."""
    if not memory.dynamic:
        return None
    minimum = memory.minimum_mib or memory.startup_mib
    maximum = memory.maximum_mib or memory.startup_mib
    wanted = math.ceil(demand_mib * (100 + buffer_percent) / 100)
    wanted += -wanted % MEMORY_STEP_MIB
    target = max(minimum, min(maximum, wanted))
    if abs(target - current_mib) < max(MIN_CHANGE_MIB, current_mib * MIN_CHANGE_SHARE):
        return None
    return target


def _demand_mib(stats: dict[str, Any]) -> int | None:
    available = stats.get("balloon.available")
    spare = stats.get("balloon.usable", stats.get("balloon.unused"))
    if available is None or spare is None:
        return None  # no balloon driver in the guest, or no statistics yet
    return max(0, int(available) - int(spare)) // 1024


def rebalance(conn: Any, buffer_percent: int = BUFFER_PERCENT) -> list[BalloonMove]:
    """One pass over the running VMs with dynamic memory: set each balloon to demand + buffer."""
    with libvirt_errors("Reading memory figures"):
        records = conn.getAllDomainStats(
            libvirt.VIR_DOMAIN_STATS_BALLOON,
            libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_RUNNING
            | libvirt.VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT,
        )
    moves = []
    for dom, stats in records:
        demand, current = _demand_mib(stats), stats.get("balloon.current")
        if demand is None or current is None:
            continue
        try:
            memory = parse_domain_xml(dom.XMLDesc(0)).memory
        except libvirt.libvirtError:
            continue  # it stopped meanwhile
        target = balloon_target_mib(memory, demand, int(current) // 1024, buffer_percent)
        if target is None:
            continue
        with libvirt_errors(f"Setting the memory of '{dom.name()}'"):
            dom.setMemoryFlags(target * 1024, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        moves.append(BalloonMove(dom.name(), int(current) // 1024, demand, target))
    return moves
