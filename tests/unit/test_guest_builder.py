"""Tests of the test-guest builder in tests/support/guest.py.

The fast tests check the pure parts (module ordering, cache key, QMP client,
serial polling). The ``vm`` ones build the real guest (downloading the kernel
package on a cold cache), boot it under QEMU/TCG directly and through libvirt
(``qemu:///system``), and shut it down with the ACPI power button.
"""

from __future__ import annotations

import json
import shutil
import socket
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from tests.support import guest as guest_module
from tests.support.guest import (
    DEFAULT_CMDLINE,
    GUEST_MODULES,
    INIT_SCRIPT,
    GuestBuildError,
    QemuProcess,
    QmpError,
    TestGuest,
    boot_with_qemu,
    build_test_guest,
    default_cache_dir,
    guest_cache_key,
    qmp_command,
    resolve_module_order,
    stop_qemu,
    wait_for_serial,
)

BOOT_TIMEOUT = 120.0
"""Seconds to wait for a marker during boot (TCG on a busy 2-core machine)."""

SHUTDOWN_TIMEOUT = 20.0
"""Seconds an ACPI power-off may take until the VM is gone."""


# --------------------------------------------------------------------------
# fast tests


MODULES_DEP = """\
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko \
kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko \
kernel/net/core/failover.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/scsi/sd-mod.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz
kernel/drivers/scsi/scsi_mod.ko.xz:
"""


def test_resolve_module_order_loads_dependencies_first_and_once() -> None:
    """Every module comes after all its dependencies, and only once."""
    order = resolve_module_order(MODULES_DEP, ["virtio_net", "virtio-pci", "sd_mod"])
    names = [name for name, _ in order]
    assert len(names) == len(set(names))
    assert set(names) == {
        "virtio_net",
        "net_failover",
        "failover",
        "virtio_ring",
        "virtio",
        "virtio_pci",
        "virtio_pci_modern_dev",
        "sd_mod",
        "scsi_mod",
    }
    position = {name: index for index, name in enumerate(names)}
    assert position["failover"] < position["net_failover"] < position["virtio_net"]
    assert position["virtio_ring"] < position["virtio_net"]
    assert position["virtio_pci_modern_dev"] < position["virtio_pci"]
    assert position["scsi_mod"] < position["sd_mod"]
    assert dict(order)["sd_mod"] == "kernel/drivers/scsi/sd-mod.ko.xz"


def test_resolve_module_order_skips_builtin_and_rejects_unknown() -> None:
    """Built-in modules are skipped; a module that exists nowhere is an error."""
    assert resolve_module_order(MODULES_DEP, ["evdev"], builtin=["kernel/input/evdev.ko"]) == []
    with pytest.raises(GuestBuildError, match="no_such_module"):
        resolve_module_order(MODULES_DEP, ["no_such_module"])


def test_cache_key_covers_init_script_and_modules() -> None:
    """Changing the init script or the module list changes the cache key."""
    default = guest_cache_key()
    assert default == guest_cache_key(INIT_SCRIPT.read_bytes(), GUEST_MODULES)
    assert guest_cache_key(INIT_SCRIPT.read_bytes() + b"\n# edited\n") != default
    assert guest_cache_key(modules=(*GUEST_MODULES, "loop")) != default


def test_cached_guest_is_returned_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A complete guest with the current key is reused without asking apt."""
    directory = tmp_path / "guest" / f"9.9.9-test-{guest_cache_key()}"
    directory.mkdir(parents=True)
    (directory / "vmlinuz").write_bytes(b"kernel")
    (directory / "initrd.img").write_bytes(b"initrd")
    (directory / "guest.json").write_text(json.dumps({"version": "9.9.9-test"}))

    def no_apt(*_args: Any) -> tuple[str, str]:
        raise AssertionError("apt must not be asked for a cached guest")

    monkeypatch.setattr(guest_module, "resolve_kernel_package", no_apt)
    guest = build_test_guest(tmp_path)
    assert guest == TestGuest(
        kernel=directory / "vmlinuz",
        initrd=directory / "initrd.img",
        cmdline=DEFAULT_CMDLINE,
        version="9.9.9-test",
    )
    assert guest.with_cmdline("hvtest.tick=2").cmdline == f"{DEFAULT_CMDLINE} hvtest.tick=2"


def test_wait_for_serial_returns_text_or_times_out_with_tail(tmp_path: Path) -> None:
    """The marker returns the log text; a timeout shows the log's last lines."""
    log = tmp_path / "serial.log"
    with pytest.raises(TimeoutError, match="not seen"):
        wait_for_serial(log, "HVTEST: booted", 0.2)  # file does not exist yet
    log.write_text("".join(f"line {n}\n" for n in range(100)) + "HVTEST: booted\n")
    assert wait_for_serial(log, "HVTEST: booted", 1).endswith("HVTEST: booted\n")
    with pytest.raises(TimeoutError) as info:
        wait_for_serial(log, "HVTEST: ready", 0.3)
    assert "line 99" in str(info.value)
    assert "line 10\n" not in str(info.value)


