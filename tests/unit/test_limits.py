"""Hyper-V's limits (hyperv-manager.md §5) as the backend checks them."""

from __future__ import annotations

import pytest

from hvmanager.backend import limits
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.models import MemoryConfig


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "Enter a name"),
        ("   ", "Enter a name"),
        ("x" * 101, "101 characters long; the limit is 100"),
        (" padded", "start or end with a space"),
        ("a/b", "can't contain '/'"),
        ("tab\there", "control characters"),
        ("..", "'.' and '..'"),
        ("taken", "already exists"),
    ],
)
def test_bad_vm_names(name: str, message: str) -> None:
    problem = limits.vm_name_problem(name, {"taken"})
    assert problem is not None and message in problem


@pytest.mark.parametrize("name", ["New Virtual Machine", "x" * 100, "Ünïcode VM (2)", "web-01"])
def test_good_vm_names(name: str) -> None:
    assert limits.vm_name_problem(name, {"other"}) is None


def test_checkpoint_names() -> None:
    assert limits.checkpoint_name_problem("") is not None
    assert limits.checkpoint_name_problem("x" * 101) is not None
    assert limits.checkpoint_name_problem("Before update") is None


@pytest.mark.parametrize(
    ("memory", "message"),
    [
        (MemoryConfig(30), "at least 32 MB"),
        (MemoryConfig(1025), "multiple of 2 MB"),
        (MemoryConfig(8192), "at most 4096 MB"),
        (MemoryConfig(1024, True, 30, 2048), "Minimum memory must be at least 32 MB"),
        (MemoryConfig(1024, True, 2048, 4096), "Minimum memory can't be larger than startup"),
        (MemoryConfig(1024, True, 512, 512), "Maximum memory can't be smaller than startup"),
        (MemoryConfig(1024, True, 512, 8192), "Maximum memory can be at most 4096 MB"),
    ],
)
def test_memory_limits(memory: MemoryConfig, message: str) -> None:
    problem = limits.memory_problem(memory, 1, host_memory_mib=4096)
    assert problem is not None and message in problem


def test_memory_ceiling_follows_generation_and_host() -> None:
    assert limits.memory_ceiling_mib(1, None) == 1024 * 1024
    assert limits.memory_ceiling_mib(2, None) == 12 * 1024 * 1024
    assert limits.memory_ceiling_mib(2, 24_001) == 24_000
    assert limits.memory_problem(MemoryConfig(1024, True, 512, 2048), 1, 4096) is None


@pytest.mark.parametrize(
    ("count", "generation", "host", "ok"),
    [
        (0, 1, 8, False),
        (1, 1, 8, True),
        (8, 1, 8, True),
        (9, 1, 8, False),
        (65, 1, 512, False),
        (240, 2, 512, True),
        (241, 2, 512, False),
    ],
)
def test_processor_limits(count: int, generation: int, host: int, ok: bool) -> None:
    assert (limits.processors_problem(count, generation, host) is None) is ok


@pytest.mark.parametrize(
    ("size", "fmt", "gen", "message"),
    [
        (2 * limits.MIB, "qcow2", None, "at least 3 MB"),
        (2041 * limits.GIB, "vpc", None, "A VHD disk can be at most 2040 GB"),
        (65 * limits.TIB, "vhdx", None, "A VHDX disk can be at most 64 TB"),
        (3 * limits.TIB, "qcow2", 1, "as a Generation 1 boot disk can be at most 2 TB"),
        (3 * limits.MIB + 1, "raw", None, "whole number of megabytes"),
    ],
)
def test_disk_size_limits(size: int, fmt: str, gen: int | None, message: str) -> None:
    problem = limits.disk_size_problem(size, fmt, gen)
    assert problem is not None and message in problem


def test_disk_sizes_at_the_limits_are_fine() -> None:
    assert limits.disk_size_problem(2040 * limits.GIB, "vpc") is None
    assert limits.disk_size_problem(64 * limits.TIB, "vhdx") is None
    assert limits.disk_size_problem(3 * limits.MIB, "qcow2") is None
    assert limits.disk_size_problem(3 * limits.TIB, "qcow2", 2) is None


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (127 * limits.GIB, "127 GB"),
        (2040 * limits.GIB, "2040 GB"),
        (64 * limits.TIB, "64 TB"),
        (1536 * limits.KIB, "1536 KB"),
        (1_234_567, "1.2 MB"),
        (512, "512 B"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert limits.human_size(size) == text


def test_formats_and_extensions() -> None:
    assert limits.format_for_qemu("vpc") == "VHD"
    assert limits.extension_for("vpc") == ".vhd"
    assert limits.extension_for("qcow2") == ".qcow2"


def test_require_raises_validation_error() -> None:
    limits.require(None)
    with pytest.raises(ValidationError, match="bad"):
        limits.require("bad")
