// A company's page: its name and website (edited in place by who may write companies), its people,
// their tickets and their deals (what the user may see; the newest hundred of each).
import { api, attempt, busy, clear, el, fmt, label, t } from "./common.js";

const root = document.getElementById("company-page");
const companyId = Number(root.dataset.companyId);
const canWrite = root.dataset.canWrite === "true";
const form = document.getElementById("company-form");

function render(overview) {
  const c = overview.company;
  document.getElementById("company-name").textContent = c.name;
  document.title = `${c.name} — Frontoffice`;
  clear(document.getElementById("company-people"), overview.people.length
    ? overview.people.map((p) => el("li", { "data-customer-id": String(p.id) }, [p.first_name, p.last_name].filter(Boolean).join(" ") || t("(no name)")))
    : el("li", { class: "muted" }, t("Nobody of this company yet.")));
  clear(document.querySelector("#company-tickets tbody"), overview.tickets.length
    ? overview.tickets.map((tk) => el("tr", { "data-ticket-id": String(tk.id) },
      el("td", {}, el("a", { href: `/tickets/${tk.id}` }, String(tk.id))),
      el("td", {}, el("a", { href: `/tickets/${tk.id}` }, tk.subject)),
      el("td", {}, label(tk.status)), el("td", {}, label(tk.priority)), el("td", {}, fmt.dateTime(tk.updated_at))))
    : el("tr", {}, el("td", { colspan: "5", class: "muted" }, t("No tickets."))));
  clear(document.querySelector("#company-deals tbody"), overview.deals.length
    ? overview.deals.map((d) => el("tr", { "data-deal-id": String(d.id) },
      el("td", {}, el("a", { href: `/deals/${d.id}` }, String(d.id))),
      el("td", {}, el("a", { href: `/deals/${d.id}` }, d.title)),
      el("td", {}, d.pipeline_id === null ? label(d.stage) : d.stage),
      el("td", { class: "num" }, fmt.money(d.amount, d.currency)), el("td", {}, d.expected_close_on || "—")))
    : el("tr", {}, el("td", { colspan: "5", class: "muted" }, t("No deals."))));
}

if (canWrite) {
  form.addEventListener("submit", busy(async () => {
    const data = new FormData(form);
    const website = String(data.get("website")).trim();
    const body = { name: String(data.get("name")).trim(), website: website || null };
    const saved = await attempt(() => api("PATCH", `/companies/${companyId}`, body), t("Company saved"), form);
    if (saved) await attempt(load);
  }));
} else {
  for (const c of form.elements) c.disabled = true;
  form.addEventListener("submit", (event) => event.preventDefault());
}

async function load() {
  render(await api("GET", `/companies/${companyId}/overview`));
}

attempt(load);
