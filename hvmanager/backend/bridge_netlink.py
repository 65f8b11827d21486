"""Two netlink dumps about Linux bridges, parsed for just the attributes the switch views need.

- :func:`bridge_ports`: every bridge port and its bridge (``RTM_GETLINK`` in family
  ``AF_BRIDGE``, what ``bridge link show`` reads), once per live tick;
- :func:`forwarding_database`: one bridge's forwarding database (``RTM_GETNEIGH`` in family
  ``AF_BRIDGE`` filtered by the bridge, what ``bridge fdb show br <bridge>`` reads), for the MAC
  address table.

Both are read with a plain netlink socket and ``struct``, skipping every attribute but the few
needed. pyroute2 decodes every attribute of every message and runs each request through its
asyncio core: about 0.5 ms per device for a link dump (30 ms on a host with 60 devices) and 8 to
16 ms for one bridge's forwarding database, where these take well under a millisecond (figures in
``bench/switch_stats.py``), and the live view has 10 ms a second in all.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

# Layouts and numbers from linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/neighbour.h.
_NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFINFO = struct.Struct("=BxHiII")  # family, (pad), device type, index, flags, change mask
_NDMSG = struct.Struct("=BxxxiHBB")  # family, (pads), index, state, flags, type
_RTA = struct.Struct("=HH")  # attribute length, type
_U32 = struct.Struct("=I")
_RTM_NEWLINK, _RTM_GETLINK, _RTM_NEWNEIGH, _RTM_GETNEIGH = 16, 18, 28, 30
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_DUMP, _NLM_F_DUMP_INTR = 0x1, 0x300, 0x10
_IFLA_IFNAME, _IFLA_MASTER = 3, 10
_NDA_LLADDR, _NDA_MASTER = 2, 9
_NUD_PERMANENT = 0x80  # a bridge's own (local) address
_NLA_TYPE_MASK = 0x3FFF  # without the nested / byte-order flags
_AF_BRIDGE = 7
_SEQUENCE = 1

T = TypeVar("T")


@dataclass(frozen=True)
class FdbEntry:
    """One entry of a bridge's forwarding database: a MAC address behind a port (by index)."""

    mac: str
    port_index: int
    local: bool


def bridge_ports() -> dict[str, tuple[str, int]]:
    """Every bridge port of this host: device name → (its bridge's name, the bridge's index).

    Raises OSError when netlink fails.
    """
    request = _IFINFO.pack(_AF_BRIDGE, 0, 0, 0, 0)
    links = _dump(_RTM_GETLINK, request, _RTM_NEWLINK, _parse_link)
    # The bridges themselves are not in this dump (only with VLAN filter masks): name them by index.
    names: dict[int, str | None] = {}
    ports = {}
    for index, name, master in links:
        if not name or not master or master == index:
            continue
        if master not in names:
            names[master] = _name_of(master)
        bridge = names[master]
        if bridge is not None:
            ports[name] = (bridge, master)
    return ports


def forwarding_database(bridge_index: int) -> list[FdbEntry]:
    """The forwarding database of one bridge (its own entries: not the ports' "self" address
    lists). Raises OSError when netlink fails (ENODEV: no such bridge)."""
    attribute = _RTA.pack(_RTA.size + _U32.size, _IFLA_MASTER) + _U32.pack(bridge_index)
    request = _IFINFO.pack(_AF_BRIDGE, 0, 0, 0, 0) + attribute
    entries = _dump(_RTM_GETNEIGH, request, _RTM_NEWNEIGH, _parse_neighbour)
    return [entry for entry, master in entries if entry is not None and master == bridge_index]


def _name_of(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None  # gone since the dump


def _dump(
    request_type: int, request: bytes, reply_type: int, parse: Callable[[bytes, int, int], T]
) -> list[T]:
    """Send one dump request; parse each reply message of ``reply_type`` (a dump the kernel flags
    as interrupted by a concurrent change is asked for once more)."""
    for _attempt in range(2):
        replies, interrupted = _dump_once(request_type, request, reply_type, parse)
        if not interrupted:
            break
    return replies


def _dump_once(
    request_type: int, request: bytes, reply_type: int, parse: Callable[[bytes, int, int], T]
) -> tuple[list[T], bool]:
    header = _NLMSG.pack(_NLMSG.size + len(request), request_type, _NLM_F_REQUEST | _NLM_F_DUMP, _SEQUENCE, 0)
    replies: list[T] = []
    interrupted = False
    with socket.socket(
        socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
    ) as sock:
        sock.settimeout(5.0)
        sock.bind((0, 0))
        sock.sendto(header + request, (0, 0))
        while True:
            data = sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, kind, flags, sequence, _port = _NLMSG.unpack_from(data, offset)
                if length < _NLMSG.size:
                    raise OSError("malformed netlink message")
                if sequence == _SEQUENCE:
                    interrupted |= bool(flags & _NLM_F_DUMP_INTR)
                    if kind == _NLMSG_DONE:
                        return replies, interrupted
                    if kind == _NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, offset + _NLMSG.size)[0]
                        raise OSError(code, f"netlink dump failed: error {code}")
                    if kind == reply_type:
                        replies.append(parse(data, offset, length))
                offset += (length + 3) & ~3


def _attributes(data: bytes, position: int, end: int) -> list[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute between ``position`` and ``end``."""
    found = []
    while position + _RTA.size <= end:
        size, kind = _RTA.unpack_from(data, position)
        if size < _RTA.size:
            break
        found.append((kind & _NLA_TYPE_MASK, position + _RTA.size, position + size))
        position += (size + 3) & ~3
    return found


def _parse_link(data: bytes, offset: int, length: int) -> tuple[int, str, int]:
    """(index, name, master index) of one ``RTM_NEWLINK`` message."""
    _family, _type, index, _flags, _change = _IFINFO.unpack_from(data, offset + _NLMSG.size)
    name, master = "", 0
    for kind, start, end in _attributes(data, offset + _NLMSG.size + _IFINFO.size, offset + length):
        if kind == _IFLA_IFNAME:
            name = data[start:end].split(b"\0", 1)[0].decode(errors="replace")
        elif kind == _IFLA_MASTER:
            (master,) = _U32.unpack_from(data, start)
    return index, name, master


def _parse_neighbour(data: bytes, offset: int, length: int) -> tuple[FdbEntry | None, int]:
    """(the entry, or None without an address; the master bridge's index, 0 for a "self" entry)
    of one ``RTM_NEWNEIGH`` message."""
    _family, index, state, _flags, _type = _NDMSG.unpack_from(data, offset + _NLMSG.size)
    mac, master = "", 0
    for kind, start, end in _attributes(data, offset + _NLMSG.size + _NDMSG.size, offset + length):
        if kind == _NDA_LLADDR and end - start == 6:
            mac = data[start:end].hex(":")
        elif kind == _NDA_MASTER:
            (master,) = _U32.unpack_from(data, start)
    return (FdbEntry(mac, index, bool(state & _NUD_PERMANENT)) if mac else None), master
