"""Server-rendered pages of the browser UI: agent desktop, wallboard, reports and admin console.

Pages are thin shells: they check who is signed in, render the layout with the session's CSRF token
(``<meta name="csrf-token">``) and the translated strings the page's script uses, and leave the rest to
plain ES modules in ``static/js`` that call the REST API and listen on ``/api/v1/stream``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from frontoffice import __version__
from frontoffice.domain.exceptions import DomainError
from frontoffice.domain.model import Role
from frontoffice.i18n import current_language, gettext
from frontoffice.services.context import Actor

from .pages import templates
from .security import SESSION_COOKIE, client_ip, container, session_from_cookie

__all__ = ["HOME_PAGES", "STATIC_DIR", "router", "static_files"]

STATIC_DIR = Path(__file__).parent / "static"
HOME_PAGES = {Role.AGENT: "/desk", Role.SUPERVISOR: "/wallboard", Role.ADMIN: "/admin"}

router = APIRouter(include_in_schema=False)


def static_files() -> StaticFiles:
    return StaticFiles(directory=str(STATIC_DIR))


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated when the page is rendered."""
    return message


# Strings the page scripts show, rendered into each page as a JSON dictionary in the user's language.
JS_MESSAGES: tuple[str, ...] = (
    N_("#"),
    N_("(always open)"),
    N_("(no name)"),
    N_("(no subject)"),
    N_("(none)"),
    N_("A disposition is required at wrap-up"),
    N_("AHT"),
    N_("API token (shown once)"),
    N_("ASA"),
    N_("Abandoned"),
    N_("Accept"),
    N_("Action"),
    N_("Action (e.g. user.create)"),
    N_("Active"),
    N_("Add identity"),
    N_("Add note"),
    N_("Add or change: {what}"),
    N_("Add rule"),
    N_("Address"),
    N_("Agent"),
    N_("Agent profile"),
    N_("Agents"),
    N_("All"),
    N_("Answered"),
    N_("Apply"),
    N_("Audit log"),
    N_("Available"),
    N_("Body"),
    N_("Calendar"),
    N_("Calendar saved"),
    N_("Calendars and holidays"),
    N_("Callback to make"),
    N_("Capacity"),
    N_("Capacity per channel (0: never offered)"),
    N_("Channel"),
    N_("Channel: {channel}"),
    N_("Choose a disposition"),
    N_("Choose at least one queue"),
    N_("Choose “Waiting contacts” on a queue to list them here."),
    N_("Choose…"),
    N_("Close"),
    N_("Closed"),
    N_("Closed now"),
    N_("Code"),
    N_("Code (a-z, 0-9, _ -)"),
    N_("Company"),
    N_("Complete"),
    N_("Contact"),
    N_("Contact #{id}"),
    N_("Contact completed"),
    N_("Contact linked"),
    N_("Contact linked to the ticket"),
    N_("Contact moved"),
    N_("Contact moved to {name}"),
    N_("Copy it now; only its fingerprint is stored."),
    N_("Create a ticket"),
    N_("Create customer"),
    N_("Create or link the customer to file a ticket."),
    N_("Create project"),
    N_("Create queue"),
    N_("Create token"),
    N_("Create user"),
    N_("Created"),
    N_("Critical"),
    N_("Custom fields (name=value, one per line)"),
    N_("Customer"),
    N_("Customer created"),
    N_("Customer saved"),
    N_("Deal"),
    N_("Deal saved"),
    N_("Default queue"),
    N_("Details"),
    N_("Display name"),
    N_("Disposition"),
    N_("Disposition codes"),
    N_("Disposition codes and not-ready reasons"),
    N_("Due"),
    N_("Edit"),
    N_("Edit agent profile"),
    N_("Edit customer"),
    N_("Edit entry point {name}"),
    N_("Edit queue {name}"),
    N_("Email"),
    N_("End conversation"),
    N_("Entry point saved"),
    N_("Entry points and routing rules"),
    N_("Escalation steps"),
    N_("Fallback"),
    N_("Filter"),
    N_("Filter the audit log"),
    N_("First name"),
    N_("Follow-up callback"),
    N_("Form fields"),
    N_("From {from} at {when}"),
    N_("Give the ticket a subject"),
    N_("Group"),
    N_("History"),
    N_("History, newest first"),
    N_("Holidays (one date per line, YYYY-MM-DD)"),
    N_("Identities"),
    N_("Incoming contact"),
    N_("Language"),
    N_("Language of {name}"),
    N_("Last name"),
    N_("Last used"),
    N_("Link"),
    N_("Link to an open ticket"),
    N_("Link to existing customer"),
    N_("Live"),
    N_("Loading…"),
    N_("Longest wait"),
    N_("Max length"),
    N_("Max wait, s"),
    N_("Move"),
    N_("Move contact {id} to agent"),
    N_("Move contact {id} to queue"),
    N_("Move to"),
    N_("Move to agent"),
    N_("My API tokens"),
    N_("Name"),
    N_("Name, phone, email, company"),
    N_("New API token"),
    N_("New calendar"),
    N_("New entry point"),
    N_("New project"),
    N_("New queue"),
    N_("New state for {name}"),
    N_("New user"),
    N_("No agents signed in"),
    N_("No agents."),
    N_("No contacts yet today."),
    N_("No data in this range."),
    N_("No history yet."),
    N_("No message text."),
    N_("No open deals."),
    N_("No open tickets."),
    N_("No queues yet."),
    N_("No rule matches and there is no default queue: the contact would be refused."),
    N_("No rule matches: the default queue {queue}."),
    N_("No ticket"),
    N_("Nobody found."),
    N_("Nobody is waiting."),
    N_("Not ready"),
    N_("Not-ready reasons"),
    N_("Note"),
    N_("Note saved"),
    N_("Notes (added to the customer's notes)"),
    N_("OK"),
    N_("Object"),
    N_("Occupancy"),
    N_("Offer timeout, s"),
    N_("Offered"),
    N_("Offered, answered and abandoned contacts, and service level"),
    N_("Older entries"),
    N_("On contact"),
    N_("One step per line: seconds; levels to relax; extra queue ids. Example: 60; 1; 2,3"),
    N_("Open"),
    N_("Open deals"),
    N_("Open now"),
    N_("Open ticket"),
    N_("Open tickets"),
    N_("Opened"),
    N_("Overflow"),
    N_("Overflow queue"),
    N_("Password (10+ characters)"),
    N_("Phone"),
    N_("Prefix"),
    N_("Priority"),
    N_("Priority changed"),
    N_("Priority of contact {id}"),
    N_("Profile saved"),
    N_("Project"),
    N_("Project created"),
    N_("Projects"),
    N_("Queue created"),
    N_("Queue for this rule"),
    N_("Queue saved"),
    N_("Queues"),
    N_("Queues (tier)"),
    N_("Queues and tiers (1 is offered first)"),
    N_("Queues changed"),
    N_("Reconnecting…"),
    N_("Reject"),
    N_("Remove"),
    N_("Report"),
    N_("Required skills (name=level)"),
    N_("Revoke"),
    N_("Revoke this token?"),
    N_("Revoked"),
    N_("Role"),
    N_("Role of {name}"),
    N_("Rule"),
    N_("Rule {n} matches: queue {queue}."),
    N_("Rules"),
    N_("SL target"),
    N_("SL target, s"),
    N_("SL today"),
    N_("Save"),
    N_("Save calendar"),
    N_("Save entry point"),
    N_("Save note"),
    N_("Save profile"),
    N_("Save queue"),
    N_("Saved"),
    N_("Search"),
    N_("Search results"),
    N_("Service level"),
    N_("Set"),
    N_("Sign out"),
    N_("Skills"),
    N_("Skills (name=level 1–10, comma-separated)"),
    N_("Special days (date = hours, one per line)"),
    N_("Stage of deal {title}"),
    N_("State"),
    N_("State of {name} changed"),
    N_("Status of ticket {id}"),
    N_("Sticky agent, s"),
    N_("Strategy"),
    N_("Subject"),
    N_("Tags"),
    N_("Tags (comma-separated)"),
    N_("Test"),
    N_("Test the rules with a sample contact"),
    N_("The first rule that matches picks the queue; otherwise the default queue does."),
    N_("The offer timed out"),
    N_("The offer was withdrawn"),
    N_("The sender is not a known customer"),
    N_("Ticket"),
    N_("Ticket created"),
    N_("Ticket saved"),
    N_("Ticket subject"),
    N_("Tier in {queue}"),
    N_("Time left to answer"),
    N_("Time zone"),
    N_("Token revoked"),
    N_("Tokens for other users: Users → New API token. A token acts with its user's role."),
    N_("Unknown customer"),
    N_("User"),
    N_("User created"),
    N_("User saved"),
    N_("Username"),
    N_("Users"),
    N_("Value"),
    N_("Waited"),
    N_("Waiting"),
    N_("Waiting contacts"),
    N_("Warning"),
    N_("Weekly hours (e.g. 09:00-13:00, 14:00-18:00; empty: closed)"),
    N_("Weight"),
    N_("What is the token for?"),
    N_("When"),
    N_("While closed"),
    N_("Who"),
    N_("Wrap-up"),
    N_("Wrap-up, s"),
    N_("Wrap-up: {time} left"),
    N_("You missed several offers and are now not ready"),
    N_("callback"),
    N_("empty: no limit"),
    N_("message and disconnect"),
    N_("no"),
    N_("no profile yet"),
    N_("number, address, widget or form id"),
    N_("overflow"),
    N_("refuse"),
    N_("required"),
    N_("right axis"),
    N_("ringing"),
    N_("system"),
    N_("ticket"),
    N_("voicemail"),
    N_("wait anyway"),
    N_("waiting"),
    N_("yes"),
    N_("{name} is active"),
    # the call panel and call records (panels.js, customer.js)
    N_("Agent phone"),
    N_("Call controls"),
    N_("Call details and recording"),
    N_("Call duration"),
    N_("Call ended"),
    N_("Call recording {name}"),
    N_("Call resumed"),
    N_("Call transferred"),
    N_("Caller"),
    N_("Caller on hold"),
    N_("Choose where to transfer the call"),
    N_("Connected."),
    N_("Duration"),
    N_("Hang up"),
    N_("Hold"),
    N_("No recording."),
    N_("Not available."),
    N_("Phone call"),
    N_("Resume"),
    N_("The call has ended."),
    N_("The caller is on hold and hears music."),
    N_("The caller is waiting in the queue."),
    N_("Transfer"),
    N_("Transfer the call"),
    N_("Transfer to"),
    N_("or an external number"),
    N_("Conference"),
    N_("Three-way conference."),
    N_("Choose an agent or a number for the conference"),
    N_("Calling the third party…"),
    # project limits of users (admin.js)
    N_("All projects"),
    N_("Change projects"),
    N_("Projects of {name}"),
    N_("Projects saved"),
    N_("Tick the projects this user works for; with none ticked, the user sees all projects."),
    # issue 14: forms, outage, notifications (common.js, desk.js, wallboard.js, reports.js)
    N_("Wrap-up notes"),
    N_("Page {page} of {pages}"),
    # issue 14 items 13-15 (wallboard.js, admin.js)
    N_("Next: {state}"),
    N_("Signed out: only the agent can sign in"),
    N_("No agents in this queue"),
    N_("Moved out"),
    N_("Reset password"),
    N_("Reset the password of {name}"),
    N_("New password (10+ characters)"),
    N_("Set password"),
    N_("Password changed"),
    N_(
        "One step per line: seconds; levels to relax; extra queues by name, comma-separated. "
        "Example: 60; 1; Billing, Sales"
    ),
    N_("No queue named {names}"),
    N_("Name ({language})"),
    N_("Give a name in at least one language"),
    N_("Overflow in"),
    N_("Overflow out"),
    N_("Contacts waiting, nobody signed in"),
    N_(
        "No agent serves {queues}: contacts sent there wait with nobody to answer them. Add agents to the "
        "queue (Agents) or pick another."
    ),
    N_("Abandonment rate"),
    N_("Unknown: server unreachable"),
    N_("This field is required"),
    N_("Add at least one"),
    N_("This is too long"),
    N_("Too many entries"),
    N_("Contains characters that are not allowed here"),
    N_("Enter a whole number"),
    N_("Enter a number"),
    N_("This number is too small"),
    N_("This number is too large"),
    N_("Choose one of the offered values"),
    N_("Enter a date and time"),
    N_("Choose yes or no"),
    N_("This value is not valid"),
    N_("Syntax error in rule {n} at column {column}"),
    N_("Server unreachable"),
    N_("Use Latin letters, digits, dots, dashes and underscores"),
    N_("Use lower-case Latin letters, digits, dashes and underscores"),
    N_("Use letters, digits, dashes, dots and colons"),
    N_("Use a two-letter language code, such as en or ru"),
    N_("Use digits, and + at the start"),
    # issue 16: help desk and sales pages (tickets.js, ticket.js, deals.js, kb.js, canned.js)
    N_("All open"),
    N_("Article published"),
    N_("Assignee"),
    N_("Breached {time} ago"),
    N_("Canned answer"),
    N_("Canned answer saved"),
    N_("Category"),
    N_("Changed: {fields}"),
    N_("Choose the contacts to move"),
    N_("Close by"),
    N_("Contacts split off into ticket {new}"),
    N_("Deal moved to {stage}"),
    N_("Default pipeline"),
    N_("Delete view {name}"),
    N_("Draft"),
    N_("Draft saved"),
    N_("Draft, not published"),
    N_("Edit the draft"),
    N_("Enter ticket numbers, such as 12, 15"),
    N_("Fill in by hand: {names}"),
    N_("First response"),
    N_("Follows up"),
    N_("Internal note"),
    N_("Internal note added"),
    N_("Macro applied"),
    N_("Macro saved"),
    N_("Me"),
    N_("Merge tickets {ids} into ticket {target}?"),
    N_("Merged into"),
    N_("Merged into ticket {id}"),
    N_("Merged into ticket {into}"),
    N_("My open tickets"),
    N_("My team's open tickets"),
    N_("Next deadline"),
    N_("Next response"),
    N_("No SLA clock is running."),
    N_("No SLA policy applies to this ticket."),
    N_("No canned answer matches."),
    N_("No canned answers yet."),
    N_("No contacts."),
    N_("No macros yet."),
    N_("Nobody (unassign)"),
    N_("Nobody watches this ticket."),
    N_("Nothing found."),
    N_("Nothing yet."),
    N_("Open the ticket page"),
    N_("Overdue"),
    N_("Owner"),
    N_("Pending on the customer"),
    N_("Policy"),
    N_("Publish"),
    N_("Queue"),
    N_("Reason"),
    N_("Remove {name}"),
    N_("Reopened"),
    N_("Reply"),
    N_("Reply saved; it waits for the outbox to send it"),
    N_("Reply sent"),
    N_("Reply written"),
    N_("Resolution"),
    N_("SLA breached: {metric}"),
    N_("SLA warning: {metric}"),
    N_("Save draft"),
    N_("Select ticket {id}"),
    N_("Select tickets first"),
    N_("Select two or more tickets of one customer"),
    N_("Solved"),
    N_("Status"),
    N_("Stop watching"),
    N_("Text"),
    N_("The customer replied"),
    N_("The customer was deleted."),
    N_("Ticket split"),
    N_("Tickets merged"),
    N_("Tickets {ids} merged into this one"),
    N_("Title"),
    N_("Unassigned"),
    N_("Updated"),
    N_("Version {n}, published {when}"),
    N_("View deleted"),
    N_("View saved"),
    N_("Watch"),
    N_("Watcher added"),
    N_("Watcher removed"),
    N_("Why was the deal lost?"),
    N_("Why was the deal won?"),
    N_("personal"),
    N_("shared"),
    N_("waiting to be sent"),
    N_("{n} deals"),
    N_("{n} selected"),
    N_("{n} tickets"),
    N_("{n} tickets changed"),
    N_("{time} left"),
)
# The email panel's strings (email_panel.js).
JS_MESSAGES += (
    N_("Answers our message (In-Reply-To)"),
    N_("Names a message of this thread (References)"),
    N_("The thread's number is in the subject"),
    N_("Sent to this thread's reply address"),
    N_("Started this thread"),
    N_("Split from another thread by an agent"),
    N_("Merged from another thread by an agent"),
    N_("Queued"),
    N_("Sending"),
    N_("Sent"),
    N_("Delivered"),
    N_("Failed"),
    N_("Quoted text"),
    N_("Why here: {reason}"),
    N_("Show remote images"),
    N_("Images allowed"),
    N_("Reply"),
    N_("Reply all"),
    N_("Forward"),
    N_("The customer's address"),
    N_("Insert a canned answer…"),
    N_("Send"),
    N_("Send and wrap up"),
    N_("Reply by email"),
    N_("Answer"),
    N_("To"),
    N_("Cc"),
    N_("Message"),
    N_("Canned answer"),
    N_("Attach files"),
    N_("Remove {name}"),
    N_("The file could not be attached"),
    N_("Sent; the contact is wrapped up"),
    N_("Reply queued for sending"),
)

