"""The steps behind ``vm_network``'s add, remove and change of one adapter, on a VM that is off or
running, each recording its undo in a ``Steps``.

The persistent configuration is edited as a whole (``vm_network_config``) and defined in one call,
whether the VM runs or not; a running VM's devices are changed first (``vm_network_live``), so a
refusal of the running VM leaves its configuration as it was.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import libvirt

from hvmanager.backend import (
    mac_pool,
    nic_xml,
    switches,
    vm_network_config,
    vm_network_live,
    vm_network_slots,
)
from hvmanager.backend.connection import libvirt_errors
from hvmanager.backend.domxml import parse_domain_xml
from hvmanager.backend.errors import InvalidStateError, ValidationError
from hvmanager.backend.network_models import AdapterSpec, MacRange, SwitchInfo
from hvmanager.backend.nic_xml import LIVE_SWITCHABLE_TYPES, AdapterExtras, normalized
from hvmanager.backend.vm_network_live import Steps
from hvmanager.backend.vm_network_rules import LIVE_QUEUES_REASON, adapter_problems

CONFIG_XML_FLAGS = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE


@dataclass
class Vm:
    """What adapter changes need to know about a VM, read once per operation."""

    conn: Any
    dom: Any
    name: str
    running: bool
    persistent: bool
    config: str  # the persistent XML (the running one for a transient VM)
    generation: int | None
    processors: int
    switches: dict[str, SwitchInfo]
    _owners: dict[str, str] | None = None

    @staticmethod
    def read(conn: Any, dom: Any) -> Vm:
        """Read the VM's state and configuration, and the server's switches (blocking)."""
        with libvirt_errors("Reading a virtual machine's configuration"):
            name = str(dom.name())
            running, persistent = bool(dom.isActive()), bool(dom.isPersistent())
            config = str(dom.XMLDesc(CONFIG_XML_FLAGS if persistent else 0))
        parsed = parse_domain_xml(config)
        known = {info.name: info for info in switches.list_switches(conn)}
        return Vm(conn, dom, name, running, persistent, config, parsed.generation, parsed.processors, known)

    def mac_owners(self) -> dict[str, str]:
        """The server's MAC addresses in use and their VMs (read once per operation)."""
        if self._owners is None:
            self._owners = mac_pool.mac_owners(self.conn)
        return self._owners

    def adapters(self) -> tuple[AdapterSpec, ...]:
        """The adapters of the persistent configuration."""
        return vm_network_config.read_adapters(self.config)

    def live(self) -> str:
        """The running VM's XML."""
        return vm_network_live.live_xml(self.dom)

    def floor(self, spec: AdapterSpec) -> bool:
        """Whether the adapter's switch guarantees minimum bandwidth."""
        switch = self.switches.get(spec.switch) if spec.switch is not None else None
        return bool(switch and switch.spec.minimum_bandwidth)

    def define(self, xml: str, steps: Steps) -> None:
        """Define a new persistent configuration (undone by defining the one before)."""
        before = self.config
        with libvirt_errors(f"Saving the network adapters of '{self.name}'"):
            self.conn.defineXML(xml)
        steps.add("configuration", lambda: self.conn.defineXML(before))
        with libvirt_errors(f"Reading the configuration of '{self.name}'"):
            self.config = str(self.dom.XMLDesc(CONFIG_XML_FLAGS))  # with the addresses libvirt gave


# --- checks -------------------------------------------------------------------------------------


def check(vm: Vm, spec: AdapterSpec, others: tuple[AdapterSpec, ...], old_mac: str | None = None) -> None:
    """Refuse ``spec`` beside ``others`` (``ValidationError``), and a MAC address another VM uses."""
    problems = adapter_problems(spec, vm.generation, vm.processors, others, vm.switches)
    if problems:
        raise ValidationError(" ".join(problems))
    if spec.mac and spec.mac != old_mac:
        owner = vm.mac_owners().get(spec.mac)
        if owner is not None and owner != vm.name:
            raise ValidationError(
                f"The MAC address {spec.mac} is already used by the virtual machine '{owner}'."
            )


def with_mac(vm: Vm, spec: AdapterSpec, mac_range: MacRange | None, taken: Iterable[str] = ()) -> AdapterSpec:
    """The spec with its MAC address: a static one normalized, else the next free one of the range."""
    if spec.mac:
        return dataclasses.replace(spec, mac=mac_pool.normalize_mac(spec.mac))
    if mac_range is None:
        from hvmanager.backend.settings import load_settings

        mac_range = mac_pool.configured_range(load_settings())
    mac = mac_pool.next_free_mac(mac_range, set(vm.mac_owners()) | set(taken))
    return dataclasses.replace(spec, mac=mac, dynamic_mac=True)


def _no_slot_refusal(vm: Vm, live: str) -> InvalidStateError:
    where = (
        "every spare PCI Express root port of it is in use"
        if vm_network_slots.is_pcie_machine(live)
        else "every slot of its PCI buses is in use"
    )
    return InvalidStateError(
        f"'{vm.name}' has no free PCI slot for another network adapter while it runs: {where}.",
        "Shut the virtual machine down and add the adapter then: it gets a slot of its own.",
    )


def _legacy_refusal(vm: Vm, what: str) -> InvalidStateError:
    return InvalidStateError(
        f"A legacy network adapter can be {what} only while the virtual machine is off.",
        f"Shut '{vm.name}' down first.",
    )


# --- the three operations -----------------------------------------------------------------------


