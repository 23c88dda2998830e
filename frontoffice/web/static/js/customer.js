// The customer card (screen-pop) with its cross-channel timeline, editing, notes, and — for a contact
// from an unknown sender — "create customer" prefilled with the sender's identity or "link to existing".
import { activitiesSection } from "./activities.js";
import { api, attempt, busy, clear, customerName, dispositionName, el, errorText, fmt, label, lang, me, t, toast } from "./common.js";

/**
 * Render the card of `customerId` into `root`. `onChange(customer)` runs after an edit.
 *
 * The card, the history, the open tickets and the open deals are four requests; each part shows what
 * its request returned or, when that failed, an error in its place, so one failing request never
 * leaves the agent without the rest. Returns the customer, or null when the card itself failed.
 */
export async function renderCustomer(root, customerId, { onChange } = {}) {
  clear(root, el("p", { class: "muted" }, t("Loading…")));
  const [cardResult, timeline, tickets, deals] = await Promise.allSettled([
    api("GET", `/customers/${customerId}`),
    api("GET", `/customers/${customerId}/timeline?limit=50`),
    api("GET", `/customers/${customerId}/tickets?open=true&limit=20`),
    api("GET", `/customers/${customerId}/deals?open=true&limit=20`),
  ]);
  const card = cardResult.status === "fulfilled" ? cardResult.value : null;
  const rerender = async () => { const fresh = await renderCustomer(root, customerId, { onChange }); if (onChange) onChange(fresh); };
  const editor = el("div", { class: "hidden" });
  const noteForm = el("form", { class: "hidden", "aria-label": t("Add note") },
    el("label", { for: `note-${customerId}` }, t("Note")),
    el("textarea", { id: `note-${customerId}`, name: "body", required: true, maxlength: "20000" }),
    el("button", { type: "submit", class: "primary" }, t("Save note")));
  noteForm.addEventListener("submit", busy(async (event) => {
    event.preventDefault();
    const body = noteForm.elements.body.value.trim();
    if (!body) return;
    if (await attempt(() => api("POST", `/customers/${customerId}/notes`, { body }), t("Note saved"), noteForm)) await rerender();
  }));
  const count = (result) => (result.status === "fulfilled" ? `(${fmt.number(result.value.items.length)})` : "");
  clear(root,
    el("div", { class: "customer-card", "data-customer-id": String(customerId) },
      card ? cardDetails(card) : unavailable(cardResult.reason),
      el("div", { class: "field-row" },
        card ? el("button", { type: "button", onclick: () => { editor.classList.toggle("hidden"); if (!editor.childElementCount) buildEditor(editor, card, rerender); } }, t("Edit")) : null,
        el("button", { type: "button", onclick: () => noteForm.classList.toggle("hidden") }, t("Add note")),
        card && me.role !== "agent" ? privacyButtons(root, card) : null),
      editor, noteForm,
      el("h3", {}, t("Open tickets"), " ", el("span", { class: "muted small" }, count(tickets))),
      section(tickets, (page) => el("ul", { class: "case-list open-tickets", "aria-label": t("Open tickets") },
        page.items.length ? page.items.map((ticket) => ticketRow(ticket, rerender)) : el("li", { class: "muted" }, t("No open tickets.")))),
      el("h3", {}, t("Open deals"), " ", el("span", { class: "muted small" }, count(deals))),
      section(deals, (page) => el("ul", { class: "case-list open-deals", "aria-label": t("Open deals") },
        page.items.length ? page.items.map((deal) => dealRow(deal, rerender)) : el("li", { class: "muted" }, t("No open deals.")))),
      // Tasks and reminders on this customer (call back, send an offer): folded, loaded when opened.
      card ? activitiesSection({ customer_id: customerId }, (id) => (id === me.user_id ? me.username : `#${id}`), [me.user_id]) : null,
      el("h3", {}, t("History")),
      section(timeline, (page) => el("ol", { class: "timeline", "aria-label": t("History, newest first") },
        page.items.length ? withoutWrapUpCopies(page.items).map(timelineItem) : el("li", { class: "muted" }, t("No history yet.")))),
    ));
  return card;
}

