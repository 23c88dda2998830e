// The agent desktop: presence, offers (countdown, sound, Alt+A / Alt+R), contact tabs with channel
// panels and the customer card, wrap-up, customer search and "my contacts today".
import {
  api, attempt, busy, clear, clock, connectStream, customerName, dispositionName, el, errorText, fmt, label, localMidnightIso, me,
  newestOnly, onTick, setDispositions, showFieldError, t, toast,
} from "./common.js";
import { renderCustomer, renderUnknown } from "./customer.js";
import { loadDeskWork, onDeskWorkMessage } from "./desk_work.js";
import { panelFor } from "./panels.js";
import "./conversation_panel.js"; // registers the conversation panel: email, fax, web form, chat, SMS, messengers

const $ = (id) => document.getElementById(id);
const desk = { api, t, el, fmt, label };
const agent = { state: "offline", reason: null, since: null, wrapUntil: null, isAgent: true };
const offers = new Map(); // contact id -> {node, expiresAt}
const tabs = new Map(); // key -> {key, kind, contactId?, customerId?, button, panel, finished, state}
// Contact id -> what the external system (screen-pop lookup, docs/integrations.md) said about its
// customer: pushed as "customer_lookup" when it arrives, which may be before or after the tab opens.
const lookups = new Map();
let activeKey = null;
let queues = new Map(); // queue id -> AgentQueue
let dispositions = [];
let reasons = [];
let stateUnknown = false; // the server is unreachable: presence and timers are not known

// ------------------------------------------------------------------ sound (no audio files)
let audio = null;
function unlockAudio() {
  if (!audio && window.AudioContext) audio = new AudioContext();
  if (audio && audio.state === "suspended") audio.resume().catch(() => {});
}
document.addEventListener("pointerdown", unlockAudio);
document.addEventListener("keydown", unlockAudio);
function beep() {
  try {
    unlockAudio();
    if (!audio) return;
    for (const [offset, freq] of [[0, 880], [0.22, 660]]) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, audio.currentTime + offset);
      gain.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + offset + 0.18);
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + offset);
      osc.stop(audio.currentTime + offset + 0.2);
    }
  } catch (error) { console.warn("no sound", error); }
}

// ------------------------------------------------------------------ presence
function presenceValue() {
  if (agent.state === "offline") return "offline";
  if (agent.state === "not_ready") return `not_ready:${agent.reason || ""}`;
  // On a contact or in wrap-up the select says so (options the agent cannot choose, app.css).
  if (agent.state === "on_contact" || agent.state === "wrap_up") return agent.state;
  return "available";
}

function renderPresence() {
  const select = $("presence");
  const pill = $("state-pill");
  // Server unreachable: the state the page last heard of may no longer be true; say so.
  select.disabled = stateUnknown || !agent.isAgent;
  if (stateUnknown) {
    pill.textContent = t("Unknown: server unreachable");
    pill.className = "badge state-pill status-warn";
    pill.dataset.state = "unknown";
    pill.dataset.reason = "";
    tickPresence();
    return;
  }
  const value = presenceValue();
  if (![...select.options].some((o) => o.value === value)) {
    select.append(el("option", { value }, `${t("Not ready")}: ${agent.reason || "—"}`));
  }
  select.value = value;
  pill.textContent = label(agent.state) + (agent.state === "not_ready" && agent.reason ? ` — ${reasonName(agent.reason)}` : "");
  pill.className = `badge state-pill ${{ available: "status-ok", on_contact: "status-ok", wrap_up: "status-warn", not_ready: "status-warn", offline: "status-bad" }[agent.state] || ""}`;
  pill.dataset.state = agent.state;
  pill.dataset.reason = agent.reason || "";
  tickPresence();
}

function reasonName(code) {
  const found = reasons.find((r) => r.code === code);
  return found ? found.name : code;
}

