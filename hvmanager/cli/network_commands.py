"""hvctl's networking verbs: the command lines of the virtual switch verbs (Hyper-V's
``*-VMSwitch``) and of ``get-vmswitchstatistics``, here; those of the network adapter verbs
(``*-VMNetworkAdapter``) in ``adapter_commands``. The handlers are in ``switch_verbs``,
``switch_stats_verbs`` and ``adapter_verbs``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hvmanager.cli import adapter_commands, switch_stats_verbs, switch_verbs
from hvmanager.cli.context import VerbMaker
from hvmanager.cli.network_verbs import at_least_one, boolean, declare, not_negative, seconds, switch_type

CommonOptions = Callable[[argparse.ArgumentParser], None]


# --- shared option sets -------------------------------------------------------------------------


def _switch_name(parser: argparse.ArgumentParser, required_help: str) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME", help=required_help)
    parser.add_argument("--name", dest="name_option", metavar="NAME", help="the same, as an option")


def _switch_settings(parser: argparse.ArgumentParser, creating: bool) -> None:
    """The properties New-VMSwitch and Set-VMSwitch share."""
    parser.add_argument(
        "--switch-type",
        type=switch_type,
        metavar="TYPE",
        help=(
            "Private, Internal or NAT (External: give --net-adapter-name)"
            if creating
            else "convert to Private, Internal, External or NAT"
        ),
    )
    parser.add_argument("--notes", metavar="TEXT", help="free text kept with the switch")
    external = parser.add_argument_group("External switches")
    external.add_argument(
        "--net-adapter-name", metavar="ADAPTER", help="the host network adapter it is bound to (eth1, ...)"
    )
    external.add_argument(
        "--allow-management-os",
        type=boolean,
        metavar="true|false",
        help="the host keeps using the adapter through a bridge (default: true); false binds the "
        "VMs with macvtap, and the host can't reach them through this switch",
    )
    internal = parser.add_argument_group("Internal and NAT switches")
    internal.add_argument(
        "--host-address", metavar="A.B.C.D/NN", help="the host's address on the switch, e.g. 192.168.150.1/24"
    )
    internal.add_argument(
        "--dhcp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="give the VMs addresses by DHCP (a NAT switch always does)",
    )
    internal.add_argument(
        "--vlan-id",
        type=not_negative,
        metavar="ID",
        help="the management OS's VLAN, 1-4094 (External and Internal; 0 = none); needs 802.1Q in "
        "the host's kernel",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="confirm binding the adapter that carries the host's default route"
        + ("" if creating else ", and disconnecting the VMs a type change cuts off"),
    )


# --- the verbs ----------------------------------------------------------------------------------


def add_verbs(sub: Any, verb: VerbMaker, common_options: CommonOptions) -> None:
    """Declare this module's verbs on hvctl's sub-command parser."""
    _switch_verbs(sub, verb, common_options)
    adapter_commands.add_verbs(sub, verb, common_options)
    _statistics_verb(sub, verb, common_options)


def _switch_verbs(sub: Any, verb: VerbMaker, common_options: CommonOptions) -> None:
    p = declare(
        sub,
        verb,
        "new-vmswitch",
        "Create a virtual switch (New-VMSwitch).",
        """\
