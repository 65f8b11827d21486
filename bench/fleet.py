"""Fleet benchmark: launch time, steady CPU and memory of hvmanager, and virt-manager beside it.

Scenarios, in this order (the real guests come last because under TCG they keep the CPUs busy):

1. ``ours@1s``: 1,000 VMs on libvirt's test driver (two thirds running), the app at its default
   1 s refresh. Launch → whole list painted, CPU % of one core over the window, RSS at the end.
2. ``ours@3s``: the same at a 3 s refresh (virt-manager's default), for a like-for-like comparison.
3. ``virt-manager@3s``: virt-manager (Debian package, installed with apt-get when missing) under
   Xvfb against the same test URI, at its default 3 s refresh: CPU over the same window once it
   has listed the VMs and settled, and RSS.
4. ``ours@1s, N real guests``: ``hvbench-NN`` test-guest VMs running under TCG on
   ``qemu:///system``; the same three figures for the app (plus libvirtd's CPU for context);
   then virt-manager's CPU and RSS over the same guests.

Scenarios 1 and 2 run ``--runs`` fresh processes each and report the medians.

Each app run is a fresh process (``bench/_app_probe.py``) with throw-away settings, offscreen.
Run as root from the repository root::

    .venv/bin/python -m bench.fleet --json /tmp/fleet.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from bench import _guests
from bench._common import (
    BENCH_PREFIX,
    PROBE_MARK,
    REPO_ROOT,
    SYSTEM_URI,
    CpuMeter,
    command_line,
    ensure_daemons,
    machine_info,
    pid_of,
    proc_rss_mib,
    repo_on_path,
    table,
)

TARGET_LAUNCH_S = 1.5
TARGET_CPU_PERCENT = 2.0
TARGET_RSS_MIB = 150.0
VIRT_MANAGER_TITLE = "Virtual Machine Manager"


# --- our app --------------------------------------------------------------------------------------


def _write_settings(folder: Path, uri: str, interval_ms: int) -> None:
    from hvmanager.backend.settings import AppSettings

    settings = AppSettings(
        servers=[uri],
        vm_folder=str(folder / "vms"),
        disk_folder=str(folder / "vms" / "Virtual Hard Disks"),
        stats_interval_ms=interval_ms,
    )
    (folder / "settings.json").write_text(json.dumps(dataclasses.asdict(settings)), encoding="utf-8")


def run_app(
    uri: str,
    *,
    expect: int,
    prefix: str,
    interval_ms: int,
    window_s: float,
    settle_s: float = 3.0,
    watch_pids: tuple[int, ...] = (),
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """Start the app in a fresh process over ``uri``; returns its figures (or an ``error``)."""
    with tempfile.TemporaryDirectory(prefix="hvbench-config-") as config:
        _write_settings(Path(config), uri, interval_ms)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HVMANAGER_CONFIG_DIR": config}
        args = [
            sys.executable, "-m", "bench._app_probe",
            "--uri", uri, "--expect", str(expect), "--prefix", prefix,
            "--settle", str(settle_s), "--window", str(window_s),
        ]  # fmt: skip
        for pid in watch_pids:
            args += ["--watch-pid", str(pid)]
        if profile_to is not None:
            args.append("--window-marker")
        with tempfile.TemporaryFile(mode="w+") as errors:
            spawned_at = time.time()
            child = subprocess.Popen(
                [*args, "--spawned-at", repr(spawned_at)],
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            lines = _read_lines(
                child,
                deadline=time.monotonic() + 180 + settle_s + window_s,
                profile=(profile_to, window_s) if profile_to else None,
            )
            errors.seek(0)
            stderr = errors.read()
    found = [line for line in lines if line.startswith(PROBE_MARK)]
    result: dict[str, Any] = json.loads(found[-1][len(PROBE_MARK) :]) if found else {}
    result.update(exit_code=child.returncode, spawn_time=spawned_at)
    if not found:
        result["error"] = f"the probe printed no result (exit {child.returncode})"
    if child.returncode != 0 or not found:
        result["stderr_tail"] = _tail(stderr)
    if result.get("painted_at"):
        result["launch_s"] = result["painted_at"] - spawned_at
    return result


def _read_lines(
    child: subprocess.Popen[str], deadline: float, profile: tuple[Path, float] | None
) -> list[str]:
    """Collect the child's stdout; start py-spy on ``HVBENCH-WINDOW``; kill it past ``deadline``.

    ``profile`` is (output file, seconds): py-spy records that long from the window's start.
    """
    assert child.stdout is not None
    lines, spy = [], None
    while True:
        ready, _, _ = select.select([child.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            child.kill()
            child.wait()
            lines.append("timed out")
            break
        line = child.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("HVBENCH-WINDOW ") and profile is not None:
            spy = _start_py_spy(child.pid, *profile)
    child.wait()
    if spy is not None:
        spy.wait(timeout=60)
    return lines


def _start_py_spy(pid: int, output: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        print("  (py-spy is not installed: .venv/bin/pip install py-spy)")
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(output),
         "--duration", str(max(1, int(seconds))), "--rate", "250", "--threads", "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def hotspots(raw: Path, count: int = 15) -> str:
    """The frames most often on the stack in py-spy's raw (folded) output, as % of samples.

    Thread and executor plumbing, on every stack, is left out.
    """
    inclusive: dict[str, int] = {}
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, samples = line.rpartition(" ")
        if not samples.isdigit():
            continue
        total += int(samples)
        for frame in set(stack.split(";")):
            inclusive[frame] = inclusive.get(frame, 0) + int(samples)
    plumbing = ("threading.py", "<frozen", "concurrent/futures", "bench/_app_probe", "thread (")
    kept = [item for item in inclusive.items() if not any(p in item[0] for p in plumbing)]
    top = sorted(kept, key=lambda item: -item[1])[:count]
    return "\n".join(f"{n * 100 / max(total, 1):5.1f} %  {frame}" for frame, n in top)


def _tail(text: str, lines: int = 25) -> str:
    kept = [line for line in text.splitlines() if "propagateSizeHints" not in line]
    return "\n".join(kept[-lines:])


def run_app_repeatedly(uri: str, runs: int, **kwargs: Any) -> dict[str, Any]:
    """``runs`` fresh app processes; the medians, with every run kept under ``runs``.

    The summary is the run with the median launch time (so its launch parts add up), with CPU
    and RSS replaced by their medians over all runs and their ranges added.
    """
    every = [run_app(uri, **kwargs) for _ in range(runs)]
    good = [r for r in every if "error" not in r]
    if not good:
        return every[-1] | {"runs": every}
    by_launch = sorted(good, key=lambda r: r["launch_s"])
    summary = dict(by_launch[(len(by_launch) - 1) // 2])
    for key in ("launch_s", "cpu_percent_of_core", "rss_mib"):
        values = [r[key] for r in good]
        summary[key] = statistics.median(values)
        summary[f"{key}_range"] = [min(values), max(values)]
    summary.update(runs=every, run_count=len(good))
    return summary


# --- virt-manager ---------------------------------------------------------------------------------


def ensure_virt_manager() -> tuple[str | None, str]:
    """The virt-manager program, installing the Debian package when missing; and what was done."""
    found = shutil.which("virt-manager")
    if found:
        return found, "virt-manager was already installed"
    print("virt-manager is not installed: apt-get install -y --no-install-recommends virt-manager ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "virt-manager"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # a stale package list: refresh it once and try again
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    found = shutil.which("virt-manager")
    if found is None:
        return None, f"apt-get install virt-manager failed: {_tail(done.stderr, 10)}"
    return (
        found,
        f"installed the Debian package virt-manager ({_package_version('virt-manager')}) with apt-get",
    )


def _package_version(package: str) -> str:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "?"


@contextmanager
def xvfb() -> Iterator[tuple[str, int]]:
    """A private Xvfb on a free display (it picks the number itself); yields (DISPLAY, pid)."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 20)
        number = os.read(read_end, 32).decode().strip() if ready else ""
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}", server.pid
    finally:
        os.close(read_end)
        server.terminate()
        server.wait(10)


