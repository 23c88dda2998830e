// Admin console: users, agent profiles, queues, entry points and rules (with a test box), calendars,
// codes, projects, API tokens, webhooks and integrations, background jobs and the audit log. Every save goes to the
// API, which applies it live.
import { api, attempt, busy, clear, clearFormErrors, el, errorText, fmt, label, me, showFieldError, showFormErrors, t, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const CHANNELS = ["voice", "email", "chat", "sms", "fax", "webform", "messenger"];
// Channels an agent has a capacity for: the contact channels and ticket work (the help desk's routed tickets).
const CAPACITY_CHANNELS = [...CHANNELS, "ticket"];
const STRATEGIES = ["longest_idle", "round_robin", "fewest_contacts", "least_occupied", "best_skill", "random_weighted", "ring_all"];
const cache = { queues: [], calendars: [], projects: [], users: [], members: new Set() };

// ------------------------------------------------------------------ small form helpers
let uid = 0;
function field(labelText, input, hint) {
  const id = input.id || `f${(uid += 1)}`;
  input.id = id;
  return el("div", {}, el("label", { for: id }, labelText), input, hint ? el("div", { class: "muted small" }, hint) : null);
}
// The API's length limits (services/schemas.py, services/acd_schemas.py), so the browser stops the
// typing where the API would refuse the whole form.
const MAX_LENGTH = { username: 64, display_name: 200, password: 200, email: 320, name: 200, code: 64, address: 320, reason: 64 };
const input = (name, value = "", attrs = {}) => el("input", { name, value: value ?? "", maxlength: MAX_LENGTH[name] ? String(MAX_LENGTH[name]) : null, ...attrs });
function select(name, options, value, attrs = {}) {
  const node = el("select", { name, ...attrs }, options.map(([v, text]) => el("option", { value: String(v) }, text)));
  node.value = value === null || value === undefined ? "" : String(value);
  return node;
}
const checkbox = (name, checked, text) => el("label", { class: "inline" }, el("input", { type: "checkbox", name, checked: !!checked }), text);
const num = (v) => (v === "" || v === null || v === undefined ? null : Number(v));
function parsePairs(text) {
  const out = {};
  for (const part of text.split(/[,\n]/)) {
    const [k, v] = part.split("=").map((s) => s && s.trim());
    if (k) out[k] = Number(v);
  }
  return out;
}
const pairsText = (obj) => Object.entries(obj || {}).map(([k, v]) => `${k}=${v}`).join(", ");
const queueOptions = (withNone) => [...(withNone ? [["", t("(none)")]] : []), ...cache.queues.map((q) => [q.id, q.name])];
const queueName = (id) => (cache.queues.find((q) => q.id === id) || {}).name || (id ? `#${id}` : "—");

// A form's error line (errors that name no field); field errors go next to their fields (common.js).
function errorBox() { return el("p", { class: "error-text form-error", role: "alert" }); }
async function save(box, action, doneText) {
  const form = box.closest("form");
  if (form) clearFormErrors(form); else box.textContent = "";
  try {
    const result = await action();
    if (doneText) toast(doneText);
    return result;
  } catch (error) {
    if (form) showFormErrors(form, error); else box.textContent = errorText(error);
    return undefined;
  }
}

// ------------------------------------------------------------------ users
async function users(root) {
  [cache.users, cache.projects] = await Promise.all([api("GET", "/users"), api("GET", "/projects")]);
  const box = errorBox();
  const form = el("form", { id: "user-form", "aria-label": t("New user") },
    el("h3", {}, t("New user")),
    el("div", { class: "field-row" },
      field(t("Username"), input("username", "", { required: true, autocomplete: "off" })),
      field(t("Display name"), input("display_name")),
      field(t("Role"), select("role", [["agent", label("agent")], ["supervisor", label("supervisor")], ["admin", label("admin")]], "agent")),
      field(t("Language"), select("language", [["en", "English"], ["ru", "Русский"]], me.lang)),
      field(t("Password (10+ characters)"), input("password", "", { type: "password", required: true, minlength: "10", autocomplete: "new-password" }))),
    box, el("button", { type: "submit", class: "primary" }, t("Create user")));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = { username: f.username.value.trim(), display_name: f.display_name.value.trim(), role: f.role.value, language: f.language.value, password: f.password.value };
    if (await save(box, () => api("POST", "/users", body), t("User created"))) users(root);
  }));
  const rows = cache.users.map((u) => {
    const role = select("role", [["agent", label("agent")], ["supervisor", label("supervisor")], ["admin", label("admin")]], u.role, { "aria-label": t("Role of {name}", { name: u.username }) });
    const active = el("input", { type: "checkbox", checked: u.is_active, "aria-label": t("{name} is active", { name: u.username }) });
    const language = select("language", [["en", "English"], ["ru", "Русский"]], u.language, { "aria-label": t("Language of {name}", { name: u.username }) });
    return el("tr", {}, el("td", {}, u.username), el("td", {}, u.display_name), el("td", {}, role), el("td", {}, language), el("td", {}, active),
      el("td", {}, projectsText(u), " ", u.role === "admin" ? null
        : el("button", { type: "button", "aria-label": `${t("Change projects")}: ${u.username}`, onclick: () => projectsDialog(u, () => users(root)) }, t("Change projects"))),
      el("td", {}, el("button", { type: "button", onclick: busy(() => attempt(() => api("PATCH", `/users/${u.id}`, { role: role.value, is_active: active.checked, language: language.value }), t("User saved"))) }, t("Save")),
        " ", el("button", { type: "button", onclick: () => newToken(u) }, t("New API token")),
        u.id === me.user_id ? null : [" ", el("button", { type: "button", class: "reset-password", "aria-label": `${t("Reset password")}: ${u.username}`, onclick: () => passwordDialog(u) }, t("Reset password"))]));
  });
  clear(root, el("h2", {}, t("Users")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Username"), t("Display name"), t("Role"), t("Language"), t("Active"), t("Projects"), ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows)),
    form);
}

function projectsText(user) {
  if (user.project_ids === null || user.project_ids === undefined) return t("All projects");
  const names = new Map(cache.projects.map((p) => [p.id, p.name]));
  return user.project_ids.map((id) => names.get(id) || `#${id}`).join(", ");
}

// A user limited to some projects (a client team) sees only their queues and contacts live.
function projectsDialog(user, done) {
  const chosen = new Set(user.project_ids || []);
  const box = errorBox();
  const boxes = cache.projects.map((p) => el("label", { class: "inline" },
    el("input", { type: "checkbox", name: "project", value: String(p.id), checked: chosen.has(p.id) }), p.name));
  const form = el("form", {},
    el("fieldset", {}, el("legend", {}, t("Projects")),
      el("p", { class: "muted small" }, t("Tick the projects this user works for; with none ticked, the user sees all projects.")), ...boxes),
    box,
    el("div", { class: "field-row" },
      el("button", { type: "submit", class: "primary" }, t("Save")),
      el("button", { type: "button", onclick: () => dialog.close() }, t("Close"))));
  const dialog = el("dialog", { "aria-labelledby": "projects-title" },
    el("h2", { id: "projects-title" }, t("Projects of {name}", { name: user.username })), form);
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const ids = [...form.querySelectorAll("input[name=project]:checked")].map((c) => Number(c.value));
    if (await save(box, () => api("PUT", `/users/${user.id}/projects`, { project_ids: ids.length ? ids : null }), t("Projects saved"))) {
      dialog.close();
      done();
    }
  }));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

