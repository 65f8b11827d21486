"""What the ``hvctl`` networking verbs share: their option values and usage errors, how a switch
and a network adapter are shown (tables and ``--json`` records), and finding a VM's adapter from
``--mac``/``--name``.

The verbs themselves are in ``switch_verbs`` (``*-VMSwitch``), ``adapter_verbs``
(``*-VMNetworkAdapter``) and ``switch_stats_verbs`` (``get-vmswitchstatistics``); their command
lines in ``network_commands`` and ``adapter_commands``. Everything they do goes through the same
back end as the Virtual Switch Manager and the Settings dialog (``backend.switches``,
``backend.vm_network``).
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from hvmanager.backend import mac_pool
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.network_models import AdapterSpec, SwitchInfo, SwitchType
from hvmanager.cli.context import Context, VerbMaker

Handler = Callable[[Context, argparse.Namespace], int]

SWITCH_HEADERS = ("Name", "SwitchType", "NetAdapterInterfaceDescription")
ADAPTER_HEADERS = ("Name", "VMName", "SwitchName", "MacAddress", "Status", "IPAddresses")

_TRUE = frozenset({"true", "$true", "yes", "on", "1"})
_FALSE = frozenset({"false", "$false", "no", "off", "0"})

STATUS_OK = "Ok"
STATUS_RESTART = "Restart needed"  # the running VM still has the adapter as it was


class UsageError(Exception):
    """A combination of options argparse could not rule out (exit status 2, nothing done)."""


def with_usage_errors(parser: argparse.ArgumentParser, handler: Handler) -> Handler:
    """Run ``handler``; a ``UsageError`` is reported as argparse reports one (usage line,
    ``hvctl VERB: error: ...``) with exit status 2."""

    def run(ctx: Context, args: argparse.Namespace) -> int:
        try:
            return handler(ctx, args)
        except UsageError as exc:
            parser.print_usage(ctx.err)
            ctx.err.write(f"{parser.prog}: error: {exc}\n")
            return 2

    return run


# --- option values ------------------------------------------------------------------------------


def switch_type(text: str) -> SwitchType:
    """``Private``, ``Internal``, ``External`` or ``NAT``, in any case."""
    for kind in SwitchType:
        if text.strip().casefold() == kind.value.casefold():
            return kind
    raise argparse.ArgumentTypeError(f"'{text}' is not a switch type: Private, Internal, External or NAT")


def boolean(text: str) -> bool:
    """``true``/``false`` (also ``$true``, ``yes``, ``on``, ``1`` and their opposites)."""
    value = text.strip().casefold()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise argparse.ArgumentTypeError(f"'{text}' is not true or false")


def _whole(text: str, least: int, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"{what} can't be less than {least}")
    return value


def not_negative(text: str) -> int:
    """A whole number, 0 or more."""
    return _whole(text, 0, "the value")


def at_least_one(text: str) -> int:
    """A whole number, 1 or more."""
    return _whole(text, 1, "the count")


def seconds(text: str) -> float:
    """A number of seconds above 0 (at most an hour)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("the interval must be above 0 and at most 3600 seconds")
    return value


def declare(
    sub: Any, verb: VerbMaker, name: str, summary: str, description: str, handler: Handler
) -> argparse.ArgumentParser:
    """hvctl's ``verb`` for a handler that may raise ``UsageError``."""
    parser = verb(sub, name, summary, description, handler)
    parser.set_defaults(handler=with_usage_errors(parser, handler))
    return parser


def name_argument(args: argparse.Namespace, required: bool = True) -> str | None:
    """The switch's name, given as NAME or with ``--name`` (PowerShell's ``-Name`` is positional)."""
    positional, option = args.name, args.name_option
    if positional is not None and option is not None and positional != option:
        raise UsageError(f"two names given: '{positional}' and --name '{option}'")
    name: str | None = option if option is not None else positional
    if name is None and required:
        raise UsageError("give the switch's name (NAME or --name)")
    return name


def bandwidth_mode(minimum_bandwidth: bool) -> str:
    """``-MinimumBandwidthMode`` as Get-VMSwitch shows it."""
    return "Absolute" if minimum_bandwidth else "None"


# --- switches -----------------------------------------------------------------------------------


