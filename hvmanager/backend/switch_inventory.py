"""Reading the virtual switches of a server: every libvirt network, as a :class:`SwitchInfo`.

A switch's settings are read from the network's persistent definition (what the user chose, even
when a change waits for the network's next start); whether it runs and its bridge come with it.
"""

from __future__ import annotations

from typing import Any

import libvirt

from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import SwitchInfo
from hvmanager.backend.switch_xml import parse_network


def definition_xml(net: Any) -> str:
    """A network's persistent definition (the live one for a transient network)."""
    flags = libvirt.VIR_NETWORK_XML_INACTIVE if net.isPersistent() else 0
    return str(net.XMLDesc(flags))


def switch_info(net: Any) -> SwitchInfo:
    """One network as a switch (two calls)."""
    return parse_network(definition_xml(net), active=bool(net.isActive()))


def lookup_network(conn: Any, name: str) -> Any:
    """The libvirt network of a switch; HvError when there is none."""
    try:
        return conn.networkLookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_NETWORK:
            raise HvError(f"There is no virtual switch named '{name}'.") from exc
        raise HvError(f"Looking up the virtual switch '{name}' failed: {exc.get_error_message()}") from exc


def list_switches(conn: Any) -> list[SwitchInfo]:
    """Every libvirt network of the server as a switch, sorted by name."""
    with libvirt_errors("Listing the virtual switches"):
        switches = []
        for net in conn.listAllNetworks(0):
            try:
                switches.append(switch_info(net))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_NETWORK:
                    raise  # a network removed meanwhile is simply not listed
    return sorted(switches, key=lambda switch: (switch.name.casefold(), switch.name))


def get_switch(conn: Any, name: str) -> SwitchInfo:
    """One switch by name (HvError "There is no virtual switch named 'x'.")."""
    net = lookup_network(conn, name)
    with libvirt_errors(f"Reading the virtual switch '{name}'"):
        return switch_info(net)
