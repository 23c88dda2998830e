// Supervisor wallboard: queue tiles and agent rows pushed over /api/v1/stream (no polling), waiting
// contacts per queue with move and priority actions, agent state changes and sign-out.
import { api, attempt, busy, clear, clock, connectStream, el, fmt, label, newestOnly, onTick, serverReachable, t } from "./common.js";

const $ = (id) => document.getElementById(id);
const queues = new Map(); // id -> QueueLive + {receivedAt, settings}
let agents = [];
let queueSettings = new Map();
let reasons = [];
let refreshTimer = null;
const openWaiting = new Set(); // queue ids whose waiting list is shown

// TV mode (/wallboard?tv=1[&per_page=N][&rotate=S]): tiles only, large, for a wall screen; when there
// are more queues than fit (per_page, default 6), they rotate a page at a time every S seconds (15).
const params = new URLSearchParams(window.location.search);
const tv = params.has("tv") && params.get("tv") !== "0";
const perPage = Math.max(1, Number(params.get("per_page")) || 6);
const rotateMs = Math.max(1, Number(params.get("rotate")) || 15) * 1000;
let tvPage = 0;
if (tv) document.body.classList.add("tv");

/** Show the current page of tiles (TV mode); every tile otherwise. */
function showTvPage() {
  const tiles = [...document.querySelectorAll("#tiles .tile")];
  const pages = Math.max(1, Math.ceil(tiles.length / perPage));
  if (tvPage >= pages) tvPage = 0;
  tiles.forEach((tile, i) => { tile.hidden = tv && Math.floor(i / perPage) !== tvPage; });
  const label = $("tv-page");
  label.hidden = !tv || pages < 2;
  label.textContent = t("Page {page} of {pages}", { page: tvPage + 1, pages });
}
if (tv) setInterval(() => { tvPage += 1; showTvPage(); }, rotateMs);

// Thresholds: service level against 80 % / 60 %; longest wait against the queue's answer target.
function slStatus(sl) {
  if (sl === null || sl === undefined) return null;
  return sl >= 0.8 ? "ok" : sl >= 0.6 ? "warn" : "bad";
}
function waitStatus(seconds, target) {
  if (!seconds) return "ok";
  return seconds <= target ? "ok" : seconds <= target * 3 ? "warn" : "bad";
}
const statusText = { ok: () => t("OK"), warn: () => t("Warning"), bad: () => t("Critical") };

function longestNow(q) {
  return q.waiting > 0 ? q.longest_wait_s + (clock.now() - q.receivedAt) : 0;
}

/** Why nobody can answer the queue's contacts, if so: critical whatever the figures say. */
function queueAlert(q) {
  if (!q.members) return { reason: "no-members", text: t("No agents in this queue") };
  if (q.waiting > 0 && !q.agents_logged_in) return { reason: "nobody-signed-in", text: t("Contacts waiting, nobody signed in") };
  return null;
}

