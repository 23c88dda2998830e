// The ticket page: the conversation across channels (calls with recordings, messages, notes, replies),
// properties, customer and company, watchers, the reply box with canned answers and macros, merge and
// split, the SLA and the history of changes.
import {
  ApiError, api, attempt, busy, clear, clearFormErrors, customerName, el, fmt, label, me, onTick, showFieldError, t, toast, uploadAttachment,
} from "./common.js";
import { activitiesPanel } from "./activities.js";
import { callDetails } from "./customer.js";
import { mentionPicker } from "./mentions.js";

const root = document.getElementById("ticket-page");
const ticketId = Number(root.dataset.ticketId);
const canSupervise = root.dataset.canSupervise === "true";
const STATUSES = ["open", "pending", "solved", "closed"];
const PRIORITIES = ["low", "normal", "high", "urgent"];

const state = { ticket: null, users: new Map(), queues: null, policies: new Map(), historyCursor: null, contacts: [] };

const HISTORY_ACTIONS = {
  "ticket.create": "Ticket created",
  "ticket.update": "Changed: {fields}",
  "ticket.note": "Internal note added",
  "ticket.reply": "Reply written",
  "ticket.merge": "Merged into ticket {into}",
  "ticket.merge_into": "Tickets {ids} merged into this one",
  "ticket.split": "Contacts split off into ticket {new}",
  "ticket.watch": "Watcher added",
  "ticket.unwatch": "Watcher removed",
  "ticket.macro": "Macro applied",
  "ticket.link_interaction": "Contact linked",
  "ticket.sla_warning": "SLA warning: {metric}",
  "ticket.sla_breach": "SLA breached: {metric}",
  "ticket.customer_reply": "The customer replied",
  "ticket.agent_reply": "Reply sent",
  "ticket.reopen": "Reopened",
};

function userName(id) {
  if (id === null || id === undefined) return t("(none)");
  if (id === me.user_id) return me.username;
  const u = state.users.get(id);
  return u ? (u.display_name || u.username) : `#${id}`;
}

function select(name, values, current, text = label, id = null) {
  return el("select", { name, id }, values.map((v) => el("option", { value: v === null ? "" : String(v), selected: String(v) === String(current ?? "") }, text(v))));
}

/** datetime-local value of an ISO instant, in the browser's zone. */
function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// ------------------------------------------------------------------ properties
function renderProps() {
  const tk = state.ticket;
  const form = document.getElementById("props");
  const assignees = [null, me.user_id, ...[...state.users.keys()].filter((id) => id !== me.user_id)];
  if (tk.assignee_id !== null && !assignees.includes(tk.assignee_id)) assignees.push(tk.assignee_id);
  clear(form,
    el("label", { for: "p-subject" }, t("Subject")), el("input", { id: "p-subject", name: "subject", value: tk.subject, maxlength: "500" }),
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: "p-status" }, t("Status")), select("status", STATUSES, tk.status, label, "p-status")),
      el("div", {}, el("label", { for: "p-priority" }, t("Priority")), select("priority", PRIORITIES, tk.priority, label, "p-priority"))),
    el("label", { for: "p-assignee" }, t("Assignee")), select("assignee_id", assignees, tk.assignee_id, userName, "p-assignee"),
    state.queues ? [el("label", { for: "p-queue" }, t("Queue")),
      select("queue_id", [null, ...state.queues.map((q) => q.id)], tk.queue_id, (id) => (id === null ? t("(none)") : state.queues.find((q) => q.id === id).name), "p-queue")] : null,
    el("label", { for: "p-due" }, t("Due")), el("input", { id: "p-due", name: "due_at", type: "datetime-local", value: localInput(tk.due_at) }),
    el("label", { for: "p-tags" }, t("Tags (comma-separated)")), el("input", { id: "p-tags", name: "tags", value: tk.tags.join(", ") }),
    tk.merged_into_id ? el("p", { class: "small" }, t("Merged into"), " ", el("a", { href: `/tickets/${tk.merged_into_id}` }, `#${tk.merged_into_id}`)) : null,
    tk.follow_up_of_id ? el("p", { class: "small" }, t("Follows up"), " ", el("a", { href: `/tickets/${tk.follow_up_of_id}` }, `#${tk.follow_up_of_id}`)) : null,
    el("p", { class: "muted small" }, `${t("Created")}: ${fmt.dateTime(tk.created_at)} · ${t("Updated")}: ${fmt.dateTime(tk.updated_at)}`),
    el("div", {}, el("button", { type: "submit", class: "primary" }, t("Save"))));
}

