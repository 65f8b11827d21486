"""Dynamic Memory with a real guest: hvctl balance-memory moves its balloon by what it uses."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation
from hvmanager.backend.connection import Server
from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec
from tests.conftest import vm_name
from tests.vm.helpers import virsh, wait_serial

pytestmark = pytest.mark.vm


def _dommemstat(name: str) -> dict[str, int]:
    stats = {}
    for line in virsh("dommemstat", name).splitlines():
        key, _, value = line.partition(" ")
        stats[key] = int(value)
    return stats


def test_balance_memory_follows_the_guest(clean_domains: str, vm_location: Path, test_guest: Any) -> None:
    name = vm_name("dynmem")
    server = Server(clean_domains)
    server.open()
    try:
        install = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
        memory = MemoryConfig(384, dynamic=True, minimum_mib=160, maximum_mib=512)
        spec = VmSpec(name, str(vm_location), memory=memory, install=install)
        creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    finally:
        server.close()
    virsh("start", name)
    wait_serial(vm_location / name / "Virtual Machines" / "serial.log", "HVTEST: ready")
    assert "<memory unit='KiB'>524288</memory>" in virsh("dumpxml", name)
    deadline = time.monotonic() + 60
    while "usable" not in _dommemstat(name):  # the guest's balloon statistics (every 5 s)
        assert time.monotonic() < deadline, "the guest reports no balloon statistics"
        time.sleep(1)
    assert _dommemstat(name)["actual"] == 384 * 1024
    hvctl = str(Path(".venv/bin/hvctl").resolve())
    done = subprocess.run([hvctl, "--json", "balance-memory"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    moves = [m for m in json.loads(done.stdout) if m["name"] == name]
    # A busybox guest uses far less than its minimum: it goes down to 160 MB.
    assert moves and moves[0]["target_mib"] == 160 and moves[0]["demand_mib"] < 130
    deadline = time.monotonic() + 30
    while _dommemstat(name)["actual"] != 160 * 1024:
        assert time.monotonic() < deadline, f"the balloon did not move: {_dommemstat(name)}"
        time.sleep(0.5)
