"""Checkpoint benchmarks: the guest-visible pause of a take, apply with memory, merge throughput.

Each sub-benchmark runs real test-guest VMs (256 MiB, TCG, direct kernel boot, with a qcow2
disk) on ``qemu:///system``, named ``hvbench-ckpt-...``, in a fresh folder under
``/var/lib/hvmanager-bench``; everything is removed at the end, also on failure or SIGTERM.
Every measurement is repeated and shown as median [min–max], side by side with the reference
tool, and every operation is checked with an independent observer (virsh, qemu-img, qemu-io,
the guest's serial output) so the figures are for real work.

``pause``
    ``checkpoints.take`` of a running VM three ways: as it is by default (the memory image staged
    in ``/dev/shm`` and moved into the VM's ``Snapshots`` folder once the VM runs again), with
    ``HVMANAGER_MEMORY_STAGING=0`` (written straight into that folder), and with the VM's
    checkpoint file location on tmpfs. The guest-visible pause is the time between libvirt's
    SUSPENDED and RESUMED lifecycle events (a bare connection, libvirt's default event loop on
    a thread); the wall time of ``take`` too. Beside it, on a second VM, libvirt's own external
    snapshot with memory (``virSnapshotCreateXML`` with ``LIVE``, without ``REUSE_EXT``: what
    ``virsh snapshot-create-as --live --no-metadata --memspec ... --diskspec ...`` does) and the
    non-live one.
``apply``
    ``checkpoints.apply`` of a checkpoint with memory, against ``virsh restore`` of a
    ``virsh save`` image of a second, identical VM. The guest's tick counter on its serial
    console proves each one resumed from the saved memory.
``merge``
    1 GiB of changed data (``qemu-io -c "write -P 0x5a 0 1G"`` into the overlay over an empty
    2 GiB qcow2 disk): ``checkpoints.delete`` of the checkpoint (offline: ``qemu-img commit``)
    against ``qemu-img commit`` of an identical chain built by hand, and with ``-t none``
    (O_DIRECT, as hvmanager's merge did until it was measured here); then the live merge (VM
    running: libvirt active block commit) against ``virsh blockcommit --active --pivot`` on a
    second running VM. The results are read back with ``qemu-io`` and compared with
    ``qemu-img compare``.

Run as root from the repository root::

    .venv/bin/python -m bench.checkpoints            # all three
    .venv/bin/python -m bench.checkpoints pause apply --repeat 7 --json /tmp/ckpt.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import libvirt

from bench import _guests
from bench._common import (
    BENCH_PREFIX,
    SYSTEM_URI,
    CpuMeter,
    ensure_daemons,
    machine_info,
    save_figures,
    spread,
    table,
    virsh,
)
from hvmanager.backend import checkpoint_state, checkpoints, creation
from hvmanager.backend.checkpoint_xml import snapshot_folder
from hvmanager.backend.connection import Server, start_event_thread
from hvmanager.backend.models import DiskChoice, ExistingDisk, KernelBoot, MemoryConfig, NewDisk, VmSpec
from hvmanager.backend.paths import vm_folders

BENCHMARKS = ("pause", "apply", "merge")
PREFIX = f"{BENCH_PREFIX}ckpt-"
MEMORY_MIB = 256
PAUSE_TARGET_S = 0.050
APPLY_TARGET_RATIO = 1.5
MERGE_TARGET_RATIO = 0.9
MERGE_GIB = 1
MERGE_DISK_GIB = 2
PATTERN = "0x5a"
TMPFS = Path("/dev/shm")
STAGING_VARIABLE = "HVMANAGER_MEMORY_STAGING"
SUSPENDED = libvirt.VIR_DOMAIN_EVENT_SUSPENDED
RESUMED = libvirt.VIR_DOMAIN_EVENT_RESUMED
EVENT_TIMEOUT_S = 10.0
TICK = re.compile(r"HVTEST: tick (\d+) ")


class BenchError(RuntimeError):
    """An operation did not do what it claims: its figure would be meaningless."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


# --- VMs with a disk ------------------------------------------------------------------------------


