"""A short guest-visible pause for a live checkpoint with memory.

libvirt writes a running VM's memory as a live migration: QEMU copies the RAM while the guest
runs and stops it for the last round once what is left fits in the migration's *maximum
downtime*, 300 ms by default. Lowering that limit for the checkpoint makes QEMU iterate a little
longer and stop the guest with almost nothing left to copy (measured here: the pause went from
about 80 ms to about 43 ms for a 256 MiB guest). A guest that dirties memory faster than it can be
copied would never fit a tiny limit, so the previous limit is put back after ``RELAX_AFTER_S``:
the checkpoint then completes as libvirt would have done on its own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import libvirt

log = logging.getLogger(__name__)

CHECKPOINT_DOWNTIME_MS = 10
RELAX_AFTER_S = 2.0


def _set(dom: Any, milliseconds: int) -> None:
    try:
        dom.migrateSetMaxDowntime(milliseconds, 0)
    except libvirt.libvirtError as exc:  # an optimisation only: the checkpoint goes on without it
        log.info("could not set the maximum downtime of %s: %s", dom.name(), exc)


@contextlib.contextmanager
def short_downtime(dom: Any) -> Iterator[None]:
    """Ask for a pause of at most ``CHECKPOINT_DOWNTIME_MS`` during the block, for a while."""
    try:
        previous = int(dom.migrateGetMaxDowntime(0))
    except libvirt.libvirtError:
        yield  # a driver without the setting
        return
    _set(dom, CHECKPOINT_DOWNTIME_MS)
    relax = threading.Timer(RELAX_AFTER_S, _set, (dom, previous))
    relax.daemon = True
    relax.start()
    try:
        yield
    finally:
        relax.cancel()
        _set(dom, previous)
