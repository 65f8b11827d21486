"""Settings ▸ Network Adapter's sub-pages: Hardware Acceleration (the virtual machine queue,
virtio-net multiqueue here) and Advanced Features (the MAC address, dynamic or static).

Like the adapter pages, each shows an ``AdapterSpec`` (``load``) and hands back the spec with its
own fields as shown (``values``), locking what a running VM does not allow and saying why.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import QCheckBox, QGroupBox, QVBoxLayout, QWidget

from hvmanager.backend.network_models import AdapterSpec, MacRange
from hvmanager.backend.vm_network_rules import LIVE_QUEUES_REASON, MAX_QUEUES
from hvmanager.backend.vmsettings_rules import LIVE_MAC_REASON
from hvmanager.ui.settings_network_pages import AdapterRules, MacBox, labelled_row, spin_box
from hvmanager.ui.settings_pages import SettingsPage, indented, wrapped_label


class HardwareAccelerationPage(SettingsPage):
    """Hardware Acceleration: the virtual machine queue (virtio-net multiqueue) and its queues."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Hardware Acceleration",
            "Specify networking tasks that can be offloaded to a physical network adapter.",
            parent,
        )
        self.setObjectName("hardwareAccelerationPage")
        self.vmq = QCheckBox("Enable virtual machine queue")
        self.vmq.setObjectName("vmqCheck")
        self.queues = spin_box("queuesSpin", 1, MAX_QUEUES, 70)
        box = QGroupBox("Virtual machine queue")
        column = QVBoxLayout(box)
        column.addWidget(
            wrapped_label(
                "Virtual machine queue gives the adapter several receive and transmit queues, so that "
                "the guest can spread its network traffic over its virtual processors. The guest uses "
                "at most as many queues as it has virtual processors."
            )
        )
        column.addWidget(self.vmq)
        column.addWidget(indented(labelled_row("Number of queues:", self.queues)))
        self.add(box)
        self.finish()
        self.vmq.toggled.connect(self._on_toggled)
        self.queues.valueChanged.connect(lambda _value: self.changed.emit())

    def load(self, spec: AdapterSpec, rules: AdapterRules) -> None:
        """Show the adapter's queue settings; locked on an attached adapter of a running VM."""
        for widget in (self.vmq, self.queues):
            widget.blockSignals(True)
        self.vmq.setChecked(spec.vmq)
        self.queues.setValue(max(spec.queues, 1))
        for widget in (self.vmq, self.queues):
            widget.blockSignals(False)
        reason = rules.fixed_on_live(LIVE_QUEUES_REASON)
        self.vmq.setEnabled(reason is None)
        self.queues.setEnabled(reason is None and spec.vmq)
        self.note.set_text(reason or "")

    def values(self, spec: AdapterSpec) -> AdapterSpec:
        """``spec`` with the queue settings shown."""
        if self.vmq.isChecked():
            return dataclasses.replace(spec, vmq=True, queues=self.queues.value())
        return dataclasses.replace(spec, vmq=False, queues=1)  # no queues without VMQ

    def _on_toggled(self, checked: bool) -> None:
        self.queues.setEnabled(self.vmq.isEnabled() and checked)
        self.changed.emit()


class AdvancedFeaturesPage(SettingsPage):
    """Advanced Features: the MAC address, dynamic or static."""

    def __init__(self, mac_range: MacRange | None, parent: QWidget | None = None) -> None:
        super().__init__("Advanced Features", "Specify the advanced features of the network adapter.", parent)
        self.setObjectName("advancedFeaturesPage")
        self.mac_box = MacBox(mac_range)
        self.add(self.mac_box)
        self.finish()
        self.mac_box.changed.connect(self.changed)

    def load(self, spec: AdapterSpec, rules: AdapterRules) -> None:
        """Show the adapter's MAC address; locked on an attached adapter of a running VM."""
        self.mac_box.load(spec)
        reason = rules.fixed_on_live(LIVE_MAC_REASON)
        self.mac_box.set_editable(reason is None)
        self.note.set_text(reason or "")

    def values(self, spec: AdapterSpec) -> AdapterSpec:
        """``spec`` with the MAC address shown."""
        mac, dynamic = self.mac_box.mac(spec)
        return dataclasses.replace(spec, mac=mac, dynamic_mac=dynamic)