// An administrator sets another user's password (their browser sessions end; audited).
function passwordDialog(user) {
  const box = errorBox();
  const form = el("form", {},
    field(t("New password (10+ characters)"), input("new_password", "", { type: "password", required: true, minlength: "10", autocomplete: "new-password" })),
    box,
    el("div", { class: "field-row" },
      el("button", { type: "submit", class: "primary" }, t("Set password")),
      el("button", { type: "button", onclick: () => dialog.close() }, t("Close"))));
  const dialog = el("dialog", { class: "password-dialog", "aria-labelledby": "password-title" },
    el("h2", { id: "password-title" }, t("Reset the password of {name}", { name: user.username })), form);
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const body = { new_password: form.elements.new_password.value };
    if ((await save(box, () => api("POST", `/users/${user.id}/password`, body), t("Password changed"))) !== undefined) dialog.close();
  }));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

function newToken(user) {
  const dialog = el("dialog", { "aria-label": t("New API token for {name}", { name: user.username }) },
    el("h2", {}, t("New API token for {name}", { name: user.username })));
  const form = tokenForm(`/users/${user.id}/tokens`, () => dialog.close());
  dialog.append(form, el("form", { method: "dialog" }, el("button", {}, t("Close"))));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

function showSecret(secret) {
  const dialog = el("dialog", { "aria-labelledby": "secret-title" },
    el("h2", { id: "secret-title" }, t("API token (shown once)")),
    el("p", {}, t("Copy it now; only its fingerprint is stored.")),
    el("p", {}, el("code", { class: "secret" }, secret)),
    el("form", { method: "dialog" }, el("button", { class: "primary" }, t("Close"))));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

// ------------------------------------------------------------------ agents
async function agents(root, keepUserId = null) {
  const [list, queues] = await Promise.all([api("GET", "/agents"), api("GET", "/queues")]);
  cache.queues = queues;
  cache.users = await api("GET", "/users");
  const profiles = new Map(list.map((a) => [a.user_id, a]));
  const candidates = cache.users.filter((u) => u.is_active);
  const editor = el("div", {});
  const chosen = candidates.some((u) => u.id === keepUserId) ? keepUserId : candidates[0] && candidates[0].id;
  const picker = select("agent", candidates.map((u) => [u.id, `${u.display_name || u.username} (${u.username})${profiles.has(u.id) ? "" : ` — ${t("no profile yet")}`}`]), chosen, { id: "agent-picker" });
  picker.addEventListener("change", () => agentEditor(editor, Number(picker.value), profiles));
  clear(root, el("h2", {}, t("Agents")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Agent"), t("Skills"), t("Queues (tier)"), t("Capacity"), t("State")].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((a) => el("tr", {}, el("td", {}, a.display_name || a.username), el("td", {}, pairsText(a.skills) || "—"),
        el("td", {}, Object.entries(a.queues).map(([q, tier]) => `${queueName(Number(q))} (${tier})`).join(", ") || "—"),
        el("td", {}, pairsText(a.capacity)), el("td", {}, label(a.state)))))),
    el("h3", {}, t("Edit agent profile")), field(t("User"), picker), editor);
  if (candidates.length) agentEditor(editor, Number(picker.value), profiles);
}

function agentEditor(root, userId, profiles) {
  const p = profiles.get(userId) || { skills: {}, queues: {}, capacity: Object.fromEntries(CAPACITY_CHANNELS.map((c) => [c, c === "ticket" ? 3 : 1])), weight: 1 };
  const box = errorBox();
  const form = el("form", { "aria-label": t("Agent profile") },
    field(t("Skills (name=level 1–10, comma-separated)"), input("skills", pairsText(p.skills))),
    el("fieldset", {}, el("legend", {}, t("Queues and tiers (1 is offered first)")),
      el("div", { class: "field-row" }, cache.queues.map((q) => el("div", {},
        checkbox(`q-${q.id}`, q.id in p.queues || String(q.id) in p.queues, q.name),
        el("input", { type: "number", name: `tier-${q.id}`, min: "0", max: "100", value: String(p.queues[q.id] ?? p.queues[String(q.id)] ?? 1), style: "width:4rem", "aria-label": t("Tier in {queue}", { queue: q.name }) }))))),
    el("fieldset", {}, el("legend", {}, t("Capacity per channel (0: never offered)")),
      el("div", { class: "field-row" }, CAPACITY_CHANNELS.map((c) => field(label(c), el("input", { type: "number", name: `cap-${c}`, min: "0", max: "50", value: String(p.capacity[c] ?? 0), style: "width:5rem" }))))),
    field(t("Weight"), input("weight", String(p.weight), { type: "number", step: "0.1", min: "0.1" })),
    box, el("button", { type: "submit", class: "primary" }, t("Save profile")));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = {
      skills: parsePairs(f.skills.value),
      queues: Object.fromEntries(cache.queues.filter((q) => f[`q-${q.id}`].checked).map((q) => [q.id, Number(f[`tier-${q.id}`].value)])),
      capacity: Object.fromEntries(CAPACITY_CHANNELS.map((c) => [c, Number(f[`cap-${c}`].value)])),
      weight: Number(f.weight.value),
    };
    // Saved: the list shows the change and the editor stays on this agent.
    if (await save(box, () => api("PUT", `/agents/${userId}`, body), t("Profile saved"))) agents($("section-agents"), userId);
  }));
  clear(root, form);
}

// ------------------------------------------------------------------ queues
async function queues(root) {
  [cache.queues, cache.calendars, cache.projects] = await Promise.all([api("GET", "/queues"), api("GET", "/calendars"), api("GET", "/projects")]);
  const editor = el("div", { id: "queue-editor" });
  clear(root, el("h2", {}, t("Queues")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Name"), t("Strategy"), t("SL target"), t("Wrap-up"), t("Overflow"), ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, cache.queues.map((q) => el("tr", { "data-queue-id": String(q.id) }, el("td", {}, q.name), el("td", {}, label(q.settings.strategy)),
        el("td", {}, `${fmt.number(q.settings.sl_threshold_s)} s`), el("td", {}, `${fmt.number(q.settings.wrap_up_s)} s`),
        el("td", {}, q.settings.overflow_queue_id ? queueName(q.settings.overflow_queue_id) : "—"),
        el("td", {}, el("button", { type: "button", onclick: () => queueEditor(editor, q) }, t("Edit"))))))),
    el("p", {}, el("button", { type: "button", id: "new-queue", class: "primary", onclick: () => queueEditor(editor, null) }, t("New queue"))),
    editor);
}

