"""Whether the host kernel can do what some switch and adapter settings need, probed for real.

Each probe tries the very thing on a throw-away device in a throw-away network namespace (so the
host's own links are never touched) and turns a refusal into a message that names what is
missing. The answer is cached for the life of the process: a kernel does not grow features.

- :func:`vlan_problem`: 802.1Q VLAN interfaces (the management OS's VLAN ID on a switch).
- :func:`adapter_vlan_problem`: VLAN filtering on Linux bridges (a VM adapter's VLAN ID).
- :func:`bandwidth_problem`: the queueing disciplines libvirt uses for bandwidth management (an
  htb tree with sfq leaves: minimum and maximum bandwidth alike).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

_PROBE_DEVICE = "hvprobe0"
_PROBING = threading.Lock()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, NetlinkError):
        # With extended acks the kernel's own words ("Unknown device type") come as the second arg.
        text = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else ""
        return text or os.strerror(exc.code)
    return str(exc) or type(exc).__name__


def _in_throwaway_namespace(attempt: Callable[[Any], None]) -> str | None:
    """Run ``attempt(ipr)`` in a new network namespace; the refusal's reason, or None when it worked.

    Raises OSError when the namespace itself cannot be made (not root, no netns support).
    """
    name = f"hvmanager-probe-{os.getpid()}"
    if name in netns.listnetns():
        netns.remove(name)  # left by a process that had this id and died mid-probe
    try:
        with IPRoute(netns=name, ext_ack=True) as ipr:
            try:
                attempt(ipr)
            except (NetlinkError, OSError) as exc:
                return _reason(exc)
    finally:
        if name in netns.listnetns():
            netns.remove(name)
    return None


def _off_any_event_loop(attempt: Callable[[Any], None]) -> str | None:
    """``_in_throwaway_namespace(attempt)``, on a thread of its own when this thread runs an asyncio
    loop (the GUI thread under qasync): pyroute2's synchronous API cannot run inside one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _in_throwaway_namespace(attempt)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hvmanager-probe") as pool:
        return pool.submit(_in_throwaway_namespace, attempt).result()


def _probe(attempt: Callable[[Any], None], missing: str, action: str) -> str | None:
    try:
        with _PROBING:  # one namespace name per process: probes from two threads take turns
            reason = _off_any_event_loop(attempt)
    except (NetlinkError, OSError) as exc:
        return f"{missing} could not be checked: making a network namespace failed with '{_reason(exc)}'."
    return None if reason is None else f"{missing}: {action} failed with '{reason}'."


def _make_vlan_link(ipr: Any) -> None:
    ipr.link("add", ifname=_PROBE_DEVICE, kind="veth", peer=f"{_PROBE_DEVICE}p")
    parent = ipr.link_lookup(ifname=_PROBE_DEVICE)[0]
    ipr.link("add", ifname=f"{_PROBE_DEVICE}.2", kind="vlan", link=parent, vlan_id=2)


def _filter_bridge_vlans(ipr: Any) -> None:
    ipr.link("add", ifname=_PROBE_DEVICE, kind="bridge")
    ipr.link("set", index=ipr.link_lookup(ifname=_PROBE_DEVICE)[0], kind="bridge", br_vlan_filtering=1)


def _shape_bridge(ipr: Any) -> None:
    # What libvirt does on a network with <bandwidth> (virNetDevBandwidthSet): htb, then sfq leaves.
    ipr.link("add", ifname=_PROBE_DEVICE, kind="bridge")
    index = ipr.link_lookup(ifname=_PROBE_DEVICE)[0]
    ipr.link("set", index=index, state="up")
    ipr.tc("add", "htb", index=index, handle="1:", default=2)
    ipr.tc("add-class", "htb", index=index, handle="1:1", parent="1:", rate="10mbit")
    ipr.tc("add", "sfq", index=index, handle="2:", parent="1:1", perturb=10)


@functools.cache
def vlan_problem() -> str | None:
    """None when the kernel makes 802.1Q VLAN interfaces; else why VLAN identification is impossible."""
    return _probe(
        _make_vlan_link,
        "This host's kernel has no 802.1Q VLAN support (module 8021q)",
        "creating a VLAN interface",
    )


@functools.cache
def adapter_vlan_problem() -> str | None:
    """None when Linux bridges can filter VLANs; else why a VM adapter cannot have a VLAN ID."""
    return _probe(
        _filter_bridge_vlans,
        "This host's kernel bridges cannot filter VLANs (CONFIG_BRIDGE_VLAN_FILTERING)",
        "turning vlan_filtering on for a bridge",
    )


@functools.cache
def bandwidth_problem() -> str | None:
    """None when the kernel has the queueing disciplines bandwidth management needs; else what is missing."""
    return _probe(
        _shape_bridge,
        "This host's kernel lacks the traffic-control queueing disciplines libvirt needs to "
        "limit or guarantee bandwidth (htb with sfq, modules sch_htb and sch_sfq)",
        "adding them to a bridge",
    )
