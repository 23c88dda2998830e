"""Outbound campaigns in the browser (issue 18's screens): an administrator creates a preview campaign (a
refused caller id shown next to its field, a double click creating one campaign), imports its contacts
(a bad line named with its line number, nothing imported; then the fixed file), starts it and adds a
number to the do-not-call list; a supervisor, who may not create campaigns, sees no form for it and
pauses and resumes the campaign; an agent takes the next contact on the desk's outbound card, sees the
customer's number and skips it with a reason."""

from __future__ import annotations

from typing import Any

from .conftest import Server, sign_in, wait_for

GOOD_CSV = b"phone,name\n+74951110001,Anna Petrova\n+74951110002,Boris Orlov\n"
BAD_CSV = b"phone,name\n+74951110001,Anna Petrova\nnot-a-phone,Boris Orlov\n"


def _campaigns(server: Server) -> list[dict[str, Any]]:
    with server.api() as client:
        r = client.get("/campaigns")
        r.raise_for_status()
        data: list[dict[str, Any]] = r.json()
        return data


def test_an_administrator_sets_up_a_campaign_a_supervisor_runs_it_and_an_agent_previews_its_contact(
    server: Server, new_context: Any
) -> None:
    board = sign_in(new_context(), server, "admin", "/admin")
    board.goto(f"{server.url}/lang/en?next=/campaigns%23new")
    form = board.locator("#campaign-form")
    form.wait_for()
    board.fill("#c-name", "Spring offers")
    board.select_option("#c-mode", "preview")
    board.select_option("#c-queue", label="Support")
    for day in board.locator('input[name="days"]').all():
        day.check()  # every day, all day: the test runs whenever CI does
    board.fill("#c-start", "00:00")
    board.fill("#c-end", "23:59")
    board.fill("#c-dispositions", "sale, not_interested")

    # A caller id that is not a number: refused next to its field, nothing created.
    board.fill("#c-caller", "call-us")
    form.locator("button[type=submit]").click()
    error = board.locator("#c-caller + .field-error")
    error.wait_for()
    assert board.get_attribute("#c-caller", "aria-invalid") == "true"
    assert _campaigns(server) == []

    # Fixed, then a double click: the button is disabled while the request runs, one campaign.
    board.fill("#c-caller", "+74951234567")
    assert error.count() == 0  # the error goes as soon as the field is changed
    form.locator("button[type=submit]").dblclick()
    board.wait_for_url("**/campaigns#list")
    row = board.locator("#campaign-table tbody tr", has_text="Spring offers")
    row.wait_for()
    assert [c["name"] for c in _campaigns(server)] == ["Spring offers"]

    # The contact list: a bad line is named with its line number and nothing is imported.
    row.locator("a", has_text="Spring offers").click()
    board.locator("#contacts-file").wait_for()
    view = board.locator("#campaign-view")
    board.set_input_files(
        "#contacts-file", files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": BAD_CSV}]
    )
    view.locator("button[type=submit]", has_text="Import").click()
    view.get_by_text("Nothing was imported: fix these lines").wait_for()
    assert "Line 3" in view.locator("ul").inner_text()
    board.set_input_files(
        "#contacts-file", files=[{"name": "list.csv", "mimeType": "text/csv", "buffer": GOOD_CSV}]
    )
    view.locator("button[type=submit]", has_text="Import").click()
    view.get_by_text("2 added of 2 rows").wait_for()

    row.locator('button[data-action="start"]').click()
    board.locator("#campaign-table tbody tr", has_text="Spring offers").locator(
        'button[data-action="pause"]'
    ).wait_for()
    assert _campaigns(server)[0]["state"] == "running"

    # The do-not-call list: a number added by hand is listed.
    board.goto(f"{server.url}/campaigns#dnc")
    board.fill("#dnc-phone", "+74951110009")
    board.fill("#dnc-reason", "Asked by letter")
    board.locator("#dnc-form button[type=submit]").click()
    board.locator("#section-dnc table tbody tr", has_text="+74951110009").wait_for()

    # A supervisor: no new-campaign form, no import, no do-not-call form; pause and resume work.
    boss = sign_in(new_context(), server, "supervisor", "/wallboard")
    boss.goto(f"{server.url}/lang/en?next=/campaigns")
    boss.locator("#campaigns-read-only").wait_for()
    line = boss.locator("#campaign-table tbody tr", has_text="Spring offers")
    line.locator('button[data-action="pause"]').click()
    line.locator('button[data-action="resume"]').click()
    line.locator('button[data-action="pause"]').wait_for()
    assert _campaigns(server)[0]["state"] == "running"
    assert boss.locator('a[href="#new"]').count() == 0
    line.locator("a", has_text="Spring offers").click()
    boss.locator("#campaign-view h3", has_text="Spring offers").wait_for()
    assert boss.locator("#contacts-file").count() == 0
    boss.goto(f"{server.url}/campaigns#new")  # the hash of a section they may not use: the list
    boss.locator("#campaign-table tbody tr", has_text="Spring offers").wait_for()
    assert boss.locator("#section-new").is_hidden()
    boss.goto(f"{server.url}/campaigns#dnc")
    boss.locator("#section-dnc table tbody tr", has_text="+74951110009").wait_for()
    assert boss.locator("#dnc-form").count() == 0

    # The agent's desk: the next contact of the preview campaign, then skipped with a reason.
    desk = sign_in(new_context(), server, "agent1", "/desk")
    card = desk.locator("#outbound")
    card.wait_for()
    campaign_id = _campaigns(server)[0]["id"]
    desk.select_option("#outbound-campaign", str(campaign_id))
    card.locator("button", has_text="Next contact").click()
    contact = card.locator(".outbound-contact")
    contact.wait_for()
    phone = contact.locator("strong").inner_text()
    assert phone in ("+74951110001", "+74951110002")
    desk.fill("#skip-reason", "Already a customer")
    contact.locator("button", has_text="Skip").click()
    card.get_by_text("Skipped").wait_for()

    def skipped() -> list[dict[str, Any]]:
        with server.api() as client:
            r = client.get(f"/campaigns/{campaign_id}/contacts", params={"state": "skipped"})
            r.raise_for_status()
            items: list[dict[str, Any]] = r.json()["items"]
            return items

    [done] = wait_for(skipped, "the skipped contact in the API", desk)
    assert done["phone"] == phone and done["skip_reason"] == "Already a customer"