function queueEditor(root, queue) {
  const s = (queue && queue.settings) || { strategy: "longest_idle", required_skills: {}, weight: 1, offer_timeout_s: 20, wrap_up_s: 0, sticky_s: 0, max_wait_s: null, max_length: null, overflow_queue_id: null, fallback_action: null, no_agents_action: "join", closed_action: "overflow", escalations: [], calendar_id: null, sl_threshold_s: 20, disposition_required: false };
  const box = errorBox();
  const actions = [["join", t("wait anyway")], ["refuse", t("refuse")], ["overflow", t("overflow")]];
  // Queues by name (the API gives queue_names for the ids it stores).
  const nameOf = (id) => (queue && queue.queue_names && queue.queue_names[id]) || queueName(id);
  const escalations = (s.escalations || []).map((x) => `${x.after_s}; ${x.relax_levels}; ${(x.add_queues || []).map(nameOf).join(", ")}`).join("\n");
  const form = el("form", { id: "queue-form", "aria-label": queue ? t("Edit queue {name}", { name: queue.name }) : t("New queue") },
    el("h3", {}, queue ? t("Edit queue {name}", { name: queue.name }) : t("New queue")),
    el("div", { class: "field-row" },
      field(t("Name"), input("name", queue ? queue.name : "", { required: true, id: "queue-name" })),
      field(t("Strategy"), select("strategy", STRATEGIES.map((x) => [x, label(x)]), s.strategy)),
      field(t("Project"), select("project_id", [["", t("(none)")], ...cache.projects.map((p) => [p.id, p.name])], queue && queue.project_id)),
      field(t("Required skills (name=level)"), input("required_skills", pairsText(s.required_skills)))),
    el("div", { class: "field-row" },
      field(t("SL target, s"), input("sl_threshold_s", s.sl_threshold_s, { type: "number", min: "1", step: "any", id: "queue-sl" })),
      field(t("Offer timeout, s"), input("offer_timeout_s", s.offer_timeout_s, { type: "number", min: "1", step: "any", id: "queue-offer-timeout" })),
      field(t("Wrap-up, s"), input("wrap_up_s", s.wrap_up_s, { type: "number", min: "0", step: "any", id: "queue-wrap-up" })),
      field(t("Sticky agent, s"), input("sticky_s", s.sticky_s, { type: "number", min: "0", step: "any" })),
      field(t("Weight"), input("weight", s.weight, { type: "number", min: "0.1", step: "any" }))),
    checkbox("disposition_required", s.disposition_required, t("A disposition is required at wrap-up")),
    el("div", { class: "field-row" },
      field(t("Max wait, s"), input("max_wait_s", s.max_wait_s, { type: "number", min: "0", step: "any" }), t("empty: no limit")),
      field(t("Max length"), input("max_length", s.max_length, { type: "number", min: "0" }), t("empty: no limit")),
      field(t("Overflow queue"), select("overflow_queue_id", queueOptions(true).filter(([id]) => !queue || id !== queue.id), s.overflow_queue_id)),
      field(t("Fallback"), select("fallback_action", [["", t("(none)")], ["voicemail", t("voicemail")], ["callback", t("callback")], ["ticket", t("ticket")], ["message_and_disconnect", t("message and disconnect")]], s.fallback_action))),
    el("div", { class: "field-row" },
      field(t("No agents signed in"), select("no_agents_action", actions, s.no_agents_action)),
      field(t("While closed"), select("closed_action", actions, s.closed_action)),
      field(t("Calendar"), select("calendar_id", [["", t("(always open)")], ...cache.calendars.map((c) => [c.id, c.name])], s.calendar_id))),
    field(t("Escalation steps"), el("textarea", { name: "escalations", rows: "2" }, escalations),
      t("One step per line: seconds; levels to relax; extra queues by name, comma-separated. Example: 60; 1; Billing, Sales")),
    box,
    el("p", {}, el("button", { type: "submit", class: "primary", id: "queue-save" }, queue ? t("Save queue") : t("Create queue"))));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    clearFormErrors(form);
    const unknown = [];
    const queueIdOf = (text) => {
      const found = cache.queues.find((q) => q.name.toLowerCase() === text.toLowerCase()) || cache.queues.find((q) => String(q.id) === text);
      if (!found) unknown.push(text);
      return found ? found.id : null;
    };
    const steps = f.escalations.value.split("\n").filter((l) => l.trim()).map((line) => {
      const [after, relax, add] = line.split(";").map((x) => (x || "").trim());
      return { after_s: Number(after), relax_levels: Number(relax || 0), add_queues: (add || "").split(",").map((x) => x.trim()).filter(Boolean).map(queueIdOf) };
    });
    if (unknown.length) {
      showFieldError(f.escalations, t("No queue named {names}", { names: unknown.join(", ") }));
      return;
    }
    const settings = {
      strategy: f.strategy.value, required_skills: parsePairs(f.required_skills.value), weight: Number(f.weight.value),
      offer_timeout_s: Number(f.offer_timeout_s.value), wrap_up_s: Number(f.wrap_up_s.value), sticky_s: Number(f.sticky_s.value),
      max_wait_s: num(f.max_wait_s.value), max_length: num(f.max_length.value), overflow_queue_id: num(f.overflow_queue_id.value),
      fallback_action: f.fallback_action.value || null, no_agents_action: f.no_agents_action.value, closed_action: f.closed_action.value,
      calendar_id: num(f.calendar_id.value), sl_threshold_s: Number(f.sl_threshold_s.value), disposition_required: f.disposition_required.checked,
      escalations: steps,
    };
    const body = { name: f.name.value.trim(), project_id: num(f.project_id.value), settings };
    const done = await save(box, () => (queue ? api("PATCH", `/queues/${queue.id}`, body) : api("POST", "/queues", body)), queue ? t("Queue saved") : t("Queue created"));
    if (done) queues($("section-queues"));
  }));
  clear(root, form);
  form.elements.name.focus();
}

// ------------------------------------------------------------------ entry points and rules
async function entryPoints(root) {
  const [list, qs, agentList] = await Promise.all([api("GET", "/entry-points"), api("GET", "/queues"), api("GET", "/agents")]);
  cache.queues = qs;
  // The queues some agent serves: a rule to any other queue sends contacts where nobody answers.
  cache.members = new Set(agentList.flatMap((a) => Object.keys(a.queues).map(Number)));
  cache.projects = await api("GET", "/projects");
  const editor = el("div", { id: "entry-editor" });
  clear(root, el("h2", {}, t("Entry points and routing rules")),
    el("p", { class: "muted small" }, t("The first rule that matches picks the queue; otherwise the default queue does.")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Name"), t("Channel"), t("Address"), t("Default queue"), t("Rules"), ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((ep) => el("tr", { "data-entry-id": String(ep.id) }, el("td", {}, ep.name), el("td", {}, label(ep.channel)), el("td", {}, ep.address),
        el("td", {}, queueName(ep.default_queue_id)), el("td", { class: "num" }, String(ep.rules.length)),
        el("td", {}, el("button", { type: "button", class: "edit-entry", onclick: () => entryEditor(editor, ep) }, t("Edit"))))))),
    el("p", {}, el("button", { type: "button", class: "primary", onclick: () => entryEditor(editor, null) }, t("New entry point"))),
    editor);
}

const withoutMembers = (id) => id !== null && !Number.isNaN(id) && !cache.members.has(id);

