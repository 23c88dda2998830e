// The Planning page: forms that call /api/v1/planning/* and draw their answers as SVG charts.
// Plain ES module. Translated strings come from the page (#planning-messages); common.js wires the
// top bar every page shares (sign out).
import "./js/common.js";

const API = "/api/v1/planning/";
const SVG_NS = "http://www.w3.org/2000/svg";
const W = 720;
const H = 300;
const PAD = { left: 56, right: 16, top: 30, bottom: 40 };

const MESSAGES = JSON.parse(document.getElementById("planning-messages").textContent);
const LANG = document.documentElement.lang || "en";
const CSRF = document.querySelector('meta[name="csrf-token"]').content;

function t(key, values = {}) {
  const text = MESSAGES[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

const numberFormat = new Intl.NumberFormat(LANG, { maximumFractionDigits: 1 });
const integerFormat = new Intl.NumberFormat(LANG, { maximumFractionDigits: 0 });
const percentFormat = new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 1 });
const num = (x) => (x === null || x === undefined ? "∞" : numberFormat.format(x));
const int = (x) => integerFormat.format(x);
const pct = (x) => (x === null || x === undefined ? "—" : percentFormat.format(x));

// --- talking to the API ---------------------------------------------------------------------

async function post(endpoint, body) {
  const response = await fetch(API + endpoint, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF, Accept: "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    let message = data.message || `${t("The request failed")} (${response.status})`;
    const errors = data.details && data.details.errors;
    if (Array.isArray(errors) && errors.length) {
      message += ": " + errors.map((e) => `${e.loc.filter((p) => p !== "body").join(".")} — ${e.message}`).join("; ");
    }
    throw new Error(message);
  }
  return data;
}

function fields(form) {
  // Numbers from the form's inputs; empty inputs are left out (the API's defaults apply). The load
  // is entered per minute or per hour (its unit select says which) and sent as calls per hour.
  const values = {};
  for (const input of form.querySelectorAll("input")) {
    if (input.value.trim() === "") continue;
    values[input.name] = input.step === "1" ? parseInt(input.value, 10) : parseFloat(input.value);
  }
  if ("load" in values) {
    values.calls_per_hour = values.load * parseFloat(form.elements.load_unit.value);
    delete values.load;
  }
  return values;
}

// --- warnings: occupancy above a ceiling, high abandonment ------------------------------------

const LIMITS_KEY = "fo-planning-limits";
const limitInputs = {
  occupancy: document.getElementById("occupancy-ceiling"),
  abandon: document.getElementById("abandon-ceiling"),
};
try {
  const saved = JSON.parse(localStorage.getItem(LIMITS_KEY) || "{}");
  for (const [key, input] of Object.entries(limitInputs)) if (typeof saved[key] === "number") input.value = saved[key];
} catch {
  // A damaged or unavailable store: keep the defaults.
}
for (const input of Object.values(limitInputs)) {
  input.addEventListener("change", () => {
    try {
      localStorage.setItem(LIMITS_KEY, JSON.stringify({ occupancy: parseFloat(limitInputs.occupancy.value), abandon: parseFloat(limitInputs.abandon.value) }));
    } catch {
      // Private mode: the ceilings last as long as the page.
    }
  });
}

function limits() {
  // The ceilings as shares; an empty or invalid field falls back to the default (90 %, 5 %).
  const read = (input, fallback) => {
    const value = parseFloat(input.value);
    return Number.isFinite(value) ? value / 100 : fallback;
  };
  return { occupancy: read(limitInputs.occupancy, 0.9), abandon: read(limitInputs.abandon, 0.05) };
}

function warnings({ occupancy, abandon }) {
  const limit = limits();
  const out = [];
  if (occupancy !== null && occupancy !== undefined && occupancy > limit.occupancy) {
    out.push(t("Occupancy {occupancy} is above the {ceiling} ceiling: people cannot sustain it; add agents or cap occupancy", {
      occupancy: pct(occupancy),
      ceiling: pct(limit.occupancy),
    }));
  }
  if (abandon !== null && abandon !== undefined && abandon > limit.abandon) {
    out.push(t("Abandonment {abandon} is high (above {limit}): add agents or shorten the wait", { abandon: pct(abandon), limit: pct(limit.abandon) }));
  }
  return out;
}

function warn(target, lines) {
  for (const line of lines) {
    const p = document.createElement("p");
    p.className = "warning";
    p.setAttribute("role", "alert");
    p.textContent = line;
    target.append(p);
  }
}

function share(values, name) {
  // Percent in the form, share in the API.
  if (name in values) values[name] = values[name] / 100;
}

