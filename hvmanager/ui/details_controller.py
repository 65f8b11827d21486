"""Keeps the details pane on the selected VM: configuration, live memory figures, heartbeat,
addresses, the adapters' traffic chart and the screen thumbnail (refreshed every few seconds while
the VM runs); or on the selected checkpoint's summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QImage

from hvmanager.backend.accel import AccelDecision
from hvmanager.backend.checkpoint_tree import Checkpoint
from hvmanager.backend.models import Heartbeat, VmConfig, VmStats
from hvmanager.controllers.server import ServerController
from hvmanager.controllers.switch_monitor import traffic_feed
from hvmanager.controllers.tasks import spawn

if TYPE_CHECKING:
    from hvmanager.ui.main_window import MainWindow


class DetailsPresenter(QObject):
    """Feeds the details pane of a ``MainWindow``."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.pane = window.details_pane
        self.uuid: str | None = None
        self._controller: ServerController | None = None
        self._thumb_busy = False
        self._thumb_timer = QTimer(self)
        self._thumb_timer.timeout.connect(self._refresh_thumbnail)

    def show(self, uuid: str | None) -> None:
        """Show a VM (None: clear)."""
        controller = self.window.current
        self._bind(controller)
        changed = uuid != self.uuid
        self.uuid = uuid
        if changed:
            self.pane.show_vm_page()
        if uuid is None or controller is None or uuid not in controller.vms:
            self.pane.clear()
            self._thumb_timer.stop()
            return
        spawn(self._load(controller, uuid))
        state = controller.vms[uuid].state
        if state.is_active:
            self._thumb_timer.start(controller.settings.thumbnail_interval_ms)
            if changed:
                self._refresh_thumbnail()
        else:
            self._thumb_timer.stop()
            if not self.pane.showing_checkpoint():
                self.pane.set_thumbnail(None, state)

    def show_checkpoint(self, checkpoint: Checkpoint | None, parent_name: str | None = None) -> None:
        """Show a checkpoint's summary in place of the VM's tabs (None: back to the VM)."""
        if checkpoint is not None:
            self.pane.show_checkpoint(checkpoint, parent_name)
            self.pane.set_thumbnail(None, None)
            if self._controller is not None and self.uuid is not None:
                spawn(self._checkpoint_screen(self._controller, self.uuid, checkpoint.id))
            return
        if self.pane.showing_checkpoint():
            self.pane.show_vm_page()
            self._refresh_thumbnail_now()

    async def _checkpoint_screen(self, controller: ServerController, uuid: str, checkpoint_id: str) -> None:
        data = await controller.checkpoints.screen(uuid, checkpoint_id)
        if uuid == self.uuid and self.pane.showing_checkpoint_id() == checkpoint_id:
            self.pane.set_checkpoint_screen(QImage.fromData(data) if data else None)

    def _refresh_thumbnail_now(self) -> None:
        controller, uuid = self._controller, self.uuid
        if controller is None or uuid is None or uuid not in controller.vms:
            return
        state = controller.vms[uuid].state
        if state.is_active:
            self._refresh_thumbnail()
        else:
            self.pane.set_thumbnail(None, state)

    def _bind(self, controller: ServerController | None) -> None:
        if controller is self._controller:
            return
        if self._controller is not None:
            self._controller.stats_updated.disconnect(self._on_stats)
            self._controller.config_changed.disconnect(self._on_config_changed)
            self._controller.heartbeat_changed.disconnect(self._on_heartbeat)
            traffic_feed(self._controller).recorded.disconnect(self._on_traffic)
        self._controller = controller
        if controller is not None:
            controller.stats_updated.connect(self._on_stats)
            controller.config_changed.connect(self._on_config_changed)
            controller.heartbeat_changed.connect(self._on_heartbeat)
            # The history is recorded before ``recorded`` fires: the chart draws this very tick.
            traffic_feed(controller).recorded.connect(self._on_traffic)

    async def _load(self, controller: ServerController, uuid: str) -> None:
        config = await controller.config(uuid)
        extra = await controller.details(uuid)
        info = controller.vms.get(uuid)
        if uuid != self.uuid or info is None:
            return  # the selection moved on meanwhile
        accel_text = acceleration_text(config, controller.accel, info.state.is_active)
        self.pane.show_vm(info.name, info.state, config, accel_text)
        self.pane.show_stats(controller.last_stats.get(uuid))
        self._show_traffic(controller, controller.last_stats)
        self.pane.show_heartbeat(extra.get("heartbeat"), info.state)
        self.pane.show_addresses(extra.get("addresses", {}), info.state)

    def _on_stats(self, stats: dict[str, VmStats]) -> None:
        if self.uuid is not None:
            self.pane.show_stats(stats.get(self.uuid))

    def _on_traffic(self, stats: dict[str, VmStats]) -> None:
        if self._controller is not None:
            self._show_traffic(self._controller, stats)

    def _show_traffic(self, controller: ServerController, stats: dict[str, VmStats]) -> None:
        vm = stats.get(self.uuid) if self.uuid is not None else None
        self.pane.show_traffic(traffic_feed(controller).history, vm.ports if vm is not None else ())

    def _on_config_changed(self, uuid: str) -> None:
        if uuid == self.uuid and self._controller is not None:
            spawn(self._load(self._controller, uuid))

    def _on_heartbeat(self, uuid: str, connected: object) -> None:
        if uuid == self.uuid and self._controller is not None and uuid in self._controller.vms:
            beat = Heartbeat.OK if connected else Heartbeat.NO_CONTACT
            self.pane.show_heartbeat(beat, self._controller.vms[uuid].state)

    def _refresh_thumbnail(self) -> None:
        if self._thumb_busy or self.uuid is None or self._controller is None:
            return
        self._thumb_busy = True
        spawn(self._thumbnail(self._controller, self.uuid))

    async def _thumbnail(self, controller: ServerController, uuid: str) -> None:
        try:
            shot = await controller.screenshot(uuid)
        finally:
            self._thumb_busy = False
        if uuid != self.uuid or uuid not in controller.vms or self.pane.showing_checkpoint():
            return
        image = QImage.fromData(shot[1]) if shot else None
        self.pane.set_thumbnail(image, controller.vms[uuid].state)

    def stop(self) -> None:
        """Stop refreshing (the window closes)."""
        self._thumb_timer.stop()


def acceleration_text(config: VmConfig | None, decision: AccelDecision | None, active: bool) -> str:
    """The Summary tab's Acceleration line: what the VM runs with, and why when it is emulated."""
    if config is None:
        return ""
    kvm = config.domain_type == "kvm"
    text = "KVM (hardware)" if kvm else "Software emulation (TCG)"
    if decision is None:
        return text
    if not kvm and not decision.is_kvm:
        text += f": {decision.reason}"
    if not active and config.managed and config.domain_type != decision.domain_type:
        text += f". At its next start: {decision.label} ({decision.reason})"
    return text