def _fake_qmp_server(path: Path, received: list[dict[str, Any]]) -> threading.Thread:
    """Serve one QMP client on ``path`` like QEMU would; record what it sends."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        with server, server.accept()[0] as connection, connection.makefile("rwb") as stream:
            stream.write(b'{"QMP": {"version": {}, "capabilities": []}}\r\n')
            stream.flush()
            for line in stream:
                message = json.loads(line)
                received.append(message)
                if message["execute"] == "qmp_capabilities":
                    reply: dict[str, Any] = {"return": {}}
                elif message["execute"] == "query-status":
                    stream.write(b'{"event": "SOME_EVENT", "data": {}}\r\n')
                    reply = {"return": {"status": "running", "running": True}}
                else:
                    reply = {"error": {"class": "CommandNotFound", "desc": "nope"}}
                stream.write(json.dumps(reply).encode() + b"\r\n")
                stream.flush()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_qmp_command_negotiates_and_skips_events(tmp_path: Path) -> None:
    """qmp_command sends qmp_capabilities first and returns the command's reply."""
    received: list[dict[str, Any]] = []
    thread = _fake_qmp_server(tmp_path / "qmp.sock", received)
    reply = qmp_command(tmp_path / "qmp.sock", "query-status", timeout=5)
    thread.join(5)
    assert reply == {"return": {"status": "running", "running": True}}
    assert [message["execute"] for message in received] == ["qmp_capabilities", "query-status"]


def test_qmp_command_raises_on_error_reply(tmp_path: Path) -> None:
    """An error reply becomes QmpError."""
    thread = _fake_qmp_server(tmp_path / "qmp.sock", [])
    with pytest.raises(QmpError, match="CommandNotFound"):
        qmp_command(tmp_path / "qmp.sock", "no-such-command", {"x": 1}, timeout=5)
    thread.join(5)


# --------------------------------------------------------------------------
# building and booting the real guest


@pytest.fixture(scope="module")
def guest() -> TestGuest:
    """The real test guest (built on first use, then from the cache)."""
    started = time.monotonic()
    built = build_test_guest()
    print(f"build_test_guest: {time.monotonic() - started:.2f} s")
    return built


@pytest.fixture
def qemu_processes() -> Iterator[list[QemuProcess]]:
    """A list for started QEMU processes; all are killed at teardown."""
    processes: list[QemuProcess] = []
    yield processes
    for process in processes:
        stop_qemu(process)


def _assert_world_readable(path: Path) -> None:
    """Assert that ``path`` is world-readable and its folders world-traversable."""
    mode = path.stat().st_mode
    assert mode & stat.S_IROTH, f"{path} is not world-readable ({stat.filemode(mode)})"
    for parent in path.parents:
        parent_mode = parent.stat().st_mode
        assert parent_mode & stat.S_IXOTH, f"{parent} is not world-searchable"


@pytest.mark.vm
def test_build_test_guest_makes_readable_cached_files(guest: TestGuest) -> None:
    """The guest's files exist, are world-readable, and a second build is instant."""
    for path in (guest.kernel, guest.initrd):
        assert path.is_file()
        assert path.stat().st_size > 0
        _assert_world_readable(path)
    directory = guest.kernel.parent
    assert guest.initrd.parent == directory
    assert directory.name == f"{guest.version}-{guest_cache_key()}"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert guest.initrd.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    assert guest.cmdline.split()[:3] == ["console=tty0", "console=ttyS0", "panic=-1"]
    assert guest.version.endswith("cloud-amd64")

    started = time.monotonic()
    again = build_test_guest()
    elapsed = time.monotonic() - started
    print(f"cached build_test_guest: {elapsed * 1000:.1f} ms")
    assert again == guest
    assert elapsed < 0.5


@pytest.mark.vm
def test_concurrent_builds_share_one_result(guest: TestGuest, tmp_path: Path) -> None:
    """Two builders racing on an empty cache both return the same, complete guest."""
    debs = tmp_path / "debs"
    debs.mkdir()
    for deb in (default_cache_dir() / "debs").glob("*.deb"):  # no second download
        shutil.copyfile(deb, debs / deb.name)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(build_test_guest, [tmp_path, tmp_path]))
    assert results[0] == results[1]
    assert results[0].version == guest.version
    assert results[0].initrd.read_bytes() == guest.initrd.read_bytes()  # reproducible
    leftovers = [path.name for path in (tmp_path / "guest").iterdir()]
    assert leftovers == [results[0].kernel.parent.name]
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


