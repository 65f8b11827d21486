"""Hyper-V Settings: the application's own settings, kept in a small JSON file.

Shared by the GUI and ``hvctl`` (so both create VMs in the same default folders). The file lives in
``$HVMANAGER_CONFIG_DIR`` or ``$XDG_CONFIG_HOME/hvmanager`` (``~/.config/hvmanager``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from hvmanager.backend import mac_pool
from hvmanager.backend.errors import ValidationError

ACCEL_MODES = ("auto", "kvm", "tcg")
STATS_INTERVAL_RANGE_MS = (250, 60_000)
LOCAL_URI = "qemu:///system"


def config_dir() -> Path:
    """The folder holding ``settings.json``."""
    override = os.environ.get("HVMANAGER_CONFIG_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hvmanager"


def default_local_uri() -> str:
    """The local hypervisor: the system instance for root, the session instance otherwise."""
    return LOCAL_URI if os.geteuid() == 0 else "qemu:///session"


def default_vm_folder() -> str:
    """Where new VMs go by default: a folder the QEMU user can reach (never under /root)."""
    if os.geteuid() == 0:
        return "/var/lib/hvmanager"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "hvmanager")


@dataclass
class AppSettings:
    """Host/user settings edited in the Hyper-V Settings dialog."""

    servers: list[str] = field(default_factory=lambda: [default_local_uri()])
    vm_folder: str = field(default_factory=default_vm_folder)
    disk_folder: str = field(default_factory=lambda: str(Path(default_vm_folder()) / "Virtual Hard Disks"))
    accel: str = "auto"
    stats_interval_ms: int = 1000
    thumbnail_interval_ms: int = 3000
    mac_minimum: str = ""  # MAC address range of new adapters; "" = Hyper-V's default bound
    mac_maximum: str = ""

    def custom_disk_folder(self) -> str | None:
        """The folder for new disks when the user chose one; None means "in each VM's folder"."""
        return self.disk_folder if self.disk_folder != AppSettings().disk_folder else None

    def accel_source(self) -> str:
        """Where the acceleration mode in force comes from (for the Summary tab's reason)."""
        mode = os.environ.get("HVMANAGER_ACCEL", "").strip().lower()
        return f"HVMANAGER_ACCEL={mode}" if mode in ACCEL_MODES else "the settings"

    def effective_accel(self) -> str:
        """The acceleration mode in force: ``HVMANAGER_ACCEL`` wins over the saved setting."""
        mode = os.environ.get("HVMANAGER_ACCEL", "").strip().lower() or self.accel
        return mode if mode in ACCEL_MODES else "auto"

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when they can be saved)."""
        found = []
        if self.accel not in ACCEL_MODES:
            found.append(f"Acceleration must be one of {', '.join(ACCEL_MODES)}.")
        low, high = STATS_INTERVAL_RANGE_MS
        if not low <= self.stats_interval_ms <= high:
            found.append(f"The refresh interval must be between {low} and {high} ms.")
        for label, folder in (("virtual machines", self.vm_folder), ("disks", self.disk_folder)):
            if not os.path.isabs(folder):
                found.append(f"The default folder for {label} must be an absolute path.")
        found.extend(self._mac_range_problems())
        return found

    def _mac_range_problems(self) -> list[str]:
        """The MAC address range's problems (only when the user chose a bound of it)."""
        if not all(isinstance(bound, str) for bound in (self.mac_minimum, self.mac_maximum)):
            return ["The bounds of the MAC address range must be text."]  # a hand-edited file
        if not (self.mac_minimum.strip() or self.mac_maximum.strip()):
            return []
        try:
            return mac_pool.range_problems(mac_pool.configured_range(self))
        except ValidationError as exc:
            return [f"The MAC address range: {exc.message}"]


def settings_path() -> Path:
    """The settings file."""
    return config_dir() / "settings.json"


def load_settings() -> AppSettings:
    """Read the settings; defaults (with the local server) when there is no file yet."""
    path = settings_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return AppSettings()
    known = {f.name for f in fields(AppSettings)}
    values = {k: v for k, v in raw.items() if k in known} if isinstance(raw, dict) else {}
    try:
        settings = AppSettings(**values)
    except TypeError:
        return AppSettings()
    return settings if not settings.problems() else AppSettings()


def save_settings(settings: AppSettings) -> None:
    """Write the settings atomically (a crash never leaves half a file)."""
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(settings), handle, indent=2)
    os.replace(tmp, path)
