"""The main window, laid out as Hyper-V Manager: servers on the left, the VM list above the
Checkpoints and details panes in the middle, the Actions pane on the right.
"""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QPoint, QSortFilterProxyModel, Qt
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMenu,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from hvmanager import __version__
from hvmanager.backend.models import VmInfo, VmState
from hvmanager.backend.vmactions import VmAction
from hvmanager.controllers.manager import ServerManager
from hvmanager.controllers.server import ConnectionState, ServerController
from hvmanager.ui.actions import AppActions
from hvmanager.ui.checkpoint_commands import CheckpointCommands
from hvmanager.ui.details_controller import DetailsPresenter
from hvmanager.ui.disk_commands import DiskCommands
from hvmanager.ui.network_commands import NetworkCommands
from hvmanager.ui.resources import icon
from hvmanager.ui.vm_commands import VmCommands
from hvmanager.views.actions_pane import ActionsPane
from hvmanager.views.checkpoint_tree_model import IconKind
from hvmanager.views.checkpoints_pane import CheckpointsPane
from hvmanager.views.details_pane import DetailsPane
from hvmanager.views.server_tree import ServerTree
from hvmanager.views.vm_table_model import Column, VmRole, VmTableModel
from hvmanager.views.vm_table_view import VmTableView

_BANNER_STYLE = "background: #fff4ce; border: 1px solid #e0c36a; padding: 8px;"


