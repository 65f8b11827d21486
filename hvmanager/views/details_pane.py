"""The details pane under the VM list: screen thumbnail and the Summary, Memory, Networking and
Storage tabs of the selected VM, or the summary of the selected checkpoint in their place.

The Networking tab lists the adapters and, while the VM runs, charts each adapter's received and
sent bytes/s over the last minutes (from the server's traffic history, on every stats tick).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.checkpoint_tree import Checkpoint
from hvmanager.backend.formatting import format_created, format_memory
from hvmanager.backend.models import Heartbeat, NicConfig, VmConfig, VmState, VmStats
from hvmanager.backend.network_models import PortStats
from hvmanager.views.storage_tab import StorageTab
from hvmanager.views.switch_monitor_model import display_mac
from hvmanager.views.traffic_chart import TrafficChart
from hvmanager.views.traffic_history import TrafficHistory, port_key

THUMBNAIL_SIZE = (176, 132)
_NETWORK_HEADERS = ["Adapter", "Connected To", "MAC Address", "IP Addresses", "Status"]


def _value_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


class _Form(QWidget):
    """A two-column form of read-only values."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        super().__init__()
        layout = QFormLayout(self)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        layout.setHorizontalSpacing(18)
        self.values: dict[str, QLabel] = {}
        for key, title in fields:
            self.values[key] = _value_label(f"{key}Value")
            layout.addRow(title + ":", self.values[key])

    def set(self, key: str, text: str) -> None:
        """Set one value."""
        self.values[key].setText(text)

    def clear(self) -> None:
        """Blank every value."""
        for label in self.values.values():
            label.clear()


def adapter_label(port: PortStats) -> str:
    """An adapter's name in the Networking tab's chart: its MAC address and its switch."""
    return f"{display_mac(port.mac)} ({port.switch or 'Not connected'})"