function ruleRow(rule, onChange = () => {}) {
  const queue = select("rule-queue", queueOptions(false), rule ? rule.queue_id : cache.queues[0] && cache.queues[0].id, { class: "rule-queue", "aria-label": t("Queue for this rule") });
  const warning = el("span", { class: "badge status-warn rule-warning", role: "status" }, t("No agents in this queue"));
  const show = () => warning.classList.toggle("hidden", !withoutMembers(num(queue.value)));
  queue.addEventListener("change", () => { show(); onChange(); });
  const row = el("div", { class: "rule-row" },
    el("input", { class: "rule-text", name: "rule", value: rule ? rule.rule : "", "aria-label": t("Rule"), placeholder: 'subject contains "…"' }),
    queue, warning,
    el("button", { type: "button", onclick: () => { row.remove(); onChange(); } }, t("Remove")));
  show();
  return row;
}

/** The queues an entry point sends contacts to (default and rules) that no agent serves. */
function queuesWithoutMembers(form) {
  const ids = [num(form.elements.default_queue_id.value), ...[...form.querySelectorAll(".rule-queue")].map((s) => num(s.value))];
  return [...new Set(ids.filter(withoutMembers))];
}

function entryEditor(root, ep) {
  const box = errorBox();
  const membersWarning = el("p", { class: "warning-text members-warning", role: "status" });
  const checkMembers = () => {
    const empty = queuesWithoutMembers(form);
    membersWarning.classList.toggle("hidden", !empty.length);
    membersWarning.textContent = empty.length
      ? t("No agent serves {queues}: contacts sent there wait with nobody to answer them. Add agents to the queue (Agents) or pick another.", { queues: empty.map(queueName).join(", ") })
      : "";
  };
  const rules = el("div", { class: "rules" }, (ep ? ep.rules : []).map((rule) => ruleRow(rule, checkMembers)));
  const settings = el("div", { class: "channel-settings" });
  const form = el("form", { id: "entry-form", "aria-label": ep ? t("Edit entry point {name}", { name: ep.name }) : t("New entry point") },
    el("h3", {}, ep ? t("Edit entry point {name}", { name: ep.name }) : t("New entry point")),
    el("div", { class: "field-row" },
      field(t("Name"), input("name", ep ? ep.name : "", { required: true })),
      field(t("Channel"), select("channel", CHANNELS.map((c) => [c, label(c)]), ep ? ep.channel : "webform")),
      field(t("Address"), input("address", ep ? ep.address : "", { required: true }), t("number, address, widget or form id")),
      field(t("Default queue"), select("default_queue_id", queueOptions(true), ep && ep.default_queue_id)),
      field(t("Priority"), input("priority", ep ? ep.priority : 0, { type: "number", min: "-100", max: "100" }))),
    settings,
    el("h4", {}, t("Rules")), rules,
    el("p", {}, el("button", { type: "button", id: "add-rule", onclick: () => { rules.append(ruleRow(null, checkMembers)); checkMembers(); } }, t("Add rule"))),
    membersWarning, box,
    el("p", {}, el("button", { type: "submit", class: "primary", id: "entry-save" }, t("Save entry point"))));
  form.elements.default_queue_id.addEventListener("change", checkMembers);
  checkMembers();
  const showSettings = () => channelSettings(settings, ep, form.elements.channel.value);
  form.elements.channel.addEventListener("change", showSettings);
  showSettings();
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = {
      name: f.name.value.trim(), channel: f.channel.value, address: f.address.value.trim(),
      default_queue_id: num(f.default_queue_id.value), priority: Number(f.priority.value || 0),
      project_id: ep ? ep.project_id : null,
      rules: [...rules.querySelectorAll(".rule-row")].map((r) => ({ rule: r.querySelector(".rule-text").value.trim(), queue_id: Number(r.querySelector(".rule-queue").value) })).filter((r) => r.rule),
    };
    // Every settings block the entry point has goes back as it was (a PUT without one would drop it);
    // the one edited here replaces its own. Secrets come back null from the API and stay stored.
    for (const block of SETTINGS_BLOCKS) if (ep && ep[block]) body[block] = ep[block];
    const edited = settings.querySelector("textarea[data-json-block]");
    if (edited) {
      const text = edited.value.trim();
      let value = null;
      try { value = text ? JSON.parse(text) : null; } catch (err) {
        clearFormErrors(form);
        showFieldError(edited, t("Not valid JSON: {error}", { error: err.message }));
        edited.focus();
        return;
      }
      if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
        clearFormErrors(form);
        showFieldError(edited, t("The settings are one JSON object, in braces"));
        edited.focus();
        return;
      }
      body[edited.name] = value;
    }
    const saved = await save(box, () => (ep ? api("PUT", `/entry-points/${ep.id}`, body) : api("POST", "/entry-points", body)));
    if (saved) {
      await entryPoints($("section-entry-points"));
      entryEditor($("entry-editor"), saved);
      toast(t("Entry point saved"));
    }
  }));
  clear(root, form, ep ? testBox(ep) : null, ep && ep.channel === "webform" ? webFormBox(ep) : null);
}

/** The public web form of a web form entry point: origins, captcha, key, and the snippet to paste. */
function webFormBox(ep) {
  const root = el("section", { class: "web-form", "aria-label": t("Public web form") });
  const render = (wf) => {
    const box = errorBox();
    const form = el("form", { id: "web-form-settings", "aria-label": t("Public web form") },
      el("h3", {}, t("Public web form")),
      el("p", { class: "muted small" }, t("A website's contact form posts here without a user token. Only the pages of these sites may post (one per line, such as https://shop.example).")),
      field(t("Allowed sites"), el("textarea", { name: "origins", rows: "3" }, wf ? wf.allowed_origins.join("\n") : "")),
      checkbox("enabled", wf ? wf.enabled : true, t("Accepts submissions")), " ",
      checkbox("captcha", wf ? wf.captcha : false, t("Ask for a captcha")),
      box, el("p", {}, el("button", { type: "submit", class: "primary" }, wf ? t("Save web form") : t("Create web form"))));
    form.addEventListener("submit", busy(async (e) => {
      e.preventDefault();
      const f = form.elements;
      const body = { allowed_origins: f.origins.value.split(/\s+/).filter(Boolean), enabled: f.enabled.checked, captcha: f.captcha.checked };
      const saved = await save(box, () => api("PUT", `/entry-points/${ep.id}/web-form`, body), t("Web form saved"));
      if (saved) render(saved);
    }));
    const parts = [form];
    if (wf) {
      parts.push(el("p", {}, t("Public key"), " ", el("code", { class: "public-key" }, wf.public_key), " ",
        el("button", { type: "button", onclick: busy(async () => {
          if (!window.confirm(t("Pages with the old key stop working. Make a new key?"))) return;
          const renewed = await attempt(() => api("POST", `/entry-points/${ep.id}/web-form/new-key`));
          if (renewed) render(renewed);
        }) }, t("New key"))));
      const snippet = el("textarea", { class: "snippet", readonly: true, rows: "12", "aria-label": t("HTML to paste into your site") }, wf.html_snippet);
      parts.push(el("h4", {}, t("HTML to paste into your site")), snippet,
        el("p", {}, el("button", { type: "button", onclick: async () => { await navigator.clipboard.writeText(wf.html_snippet); toast(t("Copied")); } }, t("Copy"))));
    }
    clear(root, ...parts);
  };
  api("GET", `/entry-points/${ep.id}/web-form`).then(render, () => render(null));
  return root;
}

