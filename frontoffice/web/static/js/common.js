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

// ------------------------------------------------------------------ idempotency keys
/** A fresh key per user action; crypto.randomUUID needs a secure context (https, localhost), so a site
 * served over plain http on a LAN falls back to the same 122 random bits from getRandomValues. */
export function newIdempotencyKey() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Keys of writes whose outcome is unknown (the server was unreachable or failed): pressing the same
// button again with the same content is a retry of that action and sends the same key, so the server
// can answer with the first result instead of doing it twice. A definite answer ends the action.
const unsettledKeys = new Map(); // "METHOD path body" -> key

// ------------------------------------------------------------------ server reachability
let reachable = true;
/** Whether the last request or the live stream reached the server. */
export function serverReachable() { return reachable; }
/** Record whether the server answers; pages listen to "fo:connection" to show an unknown state. */
export function setServerReachable(value) {
  if (reachable === value) return;
  reachable = value;
  const banner = document.getElementById("outage");
  if (banner) banner.hidden = value;
  document.dispatchEvent(new CustomEvent("fo:connection", { detail: { reachable: value } }));
}

/** Call the REST API under /api/v1 with the session cookie; writes carry the CSRF token and an
 * Idempotency-Key. A network failure becomes an ApiError "server-unreachable" in the page's language. */
