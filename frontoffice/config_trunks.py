"""The ``sip_trunks`` setting: one carrier trunk per entry (TOML array of tables or JSON in the
environment). Validation errors name the field (``setting sip_trunks.0.allowed_sources``)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["SipTrunk"]

# RFC 3261 §20.7: REGISTER expiry is the carrier's to grant; below a minute re-registrations would
# flood it, and a day is the longest any carrier grants.
MIN_REGISTER_EXPIRES = 60
MAX_REGISTER_EXPIRES = 86_400


class SipTrunk(BaseModel):
    """One carrier trunk.

    Inbound: INVITEs whose source address is in ``allowed_sources`` (default: ``host`` when it is an IP
    address) are carrier calls. Outbound: calls go to ``host:port`` over ``transport``; a 401/407 is
    answered with ``username``/``password``. ``register = true`` keeps a registration at the carrier.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Name in the API and in logs")
    host: str = Field(min_length=1, max_length=253, description="Carrier's SIP proxy (IP or DNS name)")
    port: int = Field(default=5060, ge=1, le=65535)
    transport: Literal["udp", "tcp", "tls"] = "udp"
    allowed_sources: list[str] = Field(
        default_factory=list, description="Addresses/CIDR networks the carrier sends INVITEs from"
    )
    username: str | None = Field(default=None, min_length=1, max_length=128)
    password: SecretStr | None = None
    auth_username: str | None = Field(
        default=None, description="Digest username when it differs from the account (user part)"
    )
    realm: str | None = Field(default=None, description="Answer only challenges of this realm")
    # "register" in the file; the attribute has another name since BaseModel has a register().
    registers: bool = Field(default=False, alias="register", description="Keep a registration at the carrier")
    register_expires: int = Field(default=600, ge=MIN_REGISTER_EXPIRES, le=MAX_REGISTER_EXPIRES)
    max_calls: int = Field(default=30, ge=1, le=10_000, description="Concurrent calls in and out")
    caller_id: str | None = Field(default=None, description="Our number (E.164) shown to the called party")
    from_domain: str | None = Field(default=None, description="Host part of From; default the trunk host")
    region: str | None = Field(
        default=None, description="Region of numbers without +; default default_region"
    )
    number_format: Literal["e164", "digits", "national"] = Field(
        default="e164",
        description="How the carrier wants the dialled number: +74951234567, 74951234567, 84951234567",
    )
    dial_prefix: str = Field(default="", pattern=r"^[0-9*#+]{0,16}$", description="Prepended to every number")

    @field_validator("host", "from_domain")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", value):
            raise ValueError(f"not a host name or address: {value!r}")
        return value.strip("[]")

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
        return value

    @field_validator("caller_id")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            raise ValueError(
                f"caller_id must be an E.164 number such as +74951234567, not {value!r}"
            ) from None
        if not phonenumbers.is_possible_number(number):
            raise ValueError(f"caller_id {value!r} is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (use a two-letter code such as RU)")
        return value.upper() if value else value

    @model_validator(mode="after")
    def _consistent(self) -> SipTrunk:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together")
        if self.registers and self.username is None:
            raise ValueError("register = true needs username and password")
        return self

    def source_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Where the carrier's INVITEs may come from: ``allowed_sources``, else ``host`` if an IP."""
        if self.allowed_sources:
            return [ipaddress.ip_network(n, strict=False) for n in self.allowed_sources]
        try:
            return [ipaddress.ip_network(self.host)]
        except ValueError:
            return []  # a DNS name: inbound needs allowed_sources (registered trunks reuse the flow)