// The channel's own settings block of an entry point (EntryPointIn: email, chat, sms, telegram), and
// the docs page that lists its settings. A web form is answered by email (its email block).
const SETTINGS_BLOCKS = ["email", "chat", "sms", "telegram"];
const BLOCK_OF = { email: "email", webform: "email", chat: "chat", sms: "sms", messenger: "telegram" };
const BLOCK_DOCS = { email: "docs/outbox.md, docs/email.md", chat: "docs/chat.md", sms: "docs/sms.md", telegram: "docs/telegram.md" };

/** The editor of the channel's settings block, as JSON: every setting of docs/<channel>.md. */
function channelSettings(root, ep, channel) {
  const block = BLOCK_OF[channel];
  if (!block) { clear(root); return; }
  const current = ep && ep[block] ? ep[block] : null;
  const stored = ep ? (ep.secrets_set || []).filter((name) => name.startsWith(`${block}.`)) : [];
  const area = el("textarea", { name: block, rows: "8", spellcheck: "false", class: "json-block",
    placeholder: "{ }" }, current ? JSON.stringify(current, null, 2) : "");
  area.dataset.jsonBlock = "true";
  clear(root,
    el("h4", {}, t("Channel settings ({block})", { block })),
    field(t("Settings (JSON)"), area,
      t("The settings listed in {docs}. Secrets (passwords, tokens) are never shown: leave them null to keep the stored ones.", { docs: BLOCK_DOCS[block] })),
    stored.length ? el("p", { class: "muted small secrets-set" }, t("Stored secrets: {names}", { names: stored.join(", ") })) : null);
}

function testBox(ep) {
  const result = el("p", { class: "test-result", role: "status" });
  const form = el("form", { id: "rule-test", "aria-label": t("Test the rules with a sample contact") },
    el("h3", {}, t("Test the rules with a sample contact")),
    el("div", { class: "field-row" },
      field(t("Subject"), input("subject", "", { id: "test-subject" })),
      field(t("Body"), input("body")),
      field(t("Phone"), input("phone")),
      field(t("Email"), input("email", "", { type: "email" }))),
    el("button", { type: "submit" }, t("Test")), result);
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = { entry_point_id: ep.id, channel: ep.channel, subject: f.subject.value, body: f.body.value,
      customer: { phone: f.phone.value || null, email: f.email.value || null } };
    try {
      const r = await api("POST", `/entry-points/${ep.id}/test`, body);
      result.textContent = r.queue_id === null ? t("No rule matches and there is no default queue: the contact would be refused.")
        : r.matched_rule === null ? t("No rule matches: the default queue {queue}.", { queue: queueName(r.queue_id) })
          : t("Rule {n} matches: queue {queue}.", { n: r.matched_rule + 1, queue: queueName(r.queue_id) });
    } catch (error) { result.textContent = errorText(error); }
  }));
  return form;
}

// ------------------------------------------------------------------ calendars
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
async function calendars(root) {
  cache.calendars = await api("GET", "/calendars");
  const editor = el("div", {});
  clear(root, el("h2", {}, t("Calendars and holidays")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Name"), t("Time zone"), t("Open now"), ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, cache.calendars.map((c) => el("tr", {}, el("td", {}, c.name), el("td", {}, c.time_zone),
        el("td", {}, el("span", { class: `badge ${c.open_now ? "status-ok" : "status-bad"}` }, c.open_now ? t("Open now") : t("Closed now"))),
        el("td", {}, el("button", { type: "button", onclick: () => calendarEditor(editor, c) }, t("Edit"))))))),
    el("p", {}, el("button", { type: "button", class: "primary", onclick: () => calendarEditor(editor, null) }, t("New calendar"))), editor);
}

function calendarEditor(root, cal) {
  const box = errorBox();
  const c = cal || { name: "", time_zone: "Europe/Moscow", weekly: { mon: ["09:00-18:00"], tue: ["09:00-18:00"], wed: ["09:00-18:00"], thu: ["09:00-18:00"], fri: ["09:00-18:00"] }, holidays: [], special_days: {} };
  const form = el("form", { "aria-label": t("Calendar") },
    el("div", { class: "field-row" }, field(t("Name"), input("name", c.name, { required: true })), field(t("Time zone"), input("time_zone", c.time_zone, { required: true }))),
    el("fieldset", {}, el("legend", {}, t("Weekly hours (e.g. 09:00-13:00, 14:00-18:00; empty: closed)")),
      el("div", { class: "field-row" }, DAYS.map((d) => field(label(d), input(`day-${d}`, (c.weekly[d] || []).join(", ")))))),
    field(t("Holidays (one date per line, YYYY-MM-DD)"), el("textarea", { name: "holidays" }, (c.holidays || []).join("\n"))),
    field(t("Special days (date = hours, one per line)"), el("textarea", { name: "special" }, Object.entries(c.special_days || {}).map(([d, h]) => `${d} = ${h.join(", ")}`).join("\n"))),
    box, el("button", { type: "submit", class: "primary" }, t("Save calendar")));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const split = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
    const body = {
      name: f.name.value.trim(), time_zone: f.time_zone.value.trim(),
      weekly: Object.fromEntries(DAYS.map((d) => [d, split(f[`day-${d}`].value)]).filter(([, v]) => v.length)),
      holidays: f.holidays.value.split("\n").map((x) => x.trim()).filter(Boolean),
      special_days: Object.fromEntries(f.special.value.split("\n").filter((x) => x.includes("=")).map((x) => { const [d, h] = x.split("="); return [d.trim(), split(h)]; })),
    };
    if (await save(box, () => (cal ? api("PUT", `/calendars/${cal.id}`, body) : api("POST", "/calendars", body)), t("Calendar saved"))) calendars($("section-calendars"));
  }));
  clear(root, form);
}

// ------------------------------------------------------------------ codes
async function codes(root) {
  const [dispositions, reasons] = await Promise.all([api("GET", "/codes/dispositions"), api("GET", "/codes/not-ready-reasons")]);
  clear(root, el("h2", {}, t("Disposition codes and not-ready reasons")),
    codeList("dispositions", t("Disposition codes"), dispositions, root),
    codeList("not-ready-reasons", t("Not-ready reasons"), reasons, root));
}

