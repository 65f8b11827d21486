"""The Switch Monitor's tables as Qt models: the ports of a switch and its MAC address table
(``KeyedTableModel``s: updated in place on every tick, never reset), plus the line of the
switch's totals."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from hvmanager.backend.formatting import format_bytes
from hvmanager.backend.network_models import MacEntry, PortStats, SwitchTotals
from hvmanager.views.keyed_table_model import Column, KeyedTableModel, Row
from hvmanager.views.storage_tab import format_rate
from hvmanager.views.traffic_history import PortKey, port_key


def display_mac(mac: str) -> str:
    """A MAC address as Hyper-V Manager writes it: ``00-15-5D-0A-0B-0C``."""
    return mac.upper().replace(":", "-")


def format_packets(per_second: float | None) -> str:
    """Packets per second: whole numbers, one decimal below 10; blank when unknown."""
    if per_second is None:
        return ""
    return f"{per_second:.0f}" if per_second >= 10 or per_second == int(per_second) else f"{per_second:.1f}"


# --- the ports of a switch ---------------------------------------------------------------------

_VM_SIDE = "by the virtual machine, between the last two refreshes"


def _rate(name: str) -> Callable[[PortStats], float]:
    """A rate's raw value for sorting (−1 while unknown)."""
    return lambda row: -1.0 if row.rates is None else float(getattr(row.rates, name))


def _drops(row: PortStats) -> int:
    return row.counters.rx_drops + row.counters.tx_drops


def _errors(row: PortStats) -> int:
    return row.counters.rx_errors + row.counters.tx_errors


# The texts are made by PortTableModel.texts_of (the whole row at once: every tick changes it).
PORT_COLUMNS: tuple[Column[PortStats], ...] = (
    Column("Virtual Machine"),
    Column("Adapter (MAC)"),
    Column("Device", tooltip="The host's device for the adapter (tap or macvtap)"),
    Column("Queues", sort=lambda r: r.queues, tooltip="Queue pairs of the adapter (VMQ)", right_aligned=True),
    Column("Received", sort=_rate("rx_bytes"), tooltip=f"Bytes per second received {_VM_SIDE}",
           right_aligned=True),
    Column("Sent", sort=_rate("tx_bytes"), tooltip=f"Bytes per second sent {_VM_SIDE}", right_aligned=True),
    Column("Packets in/s", sort=_rate("rx_packets"), tooltip=f"Packets per second received {_VM_SIDE}",
           right_aligned=True),
    Column("Packets out/s", sort=_rate("tx_packets"), tooltip=f"Packets per second sent {_VM_SIDE}",
           right_aligned=True),
    Column("Drops", sort=_drops, tooltip="Packets dropped, received and sent, since the VM started",
           right_aligned=True),
    Column("Errors", sort=_errors, tooltip="Packets with errors, received and sent, since the VM started",
           right_aligned=True),
    Column("Received total", sort=lambda r: r.counters.rx_bytes,
           tooltip="Bytes received by the virtual machine since it started", right_aligned=True),
    Column("Sent total", sort=lambda r: r.counters.tx_bytes,
           tooltip="Bytes sent by the virtual machine since it started", right_aligned=True),
)  # fmt: skip


class PortColumn(enum.IntEnum):
    """The ports table's columns, in ``PORT_COLUMNS`` order."""

    VM = 0
    MAC = 1
    DEVICE = 2
    QUEUES = 3
    RX_RATE = 4
    TX_RATE = 5
    RX_PACKETS = 6
    TX_PACKETS = 7
    DROPS = 8
    ERRORS = 9
    RX_TOTAL = 10
    TX_TOTAL = 11


