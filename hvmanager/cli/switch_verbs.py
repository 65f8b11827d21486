"""The ``hvctl`` verbs for virtual switches (Hyper-V's ``New-``, ``Get-``, ``Set-`` and
``Remove-VMSwitch``; declared in ``network_commands``).

A switch is a libvirt network made and changed by ``backend.switches``, the same code as the
Virtual Switch Manager: its rules (``switch_problems``) are checked before anything is done, so bad
input changes nothing. Options that do not apply to the switch's type are usage errors rather than
silently ignored. Binding the host adapter that carries the default route, and changes that cut
VMs off their switch (deleting it, changing its type), need ``--force``.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from hvmanager.backend import switches
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.network_models import SwitchInfo, SwitchSpec, SwitchType
from hvmanager.backend.switch_errors import ConfirmationNeeded, SwitchInUseError
from hvmanager.cli import output
from hvmanager.cli.context import Context
from hvmanager.cli.network_verbs import (
    SWITCH_HEADERS,
    UsageError,
    name_argument,
    refuse,
    switch_record,
    switch_row,
)

# Options that only mean something for some switch types: (option, the types it is for).
_OPTION_TYPES: dict[str, tuple[str, frozenset[SwitchType]]] = {
    "net_adapter_name": ("--net-adapter-name", frozenset({SwitchType.EXTERNAL})),
    "allow_management_os": ("--allow-management-os", frozenset({SwitchType.EXTERNAL})),
    "host_address": ("--host-address", frozenset({SwitchType.INTERNAL, SwitchType.NAT})),
    "dhcp": ("--dhcp", frozenset({SwitchType.INTERNAL, SwitchType.NAT})),
    "vlan_id": ("--vlan-id", frozenset({SwitchType.EXTERNAL, SwitchType.INTERNAL})),
}
_TYPE_ORDER = (SwitchType.PRIVATE, SwitchType.INTERNAL, SwitchType.EXTERNAL, SwitchType.NAT)
_GLOB_CHARS = frozenset("*?[")


# --- reading the options ------------------------------------------------------------------------


def _check_options_fit(args: argparse.Namespace, switch_type: SwitchType) -> None:
    """A usage error for an option given that the switch's type has no use for."""
    for dest, (option, types) in _OPTION_TYPES.items():
        if getattr(args, dest, None) is not None and switch_type not in types:
            kinds = " and ".join(t.value for t in _TYPE_ORDER if t in types)
            raise UsageError(f"{option} is for {kinds} switches, not {switch_type.value} ones")
    if switch_type is SwitchType.NAT and args.dhcp is False:
        raise UsageError("a NAT switch always gives its VMs addresses by DHCP: leave out --no-dhcp")


def _vlan(value: int | None) -> int | None:
    """``--vlan-id``: 0 turns the VLAN off."""
    return value or None


def _fit_to_type(spec: SwitchSpec) -> SwitchSpec:
    """Drop what the spec's type does not use (after a type change: an Internal switch's address
    means nothing on a Private one)."""
    kind = spec.type
    external = kind is SwitchType.EXTERNAL
    addressed = kind in (SwitchType.INTERNAL, SwitchType.NAT)
    return dataclasses.replace(
        spec,
        host_adapter=spec.host_adapter if external else None,
        share_with_host=spec.share_with_host if external else True,
        host_address=spec.host_address if addressed else None,
        dhcp=True if kind is SwitchType.NAT else (spec.dhcp if addressed else False),
        vlan_id=spec.vlan_id if kind in (SwitchType.EXTERNAL, SwitchType.INTERNAL) else None,
    )


def _new_type(args: argparse.Namespace) -> SwitchType:
    """New-VMSwitch's rule: a host adapter makes an External switch, else --switch-type says."""
    if args.net_adapter_name is not None:
        if args.switch_type not in (None, SwitchType.EXTERNAL):
            raise UsageError(
                "--net-adapter-name makes an External switch: leave out "
                f"--switch-type {args.switch_type.value}"
            )
        return SwitchType.EXTERNAL
    if args.switch_type is None:
        raise UsageError(
            "give --switch-type (Private, Internal or NAT), or --net-adapter-name for an External switch"
        )
    if args.switch_type is SwitchType.EXTERNAL:
        raise UsageError("an External switch needs --net-adapter-name (the host adapter it is bound to)")
    return SwitchType(args.switch_type)


def _changed_type(args: argparse.Namespace, old: SwitchSpec) -> SwitchType:
    """Set-VMSwitch's rule: --switch-type converts; a host adapter alone makes it External."""
    if args.switch_type is not None:
        kind = SwitchType(args.switch_type)
    elif args.net_adapter_name is not None:
        kind = SwitchType.EXTERNAL
    else:
        kind = old.type
    keeps_adapter = old.type is SwitchType.EXTERNAL and old.host_adapter is not None
    if kind is SwitchType.EXTERNAL and args.net_adapter_name is None and not keeps_adapter:
        raise UsageError("an External switch needs --net-adapter-name (the host adapter it is bound to)")
    return kind


@contextmanager
def _confirmation_hint() -> Iterator[None]:
    """The back end's "the host may lose its connection" refusal, with the option that confirms."""
    try:
        yield
    except ConfirmationNeeded as exc:
        raise ValidationError(exc.message, "Give --force to bind it anyway.") from exc


