"""Normalising customer identities so that every spelling of one phone or email is one identity."""

from __future__ import annotations

import functools
import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import IdentityKind

__all__ = ["canonical_email_key", "normalize_email", "normalize_identity", "normalize_phone"]

# RFC 5321 §4.5.3.1.3: a path is at most 256 octets, so an address longer than 254 cannot be delivered.
MAX_EMAIL_LENGTH = 254
# RFC 5321 §4.5.3.1.1: a local part (before the @) is at most 64 octets; servers may refuse longer.
MAX_LOCAL_PART_OCTETS = 64
# Chat visitor and messenger ids are opaque tokens from our widget or a messenger API.
MAX_OPAQUE_ID_LENGTH = 200
_OPAQUE_ID = re.compile(r"^[A-Za-z0-9_.:@+\-]+$")
# Characters people type around phone numbers: spaces, brackets, dashes, dots, slashes.
_PHONE_CHARS = re.compile(r"^[0-9+()\-.\s/]+(?:\s*(?:ext\.?|x|доб\.?)\s*\d{1,6})?$", re.IGNORECASE)


def normalize_phone(raw: str, region: str) -> str:
    """Return ``raw`` in E.164, reading national forms in ``region``.

    ``8 (495) 123-45-67``, ``+7 495 1234567`` and ``74951234567`` all become ``+74951234567``.
    Raises :class:`InvalidInput` with the reason when the number is not a valid phone number.
    """
    text = raw.strip()
    if not text:
        raise InvalidInput("Phone number is empty", error_id="invalid-phone", value=raw)
    if not _PHONE_CHARS.match(text):
        raise InvalidInput(
            "Phone number contains characters other than digits, spaces, brackets and dashes",
            error_id="invalid-phone",
            value=raw,
        )
    digits = re.sub(r"\D", "", text)
    candidates = [text]
    # A bare international number without '+' (74951234567) is common in CRM exports and carrier CDRs.
    if not text.startswith("+") and len(digits) >= 11:
        candidates.append("+" + digits)
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    raise InvalidInput(
        "Not a valid phone number for the default region or in international form",
        error_id="invalid-phone",
        value=raw,
        region=region,
    )


def normalize_email(raw: str) -> str:
    """Return the address with the domain lower-cased and IDNA-normalised; the local part lower-cased.

    Mail systems treat local parts case-insensitively in practice, so ``Ivan@Example.RU`` and
    ``ivan@example.ru`` are one customer. Raises :class:`InvalidInput` with the reason.
    """
    text = raw.strip()
    if len(text) > MAX_EMAIL_LENGTH:
        raise InvalidInput("Email address is too long", error_id="invalid-email", value=raw[:80])
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(
            "Not a valid email address", error_id="invalid-email", value=raw, reason=str(exc)
        ) from None
    local = result.local_part.lower()
    if len(local.encode("utf-8")) > MAX_LOCAL_PART_OCTETS:
        raise InvalidInput(
            "Email address is too long before the @ (64 characters at most)",
            error_id="invalid-email",
            value=raw[:80],
        )
    return f"{local}@{result.ascii_domain.lower()}"


def canonical_email_key(email: str) -> str:
    """A looser key for duplicate suggestions: drops ``+tags`` and, for Gmail, dots in the local part."""
    local, _, domain = email.partition("@")
    local = local.split("+", 1)[0]
    if domain in {"gmail.com", "googlemail.com"}:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def _normalize_opaque(raw: str, kind: IdentityKind) -> str:
    text = unicodedata.normalize("NFC", raw.strip())
    if not text or len(text) > MAX_OPAQUE_ID_LENGTH or not _OPAQUE_ID.match(text):
        raise InvalidInput(
            "A chat or messenger id is 1–200 letters, digits or _.:@+-",
            error_id=f"invalid-{kind.value}-id",
            value=raw[:80],
        )
    return text


@functools.lru_cache(maxsize=4096)
def normalize_identity(kind: IdentityKind | str, raw: str, region: str) -> str:
    """Normalise any identity; the result is what the unique (kind, value) index stores.

    Pure, and called several times per inbound contact (look-up, then the new customer's identities):
    results are cached; errors are not (an exception is never cached by ``lru_cache``).
    """
    try:
        kind = IdentityKind(kind)
    except ValueError:
        raise InvalidInput(
            "Unknown identity kind", error_id="invalid-identity-kind", kind=str(kind)
        ) from None
    if kind is IdentityKind.PHONE:
        return normalize_phone(raw, region)
    if kind is IdentityKind.EMAIL:
        return normalize_email(raw)
    return _normalize_opaque(raw, kind)
