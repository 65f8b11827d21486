"""Validation of a new VM, page by page, shared by the New Virtual Machine wizard and ``hvctl``.

Pure functions over a ``HostContext`` (what the server told us): no libvirt here, so the wizard can
check each field as it is typed and the backend checks the whole spec again before creating.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hvmanager.backend import limits, paths, qemuimg
from hvmanager.backend.models import (
    ExistingDisk,
    IsoInstall,
    KernelBoot,
    NetworkInstall,
    NewDisk,
    VmSpec,
)


@dataclass(frozen=True)
class HostContext:
    """Facts about the target server needed to validate a new VM."""

    existing_names: frozenset[str] = frozenset()
    host_memory_mib: int | None = None
    host_cpus: int | None = None
    networks: tuple[str, ...] = ()
    qemu_user: str | None = None  # set for local servers: files must be reachable by this user
    local: bool = True


def name_location_problem(name: str, location: str, ctx: HostContext) -> str | None:
    """Page "Specify Name and Location"."""
    problem = limits.vm_name_problem(name, ctx.existing_names)
    if problem or not ctx.local:
        return problem
    problem = paths.folder_problem(location, ctx.qemu_user)
    if problem:
        return problem
    folder = paths.vm_folders(location, name).root
    if folder.exists() and any(folder.iterdir()):
        return f"The folder '{folder}' already exists and is not empty."
    return None


def memory_problem(spec: VmSpec, ctx: HostContext) -> str | None:
    """Page "Assign Memory"."""
    return limits.memory_problem(spec.memory, spec.generation, ctx.host_memory_mib)


def processors_problem(spec: VmSpec, ctx: HostContext) -> str | None:
    """Virtual processors (not a wizard page in Hyper-V; ``hvctl new-vm --processors``)."""
    return limits.processors_problem(spec.processors, spec.generation, ctx.host_cpus)


def network_problem(spec: VmSpec, ctx: HostContext) -> str | None:
    """Page "Configure Networking"."""
    if spec.network is not None and spec.network not in ctx.networks:
        return f"There is no virtual switch named '{spec.network}' on this server."
    return None


def new_disk_path(spec: VmSpec, disk: NewDisk) -> str:
    """Where the wizard's new disk goes: ``<vm folder>/Virtual Hard Disks/<name>.<ext>``."""
    folder = disk.folder or str(paths.vm_folders(spec.location, spec.name).disks)
    name = disk.name or spec.name + limits.extension_for(disk.format)
    return f"{folder.rstrip('/')}/{name}"


def disk_problem(spec: VmSpec, ctx: HostContext) -> str | None:
    """Page "Connect Virtual Hard Disk"."""
    disk = spec.disk
    if isinstance(disk, NewDisk):
        formats = [fmt for fmt, _ext, _max in limits.DISK_FORMATS.values()]
        if disk.format not in formats:
            return f"Unknown disk format '{disk.format}'."
        if limits.attach_problem(disk.format):
            return limits.attach_problem(disk.format)
        problem = limits.disk_size_problem(disk.size_gib * limits.GIB, disk.format, spec.generation)
        if problem or not ctx.local:
            return problem
        expected = limits.extension_for(disk.format)
        if disk.name and not disk.name.endswith(expected):
            return f"A {limits.format_for_qemu(disk.format)} disk's file name must end with {expected}."
        if disk.folder:
            problem = paths.folder_problem(disk.folder, ctx.qemu_user)
        return problem or paths.new_file_problem(new_disk_path(spec, disk))
    if isinstance(disk, ExistingDisk) and ctx.local:
        problem = paths.existing_file_problem(disk.path, ctx.qemu_user)
        return problem or limits.attach_problem(qemuimg.detect_format(disk.path))
    return None


def install_problem(spec: VmSpec, ctx: HostContext) -> str | None:
    """Page "Installation Options"."""
    install = spec.install
    if isinstance(install, IsoInstall):
        if not install.path.lower().endswith(".iso"):
            return "Choose an image file (.iso)."
        return paths.existing_file_problem(install.path, ctx.qemu_user) if ctx.local else None
    if isinstance(install, NetworkInstall) and spec.network is None:
        return "Installing from the network needs a network connection: choose a switch first."
    if isinstance(install, KernelBoot):
        if not install.kernel:
            return "Choose a Linux kernel image."
        if not ctx.local:
            return None
        problem = paths.existing_file_problem(install.kernel, ctx.qemu_user)
        if not problem and install.initrd:
            problem = paths.existing_file_problem(install.initrd, ctx.qemu_user)
        return problem
    return None


PAGE_CHECKS: tuple[Callable[[VmSpec, HostContext], str | None], ...] = (
    lambda spec, ctx: name_location_problem(spec.name, spec.location, ctx),
    memory_problem,
    processors_problem,
    network_problem,
    disk_problem,
    install_problem,
)


def spec_problems(spec: VmSpec, ctx: HostContext) -> list[str]:
    """Every problem of a complete spec (empty when the VM can be created)."""
    if spec.generation not in (1, 2):
        return ["The generation must be 1 or 2."]
    return [p for p in (check(spec, ctx) for check in PAGE_CHECKS) if p]
