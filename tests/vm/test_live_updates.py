"""The window follows changes made behind its back, and survives daemon and QEMU failures."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hvmanager.controllers.server import ConnectionState
from tests.conftest import SYSTEM_URI, ensure_libvirtd, record_measurement
from tests.gui.conftest import settle, wait_until
from tests.gui.table import state
from tests.vm.conftest import GuestVm
from tests.vm.helpers import domstate, qemu_pid, virsh, wait_serial

pytestmark = pytest.mark.vm


async def _latency(window: Any, name: str, wanted: str) -> float:
    started = time.monotonic()
    await wait_until(lambda: state(window, name) == wanted, 20, f"{name} {wanted}")
    return time.monotonic() - started


def test_virsh_start_and_destroy_show_up(
    run: Any, make_window: Any, guest_vm: GuestVm, watchdog: Any
) -> None:
    window = make_window(SYSTEM_URI)

    async def body() -> None:
        await wait_until(lambda: state(window, guest_vm.name) == "Off", 20, "the VM listed as Off")
        await asyncio.to_thread(virsh, "start", guest_vm.name)
        up = await _latency(window, guest_vm.name, "Running")
        await asyncio.to_thread(virsh, "destroy", guest_vm.name)
        down = await _latency(window, guest_vm.name, "Off")
        record_measurement(
            f"virsh start -> Running {up * 1000:.0f} ms after virsh returned; "
            f"destroy -> Off {down * 1000:.0f} ms"
        )
        await settle()

    run(body)


def test_qemu_killed_turns_off(run: Any, make_window: Any, guest_vm: GuestVm) -> None:
    window = make_window(SYSTEM_URI)
    virsh("start", guest_vm.name)

    async def body() -> None:
        await wait_until(lambda: state(window, guest_vm.name) == "Running", 20)
        os.kill(qemu_pid(guest_vm.name), signal.SIGKILL)
        down = await _latency(window, guest_vm.name, "Off")
        record_measurement(f"QEMU SIGKILLed -> Off in {down * 1000:.0f} ms")
        assert domstate(guest_vm.name) == "shut off"
        await settle()

    run(body)


def _stop_daemon() -> None:
    subprocess.run(["pkill", "-x", "libvirtd"], check=False)
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True, check=False).returncode == 0:
        assert time.monotonic() < deadline, "libvirtd did not stop"
        time.sleep(0.1)
    for sock in ("/run/libvirt/libvirt-sock", "/run/libvirt/libvirt-sock-ro"):
        Path(sock).unlink(missing_ok=True)


@pytest.mark.daemon
def test_daemon_not_running_then_started(
    run: Any, make_window: Any, guest_vm: GuestVm, caplog: pytest.LogCaptureFixture
) -> None:
    _stop_daemon()
    try:
        window = make_window(SYSTEM_URI)

        async def body() -> None:
            controller = window.manager.servers[SYSTEM_URI]
            await wait_until(
                lambda: window.banner.isVisible() and "start-daemons.sh" in window.banner.text(),
                15,
                "the banner with the start command",
            )
            assert controller.state is not ConnectionState.CONNECTED
            ensure_libvirtd()
            started = time.monotonic()
            await wait_until(lambda: controller.state is ConnectionState.CONNECTED, 15, "reconnection")
            record_measurement(f"connected {time.monotonic() - started:.1f} s after the daemon came up")
            await wait_until(lambda: state(window, guest_vm.name) == "Off", 10)
            assert window.banner.isHidden()
            await settle()

        run(body)
    finally:
        ensure_libvirtd()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.daemon
def test_daemon_restart_reconnects_by_itself(
    run: Any, make_window: Any, guest_vm: GuestVm, caplog: pytest.LogCaptureFixture
) -> None:
    window = make_window(SYSTEM_URI)
    virsh("start", guest_vm.name)

    async def body() -> None:
        controller = window.manager.servers[SYSTEM_URI]
        await wait_until(lambda: state(window, guest_vm.name) == "Running", 20)
        _stop_daemon()
        await wait_until(lambda: controller.state is not ConnectionState.CONNECTED, 15, "the drop to be seen")
        ensure_libvirtd()
        started = time.monotonic()
        await wait_until(lambda: controller.state is ConnectionState.CONNECTED, 15, "reconnection")
        record_measurement(f"reconnected {time.monotonic() - started:.1f} s after libvirtd restarted")
        # The VM kept running while the daemon was away, and events work again.
        await wait_until(lambda: state(window, guest_vm.name) == "Running", 10)
        virsh("destroy", guest_vm.name)
        await wait_until(lambda: state(window, guest_vm.name) == "Off", 10, "events after reconnecting")
        await settle()

    try:
        run(body)
    finally:
        ensure_libvirtd()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_guest_boots_and_answers_acpi(guest_vm: GuestVm) -> None:
    """The fixture's VM really boots the test guest (the other tests rely on it)."""
    virsh("start", guest_vm.name)
    wait_serial(guest_vm.serial_log, "HVTEST: ready")
    virsh("shutdown", guest_vm.name)
    deadline = time.monotonic() + 30
    while domstate(guest_vm.name) != "shut off":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "HVTEST: acpi power button" in guest_vm.serial_log.read_text()
