"""The ``hvctl`` verbs for VMs' network adapters (Hyper-V's ``Add-``, ``Remove-``, ``Connect-``,
``Get-`` and ``Set-VMNetworkAdapter``; declared in ``network_commands``).

Adapters are read and changed by ``backend.vm_network``, the Settings dialog's code: on a running
VM the change is made live too (hot-plug, reconnection). The adapter rules (``adapter_problems``:
limits per generation, MAC addresses, VMQ queues, bandwidth, VLAN) are checked first, so bad
input changes nothing. ``IPAddresses`` come from libvirt's ``interfaceAddresses``: the DHCP leases
of the switch, the host's ARP table and, when its guest agent answers, the guest itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any

import libvirt

from hvmanager.backend import guest_agent, inventory, mac_pool, switches, vm_network
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import (
    LEGACY_ADAPTER_NAME,
    SYNTHETIC_ADAPTER_NAME,
    AdapterSpec,
    SwitchInfo,
)
from hvmanager.cli import output
from hvmanager.cli.context import Context, all_domains, find_vm, resolve
from hvmanager.cli.network_verbs import (
    ADAPTER_HEADERS,
    STATUS_OK,
    STATUS_RESTART,
    UsageError,
    adapter_record,
    adapter_row,
    choose_adapter,
    refuse,
)

_ADDRESS_SOURCES = (
    libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
    libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
)
_AGENT_WAIT_S = 2  # a guest agent that does not answer by then is left out


# --- what the VM has ----------------------------------------------------------------------------


def _switches(ctx: Context) -> dict[str, SwitchInfo]:
    return {s.name: s for s in switches.list_switches(ctx.conn)}


def _check_problems(
    ctx: Context, dom: Any, spec: AdapterSpec, others: Sequence[AdapterSpec], outcome: str
) -> None:
    """The Settings dialog's rules for ``spec`` beside the VM's ``others`` adapters."""
    if spec.switch is not None:
        switches.get_switch(ctx.conn, spec.switch)  # "There is no virtual switch named ..."
    config = inventory.vm_config(dom, inactive=True)
    problems = vm_network.adapter_problems(
        spec, config.generation, config.processors, tuple(others), _switches(ctx)
    )
    refuse(problems, outcome)


def guest_addresses(dom: Any) -> dict[str, list[str]]:
    """IP addresses per (lower-case) MAC from every source libvirt has; empty when none knows."""
    found: dict[str, list[str]] = {}

    def merge(interfaces: dict[str, Any]) -> None:
        for interface in interfaces.values():
            mac = (interface.get("hwaddr") or "").lower()
            known = found.setdefault(mac, [])
            for address in interface.get("addrs") or []:
                if address.get("addr") and address["addr"] not in known:
                    known.append(address["addr"])

    for source in _ADDRESS_SOURCES:
        try:
            merge(dom.interfaceAddresses(source, 0))
        except libvirt.libvirtError:
            continue  # no such source for this VM (no lease file, no ARP entry)
    if inventory.agent_connected(dom):
        with guest_agent.bounded_agent(dom, _AGENT_WAIT_S), contextlib.suppress(libvirt.libvirtError):
            merge(dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0))
    return found


def _status(config: AdapterSpec, live: AdapterSpec | None) -> str:
    """Ok when the running VM has the adapter as configured; Restart needed when what it runs with
    differs in what only a restart applies."""
    if live is None:
        return STATUS_RESTART

    def key(spec: AdapterSpec) -> tuple[object, ...]:
        return (spec.switch, spec.legacy, spec.vmq, spec.queues)

    return STATUS_OK if key(live) == key(config) else STATUS_RESTART


def vm_adapter_records(dom: Any, only: str | None = None) -> list[dict[str, Any]]:
    """The records of a VM's adapters (persistent settings; status and addresses when it runs),
    or only of the adapter with MAC ``only``."""
    specs = [s for s in vm_network.adapters(dom) if only is None or s.mac == only]
    with libvirt_errors(f"Reading the state of '{dom.name()}'"):
        active = bool(dom.isActive())
    if not active:
        return [adapter_record(dom, spec) for spec in specs]
    live = {s.mac: s for s in vm_network.adapters(dom, live=True)}
    addresses = guest_addresses(dom)
    return [
        adapter_record(
            dom, spec, _status(spec, live.get(spec.mac)), addresses.get((spec.mac or "").lower(), [])
        )
        for spec in specs
    ]


def _show_one(ctx: Context, dom: Any, mac: str | None) -> None:
    """Print one adapter as get-vmnetworkadapter does (a JSON object with --json)."""
    records = vm_adapter_records(dom, mac)
    if ctx.json:
        output.write_json(ctx.out, records[0] if records else None)
    else:
        output.write_text(ctx.out, output.format_table(ADAPTER_HEADERS, [adapter_row(r) for r in records]))


# --- the verbs ----------------------------------------------------------------------------------


def get_vmnetworkadapter(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmnetworkadapter (--vm-name VM... | --all)`` (Get-VMNetworkAdapter)."""
    doms = all_domains(ctx) if args.all else resolve(ctx, args.vm_name)
    records: list[dict[str, Any]] = []
    for dom in doms:
        try:
            records.extend(vm_adapter_records(dom))
        except HvError as exc:
            ctx.error(exc)
    if ctx.json:
        output.write_json(ctx.out, records)
    else:
        output.write_text(ctx.out, output.format_table(ADAPTER_HEADERS, [adapter_row(r) for r in records]))
    return ctx.exit_code