def switch_record(info: SwitchInfo, users: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One switch as ``get-vmswitch --json`` prints it: every field of its spec and of libvirt's
    view, and the VMs' adapters connected to it."""
    spec = info.spec
    external = spec.type is SwitchType.EXTERNAL
    return {
        "name": spec.name,
        "uuid": info.uuid,
        "switch_type": spec.type.value,
        "notes": spec.notes,
        "net_adapter_name": spec.host_adapter if external else None,
        "allow_management_os": spec.share_with_host if external else None,
        "host_address": spec.host_address,
        "dhcp": spec.dhcp,
        "vlan_id": spec.vlan_id,
        "minimum_bandwidth_mode": bandwidth_mode(spec.minimum_bandwidth),
        "bridge": info.bridge,
        "active": info.active,
        "managed": info.managed,
        "connected_adapters": [{"vm_name": vm, "mac_address": mac} for vm, mac in users],
    }


def switch_row(record: dict[str, Any]) -> list[object]:
    """A ``get-vmswitch`` table row: Name, SwitchType and the host adapter of an External switch."""
    return [record["name"], record["switch_type"], record["net_adapter_name"] or ""]


# --- network adapters ---------------------------------------------------------------------------


def adapter_record(
    dom: Any, spec: AdapterSpec, status: str = "", addresses: Sequence[str] = ()
) -> dict[str, Any]:
    """One network adapter as ``get-vmnetworkadapter --json`` prints it."""
    return {
        "vm_name": dom.name(),
        "vm_uuid": dom.UUIDString(),
        "name": spec.name,
        "switch_name": spec.switch,
        "connected": spec.switch is not None,
        "mac_address": spec.mac,
        "dynamic_mac_address_enabled": spec.dynamic_mac,
        "is_legacy": spec.legacy,
        "vmq_enabled": spec.vmq,
        "queues": spec.queues,
        "minimum_bandwidth_mbps": spec.minimum_mbps,
        "maximum_bandwidth_mbps": spec.maximum_mbps,
        "vlan_id": spec.vlan_id,
        "status": status,
        "ip_addresses": list(addresses),
    }


def adapter_row(record: dict[str, Any]) -> list[object]:
    """A ``get-vmnetworkadapter`` table row (an unconnected adapter has an empty SwitchName)."""
    return [
        record["name"],
        record["vm_name"],
        record["switch_name"] or "",
        record["mac_address"] or "",
        record["status"],
        ", ".join(record["ip_addresses"]),
    ]


def choose_adapter(dom: Any, specs: Sequence[AdapterSpec], mac: str | None, name: str | None) -> AdapterSpec:
    """The adapter ``--mac`` or ``--name`` picks; without either, the VM's only adapter.

    ``ValidationError`` when none matches, or when the choice is ambiguous (several adapters of
    that name, or several adapters and no choice): Hyper-V would act on all of them, which is
    rarely what a script meant.
    """
    vm = dom.name()
    listing = f"List them with: hvctl get-vmnetworkadapter --vm-name {shlex.quote(vm)}"
    if mac is not None:
        wanted = mac_pool.normalize_mac(mac)
        for spec in specs:
            if spec.mac is not None and spec.mac.lower() == wanted:
                return spec
        raise ValidationError(f"'{vm}' has no network adapter with the MAC address {wanted}.", listing)
    if name is not None:
        named = [s for s in specs if s.name == name]
        if len(named) == 1:
            return named[0]
        if not named:
            raise ValidationError(f"'{vm}' has no network adapter named '{name}'.", listing)
        raise ValidationError(
            f"'{vm}' has {len(named)} network adapters named '{name}'.",
            "Choose one with --mac. " + listing,
        )
    if len(specs) == 1:
        return specs[0]
    if not specs:
        raise ValidationError(f"'{vm}' has no network adapter.")
    raise ValidationError(
        f"'{vm}' has {len(specs)} network adapters.", "Choose one with --mac or --name. " + listing
    )


def refuse(problems: Sequence[str], outcome: str = "Nothing was changed.") -> None:
    """Raise the back end's rule violations as one ``ValidationError`` (nothing done yet)."""
    if problems:
        raise ValidationError(" ".join(problems), outcome)