# Names of the codes the API sends (channels, states, roles, strategies, weekdays): "code:<value>" in JS.
CODE_LABELS: dict[str, str] = {
    "voice": N_("Voice"),
    "email": N_("Email"),
    "chat": N_("Chat"),
    "sms": N_("SMS"),
    "fax": N_("Fax"),
    "webform": N_("Web form"),
    "messenger": N_("Messenger"),
    "ticket": N_("Ticket"),  # ticket work routed by the ACD (the agent's ticket capacity)
    "phone": N_("Phone"),
    "offline": N_("Offline"),
    "available": N_("Available"),
    "on_contact": N_("On contact"),
    "wrap_up": N_("Wrap-up"),
    "not_ready": N_("Not ready"),
    "new": N_("New"),
    "queued": N_("Queued"),
    "offered": N_("Offered"),
    "connected": N_("Connected"),
    "done": N_("Done"),
    "abandoned": N_("Abandoned"),
    "failed": N_("Failed"),
    "overflowed": N_("Overflowed"),
    "transferred": N_("Transferred"),
    "agent": N_("Agent"),
    "supervisor": N_("Supervisor"),
    "admin": N_("Administrator"),
    "longest_idle": N_("Longest idle"),
    "round_robin": N_("Round robin"),
    "fewest_contacts": N_("Fewest contacts"),
    "least_occupied": N_("Least occupied"),
    "best_skill": N_("Best skill"),
    "random_weighted": N_("Random (weighted)"),
    "ring_all": N_("Ring all"),
    "mon": N_("Monday"),
    "tue": N_("Tuesday"),
    "wed": N_("Wednesday"),
    "thu": N_("Thursday"),
    "fri": N_("Friday"),
    "sat": N_("Saturday"),
    "sun": N_("Sunday"),
    # tickets: status and priority; deals: stage. "Open" alone is the verb (a button); the status has
    # its own message, shown as "Open" by the English catalog.
    "open": N_("Open (ticket status)"),
    "pending": N_("Pending"),
    "solved": N_("Solved"),
    "closed": N_("Closed"),
    "low": N_("Low"),
    "normal": N_("Normal"),
    "high": N_("High"),
    "urgent": N_("Urgent"),
    "lead": N_("Lead"),
    "qualified": N_("Qualified"),
    "proposal": N_("Proposal"),
    "negotiation": N_("Negotiation"),
    "won": N_("Won"),
    "lost": N_("Lost"),
    # causes of call legs (call records)
    "bye_caller": N_("caller hung up"),
    "bye_agent": N_("agent hung up"),
    "bye_external": N_("the external party hung up"),
    "hangup_api": N_("hung up from the desktop"),
    "cancelled": N_("cancelled"),
    "caller_left": N_("caller left"),
    "no_answer": N_("no answer"),
    "withdrawn": N_("offer withdrawn"),
    "busy": N_("busy"),
    "unavailable": N_("unavailable"),
    "declined": N_("declined"),
    "refused": N_("refused"),
    "shutdown": N_("server stopped"),
    # directions of contacts and SLA metrics (the ticket page)
    "inbound": N_("inbound"),
    "outbound": N_("outbound"),
    "first_response": N_("first response"),
    "next_response": N_("next response"),
    "resolution": N_("resolution"),
}

