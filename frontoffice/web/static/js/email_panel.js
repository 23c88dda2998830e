// The email panel of the agent desktop (docs/user-guide.md, "Email"): the thread's messages (quoted
// text folded, why each joined the thread, files, remote images on request), and the reply box:
// reply / reply all / forward, files, canned answers, send or send and wrap up. Outbound messages show
// their delivery state (queued, sent, failed with the reason), updated live from the stream.
// Web-form contacts get the same panel: their answer goes out by email to the customer's address.

import {
  ApiError, attempt, busy, clearFormErrors, newIdempotencyKey, showFieldError, showFormErrors, toast,
} from "./common.js";
import { registerPanel } from "./panels.js";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const REASONS = {
  "in-reply-to": "Answers our message (In-Reply-To)",
  references: "Names a message of this thread (References)",
  "subject-token": "The thread's number is in the subject",
  "plus-address": "Sent to this thread's reply address",
  "new-thread": "Started this thread",
  split: "Split from another thread by an agent",
  merge: "Merged from another thread by an agent",
};
const STATES = { queued: "Queued", sending: "Sending", sent: "Sent", delivered: "Delivered", failed: "Failed" };

/** The text with its quoted parts folded: the parser's ranges, else trailing "> " lines. */
function foldedBody(message, desk) {
  const { el, t } = desk;
  const body = message.body || "";
  let ranges = Array.isArray(message.flags && message.flags.folds) ? message.flags.folds.map(([s, e]) => [s, e]) : [];
  if (!ranges.length) {
    const match = body.match(/\n\n(On [^\n]*wrote:|---------- Forwarded message ----------)\n[\s\S]*$/);
    if (match && !match[1].startsWith("-")) ranges = [[match.index, body.length]];
  }
  const parts = [];
  let at = 0;
  for (const [start, end] of ranges.sort((a, b) => a[0] - b[0])) {
    if (start < at) continue;
    if (start > at) parts.push(el("span", {}, body.slice(at, start)));
    parts.push(el("details", { class: "quoted" }, el("summary", {}, t("Quoted text")), el("span", {}, body.slice(start, end))));
    at = end;
  }
  if (at < body.length) parts.push(el("span", {}, body.slice(at)));
  return el("div", { class: "message-body" }, ...parts);
}

function stateBadge(message, desk) {
  const { el, t } = desk;
  const state = message.delivery_state;
  const badge = el("span", { class: `badge delivery delivery-${state}`, "data-delivery": state, role: "status" },
    t(STATES[state] || state));
  const reason = el("span", { class: "delivery-error small" }, message.delivery_error || "");
  return el("span", { class: "delivery-state", "data-message-id": String(message.id) }, badge, " ", reason);
}

function renderMessage(message, desk, reload) {
  const { el, t, fmt, api } = desk;
  const to = (message.recipients && message.recipients.to) || [];
  const cc = (message.recipients && message.recipients.cc) || [];
  const head = el("div", { class: "muted small message-head" },
    `${message.sender || "—"} → ${[...to, ...cc].join(", ") || "—"} · ${fmt.dateTime(message.created_at)}`);
  const item = el("article", { class: `message ${message.direction}`, "data-message-id": String(message.id) }, head);
  if (message.subject) item.append(el("div", { class: "message-subject" }, message.subject));
  if (message.thread_reason && message.direction === "inbound") {
    item.append(el("p", { class: "why-threaded small muted" }, t("Why here: {reason}", { reason: t(REASONS[message.thread_reason] || message.thread_reason) })));
  }
  if (message.direction === "outbound" && message.delivery_state) item.append(stateBadge(message, desk));
  item.append(foldedBody(message, desk));
  if (message.html_body && message.flags && message.flags.remote_images === "blocked") {
    item.append(el("button", { type: "button", class: "allow-images small",
      onclick: busy(() => attempt(async () => {
        await api("POST", `/threads/messages/${message.id}/remote-images`);
        await reload();
      }, t("Images allowed"))) }, t("Show remote images")));
  }
  const files = message.attachments || [];
  if (files.length) {
    item.append(el("ul", { class: "attachments" }, files.map((f) => el("li", {},
      el("a", { href: f.url || `/api/v1/attachments/${f.id}`, download: f.filename }, f.filename),
      el("span", { class: "muted small" }, ` ${fmt.bytes ? fmt.bytes(f.size) : `${f.size} B`}`)))));
  }
  return item;
}

async function loadMessages(contact, desk) {
  if (contact.thread_id) {
    try {
      const page = await desk.api("GET", `/threads/${contact.thread_id}/messages?limit=200`);
      return page.items;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 404) throw error;
    }
  }
  return desk.api("GET", `/interactions/${contact.id}/messages`);
}

