"""hvctl without a real hypervisor: argument parsing, formatting, and verbs run in-process
against libvirt's ``test:///default`` driver.

``test:///default`` is an in-memory hypervisor with one running VM named ``test``. Its state lives
as long as some connection to it is open in the process: the ``hv`` fixture keeps one open, so
that successive hvctl runs see each other's changes and the test can check them.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from hvmanager.backend.models import MemoryConfig, NewDisk, VmConfig, VmInfo, VmState, VmStats
from hvmanager.cli import output, state_commands, vm_commands
from hvmanager.cli.hvctl import main, parse_args

TEST_URI = "test:///default"


class Run:
    """The outcome of one ``hvctl`` run."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def _fast_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vm_commands, "SAMPLE_INTERVAL_S", 0.01)
    monkeypatch.setattr(state_commands, "POLL_INTERVAL_S", 0.01)


@pytest.fixture
def hv() -> Iterator[Any]:
    """A connection that keeps the test driver's state alive between hvctl runs."""
    conn = libvirt.open(TEST_URI)
    names = [d.name() for d in conn.listAllDomains(0)]
    if names != ["test"] or conn.lookupByName("test").state(0)[0] != libvirt.VIR_DOMAIN_RUNNING:
        conn.close()
        pytest.fail(f"{TEST_URI} is not in its initial state ({names}): a connection leaked")
    yield conn
    conn.close()


