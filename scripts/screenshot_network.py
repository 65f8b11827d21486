"""The Virtual Switch Manager pictures of the documentation (docs/screenshots/switch-manager-*.png).

``shoot_switch_manager(window, save, until)`` is called by scripts/screenshots.py with its main
window; run on its own (``.venv/bin/python scripts/screenshot_network.py``, as root with libvirtd
running) the script makes a window of its own first. Everything is real: a Private, an Internal, a
NAT and an External switch are made on the local daemon through the application's controller (the
External one on a veth pair made for the picture, its far end in a network namespace of its own),
the dialog is the real one, and all of it is removed at the end (names already in use are never
touched; ``ip_forward``, which a NAT switch turns on, is put back).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run on its own: the checkout's package first
    sys.path.insert(0, str(REPO))

from PySide6.QtWidgets import QWidget

from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import SwitchSpec, SwitchType
from hvmanager.controllers.network import NetworkController
from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.switch_manager_dialog import SwitchManagerDialog

Save = Callable[[QWidget, str], Awaitable[None]]
Until = Callable[..., Awaitable[Any]]

URI = "qemu:///system"
ADAPTER, PEER, NAMESPACE = "hvdocs-eth1", "hvdocs-eth1p", "hvdocs-uplink"  # the adapter: <= 11 chars
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
SWITCHES = [  # (picture, spec); addresses are TEST-NET / private ranges chosen to be free below
    ("external", SwitchSpec("Office Uplink", SwitchType.EXTERNAL, "Reaches the office LAN.", ADAPTER)),
    ("internal", SwitchSpec("Host Only", SwitchType.INTERNAL, "Build VMs and the host.", dhcp=True)),
    ("private", SwitchSpec("Lab Private", SwitchType.PRIVATE, "Test VMs talk to each other only.")),
    ("nat", SwitchSpec("NAT Switch", SwitchType.NAT, "VMs reach the Internet through the host.")),
]
SUBNETS = ["192.168.150.1/24", "192.168.151.1/24", "172.31.250.1/24", "172.31.251.1/24", "10.250.77.1/24"]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _make_uplink() -> None:
    """A veth pair standing for a second host adapter, its far end in a namespace of its own."""
    _ip("netns", "add", NAMESPACE)
    _ip("link", "add", ADAPTER, "type", "veth", "peer", "name", PEER, "netns", NAMESPACE)
    _ip("-n", NAMESPACE, "addr", "add", "198.51.100.2/24", "dev", PEER)
    _ip("-n", NAMESPACE, "link", "set", PEER, "up")
    _ip("addr", "add", "198.51.100.10/24", "dev", ADAPTER)
    _ip("link", "set", ADAPTER, "up")


def _ip_forward(value: str | None = None) -> str:
    """``net.ipv4.ip_forward`` now; put ``value`` back first when given (a NAT switch sets it)."""
    if value is not None:
        IP_FORWARD.write_text(value, encoding="ascii")
    return IP_FORWARD.read_text(encoding="ascii")


def _remove_uplink() -> None:
    subprocess.run(["ip", "netns", "del", NAMESPACE], check=False, capture_output=True)
    subprocess.run(["ip", "link", "del", ADAPTER], check=False, capture_output=True)


async def _with_free_address(controller: NetworkController, spec: SwitchSpec, used: set[str]) -> SwitchSpec:
    """``spec`` with the first address of SUBNETS the back end accepts (and not taken by another)."""
    for address in SUBNETS:
        if address in used:
            continue
        candidate = SwitchSpec(spec.name, spec.type, spec.notes, host_address=address, dhcp=spec.dhcp)
        if not await controller.switch_problems(candidate):
            used.add(address)
            return candidate
    raise SystemExit(f"No free address range for '{spec.name}' among {SUBNETS}.")


@asynccontextmanager
async def demo_switches(controller: NetworkController) -> AsyncIterator[list[tuple[str, str]]]:
    """The four switches of the pictures: yields (picture, switch name); removed afterwards."""
    existing = {info.name for info in await controller.switches()}
    clash = [spec.name for _picture, spec in SWITCHES if spec.name in existing]
    if clash:
        raise SystemExit(f"Virtual switches named {clash} exist already; not touching them.")
    forward = _ip_forward()
    made: list[str] = []
    used: set[str] = set()
    _make_uplink()
    try:
        for _picture, spec in SWITCHES:
            if spec.type in (SwitchType.INTERNAL, SwitchType.NAT):
                spec = await _with_free_address(controller, spec, used)
            made.append((await controller.create_switch(spec)).name)
        yield [(picture, spec.name) for picture, spec in SWITCHES]
    finally:
        for name in reversed(made):
            try:
                await controller.remove_switch(name)
            except HvError as exc:
                print(f"could not remove the demo switch '{name}': {exc}", file=sys.stderr)
        _remove_uplink()
        _ip_forward(forward)


async def shoot_switch_manager(window: MainWindow, save: Save, until: Until) -> None:
    """switch-manager-new, -external, -internal, -private, -nat and -mac-range.png."""
    server = window.manager.servers[URI]
    controller = window.network_commands.controller_for(server)
    async with demo_switches(controller) as shown:
        dialog = SwitchManagerDialog(controller, server.title, window)
        dialog.resize(900, 700)
        dialog.show()
        await until(dialog.loaded)
        await until(dialog.checked)
        await save(dialog, "switch-manager-new")
        for picture, name in shown:
            item = next(entry.item for entry in dialog.entries if entry.current_name == name)
            assert item is not None
            dialog.tree.setCurrentItem(item)
            dialog.tree.scrollToItem(item)
            await save(dialog, f"switch-manager-{picture}")
        dialog.tree.setCurrentItem(dialog.mac_item)
        await save(dialog, "switch-manager-mac-range")
        dialog.reject()


def main() -> int:
    """Render the Virtual Switch Manager pictures on their own."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ["QT_SCALE_FACTOR"] = "1"
    os.environ["HVMANAGER_CONFIG_DIR"] = tempfile.mkdtemp(prefix="hvdocs-config-")
    import qasync
    from PySide6.QtWidgets import QApplication

    from hvmanager.backend.connection import start_event_thread
    from hvmanager.backend.settings import AppSettings
    from hvmanager.controllers.manager import ServerManager
    from hvmanager.ui.theme import apply_theme

    out = REPO / "docs" / "screenshots"
    out.mkdir(parents=True, exist_ok=True)

    async def save(widget: QWidget, name: str) -> None:
        await asyncio.sleep(0.2)
        path = out / f"{name}.png"
        if not widget.grab().save(str(path)):
            raise RuntimeError(f"could not write {path}")
        print(f"  {path.relative_to(REPO)}")

    async def until(predicate: Callable[[], Any], timeout: float = 30) -> Any:
        for _ in range(int(timeout / 0.1)):
            if value := predicate():
                return value
            await asyncio.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {predicate}")

    app = QApplication(sys.argv[:1])
    apply_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    start_event_thread()
    manager = ServerManager(AppSettings(servers=[URI]))
    window = MainWindow(manager)
    window.resize(1280, 800)
    manager.start()
    print("Rendering into docs/screenshots/:")
    with loop:
        loop.run_until_complete(until(lambda: window.app_actions.switch_manager.isEnabled()))
        loop.run_until_complete(shoot_switch_manager(window, save, until))
        window.close()
        loop.run_until_complete(asyncio.sleep(0.3))
    subprocess.run(["rm", "-rf", os.environ["HVMANAGER_CONFIG_DIR"]], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
