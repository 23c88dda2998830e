// A deal's page: its fields edited in place (title, stage with the reason a won or lost stage asks for,
// amount and currency, owner, expected close day), its customer and company, and its activities (tasks,
// calls back, reminders with a due time and an owner, marked done here).
import { activitiesPanel } from "./activities.js";
import { api, attempt, busy, clear, customerName, el, fmt, label, me, t } from "./common.js";

const root = document.getElementById("deal-page");
const dealId = Number(root.dataset.dealId);
const canWrite = root.dataset.canWrite === "true";
const form = document.getElementById("deal-form");
const state = { deal: null, pipeline: null, users: new Map() };

function userName(id) {
  if (id === null || id === undefined) return t("(none)");
  if (id === me.user_id) return me.username;
  const u = state.users.get(id);
  return u ? (u.display_name || u.username) : `#${id}`;
}

const stageName = (s) => (state.pipeline.id === null ? label(s.key) : s.name);
const stageOf = (key) => state.pipeline.stages.find((s) => s.key === key);

/** The reason control for a stage: the pipeline's reasons of its kind (a choice), else free text. */
function reasonControl(stageKey, current) {
  const stage = stageOf(stageKey);
  if (!stage || stage.kind === "open") return null;
  const reasons = stage.kind === "won" ? state.pipeline.won_reasons : state.pipeline.lost_reasons;
  const control = reasons.length
    ? el("select", { id: "deal-reason", name: "close_reason" }, el("option", { value: "" }, "—"),
      reasons.map((r) => el("option", { value: r, selected: r === current }, r)))
    : el("input", { id: "deal-reason", name: "close_reason", maxlength: "200", value: current || "" });
  return el("div", { id: "reason-row" }, el("label", { for: "deal-reason" }, stage.kind === "won" ? t("Why was the deal won?") : t("Why was the deal lost?")), control);
}

function renderForm() {
  const d = state.deal;
  const owners = [null, me.user_id, ...[...state.users.keys()].filter((id) => id !== me.user_id)];
  if (d.owner_id !== null && !owners.includes(d.owner_id)) owners.push(d.owner_id);
  const stage = el("select", { id: "deal-stage", name: "stage" }, state.pipeline.stages.map((s) => el("option", { value: s.key, selected: s.key === d.stage }, `${stageName(s)} (${s.probability_pct} %)`)));
  stage.addEventListener("change", () => {
    document.getElementById("reason-row")?.remove();
    const reason = reasonControl(stage.value, null);
    if (reason) stage.closest("div.field-row").after(reason);
  });
  clear(form,
    el("label", { for: "deal-title-input" }, t("Title")), el("input", { id: "deal-title-input", name: "title", value: d.title, maxlength: "300", required: true }),
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: "deal-stage" }, t("Stage")), stage),
      el("div", {}, el("label", { for: "deal-owner" }, t("Owner")),
        el("select", { id: "deal-owner", name: "owner_id" }, owners.map((id) => el("option", { value: id === null ? "" : String(id), selected: id === d.owner_id }, userName(id)))))),
    reasonControl(d.stage, d.close_reason),
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: "deal-amount" }, t("Amount")), el("input", { id: "deal-amount", name: "amount", inputmode: "decimal", value: d.amount })),
      el("div", {}, el("label", { for: "deal-currency" }, t("Currency")), el("input", { id: "deal-currency", name: "currency", value: d.currency, size: "4", maxlength: "3" })),
      el("div", {}, el("label", { for: "deal-close" }, t("Close by")), el("input", { id: "deal-close", name: "expected_close_on", type: "date", value: d.expected_close_on || "" }))),
    el("p", { class: "muted small" }, `${t("Pipeline")}: ${state.pipeline.id === null ? t("Default pipeline") : state.pipeline.name} · `
      + `${t("Created")}: ${fmt.dateTime(d.created_at)} · ${t("Updated")}: ${fmt.dateTime(d.updated_at)}`
      + (d.closed_at ? ` · ${t("Closed")}: ${fmt.dateTime(d.closed_at)}` : "")),
    canWrite ? el("div", {}, el("button", { type: "submit", class: "primary" }, t("Save"))) : null);
  if (!canWrite) for (const c of form.elements) c.disabled = true;
  document.getElementById("deal-title").textContent = d.title;
}

form.addEventListener("submit", busy(async () => {
  const d = state.deal;
  const data = new FormData(form);
  const patch = {};
  const title = String(data.get("title")).trim();
  if (title !== d.title) patch.title = title;
  if (data.get("stage") !== d.stage) patch.stage = data.get("stage");
  const owner = data.get("owner_id") ? Number(data.get("owner_id")) : null;
  if (owner !== d.owner_id) patch.owner_id = owner;
  const amount = String(data.get("amount")).trim().replace(",", ".");
  if (amount !== d.amount) patch.amount = amount;
  const currency = String(data.get("currency")).trim().toUpperCase();
  if (currency !== d.currency) patch.currency = currency;
  const close = data.get("expected_close_on") || null;
  if (close !== d.expected_close_on) patch.expected_close_on = close;
  if (data.has("close_reason")) {
    const reason = String(data.get("close_reason")).trim() || null;
    if (reason !== d.close_reason || patch.stage) patch.close_reason = reason;
  }
  if (!Object.keys(patch).length) return;
  const saved = await attempt(() => api("PATCH", `/deals/${dealId}`, patch), t("Deal saved"), form);
  if (saved) { state.deal = saved; renderForm(); }
}));

async function renderCustomer() {
  const box = document.getElementById("deal-customer");
  const id = state.deal.customer_id;
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

async function start() {
  const [deal, pipelines, users] = await Promise.allSettled([api("GET", `/deals/${dealId}`), api("GET", "/pipelines"), api("GET", "/users")]);
  if (deal.status !== "fulfilled" || pipelines.status !== "fulfilled") { clear(form, el("p", { class: "error-text" }, t("Not available."))); return; }
  state.deal = deal.value;
  state.pipeline = pipelines.value.find((p) => p.id === state.deal.pipeline_id) || pipelines.value[0];
  if (users.status === "fulfilled") for (const u of users.value) if (u.is_active !== false) state.users.set(u.id, u);
  const owners = [me.user_id, ...[...state.users.keys()].filter((id) => id !== me.user_id)];
  renderForm();
  await Promise.allSettled([renderCustomer(), activitiesPanel({ deal_id: dealId }, userName, owners)]);
}

start();