class PortTableModel(KeyedTableModel[PortKey, PortStats]):
    """One row per port (a running VM's adapter) on the shown switch.

    ``colour_of`` gives the colour of the port's curves in the chart: a swatch in the first column
    makes the table the chart's full legend (``refresh_colours`` after the chart changed).
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(PORT_COLUMNS, parent)
        self.colour_of: Callable[[PortKey], QColor | None] = lambda _key: None
        self._colours: dict[PortKey, str] = {}

    def set_ports(self, ports: Sequence[PortStats]) -> None:
        """One tick's ports of the switch."""
        self.set_rows([(port_key(p), p) for p in ports])
        for key in [k for k in self._colours if k not in self._rows]:
            del self._colours[key]

    def refresh_colours(self) -> None:
        """Show each port's chart colour (changed only where it changed)."""
        for key, row in self._rows.items():
            colour = self.colour_of(key)
            name = colour.name() if colour is not None else ""
            if self._colours.get(key) != name:
                self._colours[key] = name
                row.items[PortColumn.VM].setData(colour, Qt.ItemDataRole.DecorationRole)

    def texts_of(self, data: PortStats) -> tuple[str, ...]:
        """The row's texts (written out for speed: every port changes on every tick)."""
        rates, c = data.rates, data.counters
        if rates is None:
            rx = tx = rx_packets = tx_packets = ""
        else:
            rx, tx = format_rate(rates.rx_bytes), format_rate(rates.tx_bytes)
            rx_packets, tx_packets = format_packets(rates.rx_packets), format_packets(rates.tx_packets)
        return (
            data.vm_name, display_mac(data.mac), data.device, str(data.queues), rx, tx, rx_packets,
            tx_packets, str(c.rx_drops + c.tx_drops), str(c.rx_errors + c.tx_errors),
            format_bytes(c.rx_bytes), format_bytes(c.tx_bytes),
        )  # fmt: skip

    def row_shown(self, key: PortKey, row: Row[PortStats], changed: list[int] | None) -> None:
        c = row.data.counters
        if changed is None or PortColumn.DROPS in changed:
            row.items[PortColumn.DROPS].setToolTip(f"received {c.rx_drops}, sent {c.tx_drops}")
        if changed is None or PortColumn.ERRORS in changed:
            row.items[PortColumn.ERRORS].setToolTip(f"received {c.rx_errors}, sent {c.tx_errors}")


# --- the MAC address table ---------------------------------------------------------------------

MacKey = tuple[str, str]  # (mac, port)


def owner_text(entry: MacEntry) -> str:
    """Who is behind a MAC address table entry."""
    if entry.local:
        return "This host (switch's own address)"
    return entry.vm_name or "Outside (learned)"


MAC_COLUMNS: tuple[Column[MacEntry], ...] = (
    Column("MAC Address", lambda e: display_mac(e.mac)),
    Column("Port", lambda e: e.port, tooltip="The bridge port (host device) the address was learned on"),
    Column("Owner", owner_text, tooltip="The VM behind the port, or the host for the switch's own addresses"),
)


class MacTableModel(KeyedTableModel[MacKey, MacEntry]):
    """The switch's MAC address table: which address was seen behind which port."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(MAC_COLUMNS, parent)

    def set_entries(self, entries: Sequence[MacEntry]) -> None:
        """The table as just read from the switch."""
        self.set_rows([((e.mac.lower(), e.port), e) for e in entries])


# --- the totals line ---------------------------------------------------------------------------


def totals_text(totals: SwitchTotals | None) -> str:
    """The switch's totals in one line (what Get-VMSwitchStatistics would sum up)."""
    if totals is None or not totals.ports:
        return "No running virtual machine is connected to this switch."
    rates, counters = totals.rates, totals.counters
    ports = f"{totals.ports} port" + ("s" if totals.ports != 1 else "")
    return (
        f"{ports} · received {format_rate(rates.rx_bytes)} ({format_packets(rates.rx_packets)} packets/s), "
        f"sent {format_rate(rates.tx_bytes)} ({format_packets(rates.tx_packets)} packets/s) · "
        f"total received {format_bytes(counters.rx_bytes)}, sent {format_bytes(counters.tx_bytes)} · "
        f"drops {counters.rx_drops + counters.tx_drops}, errors {counters.rx_errors + counters.tx_errors}"
    )