function tickPresence() {
  $("state-time").textContent = agent.since && !stateUnknown ? fmt.duration(clock.now() - agent.since) : "—";
  const wrap = $("wrapup-timer");
  if (stateUnknown) {
    wrap.classList.add("hidden");
  } else if (agent.state === "wrap_up" && agent.wrapUntil) {
    wrap.classList.remove("hidden");
    wrap.textContent = t("Wrap-up: {time} left", { time: fmt.duration(agent.wrapUntil - clock.now()) });
  } else {
    wrap.classList.add("hidden");
  }
  for (const [, offer] of offers) {
    if (offer.expiresAt) offer.countdown.textContent = stateUnknown ? "—" : fmt.duration(Math.max(0, offer.expiresAt - clock.now()));
  }
}

async function changePresence(event) {
  const [state, reason] = event.target.value.split(":");
  if (state === "available") askNotificationPermission();
  const body = { state, reason: state === "not_ready" && reason ? reason : null };
  // Signing in (from offline) takes the queues ticked in "Sign in to queues".
  const signIn = agent.state === "offline" && state !== "offline";
  if (signIn && queues.size && chosenQueues().length === 0) {
    toast(t("Choose at least one queue"), "error");
    renderPresence();
    return;
  }
  const ok = await attempt(() => (signIn
    ? api("POST", "/agent/login", { ...body, queues: queues.size ? chosenQueues() : null })
    : api("POST", "/agent/state", body)));
  if (ok === undefined) renderPresence();
}

// ------------------------------------------------------------------ queues to sign in to
function chosenQueues() {
  return [...document.querySelectorAll("#my-queues input[name=queue]:checked")].map((box) => Number(box.value));
}

function renderQueueChoice() {
  $("queue-choice").hidden = queues.size === 0;
  clear($("my-queues"), [...queues.values()].map((q) => el("label", { class: "inline" },
    el("input", { type: "checkbox", name: "queue", value: String(q.queue_id), checked: q.signed_in !== false, onchange: changeQueues }),
    q.name)));
}

async function changeQueues(event) {
  const picked = chosenQueues();
  if (picked.length === 0) {
    event.target.checked = true;
    toast(t("Choose at least one queue"), "error");
    return;
  }
  // Offline, the choice applies at sign-in; signed in, it applies at once.
  if (agent.state === "offline") return;
  const ok = await attempt(() => api("PUT", "/agent/queues", { queues: picked }), t("Queues changed"));
  if (ok === undefined) event.target.checked = !event.target.checked;
}

// ------------------------------------------------------------------ offers
// An offer keeps its size and layout from the moment it appears: the screen-pop (who is it) fills
// lines that are already there, one line each (app.css), instead of inserting new ones. Otherwise the
// Accept button jumps down when the customer's name arrives, and a click pressed before and released
// after the jump lands beside the button — the browser sends it to the offer box, the contact is
// not accepted, and nothing tells the agent why.
async function showOffer(data) {
  const id = data.contact_id;
  if (offers.has(id)) return;
  const countdown = el("span", { class: "countdown", "aria-label": t("Time left to answer") }, data.expires_at ? "" : "…");
  const name = el("div", { class: "offer-name" }, t("Loading…"));
  const subject = el("div", { class: "offer-subject small" }, "\u00a0");
  const buttons = [
    el("button", { type: "button", class: "primary offer-accept", onclick: () => accept(id) }, t("Accept"), " ", el("kbd", {}, "Alt+A")),
    el("button", { type: "button", class: "offer-reject", onclick: () => reject(id) }, t("Reject"), " ", el("kbd", {}, "Alt+R")),
  ];
  const node = el("div", { class: "offer", role: "alertdialog", "aria-labelledby": `offer-title-${id}`, "data-contact-id": String(id) },
    el("div", { class: "field-row" },
      el("strong", { id: `offer-title-${id}` },
        data.is_callback ? t("Callback to make") : t("Incoming contact"), ` · ${label(data.channel)}`,
        queues.get(data.queue_id) ? ` · ${queues.get(data.queue_id).name}` : ""),
      el("span", { class: "spacer" }), countdown),
    el("div", { class: "offer-customer" }, name, subject),
    el("div", { class: "actions" }, buttons));
  offers.set(id, { node, buttons, busy: false, expiresAt: data.expires_at || null, countdown });
  $("offers").append(node);
  tickPresence();
  beep();
  // Screen-pop: who is it, before the agent accepts.
  try {
    const contact = await api("GET", `/interactions/${id}`);
    const customer = contact.customer_id ? await api("GET", `/customers/${contact.customer_id}`) : null;
    clear(name, customer ? customerName(customer) : t("Unknown customer"),
      customer && customer.company ? el("span", { class: "muted" }, ` · ${customer.company.name}`) : null,
      customer && customer.vip ? el("span", { class: "badge status-warn" }, " VIP") : null);
    clear(subject, contact.subject || t("(no subject)"));
    // The lines cut what does not fit; the whole text is a tooltip away.
    name.title = name.textContent;
    subject.title = subject.textContent;
  } catch (error) {
    clear(name, t("Unknown customer"));
  }
  if (offers.has(id)) notifyOffer(id, [name.textContent, subject.textContent.trim()].filter(Boolean).join(" · "));
}