def _has_window(display: str, title: str) -> bool:
    done = subprocess.run(
        ["xwininfo", "-root", "-tree", "-display", display], capture_output=True, text=True, check=False
    )
    return f'"{title}"' in done.stdout


def _settle(pid: int, slice_s: float, below_percent: float, limit_s: float) -> float:
    """Wait until a process used less than ``below_percent`` of a core over a slice; returns the wait."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        meter = CpuMeter([pid])
        meter.start()
        time.sleep(slice_s)
        used = meter.stop()["cpu_percent_of_core"]
        assert isinstance(used, list)
        if used[0] is None or used[0] < below_percent:
            break
    return time.monotonic() - started


def run_virt_manager(
    program: str, uri: str, window_s: float, min_wait_s: float = 10.0, watch_pids: tuple[int, ...] = ()
) -> dict[str, Any]:
    """virt-manager under Xvfb on ``uri``: its steady CPU over ``window_s`` and its RSS.

    ``watch_pids`` (e.g. libvirtd) are measured over the same window.
    """
    result: dict[str, Any] = {"uri": uri, "interval_ms": 3000}
    with xvfb() as (display, xvfb_pid), tempfile.TemporaryFile(mode="w+") as errors:
        env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
        env["DISPLAY"] = display
        spawned = time.monotonic()
        # --no-fork: the python3 process running /usr/bin/virt-manager is the child itself.
        child = subprocess.Popen(
            [program, "--no-fork", "--connect", uri], env=env, stdout=errors, stderr=errors,
            start_new_session=True,
        )  # fmt: skip
        result["pid"] = child.pid
        try:
            while time.monotonic() - spawned < 60 and child.poll() is None:
                if _has_window(display, VIRT_MANAGER_TITLE):
                    result["window_after_s"] = time.monotonic() - spawned
                    break
                time.sleep(0.1)
            if child.poll() is None:
                time.sleep(max(0.0, min_wait_s - (time.monotonic() - spawned)))
                waited = _settle(child.pid, slice_s=3.0, below_percent=25.0, limit_s=30.0)
                result["settled"] = waited < 30.0
                result["measured_after_s"] = time.monotonic() - spawned
                meter = CpuMeter([child.pid, xvfb_pid, *watch_pids])
                meter.start()
                time.sleep(window_s)
                figures = meter.stop()
                percents = figures["cpu_percent_of_core"]
                assert isinstance(percents, list)
                if child.poll() is None:
                    result.update(
                        cpu_percent_of_core=percents[0],
                        xvfb_cpu_percent_of_core=percents[1],
                        watched_cpu_percent_of_core=dict(
                            zip(map(str, watch_pids), percents[2:], strict=True)
                        ),
                        host_busy_percent_of_all_cores=figures["host_busy_percent_of_all_cores"],
                        window_s=figures["wall_s"],
                        rss_mib=proc_rss_mib(child.pid),
                    )
                    result["command"] = Path(f"/proc/{child.pid}/cmdline").read_text().replace("\0", " ")
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGTERM)
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
            else:
                result["exit_code"] = child.returncode
            errors.seek(0)
            stderr = errors.read()
    if "cpu_percent_of_core" not in result:
        result["error"] = f"virt-manager did not keep running (exit {child.returncode})"
        result["stderr_tail"] = _tail(stderr)
    elif "window_after_s" not in result:
        result["note"] = f"no '{VIRT_MANAGER_TITLE}' window was seen; measured after {min_wait_s:.0f} s"
    result["stderr_lines"] = len(stderr.splitlines())
    return result


# --- real guests ------------------------------------------------------------------------------------


def run_real(
    count: int, window_s: float, virt_manager: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``count`` running test guests on qemu:///system: the app's figures, then virt-manager's.

    libvirtd's CPU over each window is added as ``libvirtd_cpu_percent_of_core``.
    """
    ensure_daemons()
    names = [f"{BENCH_PREFIX}{i:02d}" for i in range(1, count + 1)]
    _guests.remove(names)  # leftovers of an interrupted run
    location = _guests.make_location()
    try:
        print(f"  creating and starting {count} test-guest VMs in {location} ...", flush=True)
        vms = _guests.create(names, location)
        _guests.start(vms)
        booted = _guests.wait_booted(vms)
        print(f"  all {count} guests booted after {booted:.1f} s", flush=True)
        libvirtd = pid_of("libvirtd") or pid_of("virtqemud")
        result = run_app(
            SYSTEM_URI,
            expect=count,
            prefix=BENCH_PREFIX,
            interval_ms=1000,
            window_s=window_s,
            watch_pids=(libvirtd,) if libvirtd else (),
        )
        result["guests_booted_after_s"] = booted
        theirs = None
        if virt_manager is not None:
            print(f"  virt-manager @3 s on {SYSTEM_URI} with the same guests ...", flush=True)
            theirs = run_virt_manager(
                virt_manager, SYSTEM_URI, window_s, watch_pids=(libvirtd,) if libvirtd else ()
            )
        for figures in (result, theirs):
            if libvirtd and figures is not None:
                watched = figures.get("watched_cpu_percent_of_core", {})
                figures["libvirtd_cpu_percent_of_core"] = watched.get(str(libvirtd))
        return result, theirs
    finally:
        removed = _guests.remove(names, location)
        print(f"  removed {len(removed)} hvbench VMs and {location}", flush=True)