function renderTiles() {
  const root = $("tiles");
  const nodes = [...queues.values()].sort((a, b) => a.name.localeCompare(b.name)).map((q) => {
    const target = (queueSettings.get(q.queue_id) || {}).sl_threshold_s || 20;
    const sl = slStatus(q.service_level_today);
    const wait = waitStatus(longestNow(q), target);
    const alert = queueAlert(q);
    return el("article", { class: `panel tile${alert ? " critical" : ""}`, "data-queue-id": String(q.queue_id), "aria-labelledby": `q-${q.queue_id}` },
      el("h2", { id: `q-${q.queue_id}` }, q.name,
        el("span", { class: `badge ${q.open ? "status-ok" : "status-bad"}` }, q.open ? t("Opened") : t("Closed"))),
      alert ? el("p", {}, el("span", { class: "badge status-bad queue-alert", "data-reason": alert.reason, role: "status" }, alert.text)) : null,
      el("div", { class: "field-row" },
        el("div", {}, el("div", { class: "muted small" }, t("Waiting")), el("div", { class: "big waiting" }, fmt.number(q.waiting))),
        el("div", {}, el("div", { class: "muted small" }, t("Longest wait")),
          el("div", { class: "big longest", "data-status": wait }, fmt.duration(longestNow(q))),
          el("span", { class: `badge status-${wait} longest-status` }, statusText[wait]()))),
      el("div", { class: "figures" },
        el("div", {}, el("span", {}, t("SL today")),
          el("span", { class: "sl" }, fmt.percent(q.service_level_today), " ",
            sl ? el("span", { class: `badge status-${sl}` }, statusText[sl]()) : null)),
        el("div", {}, el("span", {}, t("ASA")), el("span", {}, fmt.duration(q.asa_today_s))),
        el("div", {}, el("span", {}, t("Offered")), el("span", { class: "offered" }, fmt.number(q.offered_today))),
        el("div", {}, el("span", {}, t("Answered")), el("span", {}, fmt.number(q.answered_today))),
        el("div", {}, el("span", {}, t("Abandoned")), el("span", { class: "abandoned" }, fmt.number(q.abandoned_today))),
        // Contacts that left for another queue (a supervisor's move; overflow) or came by overflow:
        // with them a queue's offered adds up to answered + abandoned + waiting + moved on.
        el("div", {}, el("span", {}, t("Moved out")), el("span", { class: "transferred" }, fmt.number(q.transferred_today || 0))),
        el("div", {}, el("span", {}, t("Overflow in")), el("span", { class: "overflowed-in" }, fmt.number(q.overflowed_in_today || 0))),
        el("div", {}, el("span", {}, t("Overflow out")), el("span", { class: "overflowed-out" }, fmt.number(q.overflowed_out_today || 0))),
        el("div", {}, el("span", {}, t("Available")), el("span", {}, fmt.number(q.agents_available))),
        el("div", {}, el("span", {}, t("On contact")), el("span", {}, fmt.number(q.agents_on_contact))),
        el("div", {}, el("span", {}, t("Wrap-up")), el("span", {}, fmt.number(q.agents_wrap_up))),
        el("div", {}, el("span", {}, t("Not ready")), el("span", {}, fmt.number(q.agents_not_ready)))),
      el("p", {}, el("button", {
        type: "button", class: "link toggle-waiting", "aria-expanded": openWaiting.has(q.queue_id) ? "true" : "false",
        onclick: () => toggleWaiting(q.queue_id),
      }, t("Waiting contacts"))));
  });
  clear(root, nodes.length ? nodes : el("p", { class: "muted" }, t("No queues yet.")));
  showTvPage();
}

function tickTiles() {
  // Server unreachable: the figures are the last ones heard of; the ticking ones show a dash.
  const known = serverReachable();
  document.body.classList.toggle("state-unknown", !known);
  if (!known) {
    for (const node of document.querySelectorAll(".tile .longest, #agents .time-in-state")) node.textContent = "—";
    return;
  }
  for (const q of queues.values()) {
    const tile = document.querySelector(`.tile[data-queue-id="${q.queue_id}"]`);
    if (!tile) continue;
    const target = (queueSettings.get(q.queue_id) || {}).sl_threshold_s || 20;
    const seconds = longestNow(q);
    const status = waitStatus(seconds, target);
    const node = tile.querySelector(".longest");
    node.textContent = fmt.duration(seconds);
    if (node.dataset.status !== status) {
      node.dataset.status = status;
      const badge = tile.querySelector(".longest-status");
      badge.className = `badge status-${status} longest-status`;
      badge.textContent = statusText[status]();
    }
  }
  for (const row of document.querySelectorAll("#agents tr[data-since]")) {
    row.querySelector(".time-in-state").textContent = fmt.duration(clock.now() - Number(row.dataset.since));
  }
}

const stateClass = { available: "status-ok", on_contact: "status-ok", wrap_up: "status-warn", not_ready: "status-warn", offline: "status-bad" };