@dataclass
class Lab:
    """The VMs and files one run makes, so that ``close`` removes every one of them."""

    location: Path = field(default_factory=_guests.make_location)
    names: list[str] = field(default_factory=list)
    scratch: list[Path] = field(default_factory=list)

    def create(self, suffix: str, disk: DiskChoice) -> _guests.BenchVm:
        """Define a test-guest VM ``hvbench-ckpt-<suffix>`` (TCG, 256 MiB) with ``disk``."""
        name = PREFIX + suffix
        guest = _guests.guest_image()
        server = Server(SYSTEM_URI)
        server.open()
        try:
            decision = creation.decide_acceleration(server, "tcg")
            spec = VmSpec(
                name=name,
                location=str(self.location),
                memory=MemoryConfig(MEMORY_MIB),
                disk=disk,
                install=KernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline),
            )
            self.names.append(name)
            uuid = creation.create_vm(server, spec, decision)
        finally:
            server.close()
        return _guests.BenchVm(name, uuid, vm_folders(self.location, name).serial_log)

    def remove(self, vm: _guests.BenchVm) -> None:
        """Destroy and undefine one VM and delete its folder."""
        _guests.remove([vm.name])
        shutil.rmtree(vm_folders(self.location, vm.name).root, ignore_errors=True)
        self.names.remove(vm.name)

    def scratch_folder(self, parent: Path) -> Path:
        """A fresh folder (removed by ``close``) that the QEMU user can reach."""
        folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=parent))
        folder.chmod(0o755)
        self.scratch.append(folder)
        return folder

    def close(self) -> None:
        """Remove every VM and file this run made."""
        _guests.remove(self.names, self.location)
        for folder in self.scratch:
            shutil.rmtree(folder, ignore_errors=True)


def _boot(vms: Sequence[_guests.BenchVm]) -> None:
    _guests.start(vms)
    _guests.wait_booted(vms)
    for vm in vms:  # idle from here on: only the 1 s tick
        _wait_for(_marker_seen(vm, "HVTEST: ready"), 60, f"{vm.name} ready")


def _marker_seen(vm: _guests.BenchVm, marker: str) -> Callable[[], bool]:
    return lambda: marker in _serial(vm)


def _wait_for(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.05)


# --- independent observers ------------------------------------------------------------------------


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _domstate(name: str) -> str:
    return virsh("domstate", name).stdout.strip()


def _disk(name: str, inactive: bool = False) -> tuple[str, str]:
    """(target, file) of the VM's hard disk, as ``virsh domblklist --details`` shows it."""
    args = ["domblklist", "--details", *(["--inactive"] if inactive else []), name]
    for line in virsh(*args).stdout.splitlines():
        words = line.split(maxsplit=3)
        if len(words) == 4 and words[:2] == ["file", "disk"]:
            return words[2], words[3]
    raise BenchError(f"{name} has no file disk")


def _disk_source(name: str, inactive: bool = False) -> str:
    return _disk(name, inactive)[1]


def _disk_target(name: str) -> str:
    return _disk(name)[0]


