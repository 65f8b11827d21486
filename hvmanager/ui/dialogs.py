"""Small dialogs of the main window: confirmations, Rename, Delete, Connect to Server.

They are window-modal and opened with ``open()`` (never ``exec()``), so the event loop and the
libvirt events keep running; the caller connects to ``accepted``.
"""

from __future__ import annotations

from urllib.parse import urlparse

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from hvmanager.backend.limits import vm_name_problem

KNOWN_SCHEMES = ("qemu", "qemu+ssh", "qemu+tls", "qemu+tcp", "qemu+unix", "qemu+libssh2", "test")


def confirm(parent: QWidget, title: str, text: str, button: str) -> QMessageBox:
    """A Yes/No question with a named accept button; returns the opened box."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("confirmDialog")
    yes = box.addButton(button, QMessageBox.ButtonRole.AcceptRole)
    yes.setObjectName("confirmButton")
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(yes)
    box.open()
    return box


def show_error(parent: QWidget, title: str, text: str) -> QMessageBox:
    """An error message (what failed, why, what to do); non-blocking."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Close, parent)
    box.setObjectName("errorDialog")
    box.open()
    return box


def _buttons(dialog: QDialog, ok_text: str) -> QDialogButtonBox:
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
    ok.setText(ok_text)
    ok.setObjectName("okButton")
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    return buttons


def _problem_label() -> QLabel:
    label = QLabel()
    label.setObjectName("problemLabel")
    label.setStyleSheet("color: #b3261e;")
    label.setWordWrap(True)
    return label


class RenameDialog(QDialog):
    """Rename a VM: the new name is checked as it is typed."""

    def __init__(self, name: str, other_names: frozenset[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Rename '{name}'")
        self.setObjectName("renameDialog")
        self._others = other_names - {name}
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("New name of the virtual machine:"))
        self.name_edit = QLineEdit(name)
        self.name_edit.setObjectName("nameEdit")
        self.name_edit.selectAll()
        layout.addWidget(self.name_edit)
        layout.addWidget(QLabel("The VM's files and folders keep their names."))
        self.problem = _problem_label()
        layout.addWidget(self.problem)
        self.buttons = _buttons(self, "Rename")
        layout.addWidget(self.buttons)
        self.name_edit.textChanged.connect(self._check)
        self._check()

    def new_name(self) -> str:
        """The name typed."""
        return self.name_edit.text()

    def _check(self) -> None:
        problem = vm_name_problem(self.new_name(), self._others)
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)


class DeleteDialog(QDialog):
    """Delete a VM, optionally with its virtual hard disk files (listed)."""

    def __init__(self, name: str, disk_files: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Delete Selected Virtual Machine")
        self.setObjectName("deleteDialog")
        layout = QVBoxLayout(self)
        text = QLabel(
            f"Are you sure you want to delete <b>{_escape(name)}</b>? Its configuration "
            "and saved state are removed."
        )
        text.setWordWrap(True)
        layout.addWidget(text)
        self.delete_disks = QCheckBox("Also delete these virtual hard disk files:")
        self.delete_disks.setObjectName("deleteDisksCheck")
        self.files = QListWidget()
        self.files.setObjectName("diskFilesList")
        self.files.addItems(disk_files)
        self.files.setMaximumHeight(110)
        if disk_files:
            layout.addWidget(self.delete_disks)
            layout.addWidget(self.files)
        else:
            layout.addWidget(QLabel("The virtual machine has no virtual hard disk files."))
        layout.addWidget(_buttons(self, "Delete"))

    def with_disks(self) -> bool:
        """Whether the disk files are to be deleted too."""
        return self.delete_disks.isChecked() and self.files.count() > 0


class ConnectServerDialog(QDialog):
    """Connect to Server: the local computer or another one by libvirt URI."""

    def __init__(self, local_uri: str, known: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Select Computer")
        self.setObjectName("connectServerDialog")
        self._local_uri, self._known = local_uri, known
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Connect to virtualization server:"))
        self.local_radio = QRadioButton(f"Local computer ({local_uri})")
        self.local_radio.setObjectName("localRadio")
        self.other_radio = QRadioButton("Another computer (libvirt URI):")
        self.other_radio.setObjectName("otherRadio")
        group = QButtonGroup(self)
        group.addButton(self.local_radio)
        group.addButton(self.other_radio)
        self.uri_edit = QLineEdit()
        self.uri_edit.setObjectName("uriEdit")
        self.uri_edit.setPlaceholderText("qemu+ssh://user@host/system")
        for widget in (self.local_radio, self.other_radio, self.uri_edit):
            layout.addWidget(widget)
        self.problem = _problem_label()
        layout.addWidget(self.problem)
        self.buttons = _buttons(self, "OK")
        layout.addWidget(self.buttons)
        self.other_radio.setChecked(local_uri in known)
        self.local_radio.setChecked(local_uri not in known)
        for signal in (self.local_radio.toggled, self.uri_edit.textChanged):
            signal.connect(self._check)
        self._check()

    def uri(self) -> str:
        """The URI chosen."""
        return self._local_uri if self.local_radio.isChecked() else self.uri_edit.text().strip()

    def _check(self) -> None:
        self.uri_edit.setEnabled(self.other_radio.isChecked())
        problem = uri_problem(self.uri(), self._known)
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)


def uri_problem(uri: str, known: list[str]) -> str | None:
    """Check a libvirt URI typed in Connect to Server."""
    if not uri:
        return "Enter a libvirt URI, for example qemu+ssh://user@host/system."
    parsed = urlparse(uri)
    if parsed.scheme not in KNOWN_SCHEMES:
        return f"Unknown transport '{parsed.scheme}': use one of {', '.join(KNOWN_SCHEMES)}."
    if not parsed.path:
        return "The URI needs a path, such as /system."
    if uri in known:
        return f"{uri} is already in the list."
    return None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