// ------------------------------------------------------------------ offers noticed from another tab
// The beep alone is missed when the desk is a background tab: the title flashes and a desktop
// notification appears. Permission is asked once, when the agent first goes available (a click of
// theirs, as browsers require), and never again from this browser.
const NOTIFY_ASKED = "fo-notifications-asked";
function askNotificationPermission() {
  if (!("Notification" in window) || Notification.permission !== "default") return;
  if (localStorage.getItem(NOTIFY_ASKED)) return;
  localStorage.setItem(NOTIFY_ASKED, "1");
  Promise.resolve(Notification.requestPermission()).catch(() => {});
}

const pageTitle = document.title;
let flashTimer = null;
function flashTitle() {
  if (flashTimer || !document.hidden) return;
  let on = false;
  const flash = () => {
    on = !on;
    document.title = on ? `★ ${t("Incoming contact")} — ${pageTitle}` : pageTitle;
  };
  flash();
  flashTimer = setInterval(flash, 1000);
}
function stopFlash() {
  if (flashTimer) clearInterval(flashTimer);
  flashTimer = null;
  document.title = pageTitle;
}
document.addEventListener("visibilitychange", () => { if (!document.hidden) stopFlash(); });

function notifyOffer(id, text) {
  if (!document.hidden) return;
  flashTitle();
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  try {
    const note = new Notification(t("Incoming contact"), { body: text, tag: `offer-${id}`, requireInteraction: true });
    note.onclick = () => { window.focus(); note.close(); };
    const offer = offers.get(id);
    if (offer) offer.notification = note;
  } catch (error) { console.warn("no notification", error); }
}

function removeOffer(id, why) {
  const offer = offers.get(id);
  if (!offer) return;
  offer.node.remove();
  if (offer.notification) offer.notification.close();
  offers.delete(id);
  if (offers.size === 0) stopFlash();
  if (why) toast(why);
}

/** Answer an offer once: the buttons are off while the request runs (a double click or Alt+A
 * pressed twice would otherwise send a second answer, refused with a confusing error). */
async function answerOffer(id, verb) {
  const offer = offers.get(id);
  if (!offer || offer.busy) return false;
  offer.busy = true;
  for (const button of offer.buttons) button.disabled = true;
  const done = await attempt(() => api("POST", `/agent/offers/${id}/${verb}`));
  if (done === undefined) {
    offer.busy = false;
    for (const button of offer.buttons) button.disabled = false;
    return false;
  }
  removeOffer(id);
  return true;
}

async function accept(id) {
  if (!(await answerOffer(id, "accept"))) return;
  await openContact(id);
  focusContact(id);
}

/** Keyboard focus into the accepted contact: its reply box or first control, else the tab panel. */
function focusContact(id) {
  const tab = tabs.get(`c${id}`);
  if (!tab) return;
  const target = tab.panel.querySelector(
    ".channel-panel textarea:not([disabled]), .channel-panel input:not([disabled]), .wrapup-form select, .wrapup-form textarea");
  (target || tab.panel).focus();
}

