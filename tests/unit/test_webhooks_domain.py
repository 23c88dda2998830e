"""The webhook catalogue's mapping from log rows, and the Standard Webhooks signature (a published
vector of the reference libraries)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from frontoffice.domain import webhooks as wh
from frontoffice.services.screen_pop import LookupCache, LookupConfig, LookupResult

AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def test_the_reference_libraries_vector_signs_the_same() -> None:
    # The test vector of the Standard Webhooks reference libraries (and Svix's docs).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        wh.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


def test_during_a_rotation_the_header_lists_a_signature_per_secret() -> None:
    new, old = wh.encode_secret(b"n" * 32), wh.encode_secret(b"o" * 24)
    header = wh.signature_header([new, old], "msg_1", 1, b"{}")
    assert header.split(" ") == [wh.sign(new, "msg_1", 1, b"{}"), wh.sign(old, "msg_1", 1, b"{}")]


def test_a_secret_is_24_to_64_random_bytes_behind_whsec() -> None:
    assert wh.encode_secret(bytes(24)).startswith("whsec_")
    assert wh.decode_secret(wh.encode_secret(b"k" * 64)) == b"k" * 64
    with pytest.raises(ValueError):
        wh.encode_secret(bytes(16))
    with pytest.raises(ValueError):
        wh.decode_secret("whsec_not base64!")


def row(kind: str, **extra: object) -> dict[str, object]:
    return {
        "interaction_id": 7,
        "at": AT,
        "type": kind,
        "state": "queued",
        "queue_id": 2,
        "agent_id": None,
        "project_id": 3,
        "channel": "voice",
        "data": {},
    } | extra


def test_interaction_log_rows_raise_their_events_and_others_none() -> None:
    (queued,) = wh.interaction_events(row("queued"))
    assert queued.type == "interaction.queued" and queued.subject == "interaction:7"
    assert queued.project_id == 3 and queued.data["queue_id"] == 2
    assert queued.body()["timestamp"] == "2026-12-07T09:30:00Z"
    assert wh.interaction_events(row("done"))[0].type == "interaction.completed"
    assert wh.interaction_events(row("priority_changed")) == []
    assert wh.interaction_events(row("call_leg", data={"leg": "agent"})) == []


def test_the_caller_s_leg_ending_is_the_call_ending() -> None:
    leg = {"leg": "caller", "call_id": "abc", "cause": "bye_caller", "talk_s": 42.0, "duration_s": 50.0}
    (ended,) = wh.interaction_events(row("call_leg", data=leg))
    assert ended.type == "call.ended" and ended.data["cause"] == "bye_caller" and ended.data["talk_s"] == 42.0


def test_audit_rows_of_customers_tickets_and_deals_raise_their_events() -> None:
    def audit(action: str, **details: object) -> dict[str, object]:
        return {"action": action, "object_id": "5", "at": AT, "actor_id": 1, "details": details}

    assert wh.audit_events(audit("customer.update", fields=["vip"]))[0].data["changed_fields"] == ["vip"]
    assert wh.audit_events(audit("customer.identity_add"))[0].type == "customer.updated"
    merged = wh.audit_events(audit("customer.merge", merged_id=9))[0]
    assert merged.type == "customer.merged" and merged.data["merged_id"] == 9
    deleted = wh.audit_events(audit("customer.delete", project_ids=[4]))[0]
    assert deleted.data["project_ids"] == [4]
    assert wh.audit_events(audit("ticket.agent_reply"))[0].subject == "ticket:5"
    assert wh.audit_events(audit("deal.create"))[0].type == "deal.created"
    assert wh.audit_events(audit("user.sign_in")) == []


class Ticking:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lookup_cache_forgets_after_its_ttl_and_drops_the_least_recently_used() -> None:
    clock = Ticking()
    cache = LookupCache(ttl_s=10, size=2, now=clock)
    found = LookupResult("found", {"plan": "Gold"})
    cache.put(("u", "a"), found)
    cache.put(("u", "b"), found)
    assert cache.get(("u", "a")) is found  # a is now the most recently used
    cache.put(("u", "c"), found)
    assert cache.get(("u", "b")) is None and len(cache) == 2
    clock.now += 10
    assert cache.get(("u", "a")) is None


def test_the_url_template_takes_the_identity_url_encoded() -> None:
    config = LookupConfig("https://erp.example/c?phone={phone}&q={value}", "Authorization: Bearer t", "phone")
    assert config.url_for("+7 916") == "https://erp.example/c?phone=%2B7%20916&q=%2B7%20916"
    assert config.headers() == {"Authorization": "Bearer t"}
    assert LookupConfig("https://x/{email}", "", "email").headers() == {}
