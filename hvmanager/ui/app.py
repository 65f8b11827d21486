"""``hvmanager``: start the GUI on the qasync event loop, with libvirt events on the same loop."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import qasync
from PySide6.QtWidgets import QApplication, QMessageBox

from hvmanager import __version__
from hvmanager.backend.connection import start_event_thread
from hvmanager.backend.settings import load_settings
from hvmanager.controllers.manager import ServerManager
from hvmanager.ui.main_window import MainWindow
from hvmanager.ui.theme import apply_theme

log = logging.getLogger("hvmanager")

NO_DISPLAY_HINT = """hvmanager needs a display, and none was found (DISPLAY and WAYLAND_DISPLAY are unset).
- On a desktop, run it from a terminal of your graphical session.
- On a machine without a screen, use a virtual one:  xvfb-run -a hvmanager
- Or render without any screen (nothing visible, for tests and screenshots):
      QT_QPA_PLATFORM=offscreen hvmanager"""


def has_display() -> bool:
    """Whether Qt has somewhere to show windows."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hvmanager", description="Hyper-V Manager for libvirt/QEMU.")
    parser.add_argument(
        "--connect",
        metavar="URI",
        action="append",
        default=[],
        help="also show this libvirt server (may be repeated)",
    )
    parser.add_argument("--version", action="version", version=f"hvmanager {__version__}")
    parser.add_argument("--debug", action="store_true", help="log debugging details")
    return parser.parse_args(argv)


def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """Unexpected errors are logged and shown, never silently swallowed by a slot."""
    log.error("unexpected error", exc_info=(kind, value, tb))
    app = QApplication.instance()
    if isinstance(app, QApplication) and app.activeWindow() is not None:
        text = "".join(traceback.format_exception_only(kind, value)).strip()
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "Unexpected error",
            text,
            QMessageBox.StandardButton.Close,
            app.activeWindow(),
        )
        box.open()


@dataclass
class Application:
    """The running pieces: Qt, the qasync loop, the servers and the main window."""

    qt: QApplication
    loop: qasync.QEventLoop
    manager: ServerManager
    window: MainWindow


def build_application(extra_servers: Sequence[str] = ()) -> Application:
    """Set up Qt, the theme, the event loops and the window, shown and connecting."""
    app = QApplication(sys.argv[:1])
    app.setApplicationName("hvmanager")
    apply_theme(app)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    start_event_thread()  # before any connection opens
    sys.excepthook = _excepthook
    manager = ServerManager(load_settings())
    window = MainWindow(manager)
    window.show()
    manager.start()
    for uri in extra_servers:
        manager.add_server(uri)
    return Application(app, loop, manager, window)


def run_until_quit(application: Application) -> int:
    """Run the event loop until the last window closes; returns the exit code."""
    quitting = asyncio.Event()
    application.qt.aboutToQuit.connect(quitting.set)
    # Ctrl+C in the terminal closes the window as the user would (no traceback).
    signal.signal(signal.SIGINT, lambda *_args: application.window.close())
    with application.loop:
        application.loop.run_until_complete(quitting.wait())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the application; returns the exit code."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not has_display():
        sys.stderr.write(NO_DISPLAY_HINT + "\n")
        return 2
    return run_until_quit(build_application(args.connect))


if __name__ == "__main__":
    sys.exit(main())