async function reject(id) {
  await answerOffer(id, "reject");
}

document.addEventListener("keydown", (event) => {
  if (!event.altKey || offers.size === 0) return;
  const first = offers.keys().next().value;
  if (event.key.toLowerCase() === "a") { event.preventDefault(); accept(first); }
  if (event.key.toLowerCase() === "r") { event.preventDefault(); reject(first); }
});

// ------------------------------------------------------------------ tabs
function selectTab(key) {
  activeKey = key;
  for (const [k, tab] of tabs) {
    const on = k === key;
    tab.button.setAttribute("aria-selected", on ? "true" : "false");
    tab.button.tabIndex = on ? 0 : -1;
    tab.panel.hidden = !on;
  }
  $("no-contacts").hidden = tabs.size > 0;
}

function addTab(key, title, kind) {
  const button = el("button", { type: "button", role: "tab", id: `tab-${key}`, "aria-controls": `panel-${key}`, "data-key": key }, title);
  const panel = el("div", { role: "tabpanel", id: `panel-${key}`, "aria-labelledby": `tab-${key}`, class: "tab-panel panel", tabindex: "0" });
  button.addEventListener("click", () => selectTab(key));
  button.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const keys = [...tabs.keys()];
    const next = keys[(keys.indexOf(key) + (event.key === "ArrowRight" ? 1 : keys.length - 1)) % keys.length];
    selectTab(next);
    tabs.get(next).button.focus();
  });
  $("tabs").append(button);
  $("tabpanels").append(panel);
  const tab = { key, kind, button, panel, finished: false };
  tabs.set(key, tab);
  selectTab(key);
  return tab;
}

function closeTab(key) {
  const tab = tabs.get(key);
  if (!tab) return;
  if (tab.unmount) tab.unmount();
  tab.button.remove();
  tab.panel.remove();
  tabs.delete(key);
  const next = [...tabs.keys()].pop();
  if (next) selectTab(next); else selectTab(null);
}

/** Open (or show) the contact's tab; resolves when its panels and wrap-up form are in place. */
function openContact(id) {
  const key = `c${id}`;
  if (tabs.has(key)) { selectTab(key); return tabs.get(key).ready; }
  const tab = addTab(key, t("Contact #{id}", { id }), "contact");
  tab.contactId = id;
  tab.ready = loadContact(tab, id);
  return tab.ready;
}

async function loadContact(tab, id) {
  let contact;
  try {
    contact = await api("GET", `/interactions/${id}`);
  } catch (error) {
    clear(tab.panel, el("p", { class: "error-text" }, errorText(error)));
    return;
  }
  tab.contact = contact;
  const channelRoot = el("div", { class: "channel-panel", "data-channel": contact.channel });
  const cardRoot = el("div");
  tab.externalRoot = el("section", { class: "external-lookup", "aria-label": t("External"), hidden: true });
  // Knowledge-base articles for the contact's subject (issue 16): last in the card's column, shown
  // once found, so nothing the agent may click moves when they arrive.
  const kbRoot = el("section", { class: "kb-suggestions", "aria-label": t("Suggested articles"), hidden: true });
  const customerRoot = el("section", { class: "customer", "aria-label": t("Customer") }, cardRoot, tab.externalRoot, kbRoot);
  tab.wrapRoot = el("section", { class: "wrapup", "aria-label": t("Wrap-up") });
  // Three areas (app.css): on a wide screen the card is a column beside the conversation and the
  // wrap-up form; on a narrow one it comes between them, so the agent sees who it is before wrapping up.
  clear(tab.panel, el("div", { class: "contact-view" }, channelRoot, customerRoot, tab.wrapRoot));
  // The card (its own column) loads alongside the channel panel; neither waits for the other.
  const customerShown = showCustomer(tab, cardRoot, contact);
  showExternal(contact.id);
  showSuggestions(kbRoot, contact);
  const panel = panelFor(contact.channel);
  // The wrap-up form's ticket choice needs the customer's open tickets: load them alongside the
  // channel panel, so that the form appears whole and nothing in it moves once the agent can click.
  const openTickets = loadOpenTickets(contact);
  const state = await Promise.resolve(panel.mount(contact, channelRoot, desk)).catch((error) => {
    channelRoot.append(el("p", { class: "error-text" }, errorText(error)));
  });
  tab.panelImpl = panel;
  tab.unmount = () => { if (panel.unmount) panel.unmount(contact, channelRoot, state); };
  tab.panelState = state;
  renderWrapUp(tab, await openTickets);
  await customerShown;
}

