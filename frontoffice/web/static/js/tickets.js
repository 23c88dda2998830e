// Ticket work lists: built-in and saved views with their counts, filters and sort, keyset pages
// ("More"), bulk actions (assign, status, priority, tag, merge) and the SLA time left of each row.
import { api, attempt, busy, clear, el, fmt, label, me, onTick, t } from "./common.js";

const STATUSES = ["open", "pending", "solved", "closed"];
const PRIORITIES = ["low", "normal", "high", "urgent"];
const PAGE_SIZE = 50;
// A row is "breaching" when its SLA policy's warning time (or, without one, this default) is reached.
const DEFAULT_WARN_S = 3600;

const root = document.querySelector(".hd-grid");
const canSupervise = root.dataset.canSupervise === "true";
const tbody = document.querySelector("#work-list tbody");
const filters = document.getElementById("filters");
const bulk = document.getElementById("bulk");
const more = document.getElementById("more");
const empty = document.getElementById("list-empty");
const selectAll = document.getElementById("select-all");

const state = { view: "mine", viewId: null, cursor: null, users: new Map(), policies: new Map(), rows: new Map() };

function options(select, values, text = label) {
  for (const v of values) select.append(el("option", { value: String(v) }, text(v)));
}

function userName(id) {
  if (id === null || id === undefined) return t("(none)");
  if (id === me.user_id) return me.username;
  const u = state.users.get(id);
  return u ? (u.display_name || u.username) : `#${id}`;
}

/** "breached", "breaching", "ok" or "none" and the text of the SLA cell. */
function slaState(ticket, nowMs) {
  if (!ticket.sla_due_at || !["open", "pending"].includes(ticket.status)) return ["none", "—"];
  const left = (new Date(ticket.sla_due_at).getTime() - nowMs) / 1000;
  const policy = state.policies.get(ticket.sla_policy_id);
  const warn = policy ? policy.warn_before_s : DEFAULT_WARN_S;
  if (left <= 0) return ["breached", t("Breached {time} ago", { time: fmt.duration(-left) })];
  return [left <= warn ? "breaching" : "ok", t("{time} left", { time: fmt.duration(left) })];
}

function paintSla(cell, ticket) {
  const [kind, text] = slaState(ticket, Date.now());
  cell.dataset.sla = kind;
  cell.className = `sla ${kind === "breached" ? "status-bad" : kind === "breaching" ? "status-warn" : ""}`;
  cell.textContent = text;
  if (cell.parentElement) cell.parentElement.dataset.sla = kind;
}

function slaCell(ticket) {
  const cell = el("td", { class: "sla" });
  paintSla(cell, ticket);
  return cell;
}

// One ticker repaints the time left of every row shown.
onTick(() => {
  for (const tr of tbody.rows) {
    const ticket = state.rows.get(Number(tr.dataset.ticketId));
    if (ticket) paintSla(tr.querySelector("td.sla"), ticket);
  }
});

function row(ticket) {
  const box = el("input", { type: "checkbox", class: "pick", value: String(ticket.id),
    "aria-label": t("Select ticket {id}", { id: ticket.id }), onchange: countSelected });
  const tr = el("tr", { "data-ticket-id": String(ticket.id) },
    el("td", {}, box),
    el("td", {}, el("a", { href: `/tickets/${ticket.id}` }, String(ticket.id))),
    el("td", {}, el("a", { href: `/tickets/${ticket.id}` }, ticket.subject),
      ticket.tags.length ? el("div", {}, ticket.tags.map((tag) => el("span", { class: "tag" }, tag))) : null),
    el("td", {}, label(ticket.status)),
    el("td", {}, label(ticket.priority)),
    el("td", { class: "assignee" }, userName(ticket.assignee_id)));
  const sla = slaCell(ticket);
  tr.append(sla, el("td", { class: "small" }, fmt.dateTime(ticket.updated_at)));
  tr.dataset.sla = sla.dataset.sla;
  return tr;
}

function query() {
  const q = new URLSearchParams();
  if (state.viewId !== null) q.set("view_id", state.viewId);
  else if (state.view) q.set("view", state.view);
  const data = new FormData(filters);
  for (const name of ["status", "priority", "queue_id", "project_id", "tag", "sort"]) {
    const value = String(data.get(name) || "").trim();
    if (value) q.set(name, value);
  }
  const due = String(data.get("due_before") || "");
  if (due) q.set("due_before", new Date(due).toISOString());
  q.set("limit", String(PAGE_SIZE));
  if (state.cursor) q.set("cursor", state.cursor);
  return q;
}

async function load(append = false) {
  if (!append) state.cursor = null;
  const page = await attempt(() => api("GET", `/tickets?${query()}`), null, filters);
  if (!page) return;
  if (!append) { clear(tbody); state.rows.clear(); selectAll.checked = false; }
  for (const ticket of page.items) { state.rows.set(ticket.id, ticket); tbody.append(row(ticket)); }
  state.cursor = page.next_cursor;
  more.hidden = !page.next_cursor;
  empty.hidden = state.rows.size > 0;
  countSelected();
}

