"""Trunks: who counts as the carrier, how numbers are normalised and dialled, call counting."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontoffice.channels.voice.trunks import (
    InvalidNumber,
    Trunk,
    TrunkLine,
    dial_string,
    normalize_number,
)


def _trunk(**fields: object) -> Trunk:
    return Trunk.from_settings({"name": "t", "host": "198.51.100.7", **fields})


def test_trunk_host_is_its_only_source_unless_networks_are_listed() -> None:
    trunk = _trunk()
    assert trunk.accepts_from("198.51.100.7") and not trunk.accepts_from("198.51.100.8")
    listed = _trunk(allowed_sources=["185.45.152.0/24", "2001:db8::/32"])
    assert listed.accepts_from("185.45.152.200") and listed.accepts_from("2001:db8::5")
    assert not listed.accepts_from("198.51.100.7") and not listed.accepts_from("not-an-ip")
    assert not _trunk(host="sip.carrier.example").accepts_from("198.51.100.7")


def test_password_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(_trunk(username="u", password="s3cret"))


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("8 (495) 123-45-67", "+74951234567"),
        ("+7 495 123 45 67", "+74951234567"),
        ("74951234567", "+74951234567"),
        ("+44 20 7946 0018", "+442079460018"),
    ],
)
def test_numbers_as_people_type_them_become_e164(typed: str, e164: str) -> None:
    assert normalize_number(typed, "RU") == e164


@pytest.mark.parametrize("bad", ["", "12", "alice", "+7495;user=phone", "1" * 40, "74951234567@evil"])
def test_what_is_not_a_number_is_refused(bad: str) -> None:
    with pytest.raises(InvalidNumber):
        normalize_number(bad, "RU")


@pytest.mark.parametrize(
    ("number_format", "prefix", "dialled"),
    [("e164", "", "+74951234567"), ("digits", "", "74951234567"), ("national", "", "84951234567"),
     ("digits", "0", "074951234567")],
)  # fmt: skip
def test_dial_string_follows_the_carriers_format(number_format: str, prefix: str, dialled: str) -> None:
    trunk = _trunk(number_format=number_format, dial_prefix=prefix)
    assert dial_string("+74951234567", trunk) == dialled


@given(st.text(max_size=40))
def test_normalisation_yields_e164_or_refuses(text: str) -> None:
    try:
        e164 = normalize_number(text, "RU")
    except InvalidNumber:
        return
    assert re.fullmatch(r"\+[1-9]\d{1,15}", e164)
    assert normalize_number(e164, "RU") == e164  # idempotent
    for number_format in ("e164", "digits", "national"):
        # What goes into the Request-URI is only digits (and +): nothing to inject.
        assert re.fullmatch(r"\+?\d+", dial_string(e164, _trunk(number_format=number_format)))


def test_calls_count_until_they_end_and_a_released_call_frees_its_slot_at_once() -> None:
    line = TrunkLine(_trunk(max_calls=2))
    line.inbound.add("a")
    line.outbound.add("b")
    assert line.active_calls() == 2 and not line.has_room()
    # "a" was refused (404) or ended: its slot is free now, not after a grace period.
    line.release("a")
    assert line.active_calls() == 1 and line.has_room()
    line.release("b")
    assert line.active_calls() == 0
