"""Tests of the MAC address pool (``hvmanager.backend.mac_pool``) and of the MAC range settings.

The default range is checked against the host's first IPv4 address as ``ip -j addr`` shows it;
the addresses in use are read from domains defined on libvirt's in-process test driver.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import libvirt
import pytest

from hvmanager.backend import mac_pool
from hvmanager.backend.errors import ValidationError
from hvmanager.backend.network_models import MacRange
from hvmanager.backend.settings import AppSettings, load_settings, save_settings

# --- normalize_mac ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["00-15-5D-0A-0B-0C", "00:15:5d:0a:0b:0c", "00155D0A0B0C", " 00:15:5D:0A:0B:0C ", "0:15:5d:a:b:c"],
)
def test_normalize_mac_reads_hyperv_and_libvirt_forms(text: str) -> None:
    assert mac_pool.normalize_mac(text) == "00:15:5d:0a:0b:0c"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "00:15:5d:0a:0b",
        "00:15:5d:0a:0b:0c:0d",
        "00-15-5d:0a:0b:0c",
        "00:15:5d:0a:0b:zz",
        "00155D0A0B0",
        "x",
    ],
)
def test_normalize_mac_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValidationError, match="is not a MAC address"):
        mac_pool.normalize_mac(text)


def test_unicast_problem_names_multicast_and_zero_addresses() -> None:
    assert mac_pool.unicast_problem("00:15:5d:00:00:01") is None
    assert "multicast" in (mac_pool.unicast_problem("01:00:5e:00:00:01") or "")
    assert "multicast" in (mac_pool.unicast_problem("ff:ff:ff:ff:ff:ff") or "")
    assert "all zeros" in (mac_pool.unicast_problem("00:00:00:00:00:00") or "")


# --- ranges -------------------------------------------------------------------------------------


def _first_ipv4_of_host() -> ipaddress.IPv4Address | None:
    """The observer's view: ``ip -j addr``, lowest interface index, not loopback or link-local."""
    out = subprocess.run(
        ["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for entry in json.loads(out):
        for info in entry.get("addr_info", []):
            address = ipaddress.IPv4Address(info["local"])
            if not (address.is_loopback or address.is_link_local):
                found.append((entry["ifindex"], address))
    return min(found)[1] if found else None


def test_default_range_is_hyperv_prefix_with_the_host_address_bytes() -> None:
    address = _first_ipv4_of_host()
    third, fourth = address.packed[2:] if address else (0, 0)
    assert mac_pool.default_range() == MacRange(
        f"00:15:5d:{third:02x}:{fourth:02x}:00", f"00:15:5d:{third:02x}:{fourth:02x}:ff"
    )
    assert mac_pool.range_size(mac_pool.default_range()) == 256
    assert mac_pool.range_problems(mac_pool.default_range()) == []


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        ("00:15:5d:01:02:00", "00:15:5d:01:02:ff", None),
        ("00:15:5d:01:02:10", "00:15:5d:01:02:10", None),
        ("00:15:5d:01:02:ff", "00:15:5d:01:02:00", "is above its maximum"),
        ("00:15:5d:01:02:00", "00:16:5d:01:02:ff", "must share their first three bytes"),
        ("01:15:5d:01:02:00", "01:15:5d:01:02:ff", "multicast"),
        ("nonsense", "00:15:5d:01:02:ff", "The minimum of the MAC address range: 'nonsense' is not a MAC"),
        ("00:15:5d:01:02:00", "", "The maximum of the MAC address range: '' is not a MAC"),
    ],
)
def test_range_problems(low: str, high: str, expected: str | None) -> None:
    problems = mac_pool.range_problems(MacRange(low, high))
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1 and expected in problems[0]


def test_next_free_mac_takes_the_lowest_unused_address() -> None:
    mac_range = MacRange("00:15:5d:07:08:fe", "00:15:5d:07:09:01")
    assert mac_pool.next_free_mac(mac_range, set()) == "00:15:5d:07:08:fe"
    used = {"00:15:5d:07:08:fe", "00:15:5d:07:08:ff"}
    assert mac_pool.next_free_mac(mac_range, used) == "00:15:5d:07:09:00"  # carries into the 5th byte


def test_next_free_mac_says_when_the_range_is_full() -> None:
    mac_range = MacRange("00:15:5d:07:08:00", "00:15:5d:07:08:01")
    with pytest.raises(ValidationError) as caught:
        mac_pool.next_free_mac(mac_range, {"00:15:5d:07:08:00", "00:15:5d:07:08:01"})
    assert "(2 addresses) is in use" in caught.value.message
    assert "MAC Address Range" in caught.value.hint


