"""The ``hvctl`` verbs: each takes the parsed arguments and a ``Context`` and returns an exit code.

A verb that acts on several VMs acts on each in turn, reports a failure on stderr and carries on;
the exit code is 1 when anything failed. Backend failures arrive as ``HvError`` (message + hint).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import libvirt

from hvmanager.backend import creation, hostpower, inventory, operations
from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.connection import Server, libvirt_errors
from hvmanager.backend.errors import HvError, InvalidStateError
from hvmanager.backend.models import (
    DiskChoice,
    ExistingDisk,
    InstallChoice,
    IsoInstall,
    KernelBoot,
    MemoryConfig,
    NetworkInstall,
    NewDisk,
    VmSpec,
    VmState,
    VmStats,
)
from hvmanager.backend.settings import AppSettings
from hvmanager.backend.stats import StatsSampler, local_start_time
from hvmanager.cli import output

SAMPLE_INTERVAL_S = 0.5  # CPU usage is the processor time used between two samples
POLL_INTERVAL_S = 0.25  # how often ``stop-vm --wait`` looks at the state
_GLOB_CHARS = re.compile(r"[*?\[]")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")


class VmNotFoundError(HvError):
    """No VM of that name on the server."""


@dataclass
class Context:
    """One hvctl run: the connected server, the settings and where output goes."""

    server: Server
    settings: AppSettings
    json: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    failures: int = 0
    _decision: AccelDecision | None = None

    @property
    def conn(self) -> Any:
        """The libvirt connection."""
        return self.server.conn

    @property
    def exit_code(self) -> int:
        """1 when anything failed, else 0."""
        return 1 if self.failures else 0

    def error(self, exc: HvError) -> None:
        """Report a failure (the run goes on; the exit code becomes 1)."""
        self.failures += 1
        self.err.write(output.error_text(exc.message, exc.hint) + "\n")
        self.err.flush()

    def warn(self, text: str) -> None:
        """Something worth knowing that is not a failure."""
        self.err.write(f"hvctl: warning: {text}\n")
        self.err.flush()

    def note(self, text: str) -> None:
        """Extra information for a person (on stderr, so stdout stays parseable)."""
        self.err.write(f"hvctl: note: {text}\n")

    def say(self, text: str) -> None:
        """A line of human output (nothing in JSON mode)."""
        if not self.json:
            self.out.write(text + "\n")
            self.out.flush()

    def decision(self) -> AccelDecision:
        """KVM or TCG for this server per the settings (probed once per run)."""
        if self._decision is None:
            self._decision = creation.acceleration_for(self.server, self.settings)
        return self._decision


# --- finding VMs --------------------------------------------------------------------------------


def _all_domains(ctx: Context) -> list[Any]:
    with libvirt_errors("Listing the virtual machines"):
        doms = list(ctx.conn.listAllDomains(0))
    return sorted(doms, key=lambda d: (d.name().casefold(), d.name()))


def find_vm(ctx: Context, name: str) -> Any:
    """The VM named ``name`` (or with that UUID); ``VmNotFoundError`` when there is none."""
    try:
        return ctx.conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise HvError(f"Looking up '{name}' failed: {exc.get_error_message()}") from exc
    if _UUID.match(name):
        try:
            return ctx.conn.lookupByUUIDString(name)
        except libvirt.libvirtError:
            pass
    raise VmNotFoundError(
        f"No virtual machine named '{name}' on {ctx.server.uri}.",
        "List the virtual machines with: hvctl get-vm" + _connect_suffix(ctx),
    )


def _connect_suffix(ctx: Context) -> str:
    if ctx.server.uri == _default_uri(ctx):
        return ""
    return f" --connect {shlex.quote(ctx.server.uri)}"


def _default_uri(ctx: Context) -> str:
    return ctx.settings.servers[0] if ctx.settings.servers else ""


def resolve(ctx: Context, patterns: Sequence[str]) -> list[Any]:
    """The VMs named by ``patterns`` (names, UUIDs or wildcards such as ``web*``), each once.

    A name that matches no VM is reported as a failure; a wildcard that matches none only gets a
    warning, as ``Get-VM -Name web*`` returns nothing without an error.
    """
    found: dict[str, Any] = {}
    everything: list[Any] | None = None
    for pattern in patterns:
        try:
            try:
                matches = [find_vm(ctx, pattern)]
            except VmNotFoundError:
                if not _GLOB_CHARS.search(pattern):
                    raise
                if everything is None:
                    everything = _all_domains(ctx)
                matches = [d for d in everything if fnmatch.fnmatchcase(d.name(), pattern)]
                if not matches:
                    ctx.warn(f"No virtual machine matches '{pattern}' on {ctx.server.uri}.")
        except HvError as exc:
            ctx.error(exc)
            continue
        for dom in matches:
            found.setdefault(dom.UUIDString(), dom)
    return list(found.values())


# --- get-vm -------------------------------------------------------------------------------------


def _sample_stats(ctx: Context, active: bool) -> dict[str, VmStats]:
    """Two bulk samples ``SAMPLE_INTERVAL_S`` apart (none when no VM is running)."""
    if not active:
        return {}
    start_time_of: Callable[[str], float | None] | None = None
    if ctx.server.local:
        session = ctx.server.session
        start_time_of = lambda name: local_start_time(name, session)  # noqa: E731
    sampler = StatsSampler(ctx.server.host_info().cpus, start_time_of)
    sampler.sample(ctx.conn)
    time.sleep(SAMPLE_INTERVAL_S)
    return sampler.sample(ctx.conn)


def _current_memory_mib(dom: Any) -> int | None:
    """Memory given to a running VM, for drivers without balloon statistics."""
    try:
        return int(dom.info()[2]) // 1024
    except libvirt.libvirtError:
        return None


def vm_records(ctx: Context, doms: Sequence[Any], with_config: bool) -> list[dict[str, Any]]:
    """``get-vm`` records of ``doms`` (a VM that vanished meanwhile is left out)."""
    rows = []
    for dom in doms:
        try:
            rows.append((dom, inventory.vm_info(dom)))
        except HvError:
            continue
    stats = _sample_stats(ctx, any(info.state.is_active for _d, info in rows))
    records = []
    for dom, info in rows:
        config = None
        if with_config:
            try:
                config = inventory.vm_config(dom)
            except HvError:
                continue
        vm_stats = stats.get(info.uuid)
        fallback = None
        if info.state.is_active and (vm_stats is None or vm_stats.assigned_mib is None):
            fallback = _current_memory_mib(dom)
        records.append(output.vm_record(info, vm_stats, config, fallback))
    return records


def get_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``get-vm [NAME ...]``."""
    doms = resolve(ctx, args.names) if args.names else _all_domains(ctx)
    records = vm_records(ctx, doms, with_config=ctx.json)
    if ctx.json:
        output.write_json(ctx.out, records)
    else:
        output.write_text(ctx.out, output.vm_table(records))
    return ctx.exit_code