document.getElementById("props").addEventListener("submit", busy(async (event) => {
  const form = event.target;
  const data = new FormData(form);
  const tk = state.ticket;
  const patch = {};
  const subject = String(data.get("subject")).trim();
  if (subject !== tk.subject) patch.subject = subject;
  if (data.get("status") !== tk.status) patch.status = data.get("status");
  if (data.get("priority") !== tk.priority) patch.priority = data.get("priority");
  const assignee = data.get("assignee_id") ? Number(data.get("assignee_id")) : null;
  if (assignee !== tk.assignee_id) patch.assignee_id = assignee;
  if (data.has("queue_id")) {
    const queue = data.get("queue_id") ? Number(data.get("queue_id")) : null;
    if (queue !== tk.queue_id) patch.queue_id = queue;
  }
  const due = data.get("due_at") ? new Date(String(data.get("due_at"))).toISOString() : null;
  if (localInput(due) !== localInput(tk.due_at)) patch.due_at = due;
  const tags = String(data.get("tags")).split(",").map((s) => s.trim()).filter(Boolean);
  if (tags.join(",") !== tk.tags.join(",")) patch.tags = tags;
  if (!Object.keys(patch).length) return;
  const saved = await attempt(() => api("PATCH", `/tickets/${ticketId}`, patch), t("Ticket saved"), form);
  if (saved) { state.ticket = saved; renderProps(); renderSla(); await loadHistory(); }
}));

// ------------------------------------------------------------------ SLA
function renderSla() {
  const tk = state.ticket;
  const box = document.getElementById("t-sla");
  const policy = state.policies.get(tk.sla_policy_id);
  const left = el("p", { class: "sla-left", role: "timer" });
  const paint = () => {
    if (!tk.sla_due_at || !["open", "pending"].includes(tk.status)) { left.textContent = t("No SLA clock is running."); left.dataset.sla = "none"; return; }
    const s = (new Date(tk.sla_due_at).getTime() - Date.now()) / 1000;
    const warn = policy ? policy.warn_before_s : 3600;
    left.dataset.sla = s <= 0 ? "breached" : s <= warn ? "breaching" : "ok";
    left.className = `sla-left badge ${s <= 0 ? "status-bad" : s <= warn ? "status-warn" : "status-ok"}`;
    left.textContent = s <= 0 ? t("Breached {time} ago", { time: fmt.duration(-s) }) : t("{time} left", { time: fmt.duration(s) });
  };
  paint();
  const clocks = tk.sla_clocks || [];
  const loadedAt = Date.now();
  // Each metric's clock as the server read it; a running one counts down until the next refresh (the
  // server counts business time only, so the page asks again every minute rather than guess hours).
  const rows = clocks.map((c) => {
    const leftCell = el("td", { class: "left" });
    const row = el("tr", { "data-metric": c.metric, "data-state": c.state },
      el("th", { scope: "row" }, label(c.metric)),
      el("td", {}, el("span", { class: `badge clock-state ${CLOCK_TONES[c.state] || ""}` }, t(CLOCK_STATES[c.state] || c.state))),
      leftCell,
      el("td", { class: "due small" }, c.due_at ? fmt.dateTime(c.due_at) : c.stopped_at ? `${t("Answered")}: ${fmt.dateTime(c.stopped_at)}` : "—"));
    row.paintClock = () => {
      const running = c.state === "running" || c.state === "warning" || (c.state === "breached" && c.due_at);
      const s = c.remaining_s - (running ? (Date.now() - loadedAt) / 1000 : 0);
      if (c.state === "off" || c.state === "met" || (c.state === "breached" && !c.due_at && c.stopped_at)) { leftCell.textContent = "—"; return; }
      leftCell.textContent = s <= 0 ? t("Breached {time} ago", { time: fmt.duration(-s) }) : t("{time} left", { time: fmt.duration(s) });
    };
    row.paintClock();
    return row;
  });
  clear(box, left,
    rows.length ? el("table", { class: "sla-clocks small", "aria-label": t("SLA clocks") },
      el("thead", {}, el("tr", {}, el("th", {}, t("Metric")), el("th", {}, t("State")), el("th", {}, t("Time left")), el("th", {}, t("Due")))),
      el("tbody", {}, rows)) : null,
    tk.sla_due_at ? el("p", { class: "small" }, `${t("Next deadline")}: ${fmt.dateTime(tk.sla_due_at)}`) : null,
    policy ? el("dl", { class: "card small" },
      el("dt", {}, t("Policy")), el("dd", {}, policy.name),
      el("dt", {}, t("First response")), el("dd", {}, policy.first_response_s ? fmt.duration(policy.first_response_s) : "—"),
      el("dt", {}, t("Next response")), el("dd", {}, policy.next_response_s ? fmt.duration(policy.next_response_s) : "—"),
      el("dt", {}, t("Resolution")), el("dd", {}, policy.resolution_s ? fmt.duration(policy.resolution_s) : "—"))
      : el("p", { class: "muted small" }, t("No SLA policy applies to this ticket.")));
  state.slaPaint = () => { paint(); for (const r of rows) r.paintClock(); };
}
onTick(() => state.slaPaint && state.slaPaint());

