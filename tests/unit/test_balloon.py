"""Dynamic Memory's target: demand plus buffer, within the VM's range, without jitter."""

from __future__ import annotations

import pytest

from hvmanager.backend.balloon import balloon_target_mib
from hvmanager.backend.models import MemoryConfig

DYNAMIC = MemoryConfig(512, True, 256, 2048)


@pytest.mark.parametrize(
    ("demand", "current", "target"),
    [
        (100, 512, 256),  # little used: down to the minimum
        (600, 512, 720),  # 600 MB + 20 % buffer
        (1900, 1024, 2048),  # capped at the maximum
        (420, 512, None),  # 504 MB wanted: too close to 512 MB to move
        (1000, 1200, None),  # 1200 MB exactly
    ],
)
def test_targets(demand: int, current: int, target: int | None) -> None:
    assert balloon_target_mib(DYNAMIC, demand, current) == target


def test_static_memory_is_left_alone() -> None:
    assert balloon_target_mib(MemoryConfig(512), 10, 512) is None


def test_buffer_and_step() -> None:
    assert balloon_target_mib(DYNAMIC, 501, 256, buffer_percent=100) == 1002
    assert balloon_target_mib(DYNAMIC, 333, 800, buffer_percent=5) == 350
