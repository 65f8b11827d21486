"""The New Virtual Machine Wizard, page for page as in Hyper-V Manager.

``NewVmWizard`` collects a ``VmSpec``: name and location, generation, memory, network, hard disk
and installation options. Every page checks its fields with the ``vmspec`` check the backend runs
again before creating the VM, shows the problem in red and keeps Next disabled until it is fixed.
Finish is offered on every page as soon as the whole spec is valid (``vmspec.spec_problems``), as
Hyper-V lets you finish early with default values. The list of page titles on the left jumps to
any page up to the furthest one reachable with valid pages in between.

The wizard only builds the spec: on Finish it emits ``spec_accepted(VmSpec)`` and the caller
creates the VM off the GUI thread. No libvirt here; the checks only stat files and folders.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QStyle, QWidget

from hvmanager.backend import limits, paths, vmspec
from hvmanager.backend.models import (
    ExistingDisk,
    InstallChoice,
    IsoInstall,
    KernelBoot,
    MemoryConfig,
    NetworkInstall,
    NewDisk,
    VmSpec,
)
from hvmanager.backend.settings import AppSettings
from hvmanager.backend.vmspec import HostContext
from hvmanager.ui.new_vm_wizard_base import FileDialogs, PageId, WizardPage
from hvmanager.ui.new_vm_wizard_machine_pages import (
    NOT_CONNECTED,
    BeforeYouBeginPage,
    GenerationPage,
    MemoryPage,
    NameLocationPage,
    NetworkPage,
)
from hvmanager.ui.new_vm_wizard_media_pages import DiskPage, InstallPage, SummaryPage
from hvmanager.ui.wizard_frame import PageListWizard

__all__ = ["FileDialogs", "NewVmWizard", "PageId", "summary_lines", "summary_text"]

WIZARD_SIZE = (720, 540)


def _memory_text(memory: MemoryConfig) -> str:
    text = f"{memory.startup_mib} MB"
    if memory.dynamic:
        text += f" (Dynamic Memory: {memory.minimum_mib} MB to {memory.maximum_mib} MB)"
    return text


def _disk_text(spec: VmSpec) -> str:
    disk = spec.disk
    if isinstance(disk, NewDisk):
        size = limits.human_size(disk.size_gib * limits.GIB)
        label = limits.format_for_qemu(disk.format)
        return f"{vmspec.new_disk_path(spec, disk)} ({label}, dynamically expanding, {size})"
    if isinstance(disk, ExistingDisk):
        return disk.path
    return "None (attach a virtual hard disk later)"


def _install_text(install: InstallChoice) -> str:
    if isinstance(install, IsoInstall):
        return f"Will be installed from {install.path}"
    if isinstance(install, NetworkInstall):
        return "Will be installed from a network-based installation server"
    if isinstance(install, KernelBoot):
        text = f"Boots the Linux kernel {install.kernel}"
        if install.initrd:
            text += f" with the initial ramdisk {install.initrd}"
        if install.cmdline:
            text += f"; command line: {install.cmdline}"
        return text
    return "Will be installed at a later time"


def summary_lines(spec: VmSpec) -> list[tuple[str, str]]:
    """The Summary page's rows (description, value), in Hyper-V's order."""
    return [
        ("Name", spec.name),
        ("Generation", f"Generation {spec.generation}"),
        ("Memory", _memory_text(spec.memory)),
        ("Network", spec.network or NOT_CONNECTED),
        ("Hard Disk", _disk_text(spec)),
        ("Operating System", _install_text(spec.install)),
        ("Location", f"{paths.vm_folders(spec.location, spec.name).root}/"),
    ]


def summary_text(spec: VmSpec) -> str:
    """The Summary page's text: one ``Description:<tab>value`` line per row (copyable)."""
    return "\n".join(f"{label}:\t{value}" for label, value in summary_lines(spec))


class NewVmWizard(PageListWizard):
    """Hyper-V's New Virtual Machine Wizard; emits ``spec_accepted(VmSpec)`` on Finish."""

    spec_accepted = Signal(object)

    def __init__(self, ctx: HostContext, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._refreshing = False
        self.setWindowTitle("New Virtual Machine Wizard")
        self.setObjectName("newVmWizard")
        self.setup_frame(QStyle.StandardPixmap.SP_ComputerIcon)
        self.before_page = BeforeYouBeginPage(self.spec, ctx)
        self.name_page = NameLocationPage(self.spec, ctx, settings.vm_folder)
        self.generation_page = GenerationPage(self.spec, ctx)
        self.memory_page = MemoryPage(self.spec, ctx)
        self.network_page = NetworkPage(self.spec, ctx)
        self.disk_page = DiskPage(self.spec, ctx, settings.custom_disk_folder())
        self.install_page = InstallPage(self.spec, ctx)
        self.summary_page = SummaryPage(self.spec, ctx)
        for page_id, page in zip(PageId, self._pages(), strict=True):
            first, *rest = page_id.name.lower().split("_")
            page.setObjectName(first + "".join(word.title() for word in rest) + "Page")
            self.setPage(page_id, page)
            page.changed.connect(self._refresh)
        self.add_page_list([page.title() for page in self._pages()[:-1]] + ["Summary"])
        self.currentIdChanged.connect(self._refresh)
        self.resize(*WIZARD_SIZE)
        self._refresh()

    def _pages(self) -> tuple[WizardPage, ...]:
        return (
            self.before_page,
            self.name_page,
            self.generation_page,
            self.memory_page,
            self.network_page,
            self.disk_page,
            self.install_page,
            self.summary_page,
        )

    # --- public API ---------------------------------------------------------------------------

    def spec(self) -> VmSpec:
        """The VM described by every field of the wizard (not necessarily valid)."""
        return VmSpec(
            name=self.name_page.name(),
            location=self.name_page.location(),
            generation=self.generation_page.generation(),
            memory=self.memory_page.memory(),
            network=self.network_page.network(),
            disk=self.disk_page.disk(),
            install=self.install_page.install(),
        )

    def problems(self) -> list[str]:
        """Everything that keeps Finish disabled (``vmspec.spec_problems`` of ``spec()``)."""
        return vmspec.spec_problems(self.spec(), self._ctx)

    def accept(self) -> None:
        """Finish: hand the spec over, unless it is invalid (then stay and show why)."""
        spec = self.spec()
        if vmspec.spec_problems(spec, self._ctx):
            self._refresh()
            return
        self.spec_accepted.emit(spec)
        super().accept()

    # --- keeping pages in step ----------------------------------------------------------------

    def _refresh(self, *_args: object) -> None:
        if self._refreshing:
            return
        self._refreshing = True
        try:
            self._propagate()
            spec = self.spec()
            spec_ok = not vmspec.spec_problems(spec, self._ctx)
            current = self.currentPage()
            for page in self._pages():
                page.refresh(spec, spec_ok, page is current)
            self.summary_page.set_summary(summary_text(spec))
            self.update_page_list()
        finally:
            self._refreshing = False

    def _propagate(self) -> None:
        """Fields that follow other pages: disk name and folder, memory limit, network install."""
        generation = self.generation_page.generation()
        self.memory_page.set_generation(generation)
        self.disk_page.set_generation(generation)
        self.disk_page.follow_vm(self.name_page.name(), self.name_page.location())
        self.install_page.set_network(self.network_page.network())
