"""What every ``hvctl`` verb works with: the run's ``Context`` and finding the VMs it names.

A verb that acts on several VMs acts on each in turn, reports a failure on stderr and carries on;
the exit code is 1 when anything failed. Backend failures arrive as ``HvError`` (message + hint).
The verbs are in ``vm_commands``, ``state_commands`` and ``host_commands``.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import libvirt

from hvmanager.backend import creation
from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.connection import Server, libvirt_errors
from hvmanager.backend.errors import HvError
from hvmanager.backend.settings import AppSettings
from hvmanager.cli import output

# hvctl's ``verb(sub, name, summary, description, handler)``, which modules that declare verbs
# (``disk_commands``, ``storage_commands``) are handed by ``hvctl.build_parser``.
VerbMaker = Callable[[Any, str, str, str, Callable[..., int]], argparse.ArgumentParser]
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


def all_domains(ctx: Context) -> list[Any]:
    """Every VM on the server, sorted by name."""
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
                    everything = all_domains(ctx)
                matches = [d for d in everything if fnmatch.fnmatchcase(d.name(), pattern)]
                if not matches:
                    ctx.warn(f"No virtual machine matches '{pattern}' on {ctx.server.uri}.")
        except HvError as exc:
            ctx.error(exc)
            continue
        for dom in matches:
            found.setdefault(dom.UUIDString(), dom)
    return list(found.values())