// A clock's state, in words and colour.
const CLOCK_STATES = {
  off: "Not started", running: "Running", warning: "Due soon", breached: "Breached",
  paused: "Paused: pending on the customer", met: "Met",
};
const CLOCK_TONES = { running: "status-ok", met: "status-ok", warning: "status-warn", paused: "status-warn", breached: "status-bad" };

/** Read the clocks again (the server counts business hours, holidays and pauses). */
async function refreshSla() {
  try {
    const fresh = await api("GET", `/tickets/${ticketId}`);
    state.ticket.sla_clocks = fresh.sla_clocks;
    state.ticket.sla_due_at = fresh.sla_due_at;
    renderSla();
  } catch (error) { /* the next refresh tries again */ }
}
const SLA_REFRESH_MS = 60000;
setInterval(refreshSla, SLA_REFRESH_MS);

// ------------------------------------------------------------------ customer and company
async function renderCustomer() {
  const box = document.getElementById("t-customer");
  const id = state.ticket.customer_id;
  if (id === null) { clear(box, el("p", { class: "muted" }, t("The customer was deleted."))); return; }
  try {
    const c = await api("GET", `/customers/${id}`);
    const company = c.company; // {id, name}: the customer's company, or null
    clear(box, el("p", {}, el("strong", { class: "customer-name" }, customerName(c))),
      el("ul", { class: "plain small" }, (c.identities || []).map((i) => el("li", {}, `${label(i.kind)}: ${i.kind === "phone" ? fmt.phone(i.value) : i.value}`))),
      company ? el("p", { class: "small" }, `${t("Company")}: `, el("a", { class: "company-name", href: `/companies/${company.id}` }, company.name)) : null);
  } catch (error) {
    clear(box, el("p", { class: "muted" }, t("Not available.")));
  }
}

