"""``apply_settings`` against the real libvirt daemon (``qemu:///system``), checked with ``virsh``.

Each test defines small ``hvtest-settings-*-<pid>`` VMs (128 MB, no disk) with ``create_vm``,
applies changes with ``vmsettings.apply_settings`` and reads the result back with an independent
observer: ``virsh dumpxml`` (``--inactive`` for the next start), ``virsh dominfo``, ``virsh desc``,
``virsh domname``. A VM with no disk and no kernel sits in its firmware under TCG: it is running,
which is all the running-state rules need. The balloon test boots the cached test guest (a real
kernel with ``virtio_balloon``). ``clean_domains`` removes this run's VMs afterwards.
"""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from hvmanager.backend import creation
from hvmanager.backend.connection import Server
from hvmanager.backend.domxml import METADATA_NS
from hvmanager.backend.errors import HvError, ValidationError
from hvmanager.backend.models import (
    BootDevice,
    HostInfo,
    KernelBoot,
    MemoryConfig,
    StartAction,
    StopAction,
    VmSpec,
)
from hvmanager.backend.vmsettings import NOTE_BOOT_ORDER, SettingsChange, apply_settings
from tests.conftest import SYSTEM_URI, vm_name
from tests.support.guest import TestGuest, wait_for_serial
from tests.vm.helpers import autostart_fails

pytestmark = pytest.mark.vm

HV = f"{{{METADATA_NS}}}"
REORDERED = (BootDevice.NETWORK, BootDevice.CD, BootDevice.HARD_DRIVE)


# --- observers ----------------------------------------------------------------------------------


