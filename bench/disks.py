"""Disk-file benchmarks: hvmanager's New / Convert / Merge / Compact beside plain ``qemu-img``.

Every sample runs both sides on identical files in a fresh folder under
``/var/lib/hvmanager-bench`` (a real disk, not tmpfs), in alternating order, each after a ``sync``;
the tables show the median and [min–max]. Every result is checked before its figure counts
(``qemu-img info``/``compare``/``check``, ``qemu-io`` pattern reads); the folder is removed at the
end, also on failure or SIGTERM.

``create``
    A fixed 10 GiB disk of each format: ``vhd.create`` (New Virtual Hard Disk) against
    ``qemu-img create`` with the same format's fixed options (``preallocation=falloc`` for qcow2
    and raw, ``subformat=fixed`` for VHDX and VHD). QEMU writes fixed VHD and VHDX files sparse
    (``preallocation`` is ignored for them) while ``vhd.create`` reserves their space, so for those
    two the reference is ``qemu-img create`` followed by ``fallocate -l <file size>``: the same
    result. The host space each file takes is shown too. Target: ≤ 1.1 × the reference.
``convert``
    1 GiB of data (``qemu-io -c "write -P 0x5a 0 1G"``) in a 2 GiB dynamic qcow2 disk, converted
    to a dynamic VHDX, VHD and qcow2: ``vhd.convert`` against ``qemu-img convert -f qcow2 -O <fmt>``
    with the options hvmanager passes (the same output file), as it is (its target is written with
    cache=unsafe: it returns with the data still in the page cache, as ``vhd.convert`` does: the
    source is kept) and, for scale, followed by an ``fsync`` of its output.
    Target: ≥ 0.9 × qemu-img's throughput.
``merge``
    The same 1 GiB written into a qcow2 differencing disk over an empty 2 GiB qcow2 disk:
    ``vhd.merge_into_parent`` (commit, then delete the child) against ``qemu-img commit -f qcow2
    child`` (its defaults: the child is emptied, not deleted) and ``qemu-img commit -d`` followed
    by deleting the child (what Merge does). Target: ≥ 0.9 × ``qemu-img commit``.
``compact``
    A 2 GiB dynamic disk (qcow2, VHDX, VHD) with 1 GiB written, 768 MiB of which were then
    overwritten with zeros: the file size before and after ``vhd.compact`` (in place), beside an
    identical disk compacted with plain tools: ``qemu-img convert`` to a new file of the same
    format, ``fsync``, rename over the disk (what ``vhd.compact`` does, with its checks).

Run as root from the repository root::

    .venv/bin/python -m bench.disks                       # all four
    .venv/bin/python -m bench.disks convert merge --repeat 5 --json /tmp/disks.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

from bench._common import BENCH_PREFIX, BENCH_ROOT, CpuMeter, machine_info, save_figures, spread, table
from hvmanager.backend import limits, vhd
from hvmanager.backend.qemuimg import create_options
from hvmanager.backend.vhd_targets import new_disk_options
from hvmanager.backend.vhd_types import DiskType, NewVhd

BENCHMARKS = ("create", "convert", "merge", "compact")
GIB = 1024**3
MIB = 1024**2
CREATE_GIB = 10
DATA_GIB = 1
DISK_GIB = 2
ZEROED_MIB = 768
PATTERN = "0x5a"
CREATE_TARGET_RATIO = 1.1
THROUGHPUT_TARGET_RATIO = 0.9
CREATE_FORMATS = ("qcow2", "raw", "vhdx", "vpc")
CONVERT_FORMATS = ("vhdx", "vpc", "qcow2")
COMPACT_FORMATS = ("qcow2", "vhdx", "vpc")


class BenchError(RuntimeError):
    """An operation did not do what it claims: its figure would be meaningless."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def _timed(action: Callable[[], object]) -> float:
    os.sync()  # earlier writes are on disk before the clock starts, for both sides alike
    since = time.monotonic()
    action()
    return time.monotonic() - since


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def _virtual_size(path: Path, fmt: str) -> int:
    return int(json.loads(_run("qemu-img", "info", "--output=json", "-f", fmt, str(path)))["virtual-size"])


