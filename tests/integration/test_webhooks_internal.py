"""Outgoing integrations and internal addresses (SSRF): a webhook or screen-pop URL whose host is or
resolves to a loopback, link-local, private, unspecified or multicast address is refused at
configuration time with a 422 at the ``url`` field, and again at each connection (DNS rebinding),
unless the operator allowed its network (``integrations_allowed_networks``)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from frontoffice.services.egress import AddressRefused, EgressPolicy, GuardedTransport

from ..conftest import free_port, require_tool, serve_in_task
from .webhook_receiver import WebhookReceiver

API = "/api/v1"
BODY = {"name": "ERP", "event_types": ["interaction.created"]}


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = await WebhookReceiver().start()
    yield r
    await r.stop()


def url_error(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error_id"] == "url-not-allowed"
    (error,) = body["details"]["errors"]
    assert error["loc"] == ["body", "url"] and error["type"] == "url-not-allowed"
    return str(error["message"])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hooks", "loopback"),
        ("http://localhost:8080/hooks", "loopback"),  # a name: judged by what it resolves to
        ("http://[::1]/hooks", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0:8080/hooks", "unspecified"),
        ("http://224.0.0.251/hooks", "multicast"),
        ("https://10.20.30.40/hooks", "private"),
        ("http://[::ffff:127.0.0.1]/hooks", "loopback"),
    ],
)
async def test_a_webhook_to_an_internal_address_is_refused_at_its_url(
    client: httpx.AsyncClient, admin_headers: dict[str, str], url: str, why: str
) -> None:
    message = url_error(
        await client.post(f"{API}/webhooks", json={**BODY, "url": url}, headers=admin_headers)
    )
    assert why in message and "integrations_allowed_networks" in message
    assert (await client.get(f"{API}/webhooks", headers=admin_headers)).json() == []


async def test_changing_a_webhook_s_url_to_an_internal_address_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.post(
        f"{API}/webhooks", json={**BODY, "url": "https://93.184.216.34/hooks"}, headers=admin_headers
    )
    assert r.status_code == 201, r.text
    sub = r.json()
    r = await client.patch(
        f"{API}/webhooks/{sub['id']}", json={"url": "http://169.254.169.254/x"}, headers=admin_headers
    )
    assert "link-local" in url_error(r)
    assert (await client.get(f"{API}/webhooks/{sub['id']}", headers=admin_headers)).json()["url"] == (
        "https://93.184.216.34/hooks"
    )


async def test_a_screen_pop_endpoint_on_an_internal_address_is_refused(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    r = await client.put(
        f"{API}/integrations/screen-pop",
        json={"url": "http://192.168.1.5/customers/{phone}"},
        headers=admin_headers,
    )
    assert "private" in url_error(r)
    assert (await client.get(f"{API}/integrations/screen-pop", headers=admin_headers)).json()[
        "default"
    ] is None


async def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    receiver: WebhookReceiver,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "erp.example"
        return ["127.0.0.1"]

    transport = GuardedTransport(EgressPolicy.from_setting(["127.0.0.0/8"], resolver=resolver))
    async with httpx.AsyncClient(transport=transport) as http:
        r = await http.post(f"http://erp.example:{receiver.port}/hooks", content=b'{"type":"x"}')
    assert r.status_code == 200
    assert receiver.requests[0].headers["host"] == f"erp.example:{receiver.port}"


async def test_a_name_that_rebinds_to_an_internal_address_after_the_check_is_refused_at_connection(
    receiver: WebhookReceiver,
) -> None:
    answers = [["93.184.216.34"], ["127.0.0.1"]]  # public when configured, loopback when used

    async def resolver(host: str, port: int) -> list[str]:
        return answers.pop(0)

    policy = EgressPolicy(resolver=resolver)
    url = f"http://rebind.example:{receiver.port}/hooks"
    await policy.check_url(url)  # passes: the name is public now
    async with httpx.AsyncClient(transport=GuardedTransport(policy)) as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await http.post(url, content=b"{}")
    assert isinstance(refused.value.__cause__, AddressRefused)
    assert "rebind.example (127.0.0.1) is a loopback address" in str(refused.value)
    assert receiver.requests == []


@pytest.fixture
def erp_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate naming erp.example only (no IP address)."""
    openssl = require_tool("openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert),
            "-subj", "/CN=erp.example", "-addext", "subjectAltName=DNS:erp.example",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_over_https_the_certificate_is_checked_against_the_host_name_not_the_address(
    erp_certificate: tuple[Path, Path],
) -> None:
    cert, key = erp_certificate
    seen: list[str] = []

    async def hooks(request: Request) -> Response:
        seen.append(request.headers["host"])
        return PlainTextResponse("ok")

    port = free_port()
    app = Starlette(routes=[Route("/hooks", hooks, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
    )
    task = await serve_in_task(server)
    try:

        async def resolver(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        policy = EgressPolicy.from_setting(["127.0.0.1/32"], resolver=resolver)
        trusted = ssl.create_default_context(cafile=str(cert))  # the certificate names erp.example only
        async with httpx.AsyncClient(transport=GuardedTransport(policy, verify=trusted)) as http:
            r = await http.post(f"https://erp.example:{port}/hooks", content=b"{}")
        assert r.status_code == 200 and seen == [f"erp.example:{port}"]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
