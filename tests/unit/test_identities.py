import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.services.identities import (
    canonical_email_key,
    normalize_email,
    normalize_identity,
    normalize_phone,
)


@pytest.mark.parametrize(
    "raw", ["8 (495) 123-45-67", "+7 495 1234567", "74951234567", "+7(495)123-45-67", "495 123 45 67"]
)
def test_every_spelling_of_a_moscow_number_is_one_e164_identity(raw: str) -> None:
    assert normalize_phone(raw, "RU") == "+74951234567"


def test_default_region_decides_national_numbers() -> None:
    assert normalize_phone("(650) 253-0000", "US") == "+16502530000"
    assert normalize_phone("+1 650 253 0000", "RU") == "+16502530000"


@pytest.mark.parametrize("raw", ["", "12", "abc", "+7 000", "8 (495) 123-45-67-89-00", "call me"])
def test_malformed_phone_is_rejected_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_phone(raw, "RU")
    assert err.value.error_id == "invalid-phone"
    assert err.value.message


def test_email_is_normalised_case_insensitively() -> None:
    assert normalize_email("  Ivan.Petrov@Example.RU ") == "ivan.petrov@example.ru"


@pytest.mark.parametrize(
    "raw", ["bad@@example.com", "no-at-sign", "a@b", "x" * 300 + "@example.com", "a b@example.com"]
)
def test_malformed_email_is_rejected_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_email(raw)
    assert err.value.error_id == "invalid-email"


def test_duplicate_key_ignores_plus_tags_and_gmail_dots() -> None:
    assert canonical_email_key("ivan.petrov+shop@gmail.com") == canonical_email_key(
        "ivanpetrov@googlemail.com"
    )
    assert canonical_email_key("ivan.petrov@example.ru") != canonical_email_key("ivanpetrov@example.ru")


def test_chat_ids_are_opaque_but_bounded() -> None:
    assert normalize_identity("chat", " visitor-42 ", "RU") == "visitor-42"
    with pytest.raises(InvalidInput):
        normalize_identity("chat", "<script>", "RU")
    with pytest.raises(InvalidInput):
        normalize_identity("fax-machine", "1", "RU")


@given(st.text(max_size=40))
def test_phone_normalisation_never_crashes_on_arbitrary_text(raw: str) -> None:
    try:
        result = normalize_phone(raw, "RU")
    except InvalidInput:
        return
    assert result.startswith("+") and result[1:].isdigit()
    assert normalize_phone(result, "RU") == result


@given(st.text(max_size=60))
def test_email_normalisation_never_crashes_and_is_idempotent(raw: str) -> None:
    try:
        result = normalize_email(raw)
    except InvalidInput:
        return
    assert normalize_email(result) == result
