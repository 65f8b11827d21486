"""Domain XML: built from a plan, read back, and edited in place without losing foreign parts."""

from __future__ import annotations

from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET
import pytest
from defusedxml import EntitiesForbidden

from hvmanager.backend import domxml
from hvmanager.backend.domxml import DiskPlan, DomainPlan
from hvmanager.backend.models import BootDevice, KernelBoot, MemoryConfig, StartAction, StopAction

CREATED = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _plan(**changes: object) -> DomainPlan:
    base = {
        "name": "web",
        "domain_type": "qemu",
        "generation": 1,
        "memory": MemoryConfig(1024),
        "processors": 2,
        "folder": "/vms/web",
        "created": CREATED,
        "disks": (DiskPlan("/vms/web/Virtual Hard Disks/web.qcow2", "qcow2"),),
        "serial_log": "/vms/web/Virtual Machines/serial.log",
        "notes": "front end",
    }
    base.update(changes)
    return DomainPlan(**base)  # type: ignore[arg-type]


def test_generation_1_round_trip() -> None:
    config = domxml.parse_domain_xml(domxml.build_domain_xml(_plan()))
    assert config.name == "web" and config.generation == 1 and config.firmware == "bios"
    assert config.memory == MemoryConfig(1024) and config.processors == 2
    assert config.created == CREATED and config.notes == "front end" and config.managed
    disk = config.disks[0]
    assert (disk.bus, disk.target, disk.format) == ("ide", "hda", "qcow2")
    assert config.nics[0].connected_to == "Not connected"
    assert config.serial_log == "/vms/web/Virtual Machines/serial.log"
    assert config.start_action is StartAction.NOTHING and config.stop_action is StopAction.SAVE


def test_generation_2_is_uefi_q35_with_scsi_boot() -> None:
    xml = domxml.build_domain_xml(_plan(generation=2, network="lab"))
    root = SafeET.fromstring(xml)
    assert root.find("os").get("firmware") == "efi"
    assert root.find("os/type").get("machine") == "q35"
    assert root.find("devices/controller[@type='scsi']").get("model") == "virtio-scsi"
    config = domxml.parse_domain_xml(xml)
    assert config.generation == 2 and config.disks[0].bus == "scsi"
    assert config.nics[0].source == "lab" and config.nics[0].connected_to == "lab"


def test_consoles_listen_on_loopback_only() -> None:
    root = SafeET.fromstring(domxml.build_domain_xml(_plan()))
    graphics = root.find("devices/graphics")
    assert graphics.get("listen") == "127.0.0.1"
    assert graphics.find("listen").get("address") == "127.0.0.1"


def test_kernel_boot_and_dvd() -> None:
    plan = _plan(
        kernel_boot=KernelBoot("/k", "/i", "console=ttyS0"),
        disks=(DiskPlan("/d.iso", "raw", device="cdrom"),),
    )
    root = SafeET.fromstring(domxml.build_domain_xml(plan))
    assert root.find("os/boot") is None
    config = domxml.parse_domain_xml(domxml.build_domain_xml(plan))
    assert config.kernel_boot == KernelBoot("/k", "/i", "console=ttyS0")
    assert config.disks[0].device == "cdrom" and config.disks[0].target == "hdc" and config.disks[0].readonly


def test_dynamic_memory_round_trip_and_edit() -> None:
    xml = domxml.build_domain_xml(_plan(memory=MemoryConfig(1024, True, 512, 4096)))
    root = SafeET.fromstring(xml)
    assert root.find("memory").text == "4096" and root.find("currentMemory").text == "1024"
    assert domxml.parse_domain_xml(xml).memory == MemoryConfig(1024, True, 512, 4096)
    edited = domxml.edit_memory(xml, MemoryConfig(2048))
    assert domxml.parse_domain_xml(edited).memory == MemoryConfig(2048)


