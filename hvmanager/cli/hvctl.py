"""``hvctl``: Hyper-V's VM cmdlets (Get-VM, New-VM, Start-VM, ...) for libvirt/QEMU.

Exit codes: 0 success, 1 a failure (reported on stderr as ``hvctl: error: ...`` with a hint),
2 a usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import libvirt

from hvmanager import __version__
from hvmanager.backend.connection import Server
from hvmanager.backend.errors import HvError
from hvmanager.backend.settings import default_local_uri, load_settings
from hvmanager.cli import (
    checkpoint_commands,
    disk_commands,
    host_commands,
    network_commands,
    state_commands,
    storage_commands,
    vm_commands,
)
from hvmanager.cli.context import Context

PROG = "hvctl"

_DESCRIPTION = """\
Manage the virtual machines of a libvirt/QEMU server from the command line, the way
Hyper-V's PowerShell cmdlets manage Hyper-V VMs (Get-VM becomes 'hvctl get-vm').
It shares its settings (default server, VM folder, acceleration) with the hvmanager
desktop application."""

_EPILOG = """\
Names: verbs that take several NAMEs act on each and go on after a failure. A NAME
may also be a VM's UUID or a wildcard such as 'web*' (quote it for the shell).

Exit status: 0 success; 1 something failed (the reason is on stderr); 2 wrong usage.

Examples:
  hvctl get-vm
  hvctl new-vm web1 --memory-startup 2048 --new-vhd-size-gb 40 --iso /srv/iso/debian.iso
  hvctl start-vm web1 web2
  hvctl stop-vm web1 --wait 120
  hvctl checkpoint-vm web1 --name "before upgrade"
  hvctl --connect qemu+ssh://admin@host/system get-vm --json

Run 'hvctl VERB --help' for the options of a verb."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' line breaks; wider option column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _common_options(parser: argparse.ArgumentParser) -> None:
    """``--connect`` and ``--json`` after the verb (they don't override values given before it)."""
    group = parser.add_argument_group("global options")
    group.add_argument(
        "--connect",
        metavar="URI",
        default=argparse.SUPPRESS,
        help="libvirt server to manage (default: the first server in the settings)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print machine-readable JSON instead of text",
    )


