"""Settings ▸ Hardware network pages: Network Adapter and Legacy Network Adapter (Generation 1), as
Hyper-V Manager shows them (the Hardware Acceleration and Advanced Features sub-pages are in
``settings_adapter_subpages``).

A Network Adapter page holds the virtual switch ("Not connected" or a switch of the server), the
VLAN ID and bandwidth management, and Remove; Hardware Acceleration the virtual machine queue
(virtio-net multiqueue here); Advanced Features the MAC address, dynamic (from the server's MAC
address range) or static. The Legacy Network Adapter page (the emulated DEC 21140) has the switch,
the VLAN ID and the MAC address on one page.

Each page shows an ``AdapterSpec`` (``load``) and hands back the spec with its own fields as shown
(``values``); ``settings_network_section.AdapterPages`` ties one adapter's pages together. The rules
(``vmsettings_rules.network_problems``) check the result; the pages only lock what the VM's state
doesn't allow and say why.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend import mac_pool
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.models import VmState
from hvmanager.backend.network_models import NOT_CONNECTED, AdapterSpec, MacRange, SwitchInfo
from hvmanager.backend.vm_network_rules import MAX_MBPS
from hvmanager.backend.vmsettings_rules import LIVE_LEGACY_REASON, LIVE_MAC_REASON, adapters_locked
from hvmanager.ui.settings_pages import SettingsPage, indented, wrapped_label
from hvmanager.ui.settings_storage_pages import page_button, right_aligned

VLAN_DEFAULT = 2  # what Hyper-V Manager proposes when the check box is ticked


def display_mac(mac: str | None) -> str:
    """A MAC address as Hyper-V writes it ("00-15-5D-0A-0B-0C"); "" when there is none yet."""
    return mac.replace(":", "-").upper() if mac else ""


def typed_mac(text: str) -> str | None:
    """What a static MAC field holds: normalized when it is a valid address, as typed otherwise
    (the rules say what is wrong with it), None when empty."""
    if not text.strip():
        return None
    try:
        return mac_pool.normalize_mac(text)
    except ValidationError:
        return text.strip()


@dataclasses.dataclass(frozen=True)
class AdapterRules:
    """What the VM's state (when the window was loaded) lets the pages of one adapter change.

    ``attached`` says the adapter was in the VM when the window opened (not added since). While
    the VM runs, an attached adapter can be reconnected, and its VLAN and bandwidth changed, but
    not its queues or MAC address; legacy adapters can't be added or removed.
    """

    state: VmState
    attached: bool

    def locked(self) -> str | None:
        """Why nothing of the adapter can change now (saved, starting, stopping), or None."""
        return adapters_locked(self.state)

    @property
    def live(self) -> bool:
        """The VM runs or is paused."""
        return self.state in (VmState.RUNNING, VmState.PAUSED)

    def fixed_on_live(self, reason: str) -> str | None:
        """``reason`` when the VM runs and the adapter is attached; else why all is locked."""
        if self.live and self.attached:
            return reason
        return self.locked()


def spin_box(name: str, low: int, high: int, width: int = 90) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(low, high)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    spin.setMinimumWidth(width)
    return spin


def labelled_row(*widgets: QWidget | str) -> QWidget:
    """Widgets (or label texts) in a row, pushed to the left."""
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(QLabel(widget) if isinstance(widget, str) else widget)
    row.addStretch(1)
    return holder


class MacBox(QGroupBox):
    """MAC address: Dynamic (the address the adapter has, from the range) or Static (typed).

    Signals:
        changed(): the choice or the typed address changed.
    """

    changed = Signal()

    def __init__(self, mac_range: MacRange | None, parent: QWidget | None = None) -> None:
        super().__init__("MAC address", parent)
        self.dynamic = QRadioButton("Dynamic")
        self.dynamic.setObjectName("dynamicMacRadio")
        self.static = QRadioButton("Static")
        self.static.setObjectName("staticMacRadio")
        group = QButtonGroup(self)
        group.addButton(self.dynamic)
        group.addButton(self.static)
        self.current = QLineEdit()
        self.current.setObjectName("dynamicMacEdit")
        self.current.setReadOnly(True)
        self.current.setEnabled(False)
        self.current.setPlaceholderText("assigned when applied")
        self.address = QLineEdit()
        self.address.setObjectName("staticMacEdit")
        self.address.setPlaceholderText("00-15-5D-00-00-00")
        for field in (self.current, self.address):
            field.setFixedWidth(170)
        grid = QGridLayout(self)
        grid.addWidget(self.dynamic, 0, 0)
        grid.addWidget(self.current, 0, 1)
        grid.addWidget(self.static, 1, 0)
        grid.addWidget(self.address, 1, 1)
        grid.setColumnStretch(2, 1)
        if mac_range is not None:
            grid.addWidget(
                wrapped_label(
                    "Dynamic addresses come from the MAC address range "
                    f"{display_mac(mac_range.minimum)} to {display_mac(mac_range.maximum)} "
                    "(Virtual Switch Manager ▸ MAC Address Range)."
                ),
                2,
                0,
                1,
                3,
            )
        group.buttonToggled.connect(self._on_toggled)
        self.address.textEdited.connect(lambda _text: self.changed.emit())
        self._editable = True

    def load(self, spec: AdapterSpec) -> None:
        """Show the adapter's address and how it got it (under Dynamic, the address it keeps when
        Dynamic is chosen)."""
        self.current.setText(display_mac(spec.mac))
        self.address.setText("" if spec.dynamic_mac else display_mac(spec.mac))
        with_signals = self.blockSignals(True)
        (self.dynamic if spec.dynamic_mac else self.static).setChecked(True)
        self.blockSignals(with_signals)
        self._update()

    def set_editable(self, editable: bool) -> None:
        """Lock or unlock the choice and the typed address."""
        self._editable = editable
        self._update()

    def mac(self, loaded: AdapterSpec) -> tuple[str | None, bool]:
        """The (address, dynamic) the box shows; a dynamic adapter keeps the address it has."""
        if self.dynamic.isChecked():
            return loaded.mac, True
        return typed_mac(self.address.text()), False

    def _on_toggled(self, button: QRadioButton, checked: bool) -> None:
        if not checked:
            return
        if button is self.static and not self.address.text():
            self.address.setText(self.current.text())  # start from the address it has, as Hyper-V
        self._update()
        self.changed.emit()

    def _update(self) -> None:
        self.dynamic.setEnabled(self._editable)
        self.static.setEnabled(self._editable)
        self.address.setEnabled(self._editable and self.static.isChecked())


class AdapterPage(SettingsPage):
    """Network Adapter (synthetic) or Legacy Network Adapter: the switch, the VLAN ID, bandwidth
    management (synthetic) or the MAC address (legacy), and Remove.

    Signals:
        remove_requested(): Remove was clicked.
    """

    remove_requested = Signal()

    def __init__(
        self,
        spec: AdapterSpec,
        switches: tuple[SwitchInfo, ...],
        mac_range: MacRange | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(
            spec.name,
            "Specify the configuration of the network adapter or remove the network adapter.",
            parent,
        )
        self.legacy = spec.legacy
        self.setObjectName("legacyNetworkAdapterPage" if spec.legacy else "networkAdapterPage")
        self.switch = QComboBox()
        self.switch.setObjectName("switchCombo")
        self._fill_switches(switches, spec.switch)
        self.vlan = QCheckBox("Enable virtual LAN identification")
        self.vlan.setObjectName("vlanCheck")
        self.vlan_id = spin_box("vlanIdSpin", 1, 4094)
        self.bandwidth = QCheckBox("Enable bandwidth management")
        self.bandwidth.setObjectName("bandwidthCheck")
        self.minimum = spin_box("minimumBandwidthSpin", 0, MAX_MBPS, 110)
        self.maximum = spin_box("maximumBandwidthSpin", 0, MAX_MBPS, 110)
        self.mac_box = MacBox(mac_range) if spec.legacy else None
        self.remove_button = page_button("Remove", "removeAdapterButton")
        self._rules = AdapterRules(VmState.OFF, attached=False)
        self._build()
        self._connect()

    def _fill_switches(self, switches: tuple[SwitchInfo, ...], current: str | None) -> None:
        self.switch.addItem(NOT_CONNECTED, None)
        for info in switches:
            self.switch.addItem(info.name, info.name)
            self.switch.setItemData(
                self.switch.count() - 1, f"{info.spec.type.value} switch", Qt.ItemDataRole.ToolTipRole
            )
        if current is not None and self.switch.findData(current) < 0:
            self.switch.addItem(current, current)  # a switch that is gone: keep what the VM has
            self.switch.setItemData(
                self.switch.count() - 1, "This switch does not exist.", Qt.ItemDataRole.ToolTipRole
            )

    def _build(self) -> None:
        self.add(QLabel("Virtual switch:"))
        self.add(self.switch)
        self._layout.addSpacing(6)
        vlan_box = QGroupBox("VLAN ID")
        column = QVBoxLayout(vlan_box)
        column.addWidget(self.vlan)
        column.addWidget(
            wrapped_label(
                "The VLAN identifier specifies the virtual LAN that this virtual machine will use for "
                "all network communications through this network adapter."
            )
        )
        column.addWidget(indented(labelled_row(self.vlan_id)))
        self.add(vlan_box)
        if self.mac_box is not None:
            self.add(self.mac_box)
        else:
            self.add(self._bandwidth_box())
        self._layout.addSpacing(6)
        self.add(wrapped_label("To remove the network adapter from this virtual machine, click Remove."))
        self.add(right_aligned(self.remove_button))
        self.finish()

    def _bandwidth_box(self) -> QGroupBox:
        box = QGroupBox("Bandwidth Management")
        column = QVBoxLayout(box)
        column.addWidget(self.bandwidth)
        column.addWidget(
            wrapped_label(
                "Specify how this network adapter utilizes network bandwidth. Both Minimum Bandwidth "
                "and Maximum Bandwidth are measured in Megabits per second."
            )
        )
        form = QFormLayout()
        form.setContentsMargins(22, 0, 0, 0)
        form.addRow("Minimum bandwidth:", labelled_row(self.minimum, "Mbps"))
        form.addRow("Maximum bandwidth:", labelled_row(self.maximum, "Mbps"))
        column.addLayout(form)
        column.addWidget(
            wrapped_label("To leave the minimum or maximum unrestricted, specify 0 as the value.")
        )
        return box

    def _connect(self) -> None:
        self.switch.activated.connect(lambda _row: self.changed.emit())
        for check in (self.vlan, self.bandwidth):
            check.toggled.connect(self._on_toggled)
        for spin in (self.vlan_id, self.minimum, self.maximum):
            spin.valueChanged.connect(lambda _value: self.changed.emit())
        if self.mac_box is not None:
            self.mac_box.changed.connect(self.changed)
        self.remove_button.clicked.connect(self.remove_requested)

    def load(self, spec: AdapterSpec, rules: AdapterRules) -> None:
        """Show the adapter's settings and lock what ``rules`` don't allow."""
        widgets = (self.switch, self.vlan, self.vlan_id, self.bandwidth, self.minimum, self.maximum)
        for widget in widgets:
            widget.blockSignals(True)
        self.switch.setCurrentIndex(max(self.switch.findData(spec.switch), 0))
        self.vlan.setChecked(spec.vlan_id is not None)
        self.vlan_id.setValue(spec.vlan_id if spec.vlan_id is not None else VLAN_DEFAULT)
        self.bandwidth.setChecked(bool(spec.minimum_mbps or spec.maximum_mbps))
        self.minimum.setValue(spec.minimum_mbps)
        self.maximum.setValue(spec.maximum_mbps)
        for widget in widgets:
            widget.blockSignals(False)
        if self.mac_box is not None:
            self.mac_box.load(spec)
        self._rules = rules
        self._update()

    def _update(self) -> None:
        locked = self._rules.locked()
        editable = locked is None
        self.switch.setEnabled(editable)
        self.vlan.setEnabled(editable)
        self.vlan_id.setEnabled(editable and self.vlan.isChecked())
        self.bandwidth.setEnabled(editable)
        for spin in (self.minimum, self.maximum):
            spin.setEnabled(editable and self.bandwidth.isChecked())
        remove_reason = self._rules.fixed_on_live(LIVE_LEGACY_REASON) if self.legacy else locked
        self.remove_button.setEnabled(remove_reason is None)
        self.remove_button.setToolTip(remove_reason or "")
        mac_reason = self._rules.fixed_on_live(LIVE_MAC_REASON) if self.mac_box is not None else None
        if self.mac_box is not None:
            self.mac_box.set_editable(mac_reason is None)
        notes = [locked] if locked else [r for r in (mac_reason, remove_reason) if r]
        self.note.set_text(" ".join(dict.fromkeys(notes)))

    def _on_toggled(self, _checked: bool) -> None:
        self._update()
        self.changed.emit()

    def summary(self) -> str:
        """The tree's line under the entry: the switch it is connected to."""
        return self.switch.currentText()

    def values(self, spec: AdapterSpec) -> AdapterSpec:
        """``spec`` with the switch, VLAN, bandwidth (and a legacy adapter's MAC) as shown."""
        bandwidth = self.bandwidth.isChecked() and not self.legacy
        spec = dataclasses.replace(
            spec,
            switch=self.switch.currentData(),
            vlan_id=self.vlan_id.value() if self.vlan.isChecked() else None,
            minimum_mbps=self.minimum.value() if bandwidth else 0,
            maximum_mbps=self.maximum.value() if bandwidth else 0,
        )
        if self.mac_box is not None:
            mac, dynamic = self.mac_box.mac(spec)
            spec = dataclasses.replace(spec, mac=mac, dynamic_mac=dynamic)
        return spec