// A code has a name per language (the API's ``names``); ``name`` is kept as the fallback for a language
// without its own, the English one when given.
const LANGUAGES = [["en", "English"], ["ru", "Русский"]];
function codeList(kind, title, items, root) {
  const box = errorBox();
  const form = el("form", { "aria-label": t("Add or change: {what}", { what: title }) },
    el("div", { class: "field-row" }, field(t("Code (a-z, 0-9, _ -)"), input("code", "", { required: true, pattern: "[a-z0-9_\\-]+" })),
      LANGUAGES.map(([lang, language]) => field(t("Name ({language})", { language }), input(`name_${lang}`, "", { maxlength: "200" }))),
      checkbox("active", true, t("Active")),
      el("div", {}, el("button", { type: "submit", class: "primary" }, t("Save")))), box);
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const names = Object.fromEntries(LANGUAGES.map(([lang]) => [lang, f[`name_${lang}`].value.trim()]).filter(([, name]) => name));
    if (!Object.keys(names).length) {
      showFieldError(f.name_en, t("Give a name in at least one language"));
      return;
    }
    const body = { code: f.code.value.trim(), name: names.en || names.ru, names, active: f.active.checked };
    if (await save(box, () => api("PUT", `/codes/${kind}`, body), t("Saved"))) codes(root);
  }));
  const nameIn = (c, lang) => (c.names && c.names[lang]) || "";
  const edit = (c) => {
    form.elements.code.value = c.code;
    for (const [lang] of LANGUAGES) form.elements[`name_${lang}`].value = nameIn(c, lang) || (lang === "en" ? c.name : "");
    form.elements.active.checked = c.active;
    form.elements.name_en.focus();
  };
  return el("section", {}, el("h3", {}, title),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Code"), ...LANGUAGES.map(([, language]) => t("Name ({language})", { language })), t("Active"), ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, items.map((c) => el("tr", {}, el("td", {}, el("code", {}, c.code)),
        LANGUAGES.map(([lang]) => el("td", {}, nameIn(c, lang) || el("span", { class: "muted" }, c.name))),
        el("td", {}, c.active ? t("yes") : t("no")),
        el("td", {}, el("button", { type: "button", onclick: () => edit(c) }, t("Edit"))))))),
    form);
}

// ------------------------------------------------------------------ projects
async function projects(root) {
  const list = await api("GET", "/projects");
  const box = errorBox();
  const form = el("form", { "aria-label": t("New project") },
    el("div", { class: "field-row" }, field(t("Code (a-z, 0-9, _ -)"), input("code", "", { required: true })), field(t("Name"), input("name", "", { required: true })),
      el("div", {}, el("button", { type: "submit", class: "primary" }, t("Create project")))), box);
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    if (await save(box, () => api("POST", "/projects", { code: form.elements.code.value.trim(), name: form.elements.name.value.trim() }), t("Project created"))) projects(root);
  }));
  clear(root, el("h2", {}, t("Projects")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Code"), t("Name")].map((h) => el("th", {}, h)))),
      el("tbody", {}, list.map((p) => el("tr", {}, el("td", {}, el("code", {}, p.code)), el("td", {}, p.name))))), form);
}

// ------------------------------------------------------------------ tokens
// The scopes a token may have (domain/permissions.py); "admin": its owner's full rights.
const SCOPES = ["contacts:create", "crm:read", "crm:write", "tickets:read", "tickets:write", "reports:read", "webhooks:manage", "admin"];
const scopeHints = () => ({
  "contacts:create": t("send contacts in (a website's form, a shop)"),
  "crm:read": t("read customers, companies, contacts and deals"),
  "crm:write": t("change customers, companies, contacts and deals"),
  "tickets:read": t("read tickets"),
  "tickets:write": t("change tickets"),
  "reports:read": t("read reports and statistics"),
  "webhooks:manage": t("manage webhooks"),
  admin: t("everything its user may do"),
});

/** A token's form: name, scopes, expiry and projects; the secret is shown once after it is made. */
function tokenForm(path, done) {
  const hints = scopeHints();
  const scopes = el("fieldset", { class: "token-scopes" }, el("legend", {}, t("Scopes")),
    SCOPES.map((scope) => el("div", {}, checkbox(`scope-${scope}`, false, `${scope} — ${hints[scope]}`))));
  const projectBoxes = cache.projects.length
    ? el("fieldset", { class: "token-projects" }, el("legend", {}, t("Only these projects (none ticked: the user's)")),
      cache.projects.map((p) => el("div", {}, checkbox(`project-${p.id}`, false, p.name))))
    : null;
  const box = errorBox();
  const form = el("form", { "aria-label": t("New API token") },
    el("div", { class: "field-row" }, field(t("What is the token for?"), input("name", "", { required: true })),
      field(t("Expires (empty: never)"), input("expires", "", { type: "date" }))),
    scopes, projectBoxes, box,
    el("div", {}, el("button", { type: "submit", class: "primary" }, t("Create token"))));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const chosen = SCOPES.filter((scope) => f[`scope-${scope}`].checked);
    if (!chosen.length) { box.textContent = t("Tick at least one scope"); return; }
    const projectIds = cache.projects.filter((p) => f[`project-${p.id}`] && f[`project-${p.id}`].checked).map((p) => p.id);
    const body = { name: f.name.value.trim(), scopes: chosen, project_ids: projectIds.length ? projectIds : null,
      expires_at: f.expires.value ? new Date(`${f.expires.value}T23:59:59`).toISOString() : null };
    const created = await save(box, () => api("POST", path, body));
    if (created) { showSecret(created.token); done(); }
  }));
  return form;
}

