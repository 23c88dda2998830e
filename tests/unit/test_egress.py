"""Which addresses outgoing integrations may reach: public ones, and the allowed networks."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from frontoffice.config import ConfigError, load_settings
from frontoffice.services.egress import AddressRefused, EgressPolicy, refusal_of


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "169.254.169.254",
        "fe80::1",
        "0.0.0.0",
        "::",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.10",
        "fd00::1",
        "100.64.0.1",
        "224.0.0.251",
        "ff02::1",
        "240.0.0.1",
        "255.255.255.255",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
    ],
)
def test_internal_addresses_are_not_public(address: str) -> None:
    assert refusal_of(ipaddress.ip_address(address)) is not None
    assert EgressPolicy().why_refused(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert EgressPolicy().why_refused(address) is None


def test_an_allowed_network_lifts_the_refusal_for_its_addresses_only() -> None:
    policy = EgressPolicy.from_setting(["192.168.10.0/24", "10.0.0.5"])
    assert policy.why_refused("192.168.10.20") is None
    assert policy.why_refused("10.0.0.5") is None
    assert policy.why_refused("::ffff:192.168.10.20") is None  # the IPv4 address it maps
    assert policy.why_refused("192.168.11.1") == "a private network address"
    assert policy.why_refused("169.254.169.254") is not None


async def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"mixed.example": ["93.184.216.34", "10.0.0.1"], "erp.example": ["93.184.216.34"]}[host]

    policy = EgressPolicy(resolver=resolver)
    await policy.check_url("https://erp.example/api/{phone}")
    with pytest.raises(AddressRefused) as refused:
        await policy.check_url("https://mixed.example/hooks")
    assert refused.value.address == "10.0.0.1"
    assert "integrations_allowed_networks" in str(refused.value)


async def test_a_name_that_does_not_resolve_now_passes_the_configuration_check() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    await EgressPolicy(resolver=resolver).check_url("https://not-yet.example/hooks")


async def test_an_smpp_host_is_checked_like_a_url_s_host() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        if host == "smsc.lan":
            return ["192.168.10.7"]
        if host in ("127.0.0.1", "93.184.216.34"):
            return [host]
        raise OSError("Name or service not known")

    policy = EgressPolicy(resolver=resolver)
    for host, address in (("127.0.0.1", "127.0.0.1"), ("smsc.lan", "192.168.10.7")):
        with pytest.raises(AddressRefused) as refused:
            await policy.check_host(host, 2775)
        assert (refused.value.host, refused.value.address) == (host, address)
    await policy.check_host("93.184.216.34", 2775)
    await policy.check_host("not-yet.example", 2775)  # checked again at each connection
    await EgressPolicy.from_setting(["192.168.10.0/24"], resolver=resolver).check_host("smsc.lan", 2775)


def test_the_setting_takes_cidr_networks_and_names_a_bad_entry(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path, integrations_allowed_networks=[" 192.168.10.0/24", "10.0.0.5"]
    )
    assert settings.integrations_allowed_networks == ["192.168.10.0/24", "10.0.0.5"]
    with pytest.raises(ConfigError, match="integrations_allowed_networks"):
        load_settings(data_dir=tmp_path, integrations_allowed_networks=["the LAN"])