def _memory_file(dom: Any, checkpoint_id: str) -> Path:
    """Where ``take`` saved a checkpoint's memory."""
    folder = snapshot_folder(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    return folder / checkpoint_id / checkpoint_state.MEMORY_FILE


def _backing_of(image: str) -> str | None:
    info = json.loads(_run("qemu-img", "info", "-U", "--output=json", "-f", "qcow2", image))
    backing: str | None = info.get("full-backing-filename") or info.get("backing-filename")
    return backing


def _serial(vm: _guests.BenchVm, offset: int = 0) -> str:
    try:
        with vm.serial_log.open("rb") as handle:
            handle.seek(offset)
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _serial_size(vm: _guests.BenchVm) -> int:
    return vm.serial_log.stat().st_size if vm.serial_log.exists() else 0


def _ticks(text: str) -> list[int]:
    return [int(n) for n in TICK.findall(text)]


def _wait_tick(vm: _guests.BenchVm, offset: int, timeout: float = 15) -> int:
    """The first tick number the guest printed after ``offset`` of its serial log."""
    _wait_for(lambda: bool(_ticks(_serial(vm, offset))), timeout, f"a tick of {vm.name}")
    return _ticks(_serial(vm, offset))[0]


def _check_resumed(vm: _guests.BenchVm, offset: int, saved_tick: int) -> int:
    """The guest resumed from memory saved around tick ``saved_tick``: its next tick follows it.

    One tick of slack each way: the memory is captured a moment before the call returns.
    """
    first = _wait_tick(vm, offset)
    _check(_domstate(vm.name) == "running", f"{vm.name} is not running")
    _check("HVTEST: booted" not in _serial(vm, offset), f"{vm.name} booted afresh")
    _check(saved_tick <= first <= saved_tick + 2, f"{vm.name}: tick {first}, memory saved at {saved_tick}")
    return first


# --- lifecycle events -----------------------------------------------------------------------------


class PauseWatch:
    """A bare libvirt connection noting when each VM's SUSPENDED and RESUMED events arrive.

    Its callback runs on libvirt's default event loop (``start_event_thread``), as the app's.
    """

    def __init__(self) -> None:
        start_event_thread()
        self._events: list[tuple[str, int, float]] = []
        self._lock = threading.Lock()
        self._conn = libvirt.open(SYSTEM_URI)
        self._id = self._conn.domainEventRegisterAny(
            None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_event, None
        )

    def _on_event(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        if event in (SUSPENDED, RESUMED):
            with self._lock:
                self._events.append((dom.UUIDString(), event, time.monotonic()))

    def pauses(self, uuid: str, since: float) -> list[float]:
        """Each suspended→resumed interval of the VM since ``since`` (waits for the last RESUMED)."""
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while True:
            with self._lock:
                seen = [(kind, at) for who, kind, at in self._events if who == uuid and at >= since]
            if seen and seen[-1][0] == RESUMED:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"no SUSPENDED then RESUMED event within {EVENT_TIMEOUT_S:.0f} s: {seen}")
            time.sleep(0.01)
        intervals, paused_at = [], None
        for kind, at in seen:
            if kind == SUSPENDED and paused_at is None:
                paused_at = at
            elif kind == RESUMED and paused_at is not None:
                intervals.append(at - paused_at)
                paused_at = None
        return intervals

    def close(self) -> None:
        """Unsubscribe and disconnect."""
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.domainEventDeregisterAny(self._id)
        self._conn.close()


# --- pause ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PauseSample:
    """One checkpoint or snapshot of a running VM."""

    pause_s: float  # sum of the suspended→resumed intervals
    pauses: int
    wall_s: float  # the call itself
    memory_bytes: int
    qemu_downtime_s: float | None  # what QEMU itself reports for the memory capture's final stop


def _qemu_downtime(dom: Any) -> float | None:
    """The downtime of the domain job that just completed (the memory capture), as QEMU saw it."""
    try:
        stats = dom.jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
    except libvirt.libvirtError:
        return None
    downtime = stats.get("downtime")
    return None if downtime is None else float(downtime) / 1000


@contextlib.contextmanager
def _environment(name: str, value: str | None) -> Iterator[None]:
    """``os.environ[name]`` set to ``value`` (None: unset) for a while."""
    before = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _ours_take(
    conn: Any, vm: _guests.BenchVm, watch: PauseWatch, memory_folder: str, staging: bool = True
) -> PauseSample:
    """``checkpoints.take`` with the checkpoint files in ``memory_folder`` ("" = the VM's Snapshots).

    ``staging=False`` sets ``HVMANAGER_MEMORY_STAGING=0``: the memory is written straight into
    that folder instead of going through ``/dev/shm`` first.
    """
    dom = conn.lookupByUUIDString(vm.uuid)
    policy = checkpoints.policy_of(dom)
    if policy.location != memory_folder:
        checkpoints.set_policy(conn, dom, replace(policy, location=memory_folder))
    base = _disk_source(vm.name)
    with _environment(STAGING_VARIABLE, None if staging else "0"):
        since = time.monotonic()
        taken = checkpoints.take(conn, dom)
        wall = time.monotonic() - since
    downtime = _qemu_downtime(dom)
    pauses = watch.pauses(vm.uuid, since)
    checkpoint = taken.checkpoint
    memory = _memory_file(dom, checkpoint.id)
    overlay = _disk_source(vm.name)
    _check(checkpoint.memory and memory.is_file(), f"no memory image at {memory}")
    staged = list(TMPFS.glob(f"hvmanager-{vm.uuid}-*"))
    _check(not staged, f"a staged memory image was left behind: {staged}")
    _check(_domstate(vm.name) == "running", f"{vm.name} is not running after take")
    _check(overlay != base and _backing_of(overlay) == base, f"{vm.name} runs on no overlay of {base}")
    sample = PauseSample(sum(pauses), len(pauses), wall, memory.stat().st_size, downtime)
    checkpoints.delete(conn, dom, checkpoint.id)  # back to one image, for the next sample
    _check(_disk_source(vm.name) == base and not Path(overlay).exists(), "the checkpoint was not merged")
    return sample


def _snapshot_xml(target: str, overlay: Path, memory: Path) -> str:
    root = ET.Element("domainsnapshot")
    ET.SubElement(root, "memory", snapshot="external", file=str(memory))
    disks = ET.SubElement(root, "disks")
    disk = ET.SubElement(disks, "disk", name=target, snapshot="external", type="file")
    ET.SubElement(disk, "driver", type="qcow2")
    ET.SubElement(disk, "source", file=str(overlay))
    return ET.tostring(root, encoding="unicode")


def _libvirt_snapshot(
    conn: Any, vm: _guests.BenchVm, watch: PauseWatch, memory_folder: Path, live: bool
) -> PauseSample:
    """libvirt's external snapshot with memory (it creates the overlay itself: no REUSE_EXT)."""
    dom = conn.lookupByUUIDString(vm.uuid)
    base = _disk_source(vm.name)
    stamp = f"{time.monotonic_ns():x}"
    overlay = Path(base).with_name(f"ref-{stamp}.qcow2")
    memory = memory_folder / f"ref-{stamp}.save"
    flags = libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA
    if live:
        flags |= libvirt.VIR_DOMAIN_SNAPSHOT_CREATE_LIVE
    since = time.monotonic()
    dom.snapshotCreateXML(_snapshot_xml(_disk_target(vm.name), overlay, memory), flags)
    wall = time.monotonic() - since
    downtime = _qemu_downtime(dom)
    pauses = watch.pauses(vm.uuid, since)
    _check(memory.is_file() and _disk_source(vm.name) == str(overlay), "libvirt's snapshot did not switch")
    _check(_domstate(vm.name) == "running", f"{vm.name} is not running after the snapshot")
    sample = PauseSample(sum(pauses), len(pauses), wall, memory.stat().st_size, downtime)
    virsh("blockcommit", vm.name, _disk_target(vm.name), "--active", "--pivot", "--wait")
    _check(_disk_source(vm.name) == base, "blockcommit did not pivot back")
    overlay.unlink()
    memory.unlink()
    return sample


def bench_pause(lab: Lab, repeat: int) -> dict[str, Any]:
    """Interleaved: ours (folder, tmpfs), libvirt live (folder, tmpfs), libvirt non-live."""
    ours = lab.create("take", NewDisk(1))
    ref = lab.create("snapshot", NewDisk(1))
    _boot([ours, ref])
    shm = lab.scratch_folder(TMPFS)
    ref_memory = vm_folders(lab.location, ref.name).snapshots
    watch = PauseWatch()
    conn = libvirt.open(SYSTEM_URI)
    kinds: dict[str, Callable[[], PauseSample]] = {
        "ours_default": lambda: _ours_take(conn, ours, watch, ""),
        "ours_folder_direct": lambda: _ours_take(conn, ours, watch, "", staging=False),
        "ours_tmpfs_location": lambda: _ours_take(conn, ours, watch, str(shm), staging=False),
        "libvirt_live_folder": lambda: _libvirt_snapshot(conn, ref, watch, ref_memory, live=True),
        "libvirt_live_tmpfs": lambda: _libvirt_snapshot(conn, ref, watch, shm, live=True),
        "libvirt_nonlive_folder": lambda: _libvirt_snapshot(conn, ref, watch, ref_memory, live=False),
    }
    samples: dict[str, list[PauseSample]] = {key: [] for key in kinds}
    try:
        for _ in range(repeat):
            for key, measure in kinds.items():
                os.sync()  # no earlier sample's dirty pages are written back during this one
                time.sleep(0.5)
                samples[key].append(measure())
    finally:
        watch.close()
        conn.close()
    lab.remove(ours)
    lab.remove(ref)
    return {key: _pause_figures(values) for key, values in samples.items()}


def _pause_figures(values: list[PauseSample]) -> dict[str, Any]:
    downtimes = [v.qemu_downtime_s for v in values if v.qemu_downtime_s is not None]
    return {
        "qemu_downtime_s": spread(downtimes) if downtimes else None,
        "pause_s": spread([v.pause_s for v in values]),
        "wall_s": spread([v.wall_s for v in values]),
        "pauses_per_call": sorted({v.pauses for v in values}),
        "memory_mib": spread([v.memory_bytes / 2**20 for v in values]),
        "samples": [vars(v) for v in values],
    }


# --- apply ----------------------------------------------------------------------------------------


def _last_tick(vm: _guests.BenchVm) -> int:
    ticks = _ticks(_serial(vm))
    _check(bool(ticks), f"{vm.name} printed no tick yet")
    return ticks[-1]


def _ours_apply(conn: Any, vm: _guests.BenchVm, checkpoint_id: str, tick_at_take: int) -> float:
    dom = conn.lookupByUUIDString(vm.uuid)
    before = _disk_source(vm.name)
    offset = _serial_size(vm)
    since = time.monotonic()
    checkpoints.apply(conn, dom, checkpoint_id)
    wall = time.monotonic() - since
    overlay = _disk_source(vm.name)
    _check(overlay != before and not Path(before).exists(), "apply did not replace the current state")
    _check_resumed(vm, offset, tick_at_take)
    return wall


def _virsh_restore(vm: _guests.BenchVm, image: Path) -> tuple[float, int]:
    """``virsh save`` (untimed), then ``virsh restore`` (timed); returns (seconds, image bytes)."""
    _wait_tick(vm, _serial_size(vm))  # let it run a little, as the checkpointed VM does
    virsh("save", vm.name, str(image))
    _check(_domstate(vm.name) == "shut off", f"{vm.name} is still running after virsh save")
    saved_at = _last_tick(vm)
    size = image.stat().st_size
    offset = _serial_size(vm)
    since = time.monotonic()
    virsh("restore", str(image))
    wall = time.monotonic() - since
    _check_resumed(vm, offset, saved_at)
    image.unlink()
    return wall, size


def bench_apply(lab: Lab, repeat: int) -> dict[str, Any]:
    """Interleaved: ``checkpoints.apply`` of one checkpoint with memory, and virsh save/restore."""
    ours = lab.create("apply", NewDisk(1))
    ref = lab.create("restore", NewDisk(1))
    _boot([ours, ref])
    conn = libvirt.open(SYSTEM_URI)
    applies: list[float] = []
    restores: list[float] = []
    sizes: list[int] = []
    virsh_noop: list[float] = []
    try:
        dom = conn.lookupByUUIDString(ours.uuid)
        taken = checkpoints.take(conn, dom).checkpoint
        tick_at_take = _last_tick(ours)
        memory_bytes = _memory_file(dom, taken.id).stat().st_size
        image = vm_folders(lab.location, ref.name).machines / "saved.img"
        for _ in range(repeat):
            # far enough from the checkpoint that resuming from its memory shows in the tick
            _wait_for(lambda: _last_tick(ours) >= tick_at_take + 4, 30, f"{ours.name} to run on")
            applies.append(_ours_apply(conn, ours, taken.id, tick_at_take))
            wall, size = _virsh_restore(ref, image)
            restores.append(wall)
            sizes.append(size)
            since = time.monotonic()
            virsh("uri")
            virsh_noop.append(time.monotonic() - since)
    finally:
        conn.close()
    lab.remove(ours)
    lab.remove(ref)
    return {
        "ours_apply_s": spread(applies) | {"samples": applies},
        "virsh_restore_s": spread(restores) | {"samples": restores},
        "virsh_noop_s": spread(virsh_noop),
        "checkpoint_memory_mib": memory_bytes / 2**20,
        "save_image_mib": spread([s / 2**20 for s in sizes]),
    }


# --- merge ----------------------------------------------------------------------------------------


def _qemu_io_write(image: str) -> None:
    out = _run("qemu-io", "-f", "qcow2", "-c", f"write -P {PATTERN} 0 {MERGE_GIB}G", image)
    _check("wrote" in out, f"qemu-io wrote nothing to {image}: {out}")


def _check_content(image: str, shared: bool = False) -> None:
    """The merged image holds the pattern in its first GiB and zeros after it."""
    out = _run(
        "qemu-io", *(["-U"] if shared else []), "-r", "-f", "qcow2",
        "-c", f"read -P {PATTERN} 0 {MERGE_GIB}G",
        "-c", f"read -P 0 {MERGE_GIB}G {MERGE_DISK_GIB - MERGE_GIB}G",
        image,
    )  # fmt: skip
    _check("Pattern verification failed" not in out and out.count("read ") == 2, f"{image}: {out}")
    _check(_backing_of(image) is None, f"{image} still has a backing file")
    _run("qemu-img", "check", *(["-U"] if shared else []), "-f", "qcow2", image)


def _compare(first: str, second: str, shared: bool = False) -> None:
    _run("qemu-img", "compare", *(["-U"] if shared else []), "-f", "qcow2", "-F", "qcow2", first, second)


class Chain(NamedTuple):
    """A base image and an overlay with 1 GiB written into it, built by hand."""

    base: str
    top: str


def _hand_chain(folder: Path, pristine: str, name: str) -> Chain:
    """A copy of an empty base (identical options) and a ``qemu-img create -b`` overlay over it."""
    base = folder / f"{name}-base.qcow2"
    top = folder / f"{name}-top.qcow2"
    shutil.copyfile(pristine, base)
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(top))
    for image in (base, top):
        image.chmod(0o644)
    _qemu_io_write(str(top))
    return Chain(str(base), str(top))