def _in_use(
    name: str, users: Sequence[tuple[str, str]], vm_names: Sequence[str], doing: str
) -> InvalidStateError:
    """The refusal to cut VMs off a switch, listing them."""
    listed = [f"{vm} ({mac})" for vm, mac in users] or sorted(set(vm_names))
    return InvalidStateError(
        f"The virtual switch '{name}' is used by {len(listed)} network adapter(s): {', '.join(listed)}.",
        f"Give --force to {doing} anyway: those adapters will be Not connected.",
    )


def _report_disconnected(
    ctx: Context, before: Sequence[tuple[str, str]], after: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    gone = [user for user in before if user not in set(after)]
    for vm, mac in gone:
        ctx.note(f"The network adapter {mac} of '{vm}' is now Not connected.")
    return gone


def show_switch(ctx: Context, info: SwitchInfo) -> None:
    """Print a switch as get-vmswitch does (one JSON object with --json)."""
    record = switch_record(info, switches.switch_users(ctx.conn, info.name))
    if ctx.json:
        output.write_json(ctx.out, record)
    else:
        output.write_text(ctx.out, output.format_table(SWITCH_HEADERS, [switch_row(record)]))


# --- the verbs ----------------------------------------------------------------------------------


def new_vmswitch(ctx: Context, args: argparse.Namespace) -> int:
    """``new-vmswitch NAME (--switch-type T | --net-adapter-name A) ...`` (New-VMSwitch)."""
    name = name_argument(args)
    assert name is not None
    kind = _new_type(args)
    _check_options_fit(args, kind)
    spec = _fit_to_type(
        SwitchSpec(
            name=name,
            type=kind,
            notes=args.notes or "",
            host_adapter=args.net_adapter_name,
            share_with_host=True if args.allow_management_os is None else args.allow_management_os,
            host_address=args.host_address,
            dhcp=bool(args.dhcp),
            vlan_id=_vlan(args.vlan_id),
            minimum_bandwidth=args.minimum_bandwidth_mode == "Absolute",
        )
    )
    refuse(switches.switch_problems(ctx.conn, spec), "Nothing was created.")
    with _confirmation_hint():
        info = switches.create_switch(ctx.conn, spec, confirm_default_route=args.force)
    show_switch(ctx, info)
    return 0


def get_vmswitch(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmswitch [NAME] [--switch-type T]`` (Get-VMSwitch); NAME may be a wildcard."""
    name = name_argument(args, required=False)
    if name is None or _GLOB_CHARS & set(name):
        found = switches.list_switches(ctx.conn)
        if name is not None:
            found = [s for s in found if fnmatch.fnmatchcase(s.name, name)]
            if not found:
                ctx.warn(f"No virtual switch matches '{name}' on {ctx.server.uri}.")
    else:
        found = [switches.get_switch(ctx.conn, name)]
    if args.switch_type is not None:
        found = [s for s in found if s.spec.type is args.switch_type]
    if ctx.json:
        records = [switch_record(s, switches.switch_users(ctx.conn, s.name)) for s in found]
        output.write_json(ctx.out, records)
    else:
        rows = [switch_row(switch_record(s, ())) for s in found]
        output.write_text(ctx.out, output.format_table(SWITCH_HEADERS, rows))
    return 0


def set_vmswitch(ctx: Context, args: argparse.Namespace) -> int:
    """``set-vmswitch NAME [--new-name N] [--notes T] [--switch-type T] ...`` (Set-VMSwitch)."""
    current = name_argument(args)
    assert current is not None
    given = ("new_name", "notes", "switch_type", *_OPTION_TYPES)
    if all(getattr(args, dest) is None for dest in given):
        raise UsageError("nothing to change: give --new-name, --notes, --switch-type or another option")
    old = switches.get_switch(ctx.conn, current).spec
    kind = _changed_type(args, old)
    _check_options_fit(args, kind)
    changes = {
        "name": args.new_name,
        "notes": args.notes,
        "type": kind,
        "host_adapter": args.net_adapter_name,
        "share_with_host": args.allow_management_os,
        "host_address": args.host_address,
        "dhcp": args.dhcp,
        "vlan_id": None if args.vlan_id is None else _vlan(args.vlan_id),
    }
    spec = dataclasses.replace(old, **{k: v for k, v in changes.items() if v is not None})
    if args.vlan_id == 0:
        spec = dataclasses.replace(spec, vlan_id=None)
    spec = _fit_to_type(spec)
    refuse(switches.switch_problems(ctx.conn, spec, current))
    before = switches.switch_users(ctx.conn, current)
    try:
        with _confirmation_hint():
            info = switches.set_switch(
                ctx.conn, current, spec, confirm_default_route=args.force, disconnect_users=args.force
            )
    except SwitchInUseError as exc:
        raise _in_use(current, before, exc.users, "change it") from exc
    _report_disconnected(ctx, before, switches.switch_users(ctx.conn, info.name))
    show_switch(ctx, info)
    return 0


def remove_vmswitch(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vmswitch NAME [--force]`` (Remove-VMSwitch): VMs using it need --force."""
    name = name_argument(args)
    assert name is not None
    switches.get_switch(ctx.conn, name)  # "There is no virtual switch named ..."
    before = switches.switch_users(ctx.conn, name)
    try:
        switches.remove_switch(ctx.conn, name, disconnect_users=args.force)
    except SwitchInUseError as exc:
        raise _in_use(name, before, exc.users, "delete it") from exc
    gone = _report_disconnected(ctx, before, ())
    if ctx.json:
        disconnected = [{"vm_name": vm, "mac_address": mac} for vm, mac in gone]
        output.write_json(ctx.out, {"name": name, "removed": True, "disconnected_adapters": disconnected})
    ctx.say(f"Removed the virtual switch '{name}'.")
    return 0