function tokenTable(list, root, withOwner) {
  const head = [t("Name"), ...(withOwner ? [t("User")] : []), t("Prefix"), t("Scopes"), t("Expires"), t("Created"), t("Last used"), t("Revoked"), ""];
  return el("table", { class: "token-list" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
    el("tbody", {}, list.map((k) => el("tr", { "data-token-id": String(k.id) }, el("td", {}, k.name), withOwner ? el("td", {}, k.username || "") : null,
      el("td", {}, el("code", {}, k.prefix)), el("td", { class: "small" }, (k.scopes || []).join(", ")),
      el("td", {}, k.expires_at ? fmt.dateTime(k.expires_at) : "—"), el("td", {}, fmt.dateTime(k.created_at)),
      el("td", {}, fmt.dateTime(k.last_used_at)), el("td", {}, k.revoked_at ? fmt.dateTime(k.revoked_at) : "—"),
      el("td", {}, k.revoked_at ? null : el("button", { type: "button", class: "danger", onclick: busy(async () => {
        if (window.confirm(t("Revoke this token?")) && (await attempt(() => api("DELETE", `/tokens/${k.id}`), t("Token revoked"))) !== undefined) tokens(root);
      }) }, t("Revoke")))))));
}

async function tokens(root) {
  const [list, everyone, projectList] = await Promise.all([api("GET", "/me/tokens"), api("GET", "/tokens"), api("GET", "/projects")]);
  cache.projects = projectList;
  const form = tokenForm("/me/tokens", () => tokens(root));
  form.elements["scope-admin"].checked = true;
  clear(root, el("h2", {}, t("My API tokens")),
    el("p", { class: "muted small" }, t("Tokens for other users: Users → New API token. A token acts with its user's role.")),
    el("p", { class: "muted small" }, t("A token acts with its user's role, only within its scopes: give an integration the narrowest (a website's form: contacts:create).")),
    tokenTable(list, root, false), form,
    el("h3", {}, t("All API tokens")), tokenTable(everyone, root, true));
}

// ------------------------------------------------------------------ audit
async function audit(root, cursor = null, action = "") {
  const params = new URLSearchParams({ limit: "50" });
  if (cursor) params.set("cursor", cursor);
  if (action) params.set("action", action);
  const page = await api("GET", `/audit?${params}`);
  const filter = el("form", { role: "search", "aria-label": t("Filter the audit log") },
    el("div", { class: "field-row" }, field(t("Action (e.g. user.create)"), input("action", action)), el("div", {}, el("button", { type: "submit" }, t("Filter")))));
  filter.addEventListener("submit", (e) => { e.preventDefault(); audit(root, null, filter.elements.action.value.trim()); });
  const userName = new Map(cache.users.map((u) => [u.id, u.username]));
  clear(root, el("h2", {}, t("Audit log")), filter,
    el("table", {}, el("thead", {}, el("tr", {}, [t("When"), t("Who"), t("Action"), t("Object"), t("Details")].map((h) => el("th", {}, h)))),
      el("tbody", {}, page.items.map((a) => el("tr", {}, el("td", {}, fmt.dateTime(a.at)), el("td", {}, a.actor_id ? userName.get(a.actor_id) || `#${a.actor_id}` : t("system")),
        el("td", {}, el("code", {}, a.action)), el("td", {}, `${a.object_type || ""} ${a.object_id || ""}`),
        el("td", { class: "small" }, JSON.stringify(a.details || {})))))),
    page.next_cursor ? el("p", {}, el("button", { type: "button", onclick: () => audit(root, page.next_cursor, action) }, t("Older entries"))) : null);
}

// ------------------------------------------------------------------ webhooks and integrations
// Outgoing webhooks (docs/webhooks.md): subscriptions, their deliveries with the log of each HTTP
// attempt, replay; the screen-pop lookup endpoints (docs/integrations.md).
function showWebhookSecret(title, secret, note) {
  const dialog = el("dialog", { "aria-labelledby": "webhook-secret-title" },
    el("h2", { id: "webhook-secret-title" }, title),
    el("p", {}, t("The receiver verifies each request's webhook-signature with this secret.")),
    el("p", {}, el("code", { class: "secret" }, secret)),
    note ? el("p", { class: "muted small" }, note) : null,
    el("form", { method: "dialog" }, el("button", { class: "primary" }, t("Close"))));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
}

async function webhooks(root) {
  const [list, types, projectList, screenPop] = await Promise.all([
    api("GET", "/webhooks"), api("GET", "/webhooks/event-types"), api("GET", "/projects"), api("GET", "/integrations/screen-pop"),
  ]);
  cache.projects = projectList;
  const projectName = (id) => (id === null || id === undefined ? t("All projects") : (projectList.find((p) => p.id === id) || {}).name || `#${id}`);
  const projectOptions = [["", t("All projects")], ...projectList.map((p) => [p.id, p.name])];
  const box = errorBox();
  const typeBoxes = types.map((e) => el("label", { class: "inline", title: e.description },
    el("input", { type: "checkbox", name: "event_type", value: e.type }), el("code", {}, e.type)));
  const form = el("form", { id: "webhook-form", "aria-label": t("New webhook") },
    el("h3", {}, t("New webhook")),
    el("div", { class: "field-row" },
      field(t("Name"), input("name", "", { required: true })),
      field(t("URL"), el("input", { name: "url", type: "url", required: true, maxlength: "2000", placeholder: "https://erp.example/hooks/frontoffice" })),
      field(t("Project"), select("project_id", projectOptions, ""))),
    el("fieldset", {}, el("legend", {}, t("Events")), ...typeBoxes),
    box, el("button", { type: "submit", class: "primary" }, t("Create webhook")));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = {
      name: f.name.value.trim(), url: f.url.value.trim(), project_id: num(f.project_id.value),
      event_types: [...form.querySelectorAll("input[name=event_type]:checked")].map((c) => c.value),
    };
    const created = await save(box, () => api("POST", "/webhooks", body), t("Webhook created"));
    if (created) { showWebhookSecret(t("Signing secret of {name}", { name: created.name }), created.secret); webhooks(root); }
  }));
  const rows = list.map((w) => el("tr", {},
    el("td", {}, w.name), el("td", { class: "small" }, el("code", {}, w.url)),
    el("td", { class: "small" }, w.event_types.join(", ")), el("td", {}, projectName(w.project_id)),
    el("td", {}, w.enabled ? t("Enabled") : el("span", { class: "error-text" }, t("Disabled"), w.disabled_reason ? `: ${w.disabled_reason}` : "")),
    el("td", {},
      el("button", { type: "button", onclick: busy(async () => {
        if ((await attempt(() => api("PATCH", `/webhooks/${w.id}`, { enabled: !w.enabled }), w.enabled ? t("Webhook disabled") : t("Webhook enabled"))) !== undefined) webhooks(root);
      }) }, w.enabled ? t("Disable") : t("Enable")),
      " ", el("button", { type: "button", disabled: !w.enabled, onclick: busy(() => attempt(() => api("POST", `/webhooks/${w.id}/test`), t("Test event queued"))) }, t("Send a test event")),
      " ", el("button", { type: "button", onclick: () => deliveriesDialog(w) }, t("Deliveries")),
      " ", el("button", { type: "button", onclick: busy(async () => {
        const secret = await attempt(() => api("GET", `/webhooks/${w.id}/secret`));
        if (secret) showWebhookSecret(t("Signing secret of {name}", { name: w.name }), secret.secret);
      }) }, t("Show secret")),
      " ", el("button", { type: "button", onclick: busy(async () => {
        if (!window.confirm(t("Rotate the secret? The old one keeps signing for 24 hours."))) return;
        const secret = await attempt(() => api("POST", `/webhooks/${w.id}/rotate-secret`, { overlap_hours: 24 }), t("Secret rotated"));
        if (secret) { showWebhookSecret(t("New signing secret of {name}", { name: w.name }), secret.secret, t("Both secrets sign until {when}.", { when: fmt.dateTime(secret.previous_secret_until) })); webhooks(root); }
      }) }, t("Rotate secret")),
      " ", el("button", { type: "button", class: "danger", onclick: busy(async () => {
        if (window.confirm(t("Delete this webhook?")) && (await attempt(() => api("DELETE", `/webhooks/${w.id}`), t("Webhook deleted"))) !== undefined) webhooks(root);
      }) }, t("Delete")))));
  clear(root, el("h2", {}, t("Webhooks")),
    el("p", { class: "muted small" }, t("Events are signed (Standard Webhooks), retried for 24 hours and delivered in order per object; a webhook that fails for a day is disabled.")),
    list.length
      ? el("table", {}, el("thead", {}, el("tr", {}, [t("Name"), t("URL"), t("Events"), t("Project"), t("State"), ""].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
      : el("p", { class: "muted" }, t("No webhooks yet.")),
    form, screenPopForm(screenPop, projectOptions, () => webhooks(root)));
}

const PENDING_REFRESH_MS = 2000;

function deliveriesDialog(w) {
  const body = el("div");
  const dialog = el("dialog", { "aria-labelledby": "deliveries-title", class: "wide" },
    el("h2", { id: "deliveries-title" }, t("Deliveries of {name}", { name: w.name })), body,
    el("form", { method: "dialog" }, el("button", { class: "primary" }, t("Close"))));
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  dialog.showModal();
  const since = el("input", { type: "datetime-local", name: "since", required: true });
  const replayForm = el("form", { "aria-label": t("Replay failed deliveries") },
    el("div", { class: "field-row" }, field(t("Replay failed deliveries since"), since),
      el("div", {}, el("button", { type: "submit" }, t("Replay")))));
  replayForm.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const done = await attempt(() => api("POST", `/webhooks/${w.id}/replay`, { since: new Date(since.value).toISOString() }));
    if (done) { toast(t("{count} deliveries queued again", { count: done.queued })); load(); }
  }));
  // While a delivery is on its way the list refreshes itself (every PENDING_REFRESH_MS), until the dialog closes.
  let timer = null;
  dialog.addEventListener("close", () => clearTimeout(timer));
  async function load() {
    clearTimeout(timer);
    const page = await attempt(() => api("GET", `/webhooks/${w.id}/deliveries?limit=100`));
    if (!page || !dialog.open) return;
    if (page.items.some((d) => d.state === "queued" || d.state === "sending")) timer = setTimeout(load, PENDING_REFRESH_MS);
    clear(body, replayForm,
      el("table", {}, el("thead", {}, el("tr", {}, [t("Created"), t("Event"), t("State"), t("Attempts"), t("Last error"), ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, page.items.map((d) => el("tr", {},
          el("td", {}, fmt.dateTime(d.created_at)), el("td", {}, el("code", {}, d.event_type)), el("td", {}, d.state),
          el("td", {}, String(d.attempts)), el("td", { class: "small" }, d.last_error || "—"),
          el("td", {},
            el("button", { type: "button", onclick: () => { clearTimeout(timer); attemptsOf(w, d, body, load); } }, t("Log")),
            " ", el("button", { type: "button", disabled: !w.enabled, onclick: busy(async () => {
              if ((await attempt(() => api("POST", `/webhooks/${w.id}/deliveries/${d.id}/replay`), t("Delivery queued again"))) !== undefined) load();
            }) }, t("Replay"))))))));
  }
  load();
}

async function attemptsOf(w, delivery, body, back) {
  const page = await attempt(() => api("GET", `/webhooks/${w.id}/attempts?delivery_id=${delivery.id}&limit=50`));
  if (!page) return;
  clear(body, el("button", { type: "button", onclick: back }, t("Back to deliveries")),
    page.items.map((a) => el("details", {},
      el("summary", {}, `${fmt.dateTime(a.at)} · #${a.attempt} · ${a.response_status ?? "—"} · ${a.duration_ms} ms${a.error ? ` · ${a.error}` : ""}`),
      el("h4", {}, t("Request")), el("pre", { class: "small" }, JSON.stringify(a.request_headers, null, 2), "\n\n", a.request_body),
      el("h4", {}, t("Response")), el("pre", { class: "small" }, JSON.stringify(a.response_headers, null, 2), "\n\n", a.response_body))));
}

function screenPopForm(config, projectOptions, done) {
  const box = errorBox();
  const current = (projectId) => (projectId === "" ? config.default : config.projects[projectId]) || {};
  const project = select("project_id", projectOptions, "");
  const url = el("input", { name: "url", type: "text", maxlength: "2000", placeholder: "https://erp.example/api/customers?phone={phone}" });
  const header = el("input", { name: "auth_header", type: "text", maxlength: "2000", placeholder: "Authorization: Bearer …", autocomplete: "off" });
  const identity = select("identity", [["phone", label("phone")], ["email", label("email")]], "phone");
  const fill = () => { const c = current(project.value); url.value = c.url || ""; header.value = ""; header.placeholder = c.auth_header || "Authorization: Bearer …"; identity.value = c.identity || "phone"; };
  project.addEventListener("change", fill);
  fill();
  const form = el("form", { id: "screen-pop-form", "aria-label": t("Screen-pop lookup") },
    el("h3", {}, t("Screen-pop lookup")),
    el("p", { class: "muted small" }, t("When a contact is offered, this address is asked about the customer (1 second at most); the answer shows on the card. Empty URL: off.")),
    el("div", { class: "field-row" }, field(t("Project"), project), field(t("URL"), url), field(t("Header"), header), field(t("Identity"), identity)),
    box, el("button", { type: "submit", class: "primary" }, t("Save")));
  form.addEventListener("submit", busy(async (e) => {
    e.preventDefault();
    const body = { project_id: num(project.value), url: url.value.trim(), auth_header: header.value.trim(), identity: identity.value };
    if (await save(box, () => api("PUT", "/integrations/screen-pop", body), t("Saved"))) done();
  }));
  return form;
}

// ------------------------------------------------------------------ jobs
// Background jobs (imports, exports, personal data exports, the retention sweep) with their progress;
// the list refreshes itself while a job is queued or running and the section is open.
let jobsTimer = null;
const JOB_REFRESH_MS = 2000;
async function jobs(root) {
  window.clearTimeout(jobsTimer);
  const page = await api("GET", "/jobs?limit=50");
  const userName = new Map(cache.users.map((u) => [u.id, u.username]));
  const progress = (j) => {
    if (j.total === null || j.total === undefined) return j.state === "running" ? el("progress", { "aria-label": t("Progress") }) : "—";
    return el("span", {}, el("progress", { value: String(j.progress), max: String(Math.max(j.total, 1)), "aria-label": t("Progress") }), ` ${j.progress} / ${j.total}`);
  };
  const outcome = (j) => {
    if (j.error) return el("span", { class: "error-text" }, j.error.message || j.error.error_id);
    if (j.result_url) return el("a", { href: j.result_url, download: "" }, t("Download"));
    return j.result ? el("code", { class: "small" }, JSON.stringify(j.result).slice(0, 200)) : "—";
  };
  clear(root, el("h2", {}, t("Jobs")),
    el("p", { class: "muted small" }, t("Imports, exports, personal data exports and the daily retention sweep run in the background.")),
    el("table", {}, el("thead", {}, el("tr", {}, [t("Created"), t("Who"), t("Kind"), t("State"), t("Progress"), t("Result")].map((h) => el("th", {}, h)))),
      el("tbody", {}, page.items.map((j) => el("tr", { "data-job": String(j.id) }, el("td", {}, fmt.dateTime(j.created_at)),
        el("td", {}, j.created_by ? userName.get(j.created_by) || `#${j.created_by}` : t("system")),
        el("td", {}, el("code", {}, j.kind)), el("td", {}, j.state), el("td", {}, progress(j)), el("td", {}, outcome(j)))))));
  if (page.items.some((j) => j.state === "queued" || j.state === "running")) {
    jobsTimer = window.setTimeout(() => { if (!root.hidden) jobs(root).catch(() => {}); }, JOB_REFRESH_MS);
  }
}

// ------------------------------------------------------------------ navigation
const SECTIONS = { users, agents, queues, "entry-points": entryPoints, calendars, codes, projects, tokens, webhooks, jobs, audit };

let shown = null; // the section on screen (or being read): its own link does not draw it again

async function show() {
  const name = (window.location.hash || "#users").slice(1);
  const key = name in SECTIONS ? name : "users";
  // /admin shows Users; its link (#users) changes the hash but not the section. Drawing it again
  // would replace a form being filled, also while the first drawing is still on its way.
  if (key === shown) return;
  shown = key;
  for (const link of document.querySelectorAll(".admin-nav a")) link.setAttribute("aria-current", link.getAttribute("href") === `#${key}` ? "true" : "false");
  for (const section of document.querySelectorAll(".admin-section")) section.hidden = section.id !== `section-${key}`;
  const root = $(`section-${key}`);
  try {
    if (!cache.users.length) cache.users = await api("GET", "/users");
    await SECTIONS[key](root);
  } catch (error) {
    clear(root, el("p", { class: "error-text" }, errorText(error)));
  }
}

window.addEventListener("hashchange", show);
show();
