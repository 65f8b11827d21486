"""Suite-wide set-up: offscreen Qt, throw-away settings, TCG, and a running libvirt daemon.

The libvirt daemon is real: the suite starts ``virtlogd``/``libvirtd`` itself when they are not
running (as the README's set-up does). Everything the tests create carries the ``hvtest-`` prefix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HVMANAGER_ACCEL"] = "tcg"  # KVM can't boot ordinary guests on the CI machines

SYSTEM_URI = "qemu:///system"
TEST_PREFIX = "hvtest-"
TEST_ROOT = Path(os.environ.get("HVMANAGER_TEST_ROOT", "/var/lib/hvmanager-tests"))


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own empty settings folder."""
    monkeypatch.setenv("HVMANAGER_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))


def _socket_ready() -> bool:
    return any(Path(p).exists() for p in ("/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock"))


def ensure_libvirtd() -> None:
    """Start the libvirt daemons when they are not running, and wait for their socket."""
    subprocess.run(["scripts/start-daemons.sh"], cwd=Path(__file__).parent.parent, check=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = subprocess.run(["virsh", "-c", SYSTEM_URI, "version"], capture_output=True, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("the libvirt daemon did not come up")


@pytest.fixture(scope="session")
def libvirtd() -> str:
    """A running system libvirt daemon; returns its URI."""
    if shutil.which("virsh") is None:
        pytest.fail("libvirt is not installed: run the README's set-up command")
    ensure_libvirtd()
    return SYSTEM_URI


@pytest.fixture(scope="session")
def test_root() -> Path:
    """A folder the QEMU user can reach, for VMs and disks made by tests."""
    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    TEST_ROOT.chmod(0o755)
    return TEST_ROOT


@contextmanager
def fresh_folder(test_root: Path, request: pytest.FixtureRequest, prefix: str = "") -> Iterator[Path]:
    """An empty folder under ``test_root`` for one test (named after the test and this process),
    removed afterwards."""
    folder = test_root / f"{prefix}{request.node.name[:40]}-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def vm_location(test_root: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh folder for one test's VMs (removed afterwards)."""
    with fresh_folder(test_root, request) as folder:
        yield folder


def vm_name(label: str) -> str:
    """A test VM name: the prefix, a label, and this process's id (so parallel runs don't clash)."""
    return f"{TEST_PREFIX}{label[:40]}-{os.getpid()}"


def _owned_by_this_or_dead_run(name: str) -> bool:
    """Test VMs of this process, or left behind by a process that is gone."""
    if not name.startswith(TEST_PREFIX):
        return False
    suffix = name.rsplit("-", 1)[-1]
    if not suffix.isdigit():
        return False
    pid = int(suffix)
    return pid == os.getpid() or not Path(f"/proc/{pid}").exists()


def _remove_test_domains(uri: str) -> None:
    import libvirt

    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            if not _owned_by_this_or_dead_run(dom.name()):
                continue
            if dom.isActive():
                dom.destroy()
            if dom.isPersistent():
                dom.undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
                )
    finally:
        conn.close()


@pytest.fixture
def clean_domains(libvirtd: str) -> Iterator[str]:
    """Removes this run's ``hvtest-...-<pid>`` domains (and stale ones) before and after the test."""
    _remove_test_domains(libvirtd)
    yield libvirtd
    _remove_test_domains(libvirtd)


@pytest.fixture(scope="session")
def test_guest() -> Any:
    """The bootable test guest (kernel + busybox initramfs), built once and cached."""
    from tests.support.guest import build_test_guest

    return build_test_guest()


# Figures worth seeing in the test log (never asserted: timing belongs to bench/).
MEASUREMENTS: list[str] = []


def record_measurement(text: str) -> None:
    """Add a line to the "measurements" section printed at the end of the run."""
    MEASUREMENTS.append(text)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the GUI stalls and latencies measured during the run."""
    if MEASUREMENTS:
        terminalreporter.section("measurements (informative, not asserted)")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