def virsh(*args: str) -> str:
    """Run virsh on the system daemon; fail the test with its error output when it fails."""
    done = subprocess.run(["virsh", "-c", SYSTEM_URI, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"virsh {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def dominfo(name: str) -> dict[str, str]:
    """``virsh dominfo`` as a dict ("CPU(s)" -> "2", "Max memory" -> "262144 KiB", ...)."""
    pairs = (line.split(":", 1) for line in virsh("dominfo", name).splitlines() if ":" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def inactive_xml(name: str) -> str:
    """The persistent definition, secrets included."""
    return virsh("dumpxml", "--inactive", "--security-info", name)


def live_root(name: str) -> ET.Element:
    return ET.fromstring(virsh("dumpxml", name))


def boot_order(root: ET.Element) -> list[str]:
    return [boot.get("dev", "") for boot in root.findall("os/boot")]


def hv(root: ET.Element, tag: str) -> ET.Element:
    """hvmanager's metadata element ``tag`` (memory, start, stop, ...)."""
    element = root.find(f"metadata/{HV}vm/{HV}{tag}")
    assert element is not None, f"no hv:{tag} in the domain XML"
    return element


def kib(text: str) -> int:
    """``"262144 KiB"`` -> 262144."""
    return int(text.split()[0])


# --- fixtures -----------------------------------------------------------------------------------


def settings_name(label: str) -> str:
    """A test VM name that ``clean_domains`` removes: ``hvtest-settings-<label>-<pid>``."""
    return vm_name(f"settings-{label}")


@pytest.fixture
def host(server: Server) -> HostInfo:
    return server.host_info()


def make_vm(
    server: Server,
    location: Path,
    suffix: str,
    memory: MemoryConfig | None = None,
    install: KernelBoot | None = None,
) -> Any:
    """Define a VM named ``hvtest-settings-<suffix>-<pid>`` and return its ``virDomain``."""
    spec = VmSpec(
        name=settings_name(suffix),
        location=str(location),
        memory=memory or MemoryConfig(128),
        install=install,
    )
    uuid = creation.create_vm(server, spec, creation.decide_acceleration(server, "tcg"))
    return server.lookup(uuid)


@pytest.fixture
def off_vm(server: Server, vm_location: Path) -> Any:
    return make_vm(server, vm_location, "off")


@pytest.fixture
def running_vm(server: Server, vm_location: Path) -> Any:
    """A running VM with Dynamic Memory 128 MB (Minimum 96, Maximum 256)."""
    dom = make_vm(server, vm_location, "running", MemoryConfig(128, True, 96, 256))
    dom.create()
    return dom


def assert_refused(server: Server, dom: Any, host: HostInfo, change: SettingsChange, reason: str) -> None:
    """``change`` raises ``ValidationError`` with ``reason`` and the definition stays as it was."""
    name = dom.name()
    before = inactive_xml(name)
    with pytest.raises(ValidationError) as caught:
        apply_settings(server.conn, dom, change, host)
    assert caught.value.message == reason
    assert inactive_xml(name) == before
    assert virsh("domname", dom.UUIDString()).strip() == name


# --- a VM that is off ---------------------------------------------------------------------------


def test_every_setting_is_applied_to_a_vm_that_is_off(server: Server, host: HostInfo, off_vm: Any) -> None:
    uuid = off_vm.UUIDString()
    change = SettingsChange(
        memory=MemoryConfig(128, True, 64, 256),
        processors=2,
        boot_order=REORDERED,
        name=settings_name("renamed"),
        notes="First line\nsecond line – ünïcode",
        start_action=StartAction.START,
        start_delay_s=30,
        stop_action=StopAction.SHUT_DOWN,
    )

    assert apply_settings(server.conn, off_vm, change, host) == []

    name = virsh("domname", uuid).strip()
    assert name == settings_name("renamed")
    info = dominfo(name)
    assert (info["State"], info["CPU(s)"], info["Autostart"]) == ("shut off", "2", "enable")
    assert (kib(info["Max memory"]), kib(info["Used memory"])) == (256 * 1024, 128 * 1024)
    root = ET.fromstring(inactive_xml(name))
    assert boot_order(root) == ["network", "cdrom", "hd"]
    memory = hv(root, "memory")
    assert (memory.get("dynamic"), memory.get("minimum"), memory.get("maximum")) == ("yes", "64", "256")
    assert (hv(root, "start").get("action"), hv(root, "start").get("delay")) == ("Start", "30")
    assert hv(root, "stop").get("action") == "ShutDown"
    assert virsh("desc", "--config", name).rstrip("\n") == "First line\nsecond line – ünïcode"
    assert name in virsh("list", "--all", "--autostart", "--name").split()


@pytest.mark.parametrize("action", [StartAction.NOTHING, StartAction.START_IF_RUNNING])
def test_start_actions_other_than_start_clear_autostart(
    server: Server, host: HostInfo, off_vm: Any, action: StartAction
) -> None:
    apply_settings(server.conn, off_vm, SettingsChange(start_action=StartAction.START), host)
    assert dominfo(off_vm.name())["Autostart"] == "enable"

    apply_settings(server.conn, off_vm, SettingsChange(start_action=action), host)

    assert dominfo(off_vm.name())["Autostart"] == "disable"
    assert hv(ET.fromstring(inactive_xml(off_vm.name())), "start").get("action") == action.value


def test_turning_dynamic_memory_off_restores_a_single_amount(
    server: Server, host: HostInfo, vm_location: Path
) -> None:
    dom = make_vm(server, vm_location, "static", MemoryConfig(128, True, 64, 256))

    apply_settings(server.conn, dom, SettingsChange(memory=MemoryConfig(192)), host)

    info = dominfo(dom.name())
    assert (kib(info["Max memory"]), kib(info["Used memory"])) == (192 * 1024, 192 * 1024)
    assert hv(ET.fromstring(inactive_xml(dom.name())), "memory").get("dynamic") == "no"


def test_clearing_notes_removes_the_description(server: Server, host: HostInfo, off_vm: Any) -> None:
    apply_settings(server.conn, off_vm, SettingsChange(notes="temporary"), host)
    apply_settings(server.conn, off_vm, SettingsChange(notes=""), host)

    assert ET.fromstring(inactive_xml(off_vm.name())).find("description") is None


def test_a_name_in_use_is_refused(server: Server, host: HostInfo, vm_location: Path) -> None:
    first = make_vm(server, vm_location, "first")
    make_vm(server, vm_location, "second")

    assert_refused(
        server,
        first,
        host,
        SettingsChange(name=settings_name("second"), processors=2),
        f"A virtual machine named '{settings_name('second')}' already exists on this server.",
    )


def test_vnc_password_survives_applying_settings(server: Server, host: HostInfo, off_vm: Any) -> None:
    xml = inactive_xml(off_vm.name()).replace("<graphics type='vnc'", "<graphics type='vnc' passwd='s3cret'")
    server.conn.defineXML(xml)

    apply_settings(server.conn, off_vm, SettingsChange(notes="no secrets lost"), host)

    graphics = ET.fromstring(inactive_xml(off_vm.name())).find("devices/graphics")
    assert graphics is not None and graphics.get("passwd") == "s3cret"


def test_a_failure_after_rename_and_define_undoes_both(server: Server, host: HostInfo, off_vm: Any) -> None:
    name, uuid = off_vm.name(), off_vm.UUIDString()
    before = inactive_xml(name)
    change = SettingsChange(
        name=settings_name("never"), processors=2, notes="never", start_action=StartAction.START
    )

    with pytest.raises(HvError, match="injected failure"):
        apply_settings(server.conn, autostart_fails(off_vm), change, host)

    assert virsh("domname", uuid).strip() == name
    assert inactive_xml(name) == before
    assert dominfo(name)["Autostart"] == "disable"


# --- a running VM -------------------------------------------------------------------------------


def test_startup_memory_is_refused_while_running(server: Server, host: HostInfo, running_vm: Any) -> None:
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(memory=MemoryConfig(160, True, 96, 256)),
        "Startup RAM can't be changed while the virtual machine is running. Shut it down first.",
    )


def test_turning_dynamic_memory_off_is_refused_while_running(
    server: Server, host: HostInfo, running_vm: Any
) -> None:
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(memory=MemoryConfig(128)),
        "Dynamic Memory can't be turned off while the virtual machine is running. Shut it down first.",
    )


def test_growing_minimum_and_shrinking_maximum_are_refused_while_running(
    server: Server, host: HostInfo, running_vm: Any
) -> None:
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(memory=MemoryConfig(128, True, 112, 256)),
        "While the virtual machine is running, Minimum RAM can only be decreased (it is 96 MB).",
    )
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(memory=MemoryConfig(128, True, 96, 192)),
        "While the virtual machine is running, Maximum RAM can only be increased (it is 256 MB).",
    )


