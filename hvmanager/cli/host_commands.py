"""The ``hvctl`` verbs for the whole host: host-shutdown, host-startup (which also re-makes the
missing host bridges of shared External switches) and balance-memory.

Each takes the parsed arguments and a ``Context`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence

from hvmanager.backend import balloon, hostpower, switches
from hvmanager.backend.errors import HvError
from hvmanager.cli import output
from hvmanager.cli.context import Context


def _report_host_actions(ctx: Context, results: Sequence[hostpower.HostActionResult]) -> int:
    for result in results:
        if result.ok:
            ctx.say(f"{result.name}: {result.detail}")
        else:
            ctx.error(HvError(f"{result.name}: {result.detail}"))
    if ctx.json:
        output.write_json(ctx.out, [dataclasses.asdict(r) for r in results])
    elif not results:
        ctx.say("Nothing to do.")
    return ctx.exit_code


def host_shutdown(ctx: Context, args: argparse.Namespace) -> int:
    """``host-shutdown [--timeout S]``."""
    names = set(args.names) or None
    return _report_host_actions(ctx, hostpower.host_shutdown(ctx.conn, args.timeout, names=names))


def host_startup(ctx: Context, args: argparse.Namespace) -> int:
    """``host-startup [--no-delay]``."""
    names = set(args.names) or None
    if ctx.server.local:
        # Kernel bridges do not survive a host restart; the External switches' networks do.
        for line in switches.restore_host_bridges(ctx.conn):
            ctx.say(line)
    results = hostpower.host_startup(ctx.conn, ctx.decision(), honour_delays=not args.no_delay, names=names)
    return _report_host_actions(ctx, results)


def balance_memory(ctx: Context, args: argparse.Namespace) -> int:
    """``balance-memory [--interval S] [--buffer PERCENT]``."""
    if not 5 <= args.buffer <= 2000:
        raise HvError("The memory buffer must be between 5 and 2000 %, as in Hyper-V.")
    while True:
        moves = balloon.rebalance(ctx.conn, args.buffer)
        for move in moves:
            used = f"the guest uses {move.demand_mib} MB"
            ctx.say(f"{move.name}: {move.current_mib} MB -> {move.target_mib} MB ({used})")
        if ctx.json:
            output.write_json(ctx.out, [dataclasses.asdict(m) for m in moves])
        if args.interval is None:
            return ctx.exit_code
        time.sleep(args.interval)
