// The deals board: a pipeline's stages as columns with their totals, deals dragged between stages
// (or moved with the keyboard from each card's menu); won and lost ask for the reason the pipeline
// requires. Filters: pipeline and owner.
import { ApiError, api, attempt, clear, el, errorText, fmt, label, me, t, toast } from "./common.js";

const board = document.getElementById("board");
const canWrite = board.dataset.canWrite === "true";
const filters = document.getElementById("board-filters");
const pipelineSelect = document.getElementById("pipeline");
const ownerSelect = document.getElementById("owner");
const dialog = document.getElementById("close-dialog");
// Deals read per column; a column with more says so in its total.
const COLUMN_LIMIT = 200;

const state = { pipelines: [], pipeline: null, deals: new Map(), users: new Map() };

const pipelineKey = (p) => (p.id === null ? "default" : String(p.id));
// The default pipeline's stages have fixed keys, named in the page's language.
const stageName = (stage) => (state.pipeline.id === null ? label(stage.key) : stage.name);

function ownerName(id) {
  if (id === null || id === undefined) return t("(none)");
  if (id === me.user_id) return me.username;
  const u = state.users.get(id);
  return u ? (u.display_name || u.username) : `#${id}`;
}

function totals(deals) {
  const sums = new Map();
  for (const d of deals) sums.set(d.currency, (sums.get(d.currency) || 0) + Number(d.amount));
  return [...sums].map(([currency, sum]) => fmt.money(sum.toFixed(2), currency)).join(" · ") || "—";
}

function card(deal) {
  const stages = state.pipeline.stages;
  const move = el("select", { class: "small", "aria-label": t("Stage of deal {title}", { title: deal.title }), disabled: !canWrite },
    stages.map((s) => el("option", { value: s.key, selected: s.key === deal.stage }, stageName(s))));
  move.addEventListener("change", () => moveDeal(deal.id, move.value).then((ok) => { if (!ok) move.value = deal.stage; }));
  const node = el("li", { class: "deal-card", draggable: canWrite ? "true" : null, "data-deal-id": String(deal.id), tabindex: "0" },
    el("strong", {}, el("a", { href: `/deals/${deal.id}`, draggable: "false", class: "deal-link" }, deal.title)),
    el("div", { class: "amount" }, fmt.money(deal.amount, deal.currency)),
    el("div", { class: "small muted" }, `${t("Owner")}: ${ownerName(deal.owner_id)}`
      + (deal.expected_close_on ? ` · ${t("Close by")}: ${deal.expected_close_on}` : "")),
    deal.close_reason ? el("div", { class: "small" }, `${t("Reason")}: ${deal.close_reason}`) : null,
    move);
  node.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData("text/plain", String(deal.id));
    event.dataTransfer.effectAllowed = "move";
  });
  return node;
}

function column(stage, deals, more) {
  const list = el("ul", { class: "plain deal-list" }, deals.map(card));
  const col = el("section", { class: `board-column stage-${stage.kind}`, "data-stage": stage.key, "aria-label": stageName(stage) },
    el("h2", {}, stageName(stage), " ", el("span", { class: "muted small" }, `${stage.probability_pct} %`)),
    el("p", { class: "small stage-total", "data-count": String(deals.length) },
      `${t("{n} deals", { n: deals.length })}${more ? "+" : ""} · ${totals(deals)}`),
    list);
  col.addEventListener("dragover", (event) => { if (canWrite) { event.preventDefault(); col.classList.add("drop-target"); } });
  col.addEventListener("dragleave", () => col.classList.remove("drop-target"));
  col.addEventListener("drop", (event) => {
    event.preventDefault();
    col.classList.remove("drop-target");
    const id = Number(event.dataTransfer.getData("text/plain"));
    if (id && state.deals.get(id)?.stage !== stage.key) moveDeal(id, stage.key);
  });
  return col;
}

