"""Build, cache and boot a tiny Linux test guest for the hvmanager tests.

The guest is a Debian cloud kernel (``linux-image-cloud-amd64``) plus an
initramfs holding a static busybox, a handful of kernel modules, the QEMU
guest agent ``qemu-ga`` with the shared libraries it needs, and the ``/init``
script ``guest_init.sh`` that sits next to this module. It boots in a few
seconds under QEMU's software emulation (TCG) with 256 MiB, prints
``HVTEST: ...`` marker lines on its serial port and powers off when it gets an
ACPI power button event, so tests can drive it through libvirt or a bare QEMU.

Building needs only the Debian mirror (``apt-get download`` of the kernel
package and of ``qemu-guest-agent``; nothing is installed on the host),
``dpkg``, ``cpio`` and the installed ``busybox-static`` package. ``qemu-ga``
is dynamically linked: the libraries named by its ``DT_NEEDED`` entries (and
theirs, recursively) and its dynamic loader are copied from the host, found
where the host's loader looks for them, and stored at the same paths in the
initramfs. That is sound because the guest runs the binary of the host's own
Debian release (the mirror's candidate ``qemu-guest-agent``, from the suite
the host's QEMU comes from); a library the host lacks fails the build with
:class:`GuestBuildError`, as does a package apt cannot download.

The result is cached in ``<cache>/guest/<kernel-version>-<key>/`` where
``<key>`` hashes the init script, the module list and the rest of the
initramfs recipe, so editing ``guest_init.sh`` leads to a rebuild. The
downloaded ``.deb`` files are kept in ``<cache>/debs/`` so such a rebuild
needs no network. ``guest.json`` in the guest's folder records the package
versions and the host libraries that went in. The cache directory is
``$HVMANAGER_TEST_CACHE`` or ``/var/cache/hvmanager-tests``; everything in it
is world-readable because libvirt runs QEMU as ``libvirt-qemu``, which cannot
read below ``/root``: do not point the cache there for libvirt tests.

The kernel modules in :data:`GUEST_MODULES` and their dependencies are loaded
by ``/init`` with ``insmod`` in dependency order. Debian's kernel packages do
not ship ``modules.dep`` (``depmod`` writes it at install time), so the
dependencies are read from each module's ``.modinfo`` ``depends=`` entry and
put in ``modules.dep`` form (a shipped ``modules.dep`` is used if present);
compressed modules (``.ko.xz``/``.gz``/``.zst``) are stored uncompressed.

With libvirt's default DAC driver, starting a domain chowns the kernel and
initramfs to ``libvirt-qemu`` while it runs (restored to root afterwards);
they stay world-readable, so bare-QEMU tests running meanwhile are unaffected.
A ``<serial type='file'>`` log is created by virtlogd as root, mode 0600.

Markers printed by the guest (one line each, on ttyS0 == /dev/console)::

    HVTEST: module <name> failed        a kernel module did not load (boot goes on)
    HVTEST: booted                      userspace is up, modules loaded
    HVTEST: mem <kB>                    MemTotal from /proc/meminfo
    HVTEST: disks <sda vda sr0 ...>     /sys/block entries (no loop/ram/zram)
    HVTEST: ip <addr/prefix>            hvtest.ip applied ("ip failed ..." if not)
    HVTEST: mounted /dev/<d> on /mnt/<d> hvtest.mountdisk done ("mount failed <d> <why>")
    HVTEST: block sda=<n> sdb=<n> ...   hvtest.watchdisks: the sd*/vd*/hd* disks and their
                                        sizes in 512-byte sectors, at start and on every change
    HVTEST: ping <addr> up|down         hvtest.ping: first result and every change
    HVTEST: net eth0=<mac>/<rxq> ...    hvtest.watchnet: network devices, their MAC and
                                        rx queue count, at start and on every change
    HVTEST: agent started               hvtest.agent: qemu-ga holds the agent port open
    HVTEST: agent failed <reason>       ... or why it does not
    HVTEST: unknown option <key>        an hvtest.<key> the init script lacks
    HVTEST: ready                       acpid runs; the power button now works
    HVTEST: tick <n> uptime <seconds>   every hvtest.tick seconds, n from 1
                                        (with hvtest.writer: "... mark <mark>", and
                                        the record "HVTICK <n> <mark>" written at
                                        sector <n> of that disk; see guest_init.sh)
    HVTEST: acpi power button           power button pressed, powering off
    HVTEST: fsfreeze freeze             qemu-ga was asked to freeze the file systems
                                        (printed by its fsfreeze hook just before)
    HVTEST: fsfreeze thaw               ... and has thawed them (just after)

Kernel command line options read by ``/init`` (append them to
``TestGuest.cmdline``, e.g. with :meth:`TestGuest.with_cmdline`):

``hvtest.ip=<addr/prefix>``
    Give ``eth0`` (virtio-net) that address and bring it up.
``hvtest.tick=<seconds>``
    Interval between the tick lines (default 1; fractions allowed).
``hvtest.writer=<dev>`` and ``hvtest.markdev=<dev>``
    Every tick also writes the record ``HVTICK <n> <mark>`` at sector ``n`` of
    ``/dev/<writer>``, ``<mark>`` being the first line of ``/dev/<markdev>``
    (default ``sr0``); see ``guest_init.sh``.
``hvtest.mountdisk=<dev>``
    Make an ext2 file system on the first 64 MiB of ``/dev/<dev>`` (busybox
    ``mke2fs``; the kernel's built-in ext4 driver mounts it) and mount it on
    ``/mnt/<dev>``. Then the periodic writeback of dirty pages is turned off
    (``vm.dirty_writeback_centisecs=0``): a file written there stays in the
    guest's page cache, and off the virtual disk, until something syncs or
    freezes that file system.
``hvtest.watchdisks``
    Print ``HVTEST: block sda=<sectors> sdb=<sectors> ...`` (the ``sd*``,
    ``vd*`` and ``hd*`` entries of ``/sys/block`` with their sizes in 512-byte
    sectors; just ``HVTEST: block`` when there are none) at once, then again
    whenever that set or a size changes, polled every 0.5 s in the background:
    a hot-added, hot-removed or online-expanded disk shows up on the serial
    console within a second of the guest kernel noticing it.
``hvtest.ping=<addr>[,<addr>...]``
    Ping each address once a second in the background (busybox ``ping``, 1 s
    timeout) and print ``HVTEST: ping <addr> up`` or ``... down`` on the first
    result and whenever it changes.
``hvtest.watchnet``
    Print ``HVTEST: net eth0=<mac>/<rx queues> ...`` (the ``/sys/class/net``
    entries but ``lo``) at once, then whenever that set or a queue count
    changes, polled every 0.5 s: a hot-added adapter or a VMQ queue count shows.
``hvtest.agent``
    Start ``qemu-ga`` on the virtio-serial port ``org.qemu.guest_agent.0``
    (libvirt's guest agent channel). The guest has no udev, so ``/init`` makes
    the ``/dev/virtio-ports/org.qemu.guest_agent.0`` link udev would. qemu-ga
    runs with an fsfreeze hook (``/etc/hvtest/fsfreeze-hook``) that prints the
    ``HVTEST: fsfreeze`` lines and does nothing else (in particular it never
    syncs).

Why a mounted disk: qemu-ga's ``guest-fsfreeze-freeze`` freezes every mounted
file system backed by a block device (it skips the initramfs, tmpfs, proc and
the like, and a tmpfs cannot be frozen anyway), so without ``hvtest.mountdisk``
it freezes nothing and answers 0. With it, a freeze flushes that file system
(``FIFREEZE`` syncs it before blocking writes) while nothing else would: the
strongest observer of a freeze from outside the guest is therefore the disk
image itself, which holds a file written just before only if the guest froze
(or synced) the file system. The hook's lines show that the agent got the
freeze and thaw requests; qemu-ga's own log (``-v``) could not show the thaw,
as the agent stops logging while the file systems are frozen.

Every ``hvtest.<key>=<value>`` word calls the shell function
``hvtest_opt_<key>`` in ``guest_init.sh`` (``.`` and ``-`` in the key become
``_``), in command line order, after the modules are loaded and before
``HVTEST: ready``. New commands are new functions there, documented here.

Typical use::

    guest = build_test_guest()
    qemu = boot_with_qemu(guest, tmp_path / "serial.log")
    try:
        wait_for_serial(qemu.serial_log, "HVTEST: ready", 60, process=qemu)
        qmp_command(qemu.qmp_socket, "system_powerdown")
        qemu.wait(20)
    finally:
        stop_qemu(qemu)
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gzip
import hashlib
import json
import lzma
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

__all__ = [
    "AGENT_BINARY",
    "AGENT_PACKAGE",
    "BUSYBOX_PACKAGE",
    "BUSYBOX_PATH",
    "CACHE_ENV",
    "DEFAULT_CACHE_DIR",
    "DEFAULT_CMDLINE",
    "FSFREEZE_HOOK_SCRIPT",
    "GUEST_MODULES",
    "HOST_LIBRARY_DIRS",
    "INIT_SCRIPT",
    "KERNEL_META_PACKAGE",
    "ElfDependencies",
    "GuestBuildError",
    "QemuProcess",
    "QmpError",
    "TestGuest",
    "boot_with_qemu",
    "build_test_guest",
    "default_cache_dir",
    "elf_dependencies",
    "guest_cache_key",
    "qmp_command",
    "resolve_kernel_package",
    "resolve_module_order",
    "resolve_package_version",
    "shared_library_closure",
    "stop_qemu",
    "wait_for_serial",
]

CACHE_ENV = "HVMANAGER_TEST_CACHE"
"""Environment variable naming the cache directory."""

DEFAULT_CACHE_DIR = Path("/var/cache/hvmanager-tests")
"""Cache directory used when ``$HVMANAGER_TEST_CACHE`` is not set."""

KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
"""Debian meta package whose dependency is the kernel package to use."""

BUSYBOX_PACKAGE = "busybox-static"
"""Debian package that must be installed on the host to provide busybox."""

BUSYBOX_PATH = Path("/bin/busybox")
"""Where ``busybox-static`` installs its (static) binary."""

AGENT_PACKAGE = "qemu-guest-agent"
"""Debian package whose ``qemu-ga`` goes into the initramfs (downloaded, not installed)."""

AGENT_BINARY = "usr/sbin/qemu-ga"
"""Path of the agent in that package, and in the initramfs."""

HOST_LIBRARY_DIRS: tuple[str, ...] = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
)
"""The system search path of Debian's x86-64 dynamic loader, in its order (``ld.so --help``).

