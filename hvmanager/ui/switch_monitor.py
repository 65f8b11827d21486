"""The Switch Monitor window: live counters of one virtual switch of a server.

From top to bottom: the switch selector (with Refresh, for switches made since), the switch's
totals in one line, the chart of every port's received and sent bytes/s over the last 5 minutes,
then side by side the ports table (VM, adapter, device, queues, rates, drops, errors, totals; the
swatch in the first column is the port's colour in the chart) and the switch's MAC address table.
Everything follows the server's stats ticks (1 s by default) through a ``SwitchMonitorController``.

``show_switch_monitor(window, server)`` opens it (one per server and main window), or raises the
one already open.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.network_models import MacEntry, PortStats, SwitchInfo, SwitchTotals
from hvmanager.controllers.server import ServerController
from hvmanager.controllers.switch_monitor import SwitchMonitorController
from hvmanager.views.switch_monitor_model import (
    MacTableModel,
    PortColumn,
    PortTableModel,
    display_mac,
    totals_text,
)
from hvmanager.views.traffic_chart import TrafficChart
from hvmanager.views.traffic_history import PortKey, port_key

WINDOW_SIZE = (1320, 780)
_PORT_WIDTHS = (124, 116, 58, 52, 72, 72, 82, 86, 44, 44, 96, 80)


def port_label(port: PortStats) -> str:
    """A port's name in the chart's legend: its VM and the end of its MAC address."""
    return f"{port.vm_name} (…{display_mac(port.mac)[-8:]})"


def _table(model: PortTableModel | MacTableModel, name: str, sort_column: int) -> QTableView:
    view = QTableView()
    view.setObjectName(name)
    view.setModel(model)
    view.setSortingEnabled(True)  # the model sorts (by raw values) when a header is clicked
    view.sortByColumn(sort_column, Qt.SortOrder.AscendingOrder)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(22)
    view.setWordWrap(False)
    # Fixed, interactive widths: sizing columns to their contents would measure every cell on
    # every tick.
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    return view


class SwitchMonitorWindow(QWidget):
    """Live counters of a switch of ``server`` (a top-level window owned by ``parent``)."""

    def __init__(self, server: ServerController, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("switchMonitor")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setWindowTitle(f"Switch Monitor - {server.title}")
        self.resize(*WINDOW_SIZE)
        self.server = server
        self.controller = SwitchMonitorController(server, self)
        self._wanted: str | None = None  # a switch asked for before the list came
        self._colours_for: tuple[int, bool] | None = None  # the chart's ports the swatches show
        self._labels: dict[PortKey, tuple[str, str]] = {}  # port → (VM name, legend text)
        self._build()
        self.controller.switches_listed.connect(self._on_switches)
        self.controller.ports_updated.connect(self._on_ports)
        self.controller.mac_table_updated.connect(self._on_mac_table)
        self.controller.failed.connect(self._on_failed)
        self.controller.refresh_switches()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        label = QLabel("&Virtual switch:")
        self.switch_combo = QComboBox()
        self.switch_combo.setObjectName("switchCombo")
        self.switch_combo.setMinimumWidth(260)
        self.switch_combo.currentIndexChanged.connect(self._on_switch_chosen)
        label.setBuddy(self.switch_combo)
        self.refresh_button = QPushButton("&Refresh")
        self.refresh_button.setObjectName("refreshButton")
        self.refresh_button.setToolTip("List the server's virtual switches again")
        self.refresh_button.clicked.connect(self.controller.refresh_switches)
        top.addWidget(label)
        top.addWidget(self.switch_combo)
        top.addWidget(self.refresh_button)
        top.addStretch(1)
        layout.addLayout(top)
        self.totals_label = QLabel("Listing the virtual switches…")
        self.totals_label.setObjectName("totalsLabel")
        # Its text changes every tick: plain text (no text document to lay out, so not selectable)
        # and a size of its own (the window is not laid out again) keep that cheap.
        self.totals_label.setTextFormat(Qt.TextFormat.PlainText)
        self.totals_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.totals_label)
        self.message_label = QLabel()
        self.message_label.setObjectName("messageLabel")
        self.message_label.setStyleSheet("color: #a4262c;")
        self.message_label.setWordWrap(True)
        self.message_label.hide()
        layout.addWidget(self.message_label)
        self.chart = TrafficChart()
        self.chart.setObjectName("trafficChart")
        self.chart.setMinimumHeight(220)
        self.port_model = PortTableModel(self)
        self.port_model.colour_of = self.chart.colour_of
        self.ports_table = _table(self.port_model, "portsTable", PortColumn.VM)
        self._follow_rows_in_sight()
        for column, width in enumerate(_PORT_WIDTHS):
            self.ports_table.setColumnWidth(column, width)
        self.mac_model = MacTableModel(self)
        self.mac_table = _table(self.mac_model, "macTable", 1)
        for column, width in enumerate((128, 62)):
            self.mac_table.setColumnWidth(column, width)
        layout.addWidget(self._splitters(), 1)

    def _follow_rows_in_sight(self) -> None:
        """Tell the ports model which rows are in sight whenever that may have changed."""
        table, model = self.ports_table, self.port_model
        table.verticalScrollBar().valueChanged.connect(self._rows_in_sight)
        for signal in (model.rowsInserted, model.rowsRemoved, model.layoutChanged):
            signal.connect(self._rows_in_sight)
        table.viewport().installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and watched is self.ports_table.viewport():
            self._rows_in_sight()
        return super().eventFilter(watched, event)

    def _rows_in_sight(self, *_args: object) -> None:
        table = self.ports_table
        count = self.port_model.rowCount()
        first, last = table.rowAt(0), table.rowAt(table.viewport().height() - 1)
        self.port_model.show_rows(max(first, 0), last if last >= 0 else count - 1)

    def _splitters(self) -> QSplitter:
        ports_box = QGroupBox("Ports")
        QVBoxLayout(ports_box).addWidget(self.ports_table)
        mac_box = QGroupBox("MAC Address Table")
        QVBoxLayout(mac_box).addWidget(self.mac_table)
        tables = QSplitter(Qt.Orientation.Horizontal)
        tables.addWidget(ports_box)
        tables.addWidget(mac_box)
        tables.setStretchFactor(0, 3)
        tables.setStretchFactor(1, 1)
        tables.setSizes([980, 320])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.chart)
        split.addWidget(tables)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 300])
        return split

    # --- choosing the switch ---------------------------------------------------------------------

    def select_switch(self, name: str) -> bool:
        """Show switch ``name`` (once the list has it); False when the list lacks it."""
        index = self.switch_combo.findData(name)
        if index < 0:
            self._wanted = name
            return False
        self.switch_combo.setCurrentIndex(index)
        return True

    def shown_switch(self) -> str | None:
        """The switch shown (None while there is none)."""
        return self.controller.switch

    def _on_switches(self, listed: list[SwitchInfo]) -> None:
        wanted = self._wanted or self.switch_combo.currentData()
        self.switch_combo.blockSignals(True)
        self.switch_combo.clear()
        for info in listed:
            state = "" if info.active else ", not started"
            self.switch_combo.addItem(f"{info.name} ({info.spec.type.value}{state})", info.name)
        self.switch_combo.blockSignals(False)
        if not listed:
            self.controller.show_switch(None)
            self.totals_label.setText("This server has no virtual switch.")
            return
        index = self.switch_combo.findData(wanted)
        if index >= 0:
            self._wanted = None
        self.switch_combo.blockSignals(True)
        self.switch_combo.setCurrentIndex(max(0, index))
        self.switch_combo.blockSignals(False)
        self._show(self.switch_combo.currentData())

    def _on_switch_chosen(self, index: int) -> None:
        """The user chose a switch in the list."""
        self._wanted = None
        self._show(self.switch_combo.itemData(index) if index >= 0 else None)

    def _show(self, name: str | None) -> None:
        self.message_label.hide()
        self._labels.clear()
        self.controller.show_switch(name)

    # --- live figures ----------------------------------------------------------------------------

    def _on_ports(self, ports: list[PortStats], totals: SwitchTotals | None) -> None:
        self.chart.show_ports(self.controller.history, [self._legend_entry(p) for p in ports])
        rows = self.port_model.rowCount()
        self.port_model.set_ports(ports)
        version = (self.chart.ports_version, self.chart.isVisible())
        if version != self._colours_for or rows != self.port_model.rowCount():
            self._colours_for = version
            self.port_model.refresh_colours()  # the swatches: the chart's colours of the ports
        if self.controller.switch is not None:
            self.totals_label.setText(totals_text(totals))

    def _legend_entry(self, port: PortStats) -> tuple[PortKey, str]:
        """A port's key and legend text (kept: the text only changes with the VM's name)."""
        key = port_key(port)
        known = self._labels.get(key)
        if known is None or known[0] != port.vm_name:
            known = self._labels[key] = (port.vm_name, port_label(port))
        return key, known[1]

    def _on_mac_table(self, entries: list[MacEntry]) -> None:
        self.mac_model.set_entries(entries)

    def _on_failed(self, message: str) -> None:
        self.message_label.setText(message)
        self.message_label.show()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.controller.close()
        super().closeEvent(event)


def show_switch_monitor(window: QWidget, server: ServerController) -> SwitchMonitorWindow:
    """Open the Switch Monitor of ``server`` (owned by ``window``), or raise the one open."""
    for monitor in window.findChildren(SwitchMonitorWindow):
        if monitor.server is server:
            monitor.showNormal()
            monitor.raise_()
            monitor.activateWindow()
            return monitor
    monitor = SwitchMonitorWindow(server, window)
    monitor.show()
    return monitor