def _names(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME", help=f"virtual machine(s) to {what}")


def _verb(
    subparsers: Any, name: str, summary: str, description: str, handler: Callable[..., int]
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=f"{summary}\n\n{description}", formatter_class=_Formatter
    )
    parser.set_defaults(handler=handler, verb=name)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the number of seconds can't be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: global options and one sub-command per verb."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=_DESCRIPTION, epilog=_EPILOG, formatter_class=_Formatter
    )
    parser.add_argument(
        "--connect",
        metavar="URI",
        default=None,
        help="libvirt server to manage, e.g. qemu:///system, "
        "qemu+ssh://host/system, test:///default (default: the first server "
        f"in the settings, normally {default_local_uri()}); also accepted "
        "after the verb",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="print machine-readable JSON instead of text; also accepted after the verb",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__} (hvmanager; libvirt {_libvirt_version()})",
    )
    sub = parser.add_subparsers(title="verbs", metavar="VERB", dest="verb", required=True)

    p = _verb(
        sub,
        "get-vm",
        "List virtual machines and their state (Get-VM).",
        """\
Prints one row per VM: Name, State (Off, Running, Paused, Saved, Stopping, Starting),
CPUUsage(%) (share of all the host's processors, measured over half a second),
MemoryAssigned(M) (memory the guest has now, MB), Uptime ([d.]hh:mm:ss) and Status.
Without NAMEs, lists every VM of the server, sorted by name.

With --json, prints a list of objects with: name, uuid, state, cpu_usage,
memory_assigned_mib, uptime_s, status, has_saved_state, generation, processors,
memory_startup_mib, dynamic_memory, memory_minimum_mib, memory_maximum_mib, notes,
path (the VM's folder), hard_drives, dvd_drives, network_adapters, kernel.

Example:
  hvctl get-vm 'web*' --json""",
        vm_commands.get_vm,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="VMs to show (default: all)")
    _common_options(p)

    p = _verb(
        sub,
        "new-vm",
        "Create a virtual machine (New-VM).",
        """\
The VM is created in PATH/NAME/ with the sub-folders 'Virtual Machines' (serial log),
'Virtual Hard Disks' and 'Snapshots', as the New Virtual Machine wizard does. The
values are checked against Hyper-V's limits first; if anything fails, nothing is left
behind. KVM or software emulation (TCG) is chosen per the settings (HVMANAGER_ACCEL
overrides them). Prints the new VM (with --json, the same object as get-vm --json).

Disk: --new-vhd-size-gb creates a dynamically expanding disk, --vhd-path attaches an
existing one; with neither, the VM has no hard disk.
Installation: --iso (DVD first in the boot order), --network-boot (PXE; needs --switch),
--kernel (boot a Linux kernel directly); with none, the hard disk boots first.

Examples:
  hvctl new-vm web1 --memory-startup 2048 --processors 2 --new-vhd-size-gb 40 \\
      --iso /srv/iso/debian-12.iso --switch default
  hvctl new-vm lab --generation 2 --dynamic-memory --memory-startup 1024 \\
      --memory-minimum 512 --memory-maximum 4096 --vhd-path /srv/disks/lab.qcow2""",
        vm_commands.new_vm,
    )
    p.add_argument("name", metavar="NAME", help="name of the new VM (1-100 characters, unique)")
    p.add_argument(
        "--path",
        metavar="LOCATION",
        help="folder in which the VM's folder is made (default: the settings' VM folder)",
    )
    p.add_argument(
        "--generation",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: BIOS, IDE disks (default); 2: UEFI, SCSI disks",
    )
    p.add_argument("--notes", metavar="TEXT", help="free text kept with the VM")
    group = p.add_argument_group("memory and processors")
    group.add_argument(
        "--memory-startup",
        type=int,
        metavar="MB",
        default=1024,
        help="memory at start, in MB: 32 or more, a multiple of 2 (default: 1024)",
    )
    group.add_argument(
        "--dynamic-memory",
        action="store_true",
        help="let the guest's memory vary between --memory-minimum and --memory-maximum",
    )
    group.add_argument(
        "--memory-minimum",
        type=int,
        metavar="MB",
        help="least memory with --dynamic-memory (default: the startup memory)",
    )
    group.add_argument(
        "--memory-maximum",
        type=int,
        metavar="MB",
        help="most memory with --dynamic-memory (default: the startup memory)",
    )
    group.add_argument(
        "--processors", type=int, metavar="N", default=1, help="virtual processors (default: 1)"
    )
    group = p.add_argument_group("network")
    group.add_argument(
        "--switch",
        metavar="NETWORK",
        help="libvirt network (virtual switch) to connect to (default: not connected)",
    )
    group = p.add_argument_group("hard disk (one of)")
    disk = group.add_mutually_exclusive_group()
    disk.add_argument(
        "--new-vhd-size-gb",
        type=int,
        metavar="N",
        help="create a new disk of N GB in the VM's 'Virtual Hard Disks' folder (or in the disk "
        "folder of Hyper-V Settings, when one was set)",
    )
    disk.add_argument("--vhd-path", metavar="PATH", help="attach an existing virtual hard disk file")
    group.add_argument(
        "--vhd-format",
        choices=("qcow2", "vpc", "vhd", "raw"),
        default=None,
        help="format of the new disk (default: qcow2; vhd = vpc). VHDX can't be attached to a VM "
        "by libvirt: convert such disks to qcow2",
    )
    group = p.add_argument_group("installation (one of)")
    install = group.add_mutually_exclusive_group()
    install.add_argument("--iso", metavar="PATH", help="install from this bootable .iso image")
    install.add_argument(
        "--network-boot", action="store_true", help="install from a network installation server (PXE)"
    )
    install.add_argument("--kernel", metavar="PATH", help="boot this Linux kernel image directly")
    group.add_argument("--initrd", metavar="PATH", help="initial RAM disk for --kernel")
    group.add_argument("--cmdline", metavar="TEXT", help="kernel command line for --kernel")
    _common_options(p)

    p = _verb(
        sub,
        "start-vm",
        "Start virtual machines (Start-VM).",
        """\
Starts VMs that are off, and restores saved ones from their saved state. A VM that is
already running is left alone (with a warning).""",
        state_commands.simple_action,
    )
    _names(p, "start")
    _common_options(p)

    p = _verb(
        sub,
        "stop-vm",
        "Shut down or turn off virtual machines (Stop-VM).",
        """\
By default, asks each guest to shut down (ACPI power button) and returns at once;
with --wait, waits until every VM is off and fails (exit status 1) for those still
running after SECONDS. --turn-off powers the VMs off at once, like pulling the plug:
unsaved data in the guest is lost (it returns once they are off; --wait is not needed).
A VM that is already off is left alone. A saved VM can't be stopped: start it, or
discard its saved state with remove-vmsavedstate.

Examples:
  hvctl stop-vm web1 --wait 120
  hvctl stop-vm web1 web2 --turn-off""",
        state_commands.stop_vm,
    )
    _names(p, "stop")
    p.add_argument(
        "--turn-off", action="store_true", help="power off at once instead of asking the guest to shut down"
    )
    p.add_argument(
        "--wait",
        type=_positive_float,
        metavar="SECONDS",
        help="wait up to SECONDS for the guests to shut down",
    )
    _common_options(p)

    p = _verb(
        sub,
        "save-vm",
        "Save virtual machines (Save-VM).",
        """\
Writes each VM's memory to disk and stops it; the VM is then Saved, and start-vm
resumes it where it was. Returns when the state is saved.""",
        state_commands.simple_action,
    )
    _names(p, "save")
    _common_options(p)

    p = _verb(
        sub,
        "suspend-vm",
        "Pause virtual machines (Suspend-VM).",
        """\
Stops the VMs' processors; they keep their memory (state Paused) until resume-vm.""",
        state_commands.simple_action,
    )
    _names(p, "pause")
    _common_options(p)

    p = _verb(
        sub,
        "resume-vm",
        "Resume paused virtual machines (Resume-VM).",
        """\
Lets paused VMs run again.""",
        state_commands.simple_action,
    )
    _names(p, "resume")
    _common_options(p)

    p = _verb(
        sub,
        "restart-vm",
        "Reset virtual machines (Restart-VM).",
        """\
A hard reset, as pressing the reset button: the guest does not shut down first, and
unsaved data in it is lost.""",
        state_commands.simple_action,
    )
    _names(p, "reset")
    _common_options(p)

    p = _verb(
        sub,
        "rename-vm",
        "Rename a virtual machine (Rename-VM).",
        """\
The VM must be off, without a saved state (libvirt can't rename it otherwise). Its folder
and files keep their names, as in Hyper-V.""",
        vm_commands.rename_vm,
    )
    p.add_argument("name", metavar="NAME", help="the VM to rename")
    p.add_argument("new_name", metavar="NEWNAME", help="its new name (1-100 characters, unique)")
    _common_options(p)

    p = _verb(
        sub,
        "remove-vm",
        "Delete virtual machines (Remove-VM).",
        """\
Removes the VMs (they must be off or saved; a saved state is discarded). Their virtual
hard disk files are kept unless --delete-disks is given; a disk another VM uses and
DVD images are always kept. Lists what was deleted and what was kept, and why.
Asks for confirmation unless --force is given; without a terminal to ask on, it
refuses unless --force is given.

Example:
  hvctl remove-vm old1 old2 --delete-disks --force""",
        vm_commands.remove_vm,
    )
    _names(p, "remove")
    p.add_argument("--delete-disks", action="store_true", help="also delete the VMs' virtual hard disk files")
    p.add_argument("--force", action="store_true", help="don't ask for confirmation")
    _common_options(p)

    p = _verb(
        sub,
        "remove-vmsavedstate",
        "Discard saved states (Remove-VMSavedState).",
        """\
Deletes the saved memory of saved VMs; they become Off (as after pulling the plug),
and their disks are untouched.""",
        state_commands.simple_action,
    )
    _names(p, "discard the saved state of")
    _common_options(p)

    p = _verb(
        sub,
        "host-shutdown",
        "Apply every VM's Automatic Stop Action (the host is shutting down).",
        """For each VM made by hvmanager that is running: save it, turn it off, or ask its guest to shut
down (turning it off when it has not within --timeout), as set in Settings > Automatic Stop
Action; and remember which VMs were running, for "start if it was running". Meant for the
host's shutdown: resources/hvmanager-vms.service runs it.""",
        host_commands.host_shutdown,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these VMs (default: all)")
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=300,
        metavar="SECONDS",
        help="how long a guest may take to shut down (default 300)",
    )
    _common_options(p)

    p = _verb(
        sub,
        "host-startup",
        "Apply every VM's Automatic Start Action (the host has started).",
        """Starts the VMs made by hvmanager whose Automatic Start Action is "Always start", and those
set to "start if it was running" that were running at host-shutdown, each after its
startup delay. Meant for the host's boot: resources/hvmanager-vms.service runs it.""",
        host_commands.host_startup,
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these VMs (default: all)")
    p.add_argument("--no-delay", action="store_true", help="ignore the startup delays")
    _common_options(p)

    p = _verb(
        sub,
        "balance-memory",
        "Dynamic Memory: give running VMs what their guests use, within their range.",
        """For each running VM with Dynamic Memory, sets its memory to what the guest uses plus a buffer
(--buffer, default 20 %), kept between the VM's Minimum and Maximum RAM. The guest must have
the virtio balloon driver. Runs once, or every --interval seconds until interrupted (as a
service: resources/hvmanager-memory.service).""",
        host_commands.balance_memory,
    )
    p.add_argument(
        "--interval",
        type=_positive_float,
        metavar="SECONDS",
        help="keep balancing every SECONDS (default: once)",
    )
    p.add_argument(
        "--buffer",
        type=int,
        default=20,
        metavar="PERCENT",
        help="memory buffer above what the guest uses (5-2000, default 20)",
    )
    _common_options(p)
    _checkpoint_verbs(sub)
    return parser


_CHECKPOINT_ARG_HELP = "the checkpoint's name, or its id when several share the name"


def _vm_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("vm", metavar="VM", help="the virtual machine (its name or UUID)")


def _checkpoint_verbs(sub: Any) -> None:
    """checkpoint-vm, get-vmcheckpoint, restore-vmcheckpoint, revert-vm, remove-vmcheckpoint,
    rename-vmcheckpoint and get-vmcheckpoint-chain (Hyper-V's *-VMSnapshot cmdlets)."""
    p = _verb(
        sub,
        "checkpoint-vm",
        "Take a checkpoint of a virtual machine (Checkpoint-VM).",
        """\
Works while the VM runs, is paused, saved or off. From now on the VM writes to new
differencing disks; the checkpoint keeps the disks as they are now and, for a standard
checkpoint of a VM that is not off, its memory. The VM's checkpoint type (Settings >
Management > Checkpoints) decides: a production checkpoint freezes the guest's file
systems through the QEMU guest agent; when the agent does not answer, a standard
checkpoint is taken instead and the reason is printed (unless the type forbids that).
Checkpoints work on VMs of this computer only.

With --json, prints the checkpoint as get-vmcheckpoint --json does, plus fallback_reason.

Example:
  hvctl checkpoint-vm web1 --name 'before upgrade'""",
        checkpoint_commands.checkpoint_vm,
    )
    _vm_argument(p)
    p.add_argument(
        "--name",
        metavar="NAME",
        help="name of the checkpoint, 1-100 characters (default: '<VM> - (<date> - <time>)')",
    )
    _common_options(p)

    p = _verb(
        sub,
        "get-vmcheckpoint",
        "Show the checkpoint tree of a virtual machine (Get-VMSnapshot).",
        """\
Prints one row per checkpoint: VMName, Name (indented under its parent, as in the
Checkpoints pane), SnapshotType (Standard or Production), CreationTime and
ParentSnapshotName. The row "Now" stands under the checkpoint the VM's current state
derives from. With --name, prints only the checkpoints with that name or id (wildcards
such as 'before*' allowed), without the tree.

With --json, prints an object with vm_name, vm_uuid, now (the id of the checkpoint Now
derives from, or null) and checkpoints, oldest first, each with: id, name, parent_id,
parent_name, created (ISO 8601), type, memory (whether it holds the VM's memory),
vm_state (the VM's state when it was taken) and children (ids).

Example:
  hvctl get-vmcheckpoint web1 --json""",
        checkpoint_commands.get_vmcheckpoint,
    )
    _vm_argument(p)
    p.add_argument("--name", metavar="NAME", help="only the checkpoints with this name (or id, or wildcard)")
    _common_options(p)

    p = _verb(
        sub,
        "restore-vmcheckpoint",
        "Apply a checkpoint (Restore-VMSnapshot).",
        """\
Returns the VM to the checkpoint: the VM's current state is discarded (its differencing
disks are deleted) and new ones are made over the checkpoint's. A checkpoint that holds
memory leaves the VM running (or paused, or saved) as it was then; one without leaves it
off. The checkpoint itself is never changed. --take-checkpoint-first keeps the current
state as a new checkpoint before (Hyper-V's "Take Checkpoint and Apply").

Example:
  hvctl restore-vmcheckpoint web1 "before upgrade" --take-checkpoint-first""",
        checkpoint_commands.restore_vmcheckpoint,
    )
    _vm_argument(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help=_CHECKPOINT_ARG_HELP)
    p.add_argument(
        "--take-checkpoint-first",
        action="store_true",
        help="take a checkpoint of the current state before applying",
    )
    _common_options(p)

    p = _verb(
        sub,
        "revert-vm",
        "Revert a virtual machine to its last checkpoint (Revert).",
        """\
Applies the checkpoint the VM's current state derives from (the one "Now" stands under in
get-vmcheckpoint), discarding everything the VM did since.""",
        checkpoint_commands.revert_vm,
    )
    _vm_argument(p)
    _common_options(p)

    p = _verb(
        sub,
        "remove-vmcheckpoint",
        "Delete a checkpoint or a checkpoint subtree (Remove-VMSnapshot).",
        """\
The checkpoint's data is merged into the disk that depends on it (while the VM runs, too),
never lost; a differencing disk nothing reads any more is deleted at once. --subtree also
deletes every checkpoint below it (Remove-VMSnapshot -IncludeAllChildSnapshots).
Before starting, prints the space the merge may need, and refuses when the file system
has less free unless --force is given. Shows "Merging (n %)" on a terminal.
An operation already running on the VM's checkpoints is waited for; --no-wait refuses
instead.

Example:
  hvctl remove-vmcheckpoint web1 "before upgrade" --subtree""",
        checkpoint_commands.remove_vmcheckpoint,
    )
    _vm_argument(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help=_CHECKPOINT_ARG_HELP)
    p.add_argument("--subtree", action="store_true", help="also delete every checkpoint below it")
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="refuse, instead of waiting, when another checkpoint operation runs on the VM",
    )
    p.add_argument("--force", action="store_true", help="merge even when the free space looks too small")
    _common_options(p)

    p = _verb(
        sub,
        "rename-vmcheckpoint",
        "Rename a checkpoint (Rename-VMSnapshot).",
        """\
Names need not be unique.""",
        checkpoint_commands.rename_vmcheckpoint,
    )
    _vm_argument(p)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help=_CHECKPOINT_ARG_HELP)
    p.add_argument("new_name", metavar="NEWNAME", help="its new name (1-100 characters)")
    _common_options(p)

    p = _verb(
        sub,
        "get-vmcheckpoint-chain",
        "Show the files behind each virtual hard disk.",
        """\
For each disk of the VM's current state (or of --checkpoint), the chain of files from
the one written to down to the base disk: File, Format, FileSize (space on the host),
VirtualSize, and Owner (Now, the checkpoint that froze it, or Base disk).

With --json, prints a list with one object per disk: target, total_size (bytes on the
host) and files, each with file, format, file_size, virtual_size, owner and owner_id.""",
        checkpoint_commands.get_vmcheckpoint_chain,
    )
    _vm_argument(p)
    p.add_argument("--checkpoint", metavar="CHECKPOINT", help="the chains of this checkpoint instead")
    _common_options(p)

    disk_commands.add_verbs(sub, _verb, _common_options)
    storage_commands.add_verbs(sub, _verb, _common_options)
    network_commands.add_verbs(sub, _verb, _common_options)