/** Upload one file for a reply (multipart; its own Idempotency-Key). */
async function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  const response = await fetch("/api/v1/attachments", {
    method: "POST", body: form, credentials: "same-origin",
    headers: { "X-CSRF-Token": csrf, "Idempotency-Key": newIdempotencyKey(), Accept: "application/json" },
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function emailPanel() {
  return {
    async mount(contact, root, desk) {
      const { api, t, el } = desk;
      const id = `mail-${contact.id}`;
      const state = { contact, list: null, refs: [], desk };
      const list = el("div", { class: "messages email-thread", "aria-live": "polite" }, el("p", { class: "muted" }, t("Loading…")));
      state.list = list;
      async function reload() {
        const current = await api("GET", `/interactions/${contact.id}`).catch(() => contact);
        state.contact = current;
        const messages = await loadMessages(current, desk);
        list.replaceChildren(...(messages.length ? messages.map((m) => renderMessage(m, desk, reload))
          : [el("p", { class: "muted" }, t("No message text."))]));
      }
      state.reload = reload;

      const mode = el("select", { id: `${id}-mode`, name: "mode" },
        el("option", { value: "reply" }, t("Reply")),
        el("option", { value: "reply_all" }, t("Reply all")),
        el("option", { value: "forward" }, t("Forward")));
      const to = el("input", { id: `${id}-to`, name: "to", type: "text", autocomplete: "off",
        placeholder: t("The customer's address"), size: 30 });
      const cc = el("input", { id: `${id}-cc`, name: "cc", type: "text", autocomplete: "off", size: 30 });
      const body = el("textarea", { id: `${id}-body`, name: "body", rows: 6, class: "reply-body" });
      const canned = el("select", { id: `${id}-canned`, name: "canned_answer_id" }, el("option", { value: "" }, t("Insert a canned answer…")));
      const files = el("input", { id: `${id}-files`, name: "attachments", type: "file", multiple: true });
      const chosen = el("ul", { class: "chosen-files small" });
      const send = el("button", { type: "submit", class: "primary reply-send", value: "send" }, t("Send"));
      const sendWrap = el("button", { type: "submit", class: "reply-send-wrap", value: "wrap" }, t("Send and wrap up"));
      const form = el("form", { class: "reply-form", "aria-label": t("Reply by email") },
        el("div", { class: "field-row" }, el("label", { for: mode.id }, t("Answer")), mode),
        el("div", { class: "field-row" }, el("label", { for: to.id }, t("To")), to),
        el("div", { class: "field-row" }, el("label", { for: cc.id }, t("Cc")), cc),
        el("label", { for: body.id }, t("Message")), body,
        el("div", { class: "field-row" }, el("label", { for: canned.id }, t("Canned answer")), canned),
        el("div", { class: "field-row" }, el("label", { for: files.id }, t("Attach files")), files), chosen,
        el("div", { class: "field-row" }, send, sendWrap));
      root.append(el("h3", {}, contact.subject || t("(no subject)")), list);
      const fields = Object.entries(contact.attributes || {}).filter(([k]) => !k.startsWith("wrap_up") && k !== "summary" && k !== "callback_at");
      if (contact.channel === "webform" && fields.length) {
        root.append(el("h3", {}, t("Form fields")),
          el("dl", { class: "card" }, fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])));
      }
      root.append(form);

      const addresses = (value) => value.split(/[,;]\s*/).map((a) => a.trim()).filter(Boolean);
      function renderChosen() {
        chosen.replaceChildren(...state.refs.map((ref, i) => el("li", {}, ref.filename, " ",
          el("button", { type: "button", class: "link small", "aria-label": t("Remove {name}", { name: ref.filename }),
            onclick: () => { state.refs.splice(i, 1); renderChosen(); } }, "×"))));
      }
      files.addEventListener("change", busy(async () => {
        clearFormErrors(form);
        send.disabled = sendWrap.disabled = true;
        try {
          for (const file of files.files) {
            try {
              state.refs.push(await upload(file));
            } catch (error) {
              showFieldError(files, error.message || t("The file could not be attached"));
              break;
            }
          }
        } finally {
          send.disabled = sendWrap.disabled = false;
          files.value = "";
          renderChosen();
        }
      }));
      canned.addEventListener("change", busy(async () => {
        if (!canned.value) return;
        const filled = await attempt(() => api("GET", `/interactions/${contact.id}/canned-answers/${canned.value}`));
        canned.value = "";
        if (!filled) return;
        const at = body.selectionStart ?? body.value.length;
        body.value = body.value.slice(0, at) + filled.text + body.value.slice(at);
        body.focus();
      }));
      form.addEventListener("submit", busy(async (event) => {
        const wrap = event.submitter && event.submitter.value === "wrap";
        const payload = { mode: mode.value, body: body.value, cc: addresses(cc.value),
          attachments: state.refs.map((r) => r.id) };
        if (to.value.trim()) payload.to = addresses(to.value);
        if (wrap) payload.wrap_up = {};
        clearFormErrors(form);
        try {
          await api("POST", `/interactions/${contact.id}/replies`, payload);
        } catch (error) {
          const field = error instanceof ApiError && error.details ? error.details.field : null;
          const control = field && form.elements.namedItem(field);
          if (control && !(control instanceof RadioNodeList)) showFieldError(control, error.message);
          else showFormErrors(form, error);
          return;
        }
        toast(wrap ? t("Sent; the contact is wrapped up") : t("Reply queued for sending"));
        body.value = to.value = cc.value = "";
        state.refs = [];
        renderChosen();
        await reload();
      }));

      const [answers] = await Promise.all([
        api("GET", "/canned-answers").catch(() => []),
        reload(),
      ]);
      canned.append(...answers.map((a) => el("option", { value: String(a.id) }, `/${a.shortcut} — ${a.title}`)));
      return state;
    },
    onEvent(contact, type, data, state) {
      if (type !== "message_delivery" || !state) return;
      const holder = state.list.querySelector(`.delivery-state[data-message-id="${data.message_id}"]`);
      if (!holder) { state.reload().catch(() => {}); return; }
      // The state shows at once; the list is read again for what else changed (a new message).
      const badge = holder.querySelector(".badge");
      badge.className = `badge delivery delivery-${data.state}`;
      badge.dataset.delivery = data.state;
      badge.textContent = state.desk.t(STATES[data.state] || data.state);
      holder.querySelector(".delivery-error").textContent = data.error || "";
      state.reload().catch(() => {});
    },
  };
}

registerPanel("email", emailPanel());
registerPanel("fax", emailPanel());
// A web form is answered by email too (to the address the customer left).
registerPanel("webform", emailPanel());