function show(target, lines, isError = false) {
  target.replaceChildren();
  target.classList.toggle("error", isError);
  for (const line of lines) {
    const p = document.createElement("p");
    p.textContent = line;
    target.append(p);
  }
}

function wire(formId, handler) {
  const form = document.getElementById(formId);
  const result = document.getElementById(formId.replace("-form", "-result"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    show(result, [t("Working…")]);
    try {
      await handler(form, result);
    } catch (error) {
      show(result, [error.message], true);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
  return form;
}

// --- charts -----------------------------------------------------------------------------------

function el(name, attributes = {}, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function ticks(lo, hi, count = 5) {
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toFixed(10)));
  return out;
}

// series: [{name, cls, points: [[x, y], ...], step?, dots?}]; guides: [{axis: "x"|"y", value, label}]
function drawChart(svg, { series, xLabel, yLabel, xFormat = num, yFormat = num, yMin, yMax, xLabels, guides = [] }) {
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points);
  if (!all.length) return;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter((y) => y !== null);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) === x0 ? x0 + 1 : Math.max(...xs);
  const y0 = yMin ?? Math.min(0, ...ys);
  let y1 = yMax ?? Math.max(...ys, ...guides.filter((g) => g.axis === "y").map((g) => g.value));
  if (y1 <= y0) y1 = y0 + 1;
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const sy = (y) => H - PAD.bottom - ((y - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);

  const axes = el("g", { class: "axes" });
  for (const v of ticks(y0, y1)) {
    axes.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(v), y2: sy(v), class: "grid" }));
    axes.append(el("text", { x: PAD.left - 6, y: sy(v) + 4, "text-anchor": "end" }, yFormat(v)));
  }
  const xTicks = xLabels ? xLabels : ticks(x0, x1, 8).map((v) => [v, xFormat(v)]);
  for (const [v, label] of xTicks) {
    axes.append(el("line", { x1: sx(v), x2: sx(v), y1: H - PAD.bottom, y2: H - PAD.bottom + 4, class: "tick" }));
    axes.append(el("text", { x: sx(v), y: H - PAD.bottom + 16, "text-anchor": "middle" }, label));
  }
  axes.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom, class: "axis" }));
  axes.append(el("line", { x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom, class: "axis" }));
  axes.append(el("text", { x: (W + PAD.left) / 2, y: H - 6, "text-anchor": "middle", class: "label" }, xLabel));
  axes.append(
    el("text", { x: 12, y: (H - PAD.bottom) / 2, transform: `rotate(-90 12 ${(H - PAD.bottom) / 2})`, "text-anchor": "middle", class: "label" }, yLabel),
  );
  svg.append(axes);

  for (const guide of guides) {
    const g = el("g", { class: "guide" });
    if (guide.axis === "y") {
      g.append(el("line", { x1: PAD.left, x2: W - PAD.right, y1: sy(guide.value), y2: sy(guide.value) }));
      g.append(el("text", { x: PAD.left + 4, y: sy(guide.value) - 4 }, guide.label));
    } else {
      g.append(el("line", { x1: sx(guide.value), x2: sx(guide.value), y1: PAD.top, y2: H - PAD.bottom }));
      g.append(el("text", { x: sx(guide.value) + 4, y: PAD.top - 4 }, guide.label));
    }
    svg.append(g);
  }

  const legend = el("g", { class: "legend" });
  let lx = PAD.left + 8;
  series.forEach((s) => {
    const points = s.points.filter((p) => p[1] !== null);
    let path = "";
    points.forEach(([x, y], k) => {
      if (k === 0) path += `M${sx(x)},${sy(y)}`;
      else if (s.step) path += `H${sx(x)}V${sy(y)}`;
      else path += `L${sx(x)},${sy(y)}`;
    });
    if (s.step && points.length) path += `H${sx(x1)}`;
    svg.append(el("path", { d: path, class: `series ${s.cls}` }));
    if (s.dots) {
      for (const [x, y] of points) {
        const dot = el("circle", { cx: sx(x), cy: sy(y), r: 3, class: `dot ${s.cls}` });
        dot.append(el("title", {}, `${xFormat(x)}: ${yFormat(y)}`));
        svg.append(dot);
      }
    }
    legend.append(el("line", { x1: lx, x2: lx + 18, y1: 12, y2: 12, class: `series ${s.cls}` }));
    legend.append(el("text", { x: lx + 22, y: 16 }, s.name));
    lx += 40 + 7 * s.name.length;
  });
  svg.append(legend);
}

// --- agents for a service level ----------------------------------------------------------------

