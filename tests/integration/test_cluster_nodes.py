"""Several nodes on one PostgreSQL database joined by NATS: real ``frontoffice serve`` processes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

import httpx
import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine as create_engine

from ..conftest import eventually, free_port
from .cluster_nodes import (
    FRONTOFFICE,
    Cluster,
    Heard,
    Node,
    admin_sql,
    contacts_listed,
    listen,
    post_until_acknowledged,
    socket_of,
)

pytestmark = pytest.mark.postgres


async def _login(cluster: Cluster, node: Node, agent: str) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=15) as client:
        r = await client.post("/api/v1/agent/login", json={}, headers=cluster.headers(agent))
        assert r.status_code == 204, r.text


async def _work(
    cluster: Cluster, node: Node, agent: str, accepted: dict[int, str], offered: dict[int, set[str]]
) -> None:
    """An agent at a desk on ``node``: every offer that reaches their socket is accepted and completed
    through that same node."""
    async with (
        socket_of(node, cluster.tokens[agent]) as ws,
        httpx.AsyncClient(base_url=node.url, timeout=15) as client,
    ):
        me = (await client.get("/api/v1/agent/status", headers=cluster.headers(agent))).json()
        my_id = int(me["agent_id"])
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] != "offer_contact":
                continue
            assert my_id in message["data"]["agent_ids"], "an offer reached a socket it is not for"
            contact = int(message["data"]["contact_id"])
            offered.setdefault(contact, set()).add(agent)
            r = await client.post(f"/api/v1/agent/offers/{contact}/accept", headers=cluster.headers(agent))
            if r.status_code == 409:  # the offer ended meanwhile (timed out): it comes back
                continue
            assert r.status_code == 204, r.text
            accepted[contact] = f"{agent}@{node.name}"
            r = await client.post(
                f"/api/v1/agent/contacts/{contact}/complete", json={}, headers=cluster.headers(agent)
            )
            assert r.status_code == 200, r.text


async def test_three_nodes_route_contacts_posted_to_any_node_to_agents_on_every_node(
    cluster: Cluster,
) -> None:
    nodes = await asyncio.to_thread(cluster.start, 3)
    leader = await cluster.leader()
    roles = [(await cluster.readiness(n))["role"] for n in nodes]
    assert roles.count("leader") == 1 and roles.count("standby") == 2, roles
    accepted: dict[int, str] = {}
    offered: dict[int, set[str]] = {}
    desks = {"agent1": nodes[0], "agent2": nodes[1], "agent3": nodes[2]}
    for agent, node in desks.items():
        await _login(cluster, node, agent)
    workers = [
        asyncio.create_task(_work(cluster, node, agent, accepted, offered)) for agent, node in desks.items()
    ]
    try:
        posted = await asyncio.gather(
            *(post_until_acknowledged(cluster, n, f"rr{n}", first=n) for n in range(18))
        )
        assert {node for _, node in posted} == {n.name for n in nodes}, "contacts were posted to every node"
        ids = {contact for contact, _ in posted}
        assert len(ids) == 18
        await eventually(
            lambda: ids <= accepted.keys(), "every contact was accepted by an agent", timeout_s=60
        )
        for task in workers:
            assert not task.done(), task.exception()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    taken_on = {where.split("@")[1] for where in accepted.values()}
    assert len(taken_on) >= 2, f"agents on several nodes took contacts: {accepted}"
    assert any(where.split("@")[1] != leader.name for where in accepted.values()), "through a standby too"
    listed = await contacts_listed(cluster, nodes[1], "contact")
    assert sorted(i for i, _ in listed) == sorted(ids), "every contact exists once"
    status = json.loads(await asyncio.to_thread(cluster.cli, "cluster", "status", "--json"))
    assert status["leader"]["node"] == leader.name and status["leader"]["held"]
    assert {n["node"] for n in status["nodes"] if n["alive"]} == {n.name for n in nodes}
    assert status["bus"].startswith("ok")
    standby = next(n for n in nodes if n is not leader)
    async with httpx.AsyncClient(timeout=10) as client:
        scrape = (await client.get(f"{standby.url}/metrics", headers=cluster.headers("admin"))).text
    assert "frontoffice_cluster_leader 0.0" in scrape and "frontoffice_cluster_bus_connected 1.0" in scrape


async def test_kill_9_of_the_leader_under_load_loses_and_duplicates_no_acknowledged_contact(
    cluster: Cluster,
) -> None:
    await asyncio.to_thread(cluster.start, 3)
    leader = await cluster.leader()
    survivor = next(n for n in cluster.nodes if n is not leader)
    await _login(cluster, survivor, "agent2")
    heard = Heard()
    async with socket_of(survivor, cluster.tokens["agent2"]) as ws:
        listener = asyncio.create_task(listen(ws, heard))
        acknowledged: dict[str, int] = {}
        killed_at: list[float] = []
        gate = asyncio.Semaphore(6)

        async def post(n: int) -> None:
            async with gate:
                contact, _ = await post_until_acknowledged(cluster, n, f"kill{n}", first=n, prefix="load")
            acknowledged[f"kill{n}"] = contact
            if len(acknowledged) == 12 and not killed_at:
                leader.kill9()
                killed_at.append(time.monotonic())

        await asyncio.gather(*(post(n) for n in range(40)))
        assert killed_at, "the leader was killed mid-load"
        new_leader = await cluster.leader(not_=leader)
        assert new_leader is not leader
        # Routing resumed on the new leader: the agent's socket on a surviving node hears a new offer.
        offers = await eventually(
            lambda: heard.of_type("offer_contact", after=killed_at[0]),
            "an offer after the kill",
            timeout_s=30,
        )
        contact = int(offers[-1]["data"]["contact_id"])
        async with httpx.AsyncClient(base_url=survivor.url, timeout=15) as client:
            r = await client.post(f"/api/v1/agent/offers/{contact}/accept", headers=cluster.headers("agent2"))
            assert r.status_code == 204, r.text
        listener.cancel()
    assert len(acknowledged) == 40
    listed = await contacts_listed(cluster, new_leader, "load")
    by_subject: dict[str, list[int]] = {}
    for interaction_id, subject in listed:
        by_subject.setdefault(subject, []).append(interaction_id)
    for n in range(40):
        assert by_subject.get(f"load {n}") == [acknowledged[f"kill{n}"]], (
            f"contact {n}: {by_subject.get(f'load {n}')}"
        )


async def test_a_leader_cut_off_from_its_lease_stops_routing_and_a_standby_takes_over(
    cluster: Cluster,
) -> None:
    await asyncio.to_thread(cluster.start, 2)
    old = await cluster.leader()
    other = next(n for n in cluster.nodes if n is not old)
    epoch = (await cluster.readiness(old))["epoch"]
    # Cut the leader's lease session (as a network cut or a DBA would): the server ends it.
    await admin_sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = 'frontoffice lease {old.name}'",
        cluster.database_url,
    )

    async def changed_hands() -> bool:
        was, now = await cluster.readiness(old), await cluster.readiness(other)
        return (
            was["role"] == "standby"
            and was["status"] == "ok"  # following the new leader's engine state
            and now["role"] == "leader"
            and now["epoch"] > epoch
        )

    await eventually(changed_hands, "the standby leads and the old leader stopped routing", timeout_s=30)
    # The old leader still serves: a contact posted to it is routed by the new leader, and an agent
    # whose desk is on the old leader gets the offer there.
    await _login(cluster, old, "agent1")
    heard = Heard()
    async with socket_of(old, cluster.tokens["agent1"]) as ws:
        listener = asyncio.create_task(listen(ws, heard))
        contact, _ = await post_until_acknowledged(
            cluster, 1, "cut1", first=cluster.nodes.index(old), prefix="cut"
        )
        offers = await eventually(
            lambda: heard.of_type("offer_contact"), "the offer on the old leader's socket"
        )
        assert int(offers[0]["data"]["contact_id"]) == contact
        listener.cancel()


def _metric(scrape: str, name: str) -> float:
    for line in scrape.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in the scrape")


async def test_readyz_names_each_nodes_role_and_metrics_count_forwarded_commands(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.start, 2)
    leader = await cluster.leader()
    standby = next(n for n in cluster.nodes if n is not leader)
    body: dict[str, Any] = await cluster.readiness(standby)
    assert body["status"] == "ok" and body["role"] == "standby" and body["bus"] == "connected"
    await post_until_acknowledged(cluster, 1, "m1", first=cluster.nodes.index(standby), prefix="metric")
    async with httpx.AsyncClient(timeout=10) as client:
        scrape = (await client.get(f"{standby.url}/metrics", headers=cluster.headers("admin"))).text
        leader_scrape = (await client.get(f"{leader.url}/metrics", headers=cluster.headers("admin"))).text
    assert _metric(scrape, "frontoffice_cluster_commands_forwarded_total") >= 1
    assert _metric(leader_scrape, "frontoffice_cluster_commands_served_total") >= 1
    assert _metric(leader_scrape, "frontoffice_cluster_leader") == 1


async def test_the_standbys_wallboard_follows_the_leaders_engine(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.start, 2)
    leader = await cluster.leader()
    standby = next(n for n in cluster.nodes if n is not leader)
    await post_until_acknowledged(cluster, 1, "w1", first=cluster.nodes.index(leader), prefix="wall")

    async def waiting_on_standby() -> bool:
        async with httpx.AsyncClient(base_url=standby.url, timeout=10) as client:
            board = (await client.get("/api/v1/wallboard", headers=cluster.headers("supervisor"))).json()
        return sum(q["waiting"] for q in board["queues"]) == 1

    await eventually(waiting_on_standby, "the standby's wallboard shows the contact waiting")


async def test_a_standby_taking_over_answers_reads_from_its_mirror_until_its_engine_is_rebuilt(
    cluster: Cluster,
) -> None:
    """Between taking the lease and finishing the rebuild from the store, the new leader's engine is
    empty: reads must keep coming from the mirror of the old leader's engine (seen in the nginx test:
    an agent's status answered 404 not-an-agent through the survivor right after a kill -9)."""
    await asyncio.to_thread(cluster.start, 2)
    leader = await cluster.leader()
    standby = next(n for n in cluster.nodes if n is not leader)
    await _login(cluster, leader, "agent1")

    async def status(node: Node) -> httpx.Response:
        async with httpx.AsyncClient(base_url=node.url, timeout=15) as client:
            return await client.get("/api/v1/agent/status", headers=cluster.headers("agent1"))

    async def mirrored() -> bool:
        r = await status(standby)
        return r.status_code == 200 and r.json()["state"] == "available"

    await eventually(mirrored, "the standby's mirror has the signed-in agent")
    # The standby's rebuild will wait for this lock (it reads the agents' profiles), as a rebuild
    # takes its time on a large or busy database.
    engine = create_engine(cluster.database_url)
    try:
        async with engine.connect() as holder:
            await holder.execute(text("LOCK TABLE agent_profiles IN ACCESS EXCLUSIVE MODE"))
            leader.kill9()

            async def leads() -> bool:
                return (await cluster.readiness(standby)).get("role") == "leader"

            await eventually(leads, "the standby took the lease", timeout_s=30)
            for _ in range(3):
                r = await status(standby)
                assert r.status_code == 200, r.text
                assert r.json()["state"] == "available", r.json()
            await holder.rollback()  # the rebuild goes on
    finally:
        await engine.dispose()

    async def rebuilt() -> bool:
        r = await status(standby)
        return r.status_code == 200 and r.json()["state"] == "available"

    await eventually(rebuilt, "the rebuilt engine has the agent")


