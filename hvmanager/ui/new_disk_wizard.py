"""The New Virtual Hard Disk Wizard, page for page as in Hyper-V Manager (Actions ▸ New ▸ Hard Disk).

Before You Begin → Choose Disk Format → Choose Disk Type → Specify Name and Location → Configure
Disk → Summary. The pages build a ``NewVhd`` request; each field is checked as it is typed (the
size and the VHDX options with ``limits``), and the whole request by ``vhd.new_vhd_problems`` off
the GUI thread. The back end's problems about the file's name and folder are shown on Specify Name
and Location, the others on Configure Disk: the request is checked a second time with a name that
surely is free, and what goes away with it belongs to the name. Finish creates the disk through the
``DiskController`` with a progress bar and emits ``disk_created(path)``.
"""

from __future__ import annotations

import enum
import os
import tempfile
import uuid
from collections.abc import Callable, Hashable
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from hvmanager.backend import limits, vhd
from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_create import copy_size
from hvmanager.backend.vhd_types import DiskType, NewVhd, VhdInfo
from hvmanager.controllers.disks import DiskController
from hvmanager.controllers.tasks import spawn
from hvmanager.ui.disk_wizard_base import DiskWizard
from hvmanager.ui.disk_wizard_pages import (
    TYPE_LABELS,
    SummaryPage,
    TextPage,
    format_page,
    size_bytes,
    size_field_problem,
    type_page,
)
from hvmanager.ui.new_disk_wizard_pages import ConfigureDiskPage, NameLocationPage


class NewDiskPage(enum.IntEnum):
    """The wizard's pages, in order (also their ids)."""

    BEFORE_YOU_BEGIN = 0
    FORMAT = 1
    TYPE = 2
    NAME_LOCATION = 3
    CONFIGURE = 4
    SUMMARY = 5


