"""The questions the Virtual Switch Manager asks before and while it applies changes.

- "Pending changes may disrupt network connectivity": before applying a change that touches a
  host adapter (an External switch), Yes/No, as in Hyper-V.
- Binding the adapter that carries the host's default route: the back end's warning that the host
  may lose its connectivity, Yes/No (Yes retries with the confirmation).
- Removing or retyping a switch that VMs use: the list of those VMs; Yes retries with their
  adapters disconnected ("Not connected").

Each box is window-modal and opened with ``open()``; ``answer`` awaits the user's choice without
a nested event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QListWidget,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

TITLE = "Virtual Switch Manager"
DISRUPTION_TEXT = "Pending changes may disrupt network connectivity."
DISRUPTION_DETAIL = (
    "The changes bind, release or reconfigure a network adapter of the host. Network "
    "connections through it may be interrupted while they are applied. Do you want to apply "
    "these changes?"
)


async def answer(box: QDialog) -> bool:
    """Open ``box`` and wait until it is closed; True when it was accepted (Yes)."""
    decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def settle(_result: int) -> None:
        if not decided.done():
            decided.set_result(_accepted(box))

    box.finished.connect(settle)
    box.open()
    return await decided


def _accepted(box: QDialog) -> bool:
    if isinstance(box, QMessageBox):
        return box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)
    return box.result() == QDialog.DialogCode.Accepted.value


def _question(parent: QWidget, name: str, icon: QMessageBox.Icon, text: str, detail: str) -> QMessageBox:
    yes_no = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    box = QMessageBox(icon, TITLE, text, yes_no, parent)
    box.setObjectName(name)
    box.setInformativeText(detail)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box


def disruption_warning(parent: QWidget) -> QMessageBox:
    """Hyper-V's warning before changes to External switches are applied."""
    return _question(
        parent, "disruptionWarning", QMessageBox.Icon.Warning, DISRUPTION_TEXT, DISRUPTION_DETAIL
    )


def default_route_question(parent: QWidget, switch: str, warning: str) -> QMessageBox:
    """Binding the host's default-route adapter: the back end's ``warning``, then Yes/No."""
    return _question(
        parent,
        "defaultRouteQuestion",
        QMessageBox.Icon.Warning,
        warning,
        f"Do you still want to bind this adapter to the virtual switch '{switch}'? The host may "
        "lose its network connectivity, and with it this connection to the server if it is remote.",
    )


class SwitchUsersDialog(QDialog):
    """The VMs connected to a switch that is about to be removed or retyped; Yes disconnects
    their adapters ("Not connected") and goes on, No leaves everything as it is."""

    def __init__(
        self, switch: str, removing: bool, users: Sequence[str], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName("switchInUseDialog")
        self.setWindowTitle(TITLE)
        what = "remove" if removing else "change the connection type of"
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"The virtual switch '{switch}' is used by these virtual machines. If you {what} it, "
            "their network adapters will be Not connected."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.users = QListWidget()
        self.users.setObjectName("switchUsersList")
        self.users.addItems(sorted(set(users)))
        self.users.setMaximumHeight(160)
        layout.addWidget(self.users)
        question = QLabel("Do you want to continue?")
        layout.addWidget(question)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Yes | QDialogButtonBox.StandardButton.No)
        buttons.button(QDialogButtonBox.StandardButton.Yes).setObjectName("yesButton")
        no = buttons.button(QDialogButtonBox.StandardButton.No)
        no.setObjectName("noButton")
        no.setDefault(True)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(440, 300)

    def names(self) -> list[str]:
        """The VMs listed."""
        return [self.users.item(row).text() for row in range(self.users.count())]