async def test_a_socket_on_a_standby_hears_events_published_by_the_leader(cluster: Cluster) -> None:
    await asyncio.to_thread(cluster.start, 2)
    leader = await cluster.leader()
    standby = next(n for n in cluster.nodes if n is not leader)
    heard = Heard()
    async with socket_of(standby, cluster.tokens["supervisor"]) as ws:
        listener = asyncio.create_task(listen(ws, heard))
        await _login(cluster, leader, "agent3")  # the leader commits the sign-in and publishes it
        await eventually(
            lambda: heard.of_type("agent_state_changed"), "the sign-in reached the standby's supervisor"
        )
        listener.cancel()
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(standby.ws):
            pass


async def test_a_node_without_the_cluster_configuration_refuses_a_database_a_cluster_serves(
    cluster: Cluster,
) -> None:
    await asyncio.to_thread(cluster.start, 1)
    env = {k: v for k, v in cluster.node_env("single").items() if k != "FRONTOFFICE_NATS_URL"}
    result = await asyncio.to_thread(
        subprocess.run,
        [*FRONTOFFICE, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stderr
    assert "FRONTOFFICE_NATS_URL" in result.stderr.replace("\n", "")


async def test_a_rolling_restart_of_every_node_under_load_loses_and_duplicates_nothing(
    cluster: Cluster,
) -> None:
    await asyncio.to_thread(cluster.start, 3)
    leader = await cluster.leader()
    acknowledged: dict[int, int] = {}
    restarting = asyncio.Event()
    restarting.set()

    async def poster(lane: int) -> None:
        """Contacts one after another, as long as the restarts last (a client retrying with its key)."""
        n = lane
        while restarting.is_set():
            contact, _ = await post_until_acknowledged(cluster, n, f"roll{n}", first=n, prefix="roll")
            acknowledged[n] = contact
            n += 3

    posters = [asyncio.create_task(poster(lane)) for lane in range(3)]
    # Standbys first, the leader last (docs/scaling.md), each back and ready before the next.
    for node in [n for n in cluster.nodes if n is not leader] + [leader]:
        before = len(acknowledged)
        await asyncio.to_thread(cluster.restart, node)
        assert len(acknowledged) > before, "contacts kept coming in during the restart"
    restarting.clear()
    await asyncio.gather(*posters)
    new_leader = await cluster.leader()
    assert new_leader is not leader
    listed = await contacts_listed(cluster, new_leader, "roll")
    assert sorted(listed) == sorted((contact, f"roll {n}") for n, contact in acknowledged.items())
