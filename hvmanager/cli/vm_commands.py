"""The ``hvctl`` verbs that list, create, rename and remove VMs: get-vm, new-vm, rename-vm, remove-vm.

Each takes the parsed arguments and a ``Context`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend import creation, inventory, operations
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
    VmStats,
)
from hvmanager.backend.stats import StatsSampler, local_start_time
from hvmanager.cli import output
from hvmanager.cli.context import Context, all_domains, find_vm, resolve
from hvmanager.cli.state_commands import state_hint, state_record

SAMPLE_INTERVAL_S = 0.5  # CPU usage is the processor time used between two samples


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
    doms = resolve(ctx, args.names) if args.names else all_domains(ctx)
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


def spec_from_args(args: argparse.Namespace, default_location: str, disk_folder: str | None = None) -> VmSpec:
    """The ``VmSpec`` for ``new-vm``'s arguments (validated later, by the backend).

    ``disk_folder`` is Hyper-V Settings' folder for new disks when one was set, as in the wizard.
    """
    memory = MemoryConfig(
        startup_mib=args.memory_startup,
        dynamic=args.dynamic_memory,
        minimum_mib=args.memory_minimum if args.dynamic_memory else None,
        maximum_mib=args.memory_maximum if args.dynamic_memory else None,
    )
    disk: DiskChoice = None
    if args.new_vhd_size_gb is not None:
        disk = NewDisk(size_gib=args.new_vhd_size_gb, format=args.vhd_format, folder=disk_folder or "")
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
    spec = spec_from_args(args, ctx.settings.vm_folder, ctx.settings.custom_disk_folder())
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
        output.write_json(ctx.out, {"old_name": old, **state_record(dom)})
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