// ------------------------------------------------------------------ knowledge base
/** Published articles matching any meaningful word of the ticket's subject, each opened in a new tab. */
async function renderSuggestions() {
  const box = document.getElementById("t-kb");
  const hits = await api("GET", `/kb/suggestions?ticket_id=${ticketId}`).catch(() => null);
  if (hits === null) { clear(box, el("li", { class: "muted" }, t("Not available."))); return; }
  clear(box, hits.length ? hits.slice(0, 5).map((h) => el("li", { "data-article-id": String(h.id) },
    el("a", { href: `/kb?article=${h.id}`, target: "_blank", rel: "noopener" }, h.title),
    el("div", { class: "muted" }, h.snippet)))
    : el("li", { class: "muted" }, t("No article matches the subject.")));
}

// ------------------------------------------------------------------ timeline
function contactEntry(entry) {
  const c = entry.contact;
  state.contacts.push(c);
  return el("li", { class: `tl-contact channel-${c.channel}`, "data-interaction-id": String(c.id) },
    el("div", { class: "small muted" }, `${label(c.channel)} · ${label(c.direction)} · ${fmt.dateTime(c.created_at)} · ${label(c.state)}`),
    el("strong", {}, c.subject || t("(no subject)")),
    entry.messages.map((m) => el("div", { class: `message ${m.direction}` },
      el("div", { class: "small muted" }, `${m.sender || label(m.direction)} · ${fmt.dateTime(m.created_at)}`), m.body, fileList(m.attachments))),
    c.channel === "voice" ? callDetails(c.id) : null);
}

// A reply's delivery: its outbound message's state (the outbox's), the reason when it failed.
const DELIVERY = {
  awaiting_outbox: ["waiting to be sent", "status-warn"],
  queued: ["Queued", "status-warn"],
  sending: ["Sending", "status-warn"],
  sent: ["Sent", "status-ok"],
  delivered: ["Delivered", "status-ok"],
  failed: ["Failed", "status-bad"],
};

function deliveryBadge(p) {
  const [text, tone] = DELIVERY[p.delivery] || [p.delivery, "status-warn"];
  const shown = p.delivery === "failed" && p.delivery_error ? `${t(text)}: ${p.delivery_error}` : t(text);
  return el("span", { class: `badge ${tone} delivery`, "data-delivery": p.delivery }, shown);
}

function postEntry(entry) {
  const p = entry.post;
  return el("li", { class: `tl-${p.kind}`, "data-post-id": String(p.id) },
    el("div", { class: "small muted" },
      `${p.kind === "note" ? t("Internal note") : t("Reply")} · ${p.author_name || t("system")} · ${fmt.dateTime(p.created_at)} `,
      p.kind === "reply" ? deliveryBadge(p) : null),
    el("div", { class: "message" }, p.body),
    p.cc && p.cc.length ? el("div", { class: "small muted reply-cc" }, `${t("Cc")}: ${p.cc.join(", ")}`) : null,
    fileList(p.attachments));
}

/** A message's or reply's files, each a download link. */
function fileList(files) {
  if (!files || !files.length) return null;
  return el("ul", { class: "attachments small" }, files.map((f) => el("li", {},
    el("a", { href: `/api/v1/attachments/${f.id}`, download: f.filename }, f.filename),
    el("span", { class: "muted" }, ` ${Math.max(1, Math.round(f.size / 1024))} KB`))));
}

async function loadTimeline() {
  const entries = await api("GET", `/tickets/${ticketId}/timeline`);
  state.contacts = [];
  const list = document.getElementById("t-timeline");
  clear(list, entries.length ? entries.map((e) => (e.kind === "contact" ? contactEntry(e) : postEntry(e)))
    : el("li", { class: "muted" }, t("Nothing yet.")));
  clear(document.getElementById("split-contacts"), state.contacts.length
    ? state.contacts.map((c) => el("label", { class: "inline small" }, el("input", { type: "checkbox", name: "interaction_ids", value: String(c.id) }),
      `${label(c.channel)} #${c.id} ${c.subject || ""}`))
    : el("p", { class: "muted small" }, t("No contacts.")));
}

