// Campaigns: the list with live start / pause / resume / stop, a campaign's rules, windows and contact
// list (CSV import with line-numbered errors), the supervisor's view of its progress (contacts per
// hour, answer rate, abandon rate against the cap, agents' talk share), and the do-not-call lists.
import { ApiError, api, attempt, busy, clear, el, errorText, fmt, me, newIdempotencyKey, t, toast } from "./common.js";

const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const MODES = ["preview", "progressive", "predictive", "notification"];
const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const ACTIONS = { draft: ["start"], running: ["pause", "stop"], paused: ["resume", "stop"], stopped: ["start"], finished: [] };
const ACTION_LABELS = { start: "Start", pause: "Pause", resume: "Resume", stop: "Stop" };
let watching = null;
// Creating campaigns, importing contacts and editing do-not-call lists is an administrator's
// (routing.write); supervisors start, pause and stop campaigns and watch them.
const canManage = $("campaigns-page").dataset.canManage === "true";

async function upload(path, file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const response = await fetch(`/api/v1${path}`, {
    method: "POST", body: form, credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, "Idempotency-Key": newIdempotencyKey(), Accept: "application/json" },
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function importReport(box, report) {
  clear(box);
  if (report.errors.length) {
    box.append(el("p", { class: "error-text", role: "alert" }, t("Nothing was imported: fix these lines")));
    box.append(el("ul", {}, report.errors.map((e) => el("li", {}, t("Line {line}, {field}: {message}", e)))));
  } else {
    box.append(el("p", { role: "status" }, t("{created} added of {rows} rows", report)));
  }
}

// ------------------------------------------------------------------ the list
async function list() {
  const campaigns = await api("GET", "/campaigns");
  const body = $("campaign-table").querySelector("tbody");
  clear(body, campaigns.map((c) => {
    const total = Object.values(c.contacts).reduce((a, b) => a + b, 0);
    const open = (c.contacts.pending || 0) + (c.contacts.dialling || 0) + (c.contacts.preview || 0);
    return el("tr", {},
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); view(c.id); } }, c.name)),
      el("td", {}, t(c.mode)),
      el("td", {}, el("span", { class: "badge" }, t(c.state))),
      el("td", {}, total ? t("{done} of {total} worked", { done: total - open, total }) : t("No contacts yet")),
      el("td", {}, (ACTIONS[c.state] || []).map((action) => el("button", {
        type: "button",
        "data-action": action,
        onclick: busy(() => attempt(async () => { await api("POST", `/campaigns/${c.id}/${action}`); await list(); }, t("Campaign updated"))),
      }, t(ACTION_LABELS[action])))),
    );
  }));
  if (!campaigns.length) body.append(el("tr", {}, el("td", { colspan: "5", class: "muted" }, t("No campaigns yet"))));
}

// ------------------------------------------------------------------ one campaign: rules, list, progress
async function view(id) {
  const c = await api("GET", `/campaigns/${id}`);
  const root = $("campaign-view");
  const progress = el("div", { class: "campaign-progress", "aria-live": "polite" });
  const report = el("div");
  const file = el("input", { type: "file", accept: ".csv,text/csv", id: "contacts-file" });
  const windows = c.windows.map((w) => `${w.days.map((d) => t(DAYS[d])).join(", ")} ${w.start}–${w.end}`).join("; ");
  const retry = Object.entries(c.retry).map(([k, v]) => t("{outcome}: again after {after} s, {most} attempts at most", { outcome: t(k), after: v.after_s, most: v.max_attempts })).join("; ");
  clear(root,
    el("h3", {}, c.name),
    el("dl", { class: "facts" },
      el("dt", {}, t("Mode")), el("dd", {}, t(c.mode)),
      el("dt", {}, t("Calling windows (the contact's local time)")), el("dd", {}, windows || t("(always open)")),
      el("dt", {}, t("Retry rules")), el("dd", {}, retry || t("Defaults")),
      el("dt", {}, t("Caller id")), el("dd", {}, c.caller_id || "—"),
      el("dt", {}, t("Abandon cap")), el("dd", {}, fmt.percent(c.settings.abandon_cap)),
      el("dt", {}, t("Answering-machine detection")), el("dd", {}, !c.settings.amd ? t("Off")
        : c.settings.amd_machine_action === "message" ? t("On: a machine gets the message") : t("On: a machine is hung up")),
      el("dt", {}, t("Dispositions")), el("dd", {}, c.dispositions.join(", ") || "—"),
      el("dt", {}, t("Message")), el("dd", {}, c.message_text || "—", c.message_audio ? ` (${t("audio ready")})` : ""),
    ),
    !canManage ? null : el("form", {
      class: "inline-form",
      onsubmit: busy(async () => {
        if (!file.files.length) return;
        await attempt(async () => { importReport(report, await upload(`/campaigns/${id}/contacts/import`, file.files[0])); await list(); });
      }),
    }, el("label", { for: "contacts-file" }, t("Import contacts (CSV: phone, name, time_zone, priority)")), file, el("button", { type: "submit" }, t("Import"))),
    report,
    el("h4", {}, t("Progress")),
    progress,
  );
  if (c.settings.amd) root.append(el("h4", {}, t("Answering-machine decisions")), await amdDecisions(id));
  if (watching) clearInterval(watching);
  const refresh = async () => {
    try { showProgress(progress, await api("GET", `/campaigns/${id}/progress`)); } catch (error) { progress.textContent = errorText(error); }
  };
  await refresh();
  watching = setInterval(refresh, 5000);
}