# --- new-vm -------------------------------------------------------------------------------------


def _absolute(path: str | None) -> str | None:
    """Paths are taken relative to the current folder, as a shell user expects."""
    return os.path.abspath(path) if path else path


def spec_from_args(args: argparse.Namespace, default_location: str) -> VmSpec:
    """The ``VmSpec`` for ``new-vm``'s arguments (validated later, by the backend)."""
    memory = MemoryConfig(
        startup_mib=args.memory_startup,
        dynamic=args.dynamic_memory,
        minimum_mib=args.memory_minimum if args.dynamic_memory else None,
        maximum_mib=args.memory_maximum if args.dynamic_memory else None,
    )
    disk: DiskChoice = None
    if args.new_vhd_size_gb is not None:
        disk = NewDisk(size_gib=args.new_vhd_size_gb, format=args.vhd_format)
    elif args.vhd_path:
        disk = ExistingDisk(_absolute(args.vhd_path) or "")
    install: InstallChoice = None
    if args.iso:
        install = IsoInstall(_absolute(args.iso) or "")
    elif args.network_boot:
        install = NetworkInstall()
    elif args.kernel:
        install = KernelBoot(_absolute(args.kernel) or "", _absolute(args.initrd) or "", args.cmdline or "")
    return VmSpec(
        name=args.name,
        location=_absolute(args.path) or default_location,
        generation=args.generation,
        memory=memory,
        processors=args.processors,
        network=args.switch,
        disk=disk,
        install=install,
        notes=args.notes or "",
    )


