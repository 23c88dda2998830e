// Channel panels of the agent desktop. Each channel registers one panel; the desktop mounts it in the
// contact's tab and unmounts it when the tab closes. Contract (docs/user-guide.md, "For developers"):
//
//   registerPanel("chat", {
//     mount(contact, el, desk) { ...build the UI inside el...; return state },  // may be async
//     unmount(contact, el, state) { ...stop timers, close sockets... },        // optional
//     onEvent(contact, type, data, state) { ... },                             // optional: stream messages
//   });
//
// `contact` is the interaction record (GET /api/v1/interactions/{id}) plus `customer` (card or null);
// `desk` offers api(), t(), el() and fmt so a panel needs no imports of its own.

import { attempt, busy, newestOnly, toast } from "./common.js";

const panels = new Map();

export function registerPanel(channel, panel) {
  if (typeof panel.mount !== "function") throw new Error(`panel for ${channel} needs mount()`);
  panels.set(channel, panel);
}

export function panelFor(channel) {
  return panels.get(channel) || panels.get("*");
}

// ------------------------------------------------------------------ web form requests
registerPanel("webform", {
  async mount(contact, root, desk) {
    const { api, t, el, fmt } = desk;
    root.append(
      el("h3", {}, contact.subject || t("(no subject)")),
      el("p", { class: "muted small" },
        t("From {from} at {when}", { from: contact.from_address || "—", when: fmt.dateTime(contact.created_at) })),
    );
    const list = el("div", { class: "messages" }, el("p", { class: "muted" }, t("Loading…")));
    root.append(list);
    const messages = await api("GET", `/interactions/${contact.id}/messages`);
    list.replaceChildren(
      ...(messages.length
        ? messages.map((m) =>
            el("div", { class: `message ${m.direction}` },
              el("div", { class: "muted small" }, `${m.sender || ""} · ${fmt.dateTime(m.created_at)}`),
              m.body))
        : [el("p", { class: "muted" }, t("No message text."))]),
    );
    const attributes = Object.entries(contact.attributes || {}).filter(([k]) => !k.startsWith("wrap_up") && k !== "summary" && k !== "callback_at");
    if (attributes.length) {
      root.append(el("h3", {}, t("Form fields")),
        el("dl", { class: "card" }, attributes.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))])));
    }
    return null;
  },
});

// ------------------------------------------------------------------ phone calls: the call panel (CTI)
// Answering happens on the agent's phone; the panel shows the caller, the call's state and duration,
// and controls the call through /api/v1/voice/calls/{id}: hold / resume, blind transfer to a queue or
// an agent, a three-way conference with an agent or a number, hang up. It polls the call's state (hold
// and transfers can also happen on the phone).
const CALL_POLL_MS = 2000;