// A job's state is read this often while the personal data export runs (docs/privacy.md).
const JOB_POLL_MS = 1000;

/**
 * Supervisors' personal data tools (docs/privacy.md): export everything about the customer (a job;
 * its ZIP is offered for download when it is ready) and erase the customer (after a confirmation).
 */
function privacyButtons(root, card) {
  const status = el("span", { class: "muted small", role: "status" });
  const exportButton = el("button", { type: "button", onclick: busy(async () => {
    let job = await attempt(() => api("POST", `/customers/${card.id}/personal-data`));
    if (!job) return;
    status.textContent = t("Preparing the export…");
    while (job.state === "queued" || job.state === "running") {
      await new Promise((resolve) => window.setTimeout(resolve, JOB_POLL_MS));
      job = await api("GET", `/jobs/${job.id}`);
    }
    if (job.state === "succeeded") clear(status, el("a", { href: job.result_url, download: "" }, t("Download the personal data")));
    else status.textContent = (job.error && job.error.message) || t("The export failed");
  }) }, t("Export personal data"));
  const eraseButton = el("button", { type: "button", class: "danger", onclick: busy(async () => {
    if (!window.confirm(t("Erase this customer? Their card, notes, recordings and message content are deleted for good; the contacts stay in the statistics."))) return;
    if ((await attempt(() => api("POST", `/customers/${card.id}/erase`), t("Customer erased"))) !== undefined) {
      clear(root, el("p", { class: "muted" }, t("The customer was erased.")));
    }
  }) }, t("Erase customer"));
  return el("span", { class: "privacy-tools" }, exportButton, eraseButton, status);
}

/** The card's own fields: name, company, language, identities, tags, custom fields. */
function cardDetails(card) {
  const identities = card.identities.map((i) =>
    el("li", {}, el("span", { class: "muted" }, `${label(i.kind)}: `), i.kind === "phone" ? fmt.phone(i.value) : i.value));
  const custom = Object.entries(card.custom || {});
  return [
    el("h3", { class: "customer-name" }, customerName(card), " ",
      card.vip ? el("span", { class: "badge status-warn" }, "VIP") : null),
    el("dl", { class: "card" },
      el("dt", {}, t("Company")), el("dd", { class: "customer-company" }, card.company
        ? el("a", { href: `/companies/${card.company.id}`, target: "_blank", rel: "noopener" }, card.company.name) : "—"),
      el("dt", {}, t("Language")), el("dd", {}, languageName(card.language)),
      el("dt", {}, t("Identities")), el("dd", {}, identities.length ? el("ul", { class: "plain" }, identities) : "—"),
      el("dt", {}, t("Tags")), el("dd", {}, card.tags.length ? card.tags.map((tag) => el("span", { class: "tag" }, tag)) : "—"),
      custom.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]),
    ),
  ];
}

/** One part of the card: rendered from its request's result, or an error in its place. */
function section(result, render) {
  return result.status === "fulfilled" ? render(result.value) : unavailable(result.reason);
}

function unavailable(error) {
  return el("p", { class: "error-text card-error", role: "alert" }, `${t("Not available.")} ${errorText(error)}`);
}

/** "ru" -> "Russian" / "русский" in the page's language. */
function languageName(code) {
  if (!code) return "—";
  try {
    return new Intl.DisplayNames([lang], { type: "language" }).of(code) || code;
  } catch (error) {
    return code;
  }
}

const TICKET_STATUSES = ["open", "pending", "solved", "closed"];
const DEAL_STAGES = ["lead", "qualified", "proposal", "negotiation", "won", "lost"];

/** A select and a button to move a ticket or deal on (status / stage). */
function mover(name, options, current, onSet) {
  const select = el("select", { "aria-label": name, class: "case-move" },
    options.map((o) => el("option", { value: o, selected: o === current }, label(o))));
  return el("span", { class: "field-row" }, select,
    el("button", { type: "button", onclick: busy(() => onSet(select.value)) }, t("Set")));
}

function ticketRow(ticket, rerender) {
  return el("li", { "data-ticket-id": String(ticket.id) },
    el("span", {}, el("a", { href: `/tickets/${ticket.id}`, class: "ticket-link" }, el("strong", {}, `#${ticket.id} `), ticket.subject),
      el("div", { class: "muted small" }, `${label(ticket.status)} · ${t("Priority")}: ${label(ticket.priority)}`
        + (ticket.due_at ? ` · ${t("Due")}: ${fmt.dateTime(ticket.due_at)}` : ""))),
    mover(t("Status of ticket {id}", { id: ticket.id }), TICKET_STATUSES, ticket.status, async (status) => {
      if (await attempt(() => api("PATCH", `/tickets/${ticket.id}`, { status }), t("Ticket saved"))) await rerender();
    }));
}

function dealRow(deal, rerender) {
  return el("li", { "data-deal-id": String(deal.id) },
    el("span", {}, el("a", { href: `/deals?pipeline=${deal.pipeline_id ?? "default"}&deal=${deal.id}`, class: "deal-link" }, el("strong", {}, deal.title)),
      el("div", { class: "muted small" }, `${label(deal.stage)} · ${fmt.money(deal.amount, deal.currency)}`)),
    mover(t("Stage of deal {title}", { title: deal.title }), DEAL_STAGES, deal.stage, async (stage) => {
      if (await attempt(() => api("PATCH", `/deals/${deal.id}`, { stage }), t("Deal saved"))) await rerender();
    }));
}

/** Wrap-up notes are also saved as the customer's notes; they are shown with their contact, once. */
function withoutWrapUpCopies(items) {
  const wrapUps = new Set(items.filter((i) => i.kind === "interaction" && i.notes).map((i) => `${i.agent_id}|${i.notes}`));
  return items.filter((i) => !(i.kind === "note" && wrapUps.has(`${i.agent_id}|${i.summary}`)));
}

/** A history entry that opens: its summary line, and the details loaded when opened. */
function openable(cls, data, summary, load) {
  const body = el("div", { class: "timeline-detail" }, el("p", { class: "muted small" }, t("Loading…")));
  const details = el("details", { class: "timeline-open" }, el("summary", {}, summary), body);
  details.addEventListener("toggle", async () => {
    if (!details.open || details.dataset.loaded) return;
    details.dataset.loaded = "1";
    try {
      clear(body, await load());
    } catch (error) {
      clear(body, el("p", { class: "error-text small" }, `${t("Not available.")} ${errorText(error)}`));
    }
  });
  return el("li", { class: cls, dataset: data }, details);
}

async function contactDetails(id) {
  const messages = await api("GET", `/interactions/${id}/messages`);
  return messages.length
    ? messages.map((m) => el("div", { class: `message ${m.direction}` },
        el("div", { class: "muted small" }, `${m.sender || ""} · ${fmt.dateTime(m.created_at)}`), m.body))
    : el("p", { class: "muted small" }, t("No message text."));
}

async function ticketDetails(id) {
  const ticket = await api("GET", `/tickets/${id}`);
  return el("div", { class: "ticket-detail" },
    el("a", { href: `/tickets/${id}`, class: "ticket-link small" }, t("Open the ticket page")),
    el("div", { class: "small" }, `${label(ticket.status)} · ${t("Priority")}: ${label(ticket.priority)}`
      + (ticket.due_at ? ` · ${t("Due")}: ${fmt.dateTime(ticket.due_at)}` : "")),
    ticket.description ? el("p", { class: "message" }, ticket.description) : null);
}

function timelineItem(item) {
  const who = item.agent_name ? ` · ${item.agent_name}` : "";
  if (item.kind === "ticket") {
    return openable("timeline-ticket", { ticketId: String(item.id) }, [
      el("div", { class: "when" }, `${fmt.dateTime(item.at)} · ${t("Ticket")} #${item.id} · ${label(item.state)}`),
      item.subject], () => ticketDetails(item.id));
  }
  if (item.kind === "deal") {
    return el("li", { class: "timeline-deal", "data-deal-id": String(item.id) },
      el("div", { class: "when" }, `${fmt.dateTime(item.at)} · ${t("Deal")} · ${label(item.state)} · ${fmt.money(item.amount, item.currency)}`),
      item.subject);
  }
  if (item.kind === "note") {
    return el("li", { class: "timeline-note" },
      el("div", { class: "when" }, `${fmt.dateTime(item.at)} · ${t("Note")}`,
        item.agent_name ? el("span", { class: "note-author" }, ` · ${item.agent_name}`) : null), item.summary);
  }
  const node = openable("timeline-interaction", { interactionId: String(item.id) }, [
    el("div", { class: "when" }, `${fmt.dateTime(item.at)} · ${label(item.channel)} · ${label(item.state)}`
      + (item.disposition ? ` · ${t("Disposition")}: ${dispositionName(item.disposition)}` : "") + who),
    item.subject || item.summary || t("(no subject)")], () => contactDetails(item.id));
  if (item.notes) node.append(el("div", { class: "wrapup-notes small" }, el("strong", {}, `${t("Wrap-up notes")}: `), item.notes));
  if (item.channel === "voice") node.append(callDetails(item.id));
  return node;
}

/** A phone call's legs and recordings, loaded when the agent opens the details. */
export function callDetails(interactionId) {
  const body = el("div", { class: "call-details" }, el("p", { class: "muted small" }, t("Loading…")));
  const details = el("details", { class: "call-record" }, el("summary", {}, t("Call details and recording")), body);
  details.addEventListener("toggle", async () => {
    if (!details.open || details.dataset.loaded) return;
    details.dataset.loaded = "1";
    try {
      const record = await api("GET", `/interactions/${interactionId}/call-records`);
      clear(body,
        record.recordings.length
          ? record.recordings.map((name) => el("div", { class: "recording" },
              el("audio", { controls: true, preload: "none", src: `/api/v1/interactions/${interactionId}/recordings/${encodeURIComponent(name)}`,
                "aria-label": t("Call recording {name}", { name }) })))
          : el("p", { class: "muted small" }, t("No recording.")),
        el("ul", { class: "call-legs small" }, record.legs.map((leg) => el("li", {},
          `${leg.leg === "caller" ? t("Caller") : t("Agent phone")} · ${fmt.time(leg.setup_at)} · `
          + `${leg.status ?? "—"} ${label(leg.cause)}`
          + (leg.talk_s !== null && leg.talk_s !== undefined ? ` · ${fmt.duration(leg.talk_s)}` : "")))));
    } catch (error) {
      clear(body, el("p", { class: "muted small" }, t("Not available.")));
    }
  });
  return details;
}

