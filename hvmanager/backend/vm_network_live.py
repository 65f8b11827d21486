"""The running-VM half of adapter changes: hot-plug, hot-unplug, live reconnection and the live
copy of the adapters' metadata, each recording how to undo it.

- Adding: ``attachDeviceFlags(LIVE)``; the guest sees a new PCI device at once.
- Removing: ``detachDeviceFlags(LIVE)``, then waiting until the device is gone from the running
  XML (the guest has to release it: ACPI or PCIe hot-plug).
- Reconnecting: ``updateDeviceFlags(LIVE)``: libvirt moves the tap to the new switch's bridge and
  sets the link state, without the guest noticing more than a link change. An adapter the VM was
  *started* with while "Not connected" (``user`` networking) can't be turned into a switch port
  in place, so it is re-plugged: detached and attached again at the same PCI address, same MAC.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import libvirt

from hvmanager.backend import nic_xml, vm_network_config
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.errors import HvError
from hvmanager.backend.network_models import ADAPTER_NAMESPACE

log = logging.getLogger(__name__)

Undo = Callable[[], None]

DETACH_TIMEOUT_S = 20.0  # PCIe hot-unplug alone waits 5 s for the guest (the attention button)
POLL_INTERVAL_S = 0.1
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


class Steps:
    """Steps done so far, undone in reverse order when a later one fails."""

    def __init__(self) -> None:
        self.undos: list[tuple[str, Undo]] = []

    def add(self, what: str, undo: Undo) -> None:
        """Record how to undo a step that was just done."""
        self.undos.append((what, undo))

    def undo_all(self) -> None:
        """Undo every step, last first (best effort: the caller raises the first error)."""
        for what, step in reversed(self.undos):
            try:
                step()
            except Exception:
                log.exception("undoing a network adapter change failed: %s", what)
        self.undos.clear()


def live_xml(dom: Any) -> str:
    """The running VM's XML."""
    with libvirt_errors(f"Reading the running configuration of '{dom.name()}'"):
        return str(dom.XMLDesc(0))


def _present(dom: Any, mac: str) -> bool:
    return vm_network_config.interface_xml(str(dom.XMLDesc(0)), mac) is not None


def _wait_gone(dom: Any, mac: str) -> None:
    deadline = time.monotonic() + DETACH_TIMEOUT_S
    while _present(dom, mac):
        if time.monotonic() >= deadline:
            raise HvError(
                f"The network adapter {mac} was not removed from the running '{dom.name()}': the guest "
                f"did not release it within {DETACH_TIMEOUT_S:.0f} s.",
                "The guest must support PCI hot-plug (and be running, not in its firmware); or shut the "
                "virtual machine down and remove the adapter then.",
            )
        time.sleep(POLL_INTERVAL_S)


def _detach_now(dom: Any, device: str, mac: str) -> None:
    if _present(dom, mac):
        dom.detachDeviceFlags(device, LIVE)
        _wait_gone(dom, mac)


def _attach_if_missing(dom: Any, device: str, mac: str) -> None:
    if not _present(dom, mac):
        dom.attachDeviceFlags(device, LIVE)


def attach(dom: Any, device: str, mac: str, steps: Steps) -> None:
    """Hot-plug the interface ``device`` (MAC ``mac``) into the running VM."""
    with libvirt_errors(f"Adding the network adapter {mac} to the running '{dom.name()}'"):
        dom.attachDeviceFlags(device, LIVE)
    steps.add(f"unplug {mac}", lambda: _detach_now(dom, device, mac))


def detach(dom: Any, device: str, mac: str, steps: Steps) -> None:
    """Hot-unplug the interface ``device`` (its running XML) and wait until the guest let it go."""
    steps.add(f"plug {mac} back", lambda: _attach_if_missing(dom, device, mac))
    with libvirt_errors(f"Removing the network adapter {mac} from the running '{dom.name()}'"):
        dom.detachDeviceFlags(device, LIVE)
        _wait_gone(dom, mac)


def update(dom: Any, old_device: str, new_device: str, mac: str, steps: Steps) -> None:
    """Change the running interface (switch, link state, bandwidth) in place."""
    with libvirt_errors(f"Changing the network adapter {mac} of the running '{dom.name()}'"):
        dom.updateDeviceFlags(new_device, LIVE)
    steps.add(f"change {mac} back", lambda: dom.updateDeviceFlags(old_device, LIVE))


def replug(dom: Any, old_device: str, new_device: str, mac: str, steps: Steps) -> None:
    """Replace the running interface by ``new_device`` (same MAC and PCI address): for changes
    libvirt can't make in place (from ``user`` networking to a switch)."""
    detach(dom, old_device, mac, steps)
    attach(dom, new_device, mac, steps)


def set_extras(dom: Any, extras: dict[str, nic_xml.AdapterExtras], steps: Steps) -> None:
    """Put the adapters' metadata into the running VM (Get-VMNetworkAdapter reads it from there)."""
    before = vm_network_config.extras_of(str(dom.XMLDesc(0)))
    if before == extras:
        return
    with libvirt_errors(f"Recording the network adapters of the running '{dom.name()}'"):
        _set_metadata(dom, extras)
    steps.add("adapter metadata", lambda: _set_metadata(dom, before))


def _set_metadata(dom: Any, extras: dict[str, nic_xml.AdapterExtras]) -> None:
    dom.setMetadata(
        libvirt.VIR_DOMAIN_METADATA_ELEMENT,
        nic_xml.extras_xml(extras),
        nic_xml.ADAPTER_PREFIX,
        ADAPTER_NAMESPACE,
        LIVE,
    )