def test_processors_and_rename_are_refused_while_running(
    server: Server, host: HostInfo, running_vm: Any
) -> None:
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(processors=2),
        "The number of virtual processors can't be changed while the virtual machine is "
        "running. Shut it down first.",
    )
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(name=settings_name("other")),
        f"Can't rename '{running_vm.name()}' while it is Running "
        "(libvirt renames a virtual machine only while it is off, without a saved state).",
    )


def test_shrinking_minimum_and_growing_maximum_while_running(
    server: Server, host: HostInfo, running_vm: Any
) -> None:
    name = running_vm.name()
    change = SettingsChange(memory=MemoryConfig(128, True, 64, 384))

    notes = apply_settings(server.conn, running_vm, change, host)

    assert notes == [
        "The new Maximum RAM (384 MB) takes effect at the next start: QEMU can't raise the "
        "memory ceiling of a running virtual machine."
    ]
    assert kib(dominfo(name)["Max memory"]) == 256 * 1024  # the live ceiling is unchanged
    config = ET.fromstring(inactive_xml(name))
    assert config.findtext("memory") == str(384 * 1024)
    assert hv(config, "memory").get("minimum") == "64"
    assert hv(live_root(name), "memory").get("minimum") == "64"  # the details pane sees it now


def test_notes_change_live_and_in_the_configuration(server: Server, host: HostInfo, running_vm: Any) -> None:
    name = running_vm.name()

    apply_settings(server.conn, running_vm, SettingsChange(notes="Web front end\nv2"), host)

    assert virsh("desc", name).rstrip("\n") == "Web front end\nv2"
    assert virsh("desc", "--config", name).rstrip("\n") == "Web front end\nv2"


