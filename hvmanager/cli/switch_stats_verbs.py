"""``hvctl get-vmswitchstatistics``: live counters of virtual switches, per port and per switch.

The figures come from the GUI's own source: ``StatsSampler`` (one bulk ``getAllDomainStats`` call
and one netlink link dump per sample, each running VM's adapters as the switch ports they are on)
and ``backend.switch_stats`` (per-switch totals; the MAC address table from the bridge's
forwarding database). Rates need two samples, so the verb takes one, waits ``--interval`` seconds
and prints the second; ``--watch`` goes on printing one sample per interval until Ctrl-C or
``--count`` samples. With ``--json`` each sample is one JSON document (one per line when watching).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from hvmanager.backend import switch_stats, switches
from hvmanager.backend.models import VmStats
from hvmanager.backend.network_models import PortCounters, PortRates, PortStats, SwitchInfo, SwitchTotals
from hvmanager.backend.stats import StatsSampler
from hvmanager.cli import output
from hvmanager.cli.context import Context

COUNT_HEADERS = (
    "RxBytes", "TxBytes", "RxPackets", "TxPackets",
    "RxBytes/s", "TxBytes/s", "RxPackets/s", "TxPackets/s", "Dropped", "Errors",
)  # fmt: skip
SWITCH_TOTALS_HEADERS = ("SwitchName", "SwitchType", "Ports", *COUNT_HEADERS)
PORT_HEADERS = ("SwitchName", "VMName", "MacAddress", "Port", "Queues", *COUNT_HEADERS)
MAC_TABLE_HEADERS = ("SwitchName", "MacAddress", "Port", "VMName", "Local")


# --- records ------------------------------------------------------------------------------------


def _rates_record(rates: PortRates | None) -> dict[str, float] | None:
    if rates is None:
        return None
    return {f"{key}_per_s": round(value, 3) for key, value in dataclasses.asdict(rates).items()}


def _counters_record(counters: PortCounters) -> dict[str, int]:
    return dict(dataclasses.asdict(counters))


def port_record(port: PortStats) -> dict[str, Any]:
    """One switch port (a running VM's adapter) in a sample."""
    return {
        "switch": port.switch,
        "vm_name": port.vm_name,
        "vm_uuid": port.vm_uuid,
        "mac_address": port.mac,
        "device": port.device,
        "queues": port.queues,
        **_counters_record(port.counters),
        "rates": _rates_record(port.rates),
    }


def switch_totals_record(info: SwitchInfo, totals: SwitchTotals | None) -> dict[str, Any]:
    """One switch's totals over its ports (zeros for a switch without running ports)."""
    totals = totals or SwitchTotals(info.name, 0, PortCounters(), PortRates())
    return {
        "name": info.name,
        "switch_type": info.spec.type.value,
        "ports": totals.ports,
        **_counters_record(totals.counters),
        "rates": _rates_record(totals.rates),
    }


def sample_document(
    ctx: Context,
    stats: Mapping[str, VmStats],
    only: str | None,
    interval: float,
    with_mac_table: bool,
) -> dict[str, Any]:
    """One sample as ``--json`` prints it: the switches' totals, the ports and, when asked, the MAC
    address tables; ``only`` keeps one switch."""
    infos = [s for s in switches.list_switches(ctx.conn) if only is None or s.name == only]
    ports = sorted(
        (p for vm in stats.values() for p in vm.ports if only is None or p.switch == only),
        key=lambda p: (p.switch or "", p.vm_name, p.mac),
    )
    totals = switch_stats.switch_totals(stats)
    document: dict[str, Any] = {
        "sampled_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "interval_s": interval,
        "switches": [switch_totals_record(info, totals.get(info.name)) for info in infos],
        "ports": [port_record(p) for p in ports],
    }
    if with_mac_table:
        document["mac_table"] = [
            {
                "switch": info.name,
                "mac_address": entry.mac,
                "port": entry.port,
                "vm_name": entry.vm_name,
                "local": entry.local,
            }
            for info in infos
            if info.active
            for entry in switch_stats.mac_table(ctx.conn, info.name, _ports_of(ports, info.name))
        ]
    return document


def _ports_of(ports: Iterable[PortStats], switch: str) -> list[PortStats]:
    return [p for p in ports if p.switch == switch]


# --- text ---------------------------------------------------------------------------------------


def _count_cells(record: Mapping[str, Any]) -> list[object]:
    rates = record["rates"] or {}

    def rate(key: str, digits: int) -> str:
        value = rates.get(f"{key}_per_s")
        return "" if value is None else f"{value:.{digits}f}"

    return [
        record["rx_bytes"],
        record["tx_bytes"],
        record["rx_packets"],
        record["tx_packets"],
        rate("rx_bytes", 0),
        rate("tx_bytes", 0),
        rate("rx_packets", 1),
        rate("tx_packets", 1),
        record["rx_drops"] + record["tx_drops"],
        record["rx_errors"] + record["tx_errors"],
    ]


def sample_text(document: Mapping[str, Any]) -> str:
    """A sample as tables: switch totals, then ports, then MAC address tables (when asked)."""
    switch_rows = [[s["name"], s["switch_type"], s["ports"], *_count_cells(s)] for s in document["switches"]]
    port_rows = [
        [p["switch"] or "", p["vm_name"], p["mac_address"], p["device"], p["queues"], *_count_cells(p)]
        for p in document["ports"]
    ]
    parts = [
        output.format_table(SWITCH_TOTALS_HEADERS, switch_rows),
        output.format_table(PORT_HEADERS, port_rows),
    ]
    if "mac_table" in document:
        mac_rows = [
            [e["switch"], e["mac_address"], e["port"], e["vm_name"] or "", str(e["local"])]
            for e in document["mac_table"]
        ]
        parts.append(output.format_table(MAC_TABLE_HEADERS, mac_rows))
    return "\n\n".join(part for part in parts if part)


def _emit(ctx: Context, document: Mapping[str, Any], watching: bool, number: int) -> None:
    if ctx.json:
        if watching:
            ctx.out.write(json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n")
        else:
            output.write_json(ctx.out, document)
    else:
        if watching:
            separator = "\n" if number > 1 else ""
            ctx.out.write(f"{separator}Sample {number} at {document['sampled_at']}\n")
        output.write_text(ctx.out, sample_text(document) or "No virtual switch.")
    ctx.out.flush()


# --- the verb -----------------------------------------------------------------------------------


def get_vmswitchstatistics(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vmswitchstatistics [SWITCH] [--mac-table] [--interval S] [--watch] [--count N]``."""
    if args.switch is not None:
        switches.get_switch(ctx.conn, args.switch)  # "There is no virtual switch named ..."
    watching = args.watch or args.count is not None
    wanted = args.count if args.count is not None else (None if watching else 1)
    sampler = StatsSampler(ctx.server.host_info().cpus)
    sampler.sample(ctx.conn)
    due = time.monotonic()
    printed = 0
    try:
        while wanted is None or printed < wanted:
            due += args.interval
            time.sleep(max(0.0, due - time.monotonic()))
            stats = sampler.sample(ctx.conn)
            printed += 1
            document = sample_document(ctx, stats, args.switch, args.interval, args.mac_table)
            _emit(ctx, document, watching, printed)
    except KeyboardInterrupt:
        if not watching:
            raise
        # Ctrl-C is how a --watch without --count ends: not a failure.
    return 0