def test_next_free_mac_refuses_an_invalid_range() -> None:
    with pytest.raises(ValidationError, match="above its maximum"):
        mac_pool.next_free_mac(MacRange("00:15:5d:07:08:09", "00:15:5d:07:08:01"), set())


# --- settings -----------------------------------------------------------------------------------


def test_settings_default_to_hyperv_range() -> None:
    settings = AppSettings()
    assert (settings.mac_minimum, settings.mac_maximum) == ("", "")
    assert settings.problems() == []
    assert mac_pool.configured_range(settings) == mac_pool.default_range()


def test_settings_range_is_read_in_any_form_and_saved() -> None:
    settings = AppSettings(mac_minimum="00-15-5D-AA-00-10", mac_maximum="00155DAA0020")
    assert settings.problems() == []
    assert mac_pool.configured_range(settings) == MacRange("00:15:5d:aa:00:10", "00:15:5d:aa:00:20")
    save_settings(settings)
    assert mac_pool.configured_range(load_settings()) == MacRange("00:15:5d:aa:00:10", "00:15:5d:aa:00:20")


def test_one_bound_left_empty_takes_the_default_one() -> None:
    default = mac_pool.default_range()
    settings = AppSettings(mac_minimum=default.minimum[:-2] + "80")
    assert mac_pool.configured_range(settings) == MacRange(default.minimum[:-2] + "80", default.maximum)
    assert settings.problems() == []


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        ("00:15:5d:aa:00:20", "00:15:5d:aa:00:10", "is above its maximum"),
        ("bogus", "00:15:5d:aa:00:10", "'bogus' is not a MAC address"),
        ("03:15:5d:aa:00:10", "03:15:5d:aa:00:20", "multicast"),
    ],
)
def test_settings_problems_name_a_bad_range(low: str, high: str, expected: str) -> None:
    problems = AppSettings(mac_minimum=low, mac_maximum=high).problems()
    assert len(problems) == 1 and expected in problems[0]


def test_a_saved_bad_range_is_not_loaded() -> None:
    save_settings(AppSettings(mac_minimum="00:15:5d:aa:00:20", mac_maximum="00:15:5d:aa:00:10"))
    assert (load_settings().mac_minimum, load_settings().mac_maximum) == ("", "")


# --- addresses in use (libvirt's test driver) ---------------------------------------------------


def _domain_xml(name: str, macs: list[str], uuid: str = "") -> str:
    interfaces = "".join(
        f"<interface type='user'><mac address='{mac}'/><model type='virtio'/></interface>" for mac in macs
    )
    return (
        f"<domain type='test'><name>{name}</name>{f'<uuid>{uuid}</uuid>' if uuid else ''}"
        "<memory unit='MiB'>64</memory>"
        f"<os><type arch='x86_64'>hvm</type></os><devices>{interfaces}</devices></domain>"
    )


@pytest.fixture
def test_conn() -> Iterator[Any]:
    conn = libvirt.open("test:///default")
    yield conn
    conn.close()


def test_used_macs_and_owners_cover_running_and_persistent_configurations(test_conn: Any) -> None:
    off = test_conn.defineXML(_domain_xml("mac-off", ["00:15:5D:01:00:01", "00:15:5d:01:00:02"]))
    running = test_conn.defineXML(_domain_xml("mac-running", ["00:15:5d:01:00:03"]))
    running.create()
    # An adapter added to the configuration only (next start): in use too.
    test_conn.defineXML(
        _domain_xml("mac-running", ["00:15:5d:01:00:03", "00:15:5d:01:00:04"], running.UUIDString())
    )
    assert "00:15:5d:01:00:04" not in running.XMLDesc(0)
    owners = mac_pool.mac_owners(test_conn)
    assert {mac: owners[mac] for mac in owners if mac.startswith("00:15:5d:01:00")} == {
        "00:15:5d:01:00:01": "mac-off",
        "00:15:5d:01:00:02": "mac-off",
        "00:15:5d:01:00:03": "mac-running",
        "00:15:5d:01:00:04": "mac-running",
    }
    used = mac_pool.used_macs(test_conn)
    assert {"00:15:5d:01:00:01", "00:15:5d:01:00:04"} <= used
    assert (
        mac_pool.next_free_mac(MacRange("00:15:5d:01:00:01", "00:15:5d:01:00:ff"), used)
        == "00:15:5d:01:00:05"
    )
    del off
