"""A contact can arrive reserved for its preferred agent whatever the queue's sticky setting."""

from __future__ import annotations

from frontoffice.domain.routing import Contact, OfferContact

from .helpers import agent, make_engine, of_type


def test_a_callback_arriving_reserved_goes_to_its_agent_even_when_another_is_idle_longer() -> None:
    engine = make_engine(agents=[agent("bob"), agent("olga")])  # bob is first, idle the longest
    callback = Contact("cb", "voice", "q", preferred_agent_id="olga", is_callback=True)

    out = engine.contact_arrived(callback, 10.0, reserve_s=300)

    assert [(o.contact_id, o.agent_ids) for o in of_type(out, OfferContact)] == [("cb", ("olga",))]


def test_the_reservation_ends_after_its_time_and_any_agent_may_take_it() -> None:
    engine = make_engine(agents=[agent("bob"), agent("olga")])
    engine.set_agent_state("olga", "not_ready", 0.0)
    callback = Contact("cb", "voice", "q", preferred_agent_id="olga", is_callback=True)
    assert of_type(engine.contact_arrived(callback, 10.0, reserve_s=300), OfferContact) == []

    out = engine.tick(310.0)

    assert [(o.contact_id, o.agent_ids) for o in of_type(out, OfferContact)] == [("cb", ("bob",))]
