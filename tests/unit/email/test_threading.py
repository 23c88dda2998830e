"""The threading rules (domain/email_threading.py): which thread an inbound email joins, and why."""

from __future__ import annotations

from typing import Any

from frontoffice.domain.email_threading import (
    ThreadReason,
    TokenThread,
    choose_thread,
    plus_token,
    subject_token,
)

CUSTOMER = 7
THREAD = TokenThread(
    thread_id=40, customer_id=CUSTOMER, customer_domains=frozenset({"romashka.ru", "gmail.com"})
)


def choose(**given: Any) -> tuple[int | None, ThreadReason]:
    facts: dict[str, Any] = {
        "in_reply_to": None,
        "references": (),
        "known_ids": {},
        "sender": "ivan@romashka.ru",
        "sender_customer_id": CUSTOMER,
        "mailing_list": False,
        "by_subject_token": None,
        "by_plus_address": None,
    } | given
    choice = choose_thread(**facts)
    return choice.thread_id, choice.reason


def test_in_reply_to_wins_over_references_and_tokens() -> None:
    assert choose(
        in_reply_to="b@x", references=("a@x",), known_ids={"a@x": 1, "b@x": 2}, by_subject_token=THREAD
    ) == (2, ThreadReason.IN_REPLY_TO)


def test_the_nearest_known_reference_is_taken() -> None:
    assert choose(
        in_reply_to="unknown@x", references=("a@x", "b@x", "c@x"), known_ids={"a@x": 1, "b@x": 2}
    ) == (2, ThreadReason.REFERENCES)


def test_a_token_from_the_threads_customer_or_their_company_is_taken() -> None:
    assert choose(by_subject_token=THREAD) == (40, ThreadReason.SUBJECT_TOKEN)
    assert choose(by_plus_address=THREAD, sender="olga@romashka.ru", sender_customer_id=None) == (
        40,
        ThreadReason.PLUS_ADDRESS,
    )


def test_a_different_sender_with_the_token_starts_a_new_thread() -> None:
    assert choose(by_subject_token=THREAD, sender="x@other.ru", sender_customer_id=99) == (
        None,
        ThreadReason.NEW_THREAD,
    )
    # A stranger at the same free mail provider is a stranger.
    assert choose(by_subject_token=THREAD, sender="someone@gmail.com", sender_customer_id=None) == (
        None,
        ThreadReason.NEW_THREAD,
    )


def test_newsletters_never_join_a_thread_by_token() -> None:
    assert choose(by_subject_token=THREAD, mailing_list=True) == (None, ThreadReason.NEW_THREAD)


def test_tokens_are_read_from_subjects_and_plus_addresses() -> None:
    assert subject_token("RE: FW: [#12] Re: [#1234] invoice") == 1234
    assert subject_token("Re: order #1234") is None
    assert plus_token(["a@b.ru", "Support+t77@acme.example"]) == 77
    assert plus_token(["support+sales@acme.example"]) is None
