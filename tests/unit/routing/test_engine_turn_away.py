"""A transfer to a queue that would turn the contact away is refused before the engine changes."""

from __future__ import annotations

import pytest

from frontoffice.domain.routing import QueueConfig, QueueTurnsAway

from .helpers import agent, make_engine, voice


def test_a_connected_contact_transferred_to_a_full_queue_stays_with_its_agent() -> None:
    engine = make_engine(queues=[QueueConfig("q"), QueueConfig("full", max_length=0)], agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    engine.offer_accepted("c1", "a1", 1.0)

    with pytest.raises(QueueTurnsAway) as refused:
        engine.transfer_to_queue("c1", "full", 2.0)

    assert refused.value.reason == "max_length"
    assert engine.contact_status("c1").state == "connected"
    assert engine.agent_status("a1").contact_ids == ("c1",)


def test_a_closed_queue_turns_away_unless_its_overflow_takes_the_contact() -> None:
    engine = make_engine(
        queues=[QueueConfig("spare"), QueueConfig("closed", overflow_queue_id="spare")], agents=[]
    )
    engine.set_queue_open("closed", False, 0.0)
    assert engine.turn_away_reason("closed") is None  # overflows into "spare", which takes it
    engine.upsert_queue(QueueConfig("spare", max_length=0))
    assert engine.turn_away_reason("closed") == "closed"
