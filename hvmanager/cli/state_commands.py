"""The ``hvctl`` verbs that change the state of VMs: start-vm, stop-vm, save-vm, suspend-vm,
resume-vm, restart-vm and remove-vmsavedstate.

Each takes the parsed arguments and a ``Context`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hvmanager.backend import inventory, operations
from hvmanager.backend.errors import HvError, InvalidStateError
from hvmanager.backend.models import VmState
from hvmanager.cli import output
from hvmanager.cli.context import Context, resolve

POLL_INTERVAL_S = 0.25  # how often ``stop-vm --wait`` looks at the state


@dataclass(frozen=True)
class Action:
    """A verb that changes the state of each VM it is given."""

    verb: str
    run: Callable[[Context, Any], None]
    done: str  # "Started '{name}'."
    already: frozenset[VmState] = frozenset()  # states in which there is nothing to do
    already_text: str = ""  # "'{name}' is already running."


def _q(name: str) -> str:
    return shlex.quote(name)


def state_hint(verb: str, name: str, state: VmState) -> str:
    """What to do when ``verb`` is refused because the VM is in ``state``."""
    if verb in ("remove-vm", "rename-vm") and state.is_active:
        return (
            f"Turn it off first with 'hvctl stop-vm --turn-off {_q(name)}', or shut it down "
            f"with 'hvctl stop-vm --wait 120 {_q(name)}'."
        )
    if state is VmState.SAVED:
        return (
            f"Start it with 'hvctl start-vm {_q(name)}', or discard its saved state with "
            f"'hvctl remove-vmsavedstate {_q(name)}'."
        )
    if state is VmState.OFF and verb != "remove-vmsavedstate":
        return f"Start it first with 'hvctl start-vm {_q(name)}'."
    if verb == "stop-vm" and state is VmState.PAUSED:
        return f"Resume it first (hvctl resume-vm {_q(name)}), or use --turn-off."
    return ""


def state_record(dom: Any) -> dict[str, Any]:
    """A VM's name, UUID and state, as the state verbs report them in JSON."""
    info = inventory.vm_info(dom)
    return {"name": info.name, "uuid": info.uuid, "state": info.state.value}


def _write_states(ctx: Context, doms: Sequence[Any]) -> None:
    """``--json`` output of the state verbs: each VM's name, UUID and state afterwards."""
    records = []
    for dom in doms:
        try:
            records.append(state_record(dom))
        except HvError:
            continue  # gone meanwhile
    output.write_json(ctx.out, records)


@dataclass
class Outcome:
    """What ``run_action`` did."""

    handled: list[Any] = field(default_factory=list)  # acted on, or already in the wanted state
    acted: list[Any] = field(default_factory=list)


def run_action(ctx: Context, names: Sequence[str], action: Action) -> Outcome:
    """Apply ``action`` to each named VM, carrying on after a failure."""
    outcome = Outcome()
    for dom in resolve(ctx, names):
        name = dom.name()
        try:
            state = inventory.vm_info(dom).state
            if state in action.already:
                ctx.warn(action.already_text.format(name=name))
            else:
                try:
                    action.run(ctx, dom)
                except InvalidStateError as exc:
                    now = inventory.vm_info(dom).state
                    exc.hint = exc.hint or state_hint(action.verb, name, now)
                    raise
                outcome.acted.append(dom)
                ctx.say(action.done.format(name=name))
            outcome.handled.append(dom)
        except HvError as exc:
            ctx.error(exc)
    return outcome


START = Action(
    "start-vm",
    lambda ctx, dom: operations.start(ctx.conn, dom, ctx.decision()),
    "Started '{name}'.",
    frozenset({VmState.RUNNING}),
    "'{name}' is already running.",
)
SAVE = Action(
    "save-vm",
    lambda _ctx, dom: operations.save(dom),
    "Saved '{name}'.",
    frozenset({VmState.SAVED}),
    "'{name}' is already saved.",
)
SUSPEND = Action(
    "suspend-vm",
    lambda _ctx, dom: operations.pause(dom),
    "Paused '{name}'.",
    frozenset({VmState.PAUSED}),
    "'{name}' is already paused.",
)
RESUME = Action(
    "resume-vm",
    lambda _ctx, dom: operations.resume(dom),
    "Resumed '{name}'.",
    frozenset({VmState.RUNNING}),
    "'{name}' is already running.",
)
RESTART = Action("restart-vm", lambda _ctx, dom: operations.reset(dom), "Reset '{name}'.")
REMOVE_SAVED_STATE = Action(
    "remove-vmsavedstate",
    lambda _ctx, dom: operations.delete_saved_state(dom),
    "Deleted the saved state of '{name}'.",
    frozenset({VmState.OFF}),
    "'{name}' has no saved state.",
)
TURN_OFF = Action(
    "stop-vm",
    lambda _ctx, dom: operations.turn_off(dom),
    "Turned off '{name}'.",
    frozenset({VmState.OFF}),
    "'{name}' is already off.",
)
SHUT_DOWN = Action(
    "stop-vm",
    lambda _ctx, dom: operations.shut_down(dom),
    "Asked '{name}' to shut down.",
    frozenset({VmState.OFF}),
    "'{name}' is already off.",
)

SIMPLE_ACTIONS = {a.verb: a for a in (START, SAVE, SUSPEND, RESUME, RESTART, REMOVE_SAVED_STATE)}


def simple_action(ctx: Context, args: argparse.Namespace) -> int:
    """start-vm, save-vm, suspend-vm, resume-vm, restart-vm and remove-vmsavedstate."""
    outcome = run_action(ctx, args.names, SIMPLE_ACTIONS[args.verb])
    if ctx.json:
        _write_states(ctx, outcome.handled)
    return ctx.exit_code


def wait_until_off(ctx: Context, doms: Sequence[Any], timeout_s: float) -> None:
    """Wait (all at once, one deadline) until each VM is no longer running; report the rest."""
    pending = {dom.UUIDString(): dom for dom in doms}
    deadline = time.monotonic() + timeout_s
    while pending:
        for uuid, dom in list(pending.items()):
            try:
                state = inventory.vm_info(dom).state
            except HvError:
                state = VmState.OFF  # a transient VM is gone once off
            if not state.is_active:
                del pending[uuid]
                ctx.say(f"'{dom.name()}' is off.")
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL_S)
    for dom in pending.values():
        name = dom.name()
        ctx.error(
            HvError(
                f"'{name}' did not shut down within {timeout_s:g} s; it is still running.",
                "The guest may ignore the ACPI power button (no operating system, or it is busy). "
                f"Power it off with 'hvctl stop-vm --turn-off {_q(name)}'.",
            )
        )


def stop_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``stop-vm NAME... [--turn-off] [--wait SECONDS]``."""
    outcome = run_action(ctx, args.names, TURN_OFF if args.turn_off else SHUT_DOWN)
    if args.wait is not None and not args.turn_off:
        wait_until_off(ctx, outcome.acted, args.wait)
    if ctx.json:
        _write_states(ctx, outcome.handled)
    return ctx.exit_code