// The latest answering-machine detection decisions with the audio each was made on, to review them.
async function amdDecisions(id) {
  const page = await api("GET", `/campaigns/${id}/attempts?limit=100`);
  const rows = page.items.filter((a) => a.amd_decision);
  if (!rows.length) return el("p", { class: "muted" }, t("No decision yet"));
  return el("table", { class: "table" },
    el("thead", {}, el("tr", {}, [t("Phone"), t("Decision"), t("Why"), t("Analysed"), t("Audio"), t("Result")].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.map((a) => el("tr", {},
      el("td", {}, a.phone),
      el("td", {}, el("span", { class: "badge" }, t(a.amd_decision))),
      el("td", {}, t(a.amd_cause)),
      el("td", {}, t("{n} ms", { n: fmt.number(a.amd_ms) })),
      el("td", {}, a.amd_audio
        ? el("audio", { controls: true, preload: "none", src: `/api/v1/campaigns/${id}/attempts/${a.id}/amd-audio`, "aria-label": t("Audio") })
        : t("Not kept")),
      el("td", {}, a.outcome ? t(a.outcome) : "—"),
    ))),
  );
}

function showProgress(root, p) {
  const over = p.abandon_rate > p.abandon_cap;
  clear(root,
    el("dl", { class: "facts" },
      el("dt", {}, t("Worked")), el("dd", {}, fmt.percent(p.done_share), ` (${p.total})`),
      el("dt", {}, t("Contacts per hour")), el("dd", {}, fmt.number(p.contacts_per_hour)),
      el("dt", {}, t("Calls in progress")), el("dd", {}, fmt.number(p.in_flight)),
      el("dt", {}, t("Answer rate")), el("dd", {}, fmt.percent(p.answer_rate)),
      el("dt", {}, t("Abandon rate")), el("dd", { class: over ? "status-bad" : "" }, t("{rate} (cap {cap})", { rate: fmt.percent(p.abandon_rate), cap: fmt.percent(p.abandon_cap) })),
      el("dt", {}, t("Dialling as")), el("dd", {}, t(p.effective_mode)),
      el("dt", {}, t("Confirmations")), el("dd", {}, Object.entries(p.confirmations).map(([k, v]) => `${t(k)}: ${v}`).join(", ") || "—"),
    ),
    el("table", { class: "table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("Agent")), el("th", { scope: "col" }, t("Calls")), el("th", { scope: "col" }, t("Talk share")))),
      el("tbody", {}, p.agents.map((a) => el("tr", {}, el("td", {}, a.name), el("td", {}, fmt.number(a.calls)), el("td", {}, fmt.percent(a.share))))),
    ),
  );
}

// ------------------------------------------------------------------ a new campaign
async function newCampaign(root) {
  const queues = await api("GET", "/queues").catch(() => []);
  const f = (labelText, node) => el("div", {}, el("label", { for: node.id }, labelText), node);
  const name = el("input", { id: "c-name", name: "name", required: true, maxlength: "200" });
  const mode = el("select", { id: "c-mode", name: "mode" }, MODES.map((m) => el("option", { value: m }, t(m))));
  const queue = el("select", { id: "c-queue", name: "queue_id" }, el("option", { value: "" }, t("(none)")), queues.map((q) => el("option", { value: String(q.id) }, q.name)));
  const trunk = el("input", { id: "c-trunk", name: "trunk", maxlength: "64" });
  const callerId = el("input", { id: "c-caller", name: "caller_id", maxlength: "32", inputmode: "tel" });
  const days = el("fieldset", {}, el("legend", {}, t("Days")), DAYS.map((d, i) => el("label", { class: "inline" }, el("input", { type: "checkbox", name: "days", value: String(i), checked: i < 5 }), t(d))));
  const start = el("input", { id: "c-start", name: "start", type: "time", value: "09:00" });
  const end = el("input", { id: "c-end", name: "end", type: "time", value: "21:00" });
  const busyAfter = el("input", { id: "c-busy", name: "busy", type: "number", min: "0", value: "600" });
  const noAnswerAfter = el("input", { id: "c-noanswer", name: "no_answer", type: "number", min: "0", value: "3600" });
  const attempts = el("input", { id: "c-attempts", name: "max_attempts", type: "number", min: "1", max: "50", value: "3" });
  const dispositions = el("input", { id: "c-dispositions", name: "dispositions", placeholder: "sale, not_interested" });
  const message = el("textarea", { id: "c-message", name: "message_text", maxlength: "1000", rows: "3" });
  const language = el("select", { id: "c-language", name: "message_language" }, el("option", { value: me.lang === "ru" ? "ru" : "en" }, me.lang === "ru" ? "Русский" : "English"), el("option", { value: me.lang === "ru" ? "en" : "ru" }, me.lang === "ru" ? "English" : "Русский"));
  const cap = el("input", { id: "c-cap", name: "abandon_cap", type: "number", min: "0", max: "20", step: "0.1", value: "3" });
  const amd = el("input", { id: "c-amd", name: "amd", type: "checkbox" });
  const form = el("form", {
    id: "campaign-form",
    onsubmit: busy(async () => {
      const most = Number(attempts.value || 3);
      const body = {
        name: name.value,
        mode: mode.value,
        queue_id: queue.value ? Number(queue.value) : null,
        trunk: trunk.value || null,
        caller_id: callerId.value,
        windows: [{ days: [...days.querySelectorAll("input:checked")].map((n) => Number(n.value)), start: start.value, end: end.value }],
        retry: { busy: { after_s: Number(busyAfter.value), max_attempts: most }, no_answer: { after_s: Number(noAnswerAfter.value), max_attempts: most } },
        dispositions: dispositions.value.split(",").map((s) => s.trim()).filter(Boolean),
        message_text: message.value,
        message_language: language.value,
        settings: { abandon_cap: Number(cap.value) / 100, amd: amd.checked },
      };
      // Errors show next to their fields (the inputs are named as the API's fields) and stay until fixed.
      if (await attempt(() => api("POST", "/campaigns", body), t("Campaign created"), form)) {
        form.reset();
        location.hash = "#list";
      }
    }),
  },
  el("h2", {}, t("New campaign")),
  f(t("Name"), name), f(t("Mode"), mode), f(t("Queue"), queue), f(t("Trunk (empty: the first)"), trunk), f(t("Caller id"), callerId),
  days, f(t("From (the contact's local time)"), start), f(t("To"), end),
  f(t("Busy: call again after (s)"), busyAfter), f(t("No answer: call again after (s)"), noAnswerAfter), f(t("Attempts at most"), attempts),
  f(t("Dispositions (comma-separated codes)"), dispositions),
  f(t("Recorded message: who calls, why, a number to call back (spoken with espeak-ng)"), message), f(t("Language"), language),
  f(t("Abandon cap, % of answered calls"), cap),
  el("label", { class: "inline" }, amd, ` ${t("Answering-machine detection (off by default: it can hang up on a live person)")}`),
  el("button", { type: "submit", class: "primary" }, t("Create campaign")));
  clear(root, form);
}

// ------------------------------------------------------------------ do-not-call lists
async function dnc(root) {
  const page = await api("GET", "/dnc?limit=100");
  const phone = el("input", { id: "dnc-phone", name: "phone", maxlength: "40", required: true });
  const reason = el("input", { id: "dnc-reason", name: "reason", maxlength: "200" });
  const file = el("input", { id: "dnc-file", type: "file", accept: ".csv,text/csv" });
  const report = el("div");
  clear(root,
    el("h2", {}, t("Do-not-call lists")),
    !canManage ? null : el("form", {
      class: "inline-form",
      id: "dnc-form",
      onsubmit: busy(async (e) => { if (await attempt(() => api("POST", "/dnc", { phone: phone.value, reason: reason.value }), t("Number added"), e.target)) await dnc(root); }),
    }, el("label", { for: "dnc-phone" }, t("Phone")), phone, el("label", { for: "dnc-reason" }, t("Reason")), reason, el("button", { type: "submit" }, t("Add to the global list"))),
    !canManage ? null : el("form", {
      class: "inline-form",
      onsubmit: busy(async () => { if (file.files.length) await attempt(async () => { importReport(report, await upload("/dnc/import", file.files[0])); await dnc(root); }); }),
    }, el("label", { for: "dnc-file" }, t("Import (CSV with a phone column)")), file, el("button", { type: "submit" }, t("Import"))),
    report,
    el("p", {}, el("a", { href: "/api/v1/dnc/export", download: "do-not-call.csv" }, t("Export as CSV"))),
    el("table", { class: "table" },
      el("thead", {}, el("tr", {}, [t("Phone"), t("List"), t("Reason"), t("Source"), t("Added")].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, page.items.map((d) => el("tr", {},
        el("td", {}, d.phone), el("td", {}, d.project_id === null ? t("Global") : `#${d.project_id}`), el("td", {}, d.reason),
        el("td", {}, t(d.source)), el("td", {}, fmt.dateTime(d.added_at))))),
    ),
  );
}

// ------------------------------------------------------------------ sections
const SECTIONS = canManage ? { list: null, new: newCampaign, dnc } : { list: null, dnc };
async function show() {
  let id = (location.hash || "#list").slice(1);
  if (!(id in SECTIONS)) id = "list";
  for (const key of ["list", "new", "dnc"]) $(`section-${key}`).hidden = key !== id;
  const render = SECTIONS[id];
  if (id === "list") await list();
  else if (render) await render($(`section-${id}`));
}
window.addEventListener("hashchange", () => show().catch((error) => toast(errorText(error), "error")));
show().catch((error) => toast(errorText(error), "error"));
