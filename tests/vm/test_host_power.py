"""Automatic Stop and Start Actions applied by hvctl host-shutdown / host-startup, with guests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation, vmsettings
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, StartAction, StopAction, VmSpec
from hvmanager.backend.vmsettings import SettingsChange
from tests.conftest import vm_name
from tests.vm.helpers import dominfo, domstate, serial_text, virsh, wait_serial

pytestmark = pytest.mark.vm


@pytest.fixture
def guests(clean_domains: str, vm_location: Path, test_guest: Any) -> Iterator[dict[str, Path]]:
    """Three booted guests with different automatic actions; name -> serial log."""
    plan = {
        "shut": (StopAction.SHUT_DOWN, StartAction.START_IF_RUNNING, 0),
        "save": (StopAction.SAVE, StartAction.NOTHING, 0),
        "off": (StopAction.TURN_OFF, StartAction.START, 2),
    }
    server = Server(clean_domains)
    server.open()
    logs: dict[str, Path] = {}
    try:
        decision = creation.decide_acceleration(server, "tcg")
        host = server.host_info()
        for label, (stop, start, delay) in plan.items():
            name = vm_name(f"host-{label}")
            install = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
            uuid = creation.create_vm(
                server, VmSpec(name, str(vm_location), memory=MemoryConfig(192), install=install), decision
            )
            dom = server.lookup(uuid)
            vmsettings.apply_settings(
                server.conn,
                dom,
                SettingsChange(start_action=start, start_delay_s=delay, stop_action=stop),
                host,
            )
            dom.create()
            logs[name] = vm_location / name / "Virtual Machines" / "serial.log"
        for log in logs.values():
            wait_serial(log, "HVTEST: ready")
    finally:
        server.close()
    yield logs


def _hvctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(".venv/bin/hvctl").resolve()), "--json", *args], capture_output=True, text=True, check=False
    )


def test_host_shutdown_then_startup(guests: dict[str, Path]) -> None:
    shut, save, off = guests
    # Only this test's VMs: others on the machine are not ours to stop.
    done = _hvctl("host-shutdown", "--timeout", "60", *guests)
    assert done.returncode == 0, done.stderr
    actions = {r["name"]: r["detail"] for r in json.loads(done.stdout)}
    assert actions == {shut: "shut down", save: "saved", off: "turned off"}
    assert "HVTEST: acpi power button" in serial_text(guests[shut])
    assert domstate(shut) == domstate(off) == "shut off"
    assert dominfo(save)["Managed save"] == "yes"
    assert 'running_at_stop="yes"' in virsh("dumpxml", "--inactive", shut).replace("'", '"')

    done = _hvctl("host-startup", *guests)
    assert done.returncode == 0, done.stderr
    started = [r["name"] for r in json.loads(done.stdout)]
    # "Start if it was running" and "Always start" (after its 2 s delay); "Nothing" stays saved.
    assert started == [shut, off]
    assert domstate(shut) == domstate(off) == "running"
    assert dominfo(save)["Managed save"] == "yes" and domstate(save) == "shut off"
    assert "running_at_stop" not in virsh("dumpxml", "--inactive", shut)
    assert virsh("list", "--autostart", "--name").split().count(off) == 1
