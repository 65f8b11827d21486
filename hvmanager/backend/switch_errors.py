"""The errors of virtual switch operations that a caller answers differently from a plain failure."""

from __future__ import annotations

from hvmanager.backend.errors import InvalidStateError, ValidationError


class SwitchInUseError(InvalidStateError):
    """VMs use the switch and the change would cut them off (retype, delete).

    ``users`` names those VMs; repeat the call with ``disconnect_users=True`` to leave their
    adapters "Not connected".
    """

    def __init__(self, switch: str, users: list[str]) -> None:
        names = ", ".join(users)
        super().__init__(
            f"The virtual switch '{switch}' is used by {len(users)} virtual machine(s): {names}.",
            "Their network adapters would end up not connected; confirm to go on.",
        )
        self.users = users


class ConfirmationNeeded(ValidationError):  # noqa: N818 (the contract's name)
    """The change binds the host adapter that carries the default route: the host may lose its
    network connection while (or if) it is re-plumbed. Repeat with ``confirm_default_route=True``."""

    def __init__(self, adapter: str) -> None:
        super().__init__(
            f"The network adapter '{adapter}' carries this host's default route. Binding it to an "
            "external virtual switch may disrupt the host's network connectivity, and a remote "
            "session to this host may be lost.",
            "Confirm to apply the change anyway.",
        )
        self.adapter = adapter