async function showCustomer(tab, root, contact) {
  const setTitle = (customer) => {
    tab.button.textContent = `${label(contact.channel)} · ${customer ? customerName(customer) : t("Unknown customer")}`;
  };
  if (contact.customer_id) {
    // The card shows what loaded and an error in place of what did not (customer.js).
    const card = await renderCustomer(root, contact.customer_id).catch((error) => {
      clear(root, el("p", { class: "error-text" }, errorText(error)));
    });
    setTitle(card || null);
  } else {
    setTitle(null);
    renderUnknown(root, contact, async (customerId) => {
      contact.customer_id = customerId;
      const [open] = await Promise.all([loadOpenTickets(contact), showCustomer(tab, root, contact)]);
      if (tab.ticketRoot) renderTicketChoice(tab, open);
    });
  }
}

/** The "External" section of a contact's card: the screen-pop lookup's answer. Asked of the server
 * when the pushed answer was missed (the desk opened after the offer); hidden when no endpoint applies. */
/** Published articles matching the contact's subject (GET /kb/suggestions), each opened in a new tab;
 * nothing shown when none matches or the agent may not read the knowledge base. */
async function showSuggestions(root, contact) {
  if (!contact.subject) return;
  const hits = await api("GET", `/kb/suggestions?interaction_id=${contact.id}`).catch(() => null);
  if (!hits || !hits.length) return;
  clear(root, el("h3", {}, t("Suggested articles")),
    el("ul", { class: "plain small" }, hits.slice(0, 5).map((h) => el("li", { "data-article-id": String(h.id) },
      el("a", { href: `/kb?article=${h.id}`, target: "_blank", rel: "noopener" }, h.title),
      el("div", { class: "muted" }, h.snippet)))));
  root.hidden = false;
}

async function showExternal(contactId) {
  if (!lookups.has(contactId)) {
    const answer = await api("GET", `/interactions/${contactId}/external`).catch(() => null);
    if (answer && !lookups.has(contactId)) lookups.set(contactId, { contact_id: contactId, ...answer });
  }
  renderExternal(contactId);
}

function renderExternal(contactId) {
  const tab = tabs.get(`c${contactId}`);
  const data = lookups.get(contactId);
  if (!tab || !tab.externalRoot) return;
  const root = tab.externalRoot;
  if (!data || data.status === "none") { root.hidden = true; return; }
  root.hidden = false;
  const fields = Object.entries(data.fields || {});
  let body;
  if (data.status === "found") {
    body = el("dl", { class: "card" }, fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v === null ? "—" : String(v))]));
  } else if (data.status === "not_found") {
    body = el("p", { class: "muted small" }, t("Not found in the external system"));
  } else {
    body = el("p", { class: "muted small" }, t("The external system did not answer: {error}", { error: data.error || "" }));
  }
  clear(root, el("h3", {}, t("External")), body);
}

