// The desk's outbound card: a preview campaign's next contact with the customer's card (dial, or skip
// with a reason), the call in progress, its result (a disposition of the campaign, a callback for me or
// the team) and the do-not-call button for a customer who asks not to be called again.
import { api, attempt, busy, clear, el, errorText, fmt, t, toast } from "./common.js";

const card = document.getElementById("outbound");
const body = document.getElementById("outbound-body");
let campaigns = [];
let chosen = null;

async function start() {
  try {
    campaigns = await api("GET", "/campaign-desk");
  } catch (error) {
    return; // not an agent's desk
  }
  card.hidden = false;
  render();
}

function render(preview = null, note = "") {
  const select = el("select", { id: "outbound-campaign", onchange: () => { chosen = Number(select.value) || null; } },
    el("option", { value: "" }, t("Choose…")),
    campaigns.map((c) => el("option", { value: String(c.id) }, `${c.name} (${t(c.mode)})`)));
  if (chosen) select.value = String(chosen);
  const next = el("button", {
    type: "button", class: "primary",
    onclick: busy(() => attempt(async () => {
      if (!chosen) return;
      const found = await api("POST", `/campaigns/${chosen}/preview`);
      render(found, found ? "" : t("No contact is due now"));
    })),
  }, t("Next contact"));
  const current = el("button", {
    type: "button",
    onclick: busy(() => attempt(async () => {
      const found = await api("GET", "/campaign-desk/current");
      render(found, found ? "" : t("No campaign call yet"));
    })),
  }, t("My current call"));
  clear(body,
    campaigns.length ? el("div", { class: "field-row" }, el("label", { for: "outbound-campaign", class: "visually-hidden" }, t("Campaign")), select, next, current)
      : el("p", { class: "muted" }, t("No campaign is running")),
    note ? el("p", { class: "muted", role: "status" }, note) : null,
    preview ? contactCard(preview) : null,
  );
}

function contactCard(p) {
  const c = p.contact;
  const customer = p.customer;
  const reason = el("input", { id: "skip-reason", maxlength: "200", placeholder: t("Reason") });
  const disposition = el("select", { id: "outbound-disposition", name: "code" }, el("option", { value: "" }, t("Choose a disposition")),
    p.dispositions.map((code) => el("option", { value: code }, t(code))));
  const callbackAt = el("input", { id: "outbound-callback", name: "callback_at", type: "datetime-local" });
  const callbackTo = el("select", { id: "outbound-callback-to", name: "callback_to" }, el("option", { value: "me" }, t("For me")), el("option", { value: "team" }, t("For the team")));
  let interactionId = p.interaction_id;
  const status = el("p", { role: "status", class: "muted" }, interactionId ? t("On the call") : "");
  return el("article", { class: "outbound-contact" },
    el("h3", {}, c.name || customer && `${customer.first_name} ${customer.last_name}`.trim() || t("(no name)")),
    el("p", {}, el("strong", {}, c.phone), " · ", p.campaign, " · ", t("{zone} time", { zone: c.time_zone || "—" })),
    customer ? el("p", { class: "small" }, el("a", { href: `/desk#customer-${customer.id}` }, t("Customer card")), customer.vip ? ` · ${t("VIP")}` : "") : null,
    Object.keys(c.data || {}).length ? el("dl", { class: "facts small" }, Object.entries(c.data).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])) : null,
    p.attempts.length ? el("p", { class: "small muted" }, t("Earlier attempts: {list}", { list: p.attempts.map((a) => `${fmt.dateTime(a.claimed_at)} ${t(a.outcome || a.state)}`).join("; ") })) : null,
    c.state === "preview" ? el("div", { class: "field-row" },
      el("button", {
        type: "button", class: "primary",
        onclick: busy(() => attempt(async () => {
          const dialled = await api("POST", `/campaign-contacts/${c.id}/dial`);
          interactionId = dialled.interaction_id;
          status.textContent = t("Dialling… your phone rings first");
        })),
      }, t("Dial")),
      reason,
      el("button", {
        type: "button",
        onclick: busy(() => attempt(async () => { await api("POST", `/campaign-contacts/${c.id}/skip`, { reason: reason.value }); render(null, t("Skipped")); })),
      }, t("Skip")),
    ) : null,
    status,
    el("form", {
      class: "outbound-result",
      onsubmit: busy(async (e) => {
        const payload = { code: disposition.value, callback_to: callbackTo.value };
        if (callbackAt.value) payload.callback_at = new Date(callbackAt.value).toISOString();
        // Errors next to their fields (named as the API's): the form stays until the result is saved.
        if (await attempt(() => api("POST", `/campaign-contacts/${c.id}/disposition`, payload), null, e.target) !== undefined) render(null, t("Result saved"));
      }),
    },
    el("label", { for: "outbound-disposition" }, t("Result")), disposition,
    el("label", { for: "outbound-callback" }, t("Call back at (optional)")), callbackAt, callbackTo,
    el("button", { type: "submit" }, t("Save result"))),
    el("button", {
      type: "button", class: "danger",
      onclick: busy(async () => {
        if (!interactionId) { toast(t("Dial first: the number comes from the call"), "error"); return; }
        await attempt(() => api("POST", "/dnc/from-call", { interaction_id: interactionId, reason: t("The customer asked not to be called") }), t("The number will not be called again"));
      }),
    }, t("Do not call again")),
  );
}

start().catch((error) => toast(errorText(error), "error"));