def add_vmnetworkadapter(ctx: Context, args: argparse.Namespace) -> int:
    """``add-vmnetworkadapter --vm-name VM [--switch-name S] [--is-legacy] [--static-mac-address M]
    [--name N]`` (Add-VMNetworkAdapter); hot-plugged when the VM runs."""
    dom = find_vm(ctx, args.vm_name)
    static = mac_pool.normalize_mac(args.static_mac_address) if args.static_mac_address else None
    spec = AdapterSpec(
        switch=args.switch_name,
        mac=static,
        dynamic_mac=static is None,
        legacy=args.is_legacy,
        name=args.name or (LEGACY_ADAPTER_NAME if args.is_legacy else SYNTHETIC_ADAPTER_NAME),
    )
    _check_problems(ctx, dom, spec, vm_network.adapters(dom), "Nothing was added.")
    added = vm_network.add_adapter(ctx.conn, dom, spec, mac_pool.configured_range(ctx.settings))
    _show_one(ctx, dom, added.mac)
    return 0


def remove_vmnetworkadapter(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vmnetworkadapter --vm-name VM (--mac M | --name N)`` (Remove-VMNetworkAdapter)."""
    dom = find_vm(ctx, args.vm_name)
    spec = choose_adapter(dom, vm_network.adapters(dom), args.mac, args.name)
    assert spec.mac is not None
    record = adapter_record(dom, spec)
    vm_network.remove_adapter(ctx.conn, dom, spec.mac)
    if ctx.json:
        output.write_json(ctx.out, record)
    ctx.say(f"Removed the network adapter '{spec.name}' ({spec.mac}) from '{dom.name()}'.")
    return 0


def connect_vmnetworkadapter(ctx: Context, args: argparse.Namespace) -> int:
    """``connect-vmnetworkadapter --vm-name VM (--switch-name S | --disconnect) [--mac M | --name N]``
    (Connect-/Disconnect-VMNetworkAdapter); a running VM is reconnected live."""
    dom = find_vm(ctx, args.vm_name)
    specs = vm_network.adapters(dom)
    spec = choose_adapter(dom, specs, args.mac, args.name)
    assert spec.mac is not None
    target = None if args.disconnect else args.switch_name
    others = [s for s in specs if s.mac != spec.mac]
    _check_problems(ctx, dom, dataclasses.replace(spec, switch=target), others, "Nothing was changed.")
    vm_network.connect_adapter(ctx.conn, dom, spec.mac, target)
    _show_one(ctx, dom, spec.mac)
    return 0


def _changed(spec: AdapterSpec, args: argparse.Namespace) -> AdapterSpec:
    """The adapter with set-vmnetworkadapter's options applied."""
    changes: dict[str, Any] = {}
    if args.static_mac_address is not None:
        changes.update(mac=mac_pool.normalize_mac(args.static_mac_address), dynamic_mac=False)
    if args.dynamic_mac_address:
        changes.update(dynamic_mac=True)  # it keeps its address, which now counts as from the range
    if args.vmq_queues is not None:
        changes.update(vmq=args.vmq_queues > 0, queues=max(args.vmq_queues, 1))
    if args.minimum_bandwidth is not None:
        changes.update(minimum_mbps=args.minimum_bandwidth)
    if args.maximum_bandwidth is not None:
        changes.update(maximum_mbps=args.maximum_bandwidth)
    if args.vlan_id is not None:
        changes.update(vlan_id=args.vlan_id or None)
    if args.new_name is not None:
        changes.update(name=args.new_name)
    if not changes:
        raise UsageError(
            "nothing to change: give --static-mac-address, --dynamic-mac-address, --vmq-queues, "
            "--minimum-bandwidth, --maximum-bandwidth, --vlan-id or --new-name"
        )
    return dataclasses.replace(spec, **changes)


def set_vmnetworkadapter(ctx: Context, args: argparse.Namespace) -> int:
    """``set-vmnetworkadapter --vm-name VM [--mac M | --name N] ...`` (Set-VMNetworkAdapter)."""
    dom = find_vm(ctx, args.vm_name)
    specs = vm_network.adapters(dom)
    spec = choose_adapter(dom, specs, args.mac, args.name)
    assert spec.mac is not None
    wanted = _changed(spec, args)
    others = [s for s in specs if s.mac != spec.mac]
    _check_problems(ctx, dom, wanted, others, "Nothing was changed.")
    result = vm_network.set_adapter(ctx.conn, dom, spec.mac, wanted)
    _show_one(ctx, dom, result.mac)
    return 0