def _timed(action: Callable[[], object]) -> float:
    os.sync()  # the written data is on disk before the clock starts, for every side alike
    since = time.monotonic()
    action()
    return time.monotonic() - since


def _ours_merge_vm(lab: Lab, conn: Any, suffix: str) -> tuple[_guests.BenchVm, str, str, str]:
    """An off VM with an empty disk, a checkpoint of it, 1 GiB written into its overlay.

    Returns the VM, the checkpoint id, the pristine copy of the empty disk and the overlay.
    """
    vm = lab.create(suffix, NewDisk(MERGE_DISK_GIB))
    base = _disk_source(vm.name, inactive=True)
    pristine = str(Path(base).with_name("pristine.qcow2"))
    shutil.copyfile(base, pristine)
    dom = conn.lookupByUUIDString(vm.uuid)
    checkpoint = checkpoints.take(conn, dom).checkpoint
    overlay = _disk_source(vm.name, inactive=True)
    _check(_backing_of(overlay) == base, "take did not put an overlay over the disk")
    _qemu_io_write(overlay)
    return vm, checkpoint.id, pristine, overlay


def _ours_delete(conn: Any, vm: _guests.BenchVm, checkpoint_id: str, overlay: str, live: bool) -> float:
    dom = conn.lookupByUUIDString(vm.uuid)
    base = _backing_of(overlay)
    wall = _timed(lambda: checkpoints.delete(conn, dom, checkpoint_id))
    _check(not Path(overlay).exists(), "the merged overlay was not deleted")
    _check(_disk_source(vm.name, inactive=True) == base, "the VM's definition does not use the merged disk")
    if live:
        _check(_domstate(vm.name) == "running", f"{vm.name} stopped during the merge")
        _check(_disk_source(vm.name) == base, "the running VM was not pivoted to the merged disk")
    assert base is not None
    _check_content(base, shared=live)
    return wall