/**
 * Whether the supervisor is choosing in `root` (a list or a field there has the focus): a live update
 * then waits until the focus leaves, so a choice is never pulled away from under their hands. A
 * focused button holds no choice (Apply keeps the focus once pressed, and then the row must show what
 * it did).
 */
function choosingIn(root) {
  return root.contains(document.activeElement) && document.activeElement.tagName !== "BUTTON";
}

let agentsPending = false;
function renderAgents() {
  const table = $("agents");
  if (choosingIn(table)) { agentsPending = true; return; }
  agentsPending = false;
  // The button that had the focus: the same button of the same agent's new row takes it.
  const focused = table.contains(document.activeElement) ? document.activeElement : null;
  const row = focused && focused.closest("tr[data-agent-id]");
  const refocus = row ? `tr[data-agent-id="${row.dataset.agentId}"] button.${focused.classList[0]}` : null;
  const rows = [...agents].sort((a, b) => a.display_name.localeCompare(b.display_name)).map((a) => {
    const pending = busyStates.has(a.state) && !a.ready;
    return el("tr", { "data-agent-id": String(a.agent_id), "data-since": a.since ? String(a.since) : null },
      el("td", {}, a.display_name || a.username, el("div", { class: "muted small" }, a.username)),
      el("td", {}, el("span", { class: `badge agent-state ${stateClass[a.state] || ""}`, "data-state": a.state },
        label(a.state)),
        // Not ready set during a contact applies when the contact is done: say so until then.
        pending ? el("div", { class: "small pending-state" },
          t("Next: {state}", { state: a.reason ? `${label("not_ready")}: ${reasonName(a.reason)}` : label("not_ready") }))
          : a.reason ? el("div", { class: "small" }, reasonName(a.reason)) : null),
      el("td", { class: "num time-in-state" }, a.since ? fmt.duration(clock.now() - a.since) : "—"),
      el("td", {}, [...a.contact_ids.map((id) => `#${id}`), ...a.offered_contact_ids.map((id) => `#${id} (${t("ringing")})`)].join(", ") || "—"),
      el("td", { class: "num" }, fmt.number(a.contacts_today)),
      el("td", {}, stateControl(a)));
  });
  clear(table, rows.length ? rows : el("tr", {}, el("td", { colspan: "6", class: "muted" }, t("No agents."))));
  if (refocus) table.querySelector(refocus)?.focus();
}

// The states an agent is busy in: a state set then is pending until the contacts are done.
const busyStates = new Set(["on_contact", "wrap_up"]);

/** The value of the state control that matches the agent's state now (or the one pending). */
function currentChoice(a) {
  if (a.state === "not_ready" || (busyStates.has(a.state) && !a.ready)) {
    return a.reason && reasons.some((r) => r.code === a.reason) ? `not_ready:${a.reason}` : "not_ready:";
  }
  return "available";
}

/** A supervisor changes a signed-in agent's state or signs them out; only the agent signs in. */
function stateControl(a) {
  if (a.state === "offline") {
    return el("span", { class: "muted small signed-out-note" }, t("Signed out: only the agent can sign in"));
  }
  const choice = currentChoice(a);
  const select = el("select", { "aria-label": t("New state for {name}", { name: a.display_name }) },
    el("option", { value: "available" }, label("available")),
    // Not ready without a reason, when the agent's reason is not (or no longer) one of the list.
    choice === "not_ready:" ? el("option", { value: "not_ready:" }, label("not_ready")) : null,
    reasons.map((r) => el("option", { value: `not_ready:${r.code}` }, `${label("not_ready")}: ${r.name}`)),
    el("option", { value: "offline" }, t("Sign out")));
  select.value = choice;
  return el("div", { class: "field-row" }, select,
    el("button", { type: "button", class: "apply-state", onclick: busy(() => setAgentState(a, select.value)) }, t("Apply")));
}

function reasonName(code) {
  const r = reasons.find((x) => x.code === code);
  return r ? r.name : code;
}

