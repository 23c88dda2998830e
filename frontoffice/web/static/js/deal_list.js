// The deal list: the deals the user may see, filtered (pipeline, stage, owner, close month, open only),
// sorted and read a page at a time; each row opens the deal's page. The filters live in the address,
// so a list can be bookmarked and shared.
import { api, attempt, busy, clear, el, fmt, label, me, t } from "./common.js";

const form = document.getElementById("deal-filters");
const tbody = document.querySelector("#deal-list tbody");
const empty = document.getElementById("deal-list-empty");
const more = document.getElementById("deal-more");
const pipelineSelect = document.getElementById("d-pipeline");
const stageSelect = document.getElementById("d-stage");
const PAGE = 50;
const state = { pipelines: [], users: new Map(), cursor: null };

const pipelineKey = (p) => (p.id === null ? "default" : String(p.id));

function ownerName(id) {
  if (id === null || id === undefined) return t("(none)");
  if (id === me.user_id) return me.username;
  const u = state.users.get(id);
  return u ? (u.display_name || u.username) : `#${id}`;
}

/** A stage's name: the deal's pipeline's (the default pipeline's stages are named in the page's language). */
function stageName(deal) {
  const p = state.pipelines.find((x) => x.id === deal.pipeline_id);
  const stage = p && p.stages.find((s) => s.key === deal.stage);
  if (!stage || p.id === null) return label(deal.stage);
  return stage.name;
}

/** The stages offered by the stage filter: the chosen pipeline's, else every stage key once. */
function fillStages() {
  const chosen = state.pipelines.find((p) => pipelineKey(p) === pipelineSelect.value);
  const seen = new Map();
  for (const p of chosen ? [chosen] : state.pipelines) {
    for (const s of p.stages) if (!seen.has(s.key)) seen.set(s.key, p.id === null ? label(s.key) : s.name);
  }
  const current = stageSelect.value;
  clear(stageSelect, el("option", { value: "" }, t("Any")), [...seen].map(([key, name]) => el("option", { value: key, selected: key === current }, name)));
}
pipelineSelect.addEventListener("change", fillStages);

function row(d) {
  return el("tr", { "data-deal-id": String(d.id), "data-stage": d.stage },
    el("td", {}, el("a", { href: `/deals/${d.id}` }, String(d.id))),
    el("td", {}, el("a", { href: `/deals/${d.id}`, class: "deal-title" }, d.title)),
    el("td", { class: "stage" }, stageName(d)),
    el("td", { class: "num amount" }, fmt.money(d.amount, d.currency)),
    el("td", {}, ownerName(d.owner_id)),
    el("td", {}, d.expected_close_on || "—"),
    el("td", {}, fmt.dateTime(d.updated_at)));
}

function query() {
  const data = new FormData(form);
  const q = new URLSearchParams({ limit: String(PAGE), sort: String(data.get("sort") || "-updated_at") });
  const pipeline = data.get("pipeline");
  if (pipeline && pipeline !== "default") q.set("pipeline_id", String(pipeline));
  for (const name of ["stage", "owner", "close_month"]) if (data.get(name)) q.set(name, String(data.get(name)));
  if (data.get("open") === "on") q.set("open", "true");
  return q;
}

async function load(older = false) {
  const q = query();
  if (older && state.cursor) q.set("cursor", state.cursor);
  const page = await api("GET", `/deals?${q}`);
  // The default pipeline holds the deals of no pipeline.
  const items = pipelineSelect.value === "default" ? page.items.filter((d) => d.pipeline_id === null) : page.items;
  if (older) tbody.append(...items.map(row)); else clear(tbody, items.map(row));
  state.cursor = page.next_cursor;
  more.hidden = !page.next_cursor;
  empty.hidden = tbody.children.length > 0;
}

form.addEventListener("submit", busy(async () => {
  const data = new FormData(form);
  const address = new URLSearchParams();
  for (const [k, v] of data) if (v) address.set(k, String(v));
  const url = new URL(window.location.href);
  url.search = address.toString();
  window.history.replaceState(null, "", url);
  await attempt(() => load(), null, form);
}));
more.addEventListener("click", busy(() => attempt(() => load(true))));

async function start() {
  const [pipelines, users] = await Promise.allSettled([api("GET", "/pipelines"), api("GET", "/users")]);
  state.pipelines = pipelines.status === "fulfilled" ? pipelines.value : [];
  if (users.status === "fulfilled") {
    for (const u of users.value) {
      state.users.set(u.id, u);
      if (u.id !== me.user_id) document.getElementById("d-owner").append(el("option", { value: String(u.id) }, u.display_name || u.username));
    }
  }
  pipelineSelect.append(...state.pipelines.map((p) => el("option", { value: pipelineKey(p) }, p.id === null ? t("Default pipeline") : p.name)));
  const params = new URLSearchParams(window.location.search);
  if (params.get("pipeline")) pipelineSelect.value = params.get("pipeline");
  fillStages();
  for (const [k, v] of params) {
    const control = form.elements.namedItem(k);
    if (!control || k === "pipeline") continue;
    if (control.type === "checkbox") control.checked = v === "on"; else control.value = v;
  }
  await attempt(() => load(), null, form);
}

start();