def _merge_offline_once(lab: Lab, conn: Any, first: str) -> dict[str, float]:
    """One repetition: ours, plain ``qemu-img commit``, ``qemu-img commit -t none``."""
    vm, checkpoint_id, pristine, overlay = _ours_merge_vm(lab, conn, "merge")
    scratch = Path(pristine).parent
    plain = _hand_chain(scratch, pristine, "plain")
    direct = _hand_chain(scratch, pristine, "o-direct")
    plain_commit = ["qemu-img", "commit", "-q", "-f", "qcow2", plain.top]
    direct_commit = ["qemu-img", "commit", "-q", "-d", "-t", "none", "-f", "qcow2", "-b", *direct]
    runs: dict[str, Callable[[], float]] = {
        "ours": lambda: _ours_delete(conn, vm, checkpoint_id, overlay, live=False),
        "qemu_img_commit": lambda: _timed(lambda: _run(*plain_commit)),
        "qemu_img_commit_t_none": lambda: _timed(lambda: _run(*direct_commit)),
    }
    order = [first, *(k for k in runs if k != first)]
    figures = {key: runs[key]() for key in order}
    base = _disk_source(vm.name, inactive=True)
    for chain in (plain, direct):
        _check_content(chain.base)
        _compare(base, chain.base)
    lab.remove(vm)
    return figures


