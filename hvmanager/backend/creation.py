"""Creating a VM (New Virtual Machine wizard, ``hvctl new-vm``), all or nothing.

The spec is validated against the reference product's limits, the VM's folders and its new disk
are created, then the domain is defined. If any step fails, everything made so far is removed.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import libvirt

from hvmanager.backend import (
    accel,
    inventory,
    mac_pool,
    paths,
    qemuimg,
    vm_network_config,
    vm_network_slots,
    vmspec,
)
from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.connection import Server, libvirt_errors
from hvmanager.backend.domxml import DiskPlan, DomainPlan, build_domain_xml
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.limits import GIB
from hvmanager.backend.models import (
    DEFAULT_BOOT_ORDER,
    BootDevice,
    ExistingDisk,
    IsoInstall,
    KernelBoot,
    NetworkInstall,
    NewDisk,
    VmSpec,
)
from hvmanager.backend.network_models import SYNTHETIC_ADAPTER_NAME, MacRange
from hvmanager.backend.nic_xml import AdapterExtras
from hvmanager.backend.settings import AppSettings, load_settings

log = logging.getLogger(__name__)


def host_context(server: Server) -> vmspec.HostContext:
    """What ``vmspec`` needs to know about a server (blocking)."""
    host = server.host_info()
    qemu_user = None
    if server.local:
        qemu_user = accel.probe(server.conn, local=True, session=server.session).qemu_user
    return vmspec.HostContext(
        existing_names=inventory.vm_names(server.conn),
        host_memory_mib=host.memory_mib,
        host_cpus=host.cpus,
        networks=inventory.network_names(server.conn),
        qemu_user=qemu_user,
        local=server.local,
    )


def acceleration_for(server: Server, settings: AppSettings) -> AccelDecision:
    """KVM or TCG on this server as the settings (or ``HVMANAGER_ACCEL``) ask (blocking)."""
    return decide_acceleration(server, settings.effective_accel(), settings.accel_source())


def decide_acceleration(server: Server, mode: str, chosen_by: str = "the settings") -> AccelDecision:
    """KVM or TCG for new VMs on this server, in the given mode (blocking)."""
    facts = accel.probe(server.conn, local=server.local, session=server.session)
    return accel.decide(mode, facts, chosen_by)


@dataclass
class _Undo:
    """What a half-done creation made, to remove it again in reverse order."""

    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)

    def make_folders(self, folders: tuple[Path, ...]) -> None:
        for folder in folders:
            if not folder.exists():
                folder.mkdir(parents=False)
                folder.chmod(0o755)
                self.folders.append(folder)

    def rollback(self) -> None:
        for file in reversed(self.files):
            file.unlink(missing_ok=True)
        for folder in reversed(self.folders):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only folders we made, and only once empty


def _boot_order(spec: VmSpec) -> tuple[BootDevice, ...]:
    first = None
    if isinstance(spec.install, IsoInstall):
        first = BootDevice.CD
    elif isinstance(spec.install, NetworkInstall):
        first = BootDevice.NETWORK
    if first is None:
        return (BootDevice.HARD_DRIVE, BootDevice.CD, BootDevice.NETWORK)
    return (first, *(d for d in DEFAULT_BOOT_ORDER if d is not first))


def _disk_plans(spec: VmSpec, undo: _Undo) -> tuple[DiskPlan, ...]:
    plans = []
    if isinstance(spec.disk, NewDisk):
        path = Path(vmspec.new_disk_path(spec, spec.disk))
        missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
        undo.make_folders(tuple(reversed(missing)))
        qemuimg.create_disk(path, spec.disk.format, spec.disk.size_gib * GIB)
        undo.files.append(path)
        plans.append(DiskPlan(str(path), spec.disk.format))
    elif isinstance(spec.disk, ExistingDisk):
        plans.append(DiskPlan(spec.disk.path, qemuimg.detect_format(spec.disk.path)))
    if isinstance(spec.install, IsoInstall):
        plans.append(DiskPlan(spec.install.path, "raw", device="cdrom"))
    return tuple(plans)


def _new_adapter_mac(server: Server, mac_range: MacRange | None) -> str:
    """The dynamic MAC address of the new VM's network adapter: the first of the range no VM uses."""
    wanted = mac_range if mac_range is not None else mac_pool.configured_range(load_settings())
    return mac_pool.next_free_mac(wanted, mac_pool.used_macs(server.conn))


def _define(server: Server, plan: DomainPlan) -> Any:
    """Define the domain: its adapter's MAC recorded as dynamic, and a Generation 2 VM given spare
    PCIe root ports (libvirt makes only those its devices need) so adapters can be hot-added."""
    xml = build_domain_xml(plan)
    if plan.mac:
        adapter = AdapterExtras(SYNTHETIC_ADAPTER_NAME, dynamic_mac=True, vmq=False)
        xml = vm_network_config.with_extras(xml, {plan.mac: adapter})
    with libvirt_errors(f"Creating '{plan.name}'"):
        dom: Any = server.conn.defineXML(xml)
    try:
        with libvirt_errors(f"Creating '{plan.name}'"):
            spare = vm_network_slots.with_spare_root_ports(inventory.domain_xml(dom))
            if spare is not None:
                dom = server.conn.defineXML(spare)
    except BaseException:
        with contextlib.suppress(Exception):
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        raise
    return dom


def create_vm(
    server: Server, spec: VmSpec, decision: AccelDecision, mac_range: MacRange | None = None
) -> str:
    """Create the VM described by ``spec``; returns its UUID. Nothing is left behind on failure.

    On a remote server the VM's files are that server's: nothing is created on this machine, so
    a new disk can't be made (attach an existing one) and there is no serial log file. The network
    adapter's dynamic MAC address comes from ``mac_range`` (by default the settings' range).
    """
    ctx = host_context(server)
    problems = vmspec.spec_problems(spec, ctx)
    if not server.local and isinstance(spec.disk, NewDisk):
        problems.append(
            "New disks can only be created on this machine's hypervisor; on a remote "
            "server, attach an existing disk of that server."
        )
    if problems:
        raise ValidationError(problems[0])
    mac = _new_adapter_mac(server, mac_range)
    folders = paths.vm_folders(spec.location, spec.name)
    undo = _Undo()
    try:
        if server.local:
            Path(spec.location).mkdir(parents=True, exist_ok=True)
            undo.make_folders(folders.all())
        plan = DomainPlan(
            name=spec.name,
            domain_type=decision.domain_type,
            generation=spec.generation,
            memory=spec.memory,
            processors=spec.processors,
            folder=str(folders.root),
            created=datetime.now().astimezone(),
            disks=_disk_plans(spec, undo),
            network=spec.network,
            mac=mac,
            boot_order=_boot_order(spec),
            kernel_boot=spec.install if isinstance(spec.install, KernelBoot) else None,
            notes=spec.notes,
            serial_log=str(folders.serial_log) if server.local else None,
        )
        return str(_define(server, plan).UUIDString())
    except BaseException:
        undo.rollback()
        raise
