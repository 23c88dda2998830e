// The help desk's settings (supervisors): SLA policies (conditions, targets in business minutes,
// escalation on breach), sales pipelines (stages as lines "key; name; probability; kind", won and lost
// reasons), and the reopen window and surveys (administrators change those; others read them).
import { api, attempt, busy, clear, el, label, t } from "./common.js";

const root = document.getElementById("hd-settings");
const canWriteSettings = root.dataset.canWriteSettings === "true";
const policyForm = document.getElementById("policy-form");
const pipelineForm = document.getElementById("pipeline-form");
const settingsForm = document.getElementById("settings-form");
const PRIORITIES = ["low", "normal", "high", "urgent"];
const state = { policies: [], pipelines: [], queues: [], calendars: [], projects: [], editing: null, editingPipeline: null };

const minutes = (s) => (s === null || s === undefined ? "—" : t("{n} min", { n: Math.round(s / 60) }));
const seconds = (value) => (value === "" || value === null ? null : Math.round(Number(value) * 60));
const listOf = (text) => String(text || "").split(",").map((x) => x.trim()).filter(Boolean);

function options(select, items, current, none) {
  clear(select, none === undefined ? null : el("option", { value: "" }, none),
    items.map(([value, text]) => el("option", { value: String(value), selected: current !== null && current !== undefined && String(current) === String(value) }, text)));
}

// ------------------------------------------------------------------ SLA policies
function conditions(p) {
  const parts = [];
  if (p.priorities.length) parts.push(p.priorities.map(label).join(", "));
  if (p.customer_tags.length) parts.push(p.customer_tags.map((x) => `#${x}`).join(" "));
  if (p.queue_ids.length) parts.push(p.queue_ids.map((id) => state.queues.find((q) => q.id === id)?.name || `#${id}`).join(", "));
  return parts.join(" · ") || t("Any ticket");
}

function renderPolicies() {
  clear(document.querySelector("#policies tbody"), state.policies.length ? state.policies.map((p) => el("tr", { "data-policy-id": String(p.id), class: p.is_active ? null : "muted" },
    el("td", {}, String(p.position)), el("td", {}, p.name), el("td", { class: "small" }, conditions(p)),
    el("td", {}, minutes(p.first_response_s)), el("td", {}, minutes(p.next_response_s)), el("td", {}, minutes(p.resolution_s)),
    el("td", {}, el("button", { type: "button", class: "edit", onclick: () => editPolicy(p) }, t("Edit")))))
    : el("tr", {}, el("td", { colspan: "7", class: "muted" }, t("No SLA policies: tickets have no SLA."))));
}

function editPolicy(p) {
  state.editing = p;
  const f = policyForm.elements;
  document.getElementById("policy-form-h").textContent = p ? t("Edit policy {name}", { name: p.name }) : t("New policy");
  policyForm.reset();
  f.namedItem("name").value = p ? p.name : "";
  f.namedItem("position").value = p ? String(p.position) : "0";
  f.namedItem("is_active").checked = p ? p.is_active : true;
  clear(document.getElementById("pol-priorities"), PRIORITIES.map((v) => el("label", { class: "inline" },
    el("input", { type: "checkbox", name: "priorities", value: v, checked: Boolean(p && p.priorities.includes(v)) }), ` ${label(v)}`)));
  f.namedItem("customer_tags").value = p ? p.customer_tags.join(", ") : "";
  options(f.namedItem("queue_ids"), state.queues.map((q) => [q.id, q.name]));
  for (const o of f.namedItem("queue_ids").options) o.selected = Boolean(p && p.queue_ids.includes(Number(o.value)));
  options(f.namedItem("calendar_id"), state.calendars.map((c) => [c.id, c.name]), p?.calendar_id, t("(always open)"));
  for (const [name, key] of [["first_response_s", "first_response_s"], ["next_response_s", "next_response_s"], ["resolution_s", "resolution_s"]]) {
    f.namedItem(name).value = p && p[key] ? String(Math.round(p[key] / 60)) : "";
  }
  f.namedItem("warn_before_s").value = p ? String(Math.round(p.warn_before_s / 60)) : "0";
  options(f.namedItem("breach_priority"), PRIORITIES.map((v) => [v, label(v)]), p?.breach_priority, "—");
  options(f.namedItem("breach_queue_id"), state.queues.map((q) => [q.id, q.name]), p?.breach_queue_id, "—");
  f.namedItem("notify_supervisors").checked = p ? p.notify_supervisors : true;
  policyForm.hidden = false;
  f.namedItem("name").focus();
}

