"""Virtual switches (Hyper-V's Virtual Switch Manager) on a libvirt server: the public API.

A switch is a libvirt network (see :mod:`network_models` for how each Hyper-V type maps onto one).
Every function takes the libvirt connection ``conn`` and blocks: call it off the GUI thread.

- :func:`list_switches`, :func:`get_switch`: what the server has;
- :func:`switch_problems`: what keeps a spec from being created or applied, in the user's words;
- :func:`create_switch`, :func:`set_switch`, :func:`remove_switch`: all or nothing;
- :func:`switch_users`: the VM adapters on a switch;
- :func:`restore_host_bridges`: re-make shared External switches' host bridges after a restart.

:class:`SwitchInUseError` (VMs would be cut off: pass ``disconnect_users=True``) and
:class:`ConfirmationNeeded` (the host's default-route adapter would be bound: pass
``confirm_default_route=True``) ask the caller to confirm and call again.
"""

from __future__ import annotations

from hvmanager.backend.host_adapters import host_adapters
from hvmanager.backend.switch_changes import create_switch, remove_switch, restore_host_bridges, set_switch
from hvmanager.backend.switch_checks import switch_problems
from hvmanager.backend.switch_errors import ConfirmationNeeded, SwitchInUseError
from hvmanager.backend.switch_inventory import get_switch, list_switches
from hvmanager.backend.switch_users import switch_users

__all__ = [
    "ConfirmationNeeded",
    "SwitchInUseError",
    "create_switch",
    "get_switch",
    "host_adapters",
    "list_switches",
    "remove_switch",
    "restore_host_bridges",
    "set_switch",
    "switch_problems",
    "switch_users",
]