@pytest.mark.vm
def test_boot_with_qemu_and_acpi_power_off(
    guest: TestGuest, tmp_path: Path, qemu_processes: list[QemuProcess]
) -> None:
    """The guest boots under TCG, ticks, and powers off on system_powerdown."""
    log = tmp_path / "serial.log"
    started = time.monotonic()
    qemu = boot_with_qemu(guest, log, memory_mib=256)
    qemu_processes.append(qemu)

    wait_for_serial(log, "HVTEST: booted", BOOT_TIMEOUT, process=qemu)
    booted = time.monotonic()
    wait_for_serial(log, "HVTEST: ready", BOOT_TIMEOUT, process=qemu)
    text = wait_for_serial(log, "HVTEST: tick 2 uptime ", BOOT_TIMEOUT, process=qemu)
    lines = [line.strip() for line in text.splitlines()]
    assert lines.count("HVTEST: booted") == 1
    assert not [line for line in lines if line.startswith("HVTEST: module ")]
    assert "HVTEST: mem " in text
    assert "HVTEST: disks" in text
    assert lines.index("HVTEST: booted") < lines.index("HVTEST: ready")
    assert "HVTEST: tick 1 uptime " in text

    powerdown = time.monotonic()
    assert qmp_command(qemu.qmp_socket, "system_powerdown") == {"return": {}}
    assert qemu.wait(SHUTDOWN_TIMEOUT) == 0
    exited = time.monotonic()
    assert "HVTEST: acpi power button" in log.read_text(errors="replace")
    print(
        f"qemu start -> booted {booted - started:.2f} s, system_powerdown -> exit {exited - powerdown:.2f} s"
    )


# --------------------------------------------------------------------------
# booting through libvirt


@pytest.fixture
def libvirt_connection() -> Iterator[Any]:
    """A connection to qemu:///system (the test is skipped if there is none)."""
    libvirt = pytest.importorskip("libvirt")
    try:
        connection = libvirt.open("qemu:///system")
    except libvirt.libvirtError as exc:
        pytest.skip(f"qemu:///system is not reachable: {exc}")
    yield connection
    connection.close()


@pytest.fixture
def libvirt_log_dir() -> Iterator[Path]:
    """A temporary folder in the cache for libvirt's serial log, removed afterwards.

    virtlogd (root) writes ``<serial type='file'>`` logs, so 0755 is enough.
    """
    run = default_cache_dir() / "run"
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o755)
    directory = Path(tempfile.mkdtemp(prefix="serial-", dir=run))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _domain_xml(name: str, guest: TestGuest, serial_log: Path, memory_mib: int = 256) -> str:
    """Return the XML of a transient TCG domain booting ``guest`` directly."""
    return f"""\
<domain type='qemu'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(guest.kernel))}</kernel>
    <initrd>{escape(str(guest.initrd))}</initrd>
    <cmdline>{escape(guest.cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <serial type='file'>
      <source path='{escape(str(serial_log), {"'": "&apos;"})}'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
"""


def _domain_gone(domain: Any) -> bool:
    """Return whether a transient domain has stopped (shut off or undefined)."""
    import libvirt

    try:
        state, _reason = domain.state()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return True
        raise
    return bool(state == libvirt.VIR_DOMAIN_SHUTOFF)


@pytest.mark.vm
def test_boot_with_libvirt_and_acpi_shutdown(
    guest: TestGuest, libvirt_connection: Any, libvirt_log_dir: Path
) -> None:
    """The guest boots as a transient libvirt domain and obeys dom.shutdown()."""
    import libvirt

    name = f"hvtest-guest-builder-{uuid.uuid4().hex[:8]}"
    log = libvirt_log_dir / "serial.log"
    started = time.monotonic()
    domain = libvirt_connection.createXML(_domain_xml(name, guest, log), 0)
    try:
        wait_for_serial(log, "HVTEST: booted", BOOT_TIMEOUT)
        booted = time.monotonic()
        # The power button is only heard once acpid runs ("ready").
        wait_for_serial(log, "HVTEST: ready", BOOT_TIMEOUT)
        owner = log.stat()
        print(f"serial log owner uid={owner.st_uid} gid={owner.st_gid} mode={stat.filemode(owner.st_mode)}")

        requested = time.monotonic()
        domain.shutdown()
        deadline = requested + SHUTDOWN_TIMEOUT
        while not _domain_gone(domain):
            assert time.monotonic() < deadline, "domain did not shut down on ACPI request"
            time.sleep(0.1)
        stopped = time.monotonic()
        wait_for_serial(log, "HVTEST: acpi power button", 5)
        print(
            f"libvirt start -> booted {booted - started:.2f} s, "
            f"shutdown() -> gone {stopped - requested:.2f} s"
        )
    finally:
        try:
            domain.destroy()
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise
