"""The sip_trunks setting: validation errors name the setting and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frontoffice.config import ConfigError, load_settings


def _load(tmp_path: Path, *trunks: dict[str, object]) -> object:
    return load_settings(data_dir=tmp_path, sip_trunks=list(trunks))


def test_a_trunk_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trunk = {
        "name": "zadarma",
        "host": "185.45.152.42",
        "username": "1234",
        "password": "pw-123456",
        "register": True,
        "caller_id": "+7 495 123-45-67",
        "allowed_sources": ["185.45.152.0/24"],
    }
    monkeypatch.setenv("FRONTOFFICE_SIP_TRUNKS", json.dumps([trunk]))
    settings = load_settings(data_dir=tmp_path)
    [loaded] = settings.sip_trunks
    assert loaded.registers and loaded.caller_id == "+74951234567" and loaded.max_calls == 30
    shown = settings.masked()["sip_trunks"][0]
    assert shown["password"] == "**********" and shown["register"] is True


@pytest.mark.parametrize(
    ("trunk", "named"),
    [
        ({"name": "a", "host": "h", "allowed_sources": ["10.0.0.0/33"]}, "sip_trunks.0.allowed_sources"),
        ({"name": "a", "host": "h", "register": True}, "sip_trunks.0"),
        ({"name": "a", "host": "h", "username": "u"}, "sip_trunks.0"),
        ({"name": "a", "host": "h", "caller_id": "call me"}, "sip_trunks.0.caller_id"),
        ({"name": "a", "host": "h", "max_calls": 0}, "sip_trunks.0.max_calls"),
        ({"name": "a b", "host": "h"}, "sip_trunks.0.name"),
        ({"name": "a", "host": "h;evil"}, "sip_trunks.0.host"),
        ({"name": "a", "host": "h", "transport": "sctp"}, "sip_trunks.0.transport"),
        ({"name": "a", "host": "h", "register_expires": 5}, "sip_trunks.0.register_expires"),
        ({"name": "a", "host": "h", "passwd": "x"}, "sip_trunks.0.passwd"),
    ],
)
def test_bad_trunk_settings_name_the_field(tmp_path: Path, trunk: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=f"setting {named.replace('.', '[.]')}"):
        _load(tmp_path, trunk)


def test_trunk_names_are_unique(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate trunk name 'a'"):
        _load(tmp_path, {"name": "a", "host": "h1"}, {"name": "a", "host": "h2"})