def new_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``new-vm NAME ...``: create a VM, all or nothing."""
    spec = spec_from_args(args, ctx.settings.vm_folder)
    decision = ctx.decision()
    uuid = creation.create_vm(ctx.server, spec, decision)
    dom = ctx.server.lookup(uuid)
    record = output.vm_record(inventory.vm_info(dom), None, inventory.vm_config(dom))
    if not decision.is_kvm:
        ctx.note(f"'{spec.name}' will run under software emulation (TCG): {decision.reason}.")
    if ctx.json:
        record["acceleration"] = {"domain_type": decision.domain_type, "reason": decision.reason}
        output.write_json(ctx.out, record)
        return 0
    memory = f"{record['memory_startup_mib']}"
    if record["dynamic_memory"]:
        memory += f" (dynamic, {record['memory_minimum_mib']}-{record['memory_maximum_mib']})"
    pairs: list[tuple[str, object]] = [
        ("Name", record["name"]),
        ("Id", record["uuid"]),
        ("State", record["state"]),
        ("Generation", record["generation"]),
        ("ProcessorCount", record["processors"]),
        ("MemoryStartup(M)", memory),
        ("SwitchName", ", ".join(a["switch"] for a in record["network_adapters"])),
        ("HardDrives", ", ".join(p for p in record["hard_drives"] if p)),
        ("DVDDrives", ", ".join(p for p in record["dvd_drives"] if p)),
        ("Kernel", record["kernel"]),
        ("Path", record["path"]),
        ("Acceleration", decision.label),
    ]
    shown = [(k, v) for k, v in pairs if v not in ("", None)]
    output.write_text(ctx.out, output.format_list(shown))
    return 0


# --- state changes ------------------------------------------------------------------------------


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


def _state_record(dom: Any) -> dict[str, Any]:
    info = inventory.vm_info(dom)
    return {"name": info.name, "uuid": info.uuid, "state": info.state.value}


def _write_states(ctx: Context, doms: Sequence[Any]) -> None:
    """``--json`` output of the state verbs: each VM's name, UUID and state afterwards."""
    records = []
    for dom in doms:
        try:
            records.append(_state_record(dom))
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


# --- rename-vm, remove-vm -----------------------------------------------------------------------


def rename_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``rename-vm NAME NEWNAME``."""
    dom = find_vm(ctx, args.name)
    old = dom.name()
    try:
        operations.rename(ctx.conn, dom, args.new_name)
    except InvalidStateError as exc:
        exc.hint = exc.hint or state_hint("rename-vm", old, inventory.vm_info(dom).state)
        raise
    dom = find_vm(ctx, args.new_name)
    if ctx.json:
        output.write_json(ctx.out, {"old_name": old, **_state_record(dom)})
    else:
        ctx.say(f"Renamed '{old}' to '{args.new_name}'.")
    return 0


def _confirm(ctx: Context, question: str) -> bool:
    ctx.err.write(f"{question} [y/N] ")
    ctx.err.flush()
    answer = sys.stdin.readline()
    if not answer:
        ctx.err.write("\n")
    return answer.strip().lower() in ("y", "yes")


def remove_vm(ctx: Context, args: argparse.Namespace) -> int:
    """``remove-vm NAME... [--delete-disks] [--force]``."""
    if not args.force and not sys.stdin.isatty():
        raise HvError(
            "Not removing anything: remove-vm asks for confirmation, and standard input is not a terminal.",
            "Add --force to remove without asking.",
        )
    if args.delete_disks and not ctx.server.local:
        raise HvError(
            f"--delete-disks works only with this machine's hypervisor: the disk files of "
            f"{ctx.server.uri} are not on this machine.",
            "Remove the virtual machine without --delete-disks, then delete its disks on that server.",
        )
    records = []
    for dom in resolve(ctx, args.names):
        name = dom.name()
        try:
            config = inventory.vm_config(dom, inactive=True)
            disks = operations.disk_files(config)
            question = _removal_question(name, disks, args.delete_disks)
            if not args.force and not _confirm(ctx, question):
                ctx.say(f"Kept '{name}'.")
                continue
            try:
                report = operations.delete(ctx.conn, dom, args.delete_disks, ctx.server.local)
            except InvalidStateError as exc:
                exc.hint = exc.hint or state_hint("remove-vm", name, inventory.vm_info(dom).state)
                raise
        except HvError as exc:
            ctx.error(exc)
            continue
        if not args.delete_disks:
            report.kept.update({p: "--delete-disks was not given" for p in disks})
        records.append({"name": name, "uuid": config.uuid, "deleted": report.deleted, "kept": report.kept})
        ctx.say(f"Removed virtual machine '{name}'.")
        for path in report.deleted:
            ctx.say(f"  Deleted: {path}")
        for path, why in report.kept.items():
            ctx.say(f"  Kept:    {path} ({why})")
        if ctx.server.local and config.folder and Path(config.folder).exists():
            ctx.say(f"  Kept:    {config.folder} (the folder is not empty)")
    if ctx.json:
        output.write_json(ctx.out, records)
    return ctx.exit_code


def _removal_question(name: str, disks: Sequence[str], delete_disks: bool) -> str:
    if not disks:
        return f"Remove virtual machine '{name}'?"
    if delete_disks:
        return f"Remove virtual machine '{name}' and delete its disk files ({', '.join(disks)})?"
    return f"Remove virtual machine '{name}'? Its disk files are kept."


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
    results = hostpower.host_startup(ctx.conn, ctx.decision(), honour_delays=not args.no_delay, names=names)
    return _report_host_actions(ctx, results)
