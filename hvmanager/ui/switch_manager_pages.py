"""The Virtual Switch Manager's simple pages and the words it uses for switch types.

- ``NewSwitchPage`` ("New virtual network switch"): the four types with a description of the one
  selected, and **Create Virtual Switch**.
- ``MacRangePage`` (Global Network Settings ▸ MAC Address Range): Minimum and Maximum, with the
  number of addresses in between and the default range.

The switch properties page is in ``switch_properties_page``.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QWidget,
)

from hvmanager.backend.network_models import MacRange, SwitchSpec, SwitchType
from hvmanager.controllers.network import NetworkController
from hvmanager.ui.resources import icon
from hvmanager.ui.settings_pages import SettingsPage, wrapped_label

TYPE_ORDER = (SwitchType.EXTERNAL, SwitchType.INTERNAL, SwitchType.PRIVATE, SwitchType.NAT)

TYPE_ICONS = {
    SwitchType.EXTERNAL: "switch-external",
    SwitchType.INTERNAL: "switch-internal",
    SwitchType.PRIVATE: "switch-private",
    SwitchType.NAT: "switch-nat",
}

TYPE_DESCRIPTIONS = {
    SwitchType.EXTERNAL: (
        "Creates a virtual switch that binds to a network adapter of the host, so that virtual "
        "machines can reach the physical network. The host can keep using the adapter through "
        "the switch when it is allowed to share it."
    ),
    SwitchType.INTERNAL: (
        "Creates a virtual switch that can be used only by the virtual machines running on this "
        "server and by the host itself, which gets an address on it. There is no path to the "
        "outside network."
    ),
    SwitchType.PRIVATE: (
        "Creates a virtual switch that can be used only by the virtual machines running on this "
        "server. The host has no address on it and cannot reach them."
    ),
    SwitchType.NAT: (
        "Creates a virtual switch whose virtual machines reach the outside network through the "
        "host's network address translation (Hyper-V's Default Switch). The host has an "
        "address on it and hands out addresses to the virtual machines with DHCP."
    ),
}

NEW_SWITCH_NAME = "New Virtual Switch"


def type_summary(spec: SwitchSpec) -> str:
    """The grey line under a switch's name in the tree (Hyper-V shows the type or the adapter)."""
    if spec.type is SwitchType.EXTERNAL:
        return spec.host_adapter or "External network"
    return {
        SwitchType.INTERNAL: "Internal only",
        SwitchType.PRIVATE: "Private virtual switch",
        SwitchType.NAT: "NAT (Default Switch)",
    }[spec.type]


def unique_new_name(taken: set[str]) -> str:
    """ "New Virtual Switch", or "New Virtual Switch (2)"... when the list has it already."""
    candidates = (NEW_SWITCH_NAME if n == 1 else f"{NEW_SWITCH_NAME} ({n})" for n in range(1, len(taken) + 2))
    return next(name for name in candidates if name not in taken)


def hyperv_mac(mac: str) -> str:
    """``00:15:5d:0a:0b:00`` written as Hyper-V does: ``00-15-5D-0A-0B-00``."""
    return mac.replace(":", "-").upper()


def address_count(mac_range: MacRange) -> int:
    """How many addresses the range holds (0 when it is upside down)."""
    low, high = (
        int(mac.replace(":", "").replace("-", ""), 16) for mac in (mac_range.minimum, mac_range.maximum)
    )
    return max(0, high - low + 1)


