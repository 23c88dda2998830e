// The desk's own work besides contacts: the ticket notes that @mention me (until I have seen them) and
// my open tasks and reminders (activities) with their due times. Both are read at start and follow the
// live stream: "ticket.mention" adds a mention, "activity.due" marks a task due (and tells the agent).
import { api, attempt, busy, clear, el, fmt, newestOnly, t, toast } from "./common.js";

const mentionList = document.getElementById("mention-list");
const mentionCount = document.getElementById("mention-count");
const activityList = document.getElementById("activity-list");
const activityCount = document.getElementById("activity-count");
const mentions = new Map(); // id -> mention
const ACTIVITY_KINDS = { task: "Task", call: "Call back", reminder: "Reminder" };

/** Where an activity belongs: its deal's or ticket's page. */
function activityLink(a) {
  if (a.deal_id) return `/deals/${a.deal_id}`;
  if (a.ticket_id) return `/tickets/${a.ticket_id}`;
  return null;
}

function renderMentions() {
  const items = [...mentions.values()].sort((a, b) => b.id - a.id);
  mentionCount.textContent = String(items.length);
  clear(mentionList, items.length ? items.map((m) => el("li", { "data-mention-id": String(m.id), "data-ticket-id": String(m.ticket_id) },
    el("span", {},
      el("a", { href: `/tickets/${m.ticket_id}`, class: "mention-link", onclick: busy(async (event) => {
        // Seen once opened: marked before the page changes (a request cut by navigation is lost).
        if (event.ctrlKey || event.metaKey || event.shiftKey || event.button) return;
        event.preventDefault();
        await markSeen(m.id).catch(() => null);
        window.location.assign(`/tickets/${m.ticket_id}`);
      }) }, `#${m.ticket_id} ${m.subject}`),
      el("div", { class: "small muted" }, `${m.by_name || t("system")} · ${fmt.dateTime(m.created_at)}`),
      el("div", { class: "small mention-excerpt" }, m.excerpt)),
    el("button", { type: "button", class: "link small mark-seen", "aria-label": t("Mark the mention in #{id} seen", { id: m.ticket_id }),
      onclick: busy(async () => { if (await attempt(() => markSeen(m.id))) renderMentions(); }) }, t("Seen"))))
    : el("li", { class: "muted small" }, t("Nobody mentioned you.")));
}

/** Mark a mention seen; it leaves the list. Following its link marks it too. */
async function markSeen(id) {
  const done = await api("POST", `/me/mentions/${id}/seen`);
  mentions.delete(id);
  return done;
}

async function loadMentions() {
  const page = await api("GET", "/me/mentions?unseen=true&limit=50");
  mentions.clear();
  for (const m of page.items) mentions.set(m.id, m);
  renderMentions();
}

function renderActivities(items) {
  activityCount.textContent = String(items.length);
  const now = Date.now();
  clear(activityList, items.length ? items.map((a) => {
    const due = new Date(a.due_at).getTime() <= now;
    const href = activityLink(a);
    return el("li", { "data-activity-id": String(a.id), class: due ? "due" : null },
      el("span", {},
        href ? el("a", { href }, a.title) : el("strong", {}, a.title),
        el("div", { class: `small ${due ? "error-text" : "muted"}` }, `${t(ACTIVITY_KINDS[a.kind] || a.kind)} · ${t("Due")}: ${fmt.dateTime(a.due_at)}`)),
      el("button", { type: "button", class: "link small mark-done", onclick: busy(async () => {
        if (await attempt(() => api("PATCH", `/activities/${a.id}`, { done: true }), t("Activity done"))) await loadActivities();
      }) }, t("Mark done")));
  }) : el("li", { class: "muted small" }, t("No open tasks.")));
}

// "Mark done" and a due reminder may both read the list: the newest read draws.
const loadActivities = newestOnly(() => api("GET", "/activities?open=true&limit=50"), (page) => renderActivities(page.items));

/** Stream messages for the desk's work lists (called by desk.js for every message). */
export function onDeskWorkMessage(type, data) {
  if (type === "ticket.mention" && data.mention_id) {
    mentions.set(data.mention_id, {
      id: data.mention_id, ticket_id: data.ticket_id, subject: data.subject, by_name: data.by,
      excerpt: data.excerpt || "", created_at: data.created_at,
    });
    renderMentions();
    toast(t("{name} mentioned you in ticket #{id}", { name: data.by || t("system"), id: data.ticket_id }));
  } else if (type === "activity.due") {
    toast(t("Due now: {title}", { title: data.title }));
    loadActivities().catch(() => {});
  }
}

/** Read both lists (and again after the stream reconnects: "hello"). */
export function loadDeskWork() {
  loadMentions().catch(() => clear(mentionList, el("li", { class: "muted small" }, t("Not available."))));
  loadActivities().catch(() => clear(activityList, el("li", { class: "muted small" }, t("Not available."))));
}