The initramfs has no ``ld.so.cache``, so the guest's loader searches exactly
these folders: a library copied to the folder it was found in on the host is
found again in the guest."""

INIT_SCRIPT = Path(__file__).with_name("guest_init.sh")
"""The guest's ``/init``, shipped next to this module."""

GUEST_MODULES: tuple[str, ...] = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "virtio_balloon",
    "virtio_console",
    "sd_mod",
    "sr_mod",
    "ata_piix",
    "ata_generic",
    "button",
    "evdev",
)
"""Kernel modules put in the initramfs (plus their dependencies)."""

DEFAULT_CMDLINE = "console=tty0 console=ttyS0 panic=-1"
"""Default kernel command line; the last ``console=`` makes ttyS0 /dev/console."""

POWER_BUTTON_SCRIPT = """\
#!/bin/busybox sh
# Run by busybox acpid for the ACPI power button (event PWRF/00000080).
echo "HVTEST: acpi power button" >/dev/console
sync
poweroff -f
"""
"""Contents of ``/etc/acpi/PWRF/00000080`` in the guest."""

FSFREEZE_HOOK_PATH = "etc/hvtest/fsfreeze-hook"
"""Where the fsfreeze hook lives in the initramfs (``qemu-ga -F/<path>``)."""

FSFREEZE_HOOK_SCRIPT = """\
#!/bin/busybox sh
# qemu-ga's fsfreeze hook: run with "freeze" just before the agent freezes the
# guest's file systems, and with "thaw" just after it thawed them. qemu-ga
# points our stdout at /dev/null, so write to the console. Never sync here: the
# tests tell from the disk image that the freeze itself flushed the file system.
echo "HVTEST: fsfreeze $1" >/dev/console
"""
"""Contents of the fsfreeze hook in the guest."""

