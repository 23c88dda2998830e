"""What nodes of a cluster send each other: signed commands and answers, and the engine's mirror."""

from __future__ import annotations

import pickle

import pytest

from frontoffice.domain import routing as r
from frontoffice.domain.exceptions import Conflict
from frontoffice.services.acd import QueueInfo
from frontoffice.services.acd_commands import AcceptOffer
from frontoffice.services.cluster import EngineMirror, EngineState, QueueView, RemoteError, seal, unseal

KEY = b"k" * 32


def test_a_sealed_command_comes_back_equal() -> None:
    command = AcceptOffer(contact_id="42", agent_id="7")
    assert unseal(KEY, seal(KEY, command)) == command


def test_a_message_signed_with_another_key_is_refused_before_it_is_unpickled() -> None:
    with pytest.raises(ValueError, match="bad signature"):
        unseal(KEY, seal(b"x" * 32, AcceptOffer("1", "2")))


def test_a_signed_message_naming_a_foreign_class_is_refused() -> None:
    import os

    body = pickle.dumps(os.system)
    import hashlib
    import hmac

    forged = hmac.new(KEY, body, hashlib.sha256).digest() + body
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        unseal(KEY, forged)


def test_a_domain_error_of_the_leader_is_raised_again_with_its_id_and_details() -> None:
    error = Conflict("Not possible in the current state", error_id="invalid-transition", reason="x")
    again = unseal(KEY, seal(KEY, RemoteError.of(error))).exception()
    assert isinstance(again, Conflict)
    assert (again.message, again.error_id, again.details) == (
        error.message,
        "invalid-transition",
        {"reason": "x"},
    )


def _agent(agent_id: str, state: r.AgentState) -> r.AgentStatus:
    return r.AgentStatus(agent_id, state, None, 0.0, state == "available", (), (), None, 0, 0)


def _contact(contact_id: str, state: r.ContactState = "waiting") -> r.ContactStatus:
    return r.ContactStatus(contact_id, state, "1", "webform", 0, 0.0, 1, 0, False, (), None)


def _state(seq: int, *, full: bool = False, epoch: int = 1, **changes: object) -> EngineState:
    queue = QueueView(r.QueueStatus("1", True, 1, 2.0, 1, 1, 0, 0, 0), None, ("10",), 30.0)
    values: dict[str, object] = {
        "epoch": epoch,
        "seq": seq,
        "full": full,
        "at": 100.0,
        "queue_ids": ("1",),
        "agent_ids": ("7",),
        "agents": {},
        "contacts": {},
        "queues": {"1": queue},
        "queue_info": {1: QueueInfo(None, False)},
        "engine_config": r.EngineConfig(),
    }
    values.update(changes)
    return EngineState(**values)  # type: ignore[arg-type]


def test_the_mirror_answers_what_the_leader_last_published() -> None:
    mirror = EngineMirror()
    mirror.apply(
        _state(1, full=True, agents={"7": _agent("7", "available")}, contacts={"10": _contact("10")})
    )
    assert mirror.agent_status("7").state == "available"
    assert mirror.position("10") == 1 and mirror.expected_wait("10", 100.0) == 30.0
    assert mirror.queue_status("1", 103.0).longest_wait_s == 5.0  # grown since the leader's view
    nxt = _state(2, agents={"7": _agent("7", "on_contact")}, contacts={"10": None})
    assert mirror.follows(nxt)
    mirror.apply(nxt)
    assert mirror.agent_status("7").state == "on_contact"
    with pytest.raises(r.UnknownContact):
        mirror.contact_status("10")


def test_the_mirror_sees_a_gap_or_a_new_leader_and_does_not_follow_it() -> None:
    mirror = EngineMirror()
    mirror.apply(_state(1, full=True))
    assert not mirror.follows(_state(3)), "a missed state: ask for a snapshot"
    assert not mirror.follows(_state(1, epoch=2)), "a new leader's states start with a full one"
    assert mirror.follows(_state(1, epoch=2, full=True))
    assert mirror.has(1, 1) and not mirror.has(1, 2)