registerPanel("voice", {
  async mount(contact, root, desk) {
    const { api, t, el } = desk;
    const id = `call-${contact.id}`;
    const state = { poll: null, tick: null, answeredAt: null, held: false, ended: false };
    const status = el("p", { class: "call-status", role: "status", "aria-live": "polite" }, t("Loading…"));
    const timer = el("span", { class: "call-timer", role: "timer", "aria-label": t("Call duration") }, "0:00");
    const holdButton = el("button", { type: "button", class: "call-hold", "aria-pressed": "false",
      onclick: busy(() => toggleHold()) }, t("Hold"));
    const hangUpButton = el("button", { type: "button", class: "danger call-hangup",
      onclick: busy(() => hangUp()) }, t("Hang up"));
    const target = el("select", { id: `${id}-target`, name: "target" },
      el("option", { value: "" }, t("Choose…")));
    const number = el("input", { id: `${id}-number`, name: "number", type: "tel", inputmode: "tel",
      autocomplete: "off", size: 14 });
    const transferButton = el("button", { type: "submit", class: "call-transfer" }, t("Transfer"));
    const conferenceButton = el("button", { type: "button", class: "call-conference",
      onclick: busy(() => conference()) }, t("Conference"));
    const transferForm = el("form", { class: "call-transfer-form", "aria-label": t("Transfer the call"),
      onsubmit: busy(() => transfer()) },
      el("label", { for: `${id}-target` }, t("Transfer to")), target,
      el("label", { for: `${id}-number` }, t("or an external number")), number, transferButton, conferenceButton);
    const caller = el("dd", { class: "call-caller" }, contact.from_address || "—");
    root.append(
      el("h3", {}, t("Phone call")),
      el("dl", { class: "card call-info" },
        el("dt", {}, t("Caller")), caller,
        el("dt", {}, t("Duration")), el("dd", {}, timer)),
      status,
      el("div", { class: "call-controls", role: "group", "aria-label": t("Call controls") }, holdButton, hangUpButton),
      transferForm,
    );

    function render(call) {
      if (!call) {
        state.ended = true;
        status.textContent = t("The call has ended.");
        for (const control of [holdButton, hangUpButton, target, number, transferButton, conferenceButton]) control.disabled = true;
        return;
      }
      if (call.caller) caller.textContent = call.caller;
      state.held = call.held;
      state.answeredAt = call.answered_at ? new Date(call.answered_at) : state.answeredAt;
      holdButton.textContent = call.held ? t("Resume") : t("Hold");
      holdButton.setAttribute("aria-pressed", String(call.held));
      const bridged = call.state === "bridged";
      holdButton.disabled = hangUpButton.disabled = transferButton.disabled = !bridged;
      target.disabled = number.disabled = !bridged;
      conferenceButton.disabled = !bridged || call.held;
      if (call.state === "conference") hangUpButton.disabled = false;
      status.textContent = call.state === "external" ? t("Call transferred")
        : call.state === "conference" ? t("Three-way conference.")
        : !bridged ? t("The caller is waiting in the queue.")
          : call.held ? t("The caller is on hold and hears music.") : t("Connected.");
    }
    // A button's read and the poll's may overlap: the newest read draws (newestOnly), so an older
    // answer never shows the call as it was before the hold, the transfer or the hang-up.
    const UNKNOWN = Symbol("unknown");
    const refresh = newestOnly(async () => {
      if (state.ended) return UNKNOWN;
      try {
        return await api("GET", `/voice/calls/${contact.id}`);
      } catch (error) {
        return error.status === 404 || error.status === 409 ? null : UNKNOWN;
      }
    }, (call) => { if (call !== UNKNOWN && !state.ended) render(call); });
    async function act(path, body, doneText) {
      const ok = await attempt(() => api("POST", `/voice/calls/${contact.id}/${path}`, body), doneText);
      await refresh();
      return ok !== undefined;
    }
    function toggleHold() {
      return state.held ? act("resume", undefined, t("Call resumed")) : act("hold", undefined, t("Caller on hold"));
    }
    function hangUp() {
      return act("hangup", undefined, t("Call ended"));
    }
    async function transfer() {
      const [kind, value] = target.value.split(":");
      const dialled = number.value.replace(/[\s()-]/g, "");
      if (!value && !dialled) { toast(t("Choose where to transfer the call"), "error"); target.focus(); return; }
      const body = dialled ? { number: dialled }
        : kind === "queue" ? { queue_id: Number(value) } : { agent_id: Number(value) };
      if (await act("transfer", body, t("Call transferred"))) number.value = "";
    }

    async function conference() {
      const [kind, value] = target.value.split(":");
      const dialled = number.value.replace(/[\s()-]/g, "");
      if (kind !== "agent" && !dialled) {
        toast(t("Choose an agent or a number for the conference"), "error"); target.focus(); return;
      }
      const body = dialled ? { number: dialled } : { agent_id: Number(value) };
      if (await act("conference", body, t("Calling the third party…"))) number.value = "";
    }

    state.tick = setInterval(() => {
      if (state.answeredAt && !state.ended) timer.textContent = desk.fmt.duration((Date.now() - state.answeredAt) / 1000);
    }, 1000);
    state.poll = setInterval(refresh, CALL_POLL_MS);
    const [targets] = await Promise.all([api("GET", "/voice/transfer-targets").catch(() => null), refresh()]);
    if (targets) {
      target.append(
        el("optgroup", { label: t("Queues") }, targets.queues.map((q) => el("option", { value: `queue:${q.id}` }, q.name))),
        el("optgroup", { label: t("Agents") }, targets.agents.map((a) =>
          el("option", { value: `agent:${a.id}` }, `${a.name} (${desk.label(a.state)})`))),
      );
    }
    return state;
  },
  unmount(contact, root, state) {
    if (!state) return;
    clearInterval(state.poll);
    clearInterval(state.tick);
  },
});

// ------------------------------------------------------------------ any other channel until its panel lands
registerPanel("*", {
  mount(contact, root, desk) {
    root.append(
      desk.el("h3", {}, contact.subject || desk.t("(no subject)")),
      desk.el("p", { class: "muted" }, desk.t("Channel: {channel}", { channel: desk.label(contact.channel) })),
    );
    return null;
  },
});