def _merge_live_once(lab: Lab, conn: Any, ours_first: bool) -> dict[str, float]:
    """One repetition: ours on a running VM, ``virsh blockcommit --active --pivot`` on another."""
    vm, checkpoint_id, pristine, overlay = _ours_merge_vm(lab, conn, "merge-live")
    chain = _hand_chain(lab.scratch_folder(lab.location), pristine, "live")
    ref = lab.create("blockcommit", ExistingDisk(chain.top))
    _boot([vm, ref])
    target = _disk_target(ref.name)
    runs: dict[str, Callable[[], float]] = {
        "ours_live": lambda: _ours_delete(conn, vm, checkpoint_id, overlay, live=True),
        "virsh_blockcommit_live": lambda: _timed(
            lambda: virsh("blockcommit", ref.name, target, "--active", "--pivot", "--wait")
        ),
    }
    order = list(runs) if ours_first else list(reversed(runs))
    figures = {key: runs[key]() for key in order}
    _check(_disk_source(ref.name) == chain.base, "virsh blockcommit did not pivot")
    _check_content(chain.base, shared=True)
    _compare(_disk_source(vm.name), chain.base, shared=True)
    lab.remove(vm)
    lab.remove(ref)
    shutil.rmtree(Path(chain.base).parent, ignore_errors=True)
    return figures


