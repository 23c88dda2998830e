"""Qualify: OPTIONS to each registered phone; an agent none of whose phones answers is unreachable."""

from __future__ import annotations

from frontoffice.channels.voice.registrar import Registrar, RegistrationLimits
from frontoffice.channels.voice.sip import (
    Destination,
    DigestAuthenticator,
    NameAddress,
    Via,
    parse_uri,
)

from .helpers import counter_ids, make_request

PHONE = Destination("192.0.2.10", 5060, "UDP")
SENDER = NameAddress(parse_uri("sip:frontoffice@192.0.2.1"))
VIA = Via("UDP", "192.0.2.1", 5060)


def registrar_with(*contacts: str, user_id: int = 7) -> Registrar:
    reg = Registrar(DigestAuthenticator("r", b"k", ids=counter_ids()), limits=RegistrationLimits())
    for contact in contacts:
        request = make_request("REGISTER")
        request.headers.set("Contact", contact)
        request.headers.set("To", "<sip:bob@example.com>")
        assert reg.register(request, PHONE, user_id, "bob", 0.0).status == 200
    return reg


def test_each_live_binding_is_due_once_until_it_is_answered_or_times_out() -> None:
    reg = registrar_with("<sip:bob@192.0.2.10:5060>", "<sip:bob@192.0.2.11:5060>")
    due = reg.qualify_due(1.0)
    assert len(due) == 2
    assert reg.qualify_due(2.0) == []  # one OPTIONS at a time per phone
    reg.qualified(due[0], True)
    assert reg.qualify_due(3.0) == [due[0]]


def test_options_goes_to_the_registered_contact() -> None:
    reg = registrar_with("<sip:bob@192.0.2.10:5060>")
    [binding] = reg.qualify_due(1.0)
    options = reg.options_for(binding, VIA, SENDER)
    assert options.method == "OPTIONS" and str(options.uri) == "sip:bob@192.0.2.10:5060"
    assert options.top_via.branch and options.from_.tag


def test_agent_is_unreachable_only_when_every_phone_fails_and_back_when_one_answers() -> None:
    reg = registrar_with("<sip:bob@192.0.2.10:5060>", "<sip:bob@192.0.2.11:5060>")
    desk, soft = reg.qualify_due(1.0)
    reg.qualified(desk, False)
    assert reg.reachability_changes(1.0) == []  # the softphone may still answer
    reg.qualified(soft, False)
    assert reg.reachability_changes(1.0) == [(7, False)]
    assert not reg.is_reachable(7)
    assert reg.reachability_changes(1.0) == []  # reported once
    reg.qualify_due(2.0)
    reg.qualified(soft, True)
    assert reg.reachability_changes(2.0) == [(7, True)] and reg.is_reachable(7)


def test_a_new_registration_makes_an_unreachable_agent_reachable() -> None:
    reg = registrar_with("<sip:bob@192.0.2.10:5060>")
    [binding] = reg.qualify_due(1.0)
    reg.qualified(binding, False)
    assert reg.reachability_changes(1.0) == [(7, False)]
    request = make_request("REGISTER")
    request.headers.set("Contact", "<sip:bob@192.0.2.10:5060>")
    request.headers.set("To", "<sip:bob@example.com>")
    reg.register(request, PHONE, 7, "bob", 2.0)
    assert reg.is_reachable(7)
    assert reg.reachability_changes(2.0) == []  # the REGISTER itself is the news (the service acts on it)


def test_a_lapsed_registration_does_not_make_the_agent_reachable() -> None:
    reg = registrar_with("<sip:bob@192.0.2.10:5060>")
    [binding] = reg.qualify_due(1.0)
    reg.qualified(binding, False)
    assert reg.reachability_changes(1.0) == [(7, False)]
    reg.expire(10_000.0)
    assert reg.reachability_changes(10_000.0) == [] and not reg.is_reachable(7)
