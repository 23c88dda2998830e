"""Which thread an inbound email joins, and why: a pure function of the message's headers and of
what the store knows about them (no I/O; the intake looks the facts up and passes them in).

In order (the first that matches wins; each is recorded on the message as ``thread_reason``):

1. ``in-reply-to``: the In-Reply-To id is one of our messages (inbound or outbound);
2. ``references``: an id of References is (newest first: the nearest ancestor we know);
3. ``subject-token``: the subject carries ``[#<token>]`` of a thread;
4. ``plus-address``: the message was sent to ``<mailbox>+t<token>@...`` (our Reply-To);
5. ``new-thread``: none of the above.

The two token fallbacks exist for clients that drop the headers (some web mail and phones do when
the customer answers a forwarded copy); a token can be typed by anyone, so it is taken only from
the thread's own customer or someone at the customer's domain: a different sender with a similar
subject starts a new thread. Mailing-list and bulk mail (newsletters) never join a thread by token,
and nothing ever joins a thread by subject text alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "PUBLIC_MAIL_DOMAINS",
    "ThreadChoice",
    "ThreadReason",
    "TokenThread",
    "choose_thread",
    "plus_token",
    "subject_token",
]

# "[#1234]" as our outbound subjects carry it; the token is a thread's public number.
_SUBJECT_TOKEN = re.compile(r"\[#(\d{1,18})\]")
# "support+t1234@example.com": the Reply-To our outbound mail may carry.
_PLUS_TOKEN = re.compile(r"^[^@+]+\+t(\d{1,18})@", re.IGNORECASE)
# Domains shared by strangers: a colleague at the customer's company may answer by token, a
# stranger at the same free mail provider may not.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yandex.ru",
        "ya.ru",
        "yandex.com",
        "mail.ru",
        "bk.ru",
        "inbox.ru",
        "list.ru",
        "rambler.ru",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "proton.me",
        "protonmail.com",
    }
)


class ThreadReason(StrEnum):
    """Why a message is in its thread (``messages.thread_reason``)."""

    IN_REPLY_TO = "in-reply-to"
    REFERENCES = "references"
    SUBJECT_TOKEN = "subject-token"
    PLUS_ADDRESS = "plus-address"
    NEW_THREAD = "new-thread"
    SPLIT = "split"
    MERGE = "merge"


@dataclass(frozen=True, slots=True)
class TokenThread:
    """A thread a token names: its id, its customer and that customer's email domains."""

    thread_id: int
    customer_id: int | None
    customer_domains: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    """The thread to continue (``None``: start a new one) and the reason."""

    thread_id: int | None
    reason: ThreadReason


def subject_token(subject: str) -> int | None:
    """The thread token a subject carries (the last one: replies prepend, forwards keep)."""
    found = _SUBJECT_TOKEN.findall(subject)
    return int(found[-1]) if found else None


def plus_token(addresses: Sequence[str]) -> int | None:
    """The thread token of a plus-address among the recipients (``support+t1234@...``)."""
    for address in addresses:
        found = _PLUS_TOKEN.match(address)
        if found:
            return int(found.group(1))
    return None


def _token_accepted(candidate: TokenThread | None, sender_customer_id: int | None, sender: str) -> bool:
    if candidate is None:
        return False
    if candidate.customer_id is not None and candidate.customer_id == sender_customer_id:
        return True
    domain = sender.rpartition("@")[2].lower()
    return bool(domain) and domain not in PUBLIC_MAIL_DOMAINS and domain in candidate.customer_domains


def choose_thread(
    *,
    in_reply_to: str | None,
    references: Sequence[str],
    known_ids: Mapping[str, int],
    sender: str,
    sender_customer_id: int | None,
    mailing_list: bool,
    by_subject_token: TokenThread | None,
    by_plus_address: TokenThread | None,
) -> ThreadChoice:
    """Decide the thread of an inbound message.

    ``known_ids``: which of the message's In-Reply-To / References ids are ours, and their thread
    (the caller resolves merged threads to the thread they were merged into). ``by_subject_token`` /
    ``by_plus_address``: the thread the subject's or the recipient's token names, if it exists.
    """
    if in_reply_to is not None and in_reply_to in known_ids:
        return ThreadChoice(known_ids[in_reply_to], ThreadReason.IN_REPLY_TO)
    for ref in reversed(references):
        if ref in known_ids:
            return ThreadChoice(known_ids[ref], ThreadReason.REFERENCES)
    if not mailing_list:
        if _token_accepted(by_subject_token, sender_customer_id, sender):
            assert by_subject_token is not None
            return ThreadChoice(by_subject_token.thread_id, ThreadReason.SUBJECT_TOKEN)
        if _token_accepted(by_plus_address, sender_customer_id, sender):
            assert by_plus_address is not None
            return ThreadChoice(by_plus_address.thread_id, ThreadReason.PLUS_ADDRESS)
    return ThreadChoice(None, ThreadReason.NEW_THREAD)
