// The conversation panel of the agent desktop: one component for every text channel (docs/chat.md,
// docs/user-guide.md "Email"). The thread's messages with their files and delivery states (queued,
// sent, delivered, read, failed with the reason), live from the stream, and a composer with canned
// answers and files.
// - Email, fax and web forms keep their extras: subject, Cc, reply / reply all / forward, quoted text
//   folded, why each message joined the thread, remote images on request, send and wrap up.
// - Chat, SMS and messengers: a chat composer (Enter sends), typing shown both ways, read receipts,
//   the page the visitor came from; a supervisor (not the contact's agent) reads along and writes
//   private notes to the agent, which the customer never sees.

import {
  ApiError, attempt, busy, clearFormErrors, me, newestOnly, showFieldError, showFormErrors, toast, uploadAttachment as upload,
} from "./common.js";
import { registerPanel } from "./panels.js";
import { countSegments } from "./sms_segments.js";

const REASONS = {
  "in-reply-to": "Answers our message (In-Reply-To)",
  references: "Names a message of this thread (References)",
  "subject-token": "The thread's number is in the subject",
  "plus-address": "Sent to this thread's reply address",
  "new-thread": "Started this thread",
  split: "Split from another thread by an agent",
  merge: "Merged from another thread by an agent",
};
const STATES = { queued: "Queued", sending: "Sending", sent: "Sent", delivered: "Delivered", read: "Read", failed: "Failed" };
const TYPING_IDLE_MS = 3000; // the agent's "typing" ends after this long without a keystroke

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

/** A "message_delivery" event: the message's badge and reason change at once, and the thread is read
 * again (the newest read draws): for what else changed, and because a read already under way may have
 * answered before this state and would put the older one back. */