function renderWrapUp(tab, openTickets) {
  const contact = tab.contact;
  const queue = queues.get(contact.queue_id);
  const required = queue ? queue.disposition_required : false;
  const id = `wrap-${contact.id}`;
  const form = el("form", { "aria-label": t("Wrap-up"), class: "wrapup-form" },
    el("h3", {}, t("Wrap-up")),
    el("div", { class: "field-row" },
      el("div", {},
        el("label", { for: `${id}-disp` }, t("Disposition"), required ? ` (${t("required")})` : ""),
        el("select", { id: `${id}-disp`, name: "disposition", required },
          el("option", { value: "" }, required ? t("Choose…") : t("(none)")),
          dispositions.filter((d) => d.active).map((d) => el("option", { value: d.code }, d.name)))),
      el("div", {},
        el("label", { for: `${id}-cb` }, t("Follow-up callback")),
        el("input", { id: `${id}-cb`, name: "callback_at", type: "datetime-local" }))),
    el("label", { for: `${id}-notes` }, t("Notes (added to the customer's notes)")),
    el("textarea", { id: `${id}-notes`, name: "notes", maxlength: "20000" }),
    tab.ticketRoot = el("fieldset", { class: "ticket-choice" }),
    // Complete comes first: "End conversation" disappears when the conversation ends (the customer
    // may hang up at any moment), and that must not move Complete from under the agent's pointer.
    el("div", { class: "field-row" },
      el("button", { type: "submit", class: "primary complete-contact" }, t("Complete"), " ", el("kbd", {}, "Ctrl+Enter")),
      el("button", { type: "button", class: "end-contact", hidden: tab.finished, onclick: busy(() => endContact(tab)) }, t("End conversation"))));
  // Ctrl+Enter completes from any field of the form (the notes box included).
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", busy(async (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = {
      disposition: f.disposition.value || null,
      notes: f.notes.value,
      callback_at: f.callback_at.value ? new Date(f.callback_at.value).toISOString() : null,
    };
    if (required && !body.disposition) { showFieldError(f.disposition, t("Choose a disposition")); f.disposition.focus(); return; }
    const mode = f.ticket_mode ? f.ticket_mode.value : "none";
    if (mode === "create" && !f.ticket_subject.value.trim()) {
      showFieldError(f.ticket_subject, t("Give the ticket a subject"));
      f.ticket_subject.focus();
      return;
    }
    const done = await attempt(() => api("POST", `/agent/contacts/${contact.id}/complete`, body), t("Contact completed"), form);
    if (!done) return;
    // The contact is complete; the ticket is a second step (an error there leaves the contact done).
    if (mode === "create") {
      await attempt(() => api("POST", "/tickets", {
        customer_id: contact.customer_id, subject: f.ticket_subject.value.trim(),
        source_interaction_id: contact.id, assignee_id: me.user_id,
      }), t("Ticket created"));
    } else if (mode === "link") {
      await attempt(() => api("POST", `/tickets/${f.ticket_id.value}/interactions`, { interaction_id: contact.id }),
        t("Contact linked to the ticket"));
    }
    closeTab(tab.key);
    loadToday();
  }));
  renderTicketChoice(tab, openTickets);
  clear(tab.wrapRoot, form);
}

/** The customer's open tickets for the wrap-up form: a list, or an Error when they could not be loaded. */
async function loadOpenTickets(contact) {
  if (!contact.customer_id) return [];
  try {
    return (await api("GET", `/customers/${contact.customer_id}/tickets?open=true&limit=50`)).items;
  } catch (error) {
    return error;
  }
}

/** Wrap-up: no ticket, create one (subject prefilled from the contact) or link to an open ticket. */
function renderTicketChoice(tab, openTickets) {
  const contact = tab.contact;
  const root = tab.ticketRoot;
  const id = `wrap-${contact.id}-ticket`;
  if (!contact.customer_id) {
    clear(root, el("legend", {}, t("Ticket")),
      el("p", { class: "muted small" }, t("Create or link the customer to file a ticket.")));
    return;
  }
  const failed = openTickets instanceof Error ? openTickets : null;
  const open = failed ? [] : openTickets;
  const radio = (value, text, checked = false) => el("label", { class: "inline" },
    el("input", { type: "radio", name: "ticket_mode", value, checked, class: `ticket-mode-${value}` }), text);
  const create = el("div", { class: "ticket-create", hidden: true },
    el("label", { for: `${id}-subject` }, t("Ticket subject")),
    el("input", { id: `${id}-subject`, name: "ticket_subject", maxlength: "500", value: contact.subject || "" }));
  const link = open.length ? el("div", { class: "ticket-link", hidden: true },
    el("label", { for: `${id}-link` }, t("Open ticket")),
    el("select", { id: `${id}-link`, name: "ticket_id" },
      open.map((ticket) => el("option", { value: String(ticket.id) },
        `#${ticket.id} · ${ticket.subject} · ${label(ticket.status)}`)))) : null;
  clear(root, el("legend", {}, t("Ticket")),
    el("div", {}, radio("none", t("No ticket"), true), radio("create", t("Create a ticket")),
      open.length ? radio("link", t("Link to an open ticket")) : null),
    // Without the list the agent can still create a ticket; linking waits for the next contact.
    failed ? el("p", { class: "error-text small ticket-error" }, `${t("Open tickets")}: ${t("Not available.")} ${errorText(failed)}`) : null,
    create, link);
  root.onchange = (event) => {
    if (event.target.name !== "ticket_mode") return;
    create.hidden = event.target.value !== "create";
    if (link) link.hidden = event.target.value !== "link";
  };
}

