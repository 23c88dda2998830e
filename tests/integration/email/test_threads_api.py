"""The threads API: a thread's messages (paginated, attachments' metadata, downloads), remote
images allowed by the agent, split and merge (audited), permissions and project scoping."""

from __future__ import annotations

from pathlib import Path

import httpx

from frontoffice.bootstrap import Container
from frontoffice.domain.model import Role
from frontoffice.services.context import Actor
from frontoffice.services.schemas import ProjectIn

from ...conftest import make_user, token_headers
from .helpers import SUPPORT, email_entry_point, mail

API = "/api/v1"
CORPUS = Path(__file__).parents[2] / "data" / "email"


async def _thread_of_five(container: Container) -> int:
    """A thread of five messages: a first one with an inline image and a file, four replies."""
    first = (CORPUS / "a03-inline-images.eml").read_bytes()
    received = await container.email.receive(first, recipients=[SUPPORT])
    assert received.thread_id is not None
    for n in range(4):
        raw = mail(
            sender="Design Team <design@vector-logistic.ru>",
            subject=f"Re: [#{received.thread_id}] Logo proofs",
            body=f"reply {n}",
            message_id=f"<reply-{n}@vector-logistic.ru>",
        )
        again = await container.email.receive(raw, recipients=[SUPPORT])
        assert again.thread_id == received.thread_id
    return received.thread_id


async def test_a_thread_reads_page_by_page_with_attachments(
    container: Container, client: httpx.AsyncClient, agent_headers: dict[str, str]
) -> None:
    await email_entry_point(container)
    thread_id = await _thread_of_five(container)
    r = await client.get(f"{API}/threads/{thread_id}", headers=agent_headers)
    assert r.status_code == 200 and r.json()["token"] == thread_id
    seen: list[dict] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = await client.get(f"{API}/threads/{thread_id}/messages", params=params, headers=agent_headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [m["body"] for m in seen[1:]] == [f"reply {n}\n" for n in range(4)]
    assert [m["thread_reason"] for m in seen] == ["new-thread"] + ["subject-token"] * 4
    first = seen[0]
    assert [(a["filename"], a["inline"]) for a in first["attachments"]] == [
        ("image.png", True),
        ("image.png", True),
        ("proof1-copy.png", False),
    ]
    # Inline images point at their downloads; the remote banner waits for the agent.
    inline_url = first["attachments"][0]["url"]
    assert f'src="{inline_url}"' in first["html_body"]
    assert "cdn.vector-logistic.ru/banner.png" in first["html_body"]
    assert ' src="http://cdn.vector-logistic.ru' not in first["html_body"]
    file = await client.get(first["attachments"][2]["url"], headers=agent_headers)
    assert file.status_code == 200
    assert file.headers["content-disposition"].startswith("attachment")
    assert file.content[:4] == b"\x89PNG"
    raw = await client.get(first["raw_url"], headers=agent_headers)
    assert raw.status_code == 200 and raw.content == (CORPUS / "a03-inline-images.eml").read_bytes()
    allowed = await client.post(f"{API}/threads/messages/{first['id']}/remote-images", headers=agent_headers)
    assert allowed.status_code == 204
    r = await client.get(f"{API}/threads/{thread_id}/messages", params={"limit": 1}, headers=agent_headers)
    assert ' src="http://cdn.vector-logistic.ru/banner.png"' in r.json()["items"][0]["html_body"]


async def test_split_and_merge_move_messages_and_are_audited(
    container: Container,
    client: httpx.AsyncClient,
    agent_headers: dict[str, str],
    admin_headers: dict[str, str],
) -> None:
    await email_entry_point(container)
    thread_id = await _thread_of_five(container)
    messages = (await client.get(f"{API}/threads/{thread_id}/messages", headers=agent_headers)).json()[
        "items"
    ]
    r = await client.post(
        f"{API}/threads/{thread_id}/split", json={"from_message_id": messages[3]["id"]}, headers=agent_headers
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    old = (await client.get(f"{API}/threads/{thread_id}/messages", headers=agent_headers)).json()["items"]
    new = (await client.get(f"{API}/threads/{new_id}/messages", headers=agent_headers)).json()["items"]
    assert [m["id"] for m in old] == [m["id"] for m in messages[:3]]
    assert [m["id"] for m in new] == [m["id"] for m in messages[3:]]
    assert {m["thread_reason"] for m in new} == {"split"}
    first_refused = await client.post(
        f"{API}/threads/{new_id}/split", json={"from_message_id": new[0]["id"]}, headers=agent_headers
    )
    assert first_refused.status_code == 400
    assert first_refused.json()["error_id"] == "split-at-first-message"

    r = await client.post(
        f"{API}/threads/{new_id}/merge", json={"into_thread_id": thread_id}, headers=agent_headers
    )
    assert r.status_code == 200, r.text
    merged = (await client.get(f"{API}/threads/{thread_id}/messages", headers=agent_headers)).json()["items"]
    assert [m["id"] for m in merged] == [m["id"] for m in messages]
    assert (await client.get(f"{API}/threads/{new_id}", headers=agent_headers)).json()[
        "merged_into_id"
    ] == thread_id
    # Mail that names the merged thread's token lands in the thread it was merged into.
    late = await container.email.receive(
        mail(
            sender="design@vector-logistic.ru",
            subject=f"Re: [#{new_id}] Logo proofs",
            message_id="<late@x.ru>",
        ),
        recipients=[SUPPORT],
    )
    assert late.thread_id == thread_id
    # ... and joins that thread's open turn (its last interaction, read with the merge target).
    assert late.outcome == "appended"
    audit = (await client.get(f"{API}/audit", params={"limit": 50}, headers=admin_headers)).json()
    actions = [e["action"] for e in (audit["items"] if isinstance(audit, dict) else audit)]
    assert "thread.split" in actions and "thread.merge" in actions


async def test_threads_of_another_project_are_not_found(
    container: Container, client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    project = await container.interactions.create_project(
        Actor.system(), ProjectIn(code="other", name="Other")
    )
    await email_entry_point(container, project_id=project.id)
    thread_id = await _thread_of_five(container)
    mine = await container.interactions.create_project(Actor.system(), ProjectIn(code="mine", name="Mine"))
    user_id = await make_user(container, "limited", Role.AGENT)
    r = await client.put(
        f"{API}/users/{user_id}/projects", json={"project_ids": [mine.id]}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    token = await container.auth.create_token(Actor.system(), "t", user_id=user_id)
    limited = {"Authorization": f"Bearer {token.token}"}
    for path in (f"/threads/{thread_id}", f"/threads/{thread_id}/messages"):
        r = await client.get(API + path, headers=limited)
        assert r.status_code == 404 and r.json()["error_id"] == "no-such-thread"
    r = await client.post(f"{API}/threads/{thread_id}/merge", json={"into_thread_id": 1}, headers=limited)
    assert r.status_code in (400, 404)
    anonymous = await client.get(f"{API}/threads/{thread_id}")
    assert anonymous.status_code == 401
    supervisor = await token_headers(container, "sup", Role.SUPERVISOR)
    assert (await client.get(f"{API}/threads/{thread_id}", headers=supervisor)).status_code == 200
