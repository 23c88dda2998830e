// Canned answers and macros (supervisors and administrators): the shared and personal answers with
// their shortcut and language (edited in place, deleted), and the macros that set fields, add tags and
// insert an answer.
import { api, attempt, busy, clear, el, label, t } from "./common.js";

const answersList = document.getElementById("answers");
const macrosList = document.getElementById("macros");
const answerForm = document.getElementById("answer-form");
const macroForm = document.getElementById("macro-form");
const state = { answers: [], macro: null };

/** An answer's editor in place of its line: the same fields as the new answer's form. */
function answerEditor(a, item) {
  const id = (name) => `a-${a.id}-${name}`;
  const form = el("form", { class: "answer-edit", "aria-label": t("Edit canned answer /{shortcut}", { shortcut: a.shortcut }) },
    el("div", { class: "field-row" },
      el("div", {}, el("label", { for: id("shortcut") }, t("Shortcut (typed after /)")),
        el("input", { id: id("shortcut"), name: "shortcut", value: a.shortcut, maxlength: "64", required: true })),
      el("div", {}, el("label", { for: id("language") }, t("Language")),
        el("select", { id: id("language"), name: "language" }, ["ru", "en"].map((l) => el("option", { value: l, selected: l === a.language }, l === "ru" ? "Русский" : "English")))),
      el("label", { class: "inline" }, el("input", { type: "checkbox", name: "shared", checked: a.shared }), ` ${t("Shared with everyone")}`)),
    el("label", { for: id("title") }, t("Title")), el("input", { id: id("title"), name: "title", value: a.title, maxlength: "200", required: true }),
    el("label", { for: id("body") }, t("Text")), el("textarea", { id: id("body"), name: "body", rows: "5", required: true }, a.body),
    el("div", { class: "field-row" }, el("button", { type: "submit", class: "primary" }, t("Save")),
      el("button", { type: "button", onclick: () => loadAnswers() }, t("Cancel"))));
  form.addEventListener("submit", busy(async () => {
    const data = new FormData(form);
    const patch = { shortcut: String(data.get("shortcut")).trim().replace(/^\//, ""), title: String(data.get("title")).trim(),
      body: String(data.get("body")), language: data.get("language"), shared: data.get("shared") === "on" };
    if (await attempt(() => api("PATCH", `/canned-answers/${a.id}`, patch), t("Canned answer saved"), form)) {
      await loadAnswers();
      await loadMacros();
    }
  }));
  clear(item, form);
  form.elements.namedItem("title").focus();
}

function answerItem(a) {
  const item = el("li", { "data-answer-id": String(a.id) });
  clear(item,
    el("span", {}, el("strong", {}, `/${a.shortcut}`), ` ${a.title} `, el("span", { class: "muted small" }, `${a.language.toUpperCase()} · ${a.shared ? t("shared") : t("personal")}`),
      el("div", { class: "small message" }, a.body)),
    el("span", { class: "actions" },
      el("button", { type: "button", class: "edit", onclick: () => answerEditor(a, item) }, t("Edit")), " ",
      el("button", { type: "button", class: "delete", onclick: busy(async () => {
        if (!window.confirm(t("Delete the canned answer /{shortcut}?", { shortcut: a.shortcut }))) return;
        // A 204 answers null: only undefined means the action failed (attempt showed why).
        if (await attempt(() => api("DELETE", `/canned-answers/${a.id}`), t("Canned answer deleted")) !== undefined) {
          await loadAnswers();
          await loadMacros();
        }
      }) }, t("Delete"))));
  return item;
}

async function loadAnswers() {
  state.answers = await api("GET", "/canned-answers?q=&limit=500");
  clear(answersList, state.answers.length ? state.answers.map(answerItem)
    : el("li", { class: "muted" }, t("No canned answers yet.")));
  const pick = document.getElementById("m-answer");
  clear(pick, el("option", { value: "" }, "—"), state.answers.map((a) => el("option", { value: String(a.id) }, `/${a.shortcut} — ${a.title}`)));
}

async function loadMacros() {
  const macros = await api("GET", "/macros");
  clear(macrosList, macros.length ? macros.map((m) => {
    const a = m.actions;
    const parts = [a.status ? `${t("Status")}: ${label(a.status)}` : null, a.priority ? `${t("Priority")}: ${label(a.priority)}` : null,
      a.add_tags.length ? `${t("Tags")}: +${a.add_tags.join(", +")}` : null,
      a.canned_answer_id ? `${t("Canned answer")}: /${state.answers.find((x) => x.id === a.canned_answer_id)?.shortcut ?? a.canned_answer_id}` : null].filter(Boolean);
    return el("li", { "data-macro-id": String(m.id) },
      el("span", {}, el("strong", {}, m.name), el("div", { class: "small muted" }, `${parts.join(" · ")} · ${m.shared ? t("shared") : t("personal")}`)),
      el("span", { class: "actions" },
        el("button", { type: "button", class: "edit", onclick: () => editMacro(m) }, t("Edit")), " ",
        el("button", { type: "button", class: "delete", onclick: busy(async () => {
          if (!window.confirm(t("Delete the macro {name}?", { name: m.name }))) return;
          // A 204 answers null: only undefined means the action failed (attempt showed why).
          if (await attempt(() => api("DELETE", `/macros/${m.id}`), t("Macro deleted")) !== undefined) await loadMacros();
        }) }, t("Delete"))));
  }) : el("li", { class: "muted" }, t("No macros yet.")));
}

/** Edit a macro in the macro form (its heading says so); Cancel goes back to a new one. */
function editMacro(m) {
  state.macro = m;
  const f = macroForm.elements;
  macroForm.querySelector("h3").textContent = t("Edit macro {name}", { name: m.name });
  f.namedItem("name").value = m.name;
  f.namedItem("status").value = m.actions.status || "";
  f.namedItem("priority").value = m.actions.priority || "";
  f.namedItem("add_tags").value = m.actions.add_tags.join(", ");
  f.namedItem("canned_answer_id").value = m.actions.canned_answer_id ? String(m.actions.canned_answer_id) : "";
  f.namedItem("shared").checked = m.shared;
  macroCancel.hidden = false;
  f.namedItem("name").focus();
}

function newMacro() {
  state.macro = null;
  macroForm.reset();
  macroForm.querySelector("h3").textContent = t("New macro");
  macroCancel.hidden = true;
}

const macroCancel = el("button", { type: "button", id: "macro-cancel", hidden: true, onclick: newMacro }, t("Cancel"));
macroForm.querySelector("button[type=submit]").after(" ", macroCancel);

answerForm.addEventListener("submit", busy(async () => {
  const data = new FormData(answerForm);
  const body = { shortcut: String(data.get("shortcut")).trim().replace(/^\//, ""), title: String(data.get("title")).trim(),
    body: String(data.get("body")), language: data.get("language"), shared: data.get("shared") === "on" };
  if (await attempt(() => api("POST", "/canned-answers", body), t("Canned answer saved"), answerForm)) {
    answerForm.reset();
    await loadAnswers();
    await loadMacros();
  }
}));

macroForm.addEventListener("submit", busy(async () => {
  const data = new FormData(macroForm);
  const editing = state.macro;
  // Editing keeps what the form does not show (assignee, tags removed); the form's fields replace theirs.
  const actions = {};
  if (editing && editing.actions.assignee_id !== null) actions.assignee_id = editing.actions.assignee_id;
  if (editing && editing.actions.remove_tags.length) actions.remove_tags = editing.actions.remove_tags;
  if (data.get("status")) actions.status = data.get("status");
  if (data.get("priority")) actions.priority = data.get("priority");
  const tags = String(data.get("add_tags") || "").split(",").map((s) => s.trim()).filter(Boolean);
  if (tags.length) actions.add_tags = tags;
  if (data.get("canned_answer_id")) actions.canned_answer_id = Number(data.get("canned_answer_id"));
  const body = { name: String(data.get("name")).trim(), actions, shared: data.get("shared") === "on" };
  const saved = await attempt(() => (editing ? api("PATCH", `/macros/${editing.id}`, body) : api("POST", "/macros", body)), t("Macro saved"), macroForm);
  if (saved) { newMacro(); await loadMacros(); }
}));

for (const [id, values] of [["m-status", ["open", "pending", "solved"]], ["m-priority", ["low", "normal", "high", "urgent"]]]) {
  document.getElementById(id).append(...values.map((v) => el("option", { value: v }, label(v))));
}
loadAnswers().then(loadMacros).catch(() => {});
