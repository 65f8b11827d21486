"""Domain and snapshot XML for checkpoints: the disks a checkpoint covers, the per-VM checkpoint
policy, the tree in ``<metadata>``, and the XML handed to libvirt for a live overlay switch.

All parsing goes through defusedxml; edits keep every element we do not know.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import defusedxml.ElementTree as SafeET

from hvmanager.backend.checkpoint_tree import (
    CHECKPOINTS_NS,
    CheckpointTree,
    CheckpointType,
    tree_to_xml,
)
from hvmanager.backend.domxml import METADATA_NS
from hvmanager.backend.paths import SNAPSHOTS

_POLICY_TAG = f"{{{METADATA_NS}}}checkpoints"
_VM_TAG = f"{{{METADATA_NS}}}vm"
_TREE_TAG = f"{{{CHECKPOINTS_NS}}}checkpoints"


@dataclass(frozen=True)
class CheckpointPolicy:
    """Settings ▸ Management ▸ Checkpoints: on/off, type, and where configurations and memory go."""

    type: CheckpointType = CheckpointType.STANDARD
    location: str = ""  # empty: the VM's own Snapshots folder

    @property
    def enabled(self) -> bool:
        """Whether checkpoints may be taken."""
        return self.type is not CheckpointType.DISABLED


@dataclass(frozen=True)
class CheckpointDisk:
    """A writable hard disk a checkpoint freezes."""

    target: str
    file: str
    format: str


def _root(xml: str) -> ET.Element:
    root: ET.Element = SafeET.fromstring(xml)
    return root


def hard_disks(xml: str) -> list[ET.Element]:
    """The ``<disk device='disk'>`` elements of a domain."""
    return [d for d in _root(xml).findall("devices/disk") if d.get("device", "disk") == "disk"]


def checkpoint_disks(xml: str) -> list[CheckpointDisk]:
    """The file-backed, writable hard disks of a domain, in device order."""
    found = []
    for disk in _root(xml).findall("devices/disk"):
        if disk.get("device", "disk") != "disk" or disk.find("readonly") is not None:
            continue
        source, target, driver = disk.find("source"), disk.find("target"), disk.find("driver")
        if disk.get("type") != "file" or source is None or target is None:
            continue
        fmt = driver.get("type", "raw") if driver is not None else "raw"
        found.append(CheckpointDisk(target.get("dev", ""), source.get("file", ""), fmt))
    return found


def unsupported_disk_reason(xml: str) -> str | None:
    """Why the VM's disks cannot be checkpointed (a pass-through or network disk), or None."""
    root = _root(xml)
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        target = disk.find("target")
        name = target.get("dev", "?") if target is not None else "?"
        kind = disk.get("type", "file")
        if kind == "block":
            source = disk.find("source")
            dev = source.get("dev", "") if source is not None else ""
            return (
                f"Disk {name} is the physical disk {dev} passed through to the VM: its contents "
                "cannot be frozen in a differencing disk."
            )
        if kind != "file":
            return f"Disk {name} is a {kind} disk, not a virtual hard disk file."
    if root.find("devices/hostdev[@type='scsi']") is not None:
        return "The VM has a SCSI device passed through from the host, which a checkpoint cannot capture."
    return None


def set_disk_sources(xml: str, sources: dict[str, tuple[str, str]]) -> str:
    """Point disks (by target) at new files ``{target: (file, format)}``; backing chains libvirt
    recorded are dropped (it probes them again from the image headers)."""
    root = _root(xml)
    for disk in root.findall("devices/disk"):
        target = disk.find("target")
        if target is None or target.get("dev") not in sources:
            continue
        file, fmt = sources[target.get("dev", "")]
        disk.set("type", "file")
        for old in disk.findall("backingStore"):
            disk.remove(old)
        source = disk.find("source")
        if source is None:
            source = ET.SubElement(disk, "source")
        source.attrib.clear()
        source.set("file", file)
        driver = disk.find("driver")
        if driver is None:
            driver = ET.SubElement(disk, "driver", name="qemu")
        driver.set("type", fmt)
    return ET.tostring(root, encoding="unicode")