@pytest.fixture
def hvctl(capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs ``hvctl --connect test:///default ARGS`` in-process."""

    def run(*args: str, connect: bool = True) -> Run:
        capsys.readouterr()
        code = main([*(["--connect", TEST_URI] if connect else []), *args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def state_of(conn: Any, name: str = "test") -> int:
    return int(conn.lookupByName(name).state(0)[0])


# --- parsing ------------------------------------------------------------------------------------


def test_connect_and_json_are_accepted_before_and_after_the_verb() -> None:
    before = parse_args(["--connect", TEST_URI, "--json", "get-vm"])
    after = parse_args(["get-vm", "--connect", TEST_URI, "--json"])
    for args in (before, after):
        assert args.connect == TEST_URI
        assert args.json is True
        assert args.verb == "get-vm"
    plain = parse_args(["get-vm", "a", "b"])
    assert plain.connect is None
    assert plain.json is False
    assert plain.names == ["a", "b"]


def test_connect_after_the_verb_wins_over_the_one_before() -> None:
    args = parse_args(["--connect", "qemu:///system", "stop-vm", "x", "--connect", TEST_URI])
    assert args.connect == TEST_URI


def test_new_vm_defaults_and_options() -> None:
    args = parse_args(["new-vm", "vm1"])
    assert (args.name, args.generation, args.memory_startup, args.processors) == (
        "vm1",
        1,
        1024,
        1,
    )
    assert args.new_vhd_size_gb is None and args.vhd_path is None and args.vhd_format == "qcow2"
    assert not args.dynamic_memory and args.switch is None and args.iso is None

    args = parse_args(
        [
            "new-vm",
            "vm2",
            "--generation",
            "2",
            "--memory-startup",
            "512",
            "--dynamic-memory",
            "--memory-minimum",
            "256",
            "--memory-maximum",
            "2048",
            "--processors",
            "4",
            "--switch",
            "default",
            "--new-vhd-size-gb",
            "8",
            "--vhd-format",
            "vhd",
            "--kernel",
            "k",
            "--initrd",
            "i",
            "--cmdline",
            "console=ttyS0",
            "--notes",
            "hello",
        ]
    )
    assert args.generation == 2 and args.memory_startup == 512 and args.processors == 4
    assert (args.memory_minimum, args.memory_maximum) == (256, 2048)
    assert args.vhd_format == "vpc"  # "vhd" is qemu-img's "vpc"
    assert (args.kernel, args.initrd, args.cmdline, args.notes) == (
        "k",
        "i",
        "console=ttyS0",
        "hello",
    )


def test_spec_from_args_makes_paths_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = parse_args(["new-vm", "vm", "--path", "vms", "--vhd-path", "d.qcow2", "--iso", "x.iso"])
    spec = vm_commands.spec_from_args(args, "/default/location")
    assert spec.location == str(tmp_path / "vms")
    assert spec.disk == vm_commands.ExistingDisk(str(tmp_path / "d.qcow2"))
    assert spec.install == vm_commands.IsoInstall(str(tmp_path / "x.iso"))
    spec = vm_commands.spec_from_args(parse_args(["new-vm", "vm", "--network-boot"]), "/loc")
    assert spec.location == "/loc" and spec.install == vm_commands.NetworkInstall()
    assert spec.memory == MemoryConfig(1024) and spec.disk is None
    args = parse_args(["new-vm", "vm", "--dynamic-memory", "--memory-maximum", "4096"])
    assert vm_commands.spec_from_args(args, "/loc").memory == MemoryConfig(1024, True, None, 4096)


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no verb
        ["frobnicate-vm"],
        ["start-vm"],  # no name
        ["rename-vm", "only-one"],
        ["get-vm", "--bogus"],
        ["new-vm"],
        ["new-vm", "vm", "--generation", "3"],
        ["new-vm", "vm", "--memory-startup", "lots"],
        ["new-vm", "vm", "--new-vhd-size-gb", "4", "--vhd-path", "/x.qcow2"],
        ["new-vm", "vm", "--iso", "/x.iso", "--network-boot"],
        ["new-vm", "vm", "--iso", "/x.iso", "--kernel", "/k"],
        ["new-vm", "vm", "--initrd", "/i"],
        ["new-vm", "vm", "--cmdline", "quiet"],
        ["new-vm", "vm", "--vhd-format", "qcow2"],
        ["new-vm", "vm", "--new-vhd-size-gb", "4", "--vhd-format", "vhdx"],
        ["new-vm", "vm", "--memory-minimum", "512"],
        ["new-vm", "vm", "--new-vhd-size-gb", "4", "--vhd-format", "vmdk"],
        ["stop-vm", "vm", "--wait", "-1"],
        ["stop-vm", "vm", "--wait", "soon"],
    ],
)
def test_bad_arguments_exit_with_status_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "usage: hvctl" in err
    assert "Traceback" not in err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for verb in (
        "get-vm",
        "new-vm",
        "start-vm",
        "stop-vm",
        "save-vm",
        "suspend-vm",
        "resume-vm",
        "restart-vm",
        "rename-vm",
        "remove-vm",
        "remove-vmsavedstate",
    ):
        assert verb in text
    assert main(["stop-vm", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--turn-off" in text and "--wait SECONDS" in text and "ACPI" in text
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("hvctl 0.1.0")


# --- formatting ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "00:00:00"),
        (0, "00:00:00"),
        (-3, "00:00:00"),
        (59.99, "00:00:59"),
        (312, "00:05:12"),
        (3600, "01:00:00"),
        (86_399, "23:59:59"),
        (86_400, "1.00:00:00"),
        (93_784, "1.02:03:04"),
        (12 * 86_400 + 5, "12.00:00:05"),
    ],
)
def test_format_uptime_like_a_timespan(seconds: float | None, text: str) -> None:
    assert output.format_uptime(seconds) == text


def test_format_table_aligns_columns_and_underlines_headers() -> None:
    text = output.format_table(("Name", "State", "N"), [("a", "Running", 12), ("long-name", "Off", "")])
    assert text.splitlines() == [
        "Name      State   N",
        "----      -----   -",
        "a         Running 12",
        "long-name Off",
    ]
    assert output.format_table(("A",), []) == ""


def test_format_list_aligns_colons() -> None:
    assert output.format_list([("Name", "x"), ("Generation", 2)]) == "Name       : x\nGeneration : 2"


def test_vm_record_and_row_for_running_and_off_vms() -> None:
    running = VmInfo("u1", "web", VmState.RUNNING)
    stats = VmStats("u1", cpu_percent=12.6, assigned_mib=2048, started_at=time.time() - 3725.7)
    config = VmConfig(
        "web",
        "u1",
        "qemu",
        MemoryConfig(1024, True, 512, 4096),
        2,
        generation=2,
        notes="n",
        folder="/vms/web",
    )
    record = output.vm_record(running, stats, config)
    assert record["cpu_usage"] == 13 and record["memory_assigned_mib"] == 2048
    assert record["uptime_s"] == 3725 and record["status"] == "Operating normally"
    assert record["generation"] == 2 and record["processors"] == 2 and record["path"] == "/vms/web"
    assert record["dynamic_memory"] is True and record["memory_minimum_mib"] == 512
    assert output.vm_row(record) == ["web", "Running", 13, 2048, "01:02:05", "Operating normally"]

    off = VmInfo("u2", "db", VmState.OFF, reason="The guest crashed")
    record = output.vm_record(off, None, None, assigned_fallback_mib=999)
    assert (record["cpu_usage"], record["memory_assigned_mib"], record["uptime_s"]) == (0, 0, 0)
    assert record["status"] == "The guest crashed" and "generation" not in record


def test_error_text_has_message_and_hint() -> None:
    assert output.error_text("It broke.") == "hvctl: error: It broke."
    assert output.error_text("It broke.", "Fix it.") == "hvctl: error: It broke.\nhvctl: hint: Fix it."


# --- verbs against test:///default --------------------------------------------------------------


def test_get_vm_table(hv: Any, hvctl: Any) -> None:
    run = hvctl("get-vm")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == [
        "Name",
        "State",
        "CPUUsage(%)",
        "MemoryAssigned(M)",
        "Uptime",
        "Status",
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == [
        "test",
        "Running",
        "0",
        "2048",
        "00:00:00",
        "Operating",
        "normally",
    ]
    assert hvctl("get-vm", "test").out == run.out


def test_get_vm_json(hv: Any, hvctl: Any) -> None:
    run = hvctl("get-vm", "test", "--json")
    assert run.code == 0, run.err
    (vm,) = run.json()
    assert vm["name"] == "test" and vm["uuid"] == hv.lookupByName("test").UUIDString()
    assert vm["state"] == "Running" and vm["status"] == "Operating normally"
    assert vm["memory_assigned_mib"] == 2048 and vm["memory_startup_mib"] == 2048
    assert vm["processors"] == 2 and vm["dynamic_memory"] is False
    assert isinstance(vm["uptime_s"], int) and vm["cpu_usage"] is None  # no CPU figures here
    assert vm["generation"] is None and vm["path"] is None and vm["notes"] == ""
    assert set(vm) >= {
        "name",
        "uuid",
        "state",
        "cpu_usage",
        "memory_assigned_mib",
        "uptime_s",
        "status",
        "generation",
        "processors",
        "memory_startup_mib",
        "dynamic_memory",
        "notes",
        "path",
    }
    again = hvctl("--json", "get-vm").json()  # --json before the verb, every VM
    assert [v["uuid"] for v in again] == [vm["uuid"]]


def test_get_vm_wildcards(hv: Any, hvctl: Any) -> None:
    assert [v["name"] for v in hvctl("get-vm", "t*", "--json").json()] == ["test"]
    run = hvctl("get-vm", "nomatch*")
    assert run.code == 0 and run.out == ""
    assert "No virtual machine matches 'nomatch*'" in run.err


def test_unknown_vm_exits_1_with_a_clear_message(hv: Any, hvctl: Any) -> None:
    for verb in ("get-vm", "start-vm", "stop-vm", "suspend-vm", "remove-vmsavedstate"):
        run = hvctl(verb, "nope")
        assert run.code == 1, verb
        assert f"hvctl: error: No virtual machine named 'nope' on {TEST_URI}." in run.err
        assert "Traceback" not in run.err
    assert hvctl("rename-vm", "nope", "other").code == 1


def test_suspend_resume_stop_start(hv: Any, hvctl: Any) -> None:
    run = hvctl("suspend-vm", "test")
    assert (run.code, run.out) == (0, "Paused 'test'.\n")
    assert state_of(hv) == libvirt.VIR_DOMAIN_PAUSED
    assert hvctl("get-vm", "test", "--json").json()[0]["state"] == "Paused"

    run = hvctl("resume-vm", "test")
    assert (run.code, run.out) == (0, "Resumed 'test'.\n")
    assert state_of(hv) == libvirt.VIR_DOMAIN_RUNNING

    run = hvctl("stop-vm", "--turn-off", "test")
    assert (run.code, run.out) == (0, "Turned off 'test'.\n")
    assert state_of(hv) == libvirt.VIR_DOMAIN_SHUTOFF
    vm = hvctl("get-vm", "--json").json()[0]
    assert (vm["state"], vm["memory_assigned_mib"], vm["uptime_s"]) == ("Off", 0, 0)

    run = hvctl("start-vm", "test", "--json")
    assert run.code == 0
    assert run.json() == [{"name": "test", "uuid": vm["uuid"], "state": "Running"}]
    assert state_of(hv) == libvirt.VIR_DOMAIN_RUNNING


def test_already_in_the_wanted_state_is_a_warning(hv: Any, hvctl: Any) -> None:
    run = hvctl("start-vm", "test")
    assert run.code == 0 and "warning: 'test' is already running." in run.err
    hvctl("stop-vm", "test", "--turn-off")
    run = hvctl("stop-vm", "test", "--wait", "5")
    assert run.code == 0 and "'test' is already off." in run.err


def test_stop_vm_shuts_down_and_waits(hv: Any, hvctl: Any) -> None:
    run = hvctl("stop-vm", "test", "--wait", "10")
    assert run.code == 0, run.err
    assert run.out == "Asked 'test' to shut down.\n'test' is off.\n"
    assert state_of(hv) == libvirt.VIR_DOMAIN_SHUTOFF


def test_stop_vm_wait_times_out(hv: Any, hvctl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_commands.operations, "shut_down", lambda dom: None)  # a deaf guest
    run = hvctl("stop-vm", "test", "--wait", "0.2")
    assert run.code == 1
    assert "hvctl: error: 'test' did not shut down within 0.2 s" in run.err
    assert "--turn-off" in run.err
    assert state_of(hv) == libvirt.VIR_DOMAIN_RUNNING


def test_several_names_go_on_after_a_failure(hv: Any, hvctl: Any) -> None:
    run = hvctl("suspend-vm", "nope", "test", "also-nope")
    assert run.code == 1
    assert run.out == "Paused 'test'.\n"
    assert run.err.count("hvctl: error: No virtual machine named") == 2
    assert state_of(hv) == libvirt.VIR_DOMAIN_PAUSED


def test_refused_action_explains_why_and_what_to_do(hv: Any, hvctl: Any) -> None:
    run = hvctl("rename-vm", "test", "renamed")
    assert run.code == 1
    assert "hvctl: error: Can't rename 'test' while it is Running" in run.err
    assert "hvctl: hint: Turn it off first" in run.err
    hvctl("stop-vm", "test", "--turn-off")
    run = hvctl("suspend-vm", "test")
    assert run.code == 1 and "Start it first" in run.err


def test_save_start_and_remove_saved_state(hv: Any, hvctl: Any) -> None:
    assert hvctl("save-vm", "test").code == 0
    assert hvctl("get-vm", "--json").json()[0]["state"] == "Saved"
    assert hv.lookupByName("test").hasManagedSaveImage(0)
    assert hvctl("remove-vmsavedstate", "test").code == 0
    assert hvctl("get-vm", "--json").json()[0]["state"] == "Off"
    assert hvctl("save-vm", "test").code == 1  # an Off VM can't be saved
    assert hvctl("start-vm", "test").code == 0
    assert hvctl("restart-vm", "test").out == "Reset 'test'.\n"


def test_rename(hv: Any, hvctl: Any) -> None:
    hvctl("stop-vm", "test", "--turn-off")
    run = hvctl("rename-vm", "test", "renamed", "--json")
    assert run.code == 0, run.err
    assert run.json()["name"] == "renamed" and run.json()["old_name"] == "test"
    assert hv.lookupByName("renamed").name() == "renamed"
    long_name = "x" * 101
    run = hvctl("rename-vm", "renamed", long_name)
    assert run.code == 1 and "the limit is 100" in run.err


def test_remove_vm_needs_force_without_a_terminal(
    hv: Any, hvctl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    hvctl("stop-vm", "test", "--turn-off")
    run = hvctl("remove-vm", "test")
    assert run.code == 1
    assert "standard input is not a terminal" in run.err and "--force" in run.err
    assert hv.lookupByName("test")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_remove_vm_asks_on_a_terminal(hv: Any, hvctl: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hvctl("stop-vm", "test", "--turn-off")
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    run = hvctl("remove-vm", "test")
    assert run.code == 0 and "Remove virtual machine 'test'?" in run.err
    assert run.out == "Kept 'test'.\n"
    assert hv.lookupByName("test")

    monkeypatch.setattr("sys.stdin", _Terminal("yes\n"))
    run = hvctl("remove-vm", "test")
    assert run.code == 0
    assert "Removed virtual machine 'test'." in run.out
    assert "Kept:    /guest/diskimage1 (--delete-disks was not given)" in run.out
    assert "test" not in [d.name() for d in hv.listAllDomains(0)]


def test_remove_vm_force_json_and_running_vm(hv: Any, hvctl: Any) -> None:
    run = hvctl("remove-vm", "test", "--force")
    assert run.code == 1 and "Can't delete 'test' while it is Running" in run.err
    assert "stop-vm --turn-off" in run.err
    hvctl("stop-vm", "test", "--turn-off")
    run = hvctl("remove-vm", "test", "--force", "--json")
    assert run.code == 0
    assert run.json() == [
        {
            "name": "test",
            "uuid": "6695eb01-f6a4-8304-79aa-97f2502e193f",
            "deleted": [],
            "kept": {"/guest/diskimage1": "--delete-disks was not given"},
        }
    ]


def test_remove_vm_delete_disks_is_local_only(hv: Any, hvctl: Any) -> None:
    run = hvctl("remove-vm", "test", "--force", "--delete-disks")
    assert run.code == 1 and "only with this machine's hypervisor" in run.err
    assert hv.lookupByName("test")


def test_new_vm_on_the_test_driver(hv: Any, hvctl: Any, tmp_path: Path) -> None:
    run = hvctl(
        "new-vm",
        "made",
        "--path",
        str(tmp_path),
        "--memory-startup",
        "256",
        "--processors",
        "2",
        "--switch",
        "default",
        "--notes",
        "from hvctl",
    )
    assert run.code == 0, run.err
    uuid = hv.lookupByName("made").UUIDString()
    assert f"Id               : {uuid}" in run.out
    assert "Name             : made" in run.out
    assert "software emulation" in run.err  # the suite forces TCG
    vm = hvctl("get-vm", "made", "--json").json()[0]
    assert (vm["state"], vm["memory_startup_mib"], vm["processors"]) == ("Off", 256, 2)
    assert vm["notes"] == "from hvctl" and vm["path"] == str(tmp_path / "made")
    assert vm["generation"] == 1 and vm["network_adapters"][0]["switch"] == "default"

    run = hvctl(
        "new-vm",
        "made2",
        "--path",
        str(tmp_path),
        "--json",
        "--generation",
        "2",
        "--dynamic-memory",
        "--memory-minimum",
        "512",
        "--memory-maximum",
        "2048",
    )
    assert run.code == 0, run.err
    vm = run.json()
    assert vm["name"] == "made2" and vm["generation"] == 2 and vm["dynamic_memory"] is True
    assert (vm["memory_minimum_mib"], vm["memory_maximum_mib"]) == (512, 2048)
    assert vm["acceleration"]["domain_type"] == "qemu"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--memory-startup", "33"], "Startup memory must be a multiple of 2 MB."),
        (["--memory-startup", "16"], "Startup memory must be at least 32 MB."),
        (["--processors", "0"], "at least one virtual processor"),
        (["--switch", "no-such-switch"], "There is no virtual switch named 'no-such-switch'"),
        (["--network-boot"], "needs a network connection"),
        (["--new-vhd-size-gb", "0"], "A virtual hard disk must be at least 3 MB."),
    ],
)
def test_new_vm_validation_exits_1_and_creates_nothing(
    hv: Any, hvctl: Any, tmp_path: Path, extra: list[str], message: str
) -> None:
    before = {d.name() for d in hv.listAllDomains(0)}
    run = hvctl("new-vm", "bad", "--path", str(tmp_path), *extra)
    assert run.code == 1
    assert run.err.startswith("hvctl: error: ") and message in run.err
    assert "Traceback" not in run.err
    assert {d.name() for d in hv.listAllDomains(0)} == before
    assert os.listdir(tmp_path) == []


def test_new_vm_existing_name(hv: Any, hvctl: Any, tmp_path: Path) -> None:
    run = hvctl("new-vm", "test", "--path", str(tmp_path))
    assert run.code == 1
    assert "A virtual machine named 'test' already exists" in run.err


def test_cannot_connect_is_an_error_with_a_hint(hvctl: Any) -> None:
    run = hvctl("--connect", "test:///nonexistent/file.xml", "get-vm", connect=False)
    assert run.code == 1
    assert run.err.startswith("hvctl: error: Can't connect to test:///nonexistent/file.xml")
    assert "hvctl: hint: " in run.err


def test_new_disk_follows_the_disk_folder_of_the_settings() -> None:
    args = parse_args(["new-vm", "vm", "--new-vhd-size-gb", "4"])
    assert vm_commands.spec_from_args(args, "/loc", "/fast").disk == NewDisk(4, "qcow2", folder="/fast")
    assert vm_commands.spec_from_args(args, "/loc").disk == NewDisk(4, "qcow2")