async function setAgentState(a, value) {
  const [state, reason] = value.split(":");
  await attempt(() => api("POST", `/agents/${a.agent_id}/state`, { state, reason: reason || null }),
    t("State of {name} changed", { name: a.display_name }));
}

// ------------------------------------------------------------------ waiting contacts
function toggleWaiting(queueId) {
  if (openWaiting.has(queueId)) openWaiting.delete(queueId); else openWaiting.add(queueId);
  renderTiles();
  loadWaiting();
}

let waitingPending = false;
async function loadWaiting() {
  if (choosingIn($("waiting"))) { waitingPending = true; return; }
  waitingPending = false;
  await readWaiting();
}

// Live updates and the supervisor's clicks read the lists again, overlapping: the newest read draws.
const readWaiting = newestOnly(async () => {
  if (openWaiting.size === 0) return [el("p", { class: "muted" }, t("Choose “Waiting contacts” on a queue to list them here."))];
  const sections = [];
  for (const queueId of openWaiting) {
    const q = queues.get(queueId);
    const items = await api("GET", `/queues/${queueId}/waiting`).catch(() => []);
    sections.push(el("section", { "data-queue-id": String(queueId), class: "waiting-queue" },
      el("h3", {}, `${q ? q.name : queueId} — ${t("waiting")}: ${items.length}`),
      items.length ? el("table", {},
        el("thead", {}, el("tr", {}, [t("#"), t("Contact"), t("Waited"), t("Priority"), t("Move to")].map((h) => el("th", {}, h)))),
        el("tbody", {}, items.map((c) => waitingRow(c)))) : el("p", { class: "muted" }, t("Nobody is waiting."))));
  }
  return sections;
}, (sections) => {
  // A live update redraws the list at any moment, also between choosing a target and pressing Move:
  // what the supervisor chose stays chosen, or Move would send the contact to the default target.
  const root = $("waiting");
  const chosen = choicesIn(root);
  clear(root, sections);
  restoreChoices(root, chosen);
});

/** The values the supervisor changed in the waiting list, by contact and field. */
function choicesIn(root) {
  const chosen = new Map();
  for (const field of root.querySelectorAll("tr[data-interaction-id] [data-chosen]")) {
    chosen.set(`${field.closest("tr").dataset.interactionId} ${field.className}`, field.value);
  }
  return chosen;
}

function restoreChoices(root, chosen) {
  for (const field of root.querySelectorAll("tr[data-interaction-id] select, tr[data-interaction-id] input")) {
    const value = chosen.get(`${field.closest("tr").dataset.interactionId} ${field.className}`);
    if (value === undefined) continue;
    if (field.tagName === "SELECT" && ![...field.options].some((o) => o.value === value)) continue;
    field.value = value;
    field.dataset.chosen = "1";
  }
}

/** Mark a field the supervisor changed, so a redraw keeps its value (see loadWaiting). */
function remember(event) {
  event.target.dataset.chosen = "1";
}

function waitingRow(c) {
  const move = el("select", { "aria-label": t("Move contact {id} to queue", { id: c.interaction_id }), class: "move-target", onchange: remember },
    [...queues.values()].filter((q) => q.queue_id !== c.queue_id).map((q) => el("option", { value: String(q.queue_id) }, q.name)));
  const priority = el("input", { type: "number", min: "-100", max: "100", value: String(c.priority), class: "priority-input",
    "aria-label": t("Priority of contact {id}", { id: c.interaction_id }), style: "width:5rem", oninput: remember });
  return el("tr", { "data-interaction-id": String(c.interaction_id) },
    el("td", { class: "num" }, String(c.position)),
    el("td", {}, `#${c.interaction_id} · ${label(c.channel)}`, el("div", { class: "small" }, c.customer_name || t("Unknown customer"), " — ", c.subject || t("(no subject)"))),
    el("td", { class: "num" }, fmt.duration(c.waited_s)),
    el("td", {}, el("div", { class: "field-row" }, priority,
      el("button", { type: "button", onclick: busy(async () => {
        const done = await attempt(() => api("POST", `/interactions/${c.interaction_id}/priority`, { priority: Number(priority.value) }), t("Priority changed"));
        if (done !== undefined) delete priority.dataset.chosen; // saved: from now on the server's value is shown
      }) }, t("Set")))),
    el("td", { class: "move-cell" },
      el("div", { class: "field-row" }, move,
        el("button", { type: "button", class: "primary move-contact", onclick: busy(() =>
          attempt(() => api("POST", `/interactions/${c.interaction_id}/move`, { queue_id: Number(move.value) }), t("Contact moved"))) }, t("Move"))),
      agentPicker(c)));
}