_RECIPE_VERSION = "3"
"""Bump when the initramfs layout changes in a way the cache key misses."""

_MANIFEST = "guest.json"
_KERNEL_FILE = "vmlinuz"
_INITRD_FILE = "initrd.img"
_QEMU_PACKAGE = "qemu-system-x86"


class GuestBuildError(RuntimeError):
    """The test guest could not be built (missing host package, apt failure...)."""


class QmpError(RuntimeError):
    """QEMU answered a QMP command with an error, or the QMP exchange failed."""


@dataclass(frozen=True)
class TestGuest:
    """A bootable test guest: kernel, initramfs and default command line."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    kernel: Path
    """The kernel image (``vmlinuz``), world-readable."""
    initrd: Path
    """The gzip-compressed newc cpio initramfs, world-readable."""
    cmdline: str
    """Kernel command line to boot with (:data:`DEFAULT_CMDLINE`)."""
    version: str
    """Kernel version (``uname -r`` in the guest), e.g. ``6.1.0-56-cloud-amd64``."""

    def with_cmdline(self, *options: str) -> TestGuest:
        """Return a copy whose command line has ``options`` appended.

        Example: ``guest.with_cmdline("hvtest.ip=192.0.2.2/24", "hvtest.tick=0.5")``.
        """
        return dataclasses.replace(self, cmdline=" ".join([self.cmdline, *options]))


# --------------------------------------------------------------------------
# building


def default_cache_dir() -> Path:
    """Return ``$HVMANAGER_TEST_CACHE`` or :data:`DEFAULT_CACHE_DIR`."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else DEFAULT_CACHE_DIR


def guest_cache_key(init_script: bytes | None = None, modules: Sequence[str] = GUEST_MODULES) -> str:
    """Return the short hash naming a guest build (the part after the version).

    It covers the init script (default: the contents of :data:`INIT_SCRIPT`),
    the requested module list, the power button and fsfreeze hook scripts and
    the recipe version (bumped when the layout changes otherwise, e.g. when
    ``qemu-ga`` went in). Package versions are not part of it: a cached guest
    keeps the kernel and agent it was built with (see ``guest.json``).
    """
    if init_script is None:
        init_script = INIT_SCRIPT.read_bytes()
    digest = hashlib.sha256()
    for part in (
        _RECIPE_VERSION.encode(),
        init_script,
        "\n".join(modules).encode(),
        POWER_BUTTON_SCRIPT.encode(),
        FSFREEZE_HOOK_SCRIPT.encode(),
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:16]


def build_test_guest(cache_dir: Path | None = None, *, refresh: bool = False) -> TestGuest:
    """Build the test guest, or return the cached one at once.

    ``cache_dir`` defaults to :func:`default_cache_dir`. A guest already built
    with the current cache key (see :func:`guest_cache_key`) is returned
    without asking apt, even if the mirror has a newer kernel by now; pass
    ``refresh=True`` to resolve the kernel package again and build for it if
    it changed. Concurrent callers are safe: each builds in its own temporary
    directory inside the cache and renames it into place; whoever loses the
    race uses the winner's directory.

    Raises :class:`GuestBuildError` when a host tool, package or library is
    missing, or apt cannot provide the kernel or the guest agent.
    """
    cache = (cache_dir if cache_dir is not None else default_cache_dir()).absolute()
    key = guest_cache_key()
    guests = cache / "guest"
    if not refresh:
        cached = _find_cached_guest(guests, key)
        if cached is not None:
            return cached

    _check_host_tools()
    package, package_version = resolve_kernel_package()
    version = package.removeprefix("linux-image-")
    target = guests / f"{version}-{key}"
    if (target / _MANIFEST).is_file():
        return _load_guest(target)

    _make_dirs(guests)
    _remove_stale_temporaries(cache)
    kernel = _Deb(package, package_version, _download_package(package, package_version, cache / "debs"))
    agent = _download_agent(cache / "debs")
    build_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=guests))
    try:
        with tempfile.TemporaryDirectory(prefix=".extract-", dir=cache) as scratch:
            _build_guest(kernel, agent, Path(scratch), build_dir)
        _make_world_readable(build_dir)
        try:
            build_dir.rename(target)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            # Another builder won the race; its result is equivalent.
    finally:
        if build_dir.exists():
            shutil.rmtree(build_dir)
    return _load_guest(target)


