"""Is the libvirt daemon there, and how is it started on this machine?

There may be no systemd (containers, CI machines): the hint names the daemons to start by hand.
Debian 12 ships the monolithic ``libvirtd``; newer libvirt may run modular daemons (``virtqemud``).
"""

from __future__ import annotations

import os
import shutil

import hvmanager

START_SCRIPT = os.path.join(
    os.path.dirname(os.path.dirname(hvmanager.__file__)), "scripts", "start-daemons.sh"
)
MONOLITHIC = ("virtlogd", "libvirtd")
MODULAR = ("virtlogd", "virtqemud", "virtnetworkd", "virtstoraged", "virtnodedevd")


def daemon_names() -> tuple[str, ...]:
    """The daemons that serve ``qemu:///system`` on this machine."""
    if shutil.which("libvirtd") or not shutil.which("virtqemud"):
        return MONOLITHIC
    return MODULAR


def start_command() -> str:
    """The command (for a root shell) that starts the daemons."""
    names = daemon_names()
    if os.path.isdir("/run/systemd/system"):
        return f"systemctl start {' '.join(names[1:])}"
    if os.path.exists(START_SCRIPT):
        return START_SCRIPT
    return " && ".join(f"{{ pgrep -x {n} >/dev/null || {n} -d; }}" for n in names)


def connect_hint(uri: str) -> str:
    """What to tell a user whose connection to ``uri`` failed."""
    if uri.startswith("qemu:///"):
        return f"Is the libvirt daemon running? Start it as root with: {start_command()}"
    return "Check that the server is reachable and that its libvirt daemon is running."
