// The knowledge base's categories (supervisors): add one, rename or move it (its position), delete it.
// Articles of a deleted category stay, without a category.
import { api, attempt, busy, clear, el, t } from "./common.js";

const list = document.getElementById("categories");
const form = document.getElementById("category-form");
const state = { projects: new Map() };

function projectName(id) {
  return id === null ? t("Every project") : (state.projects.get(id)?.name || `#${id}`);
}

/** One category: its editor (name, position) with Save and Delete. */
function row(c) {
  const edit = el("form", { class: "field-row category-edit", "aria-label": t("Category {name}", { name: c.name }) },
    el("div", {}, el("label", { for: `cat-${c.id}-name` }, t("Name")),
      el("input", { id: `cat-${c.id}-name`, name: "name", value: c.name, maxlength: "200", required: true })),
    el("div", {}, el("label", { for: `cat-${c.id}-position` }, t("Position")),
      el("input", { id: `cat-${c.id}-position`, name: "position", type: "number", value: String(c.position) })),
    el("span", { class: "muted small" }, `${projectName(c.project_id)} · ${t("{n} articles", { n: c.articles })}`),
    el("div", {}, el("button", { type: "submit" }, t("Save")), " ",
      el("button", { type: "button", class: "danger delete", onclick: busy(async () => {
        if (!window.confirm(t("Delete the category {name}? Its articles stay, without a category.", { name: c.name }))) return;
        // A 204 answers null: only undefined means the action failed (shown on the form).
        if (await attempt(() => api("DELETE", `/kb/categories/${c.id}`), t("Category deleted"), edit) !== undefined) await load();
      }) }, t("Delete"))));
  edit.addEventListener("submit", busy(async () => {
    const data = new FormData(edit);
    const patch = { name: String(data.get("name")).trim(), position: Number(data.get("position") || 0) };
    if (await attempt(() => api("PATCH", `/kb/categories/${c.id}`, patch), t("Category saved"), edit)) await load();
  }));
  return el("li", { "data-category-id": String(c.id) }, edit);
}

async function load() {
  const categories = await api("GET", "/kb/categories");
  clear(list, categories.length ? categories.map(row) : el("li", { class: "muted" }, t("No categories yet.")));
}

form.addEventListener("submit", busy(async () => {
  const data = new FormData(form);
  const body = { name: String(data.get("name")).trim(), position: Number(data.get("position") || 0),
    project_id: data.get("project_id") ? Number(data.get("project_id")) : null };
  if (await attempt(() => api("POST", "/kb/categories", body), t("Category added"), form)) { form.reset(); await load(); }
}));

async function start() {
  const projects = await api("GET", "/projects").catch(() => []);
  for (const p of projects) state.projects.set(p.id, p);
  document.getElementById("cat-project").append(...projects.map((p) => el("option", { value: String(p.id) }, p.name)));
  await attempt(load);
}

start();
