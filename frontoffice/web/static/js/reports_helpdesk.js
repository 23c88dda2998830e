// The reports page's help desk and sales figures: SLA compliance with first-response and resolution
// times and the backlog by age (GET /reports/sla), satisfaction surveys (GET /reports/csat), and a
// pipeline's win rate and cycle time, overall and by stage (GET /reports/sales), for one date range.
import { api, attempt, busy, clear, el, fmt, label, t } from "./common.js";

const form = document.getElementById("hd-report-form");
const $ = (id) => document.getElementById(id);

/** Local midnight of a date input's day (the day after, for the end of a range), with its offset. */
function isoDay(value, next) {
  const d = new Date(`${value}T00:00:00`);
  if (next) d.setDate(d.getDate() + 1);
  return d.toISOString();
}

const table = (caption, head, rows) => el("table", { class: "hd-report" },
  el("caption", {}, caption),
  el("thead", {}, el("tr", {}, head.map((h, i) => el("th", { class: i ? "num" : null }, h)))),
  el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c, i) => el(i ? "td" : "th", { class: i ? "num" : null, scope: i ? null : "row" }, c))))));

function renderSla(r) {
  const b = r.backlog;
  clear($("hd-sla"),
    table(t("SLA: {n} tickets opened", { n: r.tickets }), [t("Metric"), t("Met"), t("Breached"), t("Compliance"), t("Mean"), t("Median")],
      Object.entries(r.metrics).map(([metric, m]) => [label(metric), fmt.number(m.met), fmt.number(m.breached),
        fmt.percent(m.compliance_ratio), fmt.duration(m.mean_s), fmt.duration(m.median_s)])),
    table(t("Backlog now"), [t("Open and pending"), t("Under a day"), t("1–3 days"), t("3–7 days"), t("Over 7 days"), t("Oldest")],
      [[fmt.number(b.total), fmt.number(b.under_1d), fmt.number(b.from_1d_to_3d), fmt.number(b.from_3d_to_7d), fmt.number(b.over_7d), fmt.duration(b.oldest_age_s)]]));
}

function renderCsat(r) {
  const x = r.total;
  clear($("hd-csat"), table(t("Satisfaction"), [t("Sent"), t("Answered"), t("Response rate"), t("Average"), "1", "2", "3", "4", "5"],
    [[fmt.number(x.sent), fmt.number(x.answered), fmt.percent(x.response_rate), fmt.number(x.average),
      ...["1", "2", "3", "4", "5"].map((k) => fmt.number(x.distribution[k] || 0))]]));
}

function renderSales(r, pipeline) {
  const stageName = (s) => (pipeline.id === null ? label(s.key) : s.name);
  clear($("hd-sales"),
    table(t("Sales: {n} deals closed", { n: r.deals }), [t("Won"), t("Lost"), t("Win rate"), t("Cycle time (won)")],
      [[fmt.number(r.won), fmt.number(r.lost), fmt.percent(r.win_rate), r.avg_cycle_s === null ? "—" : t("{n} days", { n: fmt.number(r.avg_cycle_s / 86400) })]]),
    table(t("By stage"), [t("Stage"), t("Deals"), t("Won"), t("Win rate"), t("Time in stage")],
      r.stages.map((s) => [stageName(s), fmt.number(s.deals), fmt.number(s.won), fmt.percent(s.win_rate),
        s.avg_time_in_stage_s === null ? "—" : t("{n} days", { n: fmt.number(s.avg_time_in_stage_s / 86400) })])));
}

let pipelines = [];

form.addEventListener("submit", busy(async () => {
  const data = new FormData(form);
  const since = isoDay(String(data.get("start")), false);
  const until = isoDay(String(data.get("end")), true);
  const pipeline = pipelines.find((p) => String(p.id) === data.get("pipeline")) || pipelines[0];
  const period = new URLSearchParams({ since, until });
  const sales = new URLSearchParams({ since, until });
  if (pipeline && pipeline.id !== null) sales.set("pipeline_id", String(pipeline.id));
  await attempt(async () => {
    const [sla, csat, deals] = await Promise.all([
      api("GET", `/reports/sla?${period}`), api("GET", `/reports/csat?${period}`), api("GET", `/reports/sales?${sales}`)]);
    renderSla(sla);
    renderCsat(csat);
    if (pipeline) renderSales(deals, pipeline);
  }, null, form);
}));

async function start() {
  const today = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  const day = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  form.elements.namedItem("end").value = day(today);
  form.elements.namedItem("start").value = day(new Date(today.getTime() - 29 * 86400000));
  pipelines = await api("GET", "/pipelines").catch(() => []);
  clear($("hd-pipeline"), pipelines.map((p) => el("option", { value: String(p.id) }, p.id === null ? t("Default pipeline") : p.name)));
}

start();