async function endContact(tab) {
  if ((await attempt(() => api("POST", `/agent/contacts/${tab.contactId}/end`))) !== undefined) markFinished(tab.contactId);
}

function markFinished(contactId) {
  const tab = tabs.get(`c${contactId}`);
  if (!tab) return;
  tab.finished = true;
  const end = tab.panel.querySelector(".end-contact");
  if (end) end.hidden = true;
}

async function openCustomer(customerId) {
  const key = `p${customerId}`;
  if (tabs.has(key)) { selectTab(key); return; }
  const tab = addTab(key, t("Customer"), "customer");
  const root = el("div", {});
  clear(tab.panel, el("div", { class: "field-row" }, el("span", { class: "spacer" }),
    el("button", { type: "button", class: "link", onclick: () => closeTab(key) }, t("Close"))), root);
  const card = await renderCustomer(root, customerId).catch((error) => {
    clear(root, el("p", { class: "error-text" }, errorText(error)));
  });
  if (card) tab.button.textContent = `${t("Customer")} · ${customerName(card)}`;
}

// ------------------------------------------------------------------ side: search and today
async function search(event) {
  event.preventDefault();
  const q = $("customer-q").value.trim();
  const page = await attempt(() => api("GET", `/customers?limit=20&q=${encodeURIComponent(q)}`));
  if (!page) return;
  clear($("customer-results"), page.items.length ? page.items.map((c) => el("li", {},
    el("button", { type: "button", class: "link", onclick: () => openCustomer(c.id) }, customerName(c)),
    el("span", { class: "muted small" }, c.company ? c.company.name : (c.identities[0] ? fmt.phone(c.identities[0].value) : ""))))
    : el("li", { class: "muted" }, t("Nobody found.")));
}

// Accepting and finishing a contact each read the list again, close together: the newest read draws.
const loadToday = newestOnly(() => attempt(() => api("GET", `/agent/contacts?since=${encodeURIComponent(localMidnightIso())}`)), (items) => {
  if (!items) return;
  clear($("today-list"), items.length ? items.map((i) => el("li", { "data-interaction-id": String(i.id) },
    el("span", {}, el("span", { class: "muted small" }, `${fmt.time(i.created_at)} · ${label(i.channel)} · `),
      i.customer_id
        ? el("button", { type: "button", class: "link", onclick: () => openCustomer(i.customer_id) }, i.subject || t("(no subject)"))
        : i.subject || t("(no subject)")),
    el("span", { class: "small" }, i.disposition ? dispositionName(i.disposition) : label(i.state),
      !i.disposition && ["connected", "wrap_up"].includes(i.state)
        ? el("button", { type: "button", class: "link", onclick: () => openContact(i.id) }, t("Open")) : null)))
    : el("li", { class: "muted" }, t("No contacts yet today.")));
  $("today-count").textContent = fmt.number(items.length);
});

// ------------------------------------------------------------------ live stream
function applyAgent(status) {
  agent.state = status.state;
  agent.reason = status.reason;
  agent.since = status.since;
  renderPresence();
}