class DetailsPane(QGroupBox):
    """Details of the selected VM (title: its name)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailsPane")
        layout = QHBoxLayout(self)
        self.thumbnail = QLabel()
        self.thumbnail.setObjectName("thumbnail")
        self.thumbnail.setFixedSize(*THUMBNAIL_SIZE)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumbnail.setStyleSheet("background: #1b1b1b; color: #c8c8c8; border: 1px solid #8a939e;")
        layout.addWidget(self.thumbnail, 0, Qt.AlignmentFlag.AlignTop)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("detailsTabs")
        self.checkpoint_summary = _Form(
            [
                ("checkpointName", "Name"),
                ("checkpointCreated", "Created"),
                ("checkpointType", "Type"),
                ("checkpointMemory", "Memory"),
                ("checkpointState", "State when taken"),
                ("checkpointParent", "Parent checkpoint"),
            ]
        )
        self.checkpoint_summary.setObjectName("checkpointSummary")
        self.pages = QStackedWidget()
        self.pages.addWidget(self.tabs)
        self.pages.addWidget(self.checkpoint_summary)
        layout.addWidget(self.pages, 1)
        self._vm_title = ""
        self._checkpoint_id: str | None = None
        self.summary = _Form(
            [
                ("state", "State"),
                ("created", "Created"),
                ("generation", "Generation"),
                ("acceleration", "Acceleration"),
                ("heartbeat", "Heartbeat"),
                ("notes", "Notes"),
            ]
        )
        self.memory = _Form(
            [
                ("startup", "Startup Memory"),
                ("dynamic", "Dynamic Memory"),
                ("minimum", "Minimum Memory"),
                ("maximum", "Maximum Memory"),
                ("assigned", "Assigned Memory"),
                ("demand", "Memory Demand"),
            ]
        )
        self.networking = QTableWidget(0, len(_NETWORK_HEADERS))
        self.networking.setObjectName("networkingTable")
        self.networking.setHorizontalHeaderLabels(_NETWORK_HEADERS)
        self.networking.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.networking.verticalHeader().hide()
        self.networking.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.networking_chart = TrafficChart()
        self.networking_chart.setObjectName("networkingChart")
        self.networking_chart.setMinimumHeight(150)
        self.networking_chart.hide()
        networking_tab = QWidget()
        networking_tab.setObjectName("networkingTab")
        networking_layout = QVBoxLayout(networking_tab)
        networking_layout.setContentsMargins(0, 0, 0, 0)
        networking_layout.addWidget(self.networking, 1)
        networking_layout.addWidget(self.networking_chart, 2)
        self.tabs.addTab(self.summary, "Summary")
        self.tabs.addTab(self.memory, "Memory")
        self.tabs.addTab(networking_tab, "Networking")
        self.storage = StorageTab()
        self.tabs.addTab(self.storage, "Storage")
        self._nics: tuple[NicConfig, ...] = ()
        self.clear()

    def clear(self) -> None:
        """Nothing selected."""
        self.show_vm_page()
        self._vm_title = ""
        self.setTitle("")
        self.checkpoint_summary.clear()
        self.summary.clear()
        self.memory.clear()
        self.networking.setRowCount(0)
        self.show_traffic(TrafficHistory(), ())
        self.storage.clear_all()
        self._nics = ()
        self.set_thumbnail(None, None)
        self.tabs.setEnabled(False)

    def show_vm(self, name: str, state: VmState, config: VmConfig | None, accel_text: str) -> None:
        """Show a VM's configuration (``accel_text`` says KVM or TCG, and why)."""
        self.tabs.setEnabled(True)
        self._vm_title = name
        if not self.showing_checkpoint():
            self.setTitle(name)
        self.summary.set("state", state.value)
        if config is None:
            return
        self.summary.set("created", format_created(config.created) or "Unknown")
        self.summary.set("generation", str(config.generation) if config.generation else "Unknown")
        self.summary.set("acceleration", accel_text)
        self.summary.set("notes", config.notes or "None")
        self._show_memory_config(config)
        self._nics = config.nics
        self._show_nics({}, state)
        self.storage.set_drives(config.disks)

    # --- a checkpoint in place of the VM ----------------------------------------------------------

    def show_checkpoint(self, checkpoint: Checkpoint, parent_name: str | None) -> None:
        """Show a checkpoint's summary (title: its name) in place of the VM's tabs."""
        form = self.checkpoint_summary
        form.set("checkpointName", checkpoint.name)
        form.set("checkpointCreated", format_created(checkpoint.created))
        form.set("checkpointType", checkpoint.kind)
        form.set(
            "checkpointMemory",
            "Saved with the checkpoint (applying resumes the VM)"
            if checkpoint.memory
            else "Not saved: disk only (applying leaves the VM off)",
        )
        form.set("checkpointState", checkpoint.vm_state)
        form.set("checkpointParent", parent_name or "None")
        self.pages.setCurrentWidget(form)
        self.setTitle(checkpoint.name)
        self._checkpoint_id = checkpoint.id

    def showing_checkpoint_id(self) -> str | None:
        """The id of the checkpoint shown (None while the VM is shown)."""
        return self._checkpoint_id if self.showing_checkpoint() else None

    def set_checkpoint_screen(self, image: QImage | None) -> None:
        """The screen kept with the shown checkpoint, or a note that there is none."""
        if image is not None and not image.isNull():
            self.set_thumbnail(image, None)
        else:
            self.thumbnail.setPixmap(QPixmap())
            self.thumbnail.setText("No picture")

    def show_vm_page(self) -> None:
        """Back to the VM's tabs."""
        self.pages.setCurrentWidget(self.tabs)
        self.setTitle(self._vm_title)

    def showing_checkpoint(self) -> bool:
        """Whether a checkpoint's summary is shown."""
        return self.pages.currentWidget() is self.checkpoint_summary

    def _show_memory_config(self, config: VmConfig) -> None:
        memory = config.memory
        self.memory.set("startup", format_memory(memory.startup_mib))
        self.memory.set("dynamic", "Enabled" if memory.dynamic else "Disabled")
        self.memory.set("minimum", format_memory(memory.minimum_mib) if memory.dynamic else "")
        self.memory.set("maximum", format_memory(memory.maximum_mib) if memory.dynamic else "")

    def show_stats(self, stats: VmStats | None) -> None:
        """Show live memory figures and each drive's throughput."""
        self.memory.set("assigned", format_memory(stats.assigned_mib) if stats else "")
        self.memory.set("demand", format_memory(stats.demand_mib) if stats else "")
        self.storage.set_throughput(stats.disks if stats else ())

    def show_traffic(self, history: TrafficHistory, ports: Sequence[PortStats]) -> None:
        """Chart the running VM's adapters (``ports``, from the latest tick) from ``history``; the
        chart is hidden while the VM has none (it is off)."""
        self.networking_chart.setVisible(bool(ports))
        self.networking_chart.show_ports(history, [(port_key(p), adapter_label(p)) for p in ports])

    def show_heartbeat(self, heartbeat: Heartbeat | None, state: VmState) -> None:
        """Heartbeat: whether the guest agent answers (None: not known yet)."""
        text = (heartbeat or Heartbeat.NO_CONTACT).value if state.is_active else "Not applicable"
        self.summary.set("heartbeat", text)

    def show_addresses(self, addresses: dict[str, list[str]], state: VmState) -> None:
        """Fill in IP addresses per adapter (by MAC)."""
        self._show_nics(addresses, state)

    def _show_nics(self, addresses: dict[str, list[str]], state: VmState) -> None:
        self.networking.setRowCount(len(self._nics))
        for row, nic in enumerate(self._nics):
            status = "OK" if state.is_active and nic.link_up and nic.source else ""
            cells = [
                "Network Adapter",
                nic.connected_to,
                nic.mac.upper().replace(":", "-"),
                ", ".join(addresses.get(nic.mac.lower(), [])),
                status,
            ]
            for column, text in enumerate(cells):
                self.networking.setItem(row, column, QTableWidgetItem(text))

    def set_thumbnail(self, image: QImage | None, state: VmState | None) -> None:
        """Show the VM's screen, or a note when there is none."""
        if image is not None and not image.isNull():
            scaled = image.scaled(
                *THUMBNAIL_SIZE,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            self.thumbnail.setPixmap(QPixmap.fromImage(scaled))
            return
        self.thumbnail.setPixmap(QPixmap())
        if state is None:
            self.thumbnail.setText("")
        elif state.is_active:
            self.thumbnail.setText("No screen")
        else:
            self.thumbnail.setText(state.value)