// ------------------------------------------------------------------ history
function historyText(entry) {
  const d = entry.details || {};
  const text = HISTORY_ACTIONS[entry.action];
  if (!text) return entry.action;
  return t(text, {
    fields: (d.fields || []).concat(d.added_tags?.length || d.removed_tags?.length ? [t("Tags")] : []).map((f) => t(`field:${f}`) === `field:${f}` ? f : t(`field:${f}`)).join(", "),
    into: d.into_ticket_id, ids: (d.merged_ticket_ids || []).join(", "), new: d.new_ticket_id, metric: label(d.metric),
  });
}

async function loadHistory(older = false) {
  const list = document.getElementById("t-history");
  const q = new URLSearchParams({ limit: "20" });
  if (older && state.historyCursor) q.set("cursor", state.historyCursor);
  const page = await api("GET", `/tickets/${ticketId}/history?${q}`);
  const items = page.items.map((h) => el("li", { "data-action": h.action },
    el("span", { class: "muted" }, `${fmt.dateTime(h.at)} · ${h.actor_name || t("system")}: `), historyText(h),
    h.details && h.details.from_status ? ` (${label(h.details.from_status)} → ${label(h.details.to_status)})` : ""));
  if (older) list.append(...items); else clear(list, items.length ? items : el("li", { class: "muted" }, t("No history yet.")));
  state.historyCursor = page.next_cursor;
  document.getElementById("history-more").hidden = !page.next_cursor;
}
document.getElementById("history-more").addEventListener("click", busy(() => loadHistory(true)));

// ------------------------------------------------------------------ watchers
async function renderWatchers(list) {
  const watchers = list || await api("GET", `/tickets/${ticketId}/watchers`);
  const mine = watchers.some((w) => w.user_id === me.user_id);
  clear(document.getElementById("t-watchers"), watchers.length ? watchers.map((w) => el("li", { "data-user-id": String(w.user_id) }, w.display_name || w.username,
    canSupervise && w.user_id !== me.user_id ? el("button", { type: "button", class: "link small", "aria-label": t("Remove {name}", { name: w.username }),
      onclick: busy(async () => { const r = await attempt(() => api("DELETE", `/tickets/${ticketId}/watchers/${w.user_id}`)); if (r) await renderWatchers(r); }) }, "×") : null))
    : el("li", { class: "muted small" }, t("Nobody watches this ticket.")));
  const button = document.getElementById("watch");
  button.textContent = mine ? t("Stop watching") : t("Watch");
  button.dataset.watching = mine ? "true" : "false";
}
document.getElementById("watch").addEventListener("click", busy(async (event) => {
  const watching = event.currentTarget.dataset.watching === "true";
  const r = await attempt(() => (watching ? api("DELETE", `/tickets/${ticketId}/watchers/${me.user_id}`) : api("POST", `/tickets/${ticketId}/watchers`, {})));
  if (r) await renderWatchers(r);
}));

// ------------------------------------------------------------------ reply box: canned answers and macros
const replyForm = document.getElementById("reply-form");
const body = document.getElementById("reply-body");
const cannedQ = document.getElementById("canned-q");
const cannedList = document.getElementById("canned-list");
const missingNote = document.getElementById("reply-missing");
let slashStart = null; // where "/shortcut" typed in the text starts, to be replaced by the answer

function insertText(text) {
  const start = slashStart ?? body.selectionStart ?? body.value.length;
  const end = slashStart !== null ? body.selectionStart : (body.selectionEnd ?? start);
  body.value = body.value.slice(0, start) + text + body.value.slice(end);
  slashStart = null;
  body.focus();
  body.selectionStart = body.selectionEnd = start + text.length;
}

function showMissing(missing) {
  missingNote.hidden = !missing.length;
  missingNote.textContent = missing.length ? t("Fill in by hand: {names}", { names: missing.join(", ") }) : "";
}

async function chooseAnswer(answer) {
  const rendered = await attempt(() => api("GET", `/tickets/${ticketId}/canned-answers/${answer.id}`));
  if (!rendered) return;
  insertText(rendered.text);
  showMissing(rendered.missing);
  clear(cannedList);
  cannedQ.value = "";
}

