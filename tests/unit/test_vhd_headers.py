"""The VHD, VHDX and qcow2 header readers on files written to the published specs (no QEMU here):
fields read back, recovery from a damaged footer, and damaged or hostile files refused cleanly."""

from __future__ import annotations

import os
import random
import struct
import uuid
from pathlib import Path

import pytest

from hvmanager.backend.crc32c import crc32c
from hvmanager.backend.errors import HvError
from hvmanager.backend.qcow2_header import read_qcow2
from hvmanager.backend.vhd_headers import (
    VHD_DIFFERENCING,
    VHD_DYNAMIC,
    VHD_FIXED,
    VHD_UNUSED_BLOCK,
    read_vhd,
    vhd_bat,
)
from hvmanager.backend.vhdx_headers import read_vhdx
from tests.support.vhd_writer import W2KU, W2RU, chs_geometry, write_dynamic, write_fixed

MIB = 1024 * 1024


def test_crc32c_matches_the_standard_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # RFC 3720 B.4 / the CRC catalogue's check value
    assert crc32c(b"") == 0


def test_crc32c_of_trailing_zeros_equals_the_byte_by_byte_walk() -> None:
    """The run of zeros at the end is applied at once; it must give the byte-by-byte result."""
    rng = random.Random(20261126)

    def walked(data: bytes) -> int:
        crc = 0
        for byte in data:
            crc = crc32c(bytes([byte]), crc)
        return crc

    for _ in range(40):
        data = rng.randbytes(rng.randint(0, 64)) + bytes(rng.choice([0, 1, 7, 4096, 65536 - 64]))
        assert crc32c(data) == walked(data)
    assert crc32c(bytes(65536)) == walked(bytes(65536))


def test_chs_geometry_of_the_writer_follows_the_spec_table() -> None:
    # 16 MiB: 32768 sectors -> 17 sectors per track, 4 heads, 481 cylinders.
    assert chs_geometry(16 * MIB) == (481 << 16) | (4 << 8) | 17


def test_fixed_vhd_footer(tmp_path: Path) -> None:
    disk_id = uuid.uuid4()
    path = tmp_path / "fixed.vhd"
    write_fixed(path, 8 * MIB, {0: b"x" * 512}, disk_id)
    vhd = read_vhd(str(path))
    assert vhd.footer.disk_type == VHD_FIXED
    assert vhd.footer.current_size == 8 * MIB
    assert vhd.footer.unique_id == str(disk_id)
    assert vhd.dynamic is None
    assert vhd.file_length == 8 * MIB + 512


def test_dynamic_vhd_header_and_bat(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.vhd"
    write_dynamic(path, 16 * MIB, {5 * MIB: b"\x01" * 4096}, uuid.uuid4(), block_size=MIB)
    vhd = read_vhd(str(path))
    assert vhd.footer.disk_type == VHD_DYNAMIC
    assert vhd.dynamic is not None
    assert vhd.dynamic.block_size == MIB
    assert vhd.dynamic.max_table_entries == 16
    bat = vhd_bat(str(path), vhd)
    assert [i for i, entry in enumerate(bat) if entry != VHD_UNUSED_BLOCK] == [5]


def test_differencing_vhd_parent_fields_and_locators(tmp_path: Path) -> None:
    parent_id = uuid.uuid4()
    path = tmp_path / "child.vhd"
    locators = {W2KU: "C:\\Disks\\parent.vhd", W2RU: ".\\parent.vhd"}
    write_dynamic(path, 16 * MIB, {}, uuid.uuid4(), parent=(parent_id, "parent.vhd", locators))
    vhd = read_vhd(str(path))
    assert vhd.footer.disk_type == VHD_DIFFERENCING
    assert vhd.dynamic is not None
    assert vhd.dynamic.parent_unique_id == str(parent_id)
    assert vhd.dynamic.parent_name == "parent.vhd"
    assert vhd.dynamic.locators == {"W2ku": "C:\\Disks\\parent.vhd", "W2ru": ".\\parent.vhd"}


def test_a_damaged_end_footer_falls_back_to_the_copy_at_the_start(tmp_path: Path) -> None:
    disk_id = uuid.uuid4()
    path = tmp_path / "dynamic.vhd"
    write_dynamic(path, 16 * MIB, {}, disk_id)
    with open(path, "r+b") as handle:
        handle.seek(-512 + 100, os.SEEK_END)
        handle.write(b"damage")
    assert read_vhd(str(path)).footer.unique_id == str(disk_id)


def test_a_fixed_vhd_with_a_damaged_footer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "fixed.vhd"
    write_fixed(path, 4 * MIB, {}, uuid.uuid4())
    with open(path, "r+b") as handle:
        handle.seek(-512 + 48, os.SEEK_END)
        handle.write(b"\xff" * 8)  # the size, without fixing the checksum
    with pytest.raises(HvError, match="checksum"):
        read_vhd(str(path))


def test_a_dynamic_header_pointing_past_the_end_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dynamic.vhd"
    write_dynamic(path, 16 * MIB, {}, uuid.uuid4())
    data = bytearray(path.read_bytes())
    header = 512  # after the footer copy
    struct.pack_into(">I", data, header + 28, 10**6)  # max table entries: a BAT past the end
    struct.pack_into(">I", data, header + 36, 0)
    checksum = ~sum(data[header : header + 1024]) & 0xFFFFFFFF
    struct.pack_into(">I", data, header + 36, checksum)  # a valid header, with a wrong table size
    path.write_bytes(bytes(data))
    with pytest.raises(HvError, match="allocation table is out of range"):
        read_vhd(str(path))


@pytest.mark.parametrize("magic", [b"vhdxfile", b"conectix", b"QFI\xfb"])
def test_random_bytes_behind_a_magic_are_refused_with_hverror(tmp_path: Path, magic: bytes) -> None:
    rng = random.Random(4)
    path = tmp_path / "junk"
    for _ in range(20):
        body = bytes(rng.getrandbits(8) for _ in range(2 * MIB // 64)) * 64
        path.write_bytes(magic + body + magic + bytes(504))
        reader = {b"vhdxfile": read_vhdx, b"conectix": read_vhd, b"QFI\xfb": read_qcow2}[magic]
        with pytest.raises(HvError):
            reader(str(path))


def test_a_truncated_vhdx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.vhdx"
    path.write_bytes(b"vhdxfile" + bytes(1000))
    with pytest.raises(HvError, match="VHDX"):
        read_vhdx(str(path))


def _qcow2_header(backing: bytes, backing_format: bytes) -> bytes:
    header = bytearray(struct.pack(">4sIQIIQ", b"QFI\xfb", 3, 0, 0, 16, 64 * MIB))
    header += bytes(104 - len(header))
    struct.pack_into(">I", header, 100, 104)
    extension = struct.pack(">II", 0xE2792ACA, len(backing_format)) + backing_format
    extension += bytes(-len(extension) % 8) + struct.pack(">II", 0, 0)
    header += extension
    struct.pack_into(">QI", header, 8, len(header), len(backing))
    return bytes(header) + backing


def test_qcow2_backing_file_and_format_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "child.qcow2"
    path.write_bytes(_qcow2_header(b"../base.vhd", b"vpc"))
    header = read_qcow2(str(path))
    assert (header.version, header.size, header.cluster_size) == (3, 64 * MIB, 65536)
    assert (header.backing_file, header.backing_format) == ("../base.vhd", "vpc")
