// The wallboard's tickets closest to their SLA deadline: the open and pending tickets with a running
// clock, least time left first, with the time left ticking and the breaching ones marked as in the work
// lists. Read again every 30 seconds (the list is what the supervisor may see).
import { api, clear, el, fmt, label, onTick, t } from "./common.js";

const LIMIT = 8;
const REFRESH_MS = 30000;
// As the work lists: "breaching" within the policy's warning time, or this default without one.
const DEFAULT_WARN_S = 3600;
const tbody = document.querySelector("#wb-tickets tbody");
const empty = document.getElementById("wb-tickets-empty");
const policies = new Map();
let tickets = [];

function paint(row, ticket) {
  const left = (new Date(ticket.sla_due_at).getTime() - Date.now()) / 1000;
  const warn = policies.get(ticket.sla_policy_id)?.warn_before_s ?? DEFAULT_WARN_S;
  const kind = left <= 0 ? "breached" : left <= warn ? "breaching" : "ok";
  row.dataset.sla = kind;
  row.querySelector("td.sla").textContent = left <= 0
    ? t("Breached {time} ago", { time: fmt.duration(-left) }) : t("{time} left", { time: fmt.duration(left) });
}

function render() {
  clear(tbody, tickets.map((tk) => {
    const row = el("tr", { "data-ticket-id": String(tk.id) },
      el("td", {}, el("a", { href: `/tickets/${tk.id}` }, String(tk.id))),
      el("td", {}, el("a", { href: `/tickets/${tk.id}` }, tk.subject)),
      el("td", {}, label(tk.priority)),
      el("td", { class: "num sla" }));
    paint(row, tk);
    return row;
  }));
  empty.hidden = tickets.length > 0;
}

async function load() {
  const q = new URLSearchParams({ sort: "sla_due_at", limit: String(LIMIT) });
  q.append("status", "open");
  q.append("status", "pending");
  try {
    const page = await api("GET", `/tickets?${q}`);
    tickets = page.items.filter((tk) => tk.sla_due_at);
    render();
  } catch (error) { /* the next refresh tries again; the stream's banner tells of an outage */ }
}

onTick(() => { for (const row of tbody.children) { const tk = tickets.find((x) => String(x.id) === row.dataset.ticketId); if (tk) paint(row, tk); } });

async function start() {
  const list = await api("GET", "/sla-policies").catch(() => []);
  for (const p of list) policies.set(p.id, p);
  await load();
  setInterval(load, REFRESH_MS);
}

start();
