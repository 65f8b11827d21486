"""The live counters' pictures of the documentation: the Switch Monitor with its chart, ports and MAC
address table (docs/screenshots/switch-monitor.png), and the VM's Networking tab with its chart
(networking-tab.png).

``shoot_switch_monitor`` is called by scripts/screenshots.py with its main window. The traffic is
real: the demo guest on the switch answers the pings the host sends it through the switch's bridge
(``busybox ping -I <bridge>``) in bursts of different sizes and paces for about a minute and a
half, so that the curves have a shape; for that the switch needs a host address (Internal) and
the guest an address (``hvtest.ip``) — without them the pictures show whatever traffic the guests
make themselves. Run on its own, this script makes that scene itself (an Internal switch
``lab-switch`` and two test guests that ping each other and the host), takes the two pictures and
removes everything::

    .venv/bin/python scripts/screenshot_monitor.py
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_SCALE_FACTOR"] = "1"
    os.environ["HVMANAGER_ACCEL"] = "tcg"
    os.environ["HVMANAGER_CONFIG_DIR"] = tempfile.mkdtemp(prefix="hvdocs-config-")

import libvirt
from PySide6.QtWidgets import QWidget

from hvmanager.backend import switches
from hvmanager.backend.errors import HvError
from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.switch_monitor import SwitchMonitorWindow, show_switch_monitor

Save = Callable[[QWidget, str], Awaitable[None]]
Until = Callable[..., Awaitable[Any]]

URI = "qemu:///system"
# (ping payload bytes, pings a second, seconds): bursts that draw recognisable shapes. Pings go
# both ways alike; during the last burst the host also sends frames the guests only receive
# (RECEIVE_ONLY frames a second), so that received and sent part.
BURSTS = ((1400, 5, 20), (200, 10, 15), (1400, 10, 20), (600, 2, 15), (1000, 8, 20))
RECEIVE_ONLY = 12
_EXPERIMENTAL_ETHERTYPE = 0x88B5  # IEEE 802 local experimental: a guest drops it unanswered


def _bridge(switch: str) -> tuple[str | None, bool]:
    """The switch's bridge and whether the host has an address on it (Internal or NAT)."""
    conn = libvirt.open(URI)
    try:
        info = switches.get_switch(conn, switch)
    finally:
        conn.close()
    return info.bridge, info.spec.host_address is not None


