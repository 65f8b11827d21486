"""Icons and the bundled font, from ``resources/`` (source checkout) or the installed package."""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

import hvmanager


@cache
def resources_dir() -> Path:
    """The folder holding ``icons/`` and ``fonts/``."""
    checkout = Path(hvmanager.__file__).resolve().parent.parent / "resources"
    if checkout.is_dir():
        return checkout
    return Path(str(importlib.resources.files("hvmanager.resources")))


def icon(name: str) -> QIcon:
    """An SVG icon of ``resources/icons`` by name (``"start"``), or an empty icon."""
    path = resources_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()


def font_files() -> list[Path]:
    """The bundled font files (Open Sans, Apache 2.0)."""
    return sorted((resources_dir() / "fonts").glob("*.ttf"))