function showDelivery(state, data) {
  const holder = state.list.querySelector(`.delivery-state[data-message-id="${data.message_id}"]`);
  if (holder) {
    const badge = holder.querySelector(".badge");
    badge.className = `badge delivery delivery-${data.state}`;
    badge.dataset.delivery = data.state;
    badge.textContent = state.desk.t(STATES[data.state] || data.state);
    holder.querySelector(".delivery-error").textContent = data.error || "";
  }
  state.reload().catch(() => {});
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

function emailPanel() {
  return {
    async mount(contact, root, desk) {
      const { api, t, el } = desk;
      const id = `mail-${contact.id}`;
      const state = { contact, list: null, refs: [], desk };
      const list = el("div", { class: "messages email-thread", "aria-live": "polite" }, el("p", { class: "muted" }, t("Loading…")));
      state.list = list;
      // Sending, a new message and a delivery event each read the thread again: the newest read draws.
      const reload = newestOnly(async () => {
        const current = await api("GET", `/interactions/${contact.id}`).catch(() => contact);
        return [current, await loadMessages(current, desk)];
      }, ([current, messages]) => {
        state.contact = current;
        list.replaceChildren(...(messages.length ? messages.map((m) => renderMessage(m, desk, reload))
          : [el("p", { class: "muted" }, t("No message text."))]));
      });
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
      if (type === "message_delivery" && state) showDelivery(state, data);
    },
  };
}

/** One chat message: who, when, the text (textContent only), files, the delivery state of ours. */
function chatMessage(message, desk) {
  const { el, t, fmt } = desk;
  const kind = message.direction === "note" ? "note" : message.direction;
  const who = kind === "inbound" ? (message.sender || t("Customer")) : kind === "note" ? t("Private note from {name}", { name: message.sender || "" }) : (message.sender || t("Agent"));
  const item = el("article", { class: `message chat-message ${kind}`, "data-message-id": String(message.id) },
    el("div", { class: "muted small message-head" }, `${who} · ${fmt.dateTime(message.created_at)}`),
    el("div", { class: "message-body" }, message.body || ""));
  const files = message.attachments || [];
  if (files.length) {
    item.append(el("ul", { class: "attachments" }, files.map((f) => el("li", {},
      el("a", { href: f.url || `/api/v1/attachments/${f.id}`, download: f.filename }, f.filename)))));
  }
  if (kind === "outbound" && message.delivery_state) item.append(stateBadge(message, desk));
  return item;
}

function chatPanel() {
  return {
    async mount(contact, root, desk) {
      const { api, t, el } = desk;
      const id = `chat-${contact.id}`;
      const mine = contact.agent_id === me.user_id;
      const state = { contact, desk, list: null, typingTimer: null, typingSent: false, lastRead: 0, refs: [] };
      const list = el("div", { class: "messages chat-thread", "aria-live": "polite" }, el("p", { class: "muted" }, t("Loading…")));
      const typing = el("p", { class: "muted small chat-typing", role: "status" });
      state.list = list;
      state.typing = typing;
      // Sending, a new message and each receipt read the thread again, overlapping: the newest read
      // draws, or an older answer could put a message's older delivery state back.
      const reload = newestOnly(() => loadMessages(state.contact, desk), (messages) => {
        list.replaceChildren(...(messages.length ? messages.map((m) => chatMessage(m, desk)) : [el("p", { class: "muted" }, t("No message text."))]));
        list.scrollTop = list.scrollHeight;
        const inbound = messages.filter((m) => m.direction === "inbound").map((m) => m.id);
        const last = inbound.length ? Math.max(...inbound) : 0;
        if (mine && last > state.lastRead && document.visibilityState !== "hidden") {
          state.lastRead = last;
          api("POST", `/interactions/${contact.id}/conversation/read`, { message_id: last }).catch(() => {});
        }
      });
      state.reload = reload;
      const attributes = contact.attributes || {};
      const facts = [["Page", attributes.page_url], ["Referrer", attributes.referrer], ["Topic", attributes.topic]]
        .filter(([, v]) => v);
      root.append(el("h3", {}, contact.subject || t("Chat")));
      if (facts.length) {
        root.append(el("dl", { class: "card chat-facts" }, facts.flatMap(([k, v]) => [el("dt", {}, t(k)), el("dd", {}, String(v))])));
      }
      root.append(list, typing);
      if (mine) {
        const body = el("textarea", { id: `${id}-body`, name: "body", rows: 3, class: "reply-body chat-input" });
        const canned = el("select", { id: `${id}-canned`, name: "canned_answer_id" }, el("option", { value: "" }, t("Insert a canned answer…")));
        const files = el("input", { id: `${id}-files`, name: "attachments", type: "file", multiple: true });
        const send = el("button", { type: "submit", class: "primary chat-send" }, t("Send"));
        // SMS: characters and parts as the customer's phone will receive them (sms_segments.js).
        const counter = contact.channel === "sms" ? el("p", { class: "small muted sms-counter", role: "status", id: `${id}-counter` }) : null;
        const countSms = () => {
          if (!counter) return;
          const c = countSegments(body.value);
          counter.dataset.segments = String(c.segments);
          counter.dataset.encoding = c.encoding;
          counter.textContent = t("{units} characters, {segments} SMS, {remaining} left in the last one", c) +
            (c.encoding === "ucs2" ? ` — ${t("Cyrillic or emoji: 70 characters per SMS, 67 in a long one")}` : "");
        };
        if (counter) body.setAttribute("aria-describedby", counter.id);
        const form = el("form", { class: "chat-form", "aria-label": t("Message") },
          el("label", { for: body.id }, t("Message")), body, ...(counter ? [counter] : []),
          el("div", { class: "field-row" }, canned, files, send));
        root.append(form);
        countSms();
        body.addEventListener("input", countSms);
        const stopTyping = () => {
          clearTimeout(state.typingTimer);
          if (state.typingSent) api("POST", `/interactions/${contact.id}/conversation/typing`, { typing: false }).catch(() => {});
          state.typingSent = false;
        };
        body.addEventListener("input", () => {
          if (!state.typingSent) {
            state.typingSent = true;
            api("POST", `/interactions/${contact.id}/conversation/typing`, { typing: true }).catch(() => {});
          }
          clearTimeout(state.typingTimer);
          state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
        });
        body.addEventListener("keydown", (event) => {
          if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
        });
        files.addEventListener("change", busy(async () => {
          for (const file of files.files) {
            try { state.refs.push(await upload(file)); } catch (error) { showFieldError(files, error.message || t("The file could not be attached")); break; }
          }
        }));
        canned.addEventListener("change", busy(async () => {
          if (!canned.value) return;
          const filled = await attempt(() => api("GET", `/interactions/${contact.id}/canned-answers/${canned.value}`));
          canned.value = "";
          if (filled) { body.value += filled.text; body.focus(); countSms(); }
        }));
        form.addEventListener("submit", busy(async () => {
          if (!body.value.trim() && !state.refs.length) return;
          clearFormErrors(form);
          stopTyping();
          try {
            await api("POST", `/interactions/${contact.id}/conversation/messages`, { body: body.value, attachments: state.refs.map((r) => r.id) });
          } catch (error) {
            showFormErrors(form, error);
            return;
          }
          body.value = "";
          countSms();
          files.value = "";
          state.refs = [];
          await reload();
          body.focus();
        }));
        api("GET", "/canned-answers").then((answers) => canned.append(...answers.map((a) => el("option", { value: String(a.id) }, `/${a.shortcut} — ${a.title}`)))).catch(() => {});
      } else {
        // A supervisor reading along: a private note to the agent instead of a message to the customer.
        const note = el("textarea", { id: `${id}-note`, name: "body", rows: 2, class: "chat-note", maxlength: "2000" });
        const form = el("form", { class: "chat-note-form", "aria-label": t("Private note to the agent") },
          el("label", { for: note.id }, t("Private note to the agent")), note,
          el("button", { type: "submit", class: "chat-note-send" }, t("Add note")));
        form.addEventListener("submit", busy(async (event) => {
          event.preventDefault();
          clearFormErrors(form);
          try { await api("POST", `/interactions/${contact.id}/conversation/notes`, { body: note.value }); } catch (error) { showFormErrors(form, error); return; }
          note.value = "";
          await reload();
        }));
        root.append(el("p", { class: "muted small" }, t("You are reading this conversation; the customer does not see your notes.")), form);
      }
      await reload();
      return state;
    },
    unmount(contact, root, state) {
      if (state) clearTimeout(state.typingTimer);
    },
    onEvent(contact, type, data, state) {
      if (!state) return;
      const { t } = state.desk;
      if (type === "conversation_typing") {
        state.typing.textContent = data.typing ? t("The customer is typing…") : "";
      } else if (type === "conversation_message") {
        state.typing.textContent = "";
        state.reload().catch(() => {});
      } else if (type === "message_delivery") {
        showDelivery(state, data);
      } else if (type === "conversation_visitor_left") {
        toast(t("The customer closed the chat"));
      } else if (type === "conversation_rating") {
        toast(t("The customer rated the chat: {score}/5", { score: data.rating }));
      }
    },
  };
}

registerPanel("email", emailPanel());
registerPanel("fax", emailPanel());
// A web form is answered by email too (to the address the customer left).
registerPanel("webform", emailPanel());
registerPanel("chat", chatPanel());
registerPanel("sms", chatPanel());
registerPanel("messenger", chatPanel());