async function searchAnswers(q) {
  const answers = await api("GET", `/canned-answers?${new URLSearchParams({ q })}`).catch(() => []);
  clear(cannedList, answers.map((a) => el("li", { role: "option" },
    el("button", { type: "button", class: "link canned-answer", "data-shortcut": a.shortcut, onclick: busy(() => chooseAnswer(a)) },
      `/${a.shortcut}`, " — ", a.title, el("span", { class: "muted small" }, ` (${a.language})`)))));
  if (!answers.length && q) cannedList.append(el("li", { class: "muted small" }, t("No canned answer matches.")));
}

cannedQ.addEventListener("input", () => { slashStart = null; searchAnswers(cannedQ.value.replace(/^\//, "").trim()); });
cannedQ.addEventListener("focus", () => { if (!cannedList.children.length) searchAnswers(cannedQ.value.replace(/^\//, "").trim()); });
body.addEventListener("input", () => {
  // Typing "/" and a few letters in the text opens the picker; choosing an answer replaces them.
  const before = body.value.slice(0, body.selectionStart);
  const m = /(^|\s)\/([^\s/]*)$/.exec(before);
  if (m) { slashStart = before.length - m[2].length - 1; searchAnswers(m[2]); } else if (slashStart !== null) { slashStart = null; clear(cannedList); }
});

document.getElementById("apply-macro").addEventListener("click", busy(async () => {
  const macroId = document.getElementById("macro").value;
  if (!macroId) return;
  const applied = await attempt(() => api("POST", `/tickets/${ticketId}/macros/${macroId}`), t("Macro applied"));
  if (!applied) return;
  state.ticket = applied.ticket;
  renderProps(); renderSla();
  if (applied.reply) { slashStart = null; insertText(applied.reply.text); showMissing(applied.reply.missing); }
  await loadHistory();
}));

// Files and copies go with a reply to the customer (not with an internal note).
const ccInput = document.getElementById("reply-cc");
const filesInput = document.getElementById("reply-files");
const chosen = document.getElementById("reply-chosen");
const replyExtras = document.getElementById("reply-extras");
const uploaded = [];

function renderChosen() {
  clear(chosen, uploaded.map((ref, i) => el("li", { "data-filename": ref.filename }, ref.filename, " ",
    el("span", { class: "muted" }, `${Math.max(1, Math.round(ref.size / 1024))} KB `),
    el("button", { type: "button", class: "link small", "aria-label": t("Remove {name}", { name: ref.filename }),
      onclick: () => { uploaded.splice(i, 1); renderChosen(); } }, "×"))));
}

filesInput.addEventListener("change", busy(async () => {
  clearFormErrors(replyForm);
  const send = document.getElementById("reply-send");
  send.disabled = true;
  try {
    for (const file of filesInput.files) {
      try {
        uploaded.push(await uploadAttachment(file));
      } catch (error) {
        showFieldError(filesInput, error.message || t("The file could not be attached"));
        break;
      }
    }
  } finally {
    send.disabled = false;
    filesInput.value = "";
    renderChosen();
  }
}));

// In an internal note, "@" and a few letters offer the colleagues to mention (a reply mentions nobody).
const isNote = () => new FormData(replyForm).get("mode") === "note";
const mentions = mentionPicker(body, { ticketId, enabled: isNote });

for (const radio of replyForm.querySelectorAll("input[name=mode]")) {
  radio.addEventListener("change", () => { replyExtras.hidden = isNote(); mentions.close(); });
}

replyForm.addEventListener("submit", busy(async () => {
  const mode = new FormData(replyForm).get("mode");
  const text = body.value.trim();
  if (!text) { showFieldError(body, t("This field is required")); return; }
  const path = mode === "note" ? "notes" : "replies";
  const payload = { body: text };
  if (mode !== "note") {
    const cc = ccInput.value.split(/[,;]\s*/).map((a) => a.trim()).filter(Boolean);
    if (cc.length) payload.cc = cc;
    if (uploaded.length) payload.attachments = uploaded.map((ref) => ref.id);
  }
  const post = await attempt(() => api("POST", `/tickets/${ticketId}/${path}`, payload),
    mode === "note" ? t("Note saved") : t("Reply queued; it goes out on the customer's channel"), replyForm);
  if (!post) return;
  // The note is saved; colleagues who may not see this ticket's project were not told (nor made watchers).
  if (post.mentions_refused && post.mentions_refused.length) {
    toast(`${t("Not told: they cannot see this ticket's project")}: ${post.mentions_refused.map((n) => `@${n}`).join(", ")}`, "error");
  }
  body.value = "";
  if (mode !== "note") { ccInput.value = ""; uploaded.length = 0; renderChosen(); }
  showMissing([]);
  // A reply answers the response clock: the clocks are read again.
  await Promise.all([loadTimeline(), loadHistory(), mode === "note" ? renderWatchers() : refreshSla()]);
}));

// ------------------------------------------------------------------ merge and split
document.getElementById("merge-form").addEventListener("submit", busy(async (event) => {
  const form = event.target;
  const input = form.elements.namedItem("ticket_ids");
  const ids = String(input.value).split(/[\s,#]+/).filter(Boolean).map(Number);
  if (!ids.length || ids.some((n) => !Number.isInteger(n) || n <= 0)) { showFieldError(input, t("Enter ticket numbers, such as 12, 15")); return; }
  const merged = await attempt(() => api("POST", `/tickets/${ticketId}/merge`, { ticket_ids: ids }), t("Tickets merged"), form);
  if (merged) { form.reset(); state.ticket = merged; renderProps(); await Promise.all([loadTimeline(), loadHistory()]); }
}));

document.getElementById("split-form").addEventListener("submit", busy(async (event) => {
  const form = event.target;
  const ids = [...form.querySelectorAll("input[name=interaction_ids]:checked")].map((b) => Number(b.value));
  const subject = form.elements.namedItem("subject");
  if (!ids.length) { attempt(() => Promise.reject(new ApiError(400, { message: t("Choose the contacts to move") })), null, form); return; }
  if (!subject.value.trim()) { showFieldError(subject, t("This field is required")); return; }
  const created = await attempt(() => api("POST", `/tickets/${ticketId}/split`, { interaction_ids: ids, subject: subject.value.trim() }), t("Ticket split"), form);
  if (created) window.location.assign(`/tickets/${created.id}`);
}));

// ------------------------------------------------------------------ start
async function start() {
  const [ticket, users, queues, policies, macros] = await Promise.allSettled([
    api("GET", `/tickets/${ticketId}`),
    canSupervise ? api("GET", "/users") : Promise.resolve([]),
    api("GET", "/queues"), api("GET", "/sla-policies"), api("GET", "/macros")]);
  if (ticket.status !== "fulfilled") { document.getElementById("t-timeline").replaceChildren(el("li", { class: "error-text" }, t("Not available."))); return; }
  state.ticket = ticket.value;
  if (users.status === "fulfilled") for (const u of users.value) if (u.is_active !== false) state.users.set(u.id, u);
  if (queues.status === "fulfilled") state.queues = queues.value;
  if (policies.status === "fulfilled") for (const p of policies.value) state.policies.set(p.id, p);
  if (macros.status === "fulfilled") {
    document.getElementById("macro").append(...macros.value.map((m) => el("option", { value: String(m.id) }, m.name)));
  }
  renderProps();
  renderSla();
  const owners = [me.user_id, ...[...state.users.keys()].filter((id) => id !== me.user_id)];
  await Promise.allSettled([renderCustomer(), loadTimeline(), loadHistory(), renderWatchers(), renderSuggestions(),
    activitiesPanel({ ticket_id: ticketId }, userName, owners)]);
}

start();
