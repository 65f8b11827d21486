"""What virtual switches, network adapters and their live counters are, as plain data.

A Hyper-V virtual switch is a libvirt network here:

- **Private**: a Linux bridge with no host address and no forwarding (VMs of this host only).
- **Internal**: a bridge where the host has an address (optionally DHCP for the VMs); no path out.
- **External**: bound to a host adapter. Sharing it with the management OS makes a host bridge that
  enslaves the adapter and takes over its addresses (libvirt ``<forward mode='bridge'>``); not
  sharing it binds the VMs with macvtap (``<forward mode='bridge'><interface dev=…/>``), which the
  host itself cannot use to reach them.
- **NAT** (Hyper-V's "Default Switch"): libvirt NAT forwarding, with DHCP.

What libvirt's network XML cannot say (the Hyper-V type, notes, the host adapter an external switch
was made from) is kept in the network's ``<metadata>``. A VM's network adapter is a libvirt
``<interface>``; its Hyper-V-only settings (dynamic MAC, VMQ, minimum bandwidth, name) are kept in
the domain's ``<metadata>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

SWITCH_NAMESPACE = "https://hvmanager.dev/xmlns/switch/1"
ADAPTER_NAMESPACE = "https://hvmanager.dev/xmlns/network-adapters/1"
NOT_CONNECTED = "Not connected"
SYNTHETIC_ADAPTER_NAME = "Network Adapter"
LEGACY_ADAPTER_NAME = "Legacy Network Adapter"


class SwitchType(Enum):
    """The connection type of a virtual switch (Get-VMSwitch's SwitchType)."""

    PRIVATE = "Private"
    INTERNAL = "Internal"
    EXTERNAL = "External"
    NAT = "NAT"


@dataclass(frozen=True)
class SwitchSpec:
    """What the user chose for a virtual switch (the Virtual Switch Manager's properties page).

    ``host_adapter`` and ``share_with_host`` are for External switches; ``host_address`` (an IPv4
    interface such as ``"192.168.150.1/24"``) and ``dhcp`` for Internal and NAT ones (NAT always
    has DHCP). ``vlan_id`` is the management OS's VLAN (External and Internal), which needs 802.1Q
    in the host kernel. ``minimum_bandwidth`` can only be chosen when the switch is created: it lets
    adapters reserve a minimum bandwidth on it (``-MinimumBandwidthMode Absolute``).
    """

    name: str
    type: SwitchType
    notes: str = ""
    host_adapter: str | None = None
    share_with_host: bool = True
    host_address: str | None = None
    dhcp: bool = False
    vlan_id: int | None = None
    minimum_bandwidth: bool = False


@dataclass(frozen=True)
class SwitchInfo:
    """A virtual switch as it is on the server: its spec plus libvirt's view of it.

    ``bridge`` is the Linux bridge VMs' taps are enslaved to (None for a macvtap External switch).
    ``managed`` is False for a libvirt network hvmanager did not make (its type is inferred).
    """

    spec: SwitchSpec
    uuid: str
    bridge: str | None
    active: bool
    managed: bool = True

    @property
    def name(self) -> str:
        """The switch's name (the libvirt network's name)."""
        return self.spec.name


@dataclass(frozen=True)
class HostAdapter:
    """A network adapter of the host, as the External switch's adapter list shows it.

    ``bound_to`` names the External switch that already uses it; ``default_route`` is True for the
    adapter carrying the host's default route (binding it needs an explicit confirmation).
    """

    name: str
    mac: str
    addresses: tuple[str, ...]
    up: bool
    default_route: bool
    bound_to: str | None = None


@dataclass(frozen=True)
class MacRange:
    """The range dynamic MAC addresses of new adapters come from (Global Network Settings)."""

    minimum: str
    maximum: str


@dataclass(frozen=True)
class AdapterSpec:
    """One network adapter of a VM (the Settings dialog's Network Adapter page, Get-VMNetworkAdapter).

    ``switch`` is the switch's name, or None for "Not connected". ``mac`` is None for a new adapter
    with a dynamic address (one is taken from the MAC range when it is added); ``dynamic_mac`` tells
    whether the address came from the range. ``legacy`` is the emulated adapter of Generation 1 VMs
    (DEC 21140, QEMU ``tulip``). ``vmq`` with ``queues`` maps to virtio-net multiqueue. Bandwidths
    are in Mbit/s, 0 meaning unset. ``vlan_id`` needs VLAN filtering on the switch's bridge.
    """

    switch: str | None
    mac: str | None = None
    dynamic_mac: bool = True
    legacy: bool = False
    vmq: bool = False
    queues: int = 1
    minimum_mbps: int = 0
    maximum_mbps: int = 0
    vlan_id: int | None = None
    name: str = SYNTHETIC_ADAPTER_NAME

    @property
    def connected_to(self) -> str:
        """The switch name as Hyper-V Manager shows it."""
        return self.switch if self.switch is not None else NOT_CONNECTED


@dataclass(frozen=True)
class PortCounters:
    """Cumulative counters of one switch port (a VM adapter), from the VM's side."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_drops: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_drops: int = 0

    def __add__(self, other: PortCounters) -> PortCounters:
        # Field by field: switch totals add up every port on every tick.
        return PortCounters(
            self.rx_bytes + other.rx_bytes,
            self.rx_packets + other.rx_packets,
            self.rx_errors + other.rx_errors,
            self.rx_drops + other.rx_drops,
            self.tx_bytes + other.tx_bytes,
            self.tx_packets + other.tx_packets,
            self.tx_errors + other.tx_errors,
            self.tx_drops + other.tx_drops,
        )


@dataclass(frozen=True)
class PortRates:
    """Per-second rates of one port between two ticks (None on the first tick)."""

    rx_bytes: float = 0.0
    tx_bytes: float = 0.0
    rx_packets: float = 0.0
    tx_packets: float = 0.0


@dataclass(frozen=True)
class PortStats:
    """Live figures of one switch port: a running VM's network adapter.

    ``device`` is the host-side device (``vnet3`` tap, ``macvtap0``); ``switch`` the switch the
    port is on now (from the device's bridge, so a live reconnection shows at the next tick), or
    None when not connected. ``queues`` is the adapter's queue count (VMQ).
    """

    vm_uuid: str
    vm_name: str
    mac: str
    device: str
    switch: str | None
    counters: PortCounters
    rates: PortRates | None
    queues: int = 1


@dataclass(frozen=True)
class MacEntry:
    """One line of a switch's MAC address table: which MAC is behind which port.

    ``port`` is the bridge port's device; ``vm_name`` the VM owning that port (None for the host's
    own or an outside address); ``local`` is True for the bridge's own addresses.
    """

    mac: str
    port: str
    vm_name: str | None
    local: bool = False


@dataclass(frozen=True)
class SwitchTotals:
    """A switch's totals over its ports (Get-VMSwitchStatistics-like)."""

    switch: str
    ports: int
    counters: PortCounters
    rates: PortRates