/** The reason for a won or lost stage, asked for in a dialog when the pipeline lists reasons. */
function askReason(stage) {
  const reasons = stage.kind === "won" ? state.pipeline.won_reasons : state.pipeline.lost_reasons;
  if (!reasons.length) return Promise.resolve({ reason: null });
  document.getElementById("close-h").textContent = stage.kind === "won" ? t("Why was the deal won?") : t("Why was the deal lost?");
  clear(document.getElementById("close-reason"), reasons.map((r) => el("option", { value: r }, r)));
  return new Promise((resolve) => {
    const done = (value) => { dialog.removeEventListener("close", onClose); resolve(value); };
    const onClose = () => done(dialog.returnValue === "ok" ? { reason: document.getElementById("close-reason").value } : null);
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "";
    dialog.showModal();
  });
}
document.getElementById("close-cancel").addEventListener("click", () => dialog.close(""));

/** Move a deal; the card is busy (not draggable, its menu disabled) while the request runs. */
async function moveDeal(id, stageKey) {
  const stage = state.pipeline.stages.find((s) => s.key === stageKey);
  const node = board.querySelector(`.deal-card[data-deal-id="${id}"]`);
  if (!stage || !node || node.dataset.busy === "true") return false;
  const patch = { stage: stageKey };
  if (stage.kind !== "open") {
    const answer = await askReason(stage);
    if (!answer) return false;
    if (answer.reason) patch.close_reason = answer.reason;
  }
  node.dataset.busy = "true";
  node.setAttribute("aria-busy", "true");
  node.draggable = false;
  const menu = node.querySelector("select");
  menu.disabled = true;
  try {
    const saved = await api("PATCH", `/deals/${id}`, patch);
    toast(t("Deal moved to {stage}", { stage: stageName(stage) }));
    state.deals.set(saved.id, saved);
    await load();
    return true;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) toast(errorText(error), "error");
    node.dataset.busy = "false";
    node.removeAttribute("aria-busy");
    node.draggable = canWrite;
    menu.disabled = !canWrite;
    return false;
  }
}

async function load() {
  const p = state.pipeline;
  const params = (stage) => {
    const q = new URLSearchParams({ limit: String(COLUMN_LIMIT), stage: stage.key });
    if (p.id !== null) q.set("pipeline_id", String(p.id));
    if (ownerSelect.value) q.set("owner", ownerSelect.value);
    return q;
  };
  const pages = await Promise.all(p.stages.map((s) => api("GET", `/deals?${params(s)}`)));
  state.deals.clear();
  clear(board, p.stages.map((stage, i) => {
    // The default pipeline (id null) holds the deals of no pipeline: other pipelines' deals on a
    // stage of the same key are left out.
    const deals = pages[i].items.filter((d) => (p.id === null ? d.pipeline_id === null : true));
    for (const d of deals) state.deals.set(d.id, d);
    return column(stage, deals, Boolean(pages[i].next_cursor));
  }));
}

filters.addEventListener("submit", async (event) => {
  event.preventDefault();
  state.pipeline = state.pipelines.find((p) => pipelineKey(p) === pipelineSelect.value) || state.pipelines[0];
  const url = new URL(window.location.href);
  url.searchParams.set("pipeline", pipelineKey(state.pipeline));
  window.history.replaceState(null, "", url);
  await attempt(load, null, filters);
});

async function start() {
  const [pipelines, users] = await Promise.allSettled([api("GET", "/pipelines"), api("GET", "/users")]);
  if (pipelines.status !== "fulfilled") { clear(board, el("p", { class: "error-text" }, errorText(pipelines.reason))); return; }
  state.pipelines = pipelines.value;
  if (users.status === "fulfilled") {
    for (const u of users.value) {
      state.users.set(u.id, u);
      if (u.id !== me.user_id) ownerSelect.append(el("option", { value: String(u.id) }, u.display_name || u.username));
    }
  }
  clear(pipelineSelect, state.pipelines.map((p) => el("option", { value: pipelineKey(p) }, p.id === null ? t("Default pipeline") : p.name)));
  const wanted = new URLSearchParams(window.location.search).get("pipeline");
  state.pipeline = state.pipelines.find((p) => pipelineKey(p) === wanted) || state.pipelines[0];
  pipelineSelect.value = pipelineKey(state.pipeline);
  await attempt(load, null, filters);
  const focus = new URLSearchParams(window.location.search).get("deal");
  const target = focus && board.querySelector(`.deal-card[data-deal-id="${focus}"]`);
  if (target) { target.classList.add("highlight"); target.focus(); }
}

start();
