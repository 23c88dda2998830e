// Reports: GET /api/v1/stats/report for a range and grouping, as a table and as SVG charts drawn here
// (no charting library), with the same query as a CSV download.
import { api, busy, clear, el, errorText, fmt, label, t } from "./common.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
let names = { queue: new Map(), agent: new Map(), project: new Map() };

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function isoOffset(dateValue, endOfDay) {
  const d = new Date(`${dateValue}T00:00:00`);
  if (endOfDay) d.setDate(d.getDate() + 1);
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const pad = (n) => String(Math.floor(n)).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T00:00:00${sign}${pad(Math.abs(offset) / 60)}:${pad(Math.abs(offset) % 60)}`;
}

function query(format) {
  const p = new URLSearchParams({
    start: isoOffset($("start").value, false),
    end: isoOffset($("end").value, true),
    group_by: $("group_by").value,
    interval: $("interval").value,
    format,
  });
  return `/stats/report?${p}`;
}

function keyName(groupBy, key) {
  if (key === null || key === undefined) return t("All");
  const map = names[groupBy];
  return (map && map.get(Number(key))) || (groupBy === "channel" ? label(key) : String(key));
}

function rowLabel(report, row) {
  const name = keyName(report.group_by, row.key);
  return report.interval_s ? `${name} · ${fmt.time(row.interval_start)}` : name;
}

const COLUMNS = [
  ["offered", "Offered", fmt.number], ["answered", "Answered", fmt.number], ["abandoned", "Abandoned", fmt.number],
  ["service_level", "Service level", fmt.percent], ["asa_s", "ASA", fmt.duration], ["aht_s", "AHT", fmt.duration],
  ["abandonment_rate", "Abandonment rate", fmt.percent], ["occupancy", "Occupancy", fmt.percent],
];

function renderTable(report) {
  const columns = report.rows.length ? COLUMNS.filter(([k]) => report.rows.some((r) => k in r)) : COLUMNS;
  clear($("report-table"), el("table", {},
    el("caption", { class: "visually-hidden" }, t("Report")),
    el("thead", {}, el("tr", {}, el("th", {}, t("Group")), columns.map(([, h]) => el("th", { class: "num" }, t(h))))),
    el("tbody", {}, report.rows.length ? report.rows.map((r) => el("tr", {},
      el("td", {}, rowLabel(report, r)), columns.map(([k, , f]) => el("td", { class: "num" }, f(r[k])))))
      : el("tr", {}, el("td", { colspan: String(columns.length + 1), class: "muted" }, t("No data in this range."))))));
}

/** Grouped bars of offered / answered / abandoned per row, and service level as a dotted line. */
function renderChart(report) {
  const rows = report.rows.slice(0, 96);
  const width = 960, height = 300, left = 48, bottom = 64, top = 16, right = 48;
  // A top that divides into four whole-number steps, so the axis labels are distinct integers.
  const max = Math.max(4, Math.ceil(Math.max(0, ...rows.map((r) => r.offered || 0)) / 4) * 4);
  const plotW = width - left - right, plotH = height - top - bottom;
  const band = rows.length ? plotW / rows.length : plotW;
  const series = [["offered", "#1f5fbf", "none"], ["answered", "#11703a", "none"], ["abandoned", "#a3161c", "4 2"]];
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-labelledby": "chart-title" },
    svg("title", { id: "chart-title" }, t("Offered, answered and abandoned contacts, and service level")));
  for (let i = 0; i <= 4; i += 1) {
    const y = top + plotH - (plotH * i) / 4;
    chart.append(svg("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#d5d9e0" }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", "font-size": 11 }, fmt.number((max * i) / 4)),
      svg("text", { x: width - right + 6, y: y + 4, "font-size": 11 }, `${25 * i}%`));
  }
  const slPoints = [];
  rows.forEach((r, i) => {
    const x0 = left + i * band;
    const w = Math.max(1, (band * 0.8) / series.length);
    series.forEach(([key, colour, dash], j) => {
      const h = ((r[key] || 0) / max) * plotH;
      chart.append(svg("rect", { x: x0 + band * 0.1 + j * w, y: top + plotH - h, width: w, height: h, fill: colour,
        stroke: "#000", "stroke-opacity": 0.3, "stroke-dasharray": dash },
      svg("title", {}, `${rowLabel(report, r)}: ${t(key[0].toUpperCase() + key.slice(1))} ${fmt.number(r[key] || 0)}`)));
    });
    if (r.service_level !== null && r.service_level !== undefined) slPoints.push(`${x0 + band / 2},${top + plotH - r.service_level * plotH}`);
    if (rows.length <= 24 || i % Math.ceil(rows.length / 24) === 0) {
      chart.append(svg("text", { x: x0 + band / 2, y: height - bottom + 14, "font-size": 11, "text-anchor": "end",
        transform: `rotate(-35 ${x0 + band / 2} ${height - bottom + 14})` }, rowLabel(report, r).slice(0, 24)));
    }
  });
  if (slPoints.length) {
    chart.append(svg("polyline", { points: slPoints.join(" "), fill: "none", stroke: "#8a5a00", "stroke-width": 2, "stroke-dasharray": "2 3" }));
    for (const p of slPoints) { const [x, y] = p.split(","); chart.append(svg("circle", { cx: x, cy: y, r: 3, fill: "#8a5a00" })); }
  }
  const legend = el("div", { class: "legend" },
    el("span", {}, el("i", { style: "background:#1f5fbf" }), t("Offered")),
    el("span", {}, el("i", { style: "background:#11703a" }), t("Answered")),
    el("span", {}, el("i", { style: "background:#a3161c" }), t("Abandoned")),
    el("span", {}, el("i", { style: "background:#8a5a00;border-radius:50%" }), `${t("Service level")} (${t("right axis")})`));
  clear($("report-chart"), chart, legend);
}

/** Export CSV always downloads what the form says now, shown or not yet. */
function updateExport() {
  const ok = $("start").value && $("end").value;
  $("csv").href = ok ? `/api/v1${query("csv")}` : "#";
  $("csv").toggleAttribute("aria-disabled", !ok);
}

async function run(event) {
  if (event) event.preventDefault();
  try {
    const report = await api("GET", query("json"));
    renderTable(report);
    renderChart(report);
  } catch (error) {
    // Never leave the previous range's chart under a form that now asks for another one.
    clear($("report-chart"), el("p", { class: "error-text", role: "alert" }, errorText(error)));
    clear($("report-table"));
  }
}

async function start() {
  const today = new Date();
  const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
  $("start").value = iso(today);
  $("end").value = iso(today);
  $("report-form").addEventListener("submit", busy(run));
  $("report-form").addEventListener("input", updateExport);
  $("report-form").addEventListener("change", updateExport);
  updateExport();
  const [qs, users, projects] = await Promise.all([
    api("GET", "/queues").catch(() => []), api("GET", "/users").catch(() => []), api("GET", "/projects").catch(() => []),
  ]);
  names = {
    queue: new Map(qs.map((q) => [q.id, q.name])),
    agent: new Map(users.map((u) => [u.id, u.display_name || u.username])),
    project: new Map(projects.map((p) => [p.id, p.name])),
  };
  run();
}

start();
