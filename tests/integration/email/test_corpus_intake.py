"""The corpus (tests/data/email/) through the email intake: each message's thread and what became
of it (a new routed contact, appended to the thread's open interaction, stored without routing),
on SQLite and PostgreSQL.

Six customers write first (threads 1-6); we answer each (outbound messages ``reply-<n>``); then
the rest of the corpus arrives: replies by header, token and plus-address, strangers, newsletters,
automatic replies, delivery reports, forwards, charsets, attachments, malformed mail, a blocked sender.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from frontoffice.bootstrap import Container
from frontoffice.domain.model import IdentityKind
from frontoffice.services.context import Actor
from frontoffice.services.schemas import CustomerIn, IdentityIn
from frontoffice.store.tables import (
    CustomerMergeSuggestion,
    Interaction,
    Message,
    MessageAttachment,
)

from .helpers import email_entry_point

CORPUS = Path(__file__).parents[2] / "data" / "email"
SEEDS = [
    "s01-gmail-new.eml",
    "s02-outlook-new.eml",
    "s03-thunderbird-new.eml",
    "s04-apple-new.eml",
    "s05-yandex-new.eml",
    "s06-mailru-new.eml",
]
NEW = "new"
# file: (thread: the seed whose thread it joins, or NEW; reason; outcome)
# fmt: off
EXPECTED: dict[str, tuple[str, str, str]] = {
    "r01-gmail-reply.eml": ("s01-gmail-new.eml", "in-reply-to", "appended"),
    "r02-outlook-reply.eml": ("s02-outlook-new.eml", "references", "appended"),
    "r03-thunderbird-reply.eml": ("s03-thunderbird-new.eml", "in-reply-to", "appended"),
    "r04-apple-reply.eml": ("s04-apple-new.eml", "references", "appended"),
    "r05-yandex-reply-token.eml": ("s05-yandex-new.eml", "subject-token", "appended"),
    "r06-mailru-reply-plus.eml": ("s06-mailru-new.eml", "plus-address", "appended"),
    "r07-stranger-with-token.eml": (NEW, "new-thread", "new-contact"),
    "r08-colleague-with-token.eml": ("s02-outlook-new.eml", "subject-token", "appended"),
    "r09-similar-subject-other-sender.eml": (NEW, "new-thread", "new-contact"),
    "r10-iphone-reply.eml": ("s04-apple-new.eml", "in-reply-to", "appended"),
    "n01-newsletter.eml": (NEW, "new-thread", "new-contact"),
    "n02-newsletter.eml": (NEW, "new-thread", "new-contact"),
    "n03-mailing-list-token.eml": (NEW, "new-thread", "new-contact"),
    "o01-outlook-ooo.eml": ("s02-outlook-new.eml", "in-reply-to", "stored"),
    "o02-yandex-autoreply.eml": ("s05-yandex-new.eml", "in-reply-to", "stored"),
    "o03-gmail-vacation-no-thread.eml": (NEW, "new-thread", "new-contact"),
    "o04-mailru-x-autoreply.eml": ("s06-mailru-new.eml", "references", "stored"),
    "b01-postfix-dsn.eml": ("s01-gmail-new.eml", "in-reply-to", "stored"),
    "b02-exim-dsn.eml": ("s03-thunderbird-new.eml", "in-reply-to", "stored"),
    "b03-delayed-dsn.eml": ("s05-yandex-new.eml", "in-reply-to", "stored"),
    "b04-exchange-ndr.eml": ("s06-mailru-new.eml", "in-reply-to", "stored"),
    "f01-gmail-inline-forward.eml": (NEW, "new-thread", "new-contact"),
    "f02-outlook-forward-attached.eml": (NEW, "new-thread", "new-contact"),
    "f03-yandex-forward-chain.eml": (NEW, "new-thread", "new-contact"),
    "c01-koi8r-plain.eml": (NEW, "new-thread", "new-contact"),
    "c02-cp1251-qp.eml": (NEW, "new-thread", "new-contact"),
    "c03-wrong-charset.eml": (NEW, "new-thread", "new-contact"),
    "c04-undeclared-8bit.eml": (NEW, "new-thread", "new-contact"),
    "c05-utf8-labelled-latin1.eml": (NEW, "new-thread", "new-contact"),
    "a01-tnef-winmail.eml": (NEW, "new-thread", "new-contact"),
    "a02-calendar-invite.eml": (NEW, "new-thread", "new-contact"),
    "a03-inline-images.eml": (NEW, "new-thread", "new-contact"),
    "a04-russian-filenames.eml": (NEW, "new-thread", "new-contact"),
    "m01-missing-boundary.eml": (NEW, "new-thread", "new-contact"),
    "m02-broken-base64.eml": (NEW, "new-thread", "new-contact"),
    "m03-no-message-id.eml": (NEW, "new-thread", "new-contact"),
    "m04-garbage-headers.eml": (NEW, "new-thread", "new-contact"),
    "m05-html-only-script.eml": (NEW, "new-thread", "new-contact"),
    "k01-blocked-sender.eml": (NEW, "new-thread", "stored"),
}
# fmt: on
FAILED_REPLIES = {
    "reply-1@acme.example": "5.1.1",
    "reply-3@acme.example": "5.2.2",
    "reply-6@acme.example": "5.4.1",
}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"email_blocked_senders": ["spam-sender.example"]}


async def _answer(container: Container, thread_id: int, n: int) -> None:
    """Our reply in thread ``thread_id`` as the outbox leaves it (``reply-<n>@acme.example``)."""
    async with container.sessions.begin() as s:
        interaction_id = await s.scalar(
            select(func.min(Interaction.id)).where(Interaction.thread_id == thread_id)
        )
        await s.execute(
            insert(Message).values(
                interaction_id=interaction_id,
                thread_id=thread_id,
                direction="outbound",
                sender="support@acme.example",
                subject=f"[#{thread_id}] reply",
                body="Our answer",
                rfc_message_id=f"reply-{n}@acme.example",
                delivery_state="sent",
                flags={},
                recipients={},
                reference_ids="",
            )
        )


async def test_the_corpus_threads_and_routes_as_expected(container: Container) -> None:
    await email_entry_point(container)
    # A known customer whose name and phone the first message's signature carries.
    known = await container.crm.create_customer(
        Actor.system(),
        CustomerIn(
            first_name="Анна",
            last_name="Смирнова",
            identities=[IdentityIn(kind=IdentityKind.PHONE, value="+79165551234")],
        ),
    )
    threads: dict[str, int] = {}
    for n, name in enumerate(SEEDS, start=1):
        received = await container.email.receive(
            (CORPUS / name).read_bytes(), recipients=["support@acme.example"]
        )
        assert (received.outcome, received.thread_reason) == ("new-contact", "new-thread"), name
        assert received.thread_id == n  # the token of the thread is its number
        threads[name] = n
        await _answer(container, n, n)

    seen_threads = set(threads.values())
    for name, (thread_of, reason, outcome) in EXPECTED.items():
        received = await container.email.receive(
            (CORPUS / name).read_bytes(), recipients=["support@acme.example"]
        )
        assert (received.thread_reason, received.outcome) == (reason, outcome), name
        if thread_of == NEW:
            assert received.thread_id not in seen_threads, name
        else:
            assert received.thread_id == threads[thread_of], name
        seen_threads.add(received.thread_id or 0)

    async with container.sessions() as s:
        # Delivery reports mark our original message failed, with the reason; a delay does not.
        rows = dict(
            (r.rfc_message_id, (r.delivery_state, r.delivery_error))
            for r in await s.execute(
                select(Message.rfc_message_id, Message.delivery_state, Message.delivery_error).where(
                    Message.direction == "outbound"
                )
            )
        )
        for reply, status in FAILED_REPLIES.items():
            state, error = rows[reply]
            assert state == "failed" and error, reply
            assert status in error, error
        assert rows["reply-5@acme.example"][0] == "sent"
        # Noise is kept, flagged, and not routed.
        blocked = (
            await s.execute(
                select(Message.flags, Interaction.state)
                .join(Interaction, Interaction.id == Message.interaction_id)
                .where(Message.sender == "offers@spam-sender.example")
            )
        ).one()
        assert blocked.flags["blocked_sender"] is True and blocked.state == "done"
        unparsed = await s.scalar(
            select(Message.flags).where(Message.rfc_message_id == "noboundary.1@vector-logistic.ru")
        )
        assert "parse_error" in unparsed
        assert all(
            m is not None
            for m in await s.scalars(select(Message.raw_sha256).where(Message.direction == "inbound"))
        )
        # Attachments stored once by content: a03's attached copy of an inline image is one blob.
        a03 = await s.scalar(
            select(Message.id).where(Message.rfc_message_id == "inline.images.1@vector-logistic.ru")
        )
        hashes = list(
            await s.scalars(select(MessageAttachment.sha256).where(MessageAttachment.message_id == a03))
        )
        assert len(hashes) == 3 and len(set(hashes)) == 2
        # The signature's name and phone match a known customer: a merge is suggested.
        suggestion = (await s.execute(select(CustomerMergeSuggestion))).scalar_one()
        assert suggestion.other_customer_id == known.id
        assert suggestion.reason == "email-signature"


async def test_a_redelivery_creates_nothing_even_without_a_message_id(container: Container) -> None:
    await email_entry_point(container)
    for name in ("s01-gmail-new.eml", "m03-no-message-id.eml"):
        raw = (CORPUS / name).read_bytes()
        first = await container.email.receive(raw, recipients=["support@acme.example"])
        again = await container.email.receive(raw, recipients=["support@acme.example"])
        assert first.created and not again.created
        assert again.message_id == first.message_id
    async with container.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 2
        assert await s.scalar(select(func.count()).select_from(Interaction)) == 2


async def test_a_large_attachment_is_stored_once_by_its_hash(container: Container) -> None:
    from email.message import EmailMessage

    await email_entry_point(container)
    blob = bytes(range(256)) * (5 * 1024 * 1024 // 256)  # 5 MiB, made here rather than committed
    for n in range(2):
        msg = EmailMessage()
        msg["From"] = "Big Sender <big@vector-logistic.ru>"
        msg["To"] = "support@acme.example"
        msg["Subject"] = f"Scan {n}"
        msg["Message-ID"] = f"<scan-{n}@vector-logistic.ru>"
        msg.set_content("The scan is attached.")
        msg.add_attachment(blob, maintype="application", subtype="pdf", filename="scan.pdf")
        received = await container.email.receive(msg.as_bytes(), recipients=["support@acme.example"])
        assert received.outcome == "new-contact"
    async with container.sessions() as s:
        hashes = list(await s.scalars(select(MessageAttachment.sha256)))
    assert len(hashes) == 2 and len(set(hashes)) == 1
    assert await container.blobs.read(hashes[0]) == blob


def _utf8_mail(message_id: str, subject: str) -> bytes:
    """Mail with raw UTF-8 headers (RFC 6532, as SMTPUTF8 clients send it) from an address at an
    internationalised domain."""
    return (
        "From: Иван Петров <ivan@пример.рф>\r\n"
        "To: support@acme.example\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: <{message_id}@xn--e1afmkfd.xn--p1ai>\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Заказ не пришёл.\r\n"
    ).encode()


async def test_a_customer_at_an_internationalised_domain_is_known_by_the_address_they_write_from(
    container: Container,
) -> None:
    # The customer's card holds the address as identities store it (the domain in its ASCII form);
    # their next mail names the domain in Unicode, and still comes from the same customer: its
    # subject token is theirs, so it joins the thread.
    await email_entry_point(container)
    first = await container.email.receive(
        _utf8_mail("one", "Заказ 1001"), recipients=["support@acme.example"]
    )
    assert first.outcome == "new-contact" and first.customer_id is not None
    again = await container.email.receive(
        _utf8_mail("two", f"Re: [#{first.thread_id}] Заказ 1001"), recipients=["support@acme.example"]
    )
    assert (again.thread_id, again.thread_reason, again.outcome) == (
        first.thread_id,
        "subject-token",
        "appended",
    )
    assert again.customer_id == first.customer_id
