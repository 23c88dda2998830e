"""Behaviour of the routing engine, one rule per test."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from frontoffice.domain.routing import (
    AgentConfig,
    AgentStateChanged,
    CallbackScheduled,
    Contact,
    ContactAbandoned,
    ContactConnected,
    ContactEscalated,
    ContactOverflowed,
    ContactQueued,
    ContactRefused,
    EngineConfig,
    EscalationStep,
    FallbackAction,
    InvalidConfig,
    InvalidTransition,
    OfferContact,
    OfferTimedOut,
    QueueConfig,
    RoutingEngine,
    StickyExpired,
    UnknownAgent,
    UnknownContact,
    UnknownQueue,
    WithdrawOffer,
    WrapUpEnded,
    WrapUpStarted,
)

from .helpers import agent, make_engine, of_type, voice


def offered_to(outputs: Sequence[object]) -> list[tuple[str, tuple[str, ...]]]:
    return [(o.contact_id, o.agent_ids) for o in outputs if isinstance(o, OfferContact)]


# --- basic distribution ---------------------------------------------------------------------------


def test_contact_is_offered_to_the_longest_idle_agent() -> None:
    engine = make_engine(agents=[agent("a1"), agent("a2")], login=False)
    engine.agent_login("a2", 1.0)
    engine.agent_login("a1", 2.0)
    out = engine.contact_arrived(voice("c1"), 10.0)
    assert offered_to(out) == [("c1", ("a2",))]


def test_contact_waits_until_an_agent_frees_up() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 1.0)
    engine.offer_accepted("c1", "a1", 2.0)
    out = engine.contact_arrived(voice("c2"), 3.0)
    assert of_type(out, ContactQueued)[0].contact_id == "c2"
    assert offered_to(out) == []
    out = engine.contact_finished("c1", 4.0)
    assert offered_to(out) == [("c2", ("a1",))]


def test_equal_priority_contacts_are_served_first_in_first_out() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.set_agent_state("a1", "not_ready", 0.0, "lunch")
    for i in range(5):
        engine.contact_arrived(voice(f"c{i}"), float(i))
    order = []
    engine.set_agent_state("a1", "available", 10.0)
    for i in range(5):
        (cid,) = engine.agent_status("a1").offered_contact_ids
        order.append(cid)
        engine.offer_accepted(cid, "a1", 10.0 + i)
        engine.contact_finished(cid, 10.5 + i)
    assert order == ["c0", "c1", "c2", "c3", "c4"]


def test_higher_priority_goes_first_until_an_older_contact_ages_past_it() -> None:
    engine = make_engine(agents=[agent("a1")], config=EngineConfig(priority_weight_s=60.0))
    engine.set_agent_state("a1", "not_ready", 0.0)
    engine.contact_arrived(voice("old"), 0.0)  # score at t: t
    engine.contact_arrived(voice("vip", priority=1), 30.0)  # score at t: 60 + t - 30
    engine.contact_arrived(voice("late_vip", priority=1), 200.0)  # score: 60 + t - 200
    assert engine.waiting_contacts("q") == ("vip", "old", "late_vip")


def test_lower_tier_agents_are_offered_first() -> None:
    engine = make_engine(agents=[agent("backup", {"q": 2}), agent("main", {"q": 1})], login=False)
    engine.agent_login("backup", 0.0)  # idle longer, but a higher tier
    engine.agent_login("main", 5.0)
    assert offered_to(engine.contact_arrived(voice("c1"), 10.0)) == [("c1", ("main",))]
    assert offered_to(engine.contact_arrived(voice("c2"), 11.0)) == [("c2", ("backup",))]


def test_agent_below_the_required_skill_level_is_not_offered() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", required_skills={"ru": 5})],
        agents=[agent("weak", skills={"ru": 4}), agent("strong", skills={"ru": 5})],
    )
    assert offered_to(engine.contact_arrived(voice("c1"), 1.0)) == [("c1", ("strong",))]
    assert offered_to(engine.contact_arrived(voice("c2"), 2.0)) == []


# --- strategies -----------------------------------------------------------------------------------


def test_round_robin_continues_after_the_agent_picked_last() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", strategy="round_robin")],
        agents=[agent("a1"), agent("a2"), agent("a3")],
        login=False,
    )
    for aid in ("a3", "a2", "a1"):
        engine.agent_login(aid, 0.0)
    picks = []
    for i in range(4):
        ((cid, (aid,)),) = offered_to(engine.contact_arrived(voice(f"c{i}"), float(i)))
        picks.append(aid)
        engine.offer_accepted(cid, aid, float(i))
        engine.contact_finished(cid, float(i))
    assert picks == ["a1", "a2", "a3", "a1"]


def test_fewest_contacts_prefers_the_agent_with_fewest_contacts_today() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", strategy="fewest_contacts")], agents=[agent("a1"), agent("a2")]
    )
    engine.contact_arrived(voice("c1"), 1.0)  # a1 idle longest (login order, same time: config order)
    engine.offer_accepted("c1", "a1", 1.0)
    engine.contact_finished("c1", 2.0)
    engine.contact_arrived(voice("c2"), 3.0)
    engine.offer_accepted("c2", "a2", 3.0)
    engine.contact_finished("c2", 4.0)
    engine.contact_arrived(voice("c3"), 5.0)
    # both have one contact today: tie broken by longest idle (a1 freed at 2.0)
    assert engine.contact_status("c3").agent_ids == ("a1",)


def test_best_skill_prefers_the_highest_skill_level() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", strategy="best_skill", required_skills={"en": 3})],
        agents=[
            agent("mid", skills={"en": 6}),
            agent("top", skills={"en": 9}),
            agent("low", skills={"en": 3}),
        ],
    )
    assert offered_to(engine.contact_arrived(voice("c1"), 1.0)) == [("c1", ("top",))]


def test_least_occupied_prefers_the_agent_with_the_lowest_occupancy() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", strategy="least_occupied")], agents=[agent("a1"), agent("a2")]
    )
    engine.contact_arrived(voice("c1"), 0.0)  # a1
    engine.offer_accepted("c1", "a1", 0.0)
    engine.contact_finished("c1", 50.0)  # a1 busy 50 of 100 s
    engine.contact_arrived(voice("c2"), 60.0)  # a2 idle, occupancy 0
    assert engine.contact_status("c2").agent_ids == ("a2",)


def test_random_weighted_is_repeatable_with_the_same_seed() -> None:
    def run(seed: int) -> list[str]:
        engine = RoutingEngine(rng=random.Random(seed))
        engine.upsert_queue(QueueConfig("q", strategy="random_weighted"))
        for i in range(5):
            engine.upsert_agent(AgentConfig(f"a{i}", queues={"q": 1}, weight=float(i + 1)))
            engine.agent_login(f"a{i}", 0.0)
        picks = []
        for n in range(20):
            out = engine.contact_arrived(voice(f"c{n}"), float(n))
            ((cid, (aid,)),) = offered_to(out)
            picks.append(aid)
            engine.offer_accepted(cid, aid, float(n))
            engine.contact_finished(cid, float(n))
        return picks

    assert run(7) == run(7)
    assert len(set(run(7))) > 1


def test_ring_all_offers_to_every_agent_and_the_first_acceptance_wins() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", strategy="ring_all")], agents=[agent("a1"), agent("a2"), agent("a3")]
    )
    out = engine.contact_arrived(voice("c1"), 1.0)
    ((_, agents),) = offered_to(out)
    assert sorted(agents) == ["a1", "a2", "a3"]
    out = engine.offer_accepted("c1", "a2", 2.0)
    assert of_type(out, ContactConnected)[0].agent_id == "a2"
    (withdraw,) = of_type(out, WithdrawOffer)
    assert sorted(withdraw.agent_ids) == ["a1", "a3"]
    with pytest.raises(InvalidTransition):
        engine.offer_accepted("c1", "a1", 2.5)


def test_ring_all_on_chat_offers_to_one_agent() -> None:
    engine = make_engine(queues=[QueueConfig("q", strategy="ring_all")], agents=[agent("a1"), agent("a2")])
    out = engine.contact_arrived(Contact("c1", "chat", "q"), 1.0)
    assert offered_to(out) == [("c1", ("a1",))]


# --- offers ---------------------------------------------------------------------------------------


def test_offer_times_out_and_contact_keeps_its_place() -> None:
    engine = make_engine(queues=[QueueConfig("q", offer_timeout_s=10)], agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)  # offered to a1
    engine.contact_arrived(voice("c2"), 1.0)
    engine.contact_arrived(voice("c3"), 2.0)
    assert engine.next_deadline() == 10.0
    out = engine.tick(10.0)
    assert of_type(out, OfferTimedOut)[0].contact_id == "c1"
    # a1 is not offered c1 again at once; c1 is still ahead of everybody behind it
    assert offered_to(out) == [("c2", ("a1",))]
    assert engine.contact_status("c1").state == "waiting"
    assert engine.position("c1") == 1
    assert engine.waiting_contacts("q") == ("c1", "c3")


def test_rejecting_agent_is_skipped_for_that_contact_while_another_agent_exists() -> None:
    engine = make_engine(agents=[agent("a1"), agent("a2")])
    engine.contact_arrived(voice("c1"), 0.0)  # -> a1
    out = engine.offer_rejected("c1", "a1", 1.0)
    assert offered_to(out) == [("c1", ("a2",))]


def test_rejected_contact_goes_back_to_the_only_agent_after_the_cooloff() -> None:
    engine = make_engine(agents=[agent("a1")], config=EngineConfig(reject_cooloff_s=30))
    engine.contact_arrived(voice("c1"), 0.0)
    engine.contact_arrived(voice("c2"), 0.5)
    out = engine.offer_rejected("c1", "a1", 1.0)
    assert offered_to(out) == [("c2", ("a1",))]  # the next contact, not c1 again
    engine.offer_rejected("c2", "a1", 2.0)
    assert engine.agent_status("a1").offered_contact_ids == ()
    assert offered_to(engine.tick(31.0)) == [("c1", ("a1",))]


def test_consecutive_missed_offers_put_the_agent_not_ready_missed() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", offer_timeout_s=5)],
        agents=[agent("a1")],
        config=EngineConfig(missed_offers_to_not_ready=2, reject_cooloff_s=0),
    )
    engine.contact_arrived(voice("c1"), 0.0)
    engine.tick(5.0)  # miss 1, re-offered at once (no cool-off)
    assert engine.agent_status("a1").offered_contact_ids == ("c1",)
    out = engine.tick(10.0)  # miss 2
    changes = of_type(out, AgentStateChanged)
    assert changes[-1].state == "not_ready" and changes[-1].reason == "missed"
    assert engine.contact_status("c1").state == "waiting"


def test_accepting_resets_the_missed_offer_count() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", offer_timeout_s=5)],
        agents=[agent("a1")],
        config=EngineConfig(missed_offers_to_not_ready=2, reject_cooloff_s=0),
    )
    engine.contact_arrived(voice("c1"), 0.0)
    engine.tick(5.0)
    engine.offer_accepted("c1", "a1", 6.0)
    assert engine.agent_status("a1").missed_offers == 0


# --- agent states, wrap-up, capacity --------------------------------------------------------------


def test_wrap_up_blocks_offers_until_it_ends() -> None:
    engine = make_engine(queues=[QueueConfig("q", wrap_up_s=30)], agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    engine.offer_accepted("c1", "a1", 1.0)
    engine.contact_arrived(voice("c2"), 2.0)
    out = engine.contact_finished("c1", 10.0)
    assert of_type(out, WrapUpStarted) == [WrapUpStarted("a1", "c1", 40.0)]
    assert engine.agent_status("a1").state == "wrap_up"
    assert offered_to(out) == []
    assert engine.next_deadline() == 40.0
    out = engine.tick(40.0)
    assert of_type(out, WrapUpEnded) == [WrapUpEnded("a1", early=False)]
    assert offered_to(out) == [("c2", ("a1",))]


def test_agent_ends_wrap_up_early() -> None:
    engine = make_engine(queues=[QueueConfig("q", wrap_up_s=30)], agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    engine.offer_accepted("c1", "a1", 1.0)
    engine.contact_finished("c1", 10.0)
    engine.contact_arrived(voice("c2"), 11.0)
    out = engine.end_wrap_up("a1", 12.0)
    assert of_type(out, WrapUpEnded) == [WrapUpEnded("a1", early=True)]
    assert offered_to(out) == [("c2", ("a1",))]
    with pytest.raises(InvalidTransition):
        engine.end_wrap_up("a1", 13.0)


def test_wrap_up_blocks_offers_from_every_queue_of_the_agent() -> None:
    engine = make_engine(
        queues=[QueueConfig("sales", wrap_up_s=30), QueueConfig("support")],
        agents=[agent("a1", {"sales": 1, "support": 1})],
    )
    engine.contact_arrived(voice("c1", "sales"), 0.0)
    engine.offer_accepted("c1", "a1", 0.0)
    engine.contact_finished("c1", 5.0)
    out = engine.contact_arrived(Contact("c2", "chat", "support"), 6.0)
    assert offered_to(out) == []


def test_an_agent_takes_up_to_its_chat_capacity_at_once() -> None:
    engine = make_engine(agents=[agent("a1", capacity={"chat": 3, "email": 5})])
    offers = []
    for i in range(4):
        offers += offered_to(engine.contact_arrived(Contact(f"c{i}", "chat", "q"), float(i)))
    assert [cid for cid, _ in offers] == ["c0", "c1", "c2"]
    out = engine.contact_arrived(Contact("e1", "email", "q"), 5.0)
    assert offered_to(out) == [("e1", ("a1",))]
    engine.offer_accepted("c0", "a1", 6.0)
    out = engine.contact_finished("c0", 7.0)
    assert offered_to(out) == [("c3", ("a1",))]


def test_a_live_voice_call_blocks_offers_on_other_channels() -> None:
    engine = make_engine(agents=[agent("a1", capacity={"voice": 1, "chat": 3})])
    engine.contact_arrived(voice("v1"), 0.0)
    engine.offer_accepted("v1", "a1", 0.0)
    assert offered_to(engine.contact_arrived(Contact("c1", "chat", "q"), 1.0)) == []
    assert offered_to(engine.contact_finished("v1", 2.0)) == [("c1", ("a1",))]


def test_a_voice_call_does_not_block_other_channels_when_configured_not_to() -> None:
    engine = make_engine(
        agents=[agent("a1", capacity={"voice": 1, "chat": 3})],
        config=EngineConfig(voice_blocks_other_channels=False),
    )
    engine.contact_arrived(voice("v1"), 0.0)
    engine.offer_accepted("v1", "a1", 0.0)
    assert offered_to(engine.contact_arrived(Contact("c1", "chat", "q"), 1.0)) == [("c1", ("a1",))]


def test_not_ready_withdraws_pending_offers_and_contact_keeps_its_place() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    out = engine.set_agent_state("a1", "not_ready", 1.0, "training")
    assert of_type(out, WithdrawOffer) == [WithdrawOffer("c1", ("a1",), "agent_not_ready")]
    assert of_type(out, AgentStateChanged) == [
        AgentStateChanged("a1", "not_ready", "training", 1.0, ready=False)
    ]
    assert engine.position("c1") == 1


def test_logout_with_a_connected_contact_is_refused() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    engine.offer_accepted("c1", "a1", 0.0)
    with pytest.raises(InvalidTransition):
        engine.agent_logout("a1", 1.0)


# --- sticky routing -------------------------------------------------------------------------------


def test_sticky_contact_waits_for_the_preferred_agent_then_goes_to_anyone() -> None:
    engine = make_engine(queues=[QueueConfig("q", sticky_s=20)], agents=[agent("owner"), agent("other")])
    engine.contact_arrived(voice("c0"), 0.0)  # owner (longest idle) takes c0
    engine.offer_accepted("c0", "owner", 0.0)
    out = engine.contact_arrived(voice("c1", attributes={"preferred_agent_id": "owner"}), 1.0)
    assert offered_to(out) == []  # "other" is free but the owner has the first right
    out = engine.tick(21.0)
    assert of_type(out, StickyExpired) == [StickyExpired("c1", "owner")]
    assert offered_to(out) == [("c1", ("other",))]


def test_sticky_contact_is_offered_to_the_preferred_agent_when_free() -> None:
    engine = make_engine(queues=[QueueConfig("q", sticky_s=20)], agents=[agent("a1"), agent("owner")])
    out = engine.contact_arrived(voice("c1", preferred_agent_id="owner"), 1.0)
    assert offered_to(out) == [("c1", ("owner",))]
    out = engine.offer_rejected("c1", "owner", 2.0)
    assert offered_to(out) == [("c1", ("a1",))]


# --- queue behaviours -----------------------------------------------------------------------------


def test_max_wait_overflows_to_the_target_queue_keeping_the_enqueued_time() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", max_wait_s=60, overflow_queue_id="backup"), QueueConfig("backup")],
        agents=[agent("b1", {"backup": 1})],
        login=False,
    )
    engine.contact_arrived(voice("c1"), 0.0)
    engine.agent_login("b1", 1.0)
    engine.set_agent_state("b1", "not_ready", 1.0)
    out = engine.tick(60.0)
    assert of_type(out, ContactOverflowed) == [ContactOverflowed("c1", "q", "backup", "max_wait")]
    assert engine.contact_status("c1").enqueued_at == 0.0
    out = engine.set_agent_state("b1", "available", 70.0)
    assert of_type(out, ContactConnected) == [] and offered_to(out) == [("c1", ("b1",))]
    assert of_type(engine.offer_accepted("c1", "b1", 71.0), ContactConnected)[0].waited_s == 71.0


def test_max_length_triggers_the_fallback_action() -> None:
    engine = make_engine(queues=[QueueConfig("q", max_length=1, fallback_action="voicemail")])
    engine.contact_arrived(voice("c1"), 0.0)
    out = engine.contact_arrived(voice("c2"), 1.0)
    assert out == [FallbackAction("c2", "q", "voicemail", "max_length")]
    with pytest.raises(UnknownContact):
        engine.contact_status("c2")


def test_max_wait_with_a_fallback_hands_the_contact_to_the_channel() -> None:
    engine = make_engine(queues=[QueueConfig("q", max_wait_s=30, fallback_action="callback")])
    engine.contact_arrived(voice("c1"), 0.0)
    assert engine.tick(30.0) == [FallbackAction("c1", "q", "callback", "max_wait")]
    assert engine.contact_ids() == ()


def test_closed_queue_applies_its_closed_action_to_arrivals_only() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", closed_action="overflow", fallback_action="message_and_disconnect")]
    )
    engine.contact_arrived(voice("early"), 0.0)
    engine.set_queue_open("q", False, 1.0)
    out = engine.contact_arrived(voice("late"), 2.0)
    assert out == [FallbackAction("late", "q", "message_and_disconnect", "closed")]
    assert engine.contact_status("early").state == "waiting"
    engine.set_queue_open("q", True, 3.0)
    assert of_type(engine.contact_arrived(voice("next"), 4.0), ContactQueued)


def test_closed_queue_that_refuses() -> None:
    engine = make_engine(queues=[QueueConfig("q", closed_action="refuse", open=False)])
    assert engine.contact_arrived(voice("c1"), 0.0) == [ContactRefused("c1", "q", "closed")]


def test_queue_without_logged_in_agents_refuses_when_configured() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", no_agents_action="refuse")], agents=[agent("a1")], login=False
    )
    assert engine.contact_arrived(voice("c1"), 0.0) == [ContactRefused("c1", "q", "no_agents")]
    engine.agent_login("a1", 1.0)
    engine.set_agent_state("a1", "not_ready", 1.0)
    assert of_type(engine.contact_arrived(voice("c2"), 2.0), ContactQueued)


def test_an_overflow_cycle_ends() -> None:
    engine = make_engine(
        queues=[
            QueueConfig("a", max_length=0, overflow_queue_id="b"),
            QueueConfig("b", max_length=0, overflow_queue_id="a", fallback_action="ticket"),
        ]
    )
    out = engine.contact_arrived(voice("c1", "a"), 0.0)
    assert isinstance(out[-1], FallbackAction | ContactRefused)
    assert engine.contact_ids() == ()


def test_escalation_relaxes_the_minimum_skill_level_after_a_wait() -> None:
    engine = make_engine(
        queues=[
            QueueConfig(
                "q", required_skills={"de": 8}, escalations=(EscalationStep(after_s=30, relax_levels=3),)
            )
        ],
        agents=[agent("junior", skills={"de": 5})],
    )
    assert offered_to(engine.contact_arrived(voice("c1"), 0.0)) == []
    out = engine.tick(30.0)
    assert of_type(out, ContactEscalated) == [ContactEscalated("c1", "q", 1)]
    assert offered_to(out) == [("c1", ("junior",))]


def test_escalation_adds_a_queue_whose_agents_may_take_the_contact() -> None:
    engine = make_engine(
        queues=[
            QueueConfig("q", escalations=(EscalationStep(after_s=45, add_queues=("helpers",)),)),
            QueueConfig("helpers"),
        ],
        agents=[agent("h1", {"helpers": 1})],
    )
    assert offered_to(engine.contact_arrived(voice("c1"), 0.0)) == []
    assert offered_to(engine.tick(45.0)) == [("c1", ("h1",))]


def test_agent_serving_several_queues_takes_the_best_weighted_score() -> None:
    engine = make_engine(
        queues=[QueueConfig("normal"), QueueConfig("vip", weight=3.0)],
        agents=[agent("a1", {"normal": 1, "vip": 1})],
    )
    engine.set_agent_state("a1", "not_ready", 0.0)
    engine.contact_arrived(voice("n1", "normal"), 0.0)  # waited 100 s at t=100
    engine.contact_arrived(voice("v1", "vip"), 60.0)  # waited 40 s, weighted 120
    out = engine.set_agent_state("a1", "available", 100.0)
    assert offered_to(out) == [("v1", ("a1",))]


# --- callbacks, transfers, priority ---------------------------------------------------------------


def test_callback_keeps_its_place_and_is_offered_as_an_outbound_task() -> None:
    engine = make_engine(queues=[QueueConfig("q", max_wait_s=100)], agents=[agent("a1")])
    engine.set_agent_state("a1", "not_ready", 0.0)
    engine.contact_arrived(voice("c1"), 0.0)
    engine.contact_arrived(voice("c2"), 1.0)
    assert engine.request_callback("c1", 5.0) == [CallbackScheduled("c1", "q")]
    assert engine.tick(150.0) == [ContactRefused("c2", "q", "max_wait")]  # the callback does not expire
    out = engine.set_agent_state("a1", "available", 200.0)
    (offer,) = of_type(out, OfferContact)
    assert offer.contact_id == "c1" and offer.is_callback


def test_moving_a_waiting_contact_keeps_its_original_enqueued_time() -> None:
    engine = make_engine(queues=[QueueConfig("q"), QueueConfig("other")], agents=[agent("o1", {"other": 1})])
    engine.set_agent_state("o1", "not_ready", 0.0)
    engine.contact_arrived(voice("late", "other"), 5.0)
    engine.contact_arrived(voice("c1"), 1.0)
    engine.transfer_to_queue("c1", "other", 10.0)
    assert engine.contact_status("c1").enqueued_at == 1.0
    assert engine.waiting_contacts("other") == ("c1", "late")


def test_transfer_of_a_connected_contact_to_a_named_agent() -> None:
    engine = make_engine(queues=[QueueConfig("q", wrap_up_s=10)], agents=[agent("a1"), agent("a2")])
    engine.contact_arrived(voice("c1"), 0.0)
    engine.offer_accepted("c1", "a1", 0.0)
    out = engine.transfer_to_agent("c1", "a2", 5.0)
    assert offered_to(out) == [("c1", ("a2",))]
    assert engine.agent_status("a1").state == "wrap_up"
    engine.offer_accepted("c1", "a2", 6.0)
    assert engine.agent_status("a2").contact_ids == ("c1",)


def test_transfer_to_an_agent_who_is_busy_waits_for_that_agent() -> None:
    engine = make_engine(agents=[agent("a1"), agent("a2"), agent("a3")])
    engine.contact_arrived(voice("x"), 0.0)  # a1
    engine.offer_accepted("x", "a1", 0.0)
    engine.contact_arrived(voice("c1"), 1.0)  # a2
    engine.offer_accepted("c1", "a2", 1.0)
    out = engine.transfer_to_agent("c1", "a1", 2.0)
    assert offered_to(out) == []  # a3 is free, but the contact is for a1
    assert offered_to(engine.contact_finished("x", 3.0)) == [("c1", ("a1",))]


def test_set_priority_moves_a_waiting_contact_ahead() -> None:
    engine = make_engine()
    engine.contact_arrived(voice("c1"), 0.0)
    engine.contact_arrived(voice("c2"), 1.0)
    engine.set_priority("c2", 5, 2.0)
    assert engine.waiting_contacts("q") == ("c2", "c1")
    assert engine.position("c1") == 2


def test_withdrawn_contact_is_abandoned_and_its_offer_withdrawn() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    out = engine.contact_withdrawn("c1", 4.0)
    assert of_type(out, WithdrawOffer) == [WithdrawOffer("c1", ("a1",), "abandoned")]
    assert of_type(out, ContactAbandoned) == [ContactAbandoned("c1", "q", 4.0)]
    assert engine.agent_status("a1").offered_contact_ids == ()


# --- configuration, restore, views, errors --------------------------------------------------------


def test_configuration_changes_apply_live_without_logout_or_reordering() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.set_agent_state("a1", "not_ready", 0.0)
    for i in range(3):
        engine.contact_arrived(voice(f"c{i}"), float(i))
    engine.upsert_queue(QueueConfig("q", strategy="round_robin", wrap_up_s=5, weight=2.0), now=5.0)
    engine.upsert_agent(AgentConfig("a1", skills={"x": 3}, queues={"q": 2}), now=5.0)
    assert engine.agent_status("a1").state == "not_ready"
    assert engine.waiting_contacts("q") == ("c0", "c1", "c2")
    engine.upsert_agent(AgentConfig("a2", queues={"q": 1}), now=6.0)
    engine.agent_login("a2", 6.0)
    assert engine.contact_status("c0").agent_ids == ("a2",)


def test_agent_added_to_a_queue_live_gets_its_waiting_contacts() -> None:
    engine = make_engine(queues=[QueueConfig("q"), QueueConfig("other")], agents=[agent("a1", {"other": 1})])
    engine.contact_arrived(voice("c1"), 0.0)
    out = engine.upsert_agent(AgentConfig("a1", queues={"other": 1, "q": 1}), now=1.0)
    assert offered_to(out) == [("c1", ("a1",))]


def test_restore_rebuilds_the_same_order_and_agent_states() -> None:
    engine = make_engine(agents=[agent("a1"), agent("a2")])
    engine.set_agent_state("a2", "not_ready", 0.0, "lunch")
    queued = {}
    for i, cid in enumerate(["c1", "c2", "c3", "c4", "c5"]):
        out = engine.contact_arrived(voice(cid, priority=i % 2), float(i))
        queued.update({o.contact_id: o for o in of_type(out, ContactQueued)})
    engine.offer_accepted("c1", "a1", 5.0)  # c1 went to a1 at once
    before = engine.waiting_contacts("q")

    fresh = make_engine(agents=[agent("a1"), agent("a2")], login=False)
    fresh.restore_agent("a1", "on_contact", since=5.0)
    fresh.restore_agent("a2", "not_ready", since=0.0, reason="lunch")
    fresh.restore_connected_contact(voice("c1"), "a1", queued["c1"].enqueued_at, queued["c1"].seq)
    for cid in reversed(before):  # restore order must not matter
        q = queued[cid]
        fresh.restore_waiting_contact(voice(cid, priority=(int(cid[1]) - 1) % 2), q.enqueued_at, q.seq)
    assert fresh.resume(10.0) == []
    assert before == ("c2", "c4", "c3", "c5")
    assert fresh.waiting_contacts("q") == before
    assert fresh.agent_status("a2").reason == "lunch"
    assert fresh.agent_status("a1").contact_ids == ("c1",)
    out = fresh.contact_arrived(voice("c9"), 11.0)
    assert of_type(out, ContactQueued)[0].seq > max(q.seq for q in queued.values())


def test_queue_status_and_position_views() -> None:
    engine = make_engine(agents=[agent("a1"), agent("a2")])
    engine.set_agent_state("a2", "not_ready", 0.0)
    engine.contact_arrived(voice("c0"), 0.0)
    engine.offer_accepted("c0", "a1", 1.0)
    engine.contact_arrived(voice("c1"), 2.0)
    engine.contact_arrived(voice("c2"), 3.0)
    status = engine.queue_status("q", 10.0)
    assert (status.waiting, status.longest_wait_s) == (2, 8.0)
    assert (status.agents_on_contact, status.agents_not_ready, status.agents_available) == (1, 1, 0)
    assert engine.position("c2") == 2
    assert engine.expected_wait("c2", 10.0) is None  # no history yet
    engine.contact_finished("c0", 20.0)
    engine.offer_accepted("c1", "a1", 20.0)
    engine.contact_finished("c1", 50.0)
    assert engine.expected_wait("c2", 50.0) is None  # c2 is ringing now
    agent_view = engine.agent_status("a1")
    assert agent_view.offered_contact_ids == ("c2",) and agent_view.contacts_today == 2


def test_longest_wait_of_a_contact_transferred_back_counts_from_its_new_queue_time() -> None:
    # A connected contact transferred (back) into its queue queues anew from the transfer; the longest
    # wait must not go on counting from its first arrival.
    engine = make_engine(agents=[agent("a1")])
    engine.queue_status("q", 0.0)  # a wallboard was already watching
    engine.contact_arrived(voice("c1"), 10.0)
    engine.offer_accepted("c1", "a1", 10.0)
    engine.transfer_to_queue("c1", "q", 100.0)
    assert engine.contact_status("c1").enqueued_at == 100.0
    assert engine.queue_status("q", 105.0).longest_wait_s == 5.0


def test_expected_wait_grows_with_position() -> None:
    engine = make_engine(agents=[agent("a1")])
    for i in range(3):
        engine.contact_arrived(voice(f"c{i}"), float(i))
        engine.offer_accepted(f"c{i}", "a1", float(i) * 10)
        engine.contact_finished(f"c{i}", float(i) * 10 + 5)
    engine.set_agent_state("a1", "not_ready", 30.0)
    engine.contact_arrived(voice("w1"), 31.0)
    engine.contact_arrived(voice("w2"), 32.0)
    first, second = engine.expected_wait("w1", 40.0), engine.expected_wait("w2", 40.0)
    assert first is not None and second is not None and second == 2 * first


def test_next_deadline_is_none_without_timers() -> None:
    engine = make_engine(agents=[agent("a1")])
    assert engine.next_deadline() is None
    engine.contact_arrived(voice("c1"), 0.0)
    assert engine.next_deadline() == 20.0
    engine.offer_accepted("c1", "a1", 1.0)
    assert engine.next_deadline() is None  # the offer timer died with the offer


def test_invalid_commands_raise_and_leave_the_engine_unchanged() -> None:
    engine = make_engine(agents=[agent("a1")])
    engine.contact_arrived(voice("c1"), 0.0)
    snapshot = (engine.contact_status("c1"), engine.agent_status("a1"), engine.queue_status("q", 1.0))
    with pytest.raises(UnknownQueue):
        engine.contact_arrived(voice("c2", "nope"), 1.0)
    with pytest.raises(UnknownAgent):
        engine.offer_accepted("c1", "ghost", 1.0)
    with pytest.raises(UnknownContact):
        engine.contact_finished("ghost", 1.0)
    with pytest.raises(InvalidTransition):
        engine.contact_finished("c1", 1.0)  # only offered
    with pytest.raises(InvalidTransition):
        engine.agent_login("a1", 1.0)
    with pytest.raises(InvalidTransition):
        engine.request_callback("c1", 1.0)  # ringing, not waiting
    assert (engine.contact_status("c1"), engine.agent_status("a1"), engine.queue_status("q", 1.0)) == snapshot


def test_max_wait_passing_while_ringing_overflows_only_if_the_offer_fails() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", max_wait_s=10, offer_timeout_s=15, fallback_action="voicemail")],
        agents=[agent("a1")],
    )
    engine.contact_arrived(voice("c1"), 0.0)  # rings a1 until 15
    assert engine.tick(10.0) == []
    out = engine.tick(15.0)
    assert of_type(out, FallbackAction) == [FallbackAction("c1", "q", "voicemail", "max_wait")]


def test_transfer_to_an_agent_with_a_timeout_falls_back_to_the_queue() -> None:
    engine = make_engine(agents=[agent("a1"), agent("a2")])
    engine.contact_arrived(voice("x"), 0.0)  # a1
    engine.offer_accepted("x", "a1", 0.0)
    engine.set_agent_state("a2", "not_ready", 0.0)
    engine.contact_arrived(voice("c1"), 1.0)
    engine.transfer_to_agent("c1", "a1", 2.0, timeout_s=5)
    engine.set_agent_state("a2", "available", 3.0)
    assert engine.contact_status("c1").state == "waiting"  # still reserved for a1
    out = engine.tick(7.0)
    assert offered_to(out) == [("c1", ("a2",))]


def test_logout_releases_contacts_reserved_for_the_agent() -> None:
    engine = make_engine(queues=[QueueConfig("q", sticky_s=60)], agents=[agent("owner"), agent("a2")])
    engine.set_agent_state("owner", "not_ready", 0.0)
    engine.set_agent_state("a2", "not_ready", 0.0)
    engine.contact_arrived(voice("c1", preferred_agent_id="owner"), 1.0)
    assert engine.contact_status("c1").target_agent == "owner"
    engine.agent_logout("owner", 2.0)
    assert engine.contact_status("c1").target_agent is None
    assert offered_to(engine.set_agent_state("a2", "available", 3.0)) == [("c1", ("a2",))]


def test_remove_queue_only_when_empty() -> None:
    engine = make_engine(
        queues=[QueueConfig("q"), QueueConfig("old")], agents=[agent("a1", {"q": 1, "old": 1})]
    )
    engine.set_agent_state("a1", "not_ready", 0.0)
    engine.contact_arrived(voice("c1", "old"), 0.0)
    with pytest.raises(InvalidTransition):
        engine.remove_queue("old")
    engine.transfer_to_queue("c1", "q", 1.0)
    engine.remove_queue("old")
    assert engine.queue_ids() == ("q",)
    assert engine.waiting_contacts("q") == ("c1",)


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(InvalidConfig):
        QueueConfig("q", required_skills={"x": 11})
    with pytest.raises(InvalidConfig):
        QueueConfig("q", strategy="fastest")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfig):
        AgentConfig("a", capacity={"pigeon": 1})
    engine = make_engine()
    with pytest.raises(InvalidConfig):
        engine.contact_arrived(Contact("c1", "pigeon", "q"), 0.0)


def test_restored_wrap_up_ends_on_its_timer() -> None:
    engine = make_engine(agents=[agent("a1")], login=False)
    engine.restore_agent("a1", "wrap_up", since=0.0, wrap_up_until=30.0)
    engine.restore_waiting_contact(voice("c1"), enqueued_at=5.0, seq=7)
    assert engine.resume(10.0) == []
    assert engine.next_deadline() == 30.0
    out = engine.tick(30.0)
    assert offered_to(out) == [("c1", ("a1",))]


def test_daily_reset_restarts_fewest_contacts() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", strategy="fewest_contacts")], agents=[agent("a1"), agent("a2")]
    )
    engine.contact_arrived(voice("c1"), 0.0)
    engine.offer_accepted("c1", "a1", 0.0)
    engine.contact_finished("c1", 1.0)
    assert engine.agent_status("a1").contacts_today == 1
    engine.reset_daily_counters(2.0)
    assert engine.agent_status("a1").contacts_today == 0


def test_an_escalation_step_reached_while_ringing_applies_when_the_contact_returns() -> None:
    engine = make_engine(
        queues=[
            QueueConfig(
                "q",
                required_skills={"s": 8},
                offer_timeout_s=30,
                escalations=(EscalationStep(after_s=10, relax_levels=5),),
            )
        ],
        agents=[agent("expert", skills={"s": 9}), agent("novice", skills={"s": 3})],
    )
    engine.contact_arrived(voice("c1"), 0.0)  # rings the expert
    assert of_type(engine.tick(10.0), ContactEscalated) == [ContactEscalated("c1", "q", 1)]
    out = engine.offer_rejected("c1", "expert", 12.0)
    assert offered_to(out) == [("c1", ("novice",))]


def test_a_reused_contact_id_is_not_hit_by_the_old_contacts_timers() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", max_wait_s=60, fallback_action="voicemail")], agents=[agent("a1")]
    )
    engine.set_agent_state("a1", "not_ready", 0.0)
    engine.contact_arrived(voice("c1"), 0.0)
    engine.contact_withdrawn("c1", 5.0)
    engine.contact_arrived(voice("c1"), 30.0)
    assert engine.tick(60.0) == []
    assert engine.tick(90.0) == [FallbackAction("c1", "q", "voicemail", "max_wait")]


def test_missed_offers_while_on_a_chat_report_the_agent_not_ready() -> None:
    engine = make_engine(
        queues=[QueueConfig("q", offer_timeout_s=5)],
        agents=[agent("a1", capacity={"voice": 1, "chat": 2})],
        config=EngineConfig(missed_offers_to_not_ready=1),
    )
    engine.contact_arrived(Contact("chat1", "chat", "q"), 0.0)
    engine.offer_accepted("chat1", "a1", 0.0)
    engine.contact_arrived(voice("v1"), 1.0)  # rings a1, who is busy in the chat
    out = engine.tick(6.0)
    assert of_type(out, AgentStateChanged) == [
        AgentStateChanged("a1", "on_contact", "missed", 6.0, ready=False)
    ]
    status = engine.agent_status("a1")
    assert (status.state, status.ready, status.reason) == ("on_contact", False, "missed")
    out = engine.contact_finished("chat1", 7.0)
    assert of_type(out, AgentStateChanged) == [
        AgentStateChanged("a1", "not_ready", "missed", 7.0, ready=False)
    ]


def test_a_contact_is_a_frozen_value_with_its_own_attributes() -> None:
    import copy
    import dataclasses
    import pickle

    plain = Contact("c1", "voice", "q")
    assert plain == Contact("c1", "voice", "q", 0, None, None, {}, False)
    assert (plain.priority, plain.customer_id, plain.preferred_agent_id, plain.is_callback) == (
        0,
        None,
        None,
        False,
    )
    # Every contact gets its own attributes mapping, as with a default factory.
    assert plain.attributes == {} and plain.attributes is not Contact("c2", "voice", "q").attributes
    rich = Contact("c3", "chat", "q", priority=2, attributes={"last_agent_id": "a1"}, is_callback=True)
    assert rich.preferred_agent() == "a1" and rich.is_callback and rich.priority == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        rich.priority = 5  # type: ignore[misc]
    assert dataclasses.replace(rich, priority=7).priority == 7
    assert pickle.loads(pickle.dumps(rich)) == rich and copy.deepcopy(rich) == rich
    assert [f.name for f in dataclasses.fields(Contact)][:3] == ["contact_id", "channel", "queue_id"]


# --- arrive() and omit: the same routing with less built ------------------------------------------


def _mixed_day(engine: RoutingEngine, arrive: bool) -> list[object]:
    """A short run that touches most outputs: offers, rejections, timeouts, wrap-up, sticky, transfer,
    escalation, overflow, abandonment; returns every output."""
    outputs: list[object] = []
    for agent_id in ("a1", "a2", "a3"):
        outputs += engine.agent_login(agent_id, 0.0)
    arrivals = [
        ("c1", "voice", "q", 0, None, False),
        ("c2", "voice", "q", 1, "a2", False),
        ("c3", "chat", "q", 0, None, True),
        ("c4", "voice", "q", 2, None, False),
        ("c5", "voice", "q", 0, "a3", False),
        ("c6", "chat", "q", 0, None, False),
    ]
    now = 0.0
    for contact_id, channel, queue_id, priority, preferred, callback in arrivals:
        now += 1.0
        if arrive:
            outputs += engine.arrive(
                contact_id, channel, queue_id, now, priority, preferred_agent=preferred, is_callback=callback
            )
        else:
            contact = Contact(
                contact_id, channel, queue_id, priority, preferred_agent_id=preferred, is_callback=callback
            )
            outputs += engine.contact_arrived(contact, now)
    offers = [o for o in outputs if isinstance(o, OfferContact)]
    outputs += engine.offer_rejected(offers[0].contact_id, offers[0].agent_ids[0], now)
    outputs += engine.offer_accepted(offers[1].contact_id, offers[1].agent_ids[0], now)
    outputs += engine.transfer_to_queue(offers[1].contact_id, "q2", now + 1)
    outputs += engine.set_priority("c6", 3, now + 1)
    outputs += engine.request_callback("c6", now + 1)
    for t in (5.0, 15.0, 30.0, 45.0, 70.0, 100.0):
        outputs += engine.tick(now + t)
        for contact_id in engine.contact_ids():
            status = engine.contact_status(contact_id)
            if status.state == "connected":
                outputs += engine.contact_finished(contact_id, now + t)
            elif status.state == "offered" and int(contact_id[1:]) % 2 == 0:  # odd ones time out
                outputs += engine.offer_accepted(contact_id, status.agent_ids[0], now + t)
    for contact_id in engine.contact_ids():
        if engine.contact_status(contact_id).state != "connected":
            outputs += engine.contact_withdrawn(contact_id, now + 200)
    outputs += engine.set_queue_open("q", False, now + 201)
    return outputs


def _mixed_engine(omit: tuple[type, ...] = ()) -> RoutingEngine:
    engine = RoutingEngine(EngineConfig(missed_offers_to_not_ready=2, reject_cooloff_s=5.0), omit=omit)
    engine.upsert_queue(
        QueueConfig(
            "q",
            wrap_up_s=4,
            sticky_s=8,
            max_wait_s=40,
            overflow_queue_id="q2",
            escalations=(EscalationStep(after_s=10, add_queues=("q2",)),),
        )
    )
    engine.upsert_queue(QueueConfig("q2", strategy="round_robin", offer_timeout_s=6))
    engine.upsert_agent(agent("a1", capacity={"voice": 1, "chat": 2}))
    engine.upsert_agent(agent("a2", {"q": 1, "q2": 2}, capacity={"voice": 1}))
    engine.upsert_agent(agent("a3", {"q2": 1}, capacity={"voice": 1, "chat": 1}))
    return engine


def test_arrive_routes_exactly_as_contact_arrived() -> None:
    assert _mixed_day(_mixed_engine(), arrive=True) == _mixed_day(_mixed_engine(), arrive=False)


def test_omitted_events_are_left_out_and_nothing_else_changes() -> None:
    from frontoffice.domain.routing import DECISIONS, EVENTS

    full = _mixed_day(_mixed_engine(), arrive=False)
    kinds = {type(o) for o in full}
    assert len(kinds & EVENTS) >= 12 and kinds & DECISIONS  # the day touches most kinds
    for omitted in (tuple(EVENTS), (ContactQueued, AgentStateChanged, WrapUpStarted, OfferTimedOut)):
        lean = _mixed_day(_mixed_engine(omitted), arrive=False)
        assert lean == [o for o in full if type(o) not in omitted]


def test_decisions_cannot_be_omitted() -> None:
    with pytest.raises(InvalidConfig):
        RoutingEngine(omit=(OfferContact,))
    with pytest.raises(InvalidConfig):
        RoutingEngine(omit=(ContactQueued, WithdrawOffer))
