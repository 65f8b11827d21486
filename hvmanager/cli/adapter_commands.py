"""hvctl's verbs for VMs' network adapters (Hyper-V's ``*-VMNetworkAdapter`` cmdlets): their command
lines. The handlers are in ``adapter_verbs``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hvmanager.cli import adapter_verbs
from hvmanager.cli.context import VerbMaker
from hvmanager.cli.network_verbs import declare, not_negative

CommonOptions = Callable[[argparse.ArgumentParser], None]

_ADAPTER_CHOICE = "\n\nWith several adapters, --mac or --name says which (a name several share is refused)."


def _vm_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vm-name", required=True, metavar="VM", help="the virtual machine (name or UUID)")


def _adapter_choice(parser: argparse.ArgumentParser, required: bool = False) -> None:
    choice = parser.add_mutually_exclusive_group(required=required)
    choice.add_argument("--mac", metavar="MAC", help="the adapter with this MAC address")
    choice.add_argument("--name", metavar="NAME", help="the adapter with this name")


# --- the verbs ----------------------------------------------------------------------------------


def add_verbs(sub: Any, verb: VerbMaker, common_options: CommonOptions) -> None:
    """Declare the network adapter verbs on hvctl's sub-command parser."""
    p = declare(
        sub,
        verb,
        "get-vmnetworkadapter",
        "List VMs' network adapters (Get-VMNetworkAdapter).",
        """\
Prints Name, VMName, SwitchName (empty: Not connected), MacAddress, Status (of a running VM:
Ok, or Restart needed when it still runs with older settings) and IPAddresses (what
libvirt knows: the switch's DHCP leases, the host's ARP table, the guest agent).

With --json, prints a list of objects with: vm_name, vm_uuid, name, switch_name,
connected, mac_address, dynamic_mac_address_enabled, is_legacy, vmq_enabled, queues,
minimum_bandwidth_mbps, maximum_bandwidth_mbps, vlan_id, status and ip_addresses.""",
        adapter_verbs.get_vmnetworkadapter,
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--vm-name", nargs="+", metavar="VM", help="these VMs (names, UUIDs or wildcards)")
    which.add_argument("--all", action="store_true", help="every VM of the server")
    common_options(p)

    p = declare(
        sub,
        verb,
        "add-vmnetworkadapter",
        "Add a network adapter to a VM (Add-VMNetworkAdapter).",
        """\
Added live too when the VM runs (a legacy adapter only while it is off). Its MAC address
comes from the MAC address range (Virtual Switch Manager > MAC Address Range) unless
--static-mac-address is given. A VM has at most 64 network adapters and 4 legacy ones
(Generation 1 only). Prints the adapter as get-vmnetworkadapter does.

Example:
  hvctl add-vmnetworkadapter --vm-name web1 --switch-name lab""",
        adapter_verbs.add_vmnetworkadapter,
    )
    _vm_option(p)
    p.add_argument(
        "--switch-name", metavar="SWITCH", help="connect it to this switch (default: Not connected)"
    )
    p.add_argument(
        "--is-legacy", action="store_true", help="an emulated legacy adapter (DEC 21140; Generation 1)"
    )
    p.add_argument("--static-mac-address", metavar="MAC", help="e.g. 00-15-5D-0A-0B-0C or 00:15:5d:0a:0b:0c")
    p.add_argument("--name", metavar="NAME", help="its name (default: Network Adapter)")
    common_options(p)

    p = declare(
        sub,
        verb,
        "remove-vmnetworkadapter",
        "Remove a network adapter (Remove-VMNetworkAdapter).",
        """\
Removed live too when the VM runs.""",
        adapter_verbs.remove_vmnetworkadapter,
    )
    _vm_option(p)
    _adapter_choice(p, required=True)
    common_options(p)

    p = declare(
        sub,
        verb,
        "connect-vmnetworkadapter",
        "Connect a network adapter to a switch, or disconnect it.",
        """\
Connect-VMNetworkAdapter and Disconnect-VMNetworkAdapter: --switch-name connects the adapter,
--disconnect leaves it Not connected; a running VM is reconnected live."""
        + _ADAPTER_CHOICE,
        adapter_verbs.connect_vmnetworkadapter,
    )
    _vm_option(p)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--switch-name", metavar="SWITCH", help="the switch to connect it to")
    target.add_argument("--disconnect", action="store_true", help="leave it Not connected")
    _adapter_choice(p)
    common_options(p)

    p = declare(
        sub,
        verb,
        "set-vmnetworkadapter",
        "Change a network adapter (Set-VMNetworkAdapter).",
        """\
--vmq-queues N gives the adapter N receive queues (virtio-net multiqueue; the guest uses
as many as it has processors; 0 turns VMQ off); bandwidths are in Mbit/s (0 = no limit);
--vlan-id tags its traffic (0 = none; needs VLAN filtering in the host's kernel).
Changes that can't be made while the VM runs apply at its next start (Status: Restart
needed)."""
        + _ADAPTER_CHOICE
        + """

Example:
  hvctl set-vmnetworkadapter --vm-name web1 --vmq-queues 4 --maximum-bandwidth 100""",
        adapter_verbs.set_vmnetworkadapter,
    )
    _vm_option(p)
    _adapter_choice(p)
    mac = p.add_mutually_exclusive_group()
    mac.add_argument("--static-mac-address", metavar="MAC", help="give it this MAC address")
    mac.add_argument("--dynamic-mac-address", action="store_true", help="its address belongs to the range")
    p.add_argument("--vmq-queues", type=not_negative, metavar="N", help="receive queues (0 = VMQ off)")
    p.add_argument("--minimum-bandwidth", type=not_negative, metavar="MBPS", help="reserved bandwidth")
    p.add_argument("--maximum-bandwidth", type=not_negative, metavar="MBPS", help="bandwidth limit")
    p.add_argument("--vlan-id", type=not_negative, metavar="ID", help="VLAN 1-4094 (0 = none)")
    p.add_argument("--new-name", metavar="NAME", help="rename the adapter")
    common_options(p)
