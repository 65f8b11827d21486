"""Choosing hardware acceleration (KVM) or software emulation (TCG) for VMs.

KVM is used when the host can really use it: libvirt's domain capabilities offer it and, on the
local machine, the QEMU user can open ``/dev/kvm`` and the loaded KVM module runs ordinary guests
(the paravirtual ``kvm_pvm`` variant boots only kernels built for it). Otherwise VMs run under TCG
with a note saying why. ``HVMANAGER_ACCEL`` or Hyper-V Settings force either one.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KVM_DEVICE = "/dev/kvm"
QEMU_CONF = "/etc/libvirt/qemu.conf"
VENDOR_MODULES = ("kvm_intel", "kvm_amd")
PARAVIRT_MODULES = ("kvm_pvm",)


@dataclass(frozen=True)
class AccelFacts:
    """What the host tells us about KVM."""

    domcaps_kvm: bool
    local: bool = False
    dev_kvm: bool = False
    qemu_user: str = ""
    qemu_user_can_open: bool = False
    kvm_modules: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccelDecision:
    """The domain type to use and why."""

    domain_type: str  # "kvm" or "qemu"
    mode: str  # the requested mode: "auto", "kvm" or "tcg"
    reason: str

    @property
    def is_kvm(self) -> bool:
        """True for hardware acceleration."""
        return self.domain_type == "kvm"

    @property
    def label(self) -> str:
        """The Summary tab's wording."""
        return "KVM (hardware)" if self.is_kvm else "Software emulation (TCG)"


def kvm_problem(facts: AccelFacts) -> str | None:
    """Why KVM can't run ordinary guests on this host, or None when it can."""
    if not facts.domcaps_kvm:
        return "the hypervisor does not offer KVM (no /dev/kvm or no kvm support in QEMU)"
    if not facts.local:
        return None
    if not facts.dev_kvm:
        return f"{KVM_DEVICE} does not exist"
    if not facts.qemu_user_can_open:
        who = facts.qemu_user or "the QEMU user"
        return f"{who} can't open {KVM_DEVICE} (give it group kvm and mode 0660)"
    has_vendor = any(m in facts.kvm_modules for m in VENDOR_MODULES)
    paravirt = sorted(m for m in facts.kvm_modules if m in PARAVIRT_MODULES)
    if paravirt and not has_vendor:
        variant = paravirt[0]
        return f"the host's KVM is the paravirtual variant ({variant}), which boots only kernels built for it"
    return None


def decide(mode: str, facts: AccelFacts, chosen_by: str = "the settings") -> AccelDecision:
    """Pick KVM or TCG for ``mode`` ("auto", "kvm" or "tcg") given the host's facts.

    ``chosen_by`` names where a forced mode comes from (the settings, or ``HVMANAGER_ACCEL``).
    """
    if mode == "tcg":
        return AccelDecision("qemu", mode, f"software emulation was chosen by {chosen_by}")
    if mode == "kvm":
        problem = kvm_problem(facts)
        reason = f"KVM was chosen by {chosen_by}"
        return AccelDecision("kvm", mode, f"{reason}, although {problem}" if problem else reason)
    problem = kvm_problem(facts)
    if problem:
        return AccelDecision("qemu", "auto", f"KVM is not usable: {problem}")
    return AccelDecision("kvm", "auto", "the host offers KVM")


# --- probing the host ---------------------------------------------------------------------------


def qemu_user_from_conf(conf_text: str) -> str:
    """The ``user = "..."`` setting of qemu.conf (Debian's default is libvirt-qemu)."""
    match = re.search(r'^\s*user\s*=\s*"([^"]+)"', conf_text, re.MULTILINE)
    return match.group(1) if match else "libvirt-qemu"


def user_can_open_rw(path: str, user: str) -> bool:
    """Whether ``user`` may open ``path`` for reading and writing, from its mode bits."""
    try:
        info = os.stat(path)
        entry = pwd.getpwnam(user)
    except (OSError, KeyError):
        return False
    if entry.pw_uid == 0:
        return True
    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    if info.st_uid == entry.pw_uid:
        need = stat.S_IRUSR | stat.S_IWUSR
    elif info.st_gid in groups:
        need = stat.S_IRGRP | stat.S_IWGRP
    else:
        need = stat.S_IROTH | stat.S_IWOTH
    return info.st_mode & need == need


def loaded_kvm_modules(sys_module: Path = Path("/sys/module")) -> frozenset[str]:
    """The KVM modules present in the running kernel."""
    names = VENDOR_MODULES + PARAVIRT_MODULES
    return frozenset(n for n in names if (sys_module / n).exists())


def domcaps_offer_kvm(conn: Any) -> bool:
    """Whether libvirt's domain capabilities list the kvm domain type."""
    try:
        xml = conn.getDomainCapabilities(None, "x86_64", None, "kvm", 0)
    except Exception:  # libvirtError: "KVM is not supported by ..."; no libvirt import here
        return False
    return "<domain>kvm</domain>" in xml


def probe(conn: Any, local: bool, session: bool = False) -> AccelFacts:
    """Gather the facts for ``decide`` from a libvirt connection (and the local host)."""
    kvm = domcaps_offer_kvm(conn)
    if not local:
        return AccelFacts(domcaps_kvm=kvm)
    if session:
        user = pwd.getpwuid(os.geteuid()).pw_name
    else:
        try:
            user = qemu_user_from_conf(Path(QEMU_CONF).read_text(encoding="utf-8"))
        except OSError:
            user = "libvirt-qemu"
    return AccelFacts(
        domcaps_kvm=kvm,
        local=True,
        dev_kvm=os.path.exists(KVM_DEVICE),
        qemu_user=user,
        qemu_user_can_open=user_can_open_rw(KVM_DEVICE, user),
        kvm_modules=loaded_kvm_modules(),
    )
