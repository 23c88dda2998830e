"""Public web forms: a website posts a contact without a user token, to its entry point's form.

Origin allow-list (CORS), rate limit per client address, honeypot, captcha (against a loopback
verifier speaking the siteverify protocol), idempotent repeats, the answer (accepted with a
reference, or turned away with a reason) and the admin console's snippet, which posts as it is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from frontoffice.bootstrap import Container
from frontoffice.store.tables import Customer, Identity, Interaction, Message
from frontoffice.web.app import create_app

from ..conftest import free_port, serve_in_task
from .test_acd_api import API, Desk

SHOP = "https://shop.example"
CAPTCHA_SECRET = "captcha-secret-0123"


class CaptchaDouble:
    """A captcha service on loopback: ``good`` verifies, ``boom`` is a server error, else not."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.asked: list[dict[str, str]] = []
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _verify(self, request: Request) -> JSONResponse:
        form = dict((await request.form()).items())
        self.asked.append({k: str(v) for k, v in form.items()})
        if form.get("response") == "boom":
            return JSONResponse({"error": "down"}, status_code=500)
        ok = form.get("secret") == CAPTCHA_SECRET and form.get("response") == "good"
        return JSONResponse({"success": ok})

    async def start(self) -> None:
        app = Starlette(routes=[Route("/siteverify", self._verify, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = await serve_in_task(self._server)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@pytest.fixture
def captcha_port() -> int:
    return free_port()


@pytest.fixture
def allowed_networks() -> list[str]:
    # The captcha double is on loopback, which outgoing integrations reach only when allowed.
    return ["127.0.0.0/8"]


@pytest.fixture
def settings_overrides(captcha_port: int, allowed_networks: list[str]) -> dict[str, Any]:
    return {
        "captcha_verify_url": f"http://127.0.0.1:{captcha_port}/siteverify",
        "captcha_secret": CAPTCHA_SECRET,
        "public_url": "https://desk.example",
        "integrations_allowed_networks": allowed_networks,
    }


@pytest.fixture
async def captcha(captcha_port: int) -> AsyncIterator[CaptchaDouble]:
    double = CaptchaDouble(captcha_port)
    await double.start()
    yield double
    await double.stop()


async def _form(
    client: httpx.AsyncClient,
    container: Container,
    admin: dict[str, str],
    address: str = "contact-us",
    **settings: Any,
) -> tuple[int, dict[str, Any]]:
    desk = Desk(client, container, admin)
    queue = await desk.queue(f"{address} queue")
    entry = await desk.entry(address, queue)
    body = {"allowed_origins": [SHOP + "/"], **settings}
    r = await client.put(f"{API}/entry-points/{entry}/web-form", json=body, headers=admin)
    assert r.status_code == 200, r.text
    form = r.json()
    assert form["allowed_origins"] == [SHOP]  # normalised
    return entry, form


async def _count(container: Container) -> int:
    async with container.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Interaction)) or 0)


FIELDS = {
    "name": "Anna Petrova",
    "email": "anna@example.com",
    "message": "Please call me back about my order",
}