def resolve_kernel_package(meta_package: str = KERNEL_META_PACKAGE) -> tuple[str, str]:
    """Return ``(name, version)`` of the kernel package ``meta_package`` depends on.

    Uses the candidate version's ``Depends`` field from ``apt-cache show``
    (for example ``linux-image-6.1.0-56-cloud-amd64`` ``6.1.192-2``), so the
    kernel version is never hard-coded.
    """
    result = _run(["apt-cache", "show", "--no-all-versions", meta_package])
    depends = _control_field(result.stdout, "Depends")
    for alternative in re.split(r"[,|]", depends or ""):
        match = re.fullmatch(r"\s*(linux-image-\d[^\s(]*)\s*(?:\(\s*=\s*([^\s)]+)\s*\))?\s*", alternative)
        if match:
            name, version = match.group(1), match.group(2)
            if version is None:
                show = _run(["apt-cache", "show", "--no-all-versions", name])
                version = _control_field(show.stdout, "Version")
            if version:
                return name, version
    raise GuestBuildError(
        f"cannot find the kernel package {meta_package} depends on "
        f"(Depends: {depends!r}); run 'apt-get update' first?"
    )


def resolve_package_version(package: str) -> str:
    """Return the candidate version of a Debian package (``apt-cache show``).

    Raises :class:`GuestBuildError` when apt does not know the package.
    """
    result = _run(["apt-cache", "show", "--no-all-versions", package])
    version = _control_field(result.stdout, "Version")
    if not version:
        raise GuestBuildError(f"apt-cache show {package} gave no version; run 'apt-get update' first?")
    return version


@dataclass(frozen=True)
class ElfDependencies:
    """What the dynamic loader needs to run an ELF file."""

    interpreter: str | None
    """The ``PT_INTERP`` path (``/lib64/ld-linux-x86-64.so.2``); None for a library or static binary."""
    needed: tuple[str, ...]
    """The ``DT_NEEDED`` sonames, in order."""
    search_path: tuple[str, ...]
    """``DT_RPATH``/``DT_RUNPATH`` folders (none for Debian's system binaries and libraries)."""


_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 15, 29


def elf_dependencies(data: bytes) -> ElfDependencies:
    """Read the interpreter and ``DT_NEEDED`` entries of a 64-bit little-endian ELF file.

    Uses the program headers (which stripped files keep): ``PT_INTERP``, and
    ``PT_DYNAMIC`` whose string table address is mapped to a file offset
    through the ``PT_LOAD`` segments. Raises :class:`GuestBuildError` for
    anything else than ELF64 little-endian.
    """
    if data[:6] != b"\x7fELF\x02\x01":
        raise GuestBuildError("not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    interpreter: str | None = None
    dynamic: tuple[int, int] | None = None
    loads: list[tuple[int, int, int]] = []
    for index in range(phnum):
        kind, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + index * phentsize
        )
        if kind == _PT_INTERP:
            interpreter = data[offset : offset + filesz].rstrip(b"\0").decode()
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
        elif kind == _PT_LOAD:
            loads.append((vaddr, offset, filesz))
    if dynamic is None:
        return ElfDependencies(interpreter, (), ())
    entries: list[tuple[int, int]] = []
    for position in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, value = struct.unpack_from("<qQ", data, position)
        if tag == _DT_NULL:
            break
        entries.append((tag, value))
    strtab = next((_file_offset(loads, value) for tag, value in entries if tag == _DT_STRTAB), None)
    if strtab is None:
        raise GuestBuildError("ELF dynamic section without a string table")

    def string(index: int) -> str:
        start = strtab + index
        return data[start : data.index(b"\0", start)].decode()

    needed = tuple(string(value) for tag, value in entries if tag == _DT_NEEDED)
    search = tuple(
        folder
        for tag, value in entries
        if tag in (_DT_RPATH, _DT_RUNPATH)
        for folder in string(value).split(":")
        if folder
    )
    return ElfDependencies(interpreter, needed, search)


def _file_offset(loads: Sequence[tuple[int, int, int]], address: int) -> int:
    """Map a virtual address to a file offset through ``(vaddr, offset, filesz)`` segments."""
    for vaddr, offset, filesz in loads:
        if vaddr <= address < vaddr + filesz:
            return address - vaddr + offset
    raise GuestBuildError(f"ELF address {address:#x} is in no loaded segment")