wire("staff-form", async (form, result) => {
  const body = fields(form);
  share(body, "service_level");
  share(body, "shrinkage");
  const data = await post("staff", body);
  show(result, [
    t("{agents} agents on the phones, {scheduled} to schedule (set by: {limiting})", {
      agents: int(data.agents),
      scheduled: int(data.scheduled),
      limiting: data.limiting.map((code) => t(`limit:${code}`)).join(", ") || "—",
    }),
    t("Service level {sl}, ASA {asa} s, abandoned {abandon}, occupancy {occupancy}", {
      sl: pct(data.service_level),
      asa: num(data.asa_s),
      abandon: pct(data.p_abandon),
      occupancy: pct(data.occupancy),
    }),
  ]);
  warn(result, warnings({ occupancy: data.occupancy, abandon: data.p_abandon }));
  const guides = [{ axis: "x", value: data.agents, label: int(data.agents) }];
  if (body.service_level) guides.push({ axis: "y", value: body.service_level, label: t("Target") });
  drawChart(document.getElementById("staff-chart"), {
    series: [
      { name: t("Service level"), cls: "s1", dots: true, points: data.curve.map((p) => [p.agents, p.service_level]) },
      { name: t("Occupancy"), cls: "s2", points: data.curve.map((p) => [p.agents, p.occupancy]) },
    ],
    xLabel: t("Agents"),
    yLabel: t("Service level"),
    xFormat: int,
    yFormat: pct,
    yMin: 0,
    yMax: 1,
    guides,
  });
});

// --- lines --------------------------------------------------------------------------------------

wire("lines-form", async (form, result) => {
  const body = fields(form);
  share(body, "blocking");
  share(body, "retry");
  const data = await post("lines", body);
  const lines = [
    t("{lines} lines: blocking {blocking} on {traffic} Erl of line traffic", {
      lines: int(data.lines),
      blocking: pct(data.blocking),
      traffic: num(data.line_traffic),
    }),
  ];
  if (data.retry_lines !== null) {
    lines.push(t("{lines} lines with retrying callers: blocking {blocking}", { lines: int(data.retry_lines), blocking: pct(data.retry_blocking) }));
  }
  show(result, lines);
  drawChart(document.getElementById("lines-chart"), {
    series: [{ name: t("Blocking"), cls: "s1", dots: true, points: data.curve.map((p) => [p.lines, p.blocking]) }],
    xLabel: t("Lines"),
    yLabel: t("Blocking"),
    xFormat: int,
    yFormat: pct,
    yMin: 0,
    guides: [
      { axis: "x", value: data.lines, label: int(data.lines) },
      { axis: "y", value: body.blocking ?? 0.01, label: t("Target") },
    ],
  });
});

// --- day plan -------------------------------------------------------------------------------------

function sampleForecast() {
  // Two peaks a day, 08:00–20:00 in half hours: a starting point to edit.
  const rows = [];
  for (let i = 0; i < 24; i += 1) {
    const hour = 8 + i / 2;
    const shape = Math.exp(-(((hour - 11) / 2) ** 2)) + 0.8 * Math.exp(-(((hour - 16) / 2) ** 2));
    const hh = String(Math.floor(hour)).padStart(2, "0");
    rows.push(`${hh}:${i % 2 ? "30" : "00"}, ${Math.round(100 + 1400 * shape)}`);
  }
  return rows.join("\n");
}

function steps(intervals, key) {
  // Interval i spans [i, i + 1): the last one needs its end point too.
  const points = intervals.map((r, i) => [i, r[key]]);
  if (points.length) points.push([points.length, points[points.length - 1][1]]);
  return points;
}

function parseForecast(text) {
  const today = new Date().toISOString().slice(0, 10);
  const intervals = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith("#")) return;
    const match = trimmed.match(/^(\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}|\d{1,2}:\d{2})\s*[,;\t ]\s*(\d+(?:[.,]\d+)?)$/);
    if (!match) throw new Error(t("Line {n}: write “start, calls”", { n: index + 1 }));
    let start = match[1].replace(" ", "T");
    if (!start.includes("T")) start = `${today}T${start.padStart(5, "0")}`;
    intervals.push({ start: `${start}:00`, calls: parseFloat(match[2].replace(",", ".")) });
  });
  return intervals;
}