/** Hand stream messages about an open contact to its channel panel (chat messages, call events...). */
function forwardToPanel(type, data) {
  const tab = data && data.contact_id !== undefined ? tabs.get(`c${data.contact_id}`) : null;
  if (tab && tab.panelImpl && typeof tab.panelImpl.onEvent === "function") {
    tab.panelImpl.onEvent(tab.contact, type, data, tab.panelState);
  }
}

function onMessage(type, data) {
  forwardToPanel(type, data);
  onDeskWorkMessage(type, data);
  const mine = (d) => d.agent_id === me.user_id || (Array.isArray(d.agent_ids) && d.agent_ids.includes(me.user_id));
  switch (type) {
    case "hello": {
      loadDeskWork(); // (again after a reconnect: what arrived meanwhile is read, not replayed)
      if (!data.agent) {
        agent.isAgent = false;
        $("not-an-agent").hidden = false;
        $("presence").disabled = true;
        return;
      }
      clock.setServerNow(data.agent.since + data.agent.time_in_state_s);
      applyAgent(data.agent);
      for (const id of data.agent.contact_ids) openContact(id);
      for (const id of data.agent.offered_contact_ids) showOffer({ contact_id: id, channel: "", queue_id: null });
      for (const id of offers.keys()) if (!data.agent.offered_contact_ids.includes(id)) removeOffer(id);
      break;
    }
    case "agent_state_changed":
      if (data.agent_id === me.user_id) {
        applyAgent(data);
        if (data.state === "not_ready" && data.reason === "missed") toast(t("You missed several offers and are now not ready"), "error");
      }
      break;
    case "offer_contact":
      if (mine(data)) showOffer(data);
      break;
    case "withdraw_offer":
      if (mine(data)) removeOffer(data.contact_id, t("The offer was withdrawn"));
      break;
    case "offer_timed_out":
      if (mine(data)) removeOffer(data.contact_id, t("The offer timed out"));
      break;
    case "contact_connected":
      if (mine(data)) { removeOffer(data.contact_id); openContact(data.contact_id); loadToday(); }
      break;
    case "contact_finished":
      if (mine(data)) { markFinished(data.contact_id); loadToday(); }
      break;
    case "wrap_up_started":
      if (mine(data)) { agent.wrapUntil = data.until; tickPresence(); }
      break;
    case "customer_lookup":
      lookups.set(data.contact_id, data);
      renderExternal(data.contact_id);
      break;
    case "wrap_up_ended":
      if (mine(data)) { agent.wrapUntil = null; tickPresence(); }
      break;
    default:
      break;
  }
}

// ------------------------------------------------------------------ start
document.addEventListener("fo:connection", (event) => {
  stateUnknown = !event.detail.reachable;
  renderPresence();
});

async function start() {
  $("presence").addEventListener("change", changePresence);
  $("customer-search").addEventListener("submit", search);
  onTick(tickPresence);
  const [qs, ds, rs] = await Promise.all([
    api("GET", "/agent/queues").catch(() => []),
    api("GET", "/codes/dispositions").catch(() => []),
    api("GET", "/codes/not-ready-reasons").catch(() => []),
  ]);
  queues = new Map(qs.map((q) => [q.queue_id, q]));
  dispositions = ds;
  setDispositions(ds);
  reasons = rs.filter((r) => r.active);
  renderQueueChoice();
  clear($("presence"),
    el("option", { value: "available" }, label("available")),
    el("optgroup", { label: label("not_ready") },
      reasons.map((r) => el("option", { value: `not_ready:${r.code}` }, `${t("Not ready")}: ${r.name}`))),
    el("option", { value: "offline" }, label("offline")),
    el("option", { value: "on_contact", disabled: true, class: "state-only" }, label("on_contact")),
    el("option", { value: "wrap_up", disabled: true, class: "state-only" }, label("wrap_up")));
  renderPresence();
  selectTab(null);
  loadToday();
  connectStream(onMessage);
  // /desk#contact=<id>: open that contact (a supervisor reading an ongoing chat, docs/chat.md).
  const asked = /^#contact=(\d+)$/.exec(location.hash);
  if (asked) openContact(Number(asked[1]));
}

start();