def shared_library_closure(binary: Path, search_dirs: Sequence[str] = HOST_LIBRARY_DIRS) -> dict[str, Path]:
    """Return what the loader needs to run ``binary``: ``{path in the guest: file on the host}``.

    That is the interpreter (at its ``PT_INTERP`` path) and every library named
    by a ``DT_NEEDED`` entry of the binary or of a library already taken, each
    found as the loader would without ``ld.so.cache``: the first of
    ``search_dirs`` holding that name. Raises :class:`GuestBuildError` naming a
    library the host lacks, and for ``RPATH``/``RUNPATH``, which this does not
    follow (Debian's system binaries have none).
    """
    found: dict[str, Path] = {}
    pending: list[tuple[str, str]] = []

    def take(path: Path, label: str) -> None:
        dependencies = elf_dependencies(path.read_bytes())
        if dependencies.search_path:
            raise GuestBuildError(f"{label} has RPATH/RUNPATH {dependencies.search_path}, not supported")
        if dependencies.interpreter and dependencies.interpreter not in found:
            interpreter = Path(dependencies.interpreter)
            if not interpreter.is_file():
                raise GuestBuildError(
                    f"the dynamic loader {interpreter} that {label} needs is not on this host"
                )
            found[dependencies.interpreter] = interpreter
        pending.extend((soname, label) for soname in dependencies.needed)

    take(binary, binary.name)
    resolved: set[str] = set()
    while pending:
        soname, user = pending.pop(0)
        if soname in resolved:
            continue
        resolved.add(soname)
        for folder in search_dirs:
            candidate = Path(folder) / soname
            if candidate.is_file():
                found[str(candidate)] = candidate
                take(candidate, soname)
                break
        else:
            raise GuestBuildError(
                f"{soname}, needed by {user}, is in none of {', '.join(search_dirs)} on this host: "
                "install the Debian package that ships it (dpkg -S or apt-file can tell which)"
            )
    return found


def resolve_module_order(
    modules_dep: str, wanted: Sequence[str], builtin: Collection[str] = ()
) -> list[tuple[str, str]]:
    """Return ``(name, path)`` for ``wanted`` and their dependencies, in load order.

    ``modules_dep`` is the text of the kernel's ``modules.dep`` (paths relative
    to ``/lib/modules/<version>``). Dependencies come before their users, each
    module once. Module names compare with ``-`` and ``_`` alike. A wanted
    module found in ``builtin`` (names, e.g. from ``modules.builtin``) but not
    in ``modules.dep`` is skipped; one found in neither raises
    :class:`GuestBuildError`.
    """
    deps: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for line in modules_dep.splitlines():
        if ":" not in line:
            continue
        head, _, tail = line.partition(":")
        name = _module_name(head)
        paths[name] = head.strip()
        deps[name] = [_module_name(dep) for dep in tail.split()]

    order: list[tuple[str, str]] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise GuestBuildError(f"dependency cycle in modules.dep at {name}")
        visiting.add(name)
        for dep in deps.get(name, ()):
            if dep not in paths:
                raise GuestBuildError(f"modules.dep lists unknown dependency {dep} of {name}")
            visit(dep)
        visiting.discard(name)
        done.add(name)
        order.append((name, paths[name]))

    builtin_names = {_module_name(name) for name in builtin}
    for wanted_name in wanted:
        name = _module_name(wanted_name)
        if name in paths:
            visit(name)
        elif name not in builtin_names:
            raise GuestBuildError(f"kernel module {wanted_name} is neither a module nor built in")
    return order


def _module_name(path: str) -> str:
    """Return the module name of a module path (``kernel/x/virtio-pci.ko.xz`` → ``virtio_pci``)."""
    base = path.strip().rsplit("/", 1)[-1]
    base = re.sub(r"\.ko(\.(xz|gz|zst))?$", "", base)
    return base.replace("-", "_")


def _remove_stale_temporaries(cache: Path, max_age: float = 3600.0) -> None:
    """Delete temporary build folders that a killed builder left behind.

    Only folders older than ``max_age`` seconds are removed, so concurrent
    builders keep theirs.
    """
    now = time.time()
    for pattern in ("guest/.build-*", ".extract-*", "debs/.download-*"):
        for path in cache.glob(pattern):
            with contextlib.suppress(OSError):
                if path.is_dir() and now - path.stat().st_mtime > max_age:
                    shutil.rmtree(path, ignore_errors=True)


def _find_cached_guest(guests: Path, key: str) -> TestGuest | None:
    """Return the newest complete guest in ``guests`` built with ``key``, if any."""
    candidates = [manifest.parent for manifest in guests.glob(f"*-{key}/{_MANIFEST}") if manifest.is_file()]
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: (path / _MANIFEST).stat().st_mtime)
    return _load_guest(newest)


def _load_guest(directory: Path) -> TestGuest:
    """Return the :class:`TestGuest` stored in ``directory``."""
    manifest = json.loads((directory / _MANIFEST).read_text())
    return TestGuest(
        kernel=directory / _KERNEL_FILE,
        initrd=directory / _INITRD_FILE,
        cmdline=DEFAULT_CMDLINE,
        version=str(manifest["version"]),
    )


def _check_host_tools() -> None:
    """Raise :class:`GuestBuildError` naming the package of a missing host tool."""
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", BUSYBOX_PACKAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if "install ok installed" not in status.stdout or not BUSYBOX_PATH.is_file():
        raise GuestBuildError(
            f"the test guest needs a static busybox at {BUSYBOX_PATH}: "
            f"install the Debian package {BUSYBOX_PACKAGE} (apt-get install {BUSYBOX_PACKAGE})"
        )
    for tool, package in (("cpio", "cpio"), ("apt-get", "apt"), ("dpkg", "dpkg")):
        if shutil.which(tool) is None:
            raise GuestBuildError(f"{tool} not found: install the Debian package {package}")


def _download_package(package: str, version: str, debs: Path) -> Path:
    """Return a cached ``.deb`` of ``package`` ``version``, downloading it if needed."""
    stored = debs / f"{package}_{version.replace(':', '%3a')}_amd64.deb"
    if stored.is_file():
        return stored
    _make_dirs(debs)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=debs) as download:
        # apt drops to the _apt user for downloading: let it write here,
        # else it warns and downloads unsandboxed as root.
        with contextlib.suppress(KeyError, PermissionError):
            apt_user = pwd.getpwnam("_apt")
            os.chown(download, apt_user.pw_uid, -1)
        _run(["apt-get", "download", "--quiet", f"{package}={version}"], cwd=Path(download))
        files = sorted(Path(download).glob("*.deb"))
        if len(files) != 1:
            raise GuestBuildError(f"apt-get download {package} left {files}, expected one .deb")
        files[0].chmod(0o644)
        os.replace(files[0], stored)
    return stored


