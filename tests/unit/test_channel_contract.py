"""The channel contract's outward half: committed offers, withdrawn offers and finished contacts reach
the port of the contact's channel, and no other."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import InvalidInput
from frontoffice.domain.model import Channel
from frontoffice.services.channel_contract import (
    ChannelPorts,
    CustomerIdentity,
    InboundContact,
    WebFormChannel,
)
from frontoffice.store.committed import Committed


class RecordingChannel:
    """A channel port that records what reached it."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.calls: list[tuple[str, Any]] = []

    def ring(self, offer: r.OfferContact) -> None:
        self.calls.append(("ring", offer.contact_id))

    def withdraw(self, contact_id: int, agent_ids: tuple[str, ...]) -> None:
        self.calls.append(("withdraw", contact_id))

    def hang_up(self, contact_id: int) -> None:
        self.calls.append(("hang_up", contact_id))

    async def deliver(self, contact_id: int, body: str) -> None:
        self.calls.append(("deliver", contact_id))


def event(interaction_id: int, channel: str) -> dict[str, Any]:
    return {"interaction_id": interaction_id, "channel": channel, "at": datetime.now(UTC), "type": "x"}


def test_each_channel_gets_the_offers_and_endings_of_its_own_contacts_only() -> None:
    chat, sms = RecordingChannel(Channel.CHAT), RecordingChannel(Channel.SMS)
    ports = ChannelPorts()
    ports.register(chat)
    ports.register(sms)
    ports(
        Committed(
            outputs=[
                r.OfferContact("1", ("7",), "q", "chat", 30.0),
                r.OfferContact("2", ("8",), "q", "voice", 30.0),
                r.WithdrawOffer("3", ("7",), "abandoned"),
                r.ContactFinished("4", "7", "q"),
            ],
            interaction_events=[event(3, "sms"), event(4, "chat")],
            agent_events=[],
        )
    )
    assert chat.calls == [("ring", "1"), ("hang_up", 4)]
    assert sms.calls == [("withdraw", 3)]


def test_a_failing_channel_does_not_keep_the_others_from_their_contacts() -> None:
    class Broken(RecordingChannel):
        def ring(self, offer: r.OfferContact) -> None:
            raise RuntimeError("channel bug")

    broken, chat = Broken(Channel.EMAIL), RecordingChannel(Channel.CHAT)
    ports = ChannelPorts()
    ports.register(broken)
    ports.register(chat)
    offers = [r.OfferContact("1", ("7",), "q", "email", 30.0), r.OfferContact("2", ("7",), "q", "chat", 30.0)]
    ports(Committed(outputs=offers, interaction_events=[], agent_events=[]))
    assert chat.calls == [("ring", "2")]


async def test_a_web_form_contact_cannot_be_answered_on_its_own_channel() -> None:
    with pytest.raises(InvalidInput):
        await WebFormChannel().deliver(1, "hello")


def test_a_channels_contact_is_deduplicated_by_its_channel_and_external_id() -> None:
    call = InboundContact(Channel.VOICE, entry_point="+74951234567", external_id="abc@host")
    assert call.dedupe_key == "voice:abc@host"
    assert InboundContact(Channel.WEBFORM, entry_point="site", customer=CustomerIdentity()).dedupe_key is None