const dayForm = wire("day-form", async (form, result) => {
  const body = fields(form);
  share(body, "service_level");
  share(body, "shrinkage");
  share(body, "max_occupancy");
  body.intervals = parseForecast(form.elements.forecast.value);
  const data = await post("day", body);
  show(result, [
    t("{calls} calls; peak {peak} agents ({scheduled} scheduled); {hours} agent-hours; {lines} lines", {
      calls: int(data.total_calls),
      peak: int(data.peak_agents),
      scheduled: int(data.peak_scheduled),
      hours: num(data.agent_hours),
      lines: int(data.lines),
    }),
    t("Day service level {sl}, ASA {asa} s, abandoned {abandon}", {
      sl: pct(data.service_level),
      asa: num(data.asa_s),
      abandon: pct(data.p_abandon),
    }),
  ]);
  const label = (iso) => iso.slice(11, 16);
  const limit = limits();
  const busiest = (key, over) => {
    const rows = data.intervals.filter((r) => r[key] > over);
    return rows.length ? [rows.length, rows.reduce((a, b) => (b[key] > a[key] ? b : a))] : [0, null];
  };
  const [hot, hottest] = busiest("occupancy", limit.occupancy);
  const [lost, worst] = busiest("p_abandon", limit.abandon);
  const dayWarnings = [];
  if (hot) {
    dayWarnings.push(t("{count} intervals with occupancy above the {ceiling} ceiling (highest {occupancy} at {time})", {
      count: int(hot),
      ceiling: pct(limit.occupancy),
      occupancy: pct(hottest.occupancy),
      time: label(hottest.start),
    }));
  }
  if (lost) {
    dayWarnings.push(t("{count} intervals with abandonment above {limit} (highest {abandon} at {time})", {
      count: int(lost),
      limit: pct(limit.abandon),
      abandon: pct(worst.p_abandon),
      time: label(worst.start),
    }));
  }
  if (data.missing && data.missing.length) {
    dayWarnings.push(t("No rows for {count} intervals between the first and the last: they are not planned", { count: int(data.missing.length) }));
  }
  warn(result, dayWarnings);
  const every = Math.max(1, Math.ceil(data.intervals.length / 12));
  drawChart(document.getElementById("day-chart"), {
    series: [
      { name: t("Agents"), cls: "s1", step: true, points: steps(data.intervals, "agents") },
      { name: t("Scheduled"), cls: "s2", step: true, points: steps(data.intervals, "scheduled") },
    ],
    xLabel: t("Time"),
    yLabel: t("Agents"),
    xFormat: int,
    yFormat: int,
    yMin: 0,
    xLabels: data.intervals.map((r, i) => [i, label(r.start)]).filter((_, i) => i % every === 0),
  });
});
dayForm.elements.forecast.value = sampleForecast();

// --- simulation -----------------------------------------------------------------------------------

function cell(row, text, header = false) {
  const node = document.createElement(header ? "th" : "td");
  node.textContent = text;
  if (header) node.scope = "col";
  row.append(node);
}

wire("sim-form", async (form, result) => {
  const body = fields(form);
  const data = await post("simulate", body);
  const overall = data.overall;
  const formula = data.formula;
  const rows = [
    [t("Service level"), overall.service_level, pct, "service_level"],
    [t("Service level among answered"), overall.service_level_answered, pct, "service_level_answered"],
    [t("ASA, s"), overall.asa_s, num, "asa_s"],
    [t("Abandoned"), overall.abandon_rate, pct, "abandon_rate"],
    [t("Occupancy"), data.occupancy, pct, "occupancy"],
    [t("Contacts per replication"), overall.offered, int, null],
  ];
  result.replaceChildren();
  result.classList.remove("error");
  const caption = document.createElement("p");
  caption.textContent = t("{replications} replications of {hours} h with {agents} agents", {
    replications: int(data.replications),
    hours: num(data.horizon_s / 3600),
    agents: int(data.agents),
  });
  const table = document.createElement("table");
  const head = document.createElement("tr");
  for (const title of [t("Figure"), t("Mean"), t("95% interval")].concat(formula ? [t("Formula")] : [])) cell(head, title, true);
  table.append(head);
  for (const [name, estimate, format, key] of rows) {
    const row = document.createElement("tr");
    cell(row, name);
    cell(row, estimate.mean === null ? "—" : format(estimate.mean));
    // Every figure is >= 0 and a share <= 1: show the symmetric t-interval clipped to that range.
    const high = format === pct ? Math.min(estimate.high, 1) : estimate.high;
    cell(row, estimate.low === null ? "—" : `${format(Math.max(estimate.low, 0))} … ${format(high)}`);
    if (formula) cell(row, key && formula[key] !== undefined ? format(formula[key]) : "");
    table.append(row);
  }
  result.append(caption, table);
  const simWarnings = (data.warnings || []).includes("queue-never-empties")
    ? [t("The queue never empties with this few agents and callers who wait: the figures grow with the hours")]
    : [];
  warn(result, simWarnings.concat(warnings({ occupancy: data.occupancy.mean, abandon: overall.abandon_rate.mean })));
});
