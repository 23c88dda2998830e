/* Frontoffice web chat widget (docs/chat.md). Plain JavaScript, no dependencies.
   Embed: <script src="https://desk.example/chat/widget.js" data-entry-point="KEY" async></script>
   Every text from the server or the visitor is shown with textContent, never as HTML. */
(function () {
  "use strict";
  var script = document.currentScript || document.querySelector("script[data-entry-point]");
  if (!script || window.__frontofficeChat) return;
  window.__frontofficeChat = true;
  var KEY = script.getAttribute("data-entry-point") || "";
  var BASE = new URL(script.src, location.href);
  var WS_URL = (BASE.protocol === "https:" ? "wss://" : "ws://") + BASE.host + "/chat/ws?key=" + encodeURIComponent(KEY);
  var HTTP = BASE.protocol + "//" + BASE.host;
  var STORE = "fo-chat:" + KEY;
  var RECONNECT_MAX_MS = 10000; // back-off cap: a restarted server is found within ~10 s
  var TYPING_IDLE_MS = 3000; // "typing" ends after this long without a keystroke
  var T = {
    en: { open: "Chat with us", close: "Close", send: "Send", placeholder: "Write a message…", name: "Name",
      email: "Email", phone: "Phone", topic: "Topic", start: "Start the chat", required: "Please fill in: ",
      waiting: "Waiting for an agent", queue: "You are number {n} in the queue", wait: "about {m} min",
      agentTyping: "The agent is typing…", ended: "The chat has ended.", rate: "How did we do?",
      comment: "Comment (optional)", rateSend: "Send rating", thanks: "Thank you!", transcript: "Email me the transcript",
      transcriptSent: "The transcript is on its way.", offline: "We are offline. Leave a message and we will answer by email or phone.",
      message: "Message", leave: "Send message", offlineSent: "Thank you! We will get back to you.",
      attach: "Attach a file", sending: "Sending…", sent: "Sent", read: "Read", failed: "Not sent — retrying",
      newChat: "New chat", end: "End chat", suggestions: "These articles may help:", reconnecting: "Reconnecting…",
      errors: { "rate-limited": "You are sending messages too fast. Wait a moment.", "message-too-long": "The message is too long.",
        "file-too-large": "The file is too large.", "file-type-not-allowed": "This type of file cannot be sent.",
        "invalid-prechat": "Check the email or phone number.", "no-contact-details": "Leave an email or a phone number." } },
    ru: { open: "Напишите нам", close: "Закрыть", send: "Отправить", placeholder: "Напишите сообщение…", name: "Имя",
      email: "Эл. почта", phone: "Телефон", topic: "Тема", start: "Начать чат", required: "Заполните: ",
      waiting: "Ждём свободного оператора", queue: "Вы {n}-й в очереди", wait: "примерно {m} мин",
      agentTyping: "Оператор печатает…", ended: "Чат завершён.", rate: "Оцените разговор",
      comment: "Комментарий (необязательно)", rateSend: "Отправить оценку", thanks: "Спасибо!", transcript: "Прислать переписку на почту",
      transcriptSent: "Переписка отправлена.", offline: "Сейчас никого нет. Оставьте сообщение — мы ответим по почте или телефону.",
      message: "Сообщение", leave: "Отправить", offlineSent: "Спасибо! Мы свяжемся с вами.",
      attach: "Прикрепить файл", sending: "Отправляется…", sent: "Отправлено", read: "Прочитано", failed: "Не отправлено — повторяем",
      newChat: "Новый чат", end: "Завершить чат", suggestions: "Возможно, поможет:", reconnecting: "Восстанавливаем связь…",
      errors: { "rate-limited": "Слишком часто. Подождите немного.", "message-too-long": "Сообщение слишком длинное.",
        "file-too-large": "Файл слишком большой.", "file-type-not-allowed": "Такой файл отправить нельзя.",
        "invalid-prechat": "Проверьте почту или телефон.", "no-contact-details": "Оставьте почту или телефон." } }
  };
  function load(storage, name, fallback) {
    try { var v = storage.getItem(name); return v ? JSON.parse(v) : fallback; } catch (e) { return fallback; }
  }
  function save(storage, name, value) { try { storage.setItem(name, JSON.stringify(value)); } catch (e) { /* private mode */ } }
  // The visitor's token survives the browser session (localStorage); the tab's pending messages and open
  // state survive reloads and navigation on the site (sessionStorage).
  var saved = load(localStorage, STORE, {});
  var tab = load(sessionStorage, STORE, { pending: [], open: false });
  var state = { ws: null, retry: 0, config: null, phase: "idle", shown: {}, byCid: {}, lastSeen: 0, token: saved.token || null,
    typingTimer: null, typingSent: false, agentTypingTimer: null, prechat: tab.prechat || null, started: false };
  var lang = "en";
  function t(key, values) {
    var text = (T[lang] && T[lang][key]) || T.en[key] || key;
    return text.replace(/\{(\w+)\}/g, function (_, k) { return values && values[k] != null ? String(values[k]) : ""; });
  }
  function errorText(code) { return (T[lang].errors[code]) || T.en.errors[code] || code; }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") node.textContent = attrs[k];
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
      else node.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function persist() { save(sessionStorage, STORE, tab); }

  // ---------------------------------------------------------------- the DOM (in a shadow root: the page's CSS stays out)
  var host = el("div", { id: "frontoffice-chat" });
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = el("style");
  style.textContent = [
    ":host{all:initial}",
    ".fo{position:fixed;bottom:16px;z-index:2147483000;font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1b1f24}",
    ".fo.right{right:16px}.fo.left{left:16px}",
    ".launcher{border:0;border-radius:24px;padding:12px 18px;color:#fff;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25);font:inherit}",
    ".panel{display:none;flex-direction:column;width:360px;height:520px;max-height:calc(100vh - 32px);background:#fff;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.25);overflow:hidden}",
    ".fo.open .panel{display:flex}.fo.open .launcher{display:none}",
    ".head{color:#fff;padding:10px 12px;display:flex;align-items:center;gap:8px}.head b{flex:1}",
    ".head button{background:transparent;border:0;color:#fff;font-size:18px;cursor:pointer}",
    ".body{flex:1;overflow-y:auto;padding:10px;background:#f6f8fa}",
    ".msg{max-width:80%;margin:4px 0;padding:6px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word;overflow-wrap:anywhere}",
    ".msg.in{margin-left:auto;color:#fff}.msg.out{background:#fff;border:1px solid #d0d7de}",
    ".meta{font-size:11px;opacity:.75;margin-top:2px}.note{color:#57606a;font-size:12px;text-align:center;margin:6px 0}",
    ".err{color:#cf222e;font-size:12px;margin:4px 0}.files a{color:inherit;display:block}",
    ".foot{display:flex;gap:6px;padding:8px;border-top:1px solid #d0d7de;background:#fff;align-items:flex-end}",
    ".foot textarea{flex:1;resize:none;border:1px solid #d0d7de;border-radius:6px;padding:6px;font:inherit;min-height:36px;max-height:120px}",
    "button.primary{border:0;border-radius:6px;padding:8px 12px;color:#fff;cursor:pointer;font:inherit}",
    "button:disabled{opacity:.6;cursor:default}",
    "form{display:flex;flex-direction:column;gap:6px;margin:6px 0}label{font-size:12px;color:#57606a}",
    "input,select,textarea{font:inherit;border:1px solid #d0d7de;border-radius:6px;padding:6px}",
    ".stars button{background:none;border:0;font-size:24px;cursor:pointer;color:#bbb}.stars button.on{color:#e3b341}",
    ".attach{position:relative;overflow:hidden;border:1px solid #d0d7de;border-radius:6px;padding:7px 9px;cursor:pointer;background:#fff}",
    ".attach input{position:absolute;inset:0;opacity:0;cursor:pointer}",
    "@media (max-width:480px){.fo{bottom:0}.fo.right,.fo.left{right:0;left:0}.fo.open .panel{width:100vw;height:100vh;max-height:100vh;border-radius:0}.fo:not(.open){right:12px;left:auto;bottom:12px}}"
  ].join("\n");
  var box = el("div", { class: "fo right", part: "chat" });
  var launcher = el("button", { type: "button", class: "launcher", "data-fo": "launcher" });
  var title = el("b");
  var endButton = el("button", { type: "button", "data-fo": "end", title: "" }, ["⏻"]);
  var closeButton = el("button", { type: "button", "data-fo": "close" }, ["×"]);
  var body = el("div", { class: "body", "aria-live": "polite", "data-fo": "messages" });
  var status = el("div", { class: "note", "data-fo": "status", role: "status" });
  var typingLine = el("div", { class: "note", "data-fo": "typing" });
  var input = el("textarea", { rows: "1", "data-fo": "input" });
  var fileInput = el("input", { type: "file", "data-fo": "file" });
  var attach = el("label", { class: "attach" }, ["📎", fileInput]);
  var sendButton = el("button", { type: "button", class: "primary", "data-fo": "send" });
  var foot = el("div", { class: "foot" }, [attach, input, sendButton]);
  var panel = el("div", { class: "panel", role: "dialog" }, [el("div", { class: "head" }, [title, endButton, closeButton]), body, typingLine, status, foot]);
  box.appendChild(launcher);
  box.appendChild(panel);
  root.appendChild(style);
  root.appendChild(box);

  function colour(node) { node.style.background = (state.config && state.config.color) || "#1f6feb"; }
  function applyConfig() {
    var c = state.config;
    var pageLang = (document.documentElement.lang || navigator.language || "en").slice(0, 2).toLowerCase();
    lang = c.language && c.language !== "auto" ? c.language : pageLang === "ru" ? "ru" : "en";
    box.className = "fo " + (c.position === "left" ? "left" : "right") + (tab.open ? " open" : "");
    [launcher, panel.firstChild, sendButton].forEach(colour);
    launcher.textContent = t("open");
    title.textContent = c.name || t("open");
    closeButton.setAttribute("aria-label", t("close"));
    endButton.setAttribute("aria-label", t("end"));
    endButton.title = t("end");
    sendButton.textContent = t("send");
    input.placeholder = t("placeholder");
    attach.title = t("attach");
    fileInput.accept = (c.file_types || []).join(",");
  }
  function setOpen(open) {
    tab.open = open;
    persist();
    box.classList.toggle("open", open);
    if (open) { markSeen(); input.focus(); }
  }
  launcher.addEventListener("click", function () { setOpen(true); });
  closeButton.addEventListener("click", function () { setOpen(false); });
  endButton.addEventListener("click", function () { frame({ t: "end" }); });

  // ---------------------------------------------------------------- messages: shown once, by server id or client id
  function bubbleMeta(m) {
    if (m.dir !== "in") return m.author || "";
    if (!m.id) return m.failed ? t("failed") : t("sending");
    return m.state === "read" ? "✓✓ " + t("read") : "✓ " + t("sent");
  }
  function render(m) {
    var node = (m.id && state.shown[m.id]) || (m.cid && state.byCid[m.cid]);
    if (!node) {
      node = el("div", { class: "msg " + (m.dir === "in" ? "in" : "out") });
      if (m.dir === "in") colour(node);
      node.appendChild(el("div", { class: "text" }));
      node.appendChild(el("div", { class: "files" }));
      node.appendChild(el("div", { class: "meta" }));
      body.insertBefore(node, null);
    }
    node.firstChild.textContent = m.text || "";
    var files = node.childNodes[1];
    files.textContent = "";
    (m.files || []).forEach(function (f) {
      if (f.id && state.token) {
        files.appendChild(el("a", { href: HTTP + "/chat/files/" + f.id + "?key=" + encodeURIComponent(KEY) + "&token=" + encodeURIComponent(state.token),
          download: f.name, rel: "noopener noreferrer nofollow", text: "📄 " + f.name }));
      } else files.appendChild(el("span", { text: "📄 " + (f.name || "") }));
    });
    node.dataset.state = m.state || "";
    node.lastChild.textContent = bubbleMeta(m);
    if (m.id) { state.shown[m.id] = node; node.dataset.id = String(m.id); node._m = m; }
    if (m.cid) { state.byCid[m.cid] = node; node.dataset.cid = m.cid; }
    body.scrollTop = body.scrollHeight;
  }
  function receive(m) {
    var known = m.id && state.shown[m.id];
    render(m);
    if (m.id && m.id > state.lastSeen) state.lastSeen = m.id;
    if (m.dir === "out" && !known) { frame({ t: "got", id: m.id }); typingLine.textContent = ""; markSeen(); }
  }
  function markSeen() {
    if (!tab.open || document.visibilityState === "hidden" || !state.lastSeen) return;
    frame({ t: "seen", id: state.lastSeen });
  }
  document.addEventListener("visibilitychange", markSeen);
  function note(text, cls) { body.appendChild(el("div", { class: cls || "note", text: text })); body.scrollTop = body.scrollHeight; }

  // ---------------------------------------------------------------- the socket: reconnect, resume, resend what was not acknowledged
  function frame(data) {
    if (state.ws && state.ws.readyState === 1) { state.ws.send(JSON.stringify(data)); return true; }
    return false;
  }
  function connect() {
    var ws;
    try { ws = new WebSocket(WS_URL); } catch (e) { return retry(); }
    state.ws = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ t: "hello", token: state.token, last_seen: state.lastSeen, page: location.href,
        referrer: document.referrer || "", lang: document.documentElement.lang || navigator.language || "" }));
    };
    ws.onmessage = function (event) {
      var f;
      try { f = JSON.parse(event.data); } catch (e) { return; }
      handle(f);
    };
    ws.onclose = function (event) {
      if (state.ws !== ws) return;
      state.ws = null;
      if (event.code === 4401) { state.token = null; save(localStorage, STORE, {}); }
      if (event.code === 4403 || event.code === 4404) return; // refused for good: this site may not use this chat
      status.textContent = t("reconnecting");
      retry();
    };
  }
  function retry() {
    var delay = Math.min(RECONNECT_MAX_MS, 500 * Math.pow(2, state.retry++)) * (0.75 + Math.random() / 2);
    setTimeout(connect, delay);
  }
  function handle(f) {
    if (f.t === "welcome") {
      state.retry = 0;
      state.token = f.token;
      save(localStorage, STORE, { token: f.token });
      state.config = f.config;
      applyConfig();
      status.textContent = "";
      (f.messages || []).forEach(receive);
      setPhase(f.phase);
      tab.pending.forEach(function (p) { frame({ t: "msg", cid: p.cid, text: p.text, files: p.refs || [], prechat: p.prechat || {} }); });
      markSeen();
    } else if (f.t === "ack") {
      tab.pending = tab.pending.filter(function (p) {
        if (p.cid !== f.cid) return true;
        receive({ id: f.id, cid: p.cid, dir: "in", text: p.text, files: p.files, state: "sent" });
        return false;
      });
      persist();
    } else if (f.t === "msg") {
      receive(f);
    } else if (f.t === "receipt") {
      Object.keys(state.shown).forEach(function (id) {
        var node = state.shown[id];
        if (+id <= f.id && node._m && node._m.dir === "in") { node._m.state = "read"; node.lastChild.textContent = bubbleMeta(node._m); }
      });
    } else if (f.t === "typing") {
      clearTimeout(state.agentTypingTimer);
      typingLine.textContent = f.on ? t("agentTyping") : "";
      if (f.on) state.agentTypingTimer = setTimeout(function () { typingLine.textContent = ""; }, 2 * TYPING_IDLE_MS);
    } else if (f.t === "queue") {
      status.textContent = t("queue", { n: f.position }) + (f.wait_s != null ? " · " + t("wait", { m: Math.max(1, Math.round(f.wait_s / 60)) }) : "");
    } else if (f.t === "phase") {
      setPhase(f.phase);
    } else if (f.t === "ended") {
      setPhase("idle");
      showEnd();
    } else if (f.t === "error") {
      var text = errorText(f.code);
      if (f.cid) {
        tab.pending = tab.pending.filter(function (p) { return p.cid !== f.cid; });
        persist();
        var node = state.byCid[f.cid];
        if (node) node.parentNode.removeChild(node);
        delete state.byCid[f.cid];
      }
      note(text, "err");
    } else if (f.t === "rated") {
      note(t("thanks"));
    } else if (f.t === "transcript-queued") {
      note(t("transcriptSent"));
    } else if (f.t === "offline-received") {
      body.textContent = "";
      note(t("offlineSent"));
    }
  }
  function setPhase(phase) {
    state.phase = phase;
    if (phase !== "waiting") status.textContent = phase === "waiting" ? t("waiting") : "";
    if (phase === "waiting" && !status.textContent) status.textContent = t("waiting");
    var hasHistory = Object.keys(state.shown).length > 0 || tab.pending.length > 0;
    foot.style.display = "";
    if (phase === "idle" && !hasHistory && !state.prechat) {
      if (state.config && !state.config.open) showOffline(); else showPrechat();
    }
  }

  // ---------------------------------------------------------------- sending
  function newCid() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function sendMessage(text, refs, files) {
    if (!text.trim() && !(refs && refs.length)) return;
    var p = { cid: newCid(), text: text, refs: refs || [], files: files || [], prechat: state.started ? {} : (state.prechat || {}) };
    state.started = true;
    tab.pending.push(p);
    persist();
    render({ cid: p.cid, dir: "in", text: text, files: p.files });
    frame({ t: "msg", cid: p.cid, text: text, files: p.refs, prechat: p.prechat });
  }
  sendButton.addEventListener("click", function () {
    var text = input.value;
    input.value = "";
    stopTyping();
    sendMessage(text);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendButton.click(); }
  });
  input.addEventListener("input", function () {
    if (!state.typingSent) { state.typingSent = frame({ t: "typing", on: true }); }
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  });
  function stopTyping() {
    clearTimeout(state.typingTimer);
    if (state.typingSent) frame({ t: "typing", on: false });
    state.typingSent = false;
  }
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (!file || !state.token) return;
    if (state.config && file.size > state.config.max_file_bytes) { note(errorText("file-too-large"), "err"); return; }
    var form = new FormData();
    form.append("key", KEY);
    form.append("token", state.token);
    form.append("file", file, file.name);
    fetch(HTTP + "/chat/files", { method: "POST", body: form, mode: "cors", credentials: "omit" })
      .then(function (r) { return r.json().then(function (d) { return { ok: r.ok, d: d }; }); })
      .then(function (r) {
        if (!r.ok) { note(errorText(r.d && r.d.error), "err"); return; }
        sendMessage("", [r.d.ref], [{ name: r.d.name, type: r.d.type, size: r.d.size }]);
      })
      .catch(function () { note(t("failed"), "err"); });
  });

  // ---------------------------------------------------------------- forms: pre-chat, offline, rating and transcript
  function field(name, type, required) {
    var id = "fo-" + name;
    var control;
    if (name === "topic" && state.config.topics && state.config.topics.length) {
      control = el("select", { id: id, name: name }, [el("option", { value: "", text: "" })].concat(
        state.config.topics.map(function (x) { return el("option", { value: x, text: x }); })));
    } else control = el(type === "textarea" ? "textarea" : "input", { id: id, name: name, type: type || "text" });
    if (required) control.required = true;
    return [el("label", { for: id, text: t(name) + (required ? " *" : "") }), control];
  }
  function showPrechat() {
    var c = state.config;
    body.textContent = "";
    var greeting = (c.greeting && (c.greeting[lang] || c.greeting.en)) || "";
    if (greeting) note(greeting);
    var fields = c.fields || [];
    if (!fields.length) return;
    foot.style.display = "none";
    var form = el("form", { "data-fo": "prechat" });
    fields.forEach(function (name) {
      field(name, name === "email" ? "email" : name === "phone" ? "tel" : "text", (c.required || []).indexOf(name) >= 0)
        .forEach(function (n) { form.appendChild(n); });
    });
    field("message", "textarea", true).forEach(function (n) { form.appendChild(n); });
    var start = el("button", { type: "submit", class: "primary", text: t("start") });
    colour(start);
    form.appendChild(start);
    var tips = el("div", { "data-fo": "suggestions" });
    form.appendChild(tips);
    var topic = form.elements.namedItem("topic");
    if (topic && c.kb) {
      topic.addEventListener("change", function () {
        fetch(HTTP + "/chat/suggestions?key=" + encodeURIComponent(KEY) + "&topic=" + encodeURIComponent(topic.value) + "&lang=" + lang, { mode: "cors", credentials: "omit" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(function (items) {
            tips.textContent = "";
            if (!items.length) return;
            tips.appendChild(el("div", { class: "note", text: t("suggestions") }));
            items.forEach(function (a) { tips.appendChild(el("details", {}, [el("summary", { text: a.title }), el("div", { text: a.snippet })])); });
          }).catch(function () {});
      });
    }
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var pre = {};
      fields.forEach(function (n) { var v = form.elements.namedItem(n).value.trim(); if (v) pre[n] = v; });
      state.prechat = pre;
      tab.prechat = pre;
      persist();
      var text = form.elements.namedItem("message").value;
      body.textContent = "";
      foot.style.display = "";
      if (greeting) note(greeting);
      sendMessage(text);
    });
    body.appendChild(form);
  }
  function showOffline() {
    body.textContent = "";
    foot.style.display = "none";
    note(t("offline"));
    var form = el("form", { "data-fo": "offline" });
    [["name", "text", false], ["email", "email", false], ["phone", "tel", false], ["message", "textarea", true]].forEach(function (f) {
      field(f[0], f[1], f[2]).forEach(function (n) { form.appendChild(n); });
    });
    var send = el("button", { type: "submit", class: "primary", text: t("leave") });
    colour(send);
    form.appendChild(send);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var v = function (n) { return form.elements.namedItem(n).value; };
      if (!v("email").trim() && !v("phone").trim()) { note(errorText("no-contact-details"), "err"); return; }
      frame({ t: "offline", name: v("name"), email: v("email"), phone: v("phone"), text: v("message") });
    });
    body.appendChild(form);
  }
  function showEnd() {
    note(t("ended"));
    state.started = false;
    state.prechat = null;
    tab.prechat = null;
    persist();
    var c = state.config || {};
    if (c.rating) {
      var score = 0;
      var stars = el("div", { class: "stars", "data-fo": "rating" });
      for (var i = 1; i <= 5; i++) {
        (function (n) {
          stars.appendChild(el("button", { type: "button", "aria-label": String(n), text: "★", onclick: function () {
            score = n;
            Array.prototype.forEach.call(stars.childNodes, function (b, j) { b.className = j < n ? "on" : ""; });
          } }));
        })(i);
      }
      var comment = el("input", { type: "text", placeholder: t("comment") });
      var rate = el("button", { type: "button", class: "primary", text: t("rateSend"), onclick: function () {
        if (score) { frame({ t: "rate", score: score, comment: comment.value }); rate.disabled = true; }
      } });
      colour(rate);
      body.appendChild(el("form", {}, [el("label", { text: t("rate") }), stars, comment, rate]));
    }
    if (c.transcript) {
      var email = el("input", { type: "email", placeholder: t("email") });
      var go = el("button", { type: "button", class: "primary", text: t("transcript"), onclick: function () {
        if (email.value.trim()) { frame({ t: "transcript", email: email.value.trim() }); go.disabled = true; }
      } });
      colour(go);
      body.appendChild(el("form", {}, [email, go]));
    }
    body.scrollTop = body.scrollHeight;
  }

  function start() { document.body.appendChild(host); connect(); }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
