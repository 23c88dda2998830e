// The note box's @-picker: typing "@" and a few letters lists the colleagues one may mention (GET
// /users/mentionable: a word of the username or display name starting with them, in any case), under
// the caret. Arrow keys move, Enter or Tab inserts "@username " in place of what was typed, Escape
// closes, a click inserts too. The focus stays in the text box, which points at the active option
// (aria-activedescendant) and says whether the list is open (aria-expanded), as in the ARIA combobox
// pattern. The server is asked once typing pauses, and only the answer to the latest question is shown
// (each answer is announced on the text box as a "fo:mention-answer" event: {q, shown}).
import { api, clear, el, t } from "./common.js";

// What is being typed: "@" at the start or after a character that cannot end a username or an
// address (the server's MENTION pattern), then letters of any script, digits, dots, dashes, underscores.
const TYPED = /(?:^|[^\p{L}\p{N}_.@])@([\p{L}\p{N}._-]{1,64})$/u;
// Typing "@anna" asks once, not four times.
const DEBOUNCE_MS = 150;
// A short list under the caret, not a directory (the server's default).
const LIMIT = 8;
const WORDS = /[^\p{L}\p{N}]+/u;
// The text box's styles that decide where its text wraps, copied to the mirror that finds the caret.
const MIRRORED = ["boxSizing", "width", "fontFamily", "fontSize", "fontWeight", "fontStyle", "letterSpacing", "lineHeight",
  "textTransform", "wordSpacing", "tabSize", "paddingTop", "paddingRight", "paddingBottom", "paddingLeft",
  "borderTopWidth", "borderRightWidth", "borderBottomWidth", "borderLeftWidth"];

let pickers = 0;

/** Whether `user` still matches `typed` (as the server matches), to thin the list while a newer answer is on its way. */
function matches(user, typed) {
  const key = typed.toLocaleLowerCase();
  const names = [user.username, user.display_name || ""].map((n) => n.toLocaleLowerCase());
  return names.some((n) => n.startsWith(key) || n.split(WORDS).some((w) => w && w.startsWith(key)));
}

/** Where the character at `index` of `textarea` is drawn: {top (below its line), left}, in pixels from the box's corner. */
function caretPoint(textarea, index) {
  const style = getComputedStyle(textarea);
  const mirror = el("div", { "aria-hidden": "true" });
  for (const name of MIRRORED) mirror.style[name] = style[name];
  Object.assign(mirror.style, { position: "absolute", visibility: "hidden", top: "0", left: "-9999px", whiteSpace: "pre-wrap", overflowWrap: "break-word" });
  mirror.textContent = textarea.value.slice(0, index);
  const mark = el("span", {}, "\u200b");
  mirror.append(mark);
  document.body.append(mirror);
  const point = { top: mark.offsetTop + mark.offsetHeight - textarea.scrollTop, left: mark.offsetLeft - textarea.scrollLeft };
  mirror.remove();
  return point;
}

/**
 * Attach the picker to `textarea`. `ticketId`: offer only those who may see this ticket; `enabled()`:
 * whether the box holds a note now (a reply to the customer mentions nobody). Answers {close}.
 */
