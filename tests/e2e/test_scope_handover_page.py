"""The ticket page when work would go to another client's team: an administrator who picks as assignee an
agent limited to another project sees the refusal under the Assignee field (in the page's language) and
the ticket keeps its assignee; a note that @mentions that agent is saved, and a notice names them as not
told."""

from __future__ import annotations

from typing import Any

from .conftest import WAIT_MS, Server, sign_in

PASSWORD = "scope-handover-1"


def _call(server: Server, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    with server.api() as client:
        r = client.request(method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()


def _client_ticket(server: Server) -> tuple[dict[str, Any], int]:
    """A ticket of client "acme-e2e" and the id of an agent who works for client "other-e2e" only."""
    acme = _call(server, "POST", "/projects", {"code": "acme-e2e", "name": "Acme"})
    other = _call(server, "POST", "/projects", {"code": "other-e2e", "name": "Other"})
    agent = _call(
        server,
        "POST",
        "/users",
        {"username": "olga.other", "display_name": "Olga Other", "role": "agent", "password": PASSWORD},
    )
    _call(server, "PUT", f"/users/{agent['id']}/projects", {"project_ids": [other["id"]]})
    customer = _call(server, "POST", "/customers", {"first_name": "Boris", "project_id": acme["id"]})
    ticket = _call(
        server,
        "POST",
        "/tickets",
        {"customer_id": customer["id"], "subject": "Invoice question", "project_id": acme["id"]},
    )
    return ticket, int(agent["id"])


def test_the_ticket_page_refuses_another_clients_agent_as_assignee_and_names_them_as_not_told(
    server: Server, new_context: Any
) -> None:
    from playwright.sync_api import expect

    ticket, olga = _client_ticket(server)
    page = sign_in(new_context(), server, "admin", "/admin")
    page.goto(f"{server.url}/tickets/{ticket['id']}")

    assignee = page.locator("#p-assignee")
    expect(assignee.locator(f"option[value='{olga}']")).to_have_count(1, timeout=WAIT_MS)
    assignee.select_option(str(olga))
    page.locator("#props button[type=submit]").click()
    error = page.locator("#props .field-error")
    expect(error).to_have_text("This user cannot see this ticket's project", timeout=WAIT_MS)
    expect(assignee).to_have_attribute("aria-invalid", "true")
    assert _call(server, "GET", f"/tickets/{ticket['id']}")["assignee_id"] is None

    page.check("input[name=mode][value=note]")
    page.fill("#reply-body", "@olga.other could you check the invoice?")
    page.locator("#reply-form button[type=submit]").click()
    notice = page.locator(".toast.error")
    expect(notice).to_contain_text("Not told: they cannot see this ticket's project: @olga.other")
    expect(page.locator("#t-timeline")).to_contain_text("could you check the invoice?")
    assert _call(server, "GET", f"/tickets/{ticket['id']}/watchers") == []

    # The demo supervisor works in Russian: the same refusal in Russian.
    ru = sign_in(new_context(), server, "supervisor", "/wallboard")
    ru.goto(f"{server.url}/tickets/{ticket['id']}")
    ru.locator("#p-assignee").select_option(str(olga))
    ru.locator("#props button[type=submit]").click()
    expect(ru.locator("#props .field-error")).to_have_text(
        "Этот пользователь не видит проект этой заявки", timeout=WAIT_MS
    )