class NewDiskWizard(DiskWizard):
    """Hyper-V's New Virtual Hard Disk Wizard; ``disk_created(str path)`` once the file exists."""

    disk_created = Signal(str)

    def __init__(self, controller: DiskController, folder: str, parent: QWidget | None = None) -> None:
        """``folder``: where the file goes unless the user picks another (the host's disk folder)."""
        super().__init__(controller, "New Virtual Hard Disk Wizard", self.perform, parent)
        self.setObjectName("newDiskWizard")
        self._parent_note = ""
        self._copy_note = ""
        self.before_page = TextPage(
            "Before You Begin",
            "This wizard helps you create a new virtual hard disk.",
            [
                "Virtual hard disks provide storage for virtual machines. They are files on this "
                "computer that a virtual machine sees as its hard disks.",
                "You can create a blank disk, copy the contents of a physical or virtual disk into "
                "it, or create a differencing disk that records only the changes made to a parent "
                "disk. A new disk is written under a temporary name and gets its name only when it "
                "is complete.",
            ],
        )
        self.format_page = format_page()
        self.type_page = type_page()
        self.name_page = NameLocationPage(folder)
        self.configure_page = ConfigureDiskPage()
        summary = SummaryPage(
            "Completing the New Virtual Hard Disk Wizard",
            "You have successfully completed the New Virtual Hard Disk Wizard.",
            "You are about to create the following virtual hard disk.",
            "To create the virtual hard disk and close this wizard, click Finish.",
        )
        self.configure_page.host_disks_wanted.connect(lambda: spawn(self._list_host_disks()))
        pages = [self.before_page, self.format_page, self.type_page, self.name_page, self.configure_page]
        names = ("beforePage", "formatPage", "typePage", "namePage", "configurePage")
        for page, name in zip(pages, names, strict=True):
            page.setObjectName(name)
        summary.setObjectName("summaryPage")
        self.install_pages([*pages, summary], [*(page.title() for page in pages), "Summary"])

    # --- the request ----------------------------------------------------------------------------

    def disk_format(self) -> str:
        """The format chosen on Choose Disk Format (qemu-img name)."""
        return str(self.format_page.value())

    def disk_type(self) -> DiskType:
        """The type chosen on Choose Disk Type."""
        value = self.type_page.value()
        assert isinstance(value, DiskType)
        return value

    def file_format(self) -> str:
        """The format the file will have: a differencing disk is always QCOW2 here."""
        return "qcow2" if self.disk_type() is DiskType.DIFFERENCING else self.disk_format()

    def request(self) -> NewVhd:
        """The disk described by every field of the wizard (not necessarily valid)."""
        page, fmt, kind = self.configure_page, self.disk_format(), self.disk_type()
        vhdx = fmt == "vhdx"
        logical, physical = page.sector_sizes() if vhdx else (None, None)
        block = page.block_size() if vhdx else None
        path = self.name_page.path()
        if kind is DiskType.DIFFERENCING:
            parent = page.parent_path()
            return NewVhd(path, fmt, kind, None, parent, None, block, logical, physical)
        source = page.source()
        size = size_bytes(page.size_text()) if source is None else None
        return NewVhd(path, fmt, kind, size, None, source, block, logical, physical)

    # --- checks ---------------------------------------------------------------------------------

    def propagate(self) -> None:
        """The name's extension and the Configure Disk page follow the format and type."""
        self.name_page.follow_extension(limits.extension_for(self.file_format()))
        kind = self.disk_type()
        self.configure_page.set_kind(self.disk_format(), kind)
        self.configure_page.set_notes(self._parent_note, self._copy_note)

    def field_problem(self, page_id: int) -> str | None:
        """The name, the size, the choice of what to copy, the parent and VHDX options as typed."""
        if page_id == NewDiskPage.NAME_LOCATION:
            return self.name_page.field_problem()
        if page_id != NewDiskPage.CONFIGURE:
            return None
        page, kind = self.configure_page, self.disk_type()
        if kind is DiskType.DIFFERENCING:
            problem = None if page.parent_path() else "Enter the path of the parent virtual hard disk."
        elif page.physical_radio.isChecked() and not page.source():
            problem = "Select the physical disk whose contents the new disk gets."
        elif page.virtual_radio.isChecked() and not page.source():
            problem = "Enter the path of the virtual hard disk whose contents the new disk gets."
        elif page.source() is None:
            problem = size_field_problem(page.size_text(), self.disk_format())
        else:
            problem = None
        request = self.request()
        return problem or limits.vhdx_options_problem(
            self.file_format(),
            kind is DiskType.FIXED,
            kind is DiskType.DIFFERENCING,
            request.block_size,
            request.logical_sector_size,
            request.physical_sector_size,
        )

    def check_key(self) -> Hashable:
        """The request: the back end checks it whenever a field changes."""
        return self.request()

    async def run_checks(self, key: Hashable) -> dict[int, str]:
        """``vhd.new_vhd_problems``, by page; the notes about the parent or the copied disk."""
        assert isinstance(key, NewVhd)
        await self._read_notes(key)
        found = await self.controller.new_vhd_problems(key)
        if not found:
            return {}
        probe = os.path.join(tempfile.gettempdir(), f".hvmanager-probe-{uuid.uuid4().hex}")
        probe += limits.extension_for(self.file_format_of(key))
        elsewhere = await self.controller.new_vhd_problems(replace(key, path=probe))
        by_page: dict[int, str] = {}
        for problem in found:
            page = NewDiskPage.CONFIGURE if problem in elsewhere else NewDiskPage.NAME_LOCATION
            by_page.setdefault(page, problem)
        return by_page

    @staticmethod
    def file_format_of(request: NewVhd) -> str:
        """The format the file of ``request`` will have."""
        return "qcow2" if request.type is DiskType.DIFFERENCING else request.format

    async def _read_notes(self, request: NewVhd) -> None:
        """What the Configure Disk page says about the parent or the disk to copy."""
        self._parent_note = self._copy_note = ""
        if request.type is DiskType.DIFFERENCING and request.parent:
            info = await self._inspect_quietly(request.parent)
            if info is not None:
                _fmt, why = vhd.differencing_format(info.format)
                self._parent_note = (
                    f"The parent is a {info.format_label} disk of {limits.human_size(info.size)}."
                )
                self._parent_note += f" {why}" if why else ""
        elif request.source and not request.source.startswith("/dev/"):
            info = await self._inspect_quietly(request.source)
            if info is not None:
                self._copy_note = copy_size(info.size)[1] or ""

    async def _inspect_quietly(self, path: str) -> VhdInfo | None:
        """Inspect a file for a note (its problems are the request's check to report)."""
        try:
            return (await self.controller.inspect(path, with_users=False)).info
        except HvError:
            return None

    async def _list_host_disks(self) -> None:
        try:
            disks = await self.controller.host_disks()
        except HvError as exc:
            disks, problem = None, str(exc)
        else:
            problem = ""
        if not self.closed():
            self.configure_page.set_host_disks(disks, problem)

    # --- summary and Finish ---------------------------------------------------------------------

    def summary(self) -> str:
        """One ``Description:<tab>value`` line per choice (copyable)."""
        request, kind = self.request(), self.disk_type()
        folder, name = os.path.split(request.path)
        rows = [
            ("Format", limits.format_for_qemu(self.file_format())),
            ("Type", TYPE_LABELS[kind]),
            ("Name", name),
            ("Location", folder),
        ]
        if kind is DiskType.DIFFERENCING:
            rows.append(("Parent", request.parent or ""))
        elif request.source is not None:
            rows.append(("Copied from", request.source))
        else:
            size = request.size_bytes
            rows.append(
                ("Size", limits.human_size(size) if size else self.configure_page.size_text() + " GB")
            )
        if request.block_size:
            rows.append(("Block size", limits.human_size(request.block_size)))
        for label, value in (
            ("Logical sector size", request.logical_sector_size),
            ("Physical sector size", request.physical_sector_size),
        ):
            if value:
                rows.append((label, f"{value} bytes"))
        return "\n".join(f"{label}:\t{value}" for label, value in rows)

    def running_text(self) -> str:
        """What the progress bar stands for."""
        return f"Creating the virtual hard disk '{self.request().path}'..."

    async def perform(self, on_progress: Callable[[float], None]) -> VhdInfo:
        """Create the disk."""
        info = await self.controller.create(self.request(), on_progress)
        self.disk_created.emit(info.path)
        return info