export async function api(method, path, body) {
  // Error messages in the page's language, whatever the browser's own Accept-Language says.
  const headers = { Accept: "application/json", "Accept-Language": lang };
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const write = method !== "GET";
  const signature = `${method} ${path} ${init.body || ""}`;
  if (write) {
    headers["X-CSRF-Token"] = csrf;
    const key = unsettledKeys.get(signature) || newIdempotencyKey();
    headers["Idempotency-Key"] = key;
    unsettledKeys.set(signature, key);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (error) {
    setServerReachable(false);
    throw new ApiError(0, { error_id: "server-unreachable", message: t("Server unreachable") });
  }
  setServerReachable(![502, 503, 504].includes(response.status));
  if (write && response.status < 500) unsettledKeys.delete(signature);
  if (response.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, null);
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Upload one file for a reply (multipart field "file"; its own Idempotency-Key): answers the
 * reference a reply names it by ({id, filename, content_type, size, sha256}). */
export async function uploadAttachment(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  try {
    response = await fetch("/api/v1/attachments", {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Idempotency-Key": newIdempotencyKey(), Accept: "application/json", "Accept-Language": lang },
    });
  } catch (error) {
    setServerReachable(false);
    throw new ApiError(0, { error_id: "server-unreachable", message: t("Server unreachable") });
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// ------------------------------------------------------------------ field errors
// The API checks input with a schema; its 422 names the field (loc) and the kind of error (type).
// Those become short sentences in the page's language next to the field; the schema's own English
// text ("String should match pattern ...") is never shown.
const ERROR_TYPES = {
  missing: "This field is required",
  string_too_short: "This field is required",
  too_short: "Add at least one",
  string_too_long: "This is too long",
  too_long: "Too many entries",
  string_pattern_mismatch: "Contains characters that are not allowed here",
  int_parsing: "Enter a whole number",
  int_from_float: "Enter a whole number",
  float_parsing: "Enter a number",
  greater_than: "This number is too small",
  greater_than_equal: "This number is too small",
  less_than: "This number is too large",
  less_than_equal: "This number is too large",
  literal_error: "Choose one of the offered values",
  enum: "Choose one of the offered values",
  datetime_parsing: "Enter a date and time",
  datetime_from_date_parsing: "Enter a date and time",
  bool_parsing: "Choose yes or no",
};

// What a pattern allows, by field name (the patterns of services/schemas.py and acd_schemas.py).
const PATTERN_HINTS = {
  username: "Use Latin letters, digits, dots, dashes and underscores",
  code: "Use lower-case Latin letters, digits, dashes and underscores",
  tags: "Use letters, digits, dashes, dots and colons",
  language: "Use a two-letter language code, such as en or ru",
  number: "Use digits, and + at the start",
  cc: "Enter email addresses, such as anna@example.com",
};

const isIndex = (part) => /^\d+$/.test(part);

/** The translated sentence for one 422 entry. */
export function fieldErrorText(entry) {
  const field = (entry.loc || []).slice(1).filter((p) => !isIndex(p)).pop();
  if (entry.type === "string_pattern_mismatch" && PATTERN_HINTS[field]) return t(PATTERN_HINTS[field]);
  // Our own refusals located at a field (kebab-case types) carry a message already in the page's language.
  if (entry.type && entry.type.includes("-") && entry.type !== "invalid-rule" && entry.message) return entry.message;
  // A routing rule's syntax error: the API names the rule (0-based) and the column (1-based).
  if (entry.type === "invalid-rule" && entry.rule_index !== undefined) {
    return t("Syntax error in rule {n} at column {column}", { n: Number(entry.rule_index) + 1, column: entry.column });
  }
  return t(ERROR_TYPES[entry.type] || "This value is not valid");
}

/** The form control an error's loc points at: the deepest loc part that names a control of the form. */
function controlFor(form, loc) {
  const all = (loc || []).slice(1).map(String);
  for (let i = all.length - 1; i >= 0; i -= 1) {
    if (isIndex(all[i])) continue;
    const control = form.elements.namedItem(all[i]);
    if (!control) continue;
    if (!(control instanceof RadioNodeList)) return control;
    // Several controls of one name (a list of rows): the index before the name picks the row.
    const index = i > 0 && isIndex(all[i - 1]) ? Number(all[i - 1]) : 0;
    return control[index] || control[0];
  }
  return null;
}

/** Remove a control's error (and its marks). */
export function clearFieldError(control) {
  if (control.foFieldError) control.foFieldError.remove();
  control.foFieldError = null;
  control.removeAttribute("aria-invalid");
}

let errorIds = 0;
/** Show `text` under `control`; it stays until the control is changed. */
export function showFieldError(control, text) {
  clearFieldError(control);
  errorIds += 1;
  const note = el("p", { class: "field-error", id: `field-error-${errorIds}` }, text);
  control.foFieldError = note;
  control.setAttribute("aria-invalid", "true");
  control.setAttribute("aria-describedby", note.id);
  control.after(note);
  const done = () => {
    clearFieldError(control);
    control.removeEventListener("input", done);
    control.removeEventListener("change", done);
  };
  control.addEventListener("input", done);
  control.addEventListener("change", done);
}

/** The form's own error line (errors that name no field), created before its buttons on first use. */
function formErrorBox(form) {
  let box = form.querySelector(".form-error");
  if (!box) {
    box = el("p", { class: "error-text form-error", role: "alert" });
    const submit = form.querySelector("[type=submit]");
    let row = submit;
    while (row && row.parentElement !== form) row = row.parentElement;
    if (row) row.before(box); else form.append(box);
  }
  return box;
}

/** Clear every error of a form (before it is sent again). */
export function clearFormErrors(form) {
  for (const control of form.elements) clearFieldError(control);
  const box = form.querySelector(".form-error");
  if (box) box.textContent = "";
}

/**
 * Show an API error on a form: each 422 entry under its field (the first such field focused), anything
 * that names no field of the form in the form's error line. Both stay until corrected or sent again.
 */
export function showFormErrors(form, error) {
  clearFormErrors(form);
  const entries = error instanceof ApiError && Array.isArray(error.details.errors) ? error.details.errors : [];
  const unplaced = [];
  let first = null;
  for (const entry of entries) {
    const control = controlFor(form, entry.loc);
    if (control && !control.foFieldError) {
      // A settings block edited as JSON: say which setting inside it is wrong (sms.smpp.port).
      const inside = control.dataset.jsonBlock ? (entry.loc || []).slice(2).join(".") : "";
      showFieldError(control, inside ? `${inside}: ${fieldErrorText(entry)}` : fieldErrorText(entry));
      first = first || control;
    } else if (!control) unplaced.push(errorText(new ApiError(422, { message: "", details: { errors: [entry] } })).replace(/^ — /, ""));
  }
  if (!entries.length || unplaced.length) {
    formErrorBox(form).textContent = entries.length ? [...new Set(unplaced)].join("; ") : errorText(error);
  }
  if (first) first.focus();
}

/** A readable message for an API error in the page's language (a 422 names its fields, translated). */
export function errorText(error) {
  if (error instanceof ApiError && error.details && Array.isArray(error.details.errors)) {
    const parts = error.details.errors.map((e) => {
      const field = (e.loc || []).slice(1).filter((p) => !isIndex(p)).pop();
      const name = field && t(`field:${field}`) !== `field:${field}` ? t(`field:${field}`) : field;
      return name ? `${name}: ${fieldErrorText(e)}` : fieldErrorText(e);
    });
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

/** Run an async action, reporting failures as a toast; returns the action's result or undefined.
 * Given a form, failures show on the form instead (next to the fields), and stay until corrected. */
export async function attempt(action, doneText, form = null) {
  if (form) clearFormErrors(form);
  try {
    const result = await action();
    if (doneText) toast(doneText);
    return result;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return undefined;
    if (form && form.isConnected) showFormErrors(form, error);
    else toast(errorText(error), "error");
    return undefined;
  }
}

/**
 * A reader whose calls may overlap (a click and a live event both read the same list again) and
 * whose answers may come back in any order: `draw` gets the answer of a call only if no later call
 * has started since, so an older answer never overwrites a newer one. Returns the reader.
 *
 *   const reload = newestOnly(() => api("GET", url), (items) => list.replaceChildren(...));
 */
export function newestOnly(read, draw) {
  let latest = 0;
  return async (...args) => {
    const call = ++latest;
    const answer = await read(...args);
    if (call === latest) draw(answer);
  };
}

/**
 * One user action at a time: wrap a click or submit handler so that its button (a form's buttons)
 * is disabled and marked busy while the handler runs. A second click, Enter or Ctrl+Enter during the
 * request does nothing. Each write of the handler carries its own Idempotency-Key (api above), the
 * same one again when the same action is retried after its outcome stayed unknown.
 *
 *   form.addEventListener("submit", busy(async (event) => { ... }));
 *   el("button", { onclick: busy(() => attempt(...)) }, "Save");
 */
export function busy(handler) {
  return async function guarded(event, ...rest) {
    const form = event && event.type === "submit" ? event.target : null;
    const holder = form || (event && event.currentTarget instanceof HTMLElement ? event.currentTarget : null);
    if (form) event.preventDefault();
    if (holder && holder.dataset.busy === "true") return undefined;
    const controls = form ? [...form.querySelectorAll("button")].filter((b) => b.type === "submit") : holder ? [holder] : [];
    const before = controls.map((c) => c.disabled);
    if (holder) { holder.dataset.busy = "true"; holder.setAttribute("aria-busy", "true"); }
    for (const c of controls) c.disabled = true;
    // A handler may itself switch its button off or on (a call that ended disables Hang up): that
    // choice wins over restoring the state from before the click.
    const touched = new Set();
    const watch = new MutationObserver((records) => { for (const r of records) touched.add(r.target); });
    for (const c of controls) watch.observe(c, { attributes: true, attributeFilter: ["disabled"] });
    try {
      return await handler.call(this, event, ...rest);
    } finally {
      for (const r of watch.takeRecords()) touched.add(r.target);
      watch.disconnect();
      if (holder) { delete holder.dataset.busy; holder.removeAttribute("aria-busy"); }
      controls.forEach((c, i) => { if (!touched.has(c)) c.disabled = before[i]; });
    }
  };
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
    ws.addEventListener("open", () => { delay = 500; setState("open", t("Live")); setServerReachable(true); });
    ws.addEventListener("message", (event) => {
      const { type, data } = JSON.parse(event.data);
      try { onMessage(type, data); } catch (error) { console.error(error); }
    });
    ws.addEventListener("close", (event) => {
      if (event.code === 4401) { window.location.assign("/login"); return; }
      setState("closed", t("Reconnecting…"));
      // Until the stream is back, nothing on the page is known to be current.
      setServerReachable(false);
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
