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