async def test_a_form_posted_from_an_allowed_site_becomes_a_queued_contact_with_a_reference(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    entry, form = await _form(client, container, admin_headers)
    r = await client.post(
        form["action_url"].replace("https://desk.example", ""), data=FIELDS, headers={"Origin": SHOP}
    )
    assert r.status_code == 201, r.text
    assert r.headers["access-control-allow-origin"] == SHOP
    answer = r.json()
    assert answer["accepted"] is True and answer["created"] is True
    # Committed before the answer: a fresh session sees the contact, its customer and the message.
    async with container.sessions() as s:
        interaction = await s.get(Interaction, int(answer["reference"]))
        assert interaction is not None
        assert (interaction.channel, interaction.entry_point_id, interaction.state) == (
            "webform",
            entry,
            "queued",
        )
        assert interaction.attributes["origin"] == SHOP
        assert interaction.attributes["client_address"] == "203.0.113.5"
        customer = await s.get(Customer, interaction.customer_id)
        assert customer is not None and (customer.first_name, customer.last_name) == ("Anna", "Petrova")
        assert (
            await s.scalar(select(Identity.value).where(Identity.customer_id == customer.id))
            == "anna@example.com"
        )
        bodies = list(await s.scalars(select(Message.body).where(Message.interaction_id == interaction.id)))
        assert bodies == [FIELDS["message"]]


async def test_a_json_post_from_a_server_without_an_origin_is_accepted(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    r = await client.post(
        f"{API}/public/forms/{form['public_key']}", json={"phone": "+7 916 123-45-67", "message": "Hi"}
    )
    assert r.status_code == 201, r.text
    assert "access-control-allow-origin" not in r.headers


async def test_a_page_of_another_site_is_turned_away_and_nothing_is_stored(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    url = f"{API}/public/forms/{form['public_key']}"
    before = await _count(container)
    for origin in ("https://evil.example", "null", "not an origin"):
        r = await client.post(url, data=FIELDS, headers={"Origin": origin})
        assert r.status_code == 403, (origin, r.text)
        assert r.json()["error_id"] == "origin-not-allowed"
        assert "access-control-allow-origin" not in r.headers
    assert await _count(container) == before


async def test_the_cors_preflight_answers_only_the_forms_sites(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    url = f"{API}/public/forms/{form['public_key']}"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,idempotency-key",
    }
    r = await client.options(url, headers={"Origin": SHOP, **preflight})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "Idempotency-Key" in r.headers["access-control-allow-headers"]
    r = await client.options(url, headers={"Origin": "https://evil.example", **preflight})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = await client.options(f"{API}/public/forms/pk_nope", headers={"Origin": SHOP, **preflight})
    assert r.status_code == 404


async def test_a_filled_honeypot_is_turned_away_as_spam(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    before = await _count(container)
    r = await client.post(
        f"{API}/public/forms/{form['public_key']}",
        data={**FIELDS, "website": "http://spam.example"},
        headers={"Origin": SHOP},
    )
    assert r.status_code == 422 and r.json()["error_id"] == "spam-suspected"
    assert r.headers["access-control-allow-origin"] == SHOP  # the page can read why
    assert await _count(container) == before


async def test_a_form_without_a_way_to_answer_or_a_message_says_which_fields(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    r = await client.post(f"{API}/public/forms/{form['public_key']}", data={"name": "Nobody"})
    assert r.status_code == 422
    body = r.json()
    assert body["error_id"] == "invalid-form"
    assert sorted(e["loc"][0] for e in body["details"]["errors"]) == ["email", "message"]
    r = await client.post(
        f"{API}/public/forms/{form['public_key']}", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415


@pytest.mark.parametrize("settings_overrides", [{"web_form_rate_limit": 3, "web_form_rate_window_s": 600}])
async def test_submissions_are_limited_per_client_address(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    url = f"{API}/public/forms/{form['public_key']}"
    for n in range(3):
        r = await client.post(url, data={**FIELDS, "message": f"try {n}"}, headers={"Origin": SHOP})
        assert r.status_code == 201, r.text
    r = await client.post(url, data=FIELDS, headers={"Origin": SHOP})
    assert r.status_code == 429 and r.json()["error_id"] == "too-many-submissions"
    assert int(r.headers["retry-after"]) > 0
    assert r.headers["access-control-allow-origin"] == SHOP
    # Another address is not held back by the first one.
    other = httpx.ASGITransport(app=create_app(container), client=("198.51.100.7", 50000))
    async with httpx.AsyncClient(transport=other, base_url="http://testserver") as neighbour:
        r = await neighbour.post(url, data=FIELDS, headers={"Origin": SHOP})
    assert r.status_code == 201, r.text


async def test_a_repeat_with_the_same_idempotency_key_answers_the_first_contact(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    _, second_form = await _form(client, container, admin_headers, address="other-form")
    url = f"{API}/public/forms/{form['public_key']}"
    first = await client.post(url, data=FIELDS, headers={"Idempotency-Key": "k-1", "Origin": SHOP})
    again = await client.post(url, data=FIELDS, headers={"Idempotency-Key": "k-1", "Origin": SHOP})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["reference"] == first.json()["reference"] and again.json()["created"] is False
    # The key in a field (a plain HTML form cannot set headers) is the same key.
    field = await client.post(url, data={**FIELDS, "idempotency_key": "k-1"}, headers={"Origin": SHOP})
    assert field.status_code == 200 and field.json()["reference"] == first.json()["reference"]
    # Keys are per form: another form's k-1 is another contact.
    other = await client.post(
        f"{API}/public/forms/{second_form['public_key']}", data=FIELDS, headers={"Idempotency-Key": "k-1"}
    )
    assert other.status_code == 201 and other.json()["reference"] != first.json()["reference"]
    changed = await client.post(url, data={**FIELDS, "message": "other"}, headers={"Idempotency-Key": "k-1"})
    assert changed.status_code == 409


async def test_an_unknown_disabled_or_removed_form_is_not_found(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    entry, form = await _form(client, container, admin_headers)
    url = f"{API}/public/forms/{form['public_key']}"
    assert (await client.post(f"{API}/public/forms/pk_unknown", data=FIELDS)).status_code == 404
    r = await client.put(
        f"{API}/entry-points/{entry}/web-form",
        json={"allowed_origins": [SHOP], "enabled": False},
        headers=admin_headers,
    )
    assert r.status_code == 200 and r.json()["public_key"] == form["public_key"]
    r = await client.post(url, data=FIELDS)
    assert r.status_code == 404 and r.json()["error_id"] == "no-such-form"
    renewed = (
        await client.post(f"{API}/entry-points/{entry}/web-form/new-key", headers=admin_headers)
    ).json()
    assert renewed["public_key"] != form["public_key"]
    assert (
        await client.delete(f"{API}/entry-points/{entry}/web-form", headers=admin_headers)
    ).status_code == 204
    assert (
        await client.get(f"{API}/entry-points/{entry}/web-form", headers=admin_headers)
    ).status_code == 404


async def test_only_a_webform_entry_point_gets_a_form_and_only_administrators_configure_it(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    agent_headers: dict[str, str],
) -> None:
    r = await client.post(
        f"{API}/entry-points",
        json={"name": "Mail", "channel": "email", "address": "help@example.com", "rules": []},
        headers=admin_headers,
    )
    assert r.status_code == 201, r.text
    r = await client.put(f"{API}/entry-points/{r.json()['id']}/web-form", json={}, headers=admin_headers)
    assert r.status_code == 400 and r.json()["error_id"] == "not-a-webform-entry-point"
    entry, _ = await _form(client, container, admin_headers)
    r = await client.put(f"{API}/entry-points/{entry}/web-form", json={}, headers=agent_headers)
    assert r.status_code == 403
    r = await client.put(
        f"{API}/entry-points/{entry}/web-form", json={"allowed_origins": ["ftp://x"]}, headers=admin_headers
    )
    assert r.status_code == 422


class _FormParser(HTMLParser):
    """The form of the snippet: its action and its inputs' names (what a browser would post)."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag in ("input", "textarea") and values.get("name"):
            self.names.append(str(values["name"]))


async def test_the_snippet_from_the_admin_console_posts_as_it_is(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    _, form = await _form(client, container, admin_headers)
    parser = _FormParser()
    parser.feed(form["html_snippet"])
    assert parser.action == f"https://desk.example/api/v1/public/forms/{form['public_key']}"
    assert {"name", "email", "phone", "subject", "message", "website", "idempotency_key"} <= set(parser.names)
    assert re.search(r"fetch\(form\.action", form["html_snippet"])
    # What a browser posts from that form, the honeypot left empty as people leave it.
    posted = {name: "" for name in parser.names} | FIELDS | {"idempotency_key": "3b6f0d7e"}
    r = await client.post(
        parser.action.removeprefix("https://desk.example"), data=posted, headers={"Origin": SHOP}
    )
    assert r.status_code == 201, r.text


async def test_a_form_that_asks_for_a_captcha_checks_the_token_with_the_verifier(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str], captcha: CaptchaDouble
) -> None:
    _, form = await _form(client, container, admin_headers, captcha=True)
    url = f"{API}/public/forms/{form['public_key']}"
    assert 'name="captcha_token"' in form["html_snippet"]
    r = await client.post(url, data=FIELDS, headers={"Origin": SHOP})
    assert r.status_code == 422 and r.json()["error_id"] == "captcha-failed"
    r = await client.post(url, data={**FIELDS, "captcha_token": "bad"}, headers={"Origin": SHOP})
    assert r.status_code == 422 and r.json()["error_id"] == "captcha-failed"
    before = await _count(container)
    r = await client.post(url, data={**FIELDS, "captcha_token": "boom"}, headers={"Origin": SHOP})
    assert r.status_code == 503 and r.json()["error_id"] == "captcha-unavailable"
    assert await _count(container) == before
    r = await client.post(url, data={**FIELDS, "captcha_token": "good"}, headers={"Origin": SHOP})
    assert r.status_code == 201, r.text
    assert captcha.asked[-1] == {"secret": CAPTCHA_SECRET, "response": "good", "remoteip": "203.0.113.5"}


@pytest.mark.parametrize("allowed_networks", [[]])
async def test_a_captcha_verifier_on_an_address_not_allowed_is_not_asked(
    client: httpx.AsyncClient,
    container: Container,
    admin_headers: dict[str, str],
    captcha: CaptchaDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # captcha_verify_url is the operator's setting; like every outgoing integration it reaches only
    # public addresses and the allowed networks, and a verifier on loopback is not allowed here.
    _, form = await _form(client, container, admin_headers, captcha=True)
    with caplog.at_level(logging.WARNING, logger="frontoffice.web_forms"):
        r = await client.post(
            f"{API}/public/forms/{form['public_key']}",
            data={**FIELDS, "captcha_token": "good"},
            headers={"Origin": SHOP},
        )
    assert r.status_code == 503 and r.json()["error_id"] == "captcha-unavailable"
    assert captcha.asked == [] and await _count(container) == 0
    assert "refused: 127.0.0.1 is a loopback address" in caplog.text
    assert "integrations_allowed_networks" in caplog.text


@pytest.mark.parametrize("settings_overrides", [{}])
async def test_a_captcha_cannot_be_asked_for_without_a_verifier(
    client: httpx.AsyncClient, container: Container, admin_headers: dict[str, str]
) -> None:
    desk = Desk(client, container, admin_headers)
    entry = await desk.entry("no-captcha", await desk.queue("q"))
    r = await client.put(
        f"{API}/entry-points/{entry}/web-form", json={"captcha": True}, headers=admin_headers
    )
    assert r.status_code == 400 and r.json()["error_id"] == "captcha-not-configured"