def _ping_bursts(bridge: str, addresses: Sequence[str], macs: Sequence[str], stop: threading.Event) -> None:
    """Ping ``addresses`` through ``bridge`` in the ``BURSTS`` (until ``stop``); in the last one,
    also send frames to ``macs`` that their guests receive and do not answer."""
    for number, (size, per_second, seconds) in enumerate(BURSTS):
        pingers = [_pinger(bridge, address, size, per_second, seconds) for address in addresses]
        last = number == len(BURSTS) - 1
        while any(pinger.poll() is None for pinger in pingers):
            if last:
                _send_frames(bridge, macs, RECEIVE_ONLY // 5)
            if stop.wait(0.2):
                for pinger in pingers:
                    pinger.terminate()
                return


def _send_frames(bridge: str, macs: Sequence[str], count: int) -> None:
    """``count`` 1000-byte frames to each MAC, out of the bridge (the host's side of the switch)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((bridge, 0))
        for mac in macs:
            header = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex("02aabbccdd03")
            frame = header + _EXPERIMENTAL_ETHERTYPE.to_bytes(2, "big")
            for _ in range(count):
                sock.send(frame + b"\x00" * (1000 - len(frame)))


def _pinger(bridge: str, address: str, size: int, per_second: int, seconds: int) -> subprocess.Popen[bytes]:
    interval = f"{1 / per_second:.2f}"
    command = ["busybox", "ping", "-q", "-I", bridge, "-s", str(size), "-i", interval]
    command += ["-c", str(per_second * seconds), "-W", "2", address]  # an argument list: no shell
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def _traffic(switch: str, addresses: Sequence[str], macs: Sequence[str]) -> Iterator[float]:
    """Ping bursts to the guests in the background; yields how long they last (0: none possible)."""
    bridge, host_on_it = _bridge(switch)
    if bridge is None or not host_on_it or not addresses:
        yield 0.0
        return
    stop = threading.Event()
    worker = threading.Thread(target=_ping_bursts, args=(bridge, addresses, macs, stop), daemon=True)
    worker.start()
    try:
        yield float(sum(seconds for _size, _rate, seconds in BURSTS))
    finally:
        stop.set()
        worker.join(10)


async def shoot_switch_monitor(
    window: MainWindow,
    save: Save,
    until: Until,
    switch: str = "lab-switch",
    vm: str = "Web Server",
    guest_addresses: Sequence[str] = ("192.168.150.10",),
) -> None:
    """switch-monitor.png (the Switch Monitor of ``switch`` after about 90 s of live traffic) and
    networking-tab.png (the Networking tab of ``vm``, a running guest on that switch).

    ``guest_addresses`` are pinged from the host through the switch's bridge while the chart fills
    and the switch's ports get frames they only receive (when the switch gives the host an
    address); otherwise the pictures show the guests' own traffic over the same time.
    """
    controller = window.manager.servers[URI]
    await until(lambda: any(info.name == vm for info in controller.vms.values()))
    uuid = next(u for u, info in controller.vms.items() if info.name == vm)
    monitor = show_switch_monitor(window, controller)
    await until(lambda: monitor.select_switch(switch) or monitor.shown_switch() == switch)
    window.select_vm(uuid)
    pane = window.details_pane
    await until(lambda: pane.title() == vm and pane.tabs.isEnabled())
    tabs = pane.tabs
    tabs.setCurrentIndex(next(i for i in range(tabs.count()) if tabs.tabText(i) == "Networking"))
    await until(lambda: monitor.controller.ports)
    macs = [port.mac for port in monitor.controller.ports]
    with _traffic(switch, guest_addresses, macs) as lasts:
        await asyncio.sleep(lasts or 90.0)
    await until(lambda: monitor.port_model.rowCount() > 0 and monitor.mac_model.rowCount() > 0)
    await asyncio.sleep(2.0)  # the bursts' last second on the charts
    _select_first_port(monitor)
    await save(monitor, "switch-monitor")
    await until(lambda: pane.networking_chart.isVisible() and pane.networking_chart.ports())
    await save(pane, "networking-tab")
    monitor.close()


def _select_first_port(monitor: SwitchMonitorWindow) -> None:
    """A selected row, as a user looking at one port would have."""
    monitor.ports_table.selectRow(0)


# --- run on its own -----------------------------------------------------------------------------

DEMO_SUBNET = "192.168.150"
DEMO_VMS = (("Web Server", 10, 11), ("File Server", 11, 10))  # name, address, the peer it pings


@contextlib.contextmanager
def _demo_scene(location: Path) -> Iterator[None]:
    """An Internal ``lab-switch`` (host .1) and two running test guests on it that ping each other
    and the host; everything removed afterwards (names already in use are never touched)."""
    from hvmanager.backend import creation, operations
    from hvmanager.backend.connection import Server
    from hvmanager.backend.models import KernelBoot, MemoryConfig, VmSpec
    from hvmanager.backend.network_models import SwitchSpec, SwitchType
    from tests.support.guest import build_test_guest

    server = Server(URI)
    server.open()
    names = {d.name() for d in server.conn.listAllDomains(0)} | {
        n.name() for n in server.conn.listAllNetworks(0)
    }
    clash = [name for name in ("lab-switch", *(vm for vm, _a, _p in DEMO_VMS)) if name in names]
    if clash:
        server.close()
        raise SystemExit(f"{clash} exist already; not touching them.")
    guest, uuids = build_test_guest(), []
    shutil.rmtree(location, ignore_errors=True)
    location.mkdir(parents=True)
    location.chmod(0o755)
    try:
        spec = SwitchSpec("lab-switch", SwitchType.INTERNAL, host_address=f"{DEMO_SUBNET}.1/24")
        switches.create_switch(server.conn, spec)
        decision = creation.decide_acceleration(server, "tcg")
        for name, address, peer in DEMO_VMS:
            options = f"hvtest.ip={DEMO_SUBNET}.{address}/24 hvtest.ping={DEMO_SUBNET}.{peer},{DEMO_SUBNET}.1"
            boot = KernelBoot(str(guest.kernel), str(guest.initrd), f"{guest.cmdline} {options}")
            vm_spec = VmSpec(
                name, str(location), memory=MemoryConfig(256), network="lab-switch", install=boot
            )
            uuids.append(creation.create_vm(server, vm_spec, decision))
            operations.start(server.conn, server.lookup(uuids[-1]), decision)
        yield
    finally:
        for uuid in uuids:
            dom = server.conn.lookupByUUIDString(uuid)
            if dom.isActive():
                dom.destroy()
            operations.delete(server.conn, dom, delete_disks=True)
        with contextlib.suppress(HvError):
            switches.remove_switch(server.conn, "lab-switch", disconnect_users=True)
        server.close()
        shutil.rmtree(location, ignore_errors=True)


def main() -> int:
    """Make the scene, take the two pictures into docs/screenshots/, remove the scene."""
    import qasync
    from PySide6.QtWidgets import QApplication

    from hvmanager.backend.connection import start_event_thread
    from hvmanager.backend.settings import AppSettings
    from hvmanager.controllers.manager import ServerManager
    from hvmanager.ui.theme import apply_theme

    out = REPO / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    apply_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    start_event_thread()

    async def save(widget: QWidget, name: str) -> None:
        await asyncio.sleep(0.3)
        path = out / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise RuntimeError(f"could not write {path}")
        print(f"  {path.relative_to(REPO)}")

    async def until(predicate: Callable[[], Any], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {predicate}")
            await asyncio.sleep(0.1)
        return value

    with _demo_scene(Path("/var/lib/hvmanager-docs-monitor")):
        manager = ServerManager(AppSettings(servers=[URI], vm_folder="/var/lib/hvmanager"))
        window = MainWindow(manager)
        window.resize(1280, 800)
        window.show()
        manager.start()
        addresses = [f"{DEMO_SUBNET}.{address}" for _name, address, _peer in DEMO_VMS]
        with loop:
            loop.run_until_complete(shoot_switch_monitor(window, save, until, guest_addresses=addresses))
            window.close()
            loop.run_until_complete(asyncio.sleep(0.5))
    shutil.rmtree(os.environ["HVMANAGER_CONFIG_DIR"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
