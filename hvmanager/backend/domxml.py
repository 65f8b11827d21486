"""libvirt domain XML for hvmanager VMs: build it from a ``VmSpec``, read it into a ``VmConfig``,
and edit it in place (so devices we do not know survive a Settings change).

XML is built with ElementTree from typed values (never by string concatenation) and parsed with
defusedxml. hvmanager's own facts (generation, creation time, dynamic memory minimum, automatic
actions) live in the domain's ``<metadata>`` under ``METADATA_NS``; notes are libvirt's
``<description>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import defusedxml.ElementTree as SafeET

from hvmanager.backend.models import (
    DEFAULT_BOOT_ORDER,
    BootDevice,
    DiskConfig,
    KernelBoot,
    MemoryConfig,
    NicConfig,
    StartAction,
    StopAction,
    VmConfig,
)

_Action = TypeVar("_Action", StartAction, StopAction)

METADATA_NS = "https://hvmanager.dev/xmlns/vm/1"
METADATA_PREFIX = "hv"
ET.register_namespace(METADATA_PREFIX, METADATA_NS)

_UNIT_KIB = {
    "b": 1 / 1024,
    "bytes": 1 / 1024,
    "k": 1,
    "kib": 1,
    "kb": 1000 / 1024,
    "m": 1024,
    "mib": 1024,
    "mb": 1_000_000 / 1024,
    "g": 1024**2,
    "gib": 1024**2,
    "t": 1024**3,
    "tib": 1024**3,
}


@dataclass(frozen=True)
class DiskPlan:
    """A disk device to put into a new domain."""

    path: str
    format: str
    device: str = "disk"  # "disk" or "cdrom"


@dataclass(frozen=True)
class DomainPlan:
    """Everything ``build_domain_xml`` needs, resolved (paths, domain type, boot order)."""

    name: str
    domain_type: str
    generation: int
    memory: MemoryConfig
    processors: int
    folder: str
    created: datetime
    disks: tuple[DiskPlan, ...] = ()
    network: str | None = None
    mac: str | None = None
    boot_order: tuple[BootDevice, ...] = DEFAULT_BOOT_ORDER
    kernel_boot: KernelBoot | None = None
    notes: str = ""
    accel_mode: str = "auto"
    serial_log: str | None = None


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _hv(tag: str) -> str:
    return f"{{{METADATA_NS}}}{tag}"


# --- building -----------------------------------------------------------------------------------


def build_domain_xml(plan: DomainPlan) -> str:
    """The domain XML for a new VM."""
    root = ET.Element("domain", type=plan.domain_type)
    _sub(root, "name", plan.name)
    if plan.notes:
        _sub(root, "description", plan.notes)
    metadata = _sub(root, "metadata")
    metadata.append(_metadata_element(plan))
    _sub(root, "memory", str(plan.memory.ceiling_mib), unit="MiB")
    _sub(root, "currentMemory", str(plan.memory.startup_mib), unit="MiB")
    _sub(root, "vcpu", str(plan.processors), placement="static")
    _build_os(root, plan)
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if plan.domain_type == "kvm":
        _sub(root, "cpu", mode="host-passthrough", check="none", migratable="on")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    _build_devices(root, plan)
    return ET.tostring(root, encoding="unicode")


def _metadata_element(plan: DomainPlan) -> ET.Element:
    vm = ET.Element(_hv("vm"))
    _sub(vm, _hv("generation"), str(plan.generation))
    _sub(vm, _hv("created"), plan.created.isoformat(timespec="seconds"))
    _sub(vm, _hv("folder"), plan.folder)
    _sub(vm, _hv("accel"), plan.accel_mode)
    _set_metadata_memory(vm, plan.memory)
    _sub(vm, _hv("start"), action=StartAction.NOTHING.value, delay="0")
    _sub(vm, _hv("stop"), action=StopAction.SAVE.value)
    return vm


def _set_metadata_memory(vm: ET.Element, memory: MemoryConfig) -> None:
    for old in vm.findall(_hv("memory")):
        vm.remove(old)
    attrib = {"dynamic": "yes" if memory.dynamic else "no"}
    if memory.dynamic:
        attrib["minimum"] = str(memory.minimum_mib or memory.startup_mib)
        attrib["maximum"] = str(memory.maximum_mib or memory.startup_mib)
    _sub(vm, _hv("memory"), **attrib)


def _build_os(root: ET.Element, plan: DomainPlan) -> None:
    if plan.generation == 2:
        os_el = _sub(root, "os", firmware="efi")
        _sub(os_el, "type", "hvm", arch="x86_64", machine="q35")
        firmware = _sub(os_el, "firmware")
        _sub(firmware, "feature", enabled="no", name="secure-boot")
        _sub(firmware, "feature", enabled="no", name="enrolled-keys")
    else:
        os_el = _sub(root, "os")
        _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    if plan.kernel_boot:
        _sub(os_el, "kernel", plan.kernel_boot.kernel)
        if plan.kernel_boot.initrd:
            _sub(os_el, "initrd", plan.kernel_boot.initrd)
        if plan.kernel_boot.cmdline:
            _sub(os_el, "cmdline", plan.kernel_boot.cmdline)
    else:
        for device in plan.boot_order:
            _sub(os_el, "boot", dev=device.value)


def _disk_target(generation: int, index: int, device: str) -> tuple[str, str]:
    """Gen 1: IDE 0:0 for the boot disk, IDE 1:0 for the DVD; Gen 2: SCSI."""
    if generation == 2:
        return "sd" + "abcdefgh"[index], "scsi"
    return ("hdc" if device == "cdrom" else "hd" + "abd"[index]), "ide"


def _build_devices(root: ET.Element, plan: DomainPlan) -> None:
    devices = _sub(root, "devices")
    if plan.generation == 2:
        _sub(devices, "controller", type="scsi", index="0", model="virtio-scsi")
    for index, disk in enumerate(plan.disks):
        target, bus = _disk_target(plan.generation, index, disk.device)
        element = _sub(devices, "disk", type="file", device=disk.device)
        _sub(element, "driver", name="qemu", type=disk.format)
        _sub(element, "source", file=disk.path)
        _sub(element, "target", dev=target, bus=bus)
        if disk.device == "cdrom":
            _sub(element, "readonly")
    _build_nic(devices, plan)
    serial = _sub(devices, "serial", type="pty")
    if plan.serial_log:
        _sub(serial, "log", file=plan.serial_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    channel = _sub(devices, "channel", type="unix")
    _sub(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    _sub(devices, "input", type="tablet", bus="usb")
    graphics = _sub(devices, "graphics", type="vnc", port="-1", autoport="yes", listen="127.0.0.1")
    _sub(graphics, "listen", type="address", address="127.0.0.1")
    video = _sub(devices, "video")
    _sub(video, "model", type="vga", vram="16384", heads="1")
    balloon = _sub(devices, "memballoon", model="virtio")
    _sub(balloon, "stats", period="5")


def _build_nic(devices: ET.Element, plan: DomainPlan) -> None:
    if plan.network:
        nic = _sub(devices, "interface", type="network")
        _sub(nic, "source", network=plan.network)
    else:
        # "Not connected": an adapter whose link is down and which reaches nothing on the host.
        nic = _sub(devices, "interface", type="user")
        _sub(nic, "link", state="down")
    if plan.mac:
        _sub(nic, "mac", address=plan.mac)
    _sub(nic, "model", type="virtio")


# --- reading ------------------------------------------------------------------------------------


def _mib(element: ET.Element | None) -> int:
    if element is None or not (element.text or "").strip():
        return 0
    unit = element.get("unit", "KiB").lower()
    return int(int(element.text or "0") * _UNIT_KIB.get(unit, 1) // 1024)


def _text(root: ET.Element, path: str, default: str = "") -> str:
    element = root.find(path)
    return (element.text or default) if element is not None else default


def parse_domain_xml(xml: str) -> VmConfig:
    """Read a domain XML (ours or anybody's) into a ``VmConfig``."""
    root = SafeET.fromstring(xml)
    meta = root.find(f"metadata/{_hv('vm')}")
    os_el = root.find("os")
    return VmConfig(
        name=_text(root, "name"),
        uuid=_text(root, "uuid"),
        domain_type=root.get("type", "qemu"),
        memory=_parse_memory(root, meta),
        processors=int(_text(root, "vcpu", "1") or 1),
        generation=_parse_generation(meta, os_el),
        boot_order=_parse_boot_order(os_el),
        disks=tuple(_parse_disk(d) for d in root.findall("devices/disk")),
        nics=tuple(_parse_nic(n) for n in root.findall("devices/interface")),
        kernel_boot=_parse_kernel(os_el),
        notes=_text(root, "description"),
        created=_parse_created(meta),
        start_action=_parse_enum(meta, "start", StartAction, StartAction.NOTHING),
        start_delay_s=int(_meta_attr(meta, "start", "delay") or 0),
        stop_action=_parse_enum(meta, "stop", StopAction, StopAction.SAVE),
        running_at_host_stop=_meta_attr(meta, "host", "running_at_stop") == "yes",
        folder=_meta_text(meta, "folder") or None,
        accel_mode=_meta_text(meta, "accel") or "auto",
        serial_log=_serial_log(root),
        machine=os_el.find("type").get("machine", "")
        if os_el is not None and os_el.find("type") is not None
        else "",
        firmware=_parse_firmware(os_el),
        managed=meta is not None,
    )


def _meta_text(meta: ET.Element | None, tag: str) -> str:
    if meta is None:
        return ""
    element = meta.find(_hv(tag))
    return (element.text or "") if element is not None else ""


def _meta_attr(meta: ET.Element | None, tag: str, attr: str) -> str:
    if meta is None:
        return ""
    element = meta.find(_hv(tag))
    return element.get(attr, "") if element is not None else ""


def _parse_enum(meta: ET.Element | None, tag: str, enum_type: type[_Action], default: _Action) -> _Action:
    value = _meta_attr(meta, tag, "action")
    try:
        return enum_type(value)
    except ValueError:
        return default


def _parse_memory(root: ET.Element, meta: ET.Element | None) -> MemoryConfig:
    ceiling = _mib(root.find("memory"))
    current = _mib(root.find("currentMemory")) or ceiling
    if _meta_attr(meta, "memory", "dynamic") != "yes":
        return MemoryConfig(startup_mib=current)
    minimum = int(_meta_attr(meta, "memory", "minimum") or current)
    return MemoryConfig(startup_mib=current, dynamic=True, minimum_mib=minimum, maximum_mib=ceiling)


def _parse_generation(meta: ET.Element | None, os_el: ET.Element | None) -> int | None:
    value = _meta_text(meta, "generation")
    if value.isdigit():
        return int(value)
    return 2 if _parse_firmware(os_el) == "efi" else None


def _parse_firmware(os_el: ET.Element | None) -> str:
    if os_el is None:
        return "bios"
    loader = os_el.find("loader")
    if os_el.get("firmware") == "efi" or (loader is not None and loader.get("type") == "pflash"):
        return "efi"
    return "bios"


def _parse_boot_order(os_el: ET.Element | None) -> tuple[BootDevice, ...]:
    if os_el is None:
        return DEFAULT_BOOT_ORDER
    order = []
    for boot in os_el.findall("boot"):
        try:
            order.append(BootDevice(boot.get("dev", "")))
        except ValueError:
            continue
    listed = tuple(order)
    return listed + tuple(d for d in DEFAULT_BOOT_ORDER if d not in listed) if listed else DEFAULT_BOOT_ORDER


def _parse_kernel(os_el: ET.Element | None) -> KernelBoot | None:
    if os_el is None or os_el.find("kernel") is None:
        return None
    return KernelBoot(_text(os_el, "kernel"), _text(os_el, "initrd"), _text(os_el, "cmdline"))


def _parse_created(meta: ET.Element | None) -> datetime | None:
    try:
        return datetime.fromisoformat(_meta_text(meta, "created"))
    except ValueError:
        return None


def _parse_disk(disk: ET.Element) -> DiskConfig:
    source = disk.find("source")
    driver = disk.find("driver")
    target = disk.find("target")
    path = None
    if source is not None:
        path = source.get("file") or source.get("dev") or source.get("name")
    return DiskConfig(
        device=disk.get("device", "disk"),
        path=path,
        format=driver.get("type") if driver is not None else None,
        bus=target.get("bus", "") if target is not None else "",
        target=target.get("dev", "") if target is not None else "",
        readonly=disk.find("readonly") is not None,
        source_type=disk.get("type", "file"),
        slot=_drive_slot(disk.find("address"), target.get("bus", "") if target is not None else ""),
    )


def _drive_slot(address: ET.Element | None, bus: str) -> tuple[int, int] | None:
    """(controller, location) of an IDE or SCSI drive address: IDE Controller N is the IDE bus N."""
    if address is None or address.get("type") != "drive" or bus not in ("ide", "scsi"):
        return None
    controller = address.get("bus" if bus == "ide" else "controller", "0")
    unit = address.get("unit", "0")
    if not (controller.isdigit() and unit.isdigit()):
        return None
    return int(controller), int(unit)


def _parse_nic(nic: ET.Element) -> NicConfig:
    kind = nic.get("type", "")
    source = nic.find("source")
    link = nic.find("link")
    link_up = link is None or link.get("state", "up") != "down"
    name = None
    if source is not None:
        name = source.get("network") or source.get("bridge") or source.get("dev")
    if kind == "user" and not link_up:
        kind, name = "none", None
    mac = nic.find("mac")
    model = nic.find("model")
    return NicConfig(
        mac=mac.get("address", "") if mac is not None else "",
        source_type=kind,
        source=name,
        model=model.get("type", "") if model is not None else "",
        link_up=link_up,
    )


def agent_channel_state(xml: str) -> bool | None:
    """Whether the guest agent channel is connected; None when the VM has no such channel."""
    root = SafeET.fromstring(xml)
    for target in root.findall("devices/channel/target"):
        if target.get("name") == "org.qemu.guest_agent.0":
            return bool(target.get("state") == "connected")
    return None


def _serial_log(root: ET.Element) -> str | None:
    log = root.find("devices/serial/log")
    if log is not None and log.get("file"):
        return log.get("file")
    source = root.find("devices/serial[@type='file']/source")
    return source.get("path") if source is not None else None


# --- editing ------------------------------------------------------------------------------------


def _metadata_vm(root: ET.Element) -> ET.Element:
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        root.insert(2, metadata)
    vm = metadata.find(_hv("vm"))
    if vm is None:
        vm = _sub(metadata, _hv("vm"))
    return vm


def _set_child_text(root: ET.Element, tag: str, text: str, **attrib: str) -> None:
    element = root.find(tag)
    if element is None:
        element = _sub(root, tag)
    element.text = text
    element.attrib.clear()
    element.attrib.update(attrib)


def edit_memory(xml: str, memory: MemoryConfig) -> str:
    """Set startup memory and the dynamic memory range."""
    root = SafeET.fromstring(xml)
    _set_child_text(root, "memory", str(memory.ceiling_mib), unit="MiB")
    _set_child_text(root, "currentMemory", str(memory.startup_mib), unit="MiB")
    _set_metadata_memory(_metadata_vm(root), memory)
    return ET.tostring(root, encoding="unicode")


def edit_processors(xml: str, count: int) -> str:
    """Set the number of virtual processors."""
    root = SafeET.fromstring(xml)
    vcpu = root.find("vcpu")
    attrib = {"placement": vcpu.get("placement", "static")} if vcpu is not None else {}
    _set_child_text(root, "vcpu", str(count), **attrib)
    return ET.tostring(root, encoding="unicode")


def edit_boot_order(xml: str, order: tuple[BootDevice, ...]) -> str:
    """Set the BIOS startup order / firmware boot order."""
    root = SafeET.fromstring(xml)
    os_el = root.find("os")
    if os_el is None:
        raise ValueError("domain XML has no <os> element")
    for boot in os_el.findall("boot"):
        os_el.remove(boot)
    position = list(os_el).index(os_el.find("type")) + 1 if os_el.find("type") is not None else 0
    for offset, device in enumerate(order):
        os_el.insert(position + offset, ET.Element("boot", dev=device.value))
    return ET.tostring(root, encoding="unicode")


def edit_notes(xml: str, notes: str) -> str:
    """Set the VM's notes (libvirt's ``<description>``)."""
    root = SafeET.fromstring(xml)
    description = root.find("description")
    if not notes and description is not None:
        root.remove(description)
    elif notes:
        if description is None:
            description = ET.Element("description")
            root.insert(
                list(root).index(root.find("name")) + 1 if root.find("name") is not None else 0, description
            )
        description.text = notes
    return ET.tostring(root, encoding="unicode")


def edit_automatic_actions(xml: str, start: StartAction, delay_s: int, stop: StopAction) -> str:
    """Set the Automatic Start and Stop Actions."""
    root = SafeET.fromstring(xml)
    vm = _metadata_vm(root)
    for tag in ("start", "stop"):
        for old in vm.findall(_hv(tag)):
            vm.remove(old)
    _sub(vm, _hv("start"), action=start.value, delay=str(delay_s))
    _sub(vm, _hv("stop"), action=stop.value)
    return ET.tostring(root, encoding="unicode")


def edit_running_at_host_stop(xml: str, running: bool) -> str:
    """Remember whether the VM was running when the host stopped (for "start if it was running")."""
    root = SafeET.fromstring(xml)
    vm = _metadata_vm(root)
    for old in vm.findall(_hv("host")):
        vm.remove(old)
    if running:
        _sub(vm, _hv("host"), running_at_stop="yes")
    return ET.tostring(root, encoding="unicode")


def edit_domain_type(xml: str, domain_type: str) -> str:
    """Switch between KVM (``kvm``) and software emulation (``qemu``)."""
    root = SafeET.fromstring(xml)
    root.set("type", domain_type)
    cpu = root.find("cpu")
    if domain_type == "qemu" and cpu is not None and cpu.get("mode") == "host-passthrough":
        root.remove(cpu)
    return ET.tostring(root, encoding="unicode")
