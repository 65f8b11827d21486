"""Real test-guest VMs on ``qemu:///system`` for the benchmarks, named ``hvbench-...``.

They are made with the application's own ``creation.create_vm`` (TCG, direct kernel boot of the
test guest, no disk) in a fresh folder under ``/var/lib/hvmanager-bench`` that the QEMU user can
reach. ``remove`` destroys and undefines them and deletes their folder; callers run it in a
``finally`` so nothing is left behind, even on failure.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from bench._common import BENCH_PREFIX, BENCH_ROOT, SYSTEM_URI, repo_on_path
from hvmanager.backend import creation
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec
from hvmanager.backend.paths import vm_folders

BOOT_MARKER = "HVTEST: booted"


@dataclass(frozen=True)
class BenchVm:
    """A VM made by a benchmark."""

    name: str
    uuid: str
    serial_log: Path


def make_location() -> Path:
    """A fresh folder for this run's VMs, reachable by ``libvirt-qemu``."""
    BENCH_ROOT.mkdir(parents=True, exist_ok=True)
    BENCH_ROOT.chmod(0o755)
    folder = Path(tempfile.mkdtemp(prefix="run-", dir=BENCH_ROOT))
    folder.chmod(0o755)
    return folder


def remove(names: Sequence[str], location: Path | None = None) -> list[str]:
    """Destroy and undefine these VMs (when they exist) and delete ``location``; returns what went."""
    assert all(n.startswith(BENCH_PREFIX) for n in names), "benchmarks only remove their own VMs"
    removed = []
    conn = libvirt.open(SYSTEM_URI)
    try:
        for name in names:
            try:
                dom = conn.lookupByName(name)
            except libvirt.libvirtError:
                continue
            with contextlib.suppress(libvirt.libvirtError):
                if dom.isActive():
                    dom.destroy()
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                )
            removed.append(name)
    finally:
        conn.close()
    if location is not None:
        shutil.rmtree(location, ignore_errors=True)
    return removed


def guest_image() -> Any:
    """The cached bootable test guest (built on first use from Debian packages)."""
    repo_on_path()
    from tests.support.guest import build_test_guest

    return build_test_guest()


def create(names: Sequence[str], location: Path, memory_mib: int = 256) -> list[BenchVm]:
    """Define one test-guest VM per name with ``creation.create_vm`` (TCG); none is started."""
    guest = guest_image()
    server = Server(SYSTEM_URI)
    server.open()
    made = []
    try:
        decision = creation.decide_acceleration(server, "tcg")
        for name in names:
            spec = VmSpec(
                name=name,
                location=str(location),
                memory=MemoryConfig(memory_mib),
                install=KernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline),
            )
            uuid = creation.create_vm(server, spec, decision)
            made.append(BenchVm(name, uuid, vm_folders(location, name).serial_log))
    finally:
        server.close()
    return made


def start(vms: Sequence[BenchVm]) -> None:
    """Start every VM (blocking until each QEMU runs)."""
    conn = libvirt.open(SYSTEM_URI)
    try:
        for vm in vms:
            conn.lookupByUUIDString(vm.uuid).create()
    finally:
        conn.close()


def wait_booted(vms: Sequence[BenchVm], timeout: float = 180) -> float:
    """Wait until every guest printed ``HVTEST: booted`` on its serial log; returns the seconds waited."""
    started = time.monotonic()
    pending = list(vms)
    while pending:
        pending = [vm for vm in pending if BOOT_MARKER not in _read(vm.serial_log)]
        if not pending:
            break
        if time.monotonic() - started > timeout:
            names = ", ".join(vm.name for vm in pending)
            raise TimeoutError(f"not booted after {timeout:.0f} s: {names}")
        time.sleep(0.2)
    return time.monotonic() - started


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