def test_automatic_actions_change_live_and_in_the_configuration(
    server: Server, host: HostInfo, running_vm: Any
) -> None:
    name = running_vm.name()
    change = SettingsChange(start_action=StartAction.START, start_delay_s=45, stop_action=StopAction.TURN_OFF)

    apply_settings(server.conn, running_vm, change, host)

    for root in (live_root(name), ET.fromstring(inactive_xml(name))):
        assert (hv(root, "start").get("action"), hv(root, "start").get("delay")) == ("Start", "45")
        assert hv(root, "stop").get("action") == "TurnOff"
        assert hv(root, "generation").text == "1"  # the rest of the metadata is kept
    assert dominfo(name)["Autostart"] == "enable"


def test_boot_order_is_saved_for_the_next_start(server: Server, host: HostInfo, running_vm: Any) -> None:
    name = running_vm.name()
    live_before = boot_order(live_root(name))

    notes = apply_settings(server.conn, running_vm, SettingsChange(boot_order=REORDERED), host)

    assert notes == [NOTE_BOOT_ORDER]
    assert boot_order(ET.fromstring(inactive_xml(name))) == ["network", "cdrom", "hd"]
    assert boot_order(live_root(name)) == live_before


# --- a saved VM ---------------------------------------------------------------------------------


def test_a_saved_vm_keeps_its_name_and_hardware(server: Server, host: HostInfo, running_vm: Any) -> None:
    name = running_vm.name()
    running_vm.managedSave(0)
    assert dominfo(name)["Managed save"] == "yes"

    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(name=settings_name("other")),
        f"Can't rename '{name}' while it is Saved: libvirt can't rename a virtual machine that "
        "has a saved state. Start it and shut it down, or delete the saved state, first.",
    )
    assert_refused(
        server,
        running_vm,
        host,
        SettingsChange(memory=MemoryConfig(128, True, 64, 256)),
        "Memory can't be changed while the virtual machine is saved: it resumes with the memory "
        "it was saved with. Start it and shut it down, or delete the saved state, first.",
    )
    # The rule mirrors libvirt itself, which refuses to rename a domain with a saved state:
    refused = subprocess.run(
        ["virsh", "-c", SYSTEM_URI, "domrename", name, settings_name("other")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0 and "managed saved state" in refused.stderr
    # Notes and the boot order are still fine:
    notes = apply_settings(server.conn, running_vm, SettingsChange(notes="saved", boot_order=REORDERED), host)
    assert notes == [NOTE_BOOT_ORDER]
    assert virsh("desc", "--config", name).strip() == "saved"


# --- the balloon follows the range --------------------------------------------------------------


def _wait_used_memory(name: str, wanted_kib: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    used = 0
    while time.monotonic() < deadline:
        used = kib(dominfo(name)["Used memory"])
        if abs(used - wanted_kib) <= 4096:
            return used
        time.sleep(0.5)
    return used


def test_memory_below_a_new_minimum_is_moved_into_the_range(
    server: Server, host: HostInfo, vm_location: Path, test_guest: TestGuest
) -> None:
    kernel = KernelBoot(str(test_guest.kernel), str(test_guest.initrd), test_guest.cmdline)
    dom = make_vm(server, vm_location, "balloon", MemoryConfig(256, True, 192, 384), kernel)
    name = dom.name()
    dom.create()
    log = vm_location / name / "Virtual Machines" / "serial.log"
    wait_for_serial(log, "HVTEST: booted", 180)
    virsh("setmem", name, str(160 * 1024), "--live")  # somebody squeezed it below the minimum
    assert _wait_used_memory(name, 160 * 1024) == pytest.approx(160 * 1024, abs=4096)

    notes = apply_settings(server.conn, dom, SettingsChange(memory=MemoryConfig(256, True, 176, 384)), host)

    assert notes == [
        "The memory of the running virtual machine was moved to 176 MB to lie within the new range."
    ]
    assert _wait_used_memory(name, 176 * 1024) == pytest.approx(176 * 1024, abs=4096)