@dataclass(frozen=True)
class _Deb:
    """A downloaded Debian package."""

    package: str
    version: str
    file: Path


def _download_agent(debs: Path) -> _Deb:
    """Return the cached or freshly downloaded ``qemu-guest-agent`` package (candidate version)."""
    try:
        version = resolve_package_version(AGENT_PACKAGE)
        return _Deb(AGENT_PACKAGE, version, _download_package(AGENT_PACKAGE, version, debs))
    except GuestBuildError as exc:
        raise GuestBuildError(
            f"the test guest's QEMU guest agent comes from the Debian package {AGENT_PACKAGE}, "
            f"which apt could not provide (is the Debian mirror reachable?): {exc}"
        ) from exc


def _install_agent(agent: _Deb, scratch: Path, root: Path) -> list[str]:
    """Put ``qemu-ga`` and what it needs to run into the initramfs tree ``root``.

    The binary comes from the package; its loader and libraries from the host
    (see :func:`shared_library_closure`). Returns the guest paths of the
    libraries, sorted, for the manifest.
    """
    tree = scratch / "agent"
    _run(["dpkg", "-x", str(agent.file), str(tree)])
    binary = tree / AGENT_BINARY
    if not binary.is_file():
        raise GuestBuildError(f"{agent.file.name} has no {AGENT_BINARY}")
    libraries = shared_library_closure(binary)
    for guest_path, host_file in (*libraries.items(), (f"/{AGENT_BINARY}", binary)):
        destination = root / guest_path.lstrip("/")
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(host_file, destination)  # the file itself, never a link
        destination.chmod(0o755)  # the kernel runs the loader only if it is executable
    hook = root / FSFREEZE_HOOK_PATH
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(FSFREEZE_HOOK_SCRIPT)
    hook.chmod(0o755)
    return sorted(libraries)