policyForm.addEventListener("submit", busy(async () => {
  const f = policyForm.elements;
  const data = new FormData(policyForm);
  const body = {
    name: String(data.get("name")).trim(), position: Number(data.get("position") || 0), is_active: data.get("is_active") === "on",
    priorities: data.getAll("priorities"), customer_tags: listOf(data.get("customer_tags")),
    queue_ids: [...f.namedItem("queue_ids").selectedOptions].map((o) => Number(o.value)),
    project_ids: state.editing ? state.editing.project_ids : [],
    calendar_id: data.get("calendar_id") ? Number(data.get("calendar_id")) : null,
    first_response_s: seconds(data.get("first_response_s")), next_response_s: seconds(data.get("next_response_s")),
    resolution_s: seconds(data.get("resolution_s")), warn_before_s: seconds(data.get("warn_before_s")) || 0,
    breach_priority: data.get("breach_priority") || null,
    breach_queue_id: data.get("breach_queue_id") ? Number(data.get("breach_queue_id")) : null,
    notify_supervisors: data.get("notify_supervisors") === "on",
  };
  const saved = await attempt(() => (state.editing ? api("PUT", `/sla-policies/${state.editing.id}`, body) : api("POST", "/sla-policies", body)),
    t("Policy saved"), policyForm);
  if (saved) { policyForm.hidden = true; await loadPolicies(); }
}));
document.getElementById("policy-new").addEventListener("click", () => editPolicy(null));
document.getElementById("policy-cancel").addEventListener("click", () => { policyForm.hidden = true; });

async function loadPolicies() {
  state.policies = (await api("GET", "/sla-policies")).sort((a, b) => a.position - b.position || a.id - b.id);
  renderPolicies();
}

// ------------------------------------------------------------------ pipelines
function renderPipelines() {
  clear(document.getElementById("pipelines"), state.pipelines.map((p) => el("li", { "data-pipeline-id": p.id === null ? "default" : String(p.id) },
    el("span", {}, el("strong", {}, p.id === null ? t("Default pipeline") : p.name),
      el("div", { class: "small muted" }, p.stages.map((s) => `${p.id === null ? label(s.key) : s.name} ${s.probability_pct} %`).join(" → "))),
    p.id === null ? null : el("button", { type: "button", class: "edit", onclick: () => editPipeline(p) }, t("Edit")))));
}

function editPipeline(p) {
  state.editingPipeline = p;
  const f = pipelineForm.elements;
  document.getElementById("pipeline-form-h").textContent = p ? t("Edit pipeline {name}", { name: p.name }) : t("New pipeline");
  f.namedItem("name").value = p ? p.name : "";
  options(f.namedItem("project_id"), state.projects.map((x) => [x.id, x.name]), p?.project_id, t("Every project"));
  f.namedItem("stages").value = p ? p.stages.map((s) => `${s.key}; ${s.name}; ${s.probability_pct}; ${s.kind}`).join("\n")
    : "lead; Lead; 10; open\nproposal; Proposal; 50; open\nwon; Won; 100; won\nlost; Lost; 0; lost";
  f.namedItem("won_reasons").value = p ? p.won_reasons.join(", ") : "";
  f.namedItem("lost_reasons").value = p ? p.lost_reasons.join(", ") : "";
  pipelineForm.hidden = false;
  f.namedItem("name").focus();
}

pipelineForm.addEventListener("submit", busy(async () => {
  const data = new FormData(pipelineForm);
  const stages = String(data.get("stages")).split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [key, name, probability, kind] = line.split(";").map((x) => x.trim());
    return { key: key || "", name: name || key || "", probability_pct: Number(probability || 0), kind: kind || "open" };
  });
  const body = { name: String(data.get("name")).trim(), project_id: data.get("project_id") ? Number(data.get("project_id")) : null,
    stages, won_reasons: listOf(data.get("won_reasons")), lost_reasons: listOf(data.get("lost_reasons")) };
  const p = state.editingPipeline;
  const saved = await attempt(() => (p ? api("PUT", `/pipelines/${p.id}`, body) : api("POST", "/pipelines", body)), t("Pipeline saved"), pipelineForm);
  if (saved) { pipelineForm.hidden = true; await loadPipelines(); }
}));
document.getElementById("pipeline-new").addEventListener("click", () => editPipeline(null));
document.getElementById("pipeline-cancel").addEventListener("click", () => { pipelineForm.hidden = true; });

async function loadPipelines() {
  state.pipelines = await api("GET", "/pipelines");
  renderPipelines();
}

// ------------------------------------------------------------------ reopening and surveys
async function loadSettings() {
  const current = (await api("GET", "/helpdesk/settings")).settings;
  const f = settingsForm.elements;
  f.namedItem("reopen_within_days").value = String(current.reopen_within_days);
  f.namedItem("csat_enabled").checked = current.csat_enabled;
  f.namedItem("csat_valid_days").value = String(current.csat_valid_days);
  if (!canWriteSettings) for (const c of f) c.disabled = true;
}

settingsForm.addEventListener("submit", busy(async () => {
  const data = new FormData(settingsForm);
  const body = { reopen_within_days: Number(data.get("reopen_within_days")), csat_enabled: data.get("csat_enabled") === "on",
    csat_valid_days: Number(data.get("csat_valid_days")) };
  await attempt(() => api("PUT", "/helpdesk/settings", body), t("Settings saved"), settingsForm);
}));

async function start() {
  const [queues, calendars, projects] = await Promise.allSettled([api("GET", "/queues"), api("GET", "/calendars"), api("GET", "/projects")]);
  state.queues = queues.status === "fulfilled" ? queues.value : [];
  state.calendars = calendars.status === "fulfilled" ? calendars.value : [];
  state.projects = projects.status === "fulfilled" ? projects.value : [];
  await Promise.allSettled([attempt(loadPolicies), attempt(loadPipelines), attempt(loadSettings)]);
}

start();
