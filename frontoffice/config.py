"""Configuration: environment variables ``FRONTOFFICE_*`` and an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment variables, the TOML file named by
``FRONTOFFICE_CONFIG_FILE`` (or ``<data_dir>/frontoffice.toml`` when it exists), then defaults.
A bad value fails at start-up with a message that names the setting (see :func:`load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .config_imap import ImapMailboxSettings
from .config_trunks import SipTrunk

__all__ = ["ConfigError", "ImapMailboxSettings", "Settings", "SipTrunk", "load_settings"]

SUPPORTED_LANGUAGES = ("en", "ru")
DigestAlgorithm = Literal["MD5", "SHA-256"]


def _md5_only() -> list[DigestAlgorithm]:
    # Deployed phones fail on SHA-256 challenges (see channels/voice/service.py); RFC 8760 is opt-in.
    return ["MD5"]


class ConfigError(Exception):
    """A configuration value is invalid; the message names the setting."""


def _toml_file() -> Path | None:
    explicit = os.environ.get("FRONTOFFICE_CONFIG_FILE")
    if explicit:
        return Path(explicit)
    data_dir = Path(os.environ.get("FRONTOFFICE_DATA_DIR", "data"))
    candidate = data_dir / "frontoffice.toml"
    return candidate if candidate.exists() else None


class Settings(BaseSettings):
    """Effective configuration of one Frontoffice node."""

    model_config = SettingsConfigDict(env_prefix="FRONTOFFICE_", extra="forbid", validate_default=True)

    data_dir: Path = Field(
        default=Path("data"), description="Directory for the SQLite database, secrets, recordings"
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means SQLite (WAL) at <data_dir>/frontoffice.db",
    )
    nats_url: str = Field(
        default="",
        description="NATS server(s) of a cluster (nats://host:4222, comma-separated); with a PostgreSQL "
        "database_url several nodes serve one database, one of them routing (docs/scaling.md). "
        "Empty: one node, in-process bus",
    )
    cluster_name: str = Field(
        default="",
        max_length=100,
        description="Name of the cluster on NATS (its subjects); empty: the database's name",
    )
    node_name: str = Field(
        default="", max_length=200, description="This node's name in a cluster; empty: <hostname>:<http_port>"
    )
    http_host: str = Field(default="127.0.0.1", description="Address the web/API server listens on")
    http_port: int = Field(default=8080, ge=1, le=65535, description="Port the web/API server listens on")
    public_url: str = Field(default="", description="URL users reach the server at; default http://host:port")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Other sites (https://host[:port]) whose pages may open /api/v1/stream with the "
        "user's session cookie; this site's own origin is always allowed",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDR networks of reverse proxies whose X-Forwarded-For names the "
        "client (sign-in throttling, the audit log); empty: the connection's address is the client's",
    )
    sip_host: str = Field(default="127.0.0.1", description="Address the SIP transports listen on")
    sip_port: int = Field(default=5060, ge=1, le=65535, description="Port the SIP transports listen on")
    voice_enabled: bool = Field(default=False, description="Run the voice channel (SIP registrar and B2BUA)")
    sip_standby: bool = Field(
        default=False,
        description="A standby voice node: start without the SIP address and take it as soon as it can be "
        "bound (keepalived moved it here, or the active voice node died); docs/scaling.md",
    )
    voice_node_silent_after_s: float = Field(
        default=15.0,
        ge=2.0,
        le=3600.0,
        description="In a cluster: a voice node not heard of (no heartbeat) for this long is dead, and the "
        "routing leader closes the calls it left up as lost (lost_node_failure), freeing their agents, "
        "and ends its campaign calls' attempts as unknown; docs/scaling.md",
    )
    sip_realm: str = Field(
        default="frontoffice",
        min_length=1,
        max_length=128,
        description="Digest realm of agents' phones; changing it invalidates stored SIP passwords",
    )
    sip_tcp: bool = Field(default=True, description="Also accept SIP over TCP on sip_port")
    media_host: str = Field(default="", description="Address for RTP (music, relay); empty means sip_host")
    rtp_port_min: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="First UDP port for calls' RTP (with rtp_port_max: a range a firewall lets through, "
        "an even port for each of a call's two legs, the odd one above it left to RTCP); 0: any free "
        "port the system chooses",
    )
    rtp_port_max: int = Field(
        default=0, ge=0, le=65535, description="Last UDP port for calls' RTP (see rtp_port_min)"
    )
    media_process: bool = Field(
        default=True,
        description="Relay RTP, play music and record in a process of its own (a core apart from SIP)",
    )
    voice_recordings: bool = Field(default=True, description="Record calls to <data_dir>/recordings")
    voice_recordings_stereo: bool = Field(
        default=False, description="Also record each call as stereo WAV (caller left, agent right)"
    )
    voice_announce_interval_s: float = Field(
        default=45.0,
        ge=0,
        description="Seconds between position / expected-wait announcements to queued callers; 0 = off",
    )
    sip_qualify_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between OPTIONS to each registered phone; an agent none of whose phones "
        "answers is not offered calls (not_ready, reason unreachable); 0 = off",
    )
    sip_digest_algorithms: list[DigestAlgorithm] = Field(
        default_factory=_md5_only,
        min_length=1,
        description="Digest challenges to phones, in order; add SHA-256 first once all phones do RFC 8760",
    )
    sip_banned_networks: list[str] = Field(
        default_factory=list, description="CIDR networks whose SIP requests are dropped unanswered"
    )
    sip_trunks: list[SipTrunk] = Field(
        default_factory=list,
        description="Carrier trunks: inbound allow-list, registration out, outbound calls (docs/voice.md)",
    )
    sip_tls_cert: Path | None = Field(default=None, description="PEM certificate: enables SIP over TLS")
    sip_tls_key: Path | None = Field(default=None, description="PEM private key of sip_tls_cert")
    sip_tls_port: int = Field(default=5061, ge=1, le=65535, description="Port SIP over TLS listens on")
    smtp_enabled: bool = Field(
        default=False, description="Run the built-in SMTP server that receives mail for email entry points"
    )
    smtp_host: str = Field(default="127.0.0.1", description="Address the built-in SMTP server listens on")
    smtp_port: int = Field(
        default=2525, ge=0, le=65535, description="Port of the built-in SMTP server (0: any free)"
    )
    smtp_tls_cert: Path | None = Field(default=None, description="PEM certificate: offers STARTTLS on SMTP")
    smtp_tls_key: Path | None = Field(default=None, description="PEM private key of smtp_tls_cert")
    smtp_auth_username: str = Field(
        default="", description="When set, SMTP clients must log in (AUTH PLAIN/LOGIN, over TLS only)"
    )
    smtp_auth_password: SecretStr = Field(default=SecretStr(""), description="Password of smtp_auth_username")
    email_max_message_bytes: int = Field(
        default=25 * 1024 * 1024,
        ge=1024,
        description="Largest inbound email (SMTP SIZE; larger is refused with 552)",
    )
    email_blocked_senders: list[str] = Field(
        default_factory=list,
        description="Addresses or domains whose mail is stored flagged and never routed",
    )
    email_auto_ack_limit: int = Field(
        default=3, ge=0, description="Auto-acknowledgements per sender per hour at most (mail loops)"
    )
    imap_mailboxes: list[ImapMailboxSettings] = Field(
        default_factory=list, description="IMAP mailboxes read into email entry points (docs/email.md)"
    )
    default_region: str = Field(default="RU", description="Region for phone numbers written without +country")
    default_language: Literal["en", "ru"] = Field(default="en", description="UI language for new users")
    time_zone: str = Field(
        default="UTC", description="IANA time zone of the center: 'today' on the wallboard"
    )
    sl_threshold_s: float = Field(
        default=20.0, gt=0, description="Service-level answer target for live figures"
    )
    short_abandon_s: float = Field(
        default=5.0, ge=0, description="Abandons shorter than this are not counted"
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key that signs session cookies; empty means generated once into <data_dir>/secret_key",
    )
    session_max_age_s: int = Field(default=12 * 3600, ge=60, description="Browser session lifetime")
    secure_cookies: bool = Field(default=False, description="Mark cookies Secure (enable behind HTTPS)")
    login_max_failures: int = Field(default=5, ge=1, description="Failed sign-ins before throttling")
    login_window_s: int = Field(default=900, ge=1, description="Window for counting failed sign-ins")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest accepted request body")
    csv_max_rows: int = Field(default=100_000, ge=1, description="Largest CSV import, in rows")
    web_form_rate_limit: int = Field(
        default=10, ge=1, description="Public web form submissions allowed per client address per window"
    )
    web_form_rate_window_s: int = Field(
        default=600, ge=1, description="Window of the public web forms' rate limit, in seconds"
    )
    captcha_verify_url: str = Field(
        default="",
        description="Captcha verification URL for public web forms (hCaptcha, reCAPTCHA, Turnstile "
        "siteverify); empty: no captcha",
    )
    captcha_secret: str = Field(default="", description="The captcha service's secret key")
    csv_max_bytes: int = Field(
        default=64 * 1_048_576,
        ge=1024,
        description="Largest CSV import upload, in bytes (its own limit, not max_body_bytes): "
        "room for csv_max_rows rows of up to 670 bytes",
    )
    metrics_public: bool = Field(default=False, description="Serve /metrics without authentication")
    log_format: Literal["auto", "json", "console"] = Field(default="auto", description="Log line format")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level")
    mail_domain: str = Field(
        default="",
        description="Domain of the Message-IDs of mail we send (<uuid>@domain); empty: the domain of "
        "the From address",
    )
    smtp_relay_host: str = Field(
        default="localhost", description="Mail relay (smarthost) outbound email is handed to (docs/outbox.md)"
    )
    smtp_relay_port: int = Field(
        default=25, ge=1, le=65535, description="Port of the relay: 587 submission, 465 implicit TLS, 25"
    )
    smtp_relay_security: Literal["auto", "starttls", "tls", "none"] = Field(
        default="auto",
        description="auto: STARTTLS when the relay offers it; starttls: required; tls: implicit TLS "
        "(port 465); none: plain text (a relay on loopback only)",
    )
    smtp_relay_username: str = Field(default="", description="Relay login (SMTP AUTH); empty: no login")
    smtp_relay_password: SecretStr = Field(default=SecretStr(""), description="Relay password")
    smtp_relay_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle to verify the relay's certificate (default: the system's)"
    )
    smtp_relay_timeout_s: float = Field(
        default=60.0, gt=0, le=110, description="Seconds to wait for each answer of the relay"
    )
    dkim_private_key_file: Path | None = Field(
        default=None, description="PEM RSA private key: outbound mail is DKIM-signed with it (docs/outbox.md)"
    )
    dkim_selector: str = Field(default="", description="DKIM selector (the DNS record <selector>._domainkey)")
    dkim_domain: str = Field(default="", description="DKIM signing domain (d=); empty: the From domain")
    outbox_worker: bool = Field(
        default=True, description="Deliver the outbox (email replies...) from this node"
    )
    webhook_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=60,
        description="Seconds a webhook receiver has to answer (docs/webhooks.md; Standard Webhooks: 15-30)",
    )
    screen_pop_url: str = Field(
        default="",
        description="Screen-pop lookup URL template for every project without its own, e.g. "
        "https://erp.example/api/customers?phone={phone} (docs/integrations.md); empty: off",
    )
    screen_pop_auth_header: SecretStr = Field(
        default=SecretStr(""), description="Header sent with each lookup, e.g. 'Authorization: Bearer ...'"
    )
    screen_pop_identity: str = Field(
        default="phone", pattern="^(phone|email)$", description="Which identity the lookup asks by"
    )
    screen_pop_timeout_s: float = Field(
        default=1.0, gt=0, le=10, description="A lookup slower than this is given up (the offer never waits)"
    )
    screen_pop_cache_ttl_s: float = Field(
        default=300.0,
        ge=0,
        le=86400,
        description="How long a lookup's answer is reused for the same identity",
    )
    screen_pop_cache_size: int = Field(default=10_000, ge=0, le=1_000_000, description="Answers kept at most")
    integrations_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) outgoing integrations (webhooks, screen-pop lookups, SMS HTTP gateways, "
        "Telegram Bot API servers, the captcha check) may reach besides public addresses, "
        "e.g. 192.168.10.0/24 for a billing or 1C server on the LAN; loopback, private, link-local "
        "(169.254.169.254) and other internal addresses are refused otherwise (docs/integrations.md)",
    )
    change_feed_retention_days: int = Field(
        default=90,
        ge=1,
        le=36_500,
        description="Days a deletion stays in the change feeds (its tombstone); a client whose cursor "
        "is older is told to read everything again (410 cursor-expired; docs/integrations.md)",
    )
    job_runner: bool = Field(
        default=True,
        description="Run background jobs (imports, exports, personal data exports, the daily retention "
        "sweep) on this node (docs/privacy.md)",
    )
    messaging_channels: bool = Field(
        default=True,
        description="Connect the SMS entry points' SMPP links and poll the Telegram bots from this node "
        "(docs/sms.md, docs/telegram.md); one node only",
    )
    attachment_max_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest file an agent may attach (most providers refuse mail over 25 MB once encoded)",
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description="Event loop of the server: uvloop (libuv) where installed, else asyncio's own",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _toml_file()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    @field_validator("default_region")
    @classmethod
    def _region_known(cls, value: str) -> str:
        value = value.upper()
        if value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (use a two-letter code such as RU)")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow)"
            ) from None
        return value

    @field_validator("trusted_proxies", "integrations_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"not an address or CIDR network: {entry!r}") from None
        return [entry.strip() for entry in value]

    @field_validator("database_url")
    @classmethod
    def _url_supported(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'frontoffice.db').resolve()}"
        if not self.public_url:
            self.public_url = f"http://{self.http_host}:{self.http_port}"
        if self.nats_url and self.is_sqlite:
            raise ValueError(
                "nats_url needs a PostgreSQL database_url: the nodes of a cluster share one database"
            )
        if self.nats_url and not self.secret_key.get_secret_value():
            raise ValueError(
                "nats_url needs secret_key: every node of a cluster signs sessions and its messages to "
                "the other nodes with the same key"
            )
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            raise ValueError("smtp_tls_cert and smtp_tls_key must be set together")
        if (self.dkim_private_key_file is None) != (not self.dkim_selector):
            raise ValueError("dkim_private_key_file and dkim_selector must be set together")
        if (self.sip_tls_cert is None) != (self.sip_tls_key is None):
            raise ValueError("sip_tls_cert and sip_tls_key must be set together")
        if (self.rtp_port_min == 0) != (self.rtp_port_max == 0):
            raise ValueError("rtp_port_min and rtp_port_max must be set together")
        # One call's two legs take two even ports, each with its odd RTCP neighbour (media.RtpPorts).
        first_even = self.rtp_port_min + self.rtp_port_min % 2
        if self.rtp_port_min and not (self.rtp_port_min >= 1024 and self.rtp_port_max >= first_even + 3):
            raise ValueError(
                "rtp_port_min must be 1024 or more, and the range must hold one call: two even ports, "
                "each with the odd port above it"
            )
        names = [t.name for t in self.sip_trunks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"sip_trunks: duplicate trunk name {duplicates[0]!r}")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def ensure_secret_key(self) -> str:
        """Return the signing key, generating and storing one in the data directory on first use."""
        if self.secret_key.get_secret_value():
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            path.write_text(key)
            path.chmod(0o600)
        self.secret_key = SecretStr(key)
        return key

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets (and passwords in URLs) masked, for display."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                if value.get_secret_value():
                    value = "********"
                else:
                    value = "(generated in data_dir)" if name == "secret_key" else ""
            elif name == "database_url":
                value = _mask_url_password(value)
            elif name == "imap_mailboxes":
                value = [box.model_dump(mode="json") for box in value]
            elif name == "sip_trunks":
                # Passwords come out as ********.
                value = [trunk.model_dump(mode="json", by_alias=True) for trunk in value]
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        return shown


def _mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    if ":" in creds:
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:********@{host}"
    return url


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one :class:`ConfigError` naming each bad setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(settings)"
            env = f"FRONTOFFICE_{loc.upper()}" if loc != "(settings)" else ""
            lines.append(f"setting {loc!s} ({env}): {err['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
