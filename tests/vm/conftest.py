"""Fixtures for tests with real guests on the system libvirt daemon."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.paths import vm_folders
from tests.conftest import vm_name

# GUI fixtures (run, make_window, watchdog, event_loop_qt) are shared with the GUI tests.
from tests.gui.conftest import event_loop_qt, make_window, run, watchdog  # noqa: F401

pytestmark = pytest.mark.vm


def create_guest_vm(server: Server, location: Path, name: str, guest: Any, options: str = "") -> Any:
    """A VM that boots the test guest with extra ``hvtest.*`` options, with a 1 GiB qcow2 disk."""
    spec = VmSpec(
        name=name,
        location=str(location),
        memory=MemoryConfig(256),
        disk=NewDisk(1),
        install=KernelBoot(str(guest.kernel), str(guest.initrd), f"{guest.cmdline} {options}".strip()),
    )
    return server.lookup(creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg")))


@pytest.fixture
def server(clean_domains: str) -> Iterator[Server]:
    """An open backend connection to the system daemon (this run's test VMs cleaned around it)."""
    srv = Server(clean_domains)
    srv.open()
    yield srv
    srv.close()


@dataclass(frozen=True)
class GuestVm:
    """A defined (not started) VM that boots the test guest."""

    name: str
    uuid: str
    serial_log: Path
    folder: Path


@pytest.fixture
def guest_vm(
    clean_domains: str, vm_location: Path, test_guest: Any, request: pytest.FixtureRequest
) -> Iterator[GuestVm]:
    """A VM made with the backend (not the wizard) that boots the test guest under TCG."""
    name = vm_name(request.node.name.removeprefix("test_")[:30])
    # A connection of its own, closed at once: some tests restart the daemon under this VM.
    server = Server(clean_domains)
    server.open()
    try:
        decision = creation.decide_acceleration(server, "tcg")
        spec = VmSpec(
            name=name,
            location=str(vm_location),
            memory=MemoryConfig(256),
            install=KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline),
        )
        uuid = creation.create_vm(server, spec, decision)
    finally:
        server.close()
    folders = vm_folders(vm_location, name)
    yield GuestVm(name, uuid, folders.serial_log, folders.root)