def _compare(first: Path, first_fmt: str, second: Path, second_fmt: str) -> None:
    _run("qemu-img", "compare", "-f", first_fmt, "-F", second_fmt, str(first), str(second))


def _write_data(path: Path, fmt: str) -> None:
    out = _run("qemu-io", "-f", fmt, "-c", f"write -P {PATTERN} 0 {DATA_GIB}G", str(path))
    _check("wrote" in out, f"qemu-io wrote nothing to {path}: {out}")


def _alternate(index: int, actions: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Time each side once, the order turning with ``index``; returns the seconds of each."""
    keys = list(actions)
    keys = keys[index % len(keys) :] + keys[: index % len(keys)]
    return {key: _timed(actions[key]) for key in keys}


# --- create ---------------------------------------------------------------------------------------


def _reference_fixed(command: list[str], path: Path, fmt: str) -> None:
    """``qemu-img create`` of a fixed disk; for VHD and VHDX, which QEMU writes sparse, then
    ``fallocate`` over the whole file: the same space reserved as ``vhd.create`` reserves."""
    _run(*command)
    if fmt in ("vpc", "vhdx"):
        _run("fallocate", "-l", str(path.stat().st_size), str(path))


def bench_create(folder: Path, repeat: int) -> dict[str, Any]:
    """A fixed 10 GiB disk of each format, ours and qemu-img's, ``repeat`` times."""
    results: dict[str, Any] = {}
    for fmt in CREATE_FORMATS:
        ours_path, ref_path = folder / f"ours-fixed.{fmt}", folder / f"qemu-img-fixed.{fmt}"
        size = CREATE_GIB * GIB
        seconds: dict[str, list[float]] = {"ours": [], "qemu_img": []}
        allocated: dict[str, int] = {}
        request = NewVhd(str(ours_path), fmt, DiskType.FIXED, size_bytes=size)
        reference = [
            "qemu-img",
            "create",
            "-q",
            "-f",
            fmt,
            *create_options(fmt, fixed=True),
            str(ref_path),
            str(size),
        ]
        for index in range(repeat):
            actions: dict[str, Callable[[], object]] = {
                "ours": partial(vhd.create, request),
                "qemu_img": partial(_reference_fixed, reference, ref_path, fmt),
            }
            for key, value in _alternate(index, actions).items():
                seconds[key].append(value)
            for key, path in (("ours", ours_path), ("qemu_img", ref_path)):
                _check(_virtual_size(path, fmt) == size, f"{path} is not {CREATE_GIB} GiB")
                allocated[key] = _allocated(path)
            _check(vhd.inspect(str(ours_path)).type is DiskType.FIXED, f"{ours_path} is not a fixed disk")
            ours_path.unlink()
            ref_path.unlink()
        results[fmt] = {
            "seconds": {key: spread(values) for key, values in seconds.items()},
            "allocated_bytes": allocated,
            "samples_s": seconds,
        }
    return results


# --- convert --------------------------------------------------------------------------------------


def _source_disk(folder: Path) -> Path:
    source = folder / "source.qcow2"
    _run("qemu-img", "create", "-q", "-f", "qcow2", str(source), f"{DISK_GIB}G")
    _write_data(source, "qcow2")
    return source


def bench_convert(folder: Path, repeat: int) -> dict[str, Any]:
    """1 GiB of data converted from qcow2 to each dynamic format, ours and qemu-img's."""
    source = _source_disk(folder)
    results: dict[str, Any] = {}
    for fmt in CONVERT_FORMATS:
        ours_path, ref_path = folder / f"ours.{fmt}", folder / f"qemu-img.{fmt}"
        # The options vhd.convert passes (a VHD's exact size, a VHDX's 32 MiB blocks): the same file.
        options = new_disk_options(
            fmt, DiskType.DYNAMIC, limits.VHDX_DEFAULT_BLOCK_SIZE if fmt == "vhdx" else None
        )
        reference = ["qemu-img", "convert", "-f", "qcow2", "-O", fmt, *options, str(source), str(ref_path)]
        durable_path = folder / f"qemu-img-fsync.{fmt}"
        durable = [*reference[:-1], str(durable_path)]
        seconds: dict[str, list[float]] = {"ours": [], "qemu_img": [], "qemu_img_fsync": []}
        for index in range(repeat):
            actions: dict[str, Callable[[], object]] = {
                "ours": partial(vhd.convert, str(source), str(ours_path), fmt, DiskType.DYNAMIC),
                "qemu_img": partial(_run, *reference),
                "qemu_img_fsync": partial(_run_then_fsync, durable, durable_path),
            }
            for key, value in _alternate(index, actions).items():
                seconds[key].append(value)
            _compare(source, "qcow2", ours_path, fmt)
            _compare(ours_path, fmt, ref_path, fmt)
            for path in (ours_path, ref_path, durable_path):
                path.unlink()
        results[fmt] = _throughput(seconds)
    source.unlink()
    return results


def _run_then_fsync(args: list[str], output: Path) -> None:
    """A qemu-img run, then its output flushed to the disk (qemu-img convert writes its target
    with cache=unsafe: it returns with the data still in the page cache; hvmanager flushes it)."""
    _run(*args)
    fd = os.open(output, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _commit_and_delete(child: Path) -> None:
    """What Merge to parent does with plain tools: commit without emptying, then delete the child."""
    _run("qemu-img", "commit", "-q", "-d", "-f", "qcow2", str(child))
    child.unlink()


def _throughput(seconds: dict[str, list[float]]) -> dict[str, Any]:
    mib = DATA_GIB * 1024
    return {
        key: {"seconds": spread(values), "mib_per_s": spread([mib / v for v in values]), "samples_s": values}
        for key, values in seconds.items()
    }


# --- merge ----------------------------------------------------------------------------------------


def _chain(folder: Path, pristine: Path, name: str) -> tuple[Path, Path]:
    base, child = folder / f"{name}-base.qcow2", folder / f"{name}-child.qcow2"
    shutil.copyfile(pristine, base)
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(child))
    _write_data(child, "qcow2")
    return base, child


def _check_merged(base: Path) -> None:
    out = _run(
        "qemu-io", "-r", "-f", "qcow2",
        "-c", f"read -P {PATTERN} 0 {DATA_GIB}G",
        "-c", f"read -P 0 {DATA_GIB}G {DISK_GIB - DATA_GIB}G",
        str(base),
    )  # fmt: skip
    _check("Pattern verification failed" not in out and out.count("read ") == 2, f"{base}: {out}")
    _run("qemu-img", "check", "-f", "qcow2", str(base))


def bench_merge(folder: Path, repeat: int) -> dict[str, Any]:
    """1 GiB merged from a differencing disk into its parent: ours, qemu-img commit, with -d."""
    pristine = folder / "pristine.qcow2"
    _run("qemu-img", "create", "-q", "-f", "qcow2", str(pristine), f"{DISK_GIB}G")
    seconds: dict[str, list[float]] = {"ours": [], "qemu_img_commit": [], "qemu_img_commit_d_rm": []}
    for index in range(repeat):
        ours, plain, skip = (_chain(folder, pristine, name) for name in ("ours", "plain", "skip"))
        actions: dict[str, Callable[[], object]] = {
            "ours": partial(vhd.merge_into_parent, str(ours[1])),
            "qemu_img_commit": partial(_run, "qemu-img", "commit", "-q", "-f", "qcow2", str(plain[1])),
            "qemu_img_commit_d_rm": partial(_commit_and_delete, skip[1]),
        }
        for key, value in _alternate(index, actions).items():
            seconds[key].append(value)
        _check(not ours[1].exists(), "merge_into_parent left the differencing disk behind")
        _check(_allocated(plain[1]) < 64 * MIB, "qemu-img commit did not empty the differencing disk")
        for base in (ours[0], plain[0], skip[0]):
            _check_merged(base)
        _compare(ours[0], "qcow2", plain[0], "qcow2")
        for path in (*ours, *plain, *skip):
            path.unlink(missing_ok=True)
    pristine.unlink()
    return _throughput(seconds)


# --- compact --------------------------------------------------------------------------------------


def _zeroed_disk(path: Path, fmt: str) -> Path:
    """A 2 GiB dynamic disk with 1 GiB written, then 768 MiB of that overwritten with zeros."""
    _run("qemu-img", "create", "-q", "-f", fmt, *create_options(fmt), str(path), f"{DISK_GIB}G")
    _write_data(path, fmt)
    _run("qemu-io", "-f", fmt, "-c", f"write -P 0 {1024 - ZEROED_MIB}M {ZEROED_MIB}M", str(path))
    return path


def _convert_in_place(path: Path, fmt: str) -> None:
    """Compacting with plain tools: qemu-img convert to a new file, fsync, rename over the disk."""
    new = path.with_name(f"{path.name}.new")
    _run_then_fsync(
        ["qemu-img", "convert", "-f", fmt, "-O", fmt, *create_options(fmt), str(path), str(new)], new
    )
    new.rename(path)


def bench_compact(folder: Path) -> dict[str, Any]:
    """File sizes of a disk with zeroed space before and after compacting, beside qemu-img convert
    of an identical disk to a new file that then replaces it."""
    results: dict[str, Any] = {}
    for fmt in COMPACT_FORMATS:
        ours, reference = (
            _zeroed_disk(folder / f"ours.{fmt}", fmt),
            _zeroed_disk(folder / f"qemu-img.{fmt}", fmt),
        )
        reference_before = _allocated(reference)
        ref_seconds = _timed(partial(_convert_in_place, reference, fmt))
        before_after: list[int] = []
        ours_seconds = _timed(partial(_extend_with, before_after, partial(vhd.compact, str(ours))))
        _compare(ours, fmt, reference, fmt)
        out = _run("qemu-io", "-r", "-f", fmt, "-c", f"read -P {PATTERN} 0 {1024 - ZEROED_MIB}M", str(ours))
        _check("Pattern verification failed" not in out, f"{ours} lost its data: {out}")
        results[fmt] = {
            "file_before": before_after[0],
            "file_after": before_after[1],
            "qemu_img_file_before": reference_before,
            "qemu_img_file_after": _allocated(reference),
            "ours_seconds": ours_seconds,
            "qemu_img_convert_seconds": ref_seconds,
        }
        ours.unlink()
        reference.unlink()
    return results


def _extend_with(values: list[int], action: Callable[[], tuple[int, int]]) -> None:
    values.extend(action())


# --- report ---------------------------------------------------------------------------------------


def _sec(s: dict[str, float]) -> str:
    return f"{s['median']:.2f} [{s['min']:.2f}–{s['max']:.2f}]"


def _rate(s: dict[str, float]) -> str:
    return f"{s['median']:.0f} [{s['min']:.0f}–{s['max']:.0f}]"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report_create(results: dict[str, Any]) -> str:
    """The create table: seconds, host space, ratio to qemu-img."""
    rows = []
    for fmt, figures in results.items():
        ours, ref = figures["seconds"]["ours"], figures["seconds"]["qemu_img"]
        ratio = ours["median"] / ref["median"]
        space = figures["allocated_bytes"]
        rows.append(
            [
                limits.format_for_qemu(fmt),
                _sec(ours),
                _sec(ref),
                f"×{ratio:.2f} ({_verdict(ratio <= CREATE_TARGET_RATIO)})",
                f"{space['ours'] / GIB:.2f} / {space['qemu_img'] / GIB:.2f}",
            ]
        )
    headers = [
        "fixed 10 GiB",
        "vhd.create s",
        "qemu-img create s",
        f"ratio (target ≤ ×{CREATE_TARGET_RATIO})",
    ]
    return table([*headers, "host GiB ours / qemu-img"], rows)


def report_throughput(results: dict[str, Any], title: str) -> str:
    """A throughput table (MiB/s of the 1 GiB of data) with ours against each reference."""
    rows = []
    for name, figures in results.items():
        for key, values in figures.items():
            rows.append([name, key, _sec(values["seconds"]), _rate(values["mib_per_s"])])
    out = table([title, "who", "seconds", "MiB/s"], rows)
    for name, figures in results.items():
        for reference in (key for key in figures if key != "ours"):
            ratio = figures["ours"]["mib_per_s"]["median"] / figures[reference]["mib_per_s"]["median"]
            target = f"target ≥ ×{THROUGHPUT_TARGET_RATIO}: {_verdict(ratio >= THROUGHPUT_TARGET_RATIO)}"
            out += f"\n{name}: ours / {reference} (medians) ×{ratio:.2f} ({target})"
    return out


def report_compact(results: dict[str, Any]) -> str:
    """File sizes before and after compacting, and qemu-img convert's file."""
    rows = []
    for fmt, figures in results.items():
        before, after = figures["file_before"], figures["file_after"]
        rows.append(
            [
                fmt,
                f"{before / MIB:.0f}",
                f"{after / MIB:.0f}",
                f"{after / before:.2f}",
                f"{figures['qemu_img_file_before'] / MIB:.0f} → {figures['qemu_img_file_after'] / MIB:.0f}",
                f"{figures['ours_seconds']:.2f} / {figures['qemu_img_convert_seconds']:.2f}",
            ]
        )
    headers = ["2 GiB disk", "file MiB before", "after compact", "after/before", "qemu-img convert MiB"]
    return table([*headers, "seconds ours / qemu-img"], rows)


# --- main -----------------------------------------------------------------------------------------


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # run the finally blocks: the scratch folder is removed


@contextlib.contextmanager
def _scratch(parent: Path) -> Iterator[Path]:
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{BENCH_PREFIX}disks-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print their tables, optionally save the JSON."""
    parser = argparse.ArgumentParser(description="hvmanager disk-file benchmarks (see bench/README.md)")
    parser.add_argument(
        "benchmarks", nargs="*", metavar="{create,convert,merge,compact}", help="default: all"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="samples of create, convert and merge (default 3)"
    )
    parser.add_argument(
        "--folder", type=Path, default=BENCH_ROOT, help=f"scratch parent (default {BENCH_ROOT})"
    )
    parser.add_argument("--json", type=Path, help="save every figure to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}")
    signal.signal(signal.SIGTERM, _on_sigterm)
    info = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    results: dict[str, Any] = {}
    with _scratch(args.folder) as folder:
        print(f"files in {folder}", flush=True)
        for name in args.benchmarks or BENCHMARKS:
            print(f"\n[{name}] ...", flush=True)
            host = CpuMeter([])
            host.start()
            if name == "create":
                results[name] = bench_create(folder, args.repeat)
                report = report_create(results[name])
            elif name == "convert":
                results[name] = bench_convert(folder, args.repeat)
                report = report_throughput(results[name], "1 GiB qcow2 →")
            elif name == "merge":
                results[name] = {"qcow2": bench_merge(folder, args.repeat)}
                report = report_throughput(results[name], "1 GiB merge into")
            else:
                results[name] = bench_compact(folder)
                report = report_compact(results[name])
            busy = host.stop()
            results[name]["host"] = busy
            print(report, flush=True)
            share = busy["host_busy_percent_of_all_cores"]
            print(f"host busy during this benchmark: {share:.0f} % of all cores over {busy['wall_s']:.0f} s")
    if args.json:
        save_figures(args.json, "bench.disks", info, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