/** Reserve the waiting contact for a named signed-in agent: it is offered to them when they have room. */
function agentPicker(c) {
  const signedIn = [...agents].filter((a) => a.state !== "offline")
    .sort((a, b) => (a.display_name || a.username).localeCompare(b.display_name || b.username));
  if (!signedIn.length) return el("div", { class: "muted small" }, t("No agents signed in"));
  const select = el("select", { "aria-label": t("Move contact {id} to agent", { id: c.interaction_id }), class: "move-agent", onchange: remember },
    signedIn.map((a) => el("option", { value: String(a.agent_id) }, `${a.display_name || a.username} (${label(a.state)})`)));
  return el("div", { class: "field-row move-agent-row" }, select,
    el("button", { type: "button", class: "move-to-agent", onclick: busy(() => {
      const chosen = signedIn.find((a) => String(a.agent_id) === select.value);
      const name = chosen ? chosen.display_name || chosen.username : select.value;
      return attempt(() => api("POST", `/interactions/${c.interaction_id}/move`, { agent_id: Number(select.value) }),
        t("Contact moved to {name}", { name }));
    }) }, t("Move to agent")));
}

// ------------------------------------------------------------------ live data
function applyWallboard(wb) {
  clock.setServerNow(wb.at);
  const received = clock.now();
  for (const q of wb.queues) queues.set(q.queue_id, { ...q, receivedAt: received });
  agents = wb.agents;
  renderTiles();
  renderAgents();
  $("updated").textContent = fmt.time(new Date());
}

function applyFigures(list) {
  const received = clock.now();
  for (const f of list) {
    const q = queues.get(f.queue_id);
    if (!q) continue;
    Object.assign(q, {
      waiting: f.waiting,
      longest_wait_s: f.longest_current_wait_s || 0,
      receivedAt: received,
      offered_today: f.offered,
      answered_today: f.answered,
      abandoned_today: f.abandoned,
      service_level_today: f.service_level,
      asa_today_s: f.asa_s,
      transferred_today: f.transferred,
      overflowed_in_today: f.overflowed_in,
      overflowed_out_today: f.overflowed_out,
    });
  }
  renderTiles();
  $("updated").textContent = fmt.time(new Date());
}

/** After an event, fetch one fresh snapshot (agents by state, rows); bursts become one request. */
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    const wb = await api("GET", "/wallboard").catch(() => null);
    if (wb) applyWallboard(wb);
    loadWaiting();
  }, 300);
}

function onMessage(type, data) {
  if (type === "hello") {
    if (data.wallboard) applyWallboard(data.wallboard);
    loadWaiting();
  } else if (type === "queue_figures") {
    applyFigures(data.queues);
  } else if (type !== "pong") {
    refreshSoon();
  }
}

async function start() {
  const [qs, rs] = await Promise.all([
    api("GET", "/queues").catch(() => []),
    api("GET", "/codes/not-ready-reasons").catch(() => []),
  ]);
  queueSettings = new Map(qs.map((q) => [q.id, q.settings]));
  reasons = rs.filter((r) => r.active);
  onTick(tickTiles);
  $("agents").addEventListener("focusout", () => setTimeout(() => { if (agentsPending) renderAgents(); }, 0));
  $("waiting").addEventListener("focusout", () => setTimeout(() => { if (waitingPending) loadWaiting(); }, 0));
  loadWaiting();
  connectStream(onMessage);
}

start();