class NewSwitchPage(SettingsPage):
    """The "Create virtual switch" page: choose a type, then Create Virtual Switch.

    Signals:
        create_requested(SwitchType): Create Virtual Switch was clicked with this type selected.
    """

    create_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "Create virtual switch", "What type of virtual switch do you want to create?", parent
        )
        self.title = "New virtual network switch"
        self.type_list = QListWidget()
        self.type_list.setObjectName("switchTypeList")
        self.type_list.setIconSize(QSize(24, 24))
        self.type_list.setFixedWidth(150)
        for kind in TYPE_ORDER:
            item = QListWidgetItem(icon(TYPE_ICONS[kind]), kind.value)
            item.setData(Qt.ItemDataRole.UserRole, kind)
            self.type_list.addItem(item)
        self.type_list.setMaximumHeight(self.type_list.sizeHintForRow(0) * len(TYPE_ORDER) + 8)
        self.description = wrapped_label()
        self.description.setObjectName("switchTypeDescription")
        self.description.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.description.setMinimumHeight(90)
        row = QWidget()
        columns = QHBoxLayout(row)
        columns.setContentsMargins(0, 0, 0, 0)
        columns.addWidget(self.type_list, 0, Qt.AlignmentFlag.AlignTop)
        columns.addWidget(self.description, 1)
        self.add(row)
        self.create_button = QPushButton("Create Virtual Switch")
        self.create_button.setObjectName("createSwitchButton")
        self.create_button.setAutoDefault(False)
        button_row = QHBoxLayout()
        button_row.addStretch(1)
        button_row.addWidget(self.create_button)
        self._layout.addLayout(button_row)
        self.finish()
        self.type_list.currentRowChanged.connect(self._describe)
        self.type_list.itemDoubleClicked.connect(lambda _item: self.create_button.click())
        self.create_button.clicked.connect(lambda: self.create_requested.emit(self.chosen_type()))
        self.type_list.setCurrentRow(TYPE_ORDER.index(SwitchType.EXTERNAL))

    def chosen_type(self) -> SwitchType:
        """The type selected in the list."""
        row = self.type_list.currentRow()
        return TYPE_ORDER[row] if row >= 0 else SwitchType.EXTERNAL

    def _describe(self, row: int) -> None:
        self.description.setText(TYPE_DESCRIPTIONS[TYPE_ORDER[row]] if row >= 0 else "")


class MacRangePage(SettingsPage):
    """Global Network Settings ▸ MAC Address Range."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(
            "MAC Address Range",
            "Specify the range of MAC addresses that are assigned dynamically to the network "
            "adapters of virtual machines. New adapters with a dynamic MAC address get the next "
            "free address of this range.",
            parent,
        )
        self.title = "MAC Address Range"
        self.minimum = QLineEdit()
        self.minimum.setObjectName("minimumMacEdit")
        self.maximum = QLineEdit()
        self.maximum.setObjectName("maximumMacEdit")
        for edit in (self.minimum, self.maximum):
            edit.setMaxLength(17)
            edit.setMinimumWidth(170)
            edit.setPlaceholderText("00-15-5D-00-00-00")
            edit.textChanged.connect(self.changed)
        self.count = QLabel()
        self.count.setObjectName("macCountLabel")
        self._loaded: MacRange | None = None
        holder = QWidget()
        form = QFormLayout(holder)
        form.setContentsMargins(12, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.FieldsStayAtSizeHint)
        form.addRow("Minimum:", self.minimum)
        form.addRow("Maximum:", self.maximum)
        form.addRow("Number of addresses:", self.count)
        self.add(holder)
        self.finish()

    def load(self, configured: MacRange, default: MacRange) -> None:
        """Show the configured range; the note gives the default one."""
        self._loaded = configured
        for edit, mac in ((self.minimum, configured.minimum), (self.maximum, configured.maximum)):
            edit.blockSignals(True)
            edit.setText(hyperv_mac(mac))
            edit.blockSignals(False)
        self.note.set_text(
            f"The default range of this host is {hyperv_mac(default.minimum)} to "
            f"{hyperv_mac(default.maximum)} ({address_count(default)} addresses), from its IPv4 address."
        )
        self.follow()

    def parsed(self) -> tuple[MacRange | None, list[str]]:
        """The range typed (None while it can't be read) and what is wrong with it."""
        return NetworkController.parse_mac_range(self.minimum.text(), self.maximum.text())

    def wanted(self) -> MacRange | None:
        """The range to save: a valid one that differs from the range loaded (None otherwise)."""
        typed, problems = self.parsed()
        return typed if self._loaded is not None and typed != self._loaded and not problems else None

    def follow(self) -> tuple[str | None, list[str]]:
        """Show the number of addresses typed; the tree entry's summary (None: keep it) and the
        problems."""
        typed, problems = self.parsed()
        self.count.setText(f"{address_count(typed):,}" if typed is not None else "–")
        if typed is None or problems:
            return None, problems
        return f"{hyperv_mac(typed.minimum)} to {hyperv_mac(typed.maximum)}", []
