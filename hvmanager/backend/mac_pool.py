"""The MAC address range new network adapters take their dynamic address from (Global Network
Settings ▸ MAC Address Range), and the addresses the server's VMs already use.

Hyper-V's default range is ``00-15-5D-XX-YY-00`` to ``00-15-5D-XX-YY-FF`` (256 addresses), XX-YY
being the last two bytes of the host's first IPv4 address; the user may choose another range
(``AppSettings.mac_minimum`` / ``mac_maximum``, empty meaning the default). Addresses are written
in lower case with colons, libvirt's form; ``normalize_mac`` also reads Hyper-V's forms
(``00-15-5D-0A-0B-0C``, ``00155D0A0B0C``).
"""

from __future__ import annotations

import fcntl
import ipaddress
import re
import socket
import struct
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree as SafeET

from hvmanager.backend.errors import ValidationError
from hvmanager.backend.network_models import MacRange

if TYPE_CHECKING:
    from hvmanager.backend.settings import AppSettings

HYPERV_OUI = (0x00, 0x15, 0x5D)
_XML_INACTIVE = 2  # libvirt.VIR_DOMAIN_XML_INACTIVE (libvirt is imported only where a server is used:
# the GUI's MAC range page uses this module)
_SEPARATED = re.compile(r"^[0-9a-f]{1,2}([:-])[0-9a-f]{1,2}(\1[0-9a-f]{1,2}){4}$")
_BARE = re.compile(r"^[0-9a-f]{12}$")


# --- addresses ----------------------------------------------------------------------------------


def normalize_mac(text: str) -> str:
    """``text`` as a lower-case, colon-separated MAC address (``00:15:5d:0a:0b:0c``).

    Reads colons, dashes (Hyper-V Manager's form) or twelve bare hex digits (PowerShell's form).
    Raises ``ValidationError`` for anything else.
    """
    value = text.strip().lower()
    if _BARE.match(value):
        parts = [value[i : i + 2] for i in range(0, 12, 2)]
    elif _SEPARATED.match(value):
        parts = [p.zfill(2) for p in re.split("[:-]", value)]
    else:
        raise ValidationError(
            f"'{text.strip()}' is not a MAC address.",
            "Write six bytes in hexadecimal, such as 00-15-5D-0A-0B-0C or 00:15:5d:0a:0b:0c.",
        )
    return ":".join(parts)


def mac_to_int(mac: str) -> int:
    """The 48-bit number of a (normalized) MAC address."""
    return int(mac.replace(":", ""), 16)


def int_to_mac(number: int) -> str:
    """The MAC address of a 48-bit number."""
    raw = f"{number:012x}"
    return ":".join(raw[i : i + 2] for i in range(0, 12, 2))


def is_multicast(mac: str) -> bool:
    """Whether the address is a group (multicast or broadcast) address: the low bit of its first byte."""
    return bool(int(mac[:2], 16) & 1)


def unicast_problem(mac: str, what: str = "The MAC address") -> str | None:
    """Why a (normalized) address can't be a network adapter's own, or None."""
    if is_multicast(mac):
        return (
            f"{what} {mac} is a multicast address (the first byte is odd): an adapter needs a "
            "unicast address."
        )
    if mac_to_int(mac) == 0:
        return f"{what} {mac} is all zeros, which no adapter may have."
    return None


# --- the range ----------------------------------------------------------------------------------


_SIOCGIFADDR = 0x8915  # <linux/sockios.h>: an interface's (primary) IPv4 address


def _first_host_ipv4() -> ipaddress.IPv4Address | None:
    """The host's first IPv4 address that is not loopback or link-local (lowest interface index).

    Read with one ioctl per interface rather than netlink: it is cheap and safe on any thread,
    including the GUI thread, where pyroute2's synchronous API clashes with the running loop.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _index, name in sorted(socket.if_nameindex()):
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
            except OSError:  # no IPv4 address on this interface
                continue
            address = ipaddress.IPv4Address(reply[20:24])
            if not (address.is_loopback or address.is_link_local):
                return address
    return None


def default_range() -> MacRange:
    """Hyper-V's default range: ``00-15-5D-XX-YY-00`` to ``-FF``, XX-YY the last two bytes of the
    host's first IPv4 address (``00-00`` when the host has none)."""
    try:
        address = _first_host_ipv4()
    except OSError:
        address = None
    third, fourth = address.packed[2:] if address is not None else (0, 0)
    prefix = (*HYPERV_OUI, third, fourth)
    return MacRange(int_to_mac(_bytes_to_int((*prefix, 0x00))), int_to_mac(_bytes_to_int((*prefix, 0xFF))))