function buildEditor(root, card, done) {
  const id = `edit-${card.id}`;
  const customText = Object.entries(card.custom || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  const form = el("form", { "aria-label": t("Edit customer") },
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: `${id}-first` }, t("First name")), el("input", { id: `${id}-first`, name: "first_name", value: card.first_name, maxlength: "200" })),
      el("div", {}, el("label", { for: `${id}-last` }, t("Last name")), el("input", { id: `${id}-last`, name: "last_name", value: card.last_name, maxlength: "200" }))),
    el("label", { for: `${id}-tags` }, t("Tags (comma-separated)")),
    el("input", { id: `${id}-tags`, name: "tags", value: card.tags.join(", ") }),
    el("label", { class: "inline" }, el("input", { type: "checkbox", name: "vip", checked: card.vip }), "VIP"),
    el("label", { for: `${id}-custom` }, t("Custom fields (name=value, one per line)")),
    el("textarea", { id: `${id}-custom`, name: "custom" }, customText),
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: `${id}-kind` }, t("Add identity")),
        el("select", { id: `${id}-kind`, name: "kind" },
          ["phone", "email", "chat", "messenger"].map((k) => el("option", { value: k }, label(k))))),
      el("div", {}, el("label", { for: `${id}-value` }, t("Value")), el("input", { id: `${id}-value`, name: "identity", maxlength: "320" }))),
    el("p", {}, el("button", { type: "submit", class: "primary" }, t("Save"))));
  form.addEventListener("submit", busy(async (event) => {
    event.preventDefault();
    const f = form.elements;
    const custom = {};
    for (const line of f.custom.value.split("\n")) {
      const [k, ...rest] = line.split("=");
      if (k.trim()) custom[k.trim()] = rest.join("=").trim();
    }
    // One request, so one transaction: a phone that belongs to someone else refuses the whole edit.
    const patch = {
      first_name: f.first_name.value.trim(), last_name: f.last_name.value.trim(), vip: f.vip.checked,
      tags: f.tags.value.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean), custom,
      add_identities: f.identity.value.trim() ? [{ kind: f.kind.value, value: f.identity.value.trim() }] : [],
    };
    const ok = await attempt(() => api("PATCH", `/customers/${card.id}`, patch), t("Customer saved"), form);
    if (ok) await done();
  }));
  root.append(form);
}

/** The sender is not a known customer: create one prefilled with the sender's address, or link. */
export function renderUnknown(root, contact, onLinked) {
  const from = contact.from_address || "";
  const kind = from.includes("@") ? "email" : /^[+\d][\d\s()-]{4,}$/.test(from) ? "phone" : null;
  const id = `unknown-${contact.id}`;
  const createForm = el("form", { "aria-label": t("Create customer") },
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: `${id}-first` }, t("First name")), el("input", { id: `${id}-first`, name: "first_name", maxlength: "200" })),
      el("div", {}, el("label", { for: `${id}-last` }, t("Last name")), el("input", { id: `${id}-last`, name: "last_name", maxlength: "200" }))),
    kind ? el("p", { class: "small" }, `${label(kind)}: ${from}`) : null,
    el("button", { type: "submit", class: "primary" }, t("Create customer")));
  createForm.addEventListener("submit", busy(async (event) => {
    event.preventDefault();
    const body = {
      first_name: createForm.elements.first_name.value.trim(),
      last_name: createForm.elements.last_name.value.trim(),
      identities: kind ? [{ kind, value: from }] : [],
      // Created and linked in one transaction: a failed link leaves no card behind to trip a retry.
      interaction_id: contact.id,
    };
    const created = await attempt(() => api("POST", "/customers", body), t("Customer created"), createForm);
    if (created) onLinked(created.id);
  }));
  const results = el("ul", { class: "result-list", "aria-label": t("Search results") });
  const searchForm = el("form", { role: "search", "aria-label": t("Link to existing customer") },
    el("label", { for: `${id}-q` }, t("Link to existing customer")),
    el("div", { class: "field-row" }, el("input", { id: `${id}-q`, name: "q", type: "search", placeholder: t("Name, phone, email, company") }),
      el("button", { type: "submit" }, t("Search"))),
    results);
  searchForm.addEventListener("submit", busy(async (event) => {
    event.preventDefault();
    const q = searchForm.elements.q.value.trim();
    const page = await attempt(() => api("GET", `/customers?limit=10&q=${encodeURIComponent(q)}`));
    if (!page) return;
    clear(results, page.items.length ? page.items.map((c) => el("li", {},
      el("span", {}, customerName(c), c.company ? el("span", { class: "muted" }, ` · ${c.company.name}`) : null),
      el("button", { type: "button", onclick: busy(async () => {
        if (await attempt(() => api("POST", `/interactions/${contact.id}/customer`, { customer_id: c.id }), t("Contact linked"))) onLinked(c.id);
      }) }, t("Link")))) : el("li", { class: "muted" }, t("Nobody found.")));
  }));
  clear(root, el("h3", {}, t("Unknown customer")), createForm, searchForm);
  toast(t("The sender is not a known customer"));
}