def add(vm: Vm, spec: AdapterSpec, steps: Steps) -> AdapterSpec:
    """Add the adapter ``spec`` (its MAC address chosen already) to the VM, live when it runs."""
    mac = spec.mac
    assert mac is not None, "a new adapter's MAC address is chosen before it is added"
    check(vm, spec, vm.adapters())
    spec = normalized(spec)
    floor = vm.floor(spec)
    address = _add_live(vm, spec, mac, floor, steps) if vm.running else None
    if vm.persistent:
        if address is not None and not vm_network_slots.address_free(vm.config, address):
            address = None  # taken in the configuration by a device added for the next start
        config = vm.config if address is not None else vm_network_slots.with_room_for_one_more(vm.config)
        vm.define(vm_network_config.with_added(config, spec, floor, address), steps)
    return spec


def _add_live(vm: Vm, spec: AdapterSpec, mac: str, floor: bool, steps: Steps) -> ET.Element | None:
    """Hot-plug the adapter; returns the PCI address it got (for the configuration)."""
    if spec.legacy:
        raise _legacy_refusal(vm, "added")
    live = vm.live()
    if vm_network_slots.free_hotplug_slots(live) == 0:
        raise _no_slot_refusal(vm, live)
    vm_network_live.attach(vm.dom, nic_xml.device_xml(nic_xml.new_interface(spec, floor)), mac, steps)
    live = vm.live()
    extras = vm_network_config.extras_of(live) | {mac: AdapterExtras.of(spec)}
    vm_network_live.set_extras(vm.dom, extras, steps)
    return vm_network_config.interface_address(live, mac)


def remove(vm: Vm, mac: str, steps: Steps) -> None:
    """Remove the adapter with this MAC address from the VM, live when it runs."""
    live = vm.live() if vm.running else None
    live_device = vm_network_config.interface_xml(live, mac) if live is not None else None
    in_config = vm_network_config.interface_xml(vm.config, mac) is not None
    if live_device is None and not in_config:
        raise ValidationError(f"'{vm.name}' has no network adapter with the MAC address {mac}.")
    if live is not None and live_device is not None:
        if any(a.legacy for a in vm_network_config.read_adapters(live) if a.mac == mac):
            raise _legacy_refusal(vm, "removed")
        vm_network_live.detach(vm.dom, live_device, mac, steps)
        extras = vm_network_config.extras_of(live)
        extras.pop(mac, None)
        vm_network_live.set_extras(vm.dom, extras, steps)
    if vm.persistent and in_config:
        vm.define(vm_network_config.with_removed(vm.config, mac), steps)


def change(vm: Vm, mac: str, wanted: AdapterSpec, steps: Steps) -> list[str]:
    """Set the adapter ``mac`` to ``wanted`` (``wanted.mac`` None keeps its address); live too when
    the VM runs. Returns notes about what only the next start applies."""
    current = next((a for a in vm.adapters() if a.mac == mac), None)
    if current is None:
        raise ValidationError(f"'{vm.name}' has no network adapter with the MAC address {mac}.")
    wanted = dataclasses.replace(wanted, mac=mac_pool.normalize_mac(wanted.mac or mac))
    if wanted.legacy != current.legacy:
        raise ValidationError(
            "A network adapter can't become a legacy one or the other way round: remove it and add "
            "the other kind."
        )
    if wanted.mac != mac and vm.running:
        raise InvalidStateError(
            "The MAC address of a network adapter can be changed only while the virtual machine is off.",
            f"Shut '{vm.name}' down first.",
        )
    if vm.running and (wanted.vmq, wanted.queues) != (current.vmq, current.queues):
        raise InvalidStateError(LIVE_QUEUES_REASON, f"Shut '{vm.name}' down first.")
    check(vm, wanted, tuple(a for a in vm.adapters() if a.mac != mac), old_mac=mac)
    wanted = normalized(wanted)
    notes = _change_live(vm, mac, wanted, steps) if vm.running else []
    if vm.persistent:
        vm.define(vm_network_config.with_changed(vm.config, mac, wanted, vm.floor(wanted)), steps)
    return notes


def _change_live(vm: Vm, mac: str, wanted: AdapterSpec, steps: Steps) -> list[str]:
    """Apply to the running adapter what can change live: its switch (or link), bandwidth, name;
    its VLAN stays as the VM started with it until the next start (queues are refused before)."""
    live = vm.live()
    device = vm_network_config.interface_xml(live, mac)
    as_running = next((a for a in vm_network_config.read_adapters(live) if a.mac == mac), None)
    if device is None or as_running is None:
        pending = f"The network adapter {mac} is not in the running virtual machine: it is added at its"
        return [f"{pending} next start."]
    target = dataclasses.replace(
        as_running,
        switch=wanted.switch,
        minimum_mbps=wanted.minimum_mbps,
        maximum_mbps=wanted.maximum_mbps,
        dynamic_mac=wanted.dynamic_mac,
        name=wanted.name,
    )
    floor = vm.floor(target)
    new_device = vm_network_config.changed_interface_xml(live, mac, target, floor, live_disconnect=True)
    notes = []
    if new_device is not None and new_device != device:
        if (
            target.switch is not None
            and vm_network_config.interface_type(live, mac) not in LIVE_SWITCHABLE_TYPES
        ):
            vm_network_live.replug(vm.dom, device, new_device, mac, steps)
            notes.append(
                f"The network adapter '{wanted.name}' was plugged in again to connect it: the running "
                "virtual machine had started with it not connected, and the guest saw it removed and "
                "added."
            )
        else:
            vm_network_live.update(vm.dom, device, new_device, mac, steps)
    extras = vm_network_config.extras_of(vm.live()) | {mac: AdapterExtras.of(target)}
    vm_network_live.set_extras(vm.dom, extras, steps)
    if as_running.vlan_id != wanted.vlan_id:
        notes.append(
            f"The VLAN of the network adapter '{wanted.name}' takes effect when '{vm.name}' starts next."
        )
    return notes
