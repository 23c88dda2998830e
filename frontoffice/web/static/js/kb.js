// Knowledge base for agents: full-text search and reading an article's published text. Supervisors
// and administrators also write drafts (title, text, category) and publish them as new versions.
import { api, attempt, busy, clear, el, fmt, lang, t } from "./common.js";

const root = document.querySelector(".hd-grid");
const canEdit = root.dataset.canEdit === "true";
const results = document.getElementById("kb-results");
const article = document.getElementById("kb-article");
const state = { categories: [] };

function categoryName(id) {
  const c = state.categories.find((x) => x.id === id);
  return c ? c.name : t("(none)");
}

async function open(id) {
  const a = await attempt(() => api("GET", `/kb/articles/${id}`));
  if (!a) return;
  const published = a.published_title !== null;
  clear(article,
    el("h3", { class: "article-title" }, published ? a.published_title : a.draft_title),
    el("p", { class: "muted small" }, `${a.language.toUpperCase()} · ${t("Category")}: ${categoryName(a.category_id)} · `
      + (published ? t("Version {n}, published {when}", { n: a.version, when: fmt.dateTime(a.published_at) }) : t("Draft, not published"))),
    el("div", { class: "message article-body" }, published ? a.published_body : a.draft_body),
    canEdit ? editor(a) : null);
}

/** The draft's editor: save the draft, publish it. */
function editor(a) {
  const form = el("form", { class: "kb-editor", "aria-label": t("Edit the draft") },
    el("h3", {}, t("Draft")),
    a.id ? null : el("div", { class: "field-row" },
      el("div", {}, el("label", { for: "kb-e-language" }, t("Language")),
        el("select", { id: "kb-e-language", name: "language" }, ["ru", "en"].map((l) => el("option", { value: l, selected: l === lang }, l.toUpperCase()))))),
    el("label", { for: "kb-e-category" }, t("Category")),
    el("select", { id: "kb-e-category", name: "category_id" }, el("option", { value: "" }, t("(none)")),
      state.categories.map((c) => el("option", { value: String(c.id), selected: c.id === a.category_id }, c.name))),
    el("label", { for: "kb-e-title" }, t("Title")), el("input", { id: "kb-e-title", name: "title", value: a.draft_title || "", maxlength: "300" }),
    el("label", { for: "kb-e-body" }, t("Text")), el("textarea", { id: "kb-e-body", name: "body", rows: "10" }, a.draft_body || ""),
    el("div", { class: "field-row" },
      el("button", { type: "submit", class: "primary" }, t("Save draft")),
      a.id ? el("button", { type: "button", class: "publish", onclick: busy(async () => {
        const done = await attempt(() => api("POST", `/kb/articles/${a.id}/publish`), t("Article published"), form);
        if (done) await open(a.id);
      }) }, t("Publish")) : null));
  form.addEventListener("submit", busy(async () => {
    const data = new FormData(form);
    const body = { title: String(data.get("title")).trim(), body: String(data.get("body")),
      category_id: data.get("category_id") ? Number(data.get("category_id")) : null };
    const saved = a.id
      ? await attempt(() => api("PATCH", `/kb/articles/${a.id}`, body), t("Draft saved"), form)
      : await attempt(() => api("POST", "/kb/articles", { ...body, language: data.get("language") }), t("Draft saved"), form);
    if (saved) await open(saved.id);
  }));
  return form;
}

document.getElementById("kb-search").addEventListener("submit", busy(async (event) => {
  const form = event.target;
  const data = new FormData(form);
  const q = new URLSearchParams({ q: String(data.get("q")).trim() });
  if (data.get("language")) q.set("language", data.get("language"));
  const hits = await attempt(() => api("GET", `/kb/search?${q}`), null, form);
  if (!hits) return;
  clear(results, hits.length ? hits.map((h) => el("li", { "data-article-id": String(h.id) },
    el("button", { type: "button", class: "link", onclick: busy(() => open(h.id)) }, h.title),
    el("div", { class: "muted small" }, `${h.language.toUpperCase()} · ${h.snippet}`)))
    : el("li", { class: "muted" }, t("Nothing found.")));
}));

if (canEdit) {
  document.getElementById("kb-new").addEventListener("click", () => {
    clear(article, editor({ id: null, draft_title: "", draft_body: "", category_id: null }));
  });
}

api("GET", "/kb/categories").then((list) => { state.categories = list; }).catch(() => {});
const wanted = new URLSearchParams(window.location.search).get("article");
if (wanted) open(Number(wanted));