def _libvirt_version() -> str:
    version = libvirt.getVersion()
    return f"{version // 1_000_000}.{version // 1000 % 1000}.{version % 1000}"


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Combinations argparse can't express; a problem is a usage error (exit status 2)."""
    if args.verb != "new-vm":
        return
    if (args.initrd or args.cmdline) and not args.kernel:
        parser.error("new-vm: --initrd and --cmdline need --kernel")
    if args.vhd_format and args.new_vhd_size_gb is None:
        parser.error("new-vm: --vhd-format needs --new-vhd-size-gb")
    args.vhd_format = {"vhd": "vpc", None: "qcow2"}.get(args.vhd_format, args.vhd_format)
    limits_given = args.memory_minimum is not None or args.memory_maximum is not None
    if limits_given and not args.dynamic_memory:
        parser.error("new-vm: --memory-minimum and --memory-maximum need --dynamic-memory")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line (exits with status 2 on a usage error, 0 for --help)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run hvctl; returns the exit status."""
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else 2
    settings = load_settings()
    uri = args.connect or (settings.servers[0] if settings.servers else default_local_uri())
    server = Server(uri)
    ctx = Context(server, settings, json=args.json)
    try:
        server.open()
        handler: Callable[[Context, argparse.Namespace], int] = args.handler
        return handler(ctx, args)
    except HvError as exc:
        ctx.error(exc)
        return 1
    except libvirt.libvirtError as exc:  # a call the backend did not wrap
        ctx.error(HvError(f"{args.verb} failed: {exc.get_error_message() or exc}"))
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):  # `hvctl get-vm | head`
            _silence_stdout()
            return 1
        ctx.error(HvError(f"{args.verb} failed: {exc}"))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("hvctl: interrupted\n")
        return 130
    finally:
        server.close()


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the exit flush does not fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
