"""Independent observers for tests with real VMs (virsh, qemu-img, the guest's serial log), and the
domain XML of a VM that only holds disks, and domains that fail on purpose."""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import libvirt

from tests.conftest import SYSTEM_URI


def virsh(*args: str, check: bool = True) -> str:
    """Run virsh against the system daemon and return its output."""
    done = subprocess.run(["virsh", "-c", SYSTEM_URI, *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def domstate(name: str) -> str:
    """``virsh domstate``: "running", "shut off", "paused", ..."""
    return virsh("domstate", name)


def dominfo(name: str) -> dict[str, str]:
    """``virsh dominfo`` as a dict."""
    info = {}
    for line in virsh("dominfo", name).splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def domain_exists(name: str) -> bool:
    """Whether ``virsh list --all`` lists the domain."""
    return name in virsh("list", "--all", "--name").split()


def qemu_img_info(path: Path) -> dict[str, Any]:
    """``qemu-img info`` of an image (shared lock, so it works while the VM runs)."""
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out))


def serial_text(path: Path) -> str:
    """Everything the guest wrote on its serial port so far."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def wait_serial(path: Path, marker: str, timeout: float = 90, after: int = 0) -> str:
    """Wait (blocking) until ``marker`` appears in the serial log after offset ``after``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = serial_text(path)
        if marker in text[after:]:
            return text
        time.sleep(0.1)
    raise AssertionError(
        f"'{marker}' not in {path} after {timeout} s; last lines:\n"
        + "\n".join(serial_text(path).splitlines()[-15:])
    )


def last_tick(text: str) -> int:
    """The highest ``HVTEST: tick <n>`` counter in a serial log (0 if none)."""
    ticks = [int(line.split()[2]) for line in text.splitlines() if line.startswith("HVTEST: tick ")]
    return max(ticks, default=0)


def qemu_pid(name: str) -> int:
    """The process id of a running VM's QEMU."""
    return int(Path(f"/run/libvirt/qemu/{name}.pid").read_text(encoding="ascii").strip())


def backing_chain(file: str) -> list[dict[str, Any]]:
    """``qemu-img info --backing-chain`` of an image (shared lock: its VM may run), top first."""
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--backing-chain", "--output=json", file],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    entries: list[dict[str, Any]] = json.loads(out)
    return entries


def disk_domain_xml(name: str, disks: Sequence[tuple[Path, str, str, str]]) -> str:
    """A minimal QEMU VM (64 MiB, no boot device: start it paused) with ``disks``, each (file or
    /dev block device, format, target, bus); a virtio-scsi controller when a disk is on SCSI."""
    domain = ET.Element("domain", type="qemu")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "memory", unit="MiB").text = "64"
    ET.SubElement(domain, "vcpu").text = "1"
    os_node = ET.SubElement(domain, "os")
    ET.SubElement(os_node, "type", arch="x86_64", machine="pc").text = "hvm"
    devices = ET.SubElement(domain, "devices")
    if any(bus == "scsi" for _path, _fmt, _target, bus in disks):
        ET.SubElement(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for path, fmt, target, bus in disks:
        block = str(path).startswith("/dev/")
        disk = ET.SubElement(devices, "disk", type="block" if block else "file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type=fmt)
        ET.SubElement(disk, "source", {"dev" if block else "file": str(path)})
        ET.SubElement(disk, "target", dev=target, bus=bus)
    return ET.tostring(domain, encoding="unicode")


class FaultyDomain:
    """A ``virDomain`` with some of its methods replaced (to inject failures)."""

    def __init__(self, dom: Any, **methods: Any) -> None:
        self._dom = dom
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._dom, name)


def injected_failure(*_args: Any) -> Any:
    """A libvirt method that fails."""
    raise libvirt.libvirtError("injected failure")


def autostart_fails(dom: Any) -> FaultyDomain:
    """The VM, except that setting its autostart fails (a late step of ``apply_settings``)."""
    return FaultyDomain(dom, setAutostart=injected_failure)
