"""The host adapter list of an External switch (Virtual Switch Manager ▸ External network).

Every adapter of the host is listed with its addresses; one already bound to another External
switch is greyed out with the switch that uses it (one External switch per host adapter), and the
one carrying the host's default route says so. A new switch proposes the first free adapter that
does not carry the default route: that one is only ever chosen on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QWidget

from hvmanager.backend.network_models import HostAdapter


def adapter_label(adapter: HostAdapter, current: str | None) -> tuple[str, str]:
    """The text of a host adapter for the switch ``current`` and, when it can't be chosen, why."""
    details = ", ".join(adapter.addresses) if adapter.addresses else "no address"
    text = f"{adapter.name} ({details})"
    if adapter.default_route:
        text += " - carries the default route"
    if adapter.bound_to is not None and adapter.bound_to != current:
        reason = f"Already bound to the virtual switch '{adapter.bound_to}'."
        return f"{adapter.name} - used by '{adapter.bound_to}'", reason
    return text, ""


def first_free(adapters: Sequence[HostAdapter], current: str | None) -> int:
    """The row a new External switch proposes (-1: none, the user chooses)."""
    return next(
        (
            row
            for row, adapter in enumerate(adapters)
            if not adapter.default_route and not adapter_label(adapter, current)[1]
        ),
        -1,
    )


class HostAdapterCombo(QComboBox):
    """The host's network adapters; the current item's data is the adapter's name."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("adapterCombo")

    def chosen(self) -> str | None:
        """The adapter chosen (None: none)."""
        data = self.currentData()
        return str(data) if data else None

    def set_adapters(self, adapters: Sequence[HostAdapter], current: str | None, chosen: str | None) -> None:
        """List ``adapters`` for the switch ``current`` (None: a new one) with ``chosen`` selected
        (kept in the list even when the host no longer has it); no signal is emitted."""
        blocked = self.blockSignals(True)
        self.clear()
        model = self.model()
        assert isinstance(model, QStandardItemModel)
        for adapter in adapters:
            text, reason = adapter_label(adapter, current)
            self.addItem(text, adapter.name)
            if reason:
                item = model.item(self.count() - 1)
                item.setEnabled(False)
                item.setToolTip(reason)
        if chosen and chosen not in [adapter.name for adapter in adapters]:
            self.addItem(f"{chosen} (not found on the host)", chosen)
        self.setCurrentIndex(self.findData(chosen) if chosen else first_free(adapters, current))
        self.setPlaceholderText(
            "Choose the host's network adapter"
            if self.count()
            else "This host has no network adapter to bind"
        )
        self.blockSignals(blocked)