# (path, label, permission, page id) of the navigation, shown only to those who may open the page.
NAVIGATION: tuple[tuple[str, str, str, str], ...] = (
    ("/desk", N_("Desk"), "interactions.write", "desk"),
    ("/tickets", N_("Tickets"), "tickets.read", "tickets"),
    ("/deals", N_("Deals"), "deals.read", "deals"),
    ("/kb", N_("Knowledge base"), "tickets.read", "kb"),
    ("/wallboard", N_("Wallboard"), "agents.supervise", "wallboard"),
    ("/reports", N_("Reports"), "stats.read", "reports"),
    ("/planning", N_("Planning"), "stats.read", "planning"),
    ("/canned-answers", N_("Canned answers"), "agents.supervise", "canned"),
    ("/admin", N_("Admin"), "routing.write", "admin"),
)

PAGES: dict[str, tuple[str, str, str]] = {
    # page id -> (template, permission, title)
    "desk": ("desk.html", "interactions.write", N_("Agent desktop")),
    "wallboard": ("wallboard.html", "agents.supervise", N_("Wallboard")),
    "reports": ("reports.html", "stats.read", N_("Reports")),
    "admin": ("admin.html", "routing.write", N_("Administration")),
}


async def page_session(request: Request) -> tuple[Actor, str] | None:
    """The signed-in browser user and the session's CSRF token, or None (go to the sign-in page)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        actor, csrf = await session_from_cookie(container(request), cookie, ip=client_ip(request))
    except DomainError:
        return None
    # As for API calls: an explicit choice (cookie, Accept-Language) wins over the profile's language.
    if "fo_lang" not in request.cookies:
        current_language.set(actor.language)
    return actor, csrf


def allowed(actor: Actor, permission: str) -> bool:
    try:
        actor.require(permission)
    except DomainError:
        return False
    return True


def home_page(actor: Actor) -> str:
    return HOME_PAGES.get(actor.role, "/desk")


def page_context(request: Request, actor: Actor, csrf: str, page: str) -> dict[str, Any]:
    language = current_language.get()
    return {
        "actor": actor,
        "csrf_token": csrf,
        "page": page,
        "lang": language,
        "version": __version__,
        "nav": [(path, label, pid) for path, label, perm, pid in NAVIGATION if allowed(actor, perm)],
        "messages": {m: gettext(m, language) for m in JS_MESSAGES}
        | {f"code:{code}": gettext(text, language) for code, text in CODE_LABELS.items()},
        "role_label": {
            Role.ADMIN: gettext("Administrator"),
            Role.SUPERVISOR: gettext("Supervisor"),
            Role.AGENT: gettext("Agent"),
        }[actor.role],
    }


async def _render(request: Request, page: str) -> Response:
    session = await page_session(request)
    if session is None:
        return RedirectResponse("/login", status_code=303)
    actor, csrf = session
    template, permission, title = PAGES[page]
    if not allowed(actor, permission):
        return RedirectResponse(home_page(actor), status_code=303)
    context = page_context(request, actor, csrf, page) | {"title": gettext(title)}
    return templates.TemplateResponse(request, template, context)


@router.get("/desk", response_class=HTMLResponse)
async def desk(request: Request) -> Response:
    return await _render(request, "desk")


@router.get("/wallboard", response_class=HTMLResponse)
async def wallboard(request: Request) -> Response:
    return await _render(request, "wallboard")


@router.get("/reports", response_class=HTMLResponse)
async def reports(request: Request) -> Response:
    return await _render(request, "reports")


@router.get("/admin", response_class=HTMLResponse)
async def admin(request: Request) -> Response:
    return await _render(request, "admin")
