// Shared helpers of every page: translated strings, the REST client (session cookie + CSRF header),
// the live stream, locale formatting and a tiny DOM builder. No dependencies, no build step.

const messages = JSON.parse(document.getElementById("fo-messages").textContent);
export const me = JSON.parse(document.getElementById("fo-me").textContent);
export const lang = me.lang || document.documentElement.lang || "en";
const csrf = document.querySelector('meta[name="csrf-token"]').content;

/** Translate `text` (the English source) and fill `{name}` placeholders. */
export function t(text, vars = {}) {
  const template = messages[text] || text;
  return template.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.errorId = body && body.error_id;
    this.details = (body && body.details) || {};
  }
}

/** Call the REST API under /api/v1 with the session cookie; writes carry the CSRF token. */
export async function api(method, path, body) {
  // Error messages in the page's language, whatever the browser's own Accept-Language says.
  const headers = { Accept: "application/json", "Accept-Language": lang };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/api/v1${path}`, init);
  if (response.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, null);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A readable message for an API error (422s list the fields). */
export function errorText(error) {
  if (error instanceof ApiError && error.details && Array.isArray(error.details.errors)) {
    const parts = error.details.errors.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.message}`);
    return `${error.message} — ${parts.join("; ")}`;
  }
  return error.message || String(error);
}

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  const item = el("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : null }, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

/** Run an async action, reporting failures as a toast; returns the action's result or undefined. */
export async function attempt(action, doneText) {
  try {
    const result = await action();
    if (doneText) toast(doneText);
    return result;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) toast(errorText(error), "error");
    return undefined;
  }
}

/** Build an element: el("button", {class: "primary", onclick: f}, "text", child...). Text is never HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

// ------------------------------------------------------------------ formatting for the locale
const locale = lang === "ru" ? "ru-RU" : "en-GB";
const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
const numberFmt = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
const percentFmt = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });

export const fmt = {
  dateTime: (value) => (value ? dateTime.format(new Date(value)) : "—"),
  time: (value) => (value ? timeOnly.format(new Date(value)) : "—"),
  number: (value) => (value === null || value === undefined ? "—" : numberFmt.format(value)),
  percent: (value) => (value === null || value === undefined ? "—" : percentFmt.format(value)),
  /** A decimal string and an ISO 4217 code: "150000.50", "RUB" -> "150 000,50 ₽" (ru) or "RUB 150,000.50" (en). */
  money(amount, currency) {
    if (amount === null || amount === undefined) return "—";
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency }).format(Number(amount));
    } catch (error) {
      return `${amount} ${currency}`;
    }
  },
  /** 75 -> "1:15", 3700 -> "1:01:40" */
  duration(seconds) {
    if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  },
  /** E.164 to a readable national grouping: +74951234567 -> +7 495 123-45-67. */
  phone(value) {
    const m = /^\+(\d+)$/.exec(value || "");
    if (!m) return value || "";
    const d = m[1];
    if (d.length === 11 && d[0] === "7") return `+7 ${d.slice(1, 4)} ${d.slice(4, 7)}-${d.slice(7, 9)}-${d.slice(9)}`;
    if (d.length === 11 && d[0] === "1") return `+1 (${d.slice(1, 4)}) ${d.slice(4, 7)}-${d.slice(7)}`;
    if (d.length === 12 && d.startsWith("44")) return `+44 ${d.slice(2, 6)} ${d.slice(6)}`;
    return `+${d}`;
  },
};

/** Translated names of channels, states and agent states (the API sends codes). */
export function label(code) {
  return code === null || code === undefined ? "—" : t(`code:${code}`) === `code:${code}` ? code : t(`code:${code}`);
}

// ------------------------------------------------------------------ server clock
// Engine times are epoch seconds of the server; the skew makes countdowns right on a drifting PC.
let skew = 0;
export const clock = {
  setServerNow(serverSeconds) { skew = serverSeconds - Date.now() / 1000; },
  now() { return Date.now() / 1000 + skew; },
};

/** One timer for every "ticking" display on the page (countdowns, time in state): render only. */
const tickers = new Set();
export function onTick(fn) { tickers.add(fn); return () => tickers.delete(fn); }
setInterval(() => { for (const fn of tickers) fn(); }, 1000);

// ------------------------------------------------------------------ live stream
/**
 * Connect to /api/v1/stream and call onMessage(type, data) for each message; reconnects after a drop
 * (the first message after a reconnect is a fresh "hello" snapshot, so nothing is replayed).
 */
export function connectStream(onMessage) {
  const badge = document.getElementById("conn");
  let delay = 500;
  const setState = (state, text) => { badge.dataset.state = state; badge.textContent = text; };
  const open = () => {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${window.location.host}/api/v1/stream`);
    ws.addEventListener("open", () => { delay = 500; setState("open", t("Live")); });
    ws.addEventListener("message", (event) => {
      const { type, data } = JSON.parse(event.data);
      try { onMessage(type, data); } catch (error) { console.error(error); }
    });
    ws.addEventListener("close", (event) => {
      if (event.code === 4401) { window.location.assign("/login"); return; }
      setState("closed", t("Reconnecting…"));
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 15000);
    });
  };
  open();
}

// ------------------------------------------------------------------ page chrome
document.getElementById("sign-out").addEventListener("click", async () => {
  await attempt(() => api("POST", "/auth/logout"));
  window.location.assign("/login");
});

/** Local midnight as ISO with offset (for "today"). */
export function localMidnightIso() {
  const d = new Date();
  d.setHours(0, 0, 0, 0);
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0");
  const mm = String(Math.abs(offset) % 60).padStart(2, "0");
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T00:00:00${sign}${hh}:${mm}`;
}

// Disposition codes by name, filled by pages that load them (GET /codes/dispositions).
const dispositionNames = new Map();
export function setDispositions(list) { for (const d of list) dispositionNames.set(d.code, d.name); }
export function dispositionName(code) { return dispositionNames.get(code) || code; }

export function customerName(c) {
  if (!c) return t("Unknown customer");
  return c.display_name || [c.first_name, c.last_name].filter(Boolean).join(" ") || t("(no name)");
}
