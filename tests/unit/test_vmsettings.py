"""Tests of the Settings dialog's rules and XML edits in ``hvmanager.backend.vmsettings``.

Pure: no libvirt connection. Every rule of ``change_problems`` is checked with the exact reason a
user reads, in each VM state where it matters; the XML helpers are checked on XML built by
``domxml`` and read back with ``parse_domain_xml``.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from hvmanager.backend import domxml
from hvmanager.backend.models import (
    BootDevice,
    HostInfo,
    KernelBoot,
    MemoryConfig,
    StartAction,
    StopAction,
    VmConfig,
    VmState,
)
from hvmanager.backend.vmsettings import (
    NOTE_BOOT_ORDER,
    NOTE_KERNEL_BOOT,
    SettingsChange,
    apply_notes,
    balloon_target_kib,
    change_problems,
    edit_config_xml,
    generation_of,
    hardware_locked,
    live_metadata_xml,
    metadata_element_xml,
    rename_problem,
)

HOST = HostInfo(
    "qemu:///system", "hyperhost", cpus=8, memory_mib=16384, libvirt_version="9.0.0", hypervisor="QEMU"
)
STATIC = VmConfig("web", "u-1", "qemu", MemoryConfig(1024), processors=2, generation=1)
DYNAMIC = dataclasses.replace(STATIC, memory=MemoryConfig(1024, True, 512, 2048))
ACTIVE = [s for s in VmState if s.is_active]
OTHERS = frozenset({"db", "mail"})


def problems(
    change: SettingsChange,
    state: VmState = VmState.OFF,
    current: VmConfig = STATIC,
    host: HostInfo = HOST,
) -> list[str]:
    return change_problems(current, state, change, host, OTHERS)


# --- SettingsChange ---------------------------------------------------------------------------


def test_empty_change_has_no_problems_in_any_state() -> None:
    assert SettingsChange().is_empty
    for state in VmState:
        assert problems(SettingsChange(), state) == []


def test_a_change_with_one_field_is_not_empty() -> None:
    assert not SettingsChange(notes="").is_empty


def test_applied_to_changes_only_the_set_fields() -> None:
    config = SettingsChange(processors=4, notes="x").applied_to(STATIC)
    assert (config.processors, config.notes, config.memory, config.name) == (4, "x", STATIC.memory, "web")


# --- memory limits (any state) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("memory", "reason"),
    [
        (MemoryConfig(16), "Startup memory must be at least 32 MB."),
        (MemoryConfig(1025), "Startup memory must be a multiple of 2 MB."),
        (MemoryConfig(20000), "Startup memory can be at most 16384 MB on this server."),
        (MemoryConfig(1024, True, 16, 2048), "Minimum memory must be at least 32 MB."),
        (MemoryConfig(1024, True, 512, 99998), "Maximum memory can be at most 16384 MB on this server."),
        (MemoryConfig(1024, True, 2048, 4096), "Minimum memory can't be larger than startup memory."),
        (MemoryConfig(1024, True, 512, 768), "Maximum memory can't be smaller than startup memory."),
    ],
)
def test_memory_limits(memory: MemoryConfig, reason: str) -> None:
    assert problems(SettingsChange(memory=memory)) == [reason]


def test_valid_memory_changes_while_off() -> None:
    assert problems(SettingsChange(memory=MemoryConfig(4096))) == []
    assert problems(SettingsChange(memory=MemoryConfig(1024, True, 256, 8192))) == []
    assert problems(SettingsChange(memory=MemoryConfig(2048)), current=DYNAMIC) == []


def test_unchanged_memory_is_not_checked_even_if_invalid() -> None:
    odd = dataclasses.replace(STATIC, memory=MemoryConfig(1025))
    assert problems(SettingsChange(memory=MemoryConfig(1025)), VmState.RUNNING, odd) == []


def test_generation_2_allows_more_memory_than_generation_1() -> None:
    big_host = dataclasses.replace(HOST, memory_mib=4 * 1024 * 1024)
    gen2 = dataclasses.replace(STATIC, generation=2)
    change = SettingsChange(memory=MemoryConfig(2 * 1024 * 1024))
    assert problems(change, host=big_host) == ["Startup memory can be at most 1048576 MB on this server."]
    assert problems(change, current=gen2, host=big_host) == []


# --- memory while running / saved -----------------------------------------------------------


@pytest.mark.parametrize("state", ACTIVE)
def test_startup_memory_is_refused_while_active(state: VmState) -> None:
    assert problems(SettingsChange(memory=MemoryConfig(2048)), state) == [
        f"Startup RAM can't be changed while the virtual machine is {state.value.lower()}. "
        "Shut it down first."
    ]


@pytest.mark.parametrize("state", ACTIVE)
def test_turning_dynamic_memory_on_is_refused_while_active(state: VmState) -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 512, 2048))
    assert problems(change, state) == [
        f"Dynamic Memory can't be turned on while the virtual machine is {state.value.lower()}. "
        "Shut it down first."
    ]


def test_turning_dynamic_memory_off_is_refused_while_running() -> None:
    change = SettingsChange(memory=MemoryConfig(1024))
    assert problems(change, VmState.RUNNING, DYNAMIC) == [
        "Dynamic Memory can't be turned off while the virtual machine is running. Shut it down first."
    ]


def test_startup_and_dynamic_together_give_both_reasons() -> None:
    change = SettingsChange(memory=MemoryConfig(2048, True, 512, 4096))
    assert len(problems(change, VmState.RUNNING)) == 2


@pytest.mark.parametrize("state", ACTIVE)
def test_minimum_may_decrease_and_maximum_increase_while_active(state: VmState) -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 256, 4096))
    assert problems(change, state, DYNAMIC) == []


def test_minimum_may_not_increase_while_running() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 768, 2048))
    assert problems(change, VmState.RUNNING, DYNAMIC) == [
        "While the virtual machine is running, Minimum RAM can only be decreased (it is 512 MB)."
    ]


def test_maximum_may_not_decrease_while_paused() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 512, 1536))
    assert problems(change, VmState.PAUSED, DYNAMIC) == [
        "While the virtual machine is paused, Maximum RAM can only be increased (it is 2048 MB)."
    ]


def test_both_range_rules_are_reported_together() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 768, 1536))
    assert problems(change, VmState.RUNNING, DYNAMIC) == [
        "While the virtual machine is running, Minimum RAM can only be decreased (it is 512 MB).",
        "While the virtual machine is running, Maximum RAM can only be increased (it is 2048 MB).",
    ]


def test_range_rules_do_not_apply_while_off() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 768, 1536))
    assert problems(change, VmState.OFF, DYNAMIC) == []


def test_any_memory_change_is_refused_while_saved() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 256, 4096))
    assert problems(change, VmState.SAVED, DYNAMIC) == [
        "Memory can't be changed while the virtual machine is saved: it resumes with the memory "
        "it was saved with. Start it and shut it down, or delete the saved state, first."
    ]


def test_limit_and_state_problems_are_both_reported() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 16, 2048))
    assert problems(change, VmState.RUNNING, DYNAMIC) == ["Minimum memory must be at least 32 MB."]
    change = SettingsChange(memory=MemoryConfig(1025))
    assert problems(change, VmState.RUNNING) == [
        "Startup memory must be a multiple of 2 MB.",
        "Startup RAM can't be changed while the virtual machine is running. Shut it down first.",
    ]


# --- processors -----------------------------------------------------------------------------


def test_processors_within_the_host_while_off() -> None:
    assert problems(SettingsChange(processors=8)) == []


def test_processors_above_the_host() -> None:
    assert problems(SettingsChange(processors=9)) == [
        "This server has 8 logical processors; a VM can't have more."
    ]


def test_processors_below_one() -> None:
    assert problems(SettingsChange(processors=0)) == [
        "A virtual machine needs at least one virtual processor."
    ]


def test_processor_limit_per_generation() -> None:
    huge = dataclasses.replace(HOST, cpus=512)
    gen2 = dataclasses.replace(STATIC, generation=2)
    assert problems(SettingsChange(processors=65), host=huge) == [
        "A Generation 1 virtual machine can have at most 64 processors."
    ]
    assert problems(SettingsChange(processors=240), current=gen2, host=huge) == []
    assert problems(SettingsChange(processors=241), current=gen2, host=huge) == [
        "A Generation 2 virtual machine can have at most 240 processors."
    ]


@pytest.mark.parametrize("state", [*ACTIVE, VmState.SAVED])
def test_processors_are_refused_unless_off(state: VmState) -> None:
    assert problems(SettingsChange(processors=4), state) == [
        "The number of virtual processors can't be changed while the virtual machine is "
        f"{state.value.lower()}. Shut it down first."
    ]


def test_unchanged_processor_count_is_fine_while_running() -> None:
    assert problems(SettingsChange(processors=2), VmState.RUNNING) == []


def test_generation_of_foreign_vms() -> None:
    assert generation_of(dataclasses.replace(STATIC, generation=None)) == 1
    assert generation_of(dataclasses.replace(STATIC, generation=None, firmware="efi")) == 2
    assert generation_of(dataclasses.replace(STATIC, generation=2)) == 2


def test_hardware_is_locked_unless_off() -> None:
    assert [s for s in VmState if not hardware_locked(s)] == [VmState.OFF, VmState.OTHER]


# --- boot order -----------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(VmState))
def test_any_permutation_of_the_boot_devices_is_fine_in_every_state(state: VmState) -> None:
    order = (BootDevice.NETWORK, BootDevice.HARD_DRIVE, BootDevice.CD)
    assert problems(SettingsChange(boot_order=order), state) == []


@pytest.mark.parametrize(
    "order",
    [(), (BootDevice.CD, BootDevice.CD, BootDevice.NETWORK), (BootDevice.CD, BootDevice.NETWORK)],
)
def test_boot_order_must_list_each_device_once(order: tuple[BootDevice, ...]) -> None:
    assert problems(SettingsChange(boot_order=order)) == [
        "The boot order must list each of CD, Hard Drive, Network Adapter exactly once."
    ]


# --- name -----------------------------------------------------------------------------------


def test_rename_while_off() -> None:
    assert problems(SettingsChange(name="web-2")) == []


def test_rename_to_an_existing_name() -> None:
    assert problems(SettingsChange(name="db")) == [
        "A virtual machine named 'db' already exists on this server."
    ]


def test_own_name_among_other_names_is_ignored() -> None:
    assert (
        change_problems(STATIC, VmState.RUNNING, SettingsChange(name="web"), HOST, frozenset({"web"})) == []
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "Enter a name for the virtual machine."),
        ("x" * 101, "The name is 101 characters long; the limit is 100."),
        (" web", "The name can't start or end with a space."),
        ("a/b", "The name can't contain '/' or control characters: it also names the VM's folder."),
        ("..", "'.' and '..' can't be used as a name."),
    ],
)
def test_name_rules(name: str, reason: str) -> None:
    assert problems(SettingsChange(name=name)) == [reason]


@pytest.mark.parametrize("state", ACTIVE)
def test_rename_is_refused_while_active(state: VmState) -> None:
    assert problems(SettingsChange(name="web-2"), state) == [
        f"Can't rename 'web' while it is {state.value} "
        "(libvirt renames a virtual machine only while it is off, without a saved state)."
    ]


def test_rename_is_refused_while_saved_because_libvirt_refuses() -> None:
    assert problems(SettingsChange(name="web-2"), VmState.SAVED) == [
        "Can't rename 'web' while it is Saved: libvirt can't rename a virtual machine that has "
        "a saved state. Start it and shut it down, or delete the saved state, first."
    ]


def test_rename_problem_is_none_while_off() -> None:
    assert rename_problem("web", VmState.OFF) is None


def test_bad_name_and_state_give_both_reasons() -> None:
    assert len(problems(SettingsChange(name="db"), VmState.RUNNING)) == 2


# --- notes, automatic actions ---------------------------------------------------------------


@pytest.mark.parametrize("state", list(VmState))
def test_notes_may_change_in_every_state(state: VmState) -> None:
    assert problems(SettingsChange(notes="line 1\n\tline 2 – ünïcode"), state) == []
    assert problems(SettingsChange(notes=""), state) == []


def test_notes_with_control_characters_are_refused() -> None:
    assert problems(SettingsChange(notes="bell\x07")) == [
        "The notes can't contain control characters other than tabs and line breaks."
    ]


@pytest.mark.parametrize("delay", [0, 120, 86400])
def test_start_delay_in_range(delay: int) -> None:
    assert problems(SettingsChange(start_delay_s=delay), VmState.RUNNING) == []


@pytest.mark.parametrize("delay", [-1, 86401])
def test_start_delay_out_of_range(delay: int) -> None:
    assert problems(SettingsChange(start_delay_s=delay)) == [
        "The startup delay must be between 0 and 86400 seconds."
    ]


@pytest.mark.parametrize("state", list(VmState))
def test_automatic_actions_may_change_in_every_state(state: VmState) -> None:
    change = SettingsChange(start_action=StartAction.START, stop_action=StopAction.SHUT_DOWN)
    assert problems(change, state) == []


def test_problems_come_in_page_order() -> None:
    change = SettingsChange(memory=MemoryConfig(16), processors=9, name="", notes="\x00", start_delay_s=-5)
    assert [p.split()[0] for p in problems(change)] == ["Startup", "This", "Enter", "The", "The"]


# --- XML edits ------------------------------------------------------------------------------


def _xml(memory: MemoryConfig | None = None, kernel: KernelBoot | None = None) -> str:
    plan = domxml.DomainPlan(
        name="web",
        domain_type="qemu",
        generation=1,
        memory=memory or MemoryConfig(1024),
        processors=1,
        folder="/vms/web",
        created=datetime(2024, 1, 2, 3, 4, 5).astimezone(),
        kernel_boot=kernel,
    )
    return domxml.build_domain_xml(plan)


def test_edit_config_xml_applies_every_field() -> None:
    change = SettingsChange(
        memory=MemoryConfig(2048, True, 512, 4096),
        processors=2,
        boot_order=(BootDevice.NETWORK, BootDevice.CD, BootDevice.HARD_DRIVE),
        name="ignored",
        notes="hello",
        start_action=StartAction.START_IF_RUNNING,
        start_delay_s=30,
        stop_action=StopAction.TURN_OFF,
    )
    config = domxml.parse_domain_xml(edit_config_xml(_xml(), change))
    assert config.memory == MemoryConfig(2048, True, 512, 4096)
    assert config.processors == 2
    assert config.boot_order == change.boot_order
    assert config.name == "web"
    assert config.notes == "hello"
    assert (config.start_action, config.start_delay_s, config.stop_action) == (
        StartAction.START_IF_RUNNING,
        30,
        StopAction.TURN_OFF,
    )


def test_edit_config_xml_without_changes_returns_the_same_string() -> None:
    xml = _xml()
    assert edit_config_xml(xml, SettingsChange()) is xml


def test_changing_one_action_keeps_the_others() -> None:
    xml = edit_config_xml(
        _xml(),
        SettingsChange(start_action=StartAction.START, start_delay_s=9, stop_action=StopAction.SHUT_DOWN),
    )
    config = domxml.parse_domain_xml(edit_config_xml(xml, SettingsChange(start_delay_s=60)))
    assert (config.start_action, config.start_delay_s, config.stop_action) == (
        StartAction.START,
        60,
        StopAction.SHUT_DOWN,
    )


def test_metadata_element_uses_a_default_namespace() -> None:
    element = metadata_element_xml(_xml())
    assert element is not None
    assert element.startswith(f'<vm xmlns="{domxml.METADATA_NS}">')
    assert ET.fromstring(element).find(f"{{{domxml.METADATA_NS}}}generation") is not None


def test_metadata_element_of_a_foreign_vm_is_none() -> None:
    assert metadata_element_xml("<domain><name>x</name></domain>") is None


def test_live_metadata_carries_the_memory_range_and_actions() -> None:
    xml = _xml(MemoryConfig(1024, True, 512, 2048))
    change = SettingsChange(memory=MemoryConfig(1024, True, 256, 4096), stop_action=StopAction.TURN_OFF)
    element = live_metadata_xml(xml, change)
    assert element is not None
    memory = ET.fromstring(element).find(f"{{{domxml.METADATA_NS}}}memory")
    stop = ET.fromstring(element).find(f"{{{domxml.METADATA_NS}}}stop")
    assert memory is not None and stop is not None
    assert (memory.get("minimum"), memory.get("maximum"), stop.get("action")) == ("256", "4096", "TurnOff")


def test_live_metadata_is_none_without_metadata_changes() -> None:
    assert live_metadata_xml(_xml(), SettingsChange(notes="x", processors=2)) is None


# --- notes for the user, balloon ------------------------------------------------------------


def test_boot_order_note_only_when_not_off() -> None:
    change = SettingsChange(boot_order=(BootDevice.NETWORK, BootDevice.CD, BootDevice.HARD_DRIVE))
    assert apply_notes(STATIC, VmState.OFF, change) == []
    assert apply_notes(STATIC, VmState.RUNNING, change) == [NOTE_BOOT_ORDER]
    assert apply_notes(STATIC, VmState.SAVED, change) == [NOTE_BOOT_ORDER]


def test_boot_order_note_for_kernel_boot() -> None:
    kernel = dataclasses.replace(STATIC, kernel_boot=KernelBoot("/boot/vmlinuz"))
    change = SettingsChange(boot_order=(BootDevice.NETWORK, BootDevice.CD, BootDevice.HARD_DRIVE))
    assert apply_notes(kernel, VmState.OFF, change) == [NOTE_KERNEL_BOOT]


def test_raised_maximum_note_while_running() -> None:
    change = SettingsChange(memory=MemoryConfig(1024, True, 512, 4096))
    assert apply_notes(DYNAMIC, VmState.RUNNING, change) == [
        "The new Maximum RAM (4096 MB) takes effect at the next start: QEMU can't raise the "
        "memory ceiling of a running virtual machine."
    ]
    assert apply_notes(DYNAMIC, VmState.OFF, change) == []
    lower_min = SettingsChange(memory=MemoryConfig(1024, True, 256, 2048))
    assert apply_notes(DYNAMIC, VmState.RUNNING, lower_min) == []


@pytest.mark.parametrize(
    ("current_mib", "live_max_mib", "expected_mib"),
    [(100, 2048, 256), (600, 2048, None), (3000, 4096, 2048), (1500, 1024, 1024), (900, 1024, None)],
)
def test_balloon_target(current_mib: int, live_max_mib: int, expected_mib: int | None) -> None:
    memory = MemoryConfig(512, True, 256, 2048)
    target = balloon_target_kib(memory, live_max_mib * 1024, current_mib * 1024)
    assert target == (expected_mib * 1024 if expected_mib else None)


def test_no_balloon_target_for_static_memory() -> None:
    assert balloon_target_kib(MemoryConfig(512), 1024 * 1024, 10) is None


def test_the_rules_need_no_libvirt() -> None:
    code = "import sys, hvmanager.backend.vmsettings_rules; print('libvirt' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