def _build_guest(kernel: _Deb, agent: _Deb, scratch: Path, out: Path) -> None:
    """Extract the packages in ``scratch`` and write kernel, initramfs and manifest to ``out``."""
    deb = kernel.file
    tree = scratch / "deb"
    _run(["dpkg", "-x", str(deb), str(tree)])
    modules_root = _kernel_modules_root(tree)
    version = modules_root.name
    kernels = sorted((tree / "boot").glob(f"vmlinuz-{version}"))
    if not kernels:
        raise GuestBuildError(f"{deb.name} has no boot/vmlinuz-{version}")

    builtin_file = modules_root / "modules.builtin"
    builtin = builtin_file.read_text().split() if builtin_file.is_file() else []
    order = resolve_module_order(_modules_dep(modules_root, GUEST_MODULES), GUEST_MODULES, builtin)

    root = scratch / "initramfs"
    for directory in ("bin", "dev", "etc/acpi/PWRF", "etc/hvtest", "proc", "sys", "tmp", "run"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(BUSYBOX_PATH, root / "bin/busybox")
    (root / "bin/busybox").chmod(0o755)
    shutil.copyfile(INIT_SCRIPT, root / "init")
    (root / "init").chmod(0o755)
    power_button = root / "etc/acpi/PWRF/00000080"
    power_button.write_text(POWER_BUTTON_SCRIPT)
    power_button.chmod(0o755)

    lines = []
    for name, relative in order:
        plain = re.sub(r"\.(xz|gz|zst)$", "", relative)
        destination = root / "lib/modules" / version / plain
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(_read_module(modules_root / relative))
        lines.append(f"{name} {version}/{plain}\n")
    (root / "etc/hvtest/modules").write_text("".join(lines))
    agent_libraries = _install_agent(agent, scratch, root)

    _make_world_readable(root)
    for path in (root, *_walk(root)):  # same input, same archive
        os.utime(path, (0, 0), follow_symlinks=False)
    (out / _INITRD_FILE).write_bytes(gzip.compress(_cpio_newc(root), mtime=0))
    shutil.copyfile(kernels[0], out / _KERNEL_FILE)
    manifest = {
        "version": version,
        "package": kernel.package,
        "package_version": kernel.version,
        "modules": [name for name, _ in order],
        "busybox": _run(["dpkg-query", "-W", "-f=${Version}", BUSYBOX_PACKAGE]).stdout,
        "agent": {"package": agent.package, "version": agent.version, "host_libraries": agent_libraries},
        "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def _kernel_modules_root(tree: Path) -> Path:
    """Return ``lib/modules/<version>`` (or ``usr/lib/...``) of an extracted kernel."""
    for base in ("lib/modules", "usr/lib/modules"):
        found = [path for path in sorted((tree / base).glob("*")) if (path / "kernel").is_dir()]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise GuestBuildError(f"several kernels in the package: {found}")
    raise GuestBuildError("the kernel package has no lib/modules/<version>/kernel")


def _modules_dep(modules_root: Path, wanted: Sequence[str]) -> str:
    """Return ``modules.dep`` text covering ``wanted`` and their dependencies.

    Debian's kernel packages do not ship ``modules.dep`` (``depmod`` makes it
    when the package is installed, and kmod may not even be on the host), so
    unless the package has one, the equivalent lines are made from the
    ``depends=`` entry of each needed module's ``.modinfo`` section.
    """
    shipped = modules_root / "modules.dep"
    if shipped.is_file():
        return shipped.read_text()
    paths = {
        _module_name(path.name): str(path.relative_to(modules_root))
        for path in sorted((modules_root / "kernel").rglob("*.ko*"))
        if re.search(r"\.ko(\.(xz|gz|zst))?$", path.name)
    }
    lines: list[str] = []
    pending = [_module_name(name) for name in wanted]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in paths:
            continue  # a missing one is reported by resolve_module_order
        seen.add(name)
        info = _modinfo(_read_module(modules_root / paths[name]))
        depends = [_module_name(dep) for dep in info.get("depends", "").split(",") if dep]
        missing = [dep for dep in depends if dep not in paths]
        if missing:
            raise GuestBuildError(f"module {name} depends on {missing}, not in the package")
        lines.append(f"{paths[name]}: {' '.join(paths[dep] for dep in depends)}".rstrip())
        pending.extend(depends)
    return "\n".join(lines) + "\n"


def _modinfo(module: bytes) -> dict[str, str]:
    """Return the ``key=value`` entries of a kernel module's ``.modinfo`` ELF section.

    Only 64-bit little-endian ELF (x86-64) is handled. A repeated key keeps
    its first value (fine for ``depends``, which occurs once).
    """
    if module[:6] != b"\x7fELF\x02\x01":
        raise GuestBuildError("kernel module is not a 64-bit little-endian ELF file")
    (shoff,) = struct.unpack_from("<Q", module, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", module, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        """Return (name offset, file offset, size) of section header ``index``."""
        base = shoff + index * shentsize
        (name,) = struct.unpack_from("<I", module, base)
        offset, size = struct.unpack_from("<QQ", module, base + 24)
        return name, offset, size

    _, strtab, _ = section(shstrndx)
    for index in range(shnum):
        name_offset, offset, size = section(index)
        end = module.index(b"\0", strtab + name_offset)
        if module[strtab + name_offset : end] == b".modinfo":
            info: dict[str, str] = {}
            for entry in module[offset : offset + size].split(b"\0"):
                key, sep, value = entry.decode(errors="replace").partition("=")
                if sep:
                    info.setdefault(key, value)
            return info
    return {}


def _read_module(path: Path) -> bytes:
    """Return the uncompressed contents of a kernel module (busybox insmod needs plain .ko)."""
    if path.suffix == ".xz":
        return lzma.decompress(path.read_bytes())
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zst":
        if shutil.which("zstd") is None:
            raise GuestBuildError(f"{path.name} is zstd-compressed: install the Debian package zstd")
        return _run_bytes(["zstd", "-dc", str(path)])
    return path.read_bytes()


def _cpio_newc(root: Path) -> bytes:
    """Return a newc cpio archive of the tree ``root``, every entry owned by root."""
    entries = sorted(str(path.relative_to(root)) for path in _walk(root))
    names = "".join(f"{entry}\0" for entry in entries).encode()
    return _run_bytes(
        [
            "cpio",
            "--create",
            "--format=newc",
            "--null",
            "--owner=0:0",
            "--reproducible",
            "--quiet",
        ],
        cwd=root,
        stdin=names,
    )


def _walk(root: Path) -> Iterator[Path]:
    """Yield every file and directory below ``root`` (not ``root`` itself)."""
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            yield Path(directory, name)


def _make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents with mode 0755 (whatever the umask)."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir()
            directory.chmod(0o755)


def _make_world_readable(root: Path) -> None:
    """chmod ``root`` and its tree: dirs and executables 0755, other files 0644."""
    root.chmod(0o755)
    for path in _walk(root):
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o111
        path.chmod(0o755 if executable else 0o644)


def _control_field(text: str, field: str) -> str | None:
    """Return a field of the first deb822 paragraph of ``text`` (None if absent)."""
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    return None


def _run(args: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a host command, raising :class:`GuestBuildError` with its stderr on failure."""
    try:
        result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{args[0]} not found: {exc}") from exc
    if result.returncode != 0:
        raise GuestBuildError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def _run_bytes(args: Sequence[str], cwd: Path | None = None, stdin: bytes = b"") -> bytes:
    """Like :func:`_run` with binary input and output; return stdout."""
    try:
        result = subprocess.run(list(args), cwd=cwd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{args[0]} not found: {exc}") from exc
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise GuestBuildError(f"{' '.join(args)} failed ({result.returncode}): {stderr}")
    return result.stdout


# --------------------------------------------------------------------------
# booting with a bare QEMU


class QemuProcess(subprocess.Popen[bytes]):
    """A running ``qemu-system-x86_64`` started by :func:`boot_with_qemu`."""

    serial_log: Path
    """The file the guest's ttyS0 is written to."""
    qmp_socket: Path
    """The QMP unix socket (for :func:`qmp_command`)."""
    stderr_log: Path
    """QEMU's own stdout and stderr."""

    def __init__(self, args: Sequence[str], *, serial_log: Path, qmp_socket: Path, stderr_log: Path) -> None:
        """Start QEMU with ``args``; its output goes to ``stderr_log``."""
        self.serial_log = serial_log
        self.qmp_socket = qmp_socket
        self.stderr_log = stderr_log
        with stderr_log.open("wb") as output:
            super().__init__(list(args), stdin=subprocess.DEVNULL, stdout=output, stderr=output)


def boot_with_qemu(
    guest: TestGuest,
    serial_log: Path,
    memory_mib: int = 256,
    extra_args: Sequence[str] = (),
    *,
    qmp_socket: Path | None = None,
) -> QemuProcess:
    """Boot ``guest`` in ``qemu-system-x86_64`` under TCG, without display.

    The guest's serial port is written to ``serial_log``; QEMU's own messages
    go to ``<serial_log>.qemu``. The QMP socket is ``qmp_socket`` (default:
    ``serial_log`` with suffix ``.qmp``; its path must stay under 108 bytes).
    The machine is a ``pc`` with one vCPU, no default devices (so no network)
    and ``-no-reboot`` (a kernel panic or reboot ends QEMU). ``extra_args``
    are appended, e.g. ``("-drive", "file=disk.img,if=virtio,format=raw")``.

    Always end the process with :func:`stop_qemu` (e.g. in a ``finally``).
    """
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        raise FileNotFoundError(f"qemu-system-x86_64 not found: install the Debian package {_QEMU_PACKAGE}")
    serial_log = serial_log.absolute()
    socket_path = (qmp_socket or serial_log.with_suffix(".qmp")).absolute()
    if len(os.fsencode(socket_path)) > 107:
        raise ValueError(f"QMP socket path too long for a unix socket: {socket_path}")
    socket_path.unlink(missing_ok=True)
    serial_log.unlink(missing_ok=True)
    args = [
        qemu,
        "-accel", "tcg",
        "-machine", "pc",
        "-m", str(memory_mib),
        "-smp", "1",
        "-nodefaults",
        "-no-user-config",
        "-display", "none",
        "-no-reboot",
        "-kernel", str(guest.kernel),
        "-initrd", str(guest.initrd),
        "-append", guest.cmdline,
        "-serial", f"file:{_qemu_escape(serial_log)}",
        "-qmp", f"unix:{_qemu_escape(socket_path)},server=on,wait=off",
        *extra_args,
    ]  # fmt: skip
    return QemuProcess(
        args,
        serial_log=serial_log,
        qmp_socket=socket_path,
        stderr_log=serial_log.with_name(serial_log.name + ".qemu"),
    )


def stop_qemu(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """End a QEMU process if it still runs (SIGTERM, then SIGKILL); return its exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def _qemu_escape(path: Path) -> str:
    """Escape a path for a QEMU option value (commas are doubled)."""
    return str(path).replace(",", ",,")


def qmp_command(
    socket_path: Path,
    command: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Run one QMP ``command`` on QEMU's QMP unix socket and return the reply.

    Connects (retrying until ``timeout`` while QEMU creates the socket), reads
    the greeting, negotiates with ``qmp_capabilities`` and sends the command.
    Events arriving meanwhile are skipped. Returns the reply message, e.g.
    ``{"return": {}}`` for ``system_powerdown``; raises :class:`QmpError` for
    an ``error`` reply or a closed connection, TimeoutError when QEMU does not
    answer in time.
    """
    deadline = time.monotonic() + timeout
    sock = _connect_unix(socket_path, deadline)
    with sock, sock.makefile("rwb") as stream:
        greeting = _qmp_read(stream)
        if "QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting: {greeting}")
        _qmp_execute(stream, "qmp_capabilities", None)
        return _qmp_execute(stream, command, arguments)


def _connect_unix(path: Path, deadline: float) -> socket.socket:
    """Connect to a unix stream socket, retrying until ``deadline`` (monotonic)."""
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no QMP server at {path}") from None
            time.sleep(0.05)
        else:
            return sock


def _qmp_execute(stream: Any, command: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """Send one command on an open QMP stream and return its reply (skipping events)."""
    message: dict[str, Any] = {"execute": command}
    if arguments is not None:
        message["arguments"] = dict(arguments)
    stream.write(json.dumps(message).encode() + b"\r\n")
    stream.flush()
    while True:
        reply = _qmp_read(stream)
        if "error" in reply:
            raise QmpError(f"QMP {command} failed: {reply['error']}")
        if "return" in reply:
            return reply


def _qmp_read(stream: Any) -> dict[str, Any]:
    """Read one JSON message (one line) from a QMP stream."""
    line = stream.readline()
    if not line:
        raise QmpError("QMP connection closed")
    message = json.loads(line)
    if not isinstance(message, dict):
        raise QmpError(f"unexpected QMP message: {message!r}")
    return message


# --------------------------------------------------------------------------
# watching the serial port


def wait_for_serial(
    log: Path,
    marker: str,
    timeout: float,
    *,
    process: subprocess.Popen[Any] | None = None,
    poll_interval: float = 0.1,
) -> str:
    """Wait until ``marker`` appears in the serial log file ``log``; return the log text.

    Polls the file (which may not exist yet) every ``poll_interval`` seconds.
    Raises TimeoutError with the last lines of the log after ``timeout``
    seconds, or at once if ``process`` (e.g. QEMU) is given and has exited
    without the marker appearing.
    """
    deadline = time.monotonic() + timeout
    while True:
        text = _read_text(log)
        if marker in text:
            return text
        exited = process is not None and process.poll() is not None
        if exited or time.monotonic() >= deadline:
            reason = (
                f"process exited with {process.returncode}"
                if exited and process is not None
                else f"not seen within {timeout:g} s"
            )
            tail = "\n".join(text.splitlines()[-25:])
            raise TimeoutError(f"{marker!r} {reason} in {log}; last lines:\n{tail}")
        time.sleep(poll_interval)


def _read_text(path: Path) -> str:
    """Return a file's text ('' if it does not exist yet), undecodable bytes replaced."""
    try:
        return path.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return ""
