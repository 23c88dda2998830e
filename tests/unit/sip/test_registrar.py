"""Registrar policy without sockets: bindings, expiry, 423, wildcard removal, throttling and bans."""

from __future__ import annotations

from dataclasses import replace

from frontoffice.channels.voice.registrar import Registrar, RegistrationLimits
from frontoffice.channels.voice.sip import Destination, DigestAuthenticator, authorize_request, digest_ha1

from .helpers import counter_ids, make_request

REALM = "frontoffice"
HA1 = {a: digest_ha1(a, "bob", REALM, "phone-secret-1") for a in ("MD5", "SHA-256")}
PHONE = Destination("192.0.2.10", 5060, "UDP")


def registrar(**limits: float) -> Registrar:
    authenticator = DigestAuthenticator(REALM, b"k", ids=counter_ids("n"))
    return Registrar(authenticator, limits=RegistrationLimits(**limits), banned_networks=["198.51.100.0/24"])  # type: ignore[arg-type]


def register(
    reg: Registrar,
    now: float,
    *,
    expires: str | None = "300",
    contact: str | None = None,
    password: str = "phone-secret-1",
):  # type: ignore[no-untyped-def]
    request = make_request("REGISTER")
    if expires is not None:
        request.headers.set("Expires", expires)
    if contact is not None:
        request.headers.set("Contact", contact)
    challenge = reg.challenge(request, now)
    retry = authorize_request(request, challenge, username="bob", password=password, ids=counter_ids("c"))
    result = reg.authenticate(retry, now, HA1, "bob")
    return retry, result


def test_authenticated_register_binds_and_expires() -> None:
    reg = registrar()
    retry, result = register(reg, 100.0)
    assert result.ok
    response = reg.register(retry, PHONE, 7, "bob", 100.0)
    assert response.status == 200 and "expires=300" in (response.headers.get("Contact") or "")
    [binding] = reg.bindings(7, 100.0)
    assert binding.source == PHONE and str(binding.contact.uri) == "sip:alice@192.0.2.10:5060"
    assert reg.bindings(7, 401.0) == []


def test_restored_bindings_join_the_registrar_and_a_newer_registration_of_the_contact_is_kept() -> None:
    reg = registrar()
    retry, _ = register(reg, 100.0)
    reg.register(retry, PHONE, 7, "bob", 100.0)
    [mine] = reg.bindings(7, 100.0)
    stored = replace(mine, source=Destination("192.0.2.99", 5060), expires_at=150.0)
    other = replace(mine, user_id=8, username="carol", expires_at=500.0)
    expired = replace(mine, user_id=9, username="dave", expires_at=90.0)
    reg.restore([stored, other, expired], 100.0)
    assert [b.source for b in reg.bindings(7, 100.0)] == [PHONE], "the live registration wins"
    assert reg.bindings(8, 100.0) == [other]
    assert reg.bindings(9, 100.0) == []


def test_wrong_password_fails() -> None:
    reg = registrar()
    _, result = register(reg, 1.0, password="guess-guess")
    assert not result.ok


def test_too_brief_interval_gets_423_with_min_expires() -> None:
    reg = registrar(min_expires=60)
    retry, _ = register(reg, 1.0, expires="10")
    response = reg.register(retry, PHONE, 7, "bob", 1.0)
    assert response.status == 423 and response.headers.get("Min-Expires") == "60"


def test_expires_zero_and_wildcard_remove_bindings() -> None:
    reg = registrar()
    retry, _ = register(reg, 1.0)
    reg.register(retry, PHONE, 7, "bob", 1.0)
    retry, _ = register(reg, 2.0, expires="0", contact="*")
    assert reg.register(retry, PHONE, 7, "bob", 2.0).status == 200
    assert reg.bindings(7, 2.0) == []


def test_registering_someone_elses_address_is_forbidden() -> None:
    reg = registrar()
    retry, _ = register(reg, 1.0)
    # make_request's To is bob@example.com; authenticated as "mallory" it must not bind.
    assert reg.register(retry, PHONE, 9, "mallory", 1.0).status == 403


def test_failures_within_the_window_ban_the_address_until_it_expires() -> None:
    reg = registrar(max_failures=3, failure_window_s=60, ban_s=600)
    assert not reg.record_failure("203.0.113.9", 0.0)
    assert not reg.record_failure("203.0.113.9", 100.0)  # the first one left the window
    assert not reg.record_failure("203.0.113.9", 101.0)
    assert reg.record_failure("203.0.113.9", 102.0)
    assert reg.is_banned("203.0.113.9", 500.0)
    assert not reg.is_banned("203.0.113.9", 703.0)
    assert not reg.is_banned("203.0.113.10", 500.0)


def test_ban_list_networks_and_scanner_user_agents() -> None:
    reg = registrar()
    assert reg.is_banned("198.51.100.77", 0.0)
    request = make_request("REGISTER")
    request.headers.set("User-Agent", "friendly-scanner")
    assert Registrar.is_scanner(request)


def test_the_phone_registered_last_comes_first_whatever_the_expiry() -> None:
    reg = registrar(max_expires=7200)
    desk, _ = register(reg, 100.0, expires="3600", contact="<sip:desk@192.0.2.10:5060>")
    reg.register(desk, PHONE, 7, "bob", 100.0)
    softphone, _ = register(reg, 200.0, expires="300", contact="<sip:soft@192.0.2.11:5060>")
    softphone.headers.set("Call-ID", "softphone-registration")
    reg.register(softphone, Destination("192.0.2.11", 5060, "UDP"), 7, "bob", 200.0)
    # The desk phone's binding lives longer, but the softphone registered later.
    assert [b.contact.uri.user for b in reg.bindings(7, 250.0)] == ["soft", "desk"]
    # A refresh of the desk phone (same Call-ID) keeps its registration time.
    refresh, _ = register(reg, 260.0, expires="3600", contact="<sip:desk@192.0.2.10:5060>")
    refresh.headers.set("Call-ID", desk.call_id)
    reg.register(refresh, PHONE, 7, "bob", 260.0)
    assert [b.contact.uri.user for b in reg.bindings(7, 270.0)] == ["soft", "desk"]
