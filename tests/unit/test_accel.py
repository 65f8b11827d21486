"""The KVM-or-TCG decision, from host facts (these machines can't run KVM guests: proven here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hvmanager.backend import accel
from hvmanager.backend.accel import AccelFacts

USABLE = AccelFacts(
    domcaps_kvm=True,
    local=True,
    dev_kvm=True,
    qemu_user="libvirt-qemu",
    qemu_user_can_open=True,
    kvm_modules=frozenset({"kvm_intel"}),
)


def test_auto_uses_kvm_when_the_host_really_offers_it() -> None:
    decision = accel.decide("auto", USABLE)
    assert decision.domain_type == "kvm" and decision.is_kvm and decision.label == "KVM (hardware)"


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (AccelFacts(domcaps_kvm=False), "does not offer KVM"),
        (AccelFacts(True, True, dev_kvm=False), "/dev/kvm does not exist"),
        (AccelFacts(True, True, True, "libvirt-qemu", qemu_user_can_open=False), "can't open /dev/kvm"),
        (AccelFacts(True, True, True, "libvirt-qemu", True, frozenset({"kvm_pvm"})), "paravirtual variant"),
    ],
)
def test_auto_falls_back_to_tcg_and_says_why(facts: AccelFacts, reason: str) -> None:
    decision = accel.decide("auto", facts)
    assert decision.domain_type == "qemu"
    assert reason in decision.reason
    assert decision.label == "Software emulation (TCG)"


def test_vendor_module_wins_over_paravirtual_variant() -> None:
    facts = AccelFacts(True, True, True, "u", True, frozenset({"kvm_pvm", "kvm_amd"}))
    assert accel.decide("auto", facts).is_kvm


def test_remote_hosts_are_judged_by_their_domain_capabilities() -> None:
    assert accel.decide("auto", AccelFacts(domcaps_kvm=True, local=False)).is_kvm


def test_forced_modes() -> None:
    assert accel.decide("tcg", USABLE).domain_type == "qemu"
    forced = accel.decide("kvm", AccelFacts(domcaps_kvm=False))
    assert forced.domain_type == "kvm" and "although" in forced.reason


def test_qemu_user_from_qemu_conf() -> None:
    assert accel.qemu_user_from_conf('#user = "root"\nuser = "qemu"\n') == "qemu"
    assert accel.qemu_user_from_conf("# nothing\n") == "libvirt-qemu"


def test_user_can_open_reads_mode_bits(tmp_path: Path) -> None:
    device = tmp_path / "kvm"
    device.write_text("")
    os.chmod(device, 0o600)
    assert accel.user_can_open_rw(str(device), "root")  # root may open anything
    assert not accel.user_can_open_rw(str(device), "nobody")
    os.chmod(device, 0o666)
    assert accel.user_can_open_rw(str(device), "nobody")
    assert not accel.user_can_open_rw(str(tmp_path / "missing"), "nobody")


def test_loaded_modules(tmp_path: Path) -> None:
    (tmp_path / "kvm_pvm").mkdir()
    (tmp_path / "kvm").mkdir()
    assert accel.loaded_kvm_modules(tmp_path) == frozenset({"kvm_pvm"})


def test_environment_overrides_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from hvmanager.backend.settings import AppSettings

    settings = AppSettings(accel="kvm")
    monkeypatch.setenv("HVMANAGER_ACCEL", "TCG")
    assert settings.effective_accel() == "tcg"
    monkeypatch.setenv("HVMANAGER_ACCEL", "bogus")
    assert settings.effective_accel() == "auto"
    monkeypatch.delenv("HVMANAGER_ACCEL")
    assert settings.effective_accel() == "kvm"


def test_this_machine_is_detected(libvirtd: str) -> None:
    """On the CI machines KVM is the paravirtual kvm_pvm: auto must choose TCG (if so)."""
    import libvirt

    conn = libvirt.open(libvirtd)
    try:
        facts = accel.probe(conn, local=True)
    finally:
        conn.close()
    decision = accel.decide("auto", facts)
    if "kvm_pvm" in facts.kvm_modules and not facts.kvm_modules & set(accel.VENDOR_MODULES):
        assert decision.domain_type == "qemu"
    assert facts.qemu_user