export function mentionPicker(textarea, { ticketId = null, enabled = () => true } = {}) {
  pickers += 1;
  const id = `mention-picker-${pickers}`;
  const list = el("ul", { id, class: "mention-picker", role: "listbox", "aria-label": t("Colleagues to mention"), hidden: true });
  const status = el("p", { class: "visually-hidden", role: "status" });
  textarea.parentElement.classList.add("mention-host");
  textarea.after(list, status);
  textarea.setAttribute("aria-autocomplete", "list");
  textarea.setAttribute("aria-haspopup", "listbox");
  textarea.setAttribute("aria-controls", id);
  textarea.setAttribute("aria-expanded", "false");

  let start = null; // where the "@" being completed is; null: nothing is being completed
  let typed = "";
  let options = [];
  let active = -1;
  let asked = 0; // the latest question's number: an answer to an earlier one is dropped
  let timer = null;
  let dismissed = null; // the "@" Escape closed the list for: it stays closed while typing goes on there

  function hide() {
    list.hidden = true;
    textarea.setAttribute("aria-expanded", "false");
    textarea.removeAttribute("aria-activedescendant");
  }

  function close() {
    clearTimeout(timer);
    start = null;
    typed = "";
    options = [];
    active = -1;
    hide();
  }

  function mark() {
    [...list.children].forEach((item, i) => item.setAttribute("aria-selected", i === active ? "true" : "false"));
    const item = list.children[active];
    if (!item) { textarea.removeAttribute("aria-activedescendant"); return; }
    textarea.setAttribute("aria-activedescendant", item.id);
    item.scrollIntoView({ block: "nearest" });
  }

  function place() {
    const caret = caretPoint(textarea, start);
    const top = Math.min(Math.max(caret.top, 0), textarea.clientHeight);
    const left = Math.max(0, Math.min(caret.left, textarea.clientWidth - list.offsetWidth));
    list.style.top = `${textarea.offsetTop + top}px`;
    list.style.left = `${textarea.offsetLeft + left}px`;
  }

  function show(users, announce = true) {
    options = users;
    active = users.length ? 0 : -1;
    clear(list, users.map((u, i) => el("li", {
      id: `${id}-${i}`, role: "option", "aria-selected": "false", "data-username": u.username,
      // The focus (and the caret) stay in the text box when an option is clicked.
      onmousedown: (event) => event.preventDefault(),
      onclick: () => choose(i),
    }, el("span", { class: "mention-name" }, u.display_name || u.username), " ", el("span", { class: "mention-username muted small" }, `@${u.username}`))));
    if (announce) {
      status.textContent = users.length ? t("Colleagues found: {n}. Arrow keys choose, Enter inserts.", { n: users.length }) : t("No colleague matches.");
    }
    if (!users.length) { hide(); return; }
    list.hidden = false;
    textarea.setAttribute("aria-expanded", "true");
    place();
    mark();
  }

  function choose(i) {
    const user = options[i];
    if (!user || start === null) return;
    textarea.setRangeText(`@${user.username} `, start, textarea.selectionStart, "end");
    close();
    textarea.focus();
    // Whoever watches the text (a field's error note, the "/" picker) sees the change.
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
  }

  async function ask(q) {
    asked += 1;
    const mine = asked;
    const params = new URLSearchParams({ q, limit: String(LIMIT) });
    if (ticketId !== null && ticketId !== undefined) params.set("ticket_id", String(ticketId));
    let users;
    try {
      users = await api("GET", `/users/mentionable?${params}`);
    } catch (error) {
      return; // the list stays as it was; the next letter asks again
    }
    const current = mine === asked && start !== null && typed === q;
    if (current) show(users);
    // Said for every answer, shown or dropped as outdated (what a test or another script can wait for).
    textarea.dispatchEvent(new CustomEvent("fo:mention-answer", { detail: { q, shown: current } }));
  }

  /** Read what is typed before the caret: open, narrow, ask or close. */
  function follow() {
    const caret = textarea.selectionStart;
    const m = enabled() && caret === textarea.selectionEnd ? TYPED.exec(textarea.value.slice(0, caret)) : null;
    const at = m ? caret - m[1].length - 1 : null;
    if (at !== dismissed) dismissed = null;
    if (at === null || at === dismissed) { close(); return; }
    if (at === start && m[1] === typed) return;
    start = at;
    typed = m[1];
    if (!list.hidden) show(options.filter((u) => matches(u, typed)), false);
    clearTimeout(timer);
    timer = setTimeout(() => ask(typed), DEBOUNCE_MS);
  }

  textarea.addEventListener("input", follow);
  textarea.addEventListener("click", follow);
  textarea.addEventListener("keyup", (event) => { if (["ArrowLeft", "ArrowRight", "Home", "End"].includes(event.key)) follow(); });
  textarea.addEventListener("blur", close);
  textarea.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    const plain = !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + options.length) % options.length;
      mark();
    } else if ((event.key === "Enter" || event.key === "Tab") && plain && active >= 0) {
      event.preventDefault();
      choose(active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      dismissed = start;
      close();
    }
  });
  return { close };
}