async function loadViews() {
  const [counts, saved] = await Promise.all([api("GET", "/tickets/counts"), api("GET", "/ticket-views")]);
  const savedById = new Map(saved.map((v) => [`saved:${v.id}`, v]));
  const list = document.getElementById("views");
  clear(list, counts.map((c) => {
    const current = c.view.startsWith("saved:") ? state.viewId === Number(c.view.slice(6)) : state.viewId === null && state.view === c.view;
    const view = savedById.get(c.view);
    return el("li", {},
      el("button", { type: "button", class: "link view", "data-view": c.view, "aria-current": current ? "true" : null,
        onclick: () => choose(c.view) },
        c.view.startsWith("saved:") ? c.name : t(c.name)),
      " ", el("span", { class: "badge count", "aria-label": t("{n} tickets", { n: c.count }) }, c.capped ? `${c.count}+` : String(c.count)),
      view && (view.owner_id === me.user_id || canSupervise)
        ? el("button", { type: "button", class: "link small", "aria-label": t("Delete view {name}", { name: view.name }),
            onclick: busy(async () => { if (await attempt(() => api("DELETE", `/ticket-views/${view.id}`), t("View deleted"))) { if (state.viewId === view.id) choose("mine"); else await loadViews(); } }) }, "×")
        : null);
  }));
}

async function choose(view) {
  if (view.startsWith("saved:")) { state.viewId = Number(view.slice(6)); state.view = null; } else { state.viewId = null; state.view = view; }
  await Promise.all([loadViews(), load()]);
}

function selected() {
  return [...tbody.querySelectorAll("input.pick:checked")].map((b) => Number(b.value));
}

function countSelected() {
  const n = selected().length;
  document.getElementById("selected-count").textContent = t("{n} selected", { n });
}

selectAll.addEventListener("change", () => {
  for (const box of tbody.querySelectorAll("input.pick")) box.checked = selectAll.checked;
  countSelected();
});

filters.addEventListener("submit", busy(async () => { await load(); }));
more.addEventListener("click", busy(async () => { await load(true); }));

bulk.addEventListener("submit", busy(async (event) => {
  const ids = selected();
  const data = new FormData(bulk);
  const body = { ticket_ids: ids };
  const assignee = String(data.get("assignee_id") || "");
  if (assignee === "none") body.assignee_id = null;
  else if (assignee) body.assignee_id = Number(assignee);
  if (data.get("status")) body.status = data.get("status");
  if (data.get("priority")) body.priority = data.get("priority");
  const tags = String(data.get("add_tags") || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (tags.length) body.add_tags = tags;
  if (!ids.length) { return attempt(() => Promise.reject(new Error(t("Select tickets first"))), null, bulk); }
  const done = await attempt(() => api("POST", "/tickets/bulk", body), t("{n} tickets changed", { n: ids.length }), bulk);
  if (done) { bulk.reset(); await Promise.all([load(), loadViews()]); }
  return done;
}));

document.getElementById("b-merge").addEventListener("click", busy(async () => {
  const ids = selected().sort((a, b) => a - b);
  if (ids.length < 2) return attempt(() => Promise.reject(new Error(t("Select two or more tickets of one customer"))), null, bulk);
  const [target, ...rest] = ids;
  if (!window.confirm(t("Merge tickets {ids} into ticket {target}?", { ids: rest.join(", "), target }))) return undefined;
  const done = await attempt(() => api("POST", `/tickets/${target}/merge`, { ticket_ids: rest }), t("Merged into ticket {id}", { id: target }), bulk);
  if (done) await Promise.all([load(), loadViews()]);
  return done;
}));

document.getElementById("save-view").addEventListener("submit", busy(async (event) => {
  const form = event.target;
  const q = query();
  const saved = { };
  if (state.view) saved.view = state.view;
  for (const name of ["status", "priority", "queue_id", "project_id", "tag"]) if (q.get(name)) saved[name] = [q.get(name)];
  if (q.get("due_before")) saved.due_before = q.get("due_before");
  const body = { name: String(new FormData(form).get("name")).trim(), filters: saved,
    shared: Boolean(form.elements.namedItem("shared")?.checked), sort: q.get("sort") || "-updated_at" };
  const view = await attempt(() => api("POST", "/ticket-views", body), t("View saved"), form);
  if (view) { form.reset(); await choose(`saved:${view.id}`); }
}));

async function start() {
  options(document.getElementById("f-status"), STATUSES);
  options(document.getElementById("f-priority"), PRIORITIES);
  options(document.getElementById("b-status"), STATUSES);
  options(document.getElementById("b-priority"), PRIORITIES);
  const assign = document.getElementById("b-assignee");
  assign.append(el("option", { value: String(me.user_id) }, t("Me")), el("option", { value: "none" }, t("Nobody (unassign)")));
  const [users, queues, projects, policies] = await Promise.allSettled([
    canSupervise ? api("GET", "/users") : Promise.resolve([]),
    api("GET", "/queues"), api("GET", "/projects"), api("GET", "/sla-policies")]);
  if (users.status === "fulfilled") {
    for (const u of users.value) {
      state.users.set(u.id, u);
      if (u.id !== me.user_id && u.is_active !== false) assign.append(el("option", { value: String(u.id) }, u.display_name || u.username));
    }
  }
  if (queues.status === "fulfilled") options(document.getElementById("f-queue"), queues.value.map((q) => q.id), (id) => queues.value.find((q) => q.id === id).name);
  else document.getElementById("f-queue").parentElement.hidden = true;
  if (projects.status === "fulfilled") options(document.getElementById("f-project"), projects.value.map((p) => p.id), (id) => projects.value.find((p) => p.id === id).name);
  if (policies.status === "fulfilled") for (const p of policies.value) state.policies.set(p.id, p);
  const wanted = new URLSearchParams(window.location.search).get("view");
  await choose(wanted || (canSupervise ? "open" : "mine"));
}

start();
