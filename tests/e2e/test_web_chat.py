"""Issue 17's web chat with real browsers: a visitor chats from /demo/chat with an agent in another
browser context; the visitor reloads the page mid-chat and loses nothing; the server restarts
mid-chat and both sides resume with no message lost or shown twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from ..conftest import wait_until_serving
from .conftest import ROOT, Server, _env, sign_in, wait_for
from .test_agent_desktop import go_available


def widget(page: Any) -> Any:
    """The widget's shadow root content (Playwright's CSS engine pierces open shadow roots)."""
    return page.locator("#frontoffice-chat")


def visitor_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator("#frontoffice-chat .msg .text").all_inner_texts()]


def agent_texts(page: Any) -> list[str]:
    return [t.strip() for t in page.locator(".chat-thread .chat-message .message-body").all_inner_texts()]


def start_chat(visitor: Any, server: Server, name: str, message: str, topic: str | None = None) -> None:
    """The visitor opens /demo/chat's widget and starts a chat through its pre-chat form."""
    visitor.goto(f"{server.url}/demo/chat")
    widget(visitor).locator("[data-fo=launcher]").click()
    form = widget(visitor).locator("form[data-fo=prechat]")
    form.locator("input[name=name]").fill(name)
    form.locator("input[name=email]").fill("ivan.petrov@example.org")
    if topic is not None:
        form.locator("select[name=topic]").select_option(topic)
    form.locator("textarea[name=message]").fill(message)
    form.locator("button[type=submit]").click()


def restart(server: Server, data_dir: Path) -> subprocess.Popen[bytes]:
    """Stop the server and start it again on the same port and data (a deploy, a crash)."""
    server.stop()
    port = server.url.rsplit(":", 1)[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "frontoffice", "serve", "--host", "127.0.0.1", "--port", port],
        env=_env(data_dir),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until_serving(proc, int(port))
    return proc


def test_a_visitor_chats_with_an_agent_across_a_reload_and_a_server_restart(
    server: Server, new_context: Any, tmp_path: Path
) -> None:
    agent = sign_in(new_context(), server, "agent1", "/desk")
    go_available(agent)

    visitor = new_context(viewport=(390, 780)).new_page()  # a phone
    start_chat(
        visitor, server, "Ivan <b>Petrov</b>", "Where is my order <script>alert(1)</script>?", "Delivery"
    )

    offer = agent.locator(".offer").first
    offer.wait_for()
    offer.locator(".offer-accept").click()
    thread = agent.locator(".chat-thread")
    thread.get_by_text("Where is my order <script>alert(1)</script>?").wait_for()
    agent.locator(".chat-facts").get_by_text("/demo/chat").wait_for()

    agent.locator(".chat-input").fill("Hello Ivan, let me check.")
    agent.locator(".chat-input").press("Enter")
    widget(visitor).get_by_text("Hello Ivan, let me check.").wait_for()
    # The visitor's widget read it: the agent sees the read receipt.
    agent.locator('.delivery-state .badge[data-delivery="read"]').wait_for()

    # A reload mid-chat: the conversation is all there, once.
    visitor.reload()
    widget(visitor).get_by_text("Hello Ivan, let me check.").wait_for()
    assert visitor_texts(visitor) == [
        "Where is my order <script>alert(1)</script>?",
        "Hello Ivan, let me check.",
    ]
    widget(visitor).locator("[data-fo=input]").fill("Thanks, I will wait")
    widget(visitor).locator("[data-fo=send]").click()
    thread.get_by_text("Thanks, I will wait").wait_for()

    # The server restarts mid-chat; both sides reconnect and carry on.
    proc = restart(server, tmp_path / "data")
    try:
        agent.wait_for_selector('#conn[data-state="open"]')
        widget(visitor).locator("[data-fo=input]").fill("Still there?")
        widget(visitor).locator("[data-fo=send]").click()
        thread.get_by_text("Still there?").wait_for()
        agent.locator(".chat-input").fill("Yes, your parcel left today.")
        agent.locator(".chat-input").press("Enter")
        widget(visitor).get_by_text("Yes, your parcel left today.").wait_for()
        expected = [
            "Where is my order <script>alert(1)</script>?",
            "Hello Ivan, let me check.",
            "Thanks, I will wait",
            "Still there?",
            "Yes, your parcel left today.",
        ]
        wait_for(lambda: visitor_texts(visitor) == expected, "the visitor shows each message once", visitor)
        wait_for(lambda: agent_texts(agent) == expected, "the agent shows each message once", agent)
        # Text is shown as text: nothing the visitor typed became markup.
        assert widget(visitor).locator("script").count() == 0
        assert agent.locator(".chat-thread script, .chat-thread b").count() == 0
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_an_older_answer_of_the_thread_never_hides_a_newer_read_receipt(
    server: Server, new_context: Any
) -> None:
    """Seen in CI: the agent's message stayed "Sent" although the visitor had read it. The panel reads
    the thread again after sending and again on each delivery event; the reads overlapped, and the
    older answer, drawn last, put the older state back. Here the read made right after sending is held
    back until the visitor has read the message and the panel has drawn that; then it is let through."""
    agent = sign_in(new_context(), server, "agent1", "/desk")
    go_available(agent)
    visitor = new_context().new_page()
    start_chat(visitor, server, "Ivan Petrov", "Where is my order?")
    agent.locator(".offer .offer-accept").first.click()
    agent.locator(".chat-thread").get_by_text("Where is my order?").wait_for()
    # The visitor's widget is closed: the message reaches it, nobody reads it yet.
    widget(visitor).locator("[data-fo=close]").click()

    held: list[tuple[Any, Any]] = []

    def hold_the_first(route: Any) -> None:
        if held:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # the thread as it is now, answered later

    agent.route("**/api/v1/threads/*/messages*", hold_the_first)
    agent.locator(".chat-input").fill("Hello Ivan, let me check.")
    agent.locator(".chat-input").press("Enter")
    widget(visitor).locator("[data-fo=launcher]").wait_for()
    wait_for(lambda: held, "the panel reads the thread after sending", agent)
    widget(visitor).locator("[data-fo=launcher]").click()  # the visitor opens the chat and reads it
    badge = agent.locator('.delivery-state .badge[data-delivery="read"]')
    badge.wait_for()

    route, stale = held[0]
    with agent.expect_event("requestfinished"):
        route.fulfill(response=stale)
    # Let the page take the older answer in (its body is read in a later task) before looking.
    agent.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    badge.wait_for()
    assert agent.locator(".delivery-state .badge").count() == 1
