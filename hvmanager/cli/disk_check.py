"""``hvctl test-vhd``'s check (Test-VHD): a disk file is usable when it opens, every parent of its
chain is present, and ``qemu-img check`` finds no corruption (leaked clusters waste space but lose
nothing; VHD and raw files have no check in qemu-img, so opening them is the test).
"""

from __future__ import annotations

import json
import subprocess

from hvmanager.backend import vhd
from hvmanager.backend.errors import HvError
from hvmanager.backend.qemuimg import QEMU_IMG, TOOL_TIMEOUT_S

# qemu-img check's exit statuses (qemu-img(1)).
_CHECK_CLEAN, _CHECK_FAILED, _CHECK_CORRUPT, _CHECK_LEAKS, _CHECK_UNSUPPORTED = 0, 1, 2, 3, 63


def unusable_reason(path: str) -> str | None:
    """Why the disk (with its parents) can't be used, or None when it can."""
    try:
        info = vhd.inspect(path)
    except HvError as exc:
        return exc.message
    missing = [p.path for p in info.parents if not p.present]
    if missing:
        return f"its parent '{missing[0]}' is missing (reconnect it with: hvctl set-vhd --parent-path)"
    return check_problem(path, info.format)


def check_problem(path: str, qemu_format: str) -> str | None:
    """What ``qemu-img check`` says is wrong with the image (read-only, shared lock), or None."""
    args = [QEMU_IMG, "check", "-U", "--output=json", "-f", qemu_format, path]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"qemu-img check could not run: {exc}"
    if done.returncode in (_CHECK_CLEAN, _CHECK_LEAKS, _CHECK_UNSUPPORTED):
        return None
    if done.returncode == _CHECK_CORRUPT:
        try:
            corruptions = int(json.loads(done.stdout).get("corruptions", 0))
        except (ValueError, AttributeError):
            corruptions = 0
        return f"qemu-img check found {corruptions or 'some'} corruption(s)"
    lines = (done.stderr or done.stdout).strip().splitlines()
    return f"qemu-img check failed: {lines[-1] if lines else f'exit status {done.returncode}'}"
