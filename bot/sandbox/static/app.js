// Gridbot sandbox chat page: one phone-like column per demo user.
// Everything coming from the bot is inserted with textContent / DOM nodes, never as HTML.
"use strict";

(() => {
  const DEFAULT_LOCATION = { latitude: 31.2304, longitude: 121.4737 };
  const AVATAR_COLORS = ["#e17076", "#7bc862", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];
  const SAFE_SCHEMES = new Set(["http:", "https:", "tg:", "mailto:"]);
  const ACTION_TEXT = {
    typing: "typing…",
    upload_photo: "sending photo…",
    upload_document: "sending file…",
    find_location: "choosing location…",
    choose_sticker: "choosing sticker…",
  };

  const app = {
    bot: { username: "", first_name: "Bot" },
    quickTexts: {},
    demoIds: [],
    seq: 0,
    chats: new Map(), // user id -> chat view state
    active: null,
  };

  const columnsEl = document.getElementById("columns");
  const tabsEl = document.getElementById("tabs");
  const statusEl = document.getElementById("status");

  // ---------------------------------------------------------------- helpers
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function api(path, body) {
    const options = {};
    if (body instanceof FormData) {
      options.method = "POST";
      options.body = body;
    } else if (body !== undefined) {
      options.method = "POST";
      options.body = JSON.stringify(body);
      options.headers = { "Content-Type": "application/json" };
    }
    const response = await fetch(path, options);
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok || !data || data.ok === false) {
      throw new Error((data && data.error) || `HTTP ${response.status}`);
    }
    return data;
  }

  function setStatus(online) {
    statusEl.textContent = online ? "connected" : "offline – retrying…";
    statusEl.classList.toggle("offline", !online);
  }

  function formatTime(unix) {
    if (!unix) return "";
    const date = new Date(unix * 1000);
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function fullName(user) {
    return [user.first_name, user.last_name].filter(Boolean).join(" ");
  }

  function safeHref(href) {
    try {
      const url = new URL(href, window.location.href);
      return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  // "https://t.me/<bot>?start=XYZ" (or tg://resolve?domain=<bot>&start=XYZ) → "XYZ"
  function deepLinkPayload(href) {
    let url;
    try {
      url = new URL(href, window.location.href);
    } catch (_) {
      return null;
    }
    const bot = (app.bot.username || "").toLowerCase();
    if (!bot) return null;
    const host = url.hostname.toLowerCase();
    if ((url.protocol === "https:" || url.protocol === "http:") &&
        (host === "t.me" || host === "telegram.me") &&
        url.pathname.replace(/^\/+|\/+$/g, "").toLowerCase() === bot) {
      return url.searchParams.get("start") || "";
    }
    if (url.protocol === "tg:" && (url.searchParams.get("domain") || "").toLowerCase() === bot) {
      return url.searchParams.get("start") || "";
    }
    return null;
  }

  // ---------------------------------------------------------------- actions as a user
  async function run(chat, promise) {
    try {
      return await promise;
    } catch (error) {
      toast(chat, `⚠️ ${error.message}`);
      return null;
    }
  }

  function sendText(chat, text) {
    const clean = text.trim();
    if (!clean) return;
    closePopups(chat);
    run(chat, api("/_sandbox/send", { user_id: chat.user.id, text: clean }));
  }

  function openLink(chat, href) {
    const payload = deepLinkPayload(href);
    if (payload !== null) {
      sendText(chat, payload ? `/start ${payload}` : "/start");
      return;
    }
    const safe = safeHref(href);
    if (safe) window.open(safe, "_blank", "noopener,noreferrer");
  }

  function shareContact(chat) {
    const phone = chat.user.phone_number || `+8613800${String(chat.user.id).slice(-6).padStart(6, "0")}`;
    if (!window.confirm(`Share the phone number ${phone} of ${fullName(chat.user)} with the bot?`)) return;
    run(chat, api("/_sandbox/send_contact", {
      user_id: chat.user.id, phone_number: phone, first_name: chat.user.first_name,
    }));
  }

  function showLocationForm(chat) {
    closePopups(chat);
    chat.latitudeInput.value = String(DEFAULT_LOCATION.latitude);
    chat.longitudeInput.value = String(DEFAULT_LOCATION.longitude);
    chat.locationForm.hidden = false;
    chat.latitudeInput.focus();
  }

  // ---------------------------------------------------------------- rich text
  function linkNode(chat, href, label) {
    const safe = safeHref(href);
    if (!safe) return document.createTextNode(label);
    const anchor = el("a", null, label);
    anchor.href = safe;
    anchor.rel = "noopener noreferrer";
    anchor.target = "_blank";
    anchor.addEventListener("click", (event) => {
      event.preventDefault();
      openLink(chat, safe);
    });
    return anchor;
  }

  // URLs and /commands inside plain text become clickable.
  const AUTO_LINK = /(https?:\/\/[^\s<>"']+|\bt\.me\/[^\s<>"']+)|(^|\s)(\/[A-Za-z0-9_]{1,32})(?=$|[\s.,!?;:)])/g;

  function autoLinked(chat, text) {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(AUTO_LINK)) {
      let start = match.index;
      let piece = match[0];
      if (match[1]) {
        piece = match[1].replace(/[.,!?;:)]+$/, "");
      } else {
        start += match[2].length;
        piece = match[3];
      }
      if (start > last) fragment.append(text.slice(last, start));
      if (match[1]) {
        const href = piece.startsWith("t.me/") ? `https://${piece}` : piece;
        fragment.append(linkNode(chat, href, piece));
      } else {
        const command = el("a", "command", piece);
        command.href = "#";
        command.addEventListener("click", (event) => {
          event.preventDefault();
          sendText(chat, piece);
        });
        fragment.append(command);
      }
      last = start + piece.length;
    }
    if (last < text.length) fragment.append(text.slice(last));
    return fragment;
  }

  function wrapEntity(chat, entity, child) {
    let node;
    switch (entity.type) {
      case "bold": node = el("b"); break;
      case "italic": node = el("i"); break;
      case "underline": node = el("u"); break;
      case "strikethrough": node = el("s"); break;
      case "code": node = el("code"); break;
      case "pre": node = el("code", "pre"); break;
      case "blockquote":
      case "expandable_blockquote": node = el("span", "quote"); break;
      case "spoiler":
        node = el("span", "spoiler");
        node.title = "spoiler – click to reveal";
        node.addEventListener("click", () => node.classList.toggle("shown"));
        break;
      case "text_link": {
        const link = linkNode(chat, entity.url || "", "");
        if (link.nodeType !== Node.ELEMENT_NODE) return child;
        node = link;
        break;
      }
      default: return child;
    }
    node.append(child);
    return node;
  }

  function renderRich(chat, text, entities, className) {
    const container = el("div", className);
    const list = (entities || []).filter((e) => e.length > 0);
    const points = new Set([0, text.length]);
    for (const e of list) {
      points.add(Math.min(e.offset, text.length));
      points.add(Math.min(e.offset + e.length, text.length));
    }
    const sorted = [...points].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length - 1; i += 1) {
      const start = sorted[i];
      const end = sorted[i + 1];
      if (end <= start) continue;
      const segment = text.slice(start, end); // entity offsets are UTF-16, like JS strings
      const active = list
        .filter((e) => e.offset <= start && e.offset + e.length >= end)
        .sort((a, b) => a.offset - b.offset || b.length - a.length);
      const plain = !active.some((e) => ["text_link", "code", "pre"].includes(e.type));
      let node = plain ? autoLinked(chat, segment) : document.createTextNode(segment);
      for (let j = active.length - 1; j >= 0; j -= 1) node = wrapEntity(chat, active[j], node);
      container.append(node);
    }
    return container;
  }

  // ---------------------------------------------------------------- messages
  function inlineKeyboard(chat, message) {
    const box = el("div", "inline-kb");
    for (const row of message.reply_markup.inline_keyboard) {
      const rowEl = el("div", "kb-row");
      for (const button of row) {
        const buttonEl = el("button", null, button.text);
        buttonEl.type = "button";
        buttonEl.addEventListener("click", () => pressInline(chat, message, button, buttonEl));
        rowEl.append(buttonEl);
      }
      box.append(rowEl);
    }
    return box;
  }

  async function pressInline(chat, message, button, buttonEl) {
    if (button.callback_data !== undefined) {
      buttonEl.disabled = true;
      await run(chat, api("/_sandbox/press", {
        user_id: chat.user.id, message_id: message.message_id, callback_data: button.callback_data,
      }));
      setTimeout(() => { buttonEl.disabled = false; }, 600);
    } else if (button.url) {
      openLink(chat, button.url);
    } else if (button.copy_text && navigator.clipboard) {
      navigator.clipboard.writeText(button.copy_text.text || "").then(() => toast(chat, "Copied"));
    } else {
      toast(chat, "This kind of button is not supported in the sandbox");
    }
  }

  function renderMessage(chat, m) {
    const wrap = el("div", `msg ${m.from_bot ? "bot" : "user"}`);
    wrap.dataset.id = String(m.message_id);
    const bubble = el("div", "bubble");
    if (m.photo) {
      const img = el("img", "photo");
      img.src = m.photo;
      img.alt = "photo";
      img.loading = "lazy";
      img.addEventListener("load", () => maybeScroll(chat));
      bubble.append(img);
    }
    if (m.sticker) bubble.append(el("div", "sticker", m.sticker.emoji || "🖼️"));
    if (m.document) {
      const link = el("a", "doc");
      link.href = m.document.url;
      link.download = m.document.file_name || "file";
      link.append(el("span", "doc-icon", "📄"));
      const info = el("span", null, m.document.file_name || "file");
      const size = m.document.file_size ? `${Math.max(1, Math.round(m.document.file_size / 1024))} KB` : "";
      info.append(el("small", null, [m.document.mime_type, size].filter(Boolean).join(" · ")));
      link.append(info);
      bubble.append(link);
    }
    if (m.location) {
      const { latitude, longitude } = m.location;
      const box = el("div", "location", "📍 ");
      box.append(linkNode(chat,
        `https://www.openstreetmap.org/?mlat=${latitude}&mlon=${longitude}#map=17/${latitude}/${longitude}`,
        `${latitude}, ${longitude}`));
      bubble.append(box);
    }
    if (m.contact) {
      const name = [m.contact.first_name, m.contact.last_name].filter(Boolean).join(" ");
      bubble.append(el("div", "contact", `👤 ${name} · ${m.contact.phone_number}`));
    }
    if (m.text !== null && m.text !== undefined) bubble.append(renderRich(chat, m.text, m.entities, "text"));
    if (m.caption) bubble.append(renderRich(chat, m.caption, m.caption_entities, "text caption"));
    const meta = el("div", "meta", formatTime(m.date));
    if (m.edit_count > 0) meta.textContent = `edited ${formatTime(m.edit_date || m.date)}`;
    bubble.append(meta);
    wrap.append(bubble);
    if (m.reply_markup && m.reply_markup.inline_keyboard) wrap.append(inlineKeyboard(chat, m));
    return wrap;
  }

  function nearBottom(chat) {
    const box = chat.messagesEl;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  function maybeScroll(chat, force) {
    if (force || chat.stickToBottom) chat.messagesEl.scrollTop = chat.messagesEl.scrollHeight;
  }

  function upsert(chat, m, fresh) {
    const id = m.message_id;
    const old = chat.nodes.get(id);
    if (m.deleted) {
      if (old) old.remove();
      chat.nodes.delete(id);
      chat.messages.delete(id);
      return;
    }
    const known = chat.messages.get(id);
    if (known && known.seq >= m.seq) return;
    chat.stickToBottom = nearBottom(chat);
    const node = renderMessage(chat, m);
    if (old) {
      old.replaceWith(node);
    } else {
      if (fresh) node.classList.add("fresh");
      const after = [...chat.nodes.keys()].filter((k) => k > id).sort((a, b) => a - b)[0];
      if (after !== undefined) chat.messagesEl.insertBefore(node, chat.nodes.get(after));
      else chat.messagesEl.append(node);
      if (fresh && m.from_bot) {
        chat.typingEl.hidden = true;
        if (app.active !== chat.user.id) {
          chat.unread += 1;
          renderTabs();
        }
      }
      if (fresh && !m.from_bot) chat.stickToBottom = true;
    }
    chat.nodes.set(id, node);
    chat.messages.set(id, m);
    maybeScroll(chat);
  }

  // ---------------------------------------------------------------- reply keyboard
  function currentKeyboard(chat) {
    let keyboard = null;
    let keyboardId = 0;
    let lastUser = 0;
    let forceReply = null;
    const ids = [...chat.messages.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const m = chat.messages.get(id);
      if (!m.from_bot) {
        lastUser = id;
        forceReply = null;
        continue;
      }
      const markup = m.reply_markup;
      forceReply = markup && markup.force_reply ? markup : null;
      if (markup && markup.keyboard) {
        keyboard = markup;
        keyboardId = id;
      } else if (markup && markup.remove_keyboard) {
        keyboard = null;
      }
    }
    if (keyboard && keyboard.one_time_keyboard && lastUser > keyboardId) keyboard = null;
    return { keyboard, forceReply };
  }

  function refreshKeyboard(chat) {
    const { keyboard, forceReply } = currentKeyboard(chat);
    const box = chat.keyboardEl;
    box.replaceChildren();
    box.hidden = !keyboard;
    chat.input.placeholder = (keyboard && keyboard.input_field_placeholder) ||
      (forceReply && (forceReply.input_field_placeholder || "Reply…")) || "Message";
    if (!keyboard) return;
    for (const row of keyboard.keyboard) {
      const rowEl = el("div", "kb-row");
      for (const button of row) {
        const label = (button.request_location ? "📍 " : button.request_contact ? "👤 " : "") + button.text;
        const buttonEl = el("button", null, label);
        buttonEl.type = "button";
        buttonEl.addEventListener("click", () => {
          if (button.request_location) showLocationForm(chat);
          else if (button.request_contact) shareContact(chat);
          else if (button.web_app || button.request_poll || button.request_users || button.request_chat) {
            toast(chat, "This kind of button is not supported in the sandbox");
          } else sendText(chat, button.text);
        });
        rowEl.append(buttonEl);
      }
      box.append(rowEl);
    }
  }

  // ---------------------------------------------------------------- popups and notices
  function closePopups(chat) {
    chat.commandsEl.hidden = true;
    chat.attachEl.hidden = true;
  }

  function toast(chat, text, ms = 2600) {
    const box = chat.toastEl;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(chat.toastTimer);
    chat.toastTimer = setTimeout(() => { box.hidden = true; }, ms);
  }

  function alertDialog(text) {
    const dialog = document.getElementById("alert-dialog");
    document.getElementById("alert-text").textContent = text;
    if (typeof dialog.showModal === "function") {
      if (!dialog.open) dialog.showModal();
    } else {
      window.alert(text);
    }
  }

  function showAnswer(answer) {
    const chat = app.chats.get(answer.chat_id);
    if (!chat) return;
    if (answer.url) openLink(chat, answer.url);
    if (!answer.text) return;
    if (answer.show_alert) alertDialog(answer.text);
    else toast(chat, answer.text);
  }

  function showAction(chat, action) {
    clearTimeout(chat.typingTimer);
    if (!action) {
      chat.typingEl.hidden = true;
      return;
    }
    chat.typingEl.textContent = ACTION_TEXT[action] || "working…";
    chat.typingEl.hidden = false;
    chat.typingTimer = setTimeout(() => { chat.typingEl.hidden = true; }, 5000);
  }

  async function toggleCommands(chat) {
    const box = chat.commandsEl;
    if (!box.hidden) {
      box.hidden = true;
      return;
    }
    chat.attachEl.hidden = true;
    box.replaceChildren(el("div", "none", "Loading…"));
    box.hidden = false;
    const data = await run(chat, api(`/_sandbox/chats/${chat.user.id}/commands`));
    box.replaceChildren();
    const commands = data ? data.commands : [];
    if (!commands.length) {
      box.append(el("div", "none", "The bot has not set any commands for this chat."));
      return;
    }
    for (const command of commands) {
      const item = el("button");
      item.type = "button";
      item.append(el("span", "cmd", `/${command.command}`), el("span", "desc", command.description));
      item.addEventListener("click", () => sendText(chat, `/${command.command}`));
      box.append(item);
    }
  }

  function attach(chat, kind) {
    closePopups(chat);
    const userId = chat.user.id;
    if (kind === "upload") chat.fileInput.click();
    else if (kind === "sample") {
      const caption = chat.input.value.trim();
      chat.input.value = "";
      run(chat, api("/_sandbox/send_photo", { user_id: userId, caption: caption || null }));
    } else if (kind === "location") showLocationForm(chat);
    else if (kind === "contact") shareContact(chat);
    else if (kind === "sticker") run(chat, api("/_sandbox/send_sticker", { user_id: userId }));
    else if (kind === "document") run(chat, api("/_sandbox/send_document", { user_id: userId }));
  }

  function uploadPhoto(chat, file) {
    const form = new FormData();
    form.append("user_id", String(chat.user.id));
    const caption = chat.input.value.trim();
    if (caption) form.append("caption", caption);
    chat.input.value = "";
    form.append("photo", file, file.name || "photo.jpg");
    run(chat, api("/_sandbox/send_photo", form));
  }

  // ---------------------------------------------------------------- columns and tabs
  function describe(user) {
    const parts = [fullName(user)];
    if (user.username) parts.push(`@${user.username}`);
    parts.push(`id ${user.id}`);
    if (user.language_code) parts.push(user.language_code);
    return parts.join(" · ");
  }

  function renderHeader(chat) {
    const user = chat.user;
    chat.root.querySelector(".label").textContent = user.label || fullName(user);
    chat.root.querySelector(".name").textContent = describe(user);
    const avatar = chat.root.querySelector(".avatar");
    avatar.textContent = (user.first_name || "?").slice(0, 1).toUpperCase();
    avatar.style.background = AVATAR_COLORS[Math.abs(user.id) % AVATAR_COLORS.length];
    const quick = chat.root.querySelector(".quick");
    quick.replaceChildren();
    for (const [label, text] of app.quickTexts[String(user.id)] || []) {
      const button = el("button", null, label);
      button.type = "button";
      button.title = text;
      button.addEventListener("click", () => sendText(chat, text));
      quick.append(button);
    }
  }

  function createColumn(user) {
    const root = document.getElementById("column-template").content.firstElementChild.cloneNode(true);
    const chat = {
      user,
      root,
      messages: new Map(),
      nodes: new Map(),
      unread: 0,
      stickToBottom: true,
      messagesEl: root.querySelector(".messages"),
      keyboardEl: root.querySelector(".reply-keyboard"),
      commandsEl: root.querySelector(".commands-popup"),
      attachEl: root.querySelector(".attach-popup"),
      toastEl: root.querySelector(".toast"),
      typingEl: root.querySelector(".typing"),
      locationForm: root.querySelector(".location-form"),
      latitudeInput: root.querySelector(".location-form input[name=latitude]"),
      longitudeInput: root.querySelector(".location-form input[name=longitude]"),
      fileInput: root.querySelector(".file-input"),
      input: root.querySelector(".text-input"),
    };
    root.dataset.userId = String(user.id);
    root.querySelector(".composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = chat.input.value;
      chat.input.value = "";
      sendText(chat, text);
    });
    root.querySelector(".menu-btn").addEventListener("click", () => toggleCommands(chat));
    root.querySelector(".photo-btn").addEventListener("click", () => {
      closePopups(chat);
      chat.fileInput.click();
    });
    root.querySelector(".attach-btn").addEventListener("click", () => {
      chat.commandsEl.hidden = true;
      chat.attachEl.hidden = !chat.attachEl.hidden;
    });
    chat.attachEl.addEventListener("click", (event) => {
      const target = event.target.closest("button[data-attach]");
      if (target) attach(chat, target.dataset.attach);
    });
    chat.fileInput.addEventListener("change", () => {
      const file = chat.fileInput.files && chat.fileInput.files[0];
      if (file) uploadPhoto(chat, file);
      chat.fileInput.value = "";
    });
    chat.locationForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const latitude = Number(chat.latitudeInput.value);
      const longitude = Number(chat.longitudeInput.value);
      chat.locationForm.hidden = true;
      run(chat, api("/_sandbox/send_location", { user_id: chat.user.id, latitude, longitude }));
    });
    chat.locationForm.querySelector(".cancel").addEventListener("click", () => {
      chat.locationForm.hidden = true;
    });
    root.addEventListener("click", (event) => {
      if (!event.target.closest(".popup, .menu-btn, .attach-btn")) closePopups(chat);
    });
    chat.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closePopups(chat);
    });
    app.chats.set(user.id, chat);
    renderHeader(chat);
    return chat;
  }

  function orderedUsers(users) {
    const rank = (user) => {
      const index = app.demoIds.indexOf(user.id);
      return index === -1 ? app.demoIds.length : index;
    };
    return [...users].sort((a, b) => rank(a) - rank(b) || a.id - b.id);
  }

  function setActive(userId) {
    app.active = userId;
    const chat = app.chats.get(userId);
    if (chat) chat.unread = 0;
    for (const [id, item] of app.chats) item.root.classList.toggle("active", id === userId);
    renderTabs();
  }

  function renderTabs() {
    tabsEl.replaceChildren();
    for (const chat of app.chats.values()) {
      const button = el("button", chat.user.id === app.active ? "active" : null,
        chat.user.label || fullName(chat.user));
      button.type = "button";
      if (chat.unread > 0) button.append(el("span", "badge", chat.unread));
      button.addEventListener("click", () => setActive(chat.user.id));
      tabsEl.append(button);
    }
  }

  async function loadHistory(chat) {
    const data = await api(`/_sandbox/chats/${chat.user.id}/messages`);
    for (const m of data.messages) upsert(chat, m, false);
    refreshKeyboard(chat);
    maybeScroll(chat, true);
  }

  async function syncUsers() {
    const data = await api("/_sandbox/users");
    const users = orderedUsers(data.users);
    const fresh = [];
    for (const user of users) {
      const known = app.chats.get(user.id);
      if (known) {
        known.user = user;
        renderHeader(known);
      } else {
        fresh.push(createColumn(user));
      }
    }
    for (const user of users) columnsEl.append(app.chats.get(user.id).root);
    document.getElementById("empty-hint").hidden = users.length > 0;
    if ((app.active === null || !app.chats.has(app.active)) && users.length) app.active = users[0].id;
    setActive(app.active);
    await Promise.all(fresh.map(loadHistory));
  }

  async function resync(seq) {
    for (const chat of app.chats.values()) chat.root.remove();
    app.chats.clear();
    app.seq = seq;
    await syncUsers();
  }

  // ---------------------------------------------------------------- live updates
  async function pollEvents() {
    let failures = 0;
    for (;;) {
      try {
        const events = await api(`/_sandbox/events?after_seq=${app.seq}&timeout=25`);
        setStatus(true);
        failures = 0;
        if (events.reset) {
          await resync(events.seq);
          continue;
        }
        app.seq = events.seq;
        if (events.users_changed) await syncUsers();
        const touched = new Set();
        for (const m of events.messages) {
          const chat = app.chats.get(m.chat_id);
          if (!chat) continue;
          upsert(chat, m, true);
          touched.add(chat);
        }
        for (const chat of touched) refreshKeyboard(chat);
        for (const item of events.actions) {
          const chat = app.chats.get(item.chat_id);
          if (chat) showAction(chat, item.action);
        }
        for (const answer of events.callback_answers) showAnswer(answer);
      } catch (error) {
        setStatus(false);
        failures += 1;
        await sleep(Math.min(1000 * failures, 5000));
      }
    }
  }

  async function init() {
    for (;;) {
      try {
        const config = await api("/_sandbox/config");
        app.bot = config.bot;
        app.quickTexts = config.quick_texts || {};
        app.demoIds = config.demo_user_ids || [];
        app.seq = config.seq;
        document.getElementById("bot-name").textContent = config.bot.first_name;
        document.getElementById("bot-username").textContent = `@${config.bot.username}`;
        document.title = `${config.bot.first_name} · sandbox`;
        await syncUsers();
        setStatus(true);
        break;
      } catch (error) {
        setStatus(false);
        await sleep(2000);
      }
    }
    pollEvents();
  }

  init();
})();
