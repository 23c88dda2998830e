// The activities of one deal, ticket or customer (tasks, calls back, reminders with a due time and an
// owner): the list, soonest due first with the overdue ones marked, "show done ones", a form for a new
// one (mine, due tomorrow at 10:00 by default) and "mark done". Used by the deal and ticket pages
// (activitiesPanel, on their markup) and the customer card (activitiesSection, built here).
import { api, attempt, busy, clear, el, fmt, me, t } from "./common.js";

const KINDS = { task: "Task", call: "Call back", reminder: "Reminder" };

/** datetime-local value of an ISO instant, in the browser's zone. */
function localInput(iso) {
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Run the activities panel: `target` is {deal_id} or {ticket_id}; the page holds #activities (the
 * list), #show-done (a checkbox) and #activity-form (kind, due_at, owner_id, title, note).
 * `userName(id)` names an owner; `owners` are the user ids offered as owners (me first).
 */
export function activitiesPanel(target, userName, owners) {
  return run(document.getElementById("activities"), document.getElementById("show-done"),
    document.getElementById("activity-form"), target, userName, owners);
}

let sections = 0;
/**
 * The same panel as an element of its own (a page may hold several: one per customer card), folded
 * until opened: `target` is {customer_id} (or {deal_id}, {ticket_id}). Its list loads when opened.
 */
export function activitiesSection(target, userName, owners) {
  sections += 1;
  const n = sections;
  const id = (name) => `act${n}-${name}`;
  const fieldOf = (label, control) => el("div", {}, el("label", { for: control.id }, label), control);
  const list = el("ul", { class: "plain case-list activities" });
  const showDone = el("input", { type: "checkbox", class: "show-done" });
  const form = el("form", { class: "activity-form", "aria-label": t("New activity") },
    el("div", { class: "field-row" },
      fieldOf(t("Kind"), el("select", { id: id("kind"), name: "kind" }, Object.entries(KINDS).map(([v, text]) => el("option", { value: v }, t(text))))),
      fieldOf(t("Due"), el("input", { id: id("due"), name: "due_at", type: "datetime-local", required: true })),
      fieldOf(t("Owner"), el("select", { id: id("owner"), name: "owner_id" }))),
    fieldOf(t("Title"), el("input", { id: id("title"), name: "title", maxlength: "300", required: true })),
    fieldOf(t("Note"), el("textarea", { id: id("note"), name: "note", rows: "2", maxlength: "5000" })),
    el("div", {}, el("button", { type: "submit", class: "primary" }, t("Add activity"))));
  const section = el("details", { class: "activities-section" }, el("summary", {}, t("Activities")),
    list, el("label", { class: "inline small" }, showDone, ` ${t("Show done ones")}`), form);
  let started = false;
  section.addEventListener("toggle", () => {
    if (section.open && !started) {
      started = true;
      run(list, showDone, form, target, userName, owners);
    }
  });
  return section;
}

function run(list, showDone, form, target, userName, owners) {
  const [key, id] = Object.entries(target)[0];

  function item(a) {
    const overdue = !a.done_at && new Date(a.due_at).getTime() < Date.now();
    return el("li", { "data-activity-id": String(a.id), class: a.done_at ? "done" : overdue ? "overdue" : null },
      el("span", {}, el("strong", {}, a.title), " ",
        el("span", { class: `small ${overdue ? "error-text" : "muted"}` }, `${t(KINDS[a.kind] || a.kind)} · ${t("Due")}: ${fmt.dateTime(a.due_at)} · ${userName(a.owner_id)}`),
        a.note ? el("div", { class: "small message" }, a.note) : null),
      a.done_at ? el("span", { class: "small muted" }, `${t("Done")}: ${fmt.dateTime(a.done_at)}`)
        : el("button", { type: "button", class: "mark-done", onclick: busy(async () => {
          if (await attempt(() => api("PATCH", `/activities/${a.id}`, { done: true }), t("Activity done"))) await load();
        }) }, t("Mark done")));
  }

  async function load() {
    const q = new URLSearchParams({ [key]: String(id), open: showDone.checked ? "false" : "true", limit: "200" });
    const page = await api("GET", `/activities?${q}`);
    clear(list, page.items.length ? page.items.map(item) : el("li", { class: "muted" }, t("No activities.")));
  }

  function defaults() {
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000);
    tomorrow.setHours(10, 0, 0, 0);
    form.elements.namedItem("due_at").value = localInput(tomorrow.toISOString());
    form.elements.namedItem("owner_id").value = String(me.user_id);
  }

  clear(form.elements.namedItem("owner_id"), owners.map((uid) => el("option", { value: String(uid) }, userName(uid))));
  defaults();
  showDone.addEventListener("change", () => attempt(load));
  form.addEventListener("submit", busy(async () => {
    const data = new FormData(form);
    const due = data.get("due_at") ? new Date(String(data.get("due_at"))).toISOString() : null;
    const body = { [key]: id, kind: data.get("kind"), title: String(data.get("title")).trim(), note: String(data.get("note") || ""),
      due_at: due, owner_id: data.get("owner_id") ? Number(data.get("owner_id")) : null };
    if (await attempt(() => api("POST", "/activities", body), t("Activity added"), form)) {
      form.reset();
      defaults();
      await load();
    }
  }));
  return attempt(load);
}
