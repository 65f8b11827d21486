"""Which virtual machines use a disk file or host block device (Inspect Disk, the editor's guard).

A VM uses a file when one of its disks has it as its source or anywhere in the source's chain of
parents (a differencing disk reads through its parents). Both configurations count: the persistent
one, and the live one of a running VM (which may differ until the VM restarts). One
``listAllDomains`` call; each disk's chain is read from the image headers (no ``qemu-img`` run),
once per distinct source file.

Files are the same when their real paths are, or when they are the same inode (a hard link, a
bind mount); block devices when they are the same device number.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from hvmanager.backend.errors import HvError
from hvmanager.backend.vhd_inspect import parent_chain


@dataclass(frozen=True)
class DiskUser:
    """One VM disk that reads the file.

    ``running`` is True when the VM runs and its live configuration has the disk (it has the file
    open now); a running VM whose file appears only in its persistent configuration gets False.
    """

    vm_name: str
    uuid: str
    running: bool
    target: str  # the disk's target device ("sda", "vdb", ...)


_Key = tuple[str, int, int]


def _key(path: str) -> _Key | None:
    """What identifies a file (inode) or a block device (device number); None when it is gone."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if stat.S_ISBLK(info.st_mode):
        return ("dev", info.st_rdev, 0)
    return ("ino", info.st_dev, info.st_ino)


def _disk_sources(xml: str) -> list[tuple[str, list[str]]]:
    """Each disk's target and the files the XML names for it (its source and backing stores)."""
    disks = []
    for disk in SafeET.fromstring(xml).iter("disk"):
        target = disk.find("target")
        name = target.get("dev", "") if target is not None else ""
        files = []
        node = disk
        while node is not None:
            source = node.find("source")
            if source is not None and (found := source.get("file") or source.get("dev")):
                files.append(found)
            node = node.find("backingStore")
        if files:
            disks.append((name, files))
    return disks


class _Chains:
    """Each file's chain (itself and its parents), computed once per call."""

    def __init__(self) -> None:
        self._known: dict[str, list[str]] = {}

    def of(self, path: str) -> list[str]:
        real = os.path.realpath(path)
        if real not in self._known:
            try:
                links = parent_chain(path)
            except (HvError, OSError):
                links = ()
            self._known[real] = [path, *(link.path for link in links if link.present)]
        return self._known[real]


def _uses(files: list[str], wanted: str, wanted_key: _Key | None, chains: _Chains) -> bool:
    for listed in files:
        for path in chains.of(listed):
            if os.path.realpath(path) == wanted:
                return True
            if wanted_key is not None and _key(path) == wanted_key:
                return True
    return False


def users_of(conn: Any, path: str) -> list[DiskUser]:
    """Every VM disk (persistent or live configuration) whose source or chain is ``path``."""
    wanted = os.path.realpath(path)
    wanted_key = _key(path)
    chains = _Chains()
    users: dict[tuple[str, str], DiskUser] = {}
    for dom in conn.listAllDomains(0):
        try:
            name, uuid, active = dom.name(), dom.UUIDString(), bool(dom.isActive())
            configs = []
            if active:
                configs.append((True, dom.XMLDesc(0)))
            if dom.isPersistent():
                configs.append((False, dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:  # undefined meanwhile
                continue
            raise
        for live, xml in configs:
            for target, files in _disk_sources(xml):
                if (uuid, target) not in users and _uses(files, wanted, wanted_key, chains):
                    users[(uuid, target)] = DiskUser(name, uuid, live, target)
    return list(users.values())


def running_user(conn: Any, path: str) -> DiskUser | None:
    """The running VM that has ``path`` open (in its live configuration), if any."""
    return next((user for user in users_of(conn, path) if user.running), None)