def bench_merge(lab: Lab, repeat: int, live_repeat: int) -> dict[str, Any]:
    """Offline merges (``repeat`` times, the order rotating), then live ones (``live_repeat``)."""
    conn = libvirt.open(SYSTEM_URI)
    seconds: dict[str, list[float]] = {}
    try:
        offline_order = ["ours", "qemu_img_commit", "qemu_img_commit_t_none"]
        for index in range(repeat):
            once = _merge_offline_once(lab, conn, offline_order[index % len(offline_order)])
            for key, value in once.items():
                seconds.setdefault(key, []).append(value)
        for index in range(live_repeat):
            for key, value in _merge_live_once(lab, conn, ours_first=index % 2 == 0).items():
                seconds.setdefault(key, []).append(value)
    finally:
        conn.close()
    mib = MERGE_GIB * 1024
    return {
        key: {
            "seconds": spread(values),
            "mib_per_s": spread([mib / v for v in values]),
            "samples_s": values,
        }
        for key, values in seconds.items()
    }


# --- report ---------------------------------------------------------------------------------------


def _ms(s: dict[str, float]) -> str:
    return f"{s['median'] * 1000:.0f} [{s['min'] * 1000:.0f}–{s['max'] * 1000:.0f}]"


def _sec(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} [{s['min']:.2f}–{s['max']:.2f}]"


def _rate(s: dict[str, float]) -> str:
    return f"{s['median']:.0f} [{s['min']:.0f}–{s['max']:.0f}]"


PAUSE_LABELS = {
    "ours_default": "checkpoints.take (default: memory staged in /dev/shm, then moved)",
    "ours_folder_direct": "checkpoints.take, HVMANAGER_MEMORY_STAGING=0 (straight into the folder)",
    "ours_tmpfs_location": "checkpoints.take, checkpoint file location on tmpfs",
    "libvirt_live_folder": "libvirt live external snapshot, memory in the VM folder",
    "libvirt_live_tmpfs": "libvirt live external snapshot, memory on tmpfs",
    "libvirt_nonlive_folder": "libvirt non-live external snapshot, memory in the VM folder",
}


def report_pause(results: dict[str, Any]) -> str:
    """The pause table."""
    rows = []
    for key, label in PAUSE_LABELS.items():
        figures = results[key]
        pause = figures["pause_s"]
        verdict = ("PASS" if pause["median"] <= PAUSE_TARGET_S else "MISS") if key.startswith("ours") else ""
        rows.append([
            label, str(pause["n"]), _ms(pause), verdict,
            _ms(figures["qemu_downtime_s"]) if figures["qemu_downtime_s"] else "?", _ms(figures["wall_s"]),
            ",".join(map(str, figures["pauses_per_call"])), f"{figures['memory_mib']['median']:.0f}",
        ])  # fmt: skip
    headers = [
        "pause: checkpoint of a running 256 MiB VM", "n", "pause ms median [min–max]",
        f"≤ {PAUSE_TARGET_S * 1000:.0f} ms", "QEMU downtime ms", "call ms", "pauses/call", "memory MiB",
    ]  # fmt: skip
    return table(headers, rows)


def report_apply(results: dict[str, Any]) -> str:
    """The apply table."""
    ours, theirs = results["ours_apply_s"], results["virsh_restore_s"]
    ratio = ours["median"] / theirs["median"]
    rows = [
        ["checkpoints.apply (with memory)", str(ours["n"]), _sec(ours),
         f"{results['checkpoint_memory_mib']:.0f}"],
        ["virsh restore of a virsh save image", str(theirs["n"]), _sec(theirs),
         f"{results['save_image_mib']['median']:.0f}"],
        ["  (virsh uri: the virsh process alone)", str(results["virsh_noop_s"]["n"]),
         _sec(results["virsh_noop_s"]), ""],
    ]  # fmt: skip
    verdict = "PASS" if ratio <= APPLY_TARGET_RATIO else "MISS"
    out = table(["apply: 256 MiB VM", "n", "s median [min–max]", "memory image MiB"], rows)
    return f"{out}\napply / virsh restore (medians): ×{ratio:.2f} (target ≤ ×{APPLY_TARGET_RATIO}: {verdict})"


