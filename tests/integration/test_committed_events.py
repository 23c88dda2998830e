"""Committed events leave from one place: the sessions' outlet hands each committed transaction's
engine outputs and log rows to every subscriber, once, and nothing of a transaction rolled back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import Table

from frontoffice.bootstrap import Container
from frontoffice.domain import routing as r
from frontoffice.services.acd_commands import AgentLogin
from frontoffice.store.append_log import append_row, collect
from frontoffice.store.committed import Committed
from frontoffice.store.database import commit_outlet
from frontoffice.store.tables import AgentEvent

from .test_acd_api import Desk

_AGENT_EVENTS = cast(Table, AgentEvent.__table__)


def agent_row(state: str) -> dict[str, object]:
    return {"agent_id": 1, "at": datetime.now(UTC), "state": state, "reason": None}


async def test_a_commit_hands_its_outputs_and_log_rows_to_every_subscriber_once(container: Container) -> None:
    first: list[Committed] = []
    second: list[Committed] = []
    outlet = commit_outlet(container.sessions)
    outlet.subscribe(first.append)
    outlet.subscribe(second.append)
    output = r.QueueOpenChanged("1", open=False)
    async with container.sessions.begin() as s:
        append_row(s, _AGENT_EVENTS, agent_row("available"))
        collect(s, [output])
    assert len(first) == 1 and first == second
    assert list(first[0].outputs) == [output]
    assert [row["state"] for row in first[0].agent_events] == ["available"]


async def test_a_transaction_rolled_back_publishes_nothing(container: Container) -> None:
    seen: list[Committed] = []
    commit_outlet(container.sessions).subscribe(seen.append)
    with pytest.raises(RuntimeError):
        async with container.sessions.begin() as s:
            append_row(s, _AGENT_EVENTS, agent_row("ghost"))
            collect(s, [r.QueueOpenChanged("1", open=False)])
            raise RuntimeError("rolled back")
    async with container.sessions.begin() as s:
        append_row(s, _AGENT_EVENTS, agent_row("kept"))
    assert [[row["state"] for row in c.agent_events] for c in seen] == [["kept"]]
    assert [list(c.outputs) for c in seen] == [[]]


async def test_a_failing_subscriber_does_not_keep_the_others_from_their_events(container: Container) -> None:
    seen: list[Committed] = []

    def broken(committed: Committed) -> None:
        raise RuntimeError("subscriber bug")

    outlet = commit_outlet(container.sessions)
    outlet.subscribe(broken)
    outlet.subscribe(seen.append)
    async with container.sessions.begin() as s:
        append_row(s, _AGENT_EVENTS, agent_row("available"))
    assert len(seen) == 1


async def test_an_acd_command_reaches_subscribers_with_its_outputs_after_its_commit(
    client, container: Container, admin_headers
) -> None:
    desk = Desk(client, container, admin_headers)
    q = await desk.queue("support")
    await desk.agent("ann", {q: 1})
    agent = str(desk.agent_ids["ann"])
    seen: list[Committed] = []
    commit_outlet(container.sessions).subscribe(seen.append)
    await container.acd.execute(AgentLogin(agent))
    [committed] = seen
    assert [type(o) for o in committed.outputs] == [r.AgentStateChanged]
    assert [row["agent_id"] for row in committed.agent_events] == [int(agent)]
