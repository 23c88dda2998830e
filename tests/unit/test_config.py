import re
from pathlib import Path

import pytest

from frontoffice.config import ConfigError, load_settings


def test_defaults_put_sqlite_in_the_data_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTOFFICE_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'frontoffice.db'}"
    assert settings.default_region == "RU"
    assert settings.http_port == 8080


def test_environment_overrides_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "fo.toml"
    toml.write_text('http_port = 9000\ndefault_language = "ru"\ndefault_region = "US"\n')
    monkeypatch.setenv("FRONTOFFICE_CONFIG_FILE", str(toml))
    monkeypatch.setenv("FRONTOFFICE_HTTP_PORT", "9100")
    settings = load_settings()
    assert settings.http_port == 9100
    assert settings.default_language == "ru"
    assert settings.default_region == "US"


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("FRONTOFFICE_HTTP_PORT", "seventy", "http_port"),
        ("FRONTOFFICE_DEFAULT_REGION", "ZZ", "default_region"),
        ("FRONTOFFICE_DATABASE_URL", "mysql://x", "database_url"),
        ("FRONTOFFICE_DEFAULT_LANGUAGE", "de", "default_language"),
    ],
)
def test_bad_value_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value)
    assert env in str(err.value)


def test_unknown_setting_in_toml_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "fo.toml"
    toml.write_text("htp_port = 1\n")
    monkeypatch.setenv("FRONTOFFICE_CONFIG_FILE", str(toml))
    with pytest.raises(ConfigError, match="htp_port"):
        load_settings()


def test_secrets_are_masked(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        secret_key="super-secret",
        database_url="postgresql+asyncpg://fo:hunter2@db.local/fo",
    )
    shown = settings.masked()
    assert "super-secret" not in str(shown)
    assert "hunter2" not in str(shown)
    assert shown["database_url"] == "postgresql+asyncpg://fo:********@db.local/fo"


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path).ensure_secret_key()
    second = load_settings(data_dir=tmp_path).ensure_secret_key()
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_an_imap_mailbox_port_follows_its_security_unless_given(tmp_path: Path) -> None:
    box = {"name": "support", "host": "imap.acme.example", "username": "u", "password": "p"}
    mailboxes = [
        {**box, "entry_point": "a@acme.example"},
        {**box, "entry_point": "b@acme.example", "security": "starttls"},
        {**box, "entry_point": "c@acme.example", "security": "starttls", "port": 1143},
    ]
    settings = load_settings(data_dir=tmp_path, imap_mailboxes=mailboxes)
    assert [(m.security, m.port) for m in settings.imap_mailboxes] == [
        ("tls", 993),
        ("starttls", 143),
        ("starttls", 1143),
    ]
    with pytest.raises(ConfigError, match="imap_mailboxes"):
        load_settings(
            data_dir=tmp_path, imap_mailboxes=[{**box, "entry_point": "a@x.example", "security": "auto"}]
        )


def test_an_imap_mailbox_takes_one_credential_and_oauth2_settings_that_can_fetch_a_token(
    tmp_path: Path,
) -> None:
    box = {"name": "support", "host": "outlook.office365.com", "username": "u@acme.example"}
    box["entry_point"] = "u@acme.example"
    microsoft = {
        "oauth2_token_url": "https://login.microsoftonline.com/tenant-id/oauth2/v2.0/token",
        "oauth2_client_id": "app-id",
        "oauth2_client_secret": "app-secret-value",
        "oauth2_scope": "https://outlook.office365.com/.default",
    }
    google = {
        "oauth2_token_url": "https://oauth2.googleapis.com/token",
        "oauth2_client_id": "client.apps.googleusercontent.com",
        "oauth2_client_secret": "google-secret-value",
        "oauth2_refresh_token": "1//refresh-token-value",
    }
    settings = load_settings(data_dir=tmp_path, imap_mailboxes=[{**box, **microsoft}, {**box, **google}])
    shown = str(settings.masked())
    for secret in ("app-secret-value", "google-secret-value", "1//refresh-token-value"):
        assert secret not in shown and secret not in repr(settings)
    wrong = [
        ({**microsoft, "password": "p"}, "exactly one of password, oauth2_token and oauth2_token_url"),
        ({"oauth2_token": "t", "oauth2_client_id": "app-id"}, "oauth2_client_id without oauth2_token_url"),
        ({**microsoft, "oauth2_client_id": None}, "needs oauth2_client_id"),
        ({**microsoft, "oauth2_client_secret": None}, "needs oauth2_client_secret"),
        ({**google, "oauth2_token_url": "http://oauth2.googleapis.com/token"}, "https://"),
    ]
    for credentials, said in wrong:
        with pytest.raises(ConfigError, match=re.escape(said)):
            load_settings(data_dir=tmp_path, imap_mailboxes=[{**box, **credentials}])
    # A public client refreshing (no secret), and a token endpoint on this machine in plain http.
    public = {**google, "oauth2_client_secret": None, "oauth2_token_url": "http://127.0.0.1:8080/token"}
    (mailbox,) = load_settings(data_dir=tmp_path, imap_mailboxes=[{**box, **public}]).imap_mailboxes
    assert mailbox.oauth2_client_secret is None