# --- report -----------------------------------------------------------------------------------------


def _verdict(value: float | None, target: float) -> str:
    if value is None:
        return "n/a"
    return "PASS" if value <= target else "MISS"


def _num(value: Any, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _with_range(r: dict[str, Any], key: str, fmt: str) -> str:
    value, span = r.get(key), r.get(f"{key}_range")
    if value is None:
        return "—"
    text = format(value, fmt)
    return (
        f"{text} [{format(span[0], fmt)}–{format(span[1], fmt)}]"
        if span and r.get("run_count", 1) > 1
        else text
    )


def _launch_parts(r: dict[str, Any]) -> str:
    if not r.get("painted_at"):
        return ""
    marks = [
        ("interp", r["spawn_time"], r["started_at"]),
        ("imports", r["started_at"], r["imported_at"]),
        ("window", r["imported_at"], r["shown_at"]),
        ("connect+list", r["shown_at"], r.get("listed_at")),
        ("rows", r.get("listed_at"), r.get("inserted_at")),
        ("paint", r.get("inserted_at"), r["painted_at"]),
    ]
    return " ".join(f"{name} {b - a:.2f}" for name, a, b in marks if a and b)


def report(results: dict[str, Any]) -> str:
    """The readable summary table."""
    rows = []
    for key, label in (
        ("ours_1s", "hvmanager @1 s, test fleet"),
        ("ours_3s", "hvmanager @3 s, test fleet"),
        ("virt_manager", "virt-manager @3 s, test fleet"),
        ("real", "hvmanager @1 s, real guests"),
        ("real_virt_manager", "virt-manager @3 s, real guests"),
    ):
        r = results.get(key)
        if r is None:
            continue
        error = r.get("error")
        launch = r.get("launch_s")
        cpu, rss = r.get("cpu_percent_of_core"), r.get("rss_mib")
        rows.append(
            [
                label,
                _with_range(r, "launch_s", ".2f")
                + (f" {_verdict(launch, TARGET_LAUNCH_S)}" if launch else ""),
                _with_range(r, "cpu_percent_of_core", ".2f")
                + (f" {_verdict(cpu, TARGET_CPU_PERCENT)}" if "virt_manager" not in key else ""),
                _with_range(r, "rss_mib", ".0f")
                + (f" {_verdict(rss, TARGET_RSS_MIB)}" if "virt_manager" not in key else ""),
                _num(r.get("stats_ticks_in_window"), "d"),
                _num(r.get("host_busy_percent_of_all_cores"), ".0f"),
                "ERROR: " + error if error else _launch_parts(r),
            ]
        )
    headers = [
        "scenario",
        f"launch→painted s (≤{TARGET_LAUNCH_S}) [range]",
        f"CPU % of a core (≤{TARGET_CPU_PERCENT:g}) [range]",
        f"RSS MiB (≤{TARGET_RSS_MIB:.0f}) [range]",
        "ticks",
        "host busy %",
        "launch parts (s) / error",
    ]
    out = [table(headers, rows)]
    for theirs_key, pairs in (
        ("virt_manager", (("ours_1s", "test fleet: ours @1 s"), ("ours_3s", "test fleet: ours @3 s"))),
        ("real_virt_manager", (("real", "real guests: ours @1 s"),)),
    ):
        theirs = results.get(theirs_key)
        if theirs is None:
            continue
        for key, what in pairs:
            ours = results.get(key) or {}
            if theirs.get("cpu_percent_of_core") and ours.get("cpu_percent_of_core") is not None:
                cpu_ratio = ours["cpu_percent_of_core"] / theirs["cpu_percent_of_core"]
                rss_ratio = ours["rss_mib"] / theirs["rss_mib"]
                out.append(f"{what} / virt-manager @3 s: CPU ×{cpu_ratio:.2f}, RSS ×{rss_ratio:.2f}")
        out.extend(_virt_manager_notes(theirs_key, theirs))
    real = results.get("real") or {}
    if real.get("libvirtd_cpu_percent_of_core") is not None:
        out.append(
            f"(real guests: libvirtd used {real['libvirtd_cpu_percent_of_core']:.2f} % of a core "
            "during our window)"
        )
    for key, r in results.items():
        if not isinstance(r, dict) or "virt_manager" in key:
            continue
        for number, run in enumerate(r.get("runs") or [r], start=1):
            if run.get("exit_code") not in (None, 0):
                after = "after printing its figures" if "error" not in run else "without figures"
                out.append(
                    f"{key} run {number}: the app process exited with {run['exit_code']} {after}:\n"
                    + _tail(run.get("stderr_tail", ""), 6)
                )
    return "\n".join(out)


def _virt_manager_notes(key: str, theirs: dict[str, Any]) -> list[str]:
    """What to know beside virt-manager's figures: errors, Xvfb, settling, libvirtd."""
    notes = []
    if theirs.get("error"):
        notes.append(f"{key}: {theirs['error']}\n{theirs.get('stderr_tail', '')}")
    if theirs.get("xvfb_cpu_percent_of_core") is not None:
        settled = (
            f"it settled {theirs.get('measured_after_s', 0):.0f} s after its start"
            if theirs.get("settled")
            else "it never settled below 25 % of a core; measured "
            f"{theirs.get('measured_after_s', 0):.0f} s after its start"
        )
        notes.append(
            f"({key}: Xvfb serving it used {theirs['xvfb_cpu_percent_of_core']:.2f} % of a core besides; "
            f"{settled}"
            + (
                f"; libvirtd used {theirs['libvirtd_cpu_percent_of_core']:.2f} % of a core meanwhile)"
                if theirs.get("libvirtd_cpu_percent_of_core") is not None
                else ")"
            )
        )
    return notes


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="hvmanager fleet benchmark (see bench/README.md)")
    parser.add_argument("--vms", type=int, default=1000, help="VMs on the test driver (default 1000)")
    parser.add_argument("--window", type=float, default=30.0, help="CPU window in seconds (default 30)")
    parser.add_argument("--skip-virt-manager", action="store_true", help="do not run virt-manager")
    parser.add_argument("--skip-real", action="store_true", help="do not run real guests")
    parser.add_argument("--skip-3s", action="store_true", help="do not run our app at a 3 s refresh")
    parser.add_argument("--real", type=int, default=10, help="real guests (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="fresh app runs per test-fleet scenario")
    parser.add_argument("--json", type=Path, help="save every figure to this file")
    parser.add_argument("--profile", type=Path, help="also run ours@1s under py-spy; raw stacks here")
    return parser.parse_args(argv)


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # run the finally blocks: the hvbench VMs are removed


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the table, optionally save the JSON."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    repo_on_path()
    from tests.support.testdriver import write_fleet

    results: dict[str, Any] = {
        "command": command_line("bench.fleet"),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": machine_info(),
        "targets": {
            "launch_s": TARGET_LAUNCH_S,
            "cpu_percent": TARGET_CPU_PERCENT,
            "rss_mib": TARGET_RSS_MIB,
        },
    }
    print("machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()), flush=True)
    with tempfile.TemporaryDirectory(prefix="hvbench-fleet-") as folder:
        uri = write_fleet(Path(folder) / "fleet.xml", args.vms, 2 / 3)
        common = {"expect": args.vms, "prefix": "vm-", "window_s": args.window}
        print(
            f"[1] hvmanager @1 s over {args.vms} test VMs ({args.window:g} s window), {args.runs} runs ...",
            flush=True,
        )
        results["ours_1s"] = run_app_repeatedly(uri, args.runs, interval_ms=1000, **common)
        if not args.skip_3s:
            print(f"[2] hvmanager @3 s over the same fleet, {args.runs} runs ...", flush=True)
            results["ours_3s"] = run_app_repeatedly(uri, args.runs, interval_ms=3000, **common)
        if not args.skip_virt_manager:
            print("[3] virt-manager @3 s (its default) over the same fleet, under Xvfb ...", flush=True)
            program, note = ensure_virt_manager()
            print(f"  {note}", flush=True)
            if program is None:
                results["virt_manager"] = {"error": note}
            else:
                results["virt_manager"] = run_virt_manager(program, uri, args.window)
                results["virt_manager"].update(install=note, version=_package_version("virt-manager"))
        if args.profile is not None:
            print(f"[p] hvmanager @1 s under py-spy → {args.profile} ...", flush=True)
            results["profiled_1s"] = run_app(uri, interval_ms=1000, profile_to=args.profile, **common)
    if not args.skip_real:
        print(f"[4] hvmanager @1 s over {args.real} real running test guests on {SYSTEM_URI} ...", flush=True)
        program = None if args.skip_virt_manager else ensure_virt_manager()[0]
        try:
            results["real"], theirs = run_real(args.real, args.window, program)
            if theirs is not None:
                results["real_virt_manager"] = theirs
        except Exception as exc:  # report it in the table; the VMs are already cleaned up
            results["real"] = {"error": f"{type(exc).__name__}: {exc}"}
    print()
    print(report(results))
    if args.profile is not None and args.profile.exists():
        print("\nhotspots of ours@1s (py-spy, share of samples with the frame on the stack):")
        print(hotspots(args.profile))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
        print(f"\nfigures saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