class MainWindow(QMainWindow):
    """Hyper-V Manager's window over a ``ServerManager``."""

    def __init__(self, manager: ServerManager) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Hyper-V Manager")
        self.setWindowIcon(icon("hyperv"))
        self.resize(1280, 800)
        self.manager = manager
        self.models: dict[str, VmTableModel] = {}
        self._no_server_model = VmTableModel(self)
        self.app_actions = AppActions(self)
        self._build_widgets()
        self._build_menus()
        self.details = DetailsPresenter(self)
        self.commands = VmCommands(self)
        self.checkpoint_commands = CheckpointCommands(self)
        self.disk_commands = DiskCommands(self)
        self.network_commands = NetworkCommands(self)
        self.actions_pane.checkpoint_block.set_actions("", self.app_actions.checkpoint_block())
        self._wire()
        self._show_server("")

    # --- layout ---------------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.server_tree = ServerTree(icon("hyperv"))
        self.banner = QLabel()
        self.banner.setObjectName("connectionBanner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(_BANNER_STYLE)
        self.banner.hide()
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSortRole(VmRole.SORT)
        self.proxy.setDynamicSortFilter(True)
        self.table = self._build_table()
        self.checkpoints = CheckpointsPane(
            {
                IconKind.MEMORY: icon("checkpoint-memory"),
                IconKind.DISK: icon("checkpoint-disk"),
                IconKind.NOW: icon("now"),
            }
        )
        self.details_pane = DetailsPane()
        self.actions_pane = ActionsPane()
        self.setCentralWidget(self._build_splitters())

    def _build_table(self) -> VmTableView:
        table = VmTableView()
        table.setModel(self.proxy)
        table.sortByColumn(Column.NAME, Qt.SortOrder.AscendingOrder)
        table.apply_column_widths()
        return table

    def _build_splitters(self) -> QSplitter:
        vm_box = QWidget()
        vm_layout = QVBoxLayout(vm_box)
        vm_layout.setContentsMargins(0, 0, 0, 0)
        self.list_title = QLabel("Virtual Machines")
        self.list_title.setStyleSheet("background: #dde7f2; padding: 3px 6px; font-weight: 600;")
        vm_layout.addWidget(self.list_title)
        vm_layout.addWidget(self.banner)
        vm_layout.addWidget(self.table)
        middle = QSplitter(Qt.Orientation.Vertical)
        middle.addWidget(vm_box)
        middle.addWidget(self.checkpoints)
        middle.addWidget(self.details_pane)
        middle.setSizes([280, 190, 260])  # the tree shows about six levels of checkpoints
        outer = QSplitter(Qt.Orientation.Horizontal)
        outer.setObjectName("mainSplitter")
        outer.addWidget(self.server_tree)
        outer.addWidget(middle)
        outer.addWidget(self.actions_pane)
        outer.setStretchFactor(1, 1)
        outer.setSizes([200, 840, 240])
        return outer

    def _build_menus(self) -> None:
        acts = self.app_actions
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(acts.connect_server)
        file_menu.addSeparator()
        file_menu.addAction(acts.quit)
        self.action_menu = bar.addMenu("&Action")
        self.action_menu.setObjectName("actionMenu")
        self.action_menu.aboutToShow.connect(self._fill_action_menu)
        self._fill_action_menu()
        # Shortcuts work whichever block the Action menu and the Actions pane show.
        self.addActions([*acts.vm.values(), *acts.checkpoint.values()])
        view_menu = bar.addMenu("&View")
        view_menu.addAction(acts.refresh)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(acts.about)
        toolbar = QToolBar("Actions")
        toolbar.setObjectName("mainToolbar")
        toolbar.setMovable(False)
        for entry in acts.toolbar():
            toolbar.addSeparator() if entry is None else toolbar.addAction(entry)
        self.addToolBar(toolbar)

    def _fill_action_menu(self) -> None:
        """The Action menu: the server's actions, then the selected checkpoint's or VM's."""
        acts = self.app_actions
        checkpoint = self.checkpoints.selected_checkpoint() is not None
        lower = acts.checkpoint_block() if checkpoint else acts.vm_block()
        # Not QMenu.clear(): it would delete the New submenu's action along with the separators.
        for action in self.action_menu.actions():
            self.action_menu.removeAction(action)
            if action.isSeparator():
                action.deleteLater()
        for entry in [*acts.server_block(), None, *lower]:
            self.action_menu.addSeparator() if entry is None else self.action_menu.addAction(entry)

    def _wire(self) -> None:
        self.manager.server_added.connect(self._on_server_added)
        self.manager.server_removed.connect(self._on_server_removed)
        self.server_tree.server_selected.connect(self._show_server)
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.table.customContextMenuRequested.connect(self._on_context_menu)
        # Back on the VM list: the VM's block and details again, not the checkpoint's.
        self.table.pressed.connect(lambda _index: self.checkpoints.clear_selection())
        self.table.doubleClicked.connect(lambda _index: self.app_actions.vm[VmAction.SETTINGS].trigger())
        self.app_actions.quit.triggered.connect(self.close)
        self.app_actions.about.triggered.connect(self.commands.about)

    # --- servers --------------------------------------------------------------------------------

    @property
    def current(self) -> ServerController | None:
        """The server shown in the middle."""
        return self.manager.servers.get(self.server_tree.current_uri())

    def model_for(self, uri: str) -> VmTableModel | None:
        """The VM list model of a server."""
        return self.models.get(uri)

    def _on_server_added(self, controller: ServerController) -> None:
        model = VmTableModel(self)
        self.models[controller.uri] = model
        controller.vms_listed.connect(model.set_vms)
        controller.vm_updated.connect(model.update_vm)
        controller.vm_removed.connect(model.remove_vm)
        controller.stats_updated.connect(model.set_stats)
        controller.status_changed.connect(model.set_operation)
        controller.connection_changed.connect(lambda *_: self._on_connection_changed(controller))
        controller.failed.connect(self.commands.show_failure)
        controller.vm_updated.connect(self._on_vm_updated)
        self.server_tree.add_server(controller.uri, controller.title, icon("server-offline"))
        if not self.server_tree.current_uri():
            self.server_tree.select_server(controller.uri)

    def _on_server_removed(self, uri: str) -> None:
        self.server_tree.remove_server(uri)
        self.models.pop(uri, None)
        if self.server_tree.current_uri() in ("", uri):
            uris = self.server_tree.uris()
            if uris:
                self.server_tree.select_server(uris[0])
            else:
                self._show_server("")

    def _on_connection_changed(self, controller: ServerController) -> None:
        online = controller.state is ConnectionState.CONNECTED
        tooltip = f"{controller.uri}: {controller.state.value}"
        self.server_tree.update_server(
            controller.uri, controller.title, icon("server" if online else "server-offline"), tooltip
        )
        if controller is self.current:
            self._show_titles(controller)
            self._show_connection(controller)

    def _show_server(self, uri: str) -> None:
        controller = self.manager.servers.get(uri)
        model = self.models.get(uri, self._no_server_model)
        self.proxy.setSourceModel(model)
        self.actions_pane.server_block.set_actions("", self.app_actions.server_block())
        self.actions_pane.vm_block.set_actions("", self.app_actions.vm_block())
        self._show_titles(controller)
        self._show_connection(controller)
        self._on_selection_changed()

    def _show_titles(self, controller: ServerController | None) -> None:
        """The server's name (its host name once connected) over the list and the Actions block."""
        title = controller.title if controller else "Hyper-V Manager"
        self.list_title.setText(f"Virtual Machines ({title})" if controller else "Virtual Machines")
        self.actions_pane.server_block.header.setText(title)

    def _show_connection(self, controller: ServerController | None) -> None:
        if controller is None:
            self.banner.setText("Select a server, or add one with Connect to Server...")
            self.banner.show()
        elif controller.state is not ConnectionState.CONNECTED and controller.message:
            self.banner.setText(f"{controller.message}\nRetrying every second...")
            self.banner.show()
        elif controller.state is ConnectionState.CONNECTING and not controller.vms:
            self.banner.setText(f"Connecting to {controller.uri}...")
            self.banner.show()
        else:
            self.banner.hide()
        connected = controller is not None and controller.state is ConnectionState.CONNECTED
        self.app_actions.set_server_available(connected, controller is not None)
        self.app_actions.hyperv_settings.setEnabled(True)
        self.table.setEnabled(connected)
        self.statusBar().showMessage(f"{controller.uri}: {controller.state.value}" if controller else "")

    # --- selection ------------------------------------------------------------------------------

    def selected_uuids(self) -> list[str]:
        """The selected VMs, in row order."""
        rows = self.table.selectionModel().selectedRows(Column.NAME)
        return [str(index.data(VmRole.UUID)) for index in sorted(rows, key=QModelIndex.row)]

    def selected_infos(self) -> list[VmInfo]:
        """Identity and state of the selected VMs."""
        controller = self.current
        if controller is None:
            return []
        return [controller.vms[u] for u in self.selected_uuids() if u in controller.vms]

    def select_vm(self, uuid: str) -> bool:
        """Select a VM's row; False when it isn't listed (yet)."""
        model = self.models.get(self.server_tree.current_uri())
        row = model.row_of(uuid) if model else None
        if model is None or row is None:
            return False
        index = self.proxy.mapFromSource(model.index(row, 0))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
        self.table.selectionModel().select(index, flags)
        self.table.scrollTo(index)
        return True

    def _on_selection_changed(self, *_args: object) -> None:
        infos = self.selected_infos()
        self.app_actions.update_for([info.state for info in infos])
        single = infos[0] if len(infos) == 1 else None
        self.actions_pane.vm_block.header.setText(
            single.name if single else f"{len(infos)} virtual machines" if infos else ""
        )
        self.actions_pane.show_vm_block(bool(infos))
        self.details.show(single.uuid if single else None)
        self.checkpoint_commands.show_vm(single.uuid if single else None)

    def _on_vm_updated(self, info: VmInfo) -> None:
        if info.uuid in self.selected_uuids():
            self._on_selection_changed()

    def _on_context_menu(self, position: QPoint) -> None:
        if not self.selected_uuids():
            return
        menu = QMenu(self)
        menu.setObjectName("vmContextMenu")
        for entry in self.app_actions.vm_block():
            if entry is None:
                menu.addSeparator()
            elif entry.isVisible():
                menu.addAction(entry)
        menu.popup(self.table.viewport().mapToGlobal(position))

    def state_of(self, uuid: str) -> VmState | None:
        """The current server's last known state of a VM."""
        return self.current.vm_state(uuid) if self.current else None

    def vm_action(self, kind: VmAction) -> QAction:
        """The QAction of a VM command."""
        return self.app_actions.vm[kind]

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop timers and disconnect before the window goes."""
        self.details.stop()
        self.manager.close()
        super().closeEvent(event)


def about_text() -> str:
    """The About box."""
    return (
        f"<b>hvmanager {__version__}</b><br>A Hyper-V Manager look-alike for libvirt/QEMU virtual machines."
    )