MERGE_LABELS = {
    "ours": "checkpoints.delete, VM off (qemu-img commit inside)",
    "qemu_img_commit": "qemu-img commit (defaults) of a hand-built chain",
    "qemu_img_commit_t_none": "qemu-img commit -d -t none (O_DIRECT, hvmanager until 901830a)",
    "ours_live": "checkpoints.delete, VM running (block commit)",
    "virsh_blockcommit_live": "virsh blockcommit --active --pivot --wait",
}


def report_merge(results: dict[str, Any]) -> str:
    """The merge table."""
    rows = []
    reference = results.get("qemu_img_commit", {}).get("mib_per_s", {}).get("median")
    for key, label in MERGE_LABELS.items():
        if key not in results:
            continue
        figures = results[key]
        rate = figures["mib_per_s"]
        versus = f"×{rate['median'] / reference:.2f}" if reference else ""
        rows.append([label, str(rate["n"]), _sec(figures["seconds"]), _rate(rate), versus])
    headers = [f"merge: {MERGE_GIB} GiB changed", "n", "s median [min–max]", "MiB/s median [min–max]",
               "vs qemu-img commit"]  # fmt: skip
    out = table(headers, rows)
    if reference and "ours" in results:
        ratio = results["ours"]["mib_per_s"]["median"] / reference
        verdict = "PASS" if ratio >= MERGE_TARGET_RATIO else "MISS"
        target = f"target ≥ ×{MERGE_TARGET_RATIO}: {verdict}"
        out += f"\noffline merge / qemu-img commit (medians): ×{ratio:.2f} ({target})"
    return out


# --- main -----------------------------------------------------------------------------------------


def _others_running() -> list[str]:
    """Running VMs this benchmark did not make (they share the CPUs)."""
    names = virsh("list", "--name").stdout.split()
    return [name for name in names if not name.startswith(PREFIX)]


def _host_line(host: dict[str, Any]) -> str:
    others = ", ".join(host["others_running"]) or "none"
    return (
        f"host busy during this benchmark: {host['host_busy_percent_of_all_cores']:.0f} % of all cores "
        f"over {host['wall_s']:.0f} s; other running VMs at its end: {others}"
    )


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # run the finally blocks: the VMs are removed


@contextlib.contextmanager
def _lab() -> Iterator[Lab]:
    leftovers = [line.strip() for line in virsh("list", "--all", "--name").stdout.splitlines()]
    _guests.remove([name for name in leftovers if name.startswith(PREFIX)])  # an interrupted run's
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print their tables, optionally save the JSON."""
    parser = argparse.ArgumentParser(description="hvmanager checkpoint benchmarks (see bench/README.md)")
    parser.add_argument("benchmarks", nargs="*", metavar="{pause,apply,merge}", help="default: all three")
    parser.add_argument("--repeat", type=int, default=7, help="samples of pause and apply (default 7)")
    parser.add_argument("--merge-repeat", type=int, default=3, help="offline merges of 1 GiB (default 3)")
    parser.add_argument("--live-repeat", type=int, default=3, help="live merges (0: none; default 3)")
    parser.add_argument("--json", type=Path, help="save every figure to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}")
    chosen = args.benchmarks or list(BENCHMARKS)
    signal.signal(signal.SIGTERM, _on_sigterm)
    info = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    ensure_daemons()
    results: dict[str, Any] = {}
    reports = {"pause": report_pause, "apply": report_apply, "merge": report_merge}
    with _lab() as lab:
        print(f"VMs and files in {lab.location}", flush=True)
        for name in chosen:
            print(f"\n[{name}] ...", flush=True)
            host = CpuMeter([])
            host.start()
            if name == "pause":
                results[name] = bench_pause(lab, args.repeat)
            elif name == "apply":
                results[name] = bench_apply(lab, args.repeat)
            else:
                results[name] = bench_merge(lab, args.merge_repeat, args.live_repeat)
            busy = host.stop()
            results[name]["host"] = busy | {"others_running": _others_running()}
            print(reports[name](results[name]), flush=True)
            print(_host_line(results[name]["host"]), flush=True)
    if args.json:
        save_figures(args.json, "bench.checkpoints", info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
