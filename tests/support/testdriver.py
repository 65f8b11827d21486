"""Node files for libvirt's in-process test driver (``test:///<file>``): fleets of fake VMs.

Only for fast GUI tests and fleet benchmarks; features are proven against the real daemon.
The driver's ``test:runstate`` element sets a domain's state (1 running, 3 paused, 5 shut off) and
``test:hasmanagedsave`` gives a shut-off domain a saved state.
"""

from __future__ import annotations

import uuid as uuidlib
import xml.etree.ElementTree as ET
from pathlib import Path

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
ET.register_namespace("test", TEST_NS)

RUNNING, PAUSED, SHUTOFF = 1, 3, 5


def _domain(name: str, state: int, saved: bool, memory_mib: int, index: int) -> ET.Element:
    domain = ET.Element("domain", type="test")
    ET.SubElement(domain, "name").text = name
    ET.SubElement(domain, "uuid").text = str(uuidlib.UUID(int=index + 1))
    ET.SubElement(domain, "memory", unit="MiB").text = str(memory_mib)
    ET.SubElement(domain, "currentMemory", unit="MiB").text = str(memory_mib)
    ET.SubElement(domain, "vcpu").text = "1"
    os_el = ET.SubElement(domain, "os")
    ET.SubElement(os_el, "type").text = "hvm"
    ET.SubElement(domain, "on_poweroff").text = "destroy"
    ET.SubElement(domain, "on_reboot").text = "restart"
    ET.SubElement(domain, "on_crash").text = "destroy"
    ET.SubElement(domain, f"{{{TEST_NS}}}runstate").text = str(state)
    if saved:
        ET.SubElement(domain, f"{{{TEST_NS}}}hasmanagedsave").text = "yes"
    return domain


def write_node(path: Path, vms: list[tuple[str, int, bool]], memory_mib: int = 256) -> str:
    """Write a node file with ``(name, state, has_saved_state)`` VMs; returns its test URI."""
    node = ET.Element("node")
    cpu = ET.SubElement(node, "cpu")
    for tag, value in (
        ("nodes", 1),
        ("sockets", 1),
        ("cores", 2),
        ("threads", 1),
        ("active", 2),
        ("mhz", 2000),
        ("model", "x86_64"),
    ):
        ET.SubElement(cpu, tag).text = str(value)
    ET.SubElement(node, "memory").text = str(16 * 1024 * 1024)
    for index, (name, state, saved) in enumerate(vms):
        node.append(_domain(name, state, saved, memory_mib, index))
    path.write_text(ET.tostring(node, encoding="unicode"), encoding="utf-8")
    return f"test://{path.resolve()}"


def write_fleet(path: Path, count: int, running_share: float = 2 / 3) -> str:
    """A fleet of ``count`` VMs, ``running_share`` of them running; returns the test URI."""
    running = round(count * running_share)
    vms = [(f"vm-{i:04d}", RUNNING if i < running else SHUTOFF, False) for i in range(count)]
    return write_node(path, vms)
