"""Scenario: a real phone call on the agent desktop's call panel (CTI).

The server runs with voice on (its own SIP port on loopback). The agent's phone is a sipp UAS
registered for the agent's SIP account; a sipp carrier calls the voice number. The offer pops up on the
desk, the phone answers, and the agent holds, resumes and hangs up from the call panel.
``caller_hold.xml`` checks the SIP side itself: it fails unless it gets a re-INVITE with ``a=sendonly``,
then one with ``a=sendrecv``, then our BYE.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ..conftest import require_tool, run_blocking
from ..integration.sipp import runner
from ..integration.sipp.runner import HOST, SIP_PASSWORD, SippResult, listening, phone_args, run_sipp
from . import conftest as e2e
from .conftest import DemoSite, Server, screenshot, sign_in

NUMBER = "+74951234567"
# sipp numbers its calls from 1: the carrier's From user is +7495123400[call_number].
CALLER = "+74951234001"
# Every sipp run must outlast the whole scenario (sign-in, ringing, hold, resume, hang-up).
SIPP_TIMEOUT_S = 120.0


@pytest.fixture
def sip_port(demo_site: DemoSite, monkeypatch: pytest.MonkeyPatch) -> int:
    """Turn voice on for the ``server`` fixture (requested after this one) on a free SIP port: the
    server's environment is built by ``conftest._env``, so the voice settings are added there."""
    port = runner.free_port()  # free for UDP and TCP: SIP listens on both
    plain_env = e2e._env

    def env_with_voice(data_dir: Path) -> dict[str, str]:
        return plain_env(data_dir) | {
            "FRONTOFFICE_VOICE_ENABLED": "true",
            "FRONTOFFICE_SIP_HOST": HOST,
            "FRONTOFFICE_SIP_PORT": str(port),
            "FRONTOFFICE_VOICE_ANNOUNCE_INTERVAL_S": "0",
            "FRONTOFFICE_VOICE_RECORDINGS": "false",
        }

    monkeypatch.setattr(e2e, "_env", env_with_voice)
    return port


@pytest.fixture
def voice_server(sip_port: int, server: Server) -> Server:
    return server


def sipp_in_background(
    pool: ThreadPoolExecutor, sipp: str, scenario: str, target: str | None, *args: str
) -> Future[SippResult]:
    """Run one sipp scenario on a worker thread (Playwright's sync API owns this thread's event loop)."""
    return pool.submit(lambda: asyncio.run(run_sipp(sipp, scenario, target, *args, timeout_s=SIPP_TIMEOUT_S)))


def test_agent_holds_resumes_and_hangs_up_a_call_from_the_call_panel(
    voice_server: Server, sip_port: int, new_context: Any
) -> None:
    from playwright.sync_api import expect

    sipp = require_tool("sipp")
    server = voice_server
    target = f"{HOST}:{sip_port}"
    support = server.queue_id("Support")
    with server.api() as client:
        settings = client.get(f"/queues/{support}").json()["settings"]
        settings["wrap_up_s"] = 600  # long enough to still be in wrap-up at the end
        client.patch(f"/queues/{support}", json={"settings": settings}).raise_for_status()
        client.post(
            "/entry-points",
            json={"name": "Hotline", "channel": "voice", "address": NUMBER, "default_queue_id": support},
        ).raise_for_status()
        agent_id = next(a["user_id"] for a in client.get("/agents").json() if a["username"] == "agent1")
        client.put(
            f"/agents/{agent_id}/sip", json={"username": "agent1", "password": SIP_PASSWORD}
        ).raise_for_status()

    phone_port = runner.free_port()
    registered = run_blocking(
        lambda: run_sipp(sipp, "register.xml", target, *phone_args("agent1", SIP_PASSWORD, phone_port))
    )
    assert registered.returncode == 0, registered.output

    page = sign_in(new_context(), server, "agent1", "/desk")
    page.select_option("#presence", "available")
    expect(page.locator("#state-pill")).to_have_attribute("data-state", "available")
    # The phone answers at once, so the offer may be gone before a locator polls for it: the page
    # itself notes every offer that appears.
    page.evaluate(
        """() => {
          window.shownOffers = [];
          new MutationObserver((changes) => {
            for (const change of changes) for (const node of change.addedNodes) {
              const id = node.dataset && node.dataset.contactId;
              if (id) window.shownOffers.push(Number(id));
            }
          }).observe(document.getElementById("offers"), { childList: true });
        }"""
    )

    with ThreadPoolExecutor(max_workers=2) as pool:
        phone = sipp_in_background(pool, sipp, "agent_phone.xml", None, "-m", "1", "-p", str(phone_port))
        run_blocking(lambda: listening(phone_port))  # the phone's socket is open before the call arrives
        caller = sipp_in_background(pool, sipp, "caller_hold.xml", target, "-m", "1", "-s", NUMBER)

        # The phone answered: the contact opens in a tab with the call panel.
        panel = page.get_by_role("tabpanel").filter(has=page.get_by_role("heading", name="Phone call"))
        expect(panel).to_be_visible()
        contact_id = int((panel.get_attribute("id") or "").removeprefix("panel-c"))
        assert contact_id in page.evaluate("window.shownOffers"), "the offer never appeared on the desk"
        expect(page.locator(".offer")).to_have_count(0)

        status = panel.get_by_role("status")
        expect(status).to_have_text("Connected.")
        expect(panel.locator(".call-info .call-caller")).to_have_text(CALLER)
        timer = panel.get_by_role("timer", name="Call duration")
        expect(timer).not_to_have_text("0:00")
        started = timer.inner_text()
        expect(timer).not_to_have_text(started)  # it runs

        controls = panel.get_by_role("group", name="Call controls")
        controls.get_by_role("button", name="Hold").click()
        expect(status).to_have_text("The caller is on hold and hears music.")
        resume = controls.get_by_role("button", name="Resume")
        expect(resume).to_have_attribute("aria-pressed", "true")
        resume.click()
        expect(status).to_have_text("Connected.")
        expect(controls.get_by_role("button", name="Hold")).to_have_attribute("aria-pressed", "false")
        controls.get_by_role("button", name="Hang up").click()
        expect(status).to_have_text("The call has ended.")

        called = caller.result(timeout=SIPP_TIMEOUT_S + 30)
        assert called.returncode == 0, called.output
        answered = phone.result(timeout=SIPP_TIMEOUT_S + 30)
        assert answered.returncode == 0, answered.output

    # The contact is in wrap-up: the desk says so and the tab keeps the wrap-up form.
    expect(page.locator("#state-pill")).to_have_attribute("data-state", "wrap_up")
    expect(page.locator("#wrapup-timer")).to_be_visible()
    expect(panel.get_by_role("form", name="Wrap-up")).to_be_visible()
    expect(panel.get_by_role("button", name="End conversation")).to_be_hidden()
    expect(controls.get_by_role("button", name="Hang up")).to_be_disabled()
    # "My contacts today" follows the contact into wrap-up (it used to say "Connected" until completed).
    expect(page.locator(f'#today-list li[data-interaction-id="{contact_id}"]')).to_contain_text("Wrap-up")
    with server.api() as client:
        contact = client.get(f"/interactions/{contact_id}").json()
    assert contact["channel"] == "voice" and contact["state"] == "wrap_up"
    assert contact["agent_id"] == agent_id
    screenshot(page, "desk-call-panel")