A switch is a libvirt network. Private: VMs of this host talk to each other only.
Internal: the host has an address on it too (--host-address) and may give the VMs addresses
(--dhcp); nothing goes further. NAT (Hyper-V's Default Switch): VMs reach outside through
the host's NAT, with DHCP. External (--net-adapter-name): bound to a host network adapter;
one External switch per adapter. Binding the adapter that carries the host's default route
may cut the host off the network: it needs --force. When anything is wrong (a name in use,
an unknown or bound adapter, an address range another network has, a VLAN the kernel can't
do), nothing is created. Prints the switch as get-vmswitch does.

Examples:
  hvctl new-vmswitch lab --switch-type Internal --host-address 192.168.150.1/24 --dhcp
  hvctl new-vmswitch uplink --net-adapter-name eth1 --allow-management-os false""",
        switch_verbs.new_vmswitch,
    )
    _switch_name(p, "name of the new switch (unique)")
    _switch_settings(p, creating=True)
    p.add_argument(
        "--minimum-bandwidth-mode",
        type=str.capitalize,
        choices=("Absolute", "None"),
        default="None",
        help="Absolute lets adapters reserve a minimum bandwidth on the switch; only chosen at creation",
    )
    common_options(p)

    p = declare(
        sub,
        verb,
        "get-vmswitch",
        "List virtual switches (Get-VMSwitch).",
        """\
Prints Name, SwitchType and NetAdapterInterfaceDescription (the host adapter of an External
switch). NAME may be a wildcard ('lab*'); --switch-type keeps one type.

With --json, prints a list of objects with: name, uuid, switch_type, notes,
net_adapter_name, allow_management_os, host_address, dhcp, vlan_id,
minimum_bandwidth_mode, bridge, active, managed (false for a libvirt network hvmanager did
not make) and connected_adapters (vm_name, mac_address).""",
        switch_verbs.get_vmswitch,
    )
    _switch_name(p, "the switch to show (default: all)")
    p.add_argument("--switch-type", type=switch_type, metavar="TYPE", help="only switches of this type")
    common_options(p)

    p = declare(
        sub,
        verb,
        "set-vmswitch",
        "Change a virtual switch (Set-VMSwitch, Rename-VMSwitch).",
        """\
Renames it (--new-name; the VMs' adapters follow), changes its notes, converts it to another
type (--switch-type, or --net-adapter-name for External) or changes its other properties.
A type change that cuts off the VMs using the switch is refused, listing them, unless
--force is given: their adapters then end Not connected. Nothing changes when anything is
wrong. Prints the switch as get-vmswitch does.

Example:
  hvctl set-vmswitch lab --new-name lab2 --notes 'test network'""",
        switch_verbs.set_vmswitch,
    )
    _switch_name(p, "the switch to change")
    p.add_argument("--new-name", metavar="NEWNAME", help="rename the switch")
    _switch_settings(p, creating=False)
    common_options(p)

    p = declare(
        sub,
        verb,
        "remove-vmswitch",
        "Delete a virtual switch (Remove-VMSwitch).",
        """\
When VMs' adapters are connected to it, lists them and refuses (exit status 1) unless --force
is given: they then end Not connected.""",
        switch_verbs.remove_vmswitch,
    )
    _switch_name(p, "the switch to delete")
    p.add_argument("--force", action="store_true", help="delete it even though VMs use it")
    common_options(p)


def _statistics_verb(sub: Any, verb: VerbMaker, common_options: CommonOptions) -> None:
    p = declare(
        sub,
        verb,
        "get-vmswitchstatistics",
        "Show live traffic counters of virtual switches.",
        """\
Per switch (its totals over its ports) and per port (each running VM's network adapter):
bytes and packets received and sent (from the VM's side), their rates per second, drops,
errors and the adapter's queues. Rates compare two samples taken --interval seconds apart.
--mac-table adds each switch's MAC address table (which MAC is behind which port).
--watch prints a new sample every --interval seconds until Ctrl-C (or --count samples).

With --json, prints each sample as one JSON object (one per line with --watch) with:
sampled_at, interval_s, switches (name, switch_type, ports, rx_bytes, rx_packets,
rx_errors, rx_drops, tx_bytes, tx_packets, tx_errors, tx_drops, rates), ports (switch,
vm_name, vm_uuid, mac_address, device, queues, the same counters, rates) and, with
--mac-table, mac_table (switch, mac_address, port, vm_name, local). rates holds
rx_bytes_per_s, tx_bytes_per_s, rx_packets_per_s and tx_packets_per_s.

Example:
  hvctl get-vmswitchstatistics lab --watch --interval 2""",
        switch_stats_verbs.get_vmswitchstatistics,
    )
    p.add_argument("switch", nargs="?", metavar="SWITCH", help="only this switch (default: all)")
    p.add_argument("--mac-table", action="store_true", help="also print the switches' MAC address tables")
    p.add_argument(
        "--interval", type=seconds, default=1.0, metavar="SECONDS", help="time between samples (default 1)"
    )
    p.add_argument("--watch", action="store_true", help="go on printing samples until Ctrl-C")
    p.add_argument("--count", type=at_least_one, metavar="N", help="stop after N samples (implies --watch)")
    common_options(p)
