"""Virtual Switch Properties: the page of one switch in the Virtual Switch Manager.

Name and Notes; the connection type (External network with the host adapter and "Allow management
operating system to share this network adapter", Internal network, Private network, NAT); the
host's address on an Internal or NAT switch with DHCP for the VMs; the management OS's VLAN ID
(External and Internal); minimum bandwidth reservation (only when the switch is created); and
Remove. The page only shows and collects a ``SwitchSpec``; the dialog checks and applies it.

The host adapters are listed by ``HostAdapterCombo`` (those bound to another External switch greyed
out, with the switch that uses them).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.network_models import HostAdapter, SwitchSpec, SwitchType
from hvmanager.ui.host_adapter_combo import HostAdapterCombo
from hvmanager.ui.settings_pages import SettingsPage, indented, wrapped_label

VLAN_RANGE = (1, 4094)
DEFAULT_VLAN_ID = 2  # what Hyper-V Manager proposes
_RADIOS = (
    (SwitchType.EXTERNAL, "externalRadio", "External network:"),
    (SwitchType.INTERNAL, "internalRadio", "Internal network"),
    (SwitchType.PRIVATE, "privateRadio", "Private network"),
    (SwitchType.NAT, "natRadio", "NAT network (Default Switch)"),
)
_ADDRESSED = (SwitchType.INTERNAL, SwitchType.NAT)
_VLAN_TYPES = (SwitchType.EXTERNAL, SwitchType.INTERNAL)
UNMANAGED_NOTE = (
    "This virtual network was not made by hvmanager: its type is inferred from its libvirt "
    "definition, and it can't be changed here. It can be removed."
)


class SwitchPropertiesPage(SettingsPage):
    """One switch's properties.

    Signals:
        changed(): a field was edited.
        remove_requested(): Remove was clicked.
    """

    remove_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Virtual Switch Properties", "Name the virtual switch and choose what it connects to.", parent
        )
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("switchNameEdit")
        self.notes_edit = QPlainTextEdit()
        self.notes_edit.setObjectName("switchNotesEdit")
        self.notes_edit.setFixedHeight(54)
        self.type_group = QButtonGroup(self)
        self.radios: dict[SwitchType, QRadioButton] = {}
        self.adapter_combo = HostAdapterCombo()
        self.share_check = QCheckBox("Allow management operating system to share this network adapter")
        self.share_check.setObjectName("shareCheck")
        self.address_edit = QLineEdit()
        self.address_edit.setObjectName("hostAddressEdit")
        self.address_edit.setPlaceholderText("192.168.100.1/24")
        self.address_edit.setMaximumWidth(220)
        self.dhcp_check = QCheckBox("Enable DHCP for virtual machines")
        self.dhcp_check.setObjectName("dhcpCheck")
        self.vlan_check = QCheckBox("Enable virtual LAN identification for management operating system")
        self.vlan_check.setObjectName("vlanCheck")
        self.vlan_spin = QSpinBox()
        self.vlan_spin.setObjectName("vlanSpin")
        self.vlan_spin.setRange(*VLAN_RANGE)
        self.vlan_spin.setFixedWidth(90)
        self.bandwidth_check = QCheckBox("Allow network adapters to reserve a minimum bandwidth")
        self.bandwidth_check.setObjectName("bandwidthCheck")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("removeSwitchButton")
        self.remove_button.setAutoDefault(False)
        self._new = True
        self._managed = True
        self._current: str | None = None
        self._build()
        self._wire()

    # --- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Name:", self.name_edit)
        form.addRow("Notes:", self.notes_edit)
        self._layout.addLayout(form)
        self.add(self._connection_box())
        self.add(self._address_box())
        self.add(self._vlan_box())
        self.add(self._bandwidth_box())
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.remove_button)
        self._layout.addLayout(row)
        self.finish()

    def _connection_box(self) -> QGroupBox:
        box = QGroupBox("Connection type")
        column = QVBoxLayout(box)
        column.addWidget(wrapped_label("What do you want to connect this virtual switch to?"))
        for kind, name, label in _RADIOS:
            radio = QRadioButton(label)
            radio.setObjectName(name)
            self.type_group.addButton(radio)
            self.radios[kind] = radio
            column.addWidget(radio)
            if kind is SwitchType.EXTERNAL:
                column.addWidget(indented(self.adapter_combo, self.share_check))
        return box

    def _address_box(self) -> QGroupBox:
        self.address_box = QGroupBox("Host address (Internal and NAT networks)")
        form = QFormLayout(self.address_box)
        form.addRow(
            wrapped_label("The management operating system's address on the switch, with its prefix length:")
        )
        form.addRow("IPv4 address:", self.address_edit)
        form.addRow(self.dhcp_check)
        return self.address_box

    def _vlan_box(self) -> QGroupBox:
        self.vlan_box = QGroupBox("VLAN ID")
        column = QVBoxLayout(self.vlan_box)
        column.addWidget(self.vlan_check)
        row = QHBoxLayout()
        row.setContentsMargins(22, 0, 0, 0)
        row.addWidget(
            wrapped_label(
                "The VLAN identifier specifies the virtual LAN that the management operating system will use:"
            )
        )
        row.addWidget(self.vlan_spin)
        column.addLayout(row)
        return self.vlan_box

    def _bandwidth_box(self) -> QGroupBox:
        box = QGroupBox("Minimum bandwidth mode")
        column = QVBoxLayout(box)
        column.addWidget(self.bandwidth_check)
        self.bandwidth_note = QLabel()
        self.bandwidth_note.setStyleSheet("color: #5f6b7a;")
        column.addWidget(self.bandwidth_note)
        return box

    def _wire(self) -> None:
        self.name_edit.textChanged.connect(self.changed)
        self.notes_edit.textChanged.connect(self.changed)
        self.type_group.buttonToggled.connect(self._on_type_toggled)
        self.adapter_combo.currentIndexChanged.connect(self.changed)
        self.address_edit.textChanged.connect(self.changed)
        for check in (self.share_check, self.dhcp_check, self.vlan_check, self.bandwidth_check):
            check.toggled.connect(self._on_check_toggled)
        self.vlan_spin.valueChanged.connect(self.changed)
        self.remove_button.clicked.connect(self.remove_requested)

    # --- showing and reading -------------------------------------------------------------------

    def load(
        self, spec: SwitchSpec, adapters: Sequence[HostAdapter], *, new: bool, managed: bool = True
    ) -> None:
        """Show ``spec``; ``new`` for a switch not created yet, ``managed`` False for a libvirt
        network hvmanager did not make (shown read-only)."""
        self._new, self._managed = new, managed
        self._current = None if new else spec.name
        blocked = self.blockSignals(True)
        self.name_edit.setText(spec.name)
        self.notes_edit.setPlainText(spec.notes)
        self.radios[spec.type].setChecked(True)
        self.set_adapters(adapters, spec.host_adapter)
        self.share_check.setChecked(spec.share_with_host)
        self.address_edit.setText(spec.host_address or "")
        self.dhcp_check.setChecked(spec.dhcp or spec.type is SwitchType.NAT)
        self.vlan_check.setChecked(spec.vlan_id is not None)
        self.vlan_spin.setValue(spec.vlan_id if spec.vlan_id is not None else DEFAULT_VLAN_ID)
        self.bandwidth_check.setChecked(spec.minimum_bandwidth)
        self.blockSignals(blocked)
        self.note.set_text("" if managed else UNMANAGED_NOTE)
        self._follow_type()

    def set_adapters(self, adapters: Sequence[HostAdapter], chosen: str | None = None) -> None:
        """List the host adapters (those bound to another switch greyed out), keeping the choice."""
        self.adapter_combo.set_adapters(adapters, self._current, chosen or self.adapter_combo.chosen())

    def chosen_type(self) -> SwitchType:
        """The connection type selected."""
        return next((kind for kind, radio in self.radios.items() if radio.isChecked()), SwitchType.PRIVATE)

    def spec(self) -> SwitchSpec:
        """The switch as the page shows it (fields of other types are left at their defaults)."""
        kind = self.chosen_type()
        external, addressed = kind is SwitchType.EXTERNAL, kind in _ADDRESSED
        adapter = self.adapter_combo.chosen() if external else None
        vlan = self.vlan_check.isChecked() and kind in _VLAN_TYPES
        return SwitchSpec(
            name=self.name_edit.text(),
            type=kind,
            notes=self.notes_edit.toPlainText(),
            host_adapter=adapter,
            share_with_host=self.share_check.isChecked() if external else True,
            host_address=(self.address_edit.text().strip() or None) if addressed else None,
            dhcp=(kind is SwitchType.NAT or self.dhcp_check.isChecked()) if addressed else False,
            vlan_id=self.vlan_spin.value() if vlan else None,
            minimum_bandwidth=self.bandwidth_check.isChecked(),
        )

    # --- behaviour -----------------------------------------------------------------------------

    def _on_type_toggled(self, _button: object, checked: bool) -> None:
        if checked:
            self._follow_type()
            self.changed.emit()

    def _on_check_toggled(self, _checked: bool) -> None:
        self._follow_type()
        self.changed.emit()

    def _follow_type(self) -> None:
        """Enable what the chosen type uses (and nothing of an unmanaged network but Remove)."""
        kind, editable = self.chosen_type(), self._managed
        for widget in (self.name_edit, self.notes_edit, *self.radios.values()):
            widget.setEnabled(editable)
        self.adapter_combo.setEnabled(editable and kind is SwitchType.EXTERNAL)
        self.share_check.setEnabled(editable and kind is SwitchType.EXTERNAL)
        self.address_box.setEnabled(editable and kind in _ADDRESSED)
        self.dhcp_check.setEnabled(kind is SwitchType.INTERNAL)
        if kind is SwitchType.NAT and not self.dhcp_check.isChecked():  # NAT always hands out addresses
            blocked = self.dhcp_check.blockSignals(True)
            self.dhcp_check.setChecked(True)
            self.dhcp_check.blockSignals(blocked)
        self.vlan_box.setEnabled(editable and kind in _VLAN_TYPES)
        self.vlan_spin.setEnabled(self.vlan_check.isChecked())
        self.bandwidth_check.setEnabled(editable and self._new)
        self.bandwidth_note.setText(
            "Can be chosen only when the virtual switch is created."
            if self._new
            else "Chosen when the virtual switch was created; it can't be changed."
        )
