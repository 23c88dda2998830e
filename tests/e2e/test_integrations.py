"""Webhooks and the screen-pop lookup in the browser: an administrator subscribes a receiver in the
admin console and sees its deliveries; an agent sees the external system's fields on the card."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ..conftest import free_port
from .conftest import Server, screenshot, sign_in
from .test_agent_desktop import KNOWN_PHONE, go_available


class _Peer(BaseHTTPRequestHandler):
    """A webhook receiver (POST: 204) and an ERP's customer lookup (GET /customers/<phone>)."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append({"headers": dict(self.headers), "event": json.loads(body)})
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/customers/%2B79161011121":
            body = json.dumps({"Contract": "A-2024-117", "Tariff": "Business 50", "Balance": 1250.5}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Peer", (_Peer,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", received
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server_env(peer: tuple[str, list[dict[str, Any]]]) -> dict[str, str]:
    return {
        "FRONTOFFICE_SCREEN_POP_URL": f"{peer[0]}/customers/{{phone}}",
        # The peer is on loopback, which outgoing integrations reach only when allowed.
        "FRONTOFFICE_INTEGRATIONS_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    }


def test_an_administrator_subscribes_a_receiver_and_sees_its_deliveries(
    server: Server, new_context: Any, peer: tuple[str, list[dict[str, Any]]]
) -> None:
    page = sign_in(new_context(), server, "admin", "/admin")
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    page.goto(f"{server.url}/admin#webhooks")
    form = page.locator("#webhook-form")
    form.get_by_label("Name").fill("ERP")
    form.get_by_label("URL").fill(f"{peer[0]}/hooks")
    form.locator('input[value="interaction.created"]').check()
    form.get_by_role("button", name="Create webhook").click()
    secret_dialog = page.get_by_role("dialog", name="Signing secret of ERP")
    secret = secret_dialog.locator("code.secret").inner_text()
    assert secret.startswith("whsec_")
    secret_dialog.get_by_role("button", name="Close").click()
    page.locator("#section-webhooks tbody tr").filter(has_text="ERP").wait_for()

    contact = server.post_contact("Where is my order", first_name="Иван", phone=KNOWN_PHONE)
    page.get_by_role("button", name="Deliveries").click()
    dialog = page.get_by_role("dialog", name="Deliveries of ERP")
    dialog.get_by_role("cell", name="sent").wait_for()
    dialog.get_by_role("button", name="Log").click()
    dialog.locator("summary").filter(has_text="204").wait_for()
    screenshot(page, "admin-webhooks")
    events = [r["event"] for r in peer[1]]
    assert [e["type"] for e in events] == ["interaction.created"]
    assert events[0]["data"]["interaction_id"] == contact["id"]
    assert script_errors == []


def test_the_card_shows_what_the_external_system_knows_about_the_customer(
    server: Server, new_context: Any
) -> None:
    page = sign_in(new_context(), server, "agent1", "/desk")
    go_available(page)
    contact = server.post_contact("Balance question", first_name="Иван", phone=KNOWN_PHONE)
    offer = page.locator(f'.offer[data-contact-id="{contact["id"]}"]')
    offer.locator(".offer-accept").click()
    panel = page.locator(f"#panel-c{contact['id']}")
    external = panel.get_by_role("region", name="External")
    external.get_by_text("A-2024-117").wait_for()
    external.get_by_text("Business 50").wait_for()
    screenshot(page, "desk-external-lookup")
