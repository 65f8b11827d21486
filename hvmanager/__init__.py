"""hvmanager: a Hyper-V Manager look-alike for libvirt/QEMU virtual machines.

Layers (enforced by import-linter, see ``pyproject.toml``):

* ``hvmanager.backend``: pure Python; everything that touches libvirt, QEMU tools and the host.
* ``hvmanager.controllers``: QObjects that run backend work off the GUI thread.
* ``hvmanager.views``: widgets and item models; no libvirt.
* ``hvmanager.ui``: the application shell (main window, wizards, dialogs).
* ``hvmanager.cli``: ``hvctl``, the command-line tool over the backend.
"""

__version__ = "0.1.0"
