"""Errors that carry a message a user can act on.

Every failure that reaches a user says what failed, why, and (when known) what to do about it.
"""

from __future__ import annotations


class HvError(Exception):
    """An operation failed.

    Attributes:
        message: what failed and why, in one sentence.
        hint: what the user can do about it (may be empty).
    """

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class ValidationError(HvError):
    """User input broke a rule (a limit of the reference product, a name clash, a bad path)."""


class InvalidStateError(HvError):
    """The operation is not possible in the VM's current state."""


class NotConnectedError(HvError):
    """The server is not connected (the daemon is down or unreachable)."""
