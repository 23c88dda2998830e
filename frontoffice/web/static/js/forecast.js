// The sales forecast: open and won deals by the month they are expected to close, by owner and
// currency; weighted by each stage's probability. Sums per month and currency in the table's foot
// (amounts of different currencies are never added together).
import { api, attempt, busy, clear, el, fmt, lang, me, t } from "./common.js";

const form = document.getElementById("forecast-form");
const body = document.querySelector("#forecast tbody");
const foot = document.querySelector("#forecast tfoot");
const empty = document.getElementById("forecast-empty");
const users = new Map();
const monthName = new Intl.DateTimeFormat(lang === "ru" ? "ru-RU" : "en-GB", { month: "long", year: "numeric", timeZone: "UTC" });

function ownerName(id) {
  if (id === null || id === undefined) return t("(none)");
  if (id === me.user_id) return me.username;
  const u = users.get(id);
  return u ? (u.display_name || u.username) : `#${id}`;
}

const monthLabel = (month) => monthName.format(new Date(`${month}-01T00:00:00Z`));

/** Sums of decimal strings exactly, in minor units of up to 3 decimals (ISO 4217's most). */
function addDecimal(a, b) {
  const scale = 1000n;
  const toInt = (s) => {
    const [whole, frac = ""] = String(s).split(".");
    return BigInt(whole) * scale + BigInt((frac + "000").slice(0, 3));
  };
  const sum = toInt(a) + toInt(b);
  return `${sum / scale}.${String(sum % scale).padStart(3, "0")}`;
}

function render(rows) {
  empty.hidden = rows.length > 0;
  clear(body, rows.map((r) => el("tr", { "data-month": r.month, "data-owner-id": r.owner_id === null ? "" : String(r.owner_id), "data-currency": r.currency },
    el("td", {}, monthLabel(r.month)), el("td", {}, ownerName(r.owner_id)), el("td", { class: "num" }, String(r.deals)),
    el("td", { class: "num amount" }, fmt.money(r.amount, r.currency)),
    el("td", { class: "num weighted" }, fmt.money(r.weighted_amount, r.currency)),
    el("td", { class: "num won" }, fmt.money(r.won_amount, r.currency)))));
  const totals = new Map();
  for (const r of rows) {
    const key = `${r.month} ${r.currency}`;
    const sum = totals.get(key) || { month: r.month, currency: r.currency, deals: 0, amount: "0", weighted: "0", won: "0" };
    sum.deals += r.deals;
    sum.amount = addDecimal(sum.amount, r.amount);
    sum.weighted = addDecimal(sum.weighted, r.weighted_amount);
    sum.won = addDecimal(sum.won, r.won_amount);
    totals.set(key, sum);
  }
  clear(foot, [...totals.values()].map((s) => el("tr", { class: "total", "data-month": s.month, "data-currency": s.currency },
    el("th", { scope: "row" }, monthLabel(s.month)), el("th", {}, t("Total")), el("td", { class: "num" }, String(s.deals)),
    el("td", { class: "num amount" }, fmt.money(s.amount, s.currency)),
    el("td", { class: "num weighted" }, fmt.money(s.weighted, s.currency)),
    el("td", { class: "num won" }, fmt.money(s.won, s.currency)))));
}

async function load() {
  const data = new FormData(form);
  const q = new URLSearchParams({ month: String(data.get("month")), months: String(data.get("months") || "3") });
  if (data.get("owner_id")) q.set("owner_id", String(data.get("owner_id")));
  const url = new URL(window.location.href);
  url.search = q.toString();
  window.history.replaceState(null, "", url);
  const rows = await attempt(() => api("GET", `/deals/forecast?${q}`), null, form);
  if (rows) render(rows);
}

form.addEventListener("submit", busy(load));

async function start() {
  const params = new URLSearchParams(window.location.search);
  const now = new Date();
  form.elements.namedItem("month").value = params.get("month") || `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, "0")}`;
  if (params.get("months")) form.elements.namedItem("months").value = params.get("months");
  const list = await api("GET", "/users").catch(() => []);
  const owner = document.getElementById("fc-owner");
  for (const u of list) {
    users.set(u.id, u);
    owner.append(el("option", { value: String(u.id) }, u.display_name || u.username));
  }
  if (params.get("owner_id")) owner.value = params.get("owner_id");
  await load();
}

start();
