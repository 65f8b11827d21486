"""The network part of the VM Settings dialog: one tree entry per network adapter (its summary is the
switch it is connected to), with Hardware Acceleration and Advanced Features under a synthetic one,
and the adapters Add Hardware adds.

``NetworkSection`` owns the adapters' pages and the adapters they show together. It adds and
removes adapters when Add Hardware and the Remove buttons ask, then tells the dialog (``rebuilt``)
which page to show once the dialog has rebuilt the tree from ``entries()``; pages taken out are
handed to the dialog (``take_discarded``) to remove from its stack. The adapters keep the order
loaded, new ones last, so that an untouched window gives back exactly the adapters it was given.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from hvmanager.backend.models import VmState
from hvmanager.backend.network_models import LEGACY_ADAPTER_NAME, AdapterSpec, MacRange, SwitchInfo
from hvmanager.backend.vm_network_rules import MAX_LEGACY, MAX_SYNTHETIC
from hvmanager.backend.vmsettings_rules import LIVE_LEGACY_REASON, NetworkSettings, adapters_locked
from hvmanager.ui.settings_adapter_subpages import AdvancedFeaturesPage, HardwareAccelerationPage
from hvmanager.ui.settings_network_pages import AdapterPage, AdapterRules
from hvmanager.ui.settings_pages import SettingsPage
from hvmanager.ui.settings_storage_pages import AddHardwarePage

Entry = tuple[AdapterPage, list[SettingsPage]]


class AdapterPages:
    """One adapter's pages: the adapter page and, for a synthetic adapter, its two sub-pages.

    ``loaded`` is the adapter as the window got it (or as Add Hardware made it): what the pages
    don't show (its name) comes from there.
    """

    def __init__(
        self,
        spec: AdapterSpec,
        rules: AdapterRules,
        switches: tuple[SwitchInfo, ...],
        mac_range: MacRange | None,
    ) -> None:
        self.loaded, self.rules = spec, rules
        self.page = AdapterPage(spec, switches, mac_range)
        self.acceleration = None if spec.legacy else HardwareAccelerationPage()
        self.advanced = None if spec.legacy else AdvancedFeaturesPage(mac_range)
        self.page.load(spec, rules)
        for sub in (self.acceleration, self.advanced):
            if sub is not None:
                sub.load(spec, rules)

    def pages(self) -> list[SettingsPage]:
        """The adapter page, then its sub-pages."""
        subs = [page for page in (self.acceleration, self.advanced) if page is not None]
        return [self.page, *subs]

    def sub_pages(self) -> list[SettingsPage]:
        """The sub-pages (none for a legacy adapter)."""
        return self.pages()[1:]

    def spec(self) -> AdapterSpec:
        """The adapter as its pages show it."""
        spec = self.page.values(self.loaded)
        if self.acceleration is not None:
            spec = self.acceleration.values(spec)
        if self.advanced is not None:
            spec = self.advanced.values(spec)
        return spec


def new_adapter(legacy: bool) -> AdapterSpec:
    """The adapter Add Hardware adds: not connected, with a dynamic MAC address."""
    if legacy:
        return AdapterSpec(None, legacy=True, name=LEGACY_ADAPTER_NAME)
    return AdapterSpec(None)


class NetworkSection(QObject):
    """The network adapter pages of one Settings window and the adapters they show.

    Signals:
        changed(): an adapter setting was edited (re-check, update the summaries).
        rebuilt(QWidget): an adapter was added or removed: rebuild the tree from ``entries()`` and
            show this page.
    """

    changed = Signal()
    rebuilt = Signal(object)

    def __init__(self, generation: int, add_hardware: AddHardwarePage, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._add_hardware = add_hardware
        add_hardware.offer_adapters(legacy=generation == 1)
        add_hardware.add_adapter_requested.connect(self._on_add)
        self._network = NetworkSettings(())
        self._state = VmState.OFF
        self._adapters: list[AdapterPages] = []
        self._discarded: list[QWidget] = []

    # --- loading and reading -------------------------------------------------------------------

    def load(self, network: NetworkSettings, state: VmState) -> None:
        """Show the adapters of ``network`` for a VM in ``state``; each one counts as attached."""
        self._network, self._state = network, state
        for adapter in self._adapters:
            self._discarded += adapter.pages()
        self._adapters = [self._make(spec, attached=True) for spec in network.adapters]
        self._refresh()

    def adapters(self) -> tuple[AdapterSpec, ...]:
        """The adapters as the pages show them, in tree order."""
        return tuple(adapter.spec() for adapter in self._adapters)

    def entries(self) -> list[Entry]:
        """Every adapter page in tree order, each with its sub-pages."""
        return [(adapter.page, adapter.sub_pages()) for adapter in self._adapters]

    def pages(self) -> list[SettingsPage]:
        """Every network page."""
        return [page for adapter in self._adapters for page in adapter.pages()]

    def take_discarded(self) -> list[QWidget]:
        """The pages taken out since the last call (for the dialog to remove and delete)."""
        discarded, self._discarded = self._discarded, []
        return discarded

    def key_of(self, page: QWidget) -> tuple[int, int] | None:
        """Where a page sits: (the adapter's position, the page's position among its pages); None
        for other pages."""
        for number, adapter in enumerate(self._adapters):
            if page in adapter.pages():
                return number, adapter.pages().index(page)
        return None

    def page_for(self, key: tuple[int, int] | None) -> SettingsPage | None:
        """The page at ``key`` (see ``key_of``), if there is one."""
        if key is None or key[0] >= len(self._adapters):
            return None
        pages = self._adapters[key[0]].pages()
        return pages[key[1]] if key[1] < len(pages) else None

    # --- building and changing -----------------------------------------------------------------

    def _make(self, spec: AdapterSpec, attached: bool) -> AdapterPages:
        network = self._network
        adapter = AdapterPages(spec, AdapterRules(self._state, attached), network.switches, network.mac_range)
        for page in adapter.pages():
            page.changed.connect(self.changed)
        adapter.page.remove_requested.connect(lambda: self._on_remove(adapter))
        return adapter

    def _refresh(self) -> None:
        """Tell Add Hardware whether an adapter, or a legacy one, can be added now."""
        locked = adapters_locked(self._state)
        legacy = sum(adapter.loaded.legacy for adapter in self._adapters)
        synthetic = len(self._adapters) - legacy
        synthetic_reason = locked
        if synthetic_reason is None and synthetic >= MAX_SYNTHETIC:
            synthetic_reason = (
                f"This virtual machine already has {MAX_SYNTHETIC} network adapters, the most "
                "a virtual machine can have."
            )
        legacy_reason = locked
        if legacy_reason is None and self._state is not VmState.OFF:
            legacy_reason = LIVE_LEGACY_REASON
        if legacy_reason is None and legacy >= MAX_LEGACY:
            legacy_reason = (
                f"This virtual machine already has {MAX_LEGACY} legacy network adapters, the "
                "most a virtual machine can have."
            )
        self._add_hardware.set_adapter_reasons(synthetic_reason, legacy_reason)

    def _changed_to(self, page: QWidget) -> None:
        self._refresh()
        self.rebuilt.emit(page)
        self.changed.emit()

    def _on_add(self, legacy: bool) -> None:
        adapter = self._make(new_adapter(legacy), attached=False)
        self._adapters.append(adapter)
        self._changed_to(adapter.page)

    def _on_remove(self, adapter: AdapterPages) -> None:
        if adapter not in self._adapters:
            return
        number = self._adapters.index(adapter)
        self._adapters.remove(adapter)
        self._discarded += adapter.pages()
        previous = self._adapters[number - 1].page if number > 0 else self._add_hardware
        self._changed_to(previous)