def test_edits_keep_unknown_devices() -> None:
    xml = domxml.build_domain_xml(_plan()).replace("</devices>", "<watchdog model='i6300esb'/></devices>")
    xml = domxml.edit_processors(xml, 4)
    xml = domxml.edit_boot_order(xml, (BootDevice.NETWORK, BootDevice.HARD_DRIVE, BootDevice.CD))
    xml = domxml.edit_notes(xml, "changed")
    xml = domxml.edit_automatic_actions(xml, StartAction.START, 30, StopAction.SHUT_DOWN)
    config = domxml.parse_domain_xml(xml)
    assert "i6300esb" in xml
    assert config.processors == 4 and config.notes == "changed"
    assert config.boot_order == (BootDevice.NETWORK, BootDevice.HARD_DRIVE, BootDevice.CD)
    assert (config.start_action, config.start_delay_s, config.stop_action) == (
        StartAction.START,
        30,
        StopAction.SHUT_DOWN,
    )
    assert domxml.parse_domain_xml(domxml.edit_notes(xml, "")).notes == ""


def test_switching_to_tcg_drops_host_cpu_passthrough() -> None:
    xml = domxml.build_domain_xml(_plan(domain_type="kvm"))
    assert "host-passthrough" in xml
    tcg = domxml.edit_domain_type(xml, "qemu")
    assert "host-passthrough" not in tcg and SafeET.fromstring(tcg).get("type") == "qemu"


def test_foreign_domain_without_metadata() -> None:
    xml = """<domain type='kvm'><name>foreign</name><uuid>u</uuid>
      <memory unit='GiB'>2</memory><vcpu>3</vcpu>
      <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type><loader type='pflash'>/x</loader></os>
      <devices><interface type='bridge'><source bridge='br0'/><mac address='52:54:00:aa:bb:cc'/></interface>
      <serial type='file'><source path='/tmp/s.log'/></serial></devices></domain>"""
    config = domxml.parse_domain_xml(xml)
    assert not config.managed and config.generation == 2 and config.created is None
    assert config.memory == MemoryConfig(2048) and config.processors == 3
    assert config.nics[0].connected_to == "br0" and config.serial_log == "/tmp/s.log"


def test_agent_channel_state() -> None:
    xml = domxml.build_domain_xml(_plan())
    assert domxml.agent_channel_state(xml) is False
    connected = xml.replace(
        'name="org.qemu.guest_agent.0"', 'name="org.qemu.guest_agent.0" state="connected"'
    )
    assert domxml.agent_channel_state(connected) is True
    assert domxml.agent_channel_state("<domain><devices/></domain>") is None


def test_untrusted_xml_is_parsed_safely() -> None:
    bomb = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>
      <domain><name>&b;</name></domain>"""
    with pytest.raises(EntitiesForbidden):
        domxml.parse_domain_xml(bomb)


def test_running_at_host_stop_is_remembered() -> None:
    xml = domxml.edit_running_at_host_stop(domxml.build_domain_xml(_plan()), True)
    assert domxml.parse_domain_xml(xml).running_at_host_stop
    assert not domxml.parse_domain_xml(domxml.edit_running_at_host_stop(xml, False)).running_at_host_stop


def test_disks_carry_their_controller_and_location_from_the_address() -> None:
    xml = """<domain type='qemu'><name>x</name><devices>
      <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/>
        <address type='drive' controller='0' bus='1' target='0' unit='0'/></disk>
      <disk type='file' device='disk'><source file='/d/a.qcow2'/><target dev='sdf' bus='scsi'/>
        <address type='drive' controller='2' bus='0' target='0' unit='5'/></disk>
      <disk type='file' device='disk'><source file='/d/b.qcow2'/><target dev='vda' bus='virtio'/>
        <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></disk>
    </devices></domain>"""
    slots = [disk.slot for disk in domxml.parse_domain_xml(xml).disks]
    assert slots == [(1, 0), (2, 5), None]