def _bytes_to_int(parts: tuple[int, ...]) -> int:
    return int.from_bytes(bytes(parts), "big")


def configured_range(settings: AppSettings) -> MacRange:
    """The range in force: the user's minimum and maximum, each defaulting to Hyper-V's default.

    Raises ``ValidationError`` when a saved bound is not a MAC address.
    """
    low, high = settings.mac_minimum.strip(), settings.mac_maximum.strip()
    if low and high:
        return MacRange(normalize_mac(low), normalize_mac(high))
    default = default_range()  # probed only when a bound is left to the default
    return MacRange(
        normalize_mac(low) if low else default.minimum,
        normalize_mac(high) if high else default.maximum,
    )


def range_problems(mac_range: MacRange) -> list[str]:
    """What is wrong with a MAC address range (empty when it can be used).

    Both ends must be unicast MAC addresses with the same first three bytes (the vendor prefix, so
    no address of the range is a multicast one), the minimum not above the maximum.
    """
    bounds = []
    for label, text in (("minimum", mac_range.minimum), ("maximum", mac_range.maximum)):
        try:
            mac = normalize_mac(text)
        except ValidationError as exc:
            return [f"The {label} of the MAC address range: {exc.message}"]
        problem = unicast_problem(mac, f"The {label} of the MAC address range,")
        if problem:
            return [problem]
        bounds.append(mac)
    low, high = bounds
    if low[:8] != high[:8]:
        return [
            f"The minimum ({low}) and maximum ({high}) of the MAC address range must share their "
            "first three bytes (the vendor prefix)."
        ]
    if mac_to_int(low) > mac_to_int(high):
        return [f"The minimum of the MAC address range ({low}) is above its maximum ({high})."]
    return []


def range_size(mac_range: MacRange) -> int:
    """How many addresses the (valid) range holds."""
    return mac_to_int(normalize_mac(mac_range.maximum)) - mac_to_int(normalize_mac(mac_range.minimum)) + 1


# --- addresses in use ---------------------------------------------------------------------------


def macs_in_xml(xml: str) -> list[str]:
    """The MAC addresses of a domain XML's network adapters (normalized; unreadable ones left out)."""
    found = []
    for mac in SafeET.fromstring(xml).findall("devices/interface/mac"):
        try:
            found.append(normalize_mac(mac.get("address", "")))
        except ValidationError:
            continue
    return found


def mac_owners(conn: Any) -> dict[str, str]:
    """Every adapter MAC address of the server's VMs (persistent and running configuration) with the
    name of the VM using it (blocking)."""
    from hvmanager.backend.connection import libvirt_errors  # libvirt only where a server is used

    owners: dict[str, str] = {}
    with libvirt_errors("Listing the MAC addresses in use"):
        for dom in conn.listAllDomains(0):
            for mac in _macs_of(dom):
                owners.setdefault(mac, dom.name())
    return owners


def _macs_of(dom: Any) -> list[str]:
    """A domain's MAC addresses; none when it was deleted meanwhile."""
    import libvirt

    try:
        xmls = [dom.XMLDesc(0)]
        if dom.isActive() and dom.isPersistent():
            xmls.append(dom.XMLDesc(_XML_INACTIVE))
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return []
        raise
    return [mac for xml in xmls for mac in macs_in_xml(xml)]


def used_macs(conn: Any) -> set[str]:
    """The MAC addresses the server's VMs use, running or not (blocking)."""
    return set(mac_owners(conn))


def next_free_mac(mac_range: MacRange, used: set[str]) -> str:
    """The lowest address of the range that is not in ``used``.

    Raises ``ValidationError`` when the range is invalid or every address of it is taken.
    """
    problems = range_problems(mac_range)
    if problems:
        raise ValidationError(problems[0], "Correct the range in Virtual Switch Manager ▸ MAC Address Range.")
    low = mac_to_int(normalize_mac(mac_range.minimum))
    high = mac_to_int(normalize_mac(mac_range.maximum))
    taken = {mac_to_int(m) for m in used}
    for number in range(low, high + 1):
        if number not in taken:
            return int_to_mac(number)
    raise ValidationError(
        f"Every address of the MAC address range {int_to_mac(low)} - {int_to_mac(high)} "
        f"({high - low + 1} addresses) is in use.",
        "Widen the range in Virtual Switch Manager ▸ MAC Address Range, or give the adapter a "
        "static address.",
    )
