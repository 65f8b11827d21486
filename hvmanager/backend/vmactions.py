"""Which VM action is possible in which state: one table for the GUI's buttons and the backend.

The GUI enables an action when ``allowed(action, state)``; the backend refuses the same action
with ``state_problem`` so that ``hvctl`` and scripts get the same answer.
"""

from __future__ import annotations

import enum

from hvmanager.backend.models import VmState


class VmAction(enum.Enum):
    """The VM block of the Actions pane (hyperv-manager.md §1.4)."""

    CONNECT = "Connect"
    SETTINGS = "Settings"
    START = "Start"
    TURN_OFF = "Turn Off"
    SHUT_DOWN = "Shut Down"
    SAVE = "Save"
    PAUSE = "Pause"
    RESUME = "Resume"
    RESET = "Reset"
    DELETE_SAVED_STATE = "Delete Saved State"
    RENAME = "Rename"
    DELETE = "Delete"


_S = VmState
ALLOWED_STATES: dict[VmAction, frozenset[VmState]] = {
    VmAction.CONNECT: frozenset(),  # the console arrives with a later issue
    VmAction.SETTINGS: frozenset(VmState),
    VmAction.START: frozenset({_S.OFF, _S.SAVED}),
    VmAction.TURN_OFF: frozenset({_S.RUNNING, _S.PAUSED, _S.STOPPING, _S.STARTING}),
    VmAction.SHUT_DOWN: frozenset({_S.RUNNING}),
    VmAction.SAVE: frozenset({_S.RUNNING, _S.PAUSED}),
    VmAction.PAUSE: frozenset({_S.RUNNING}),
    VmAction.RESUME: frozenset({_S.PAUSED}),
    VmAction.RESET: frozenset({_S.RUNNING, _S.PAUSED}),
    VmAction.DELETE_SAVED_STATE: frozenset({_S.SAVED}),
    VmAction.RENAME: frozenset({_S.OFF}),
    VmAction.DELETE: frozenset({_S.OFF, _S.SAVED}),
}

_WHY_NOT = {
    VmAction.RENAME: "libvirt renames a virtual machine only while it is off, without a saved state",
    VmAction.DELETE: "turn it off first",
    VmAction.SHUT_DOWN: "only a running guest can be asked to shut down",
}


def allowed(action: VmAction, state: VmState) -> bool:
    """Whether ``action`` applies to a VM in ``state``."""
    return state in ALLOWED_STATES[action]


def state_problem(action: VmAction, name: str, state: VmState) -> str | None:
    """Why ``action`` can't be done on VM ``name`` now, or None."""
    if allowed(action, state):
        return None
    why = _WHY_NOT.get(action)
    suffix = f" ({why})" if why else ""
    return f"Can't {action.value.lower()} '{name}' while it is {state.value}{suffix}."