def strip_backing_stores(xml: str) -> str:
    """The domain XML without the backing chains libvirt recorded in it: a chain listed in the
    XML is used as given, and a merge may have removed files from it; libvirt probes the real
    chain from the image headers instead."""
    root = _root(xml)
    for disk in root.findall("devices/disk"):
        for old in disk.findall("backingStore"):
            disk.remove(old)
    return ET.tostring(root, encoding="unicode")


def _metadata(root: ET.Element) -> ET.Element:
    """The domain's ``<metadata>`` element (made when missing)."""
    metadata = root.find("metadata")
    if metadata is None:
        metadata = ET.Element("metadata")
        root.insert(2, metadata)
    return metadata


def set_tree(xml: str, tree: CheckpointTree) -> str:
    """The domain XML with the checkpoint tree in its metadata."""
    root = _root(xml)
    metadata = _metadata(root)
    for old in metadata.findall(_TREE_TAG):
        metadata.remove(old)
    metadata.append(SafeET.fromstring(tree_to_xml(tree)))
    return ET.tostring(root, encoding="unicode")


def set_name(xml: str, name: str) -> str:
    """The domain XML with another name (a checkpoint's configuration keeps the VM's current name)."""
    root = _root(xml)
    element = root.find("name")
    if element is not None:
        element.text = name
    return ET.tostring(root, encoding="unicode")


def domain_name(xml: str) -> str:
    """The ``<name>`` of a domain XML."""
    element = _root(xml).find("name")
    return (element.text or "") if element is not None else ""


def parse_policy(xml: str) -> CheckpointPolicy:
    """The VM's checkpoint policy (standard, in the VM's Snapshots folder, when not set)."""
    element = _root(xml).find(f"metadata/{_VM_TAG}/{_POLICY_TAG}")
    if element is None:
        return CheckpointPolicy()
    try:
        kind = CheckpointType(element.get("type", "standard"))
    except ValueError:
        kind = CheckpointType.STANDARD
    return CheckpointPolicy(kind, element.get("location", ""))


def edit_policy(xml: str, policy: CheckpointPolicy) -> str:
    """The domain XML with another checkpoint policy."""
    root = _root(xml)
    metadata = _metadata(root)
    vm = metadata.find(_VM_TAG)
    if vm is None:
        vm = ET.SubElement(metadata, _VM_TAG)
    for old in vm.findall(_POLICY_TAG):
        vm.remove(old)
    ET.SubElement(vm, _POLICY_TAG, {"type": policy.type.value, "location": policy.location})
    return ET.tostring(root, encoding="unicode")


def snapshot_folder(xml: str) -> Path:
    """Where checkpoint configurations, memory images and the merge journal of a VM go."""
    policy = parse_policy(xml)
    if policy.location:
        return Path(policy.location)
    root = _root(xml)
    folder = root.find(f"metadata/{_VM_TAG}/{{{METADATA_NS}}}folder")
    if folder is not None and folder.text:
        return Path(folder.text) / SNAPSHOTS
    disks = checkpoint_disks(xml)
    if disks:
        return Path(disks[0].file).parent / SNAPSHOTS
    raise ValueError("The VM has neither a folder nor a disk to keep checkpoints next to.")


def overlay_snapshot_xml(overlays: dict[str, str], all_targets: list[str], memory_file: str | None) -> str:
    """``<domainsnapshot>`` switching disks to pre-made qcow2 overlays (and saving memory)."""
    root = ET.Element("domainsnapshot")
    if memory_file:
        ET.SubElement(root, "memory", snapshot="external", file=memory_file)
    else:
        ET.SubElement(root, "memory", snapshot="no")
    disks = ET.SubElement(root, "disks")
    for target in all_targets:
        if target in overlays:
            disk = ET.SubElement(disks, "disk", name=target, snapshot="external", type="file")
            ET.SubElement(disk, "driver", type="qcow2")
            ET.SubElement(disk, "source", file=overlays[target])
        else:
            ET.SubElement(disks, "disk", name=target, snapshot="no")
    return ET.tostring(root, encoding="unicode")


def all_disk_targets(xml: str) -> list[str]:
    """Every ``<disk>`` target of a domain (DVD drives included)."""
    targets = []
    for disk in _root(xml).findall("devices/disk"):
        target = disk.find("target")
        if target is not None and target.get("dev"):
            targets.append(target.get("dev", ""))
    return targets
