// wschat browser client: one WebSocket, rooms, history, presence, typing, acknowledged sends,
// reconnect with backoff and gap-free recovery. No framework, no build step, no innerHTML:
// every piece of text from the network reaches the page through text nodes only.

const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
const MAX_ROOMS = 20;
const HISTORY_PAGE = 50;
const RECOVERY_PAGE = 100;
const RECOVERY_OVERLAP_MS = 30_000; // messages may be stored slightly out of timestamp order
const ZERO_ID = "0".repeat(32);
const EPOCH_CURSOR = `1970-01-01T00:00:00.000000Z#${ZERO_ID}`;
const TYPING_SEND_MS = 2000;
const TYPING_SHOW_MS = 3000;
const TYPING_RELAY_MS = 1100; // the server relays at most one typing event per second
const RESEND_AFTER_MS = 8000; // an unacknowledged send is retried (same client_msg_id: idempotent)
const SEND_RATE_PER_S = 5; // the server's sendMessage limit per connection (docs/protocol.md)
const SEND_BURST = 20;
const WELCOME_WAIT_MS = 5000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const SESSION_KEY = "wschat.session";
const LAST_USER_KEY = "wschat.lastUser";

const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/** Build an element; string children become text nodes (never parsed as HTML). */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const ui = {
  login: $("login"), loginUser: $("login-user"), loginEndpoint: $("login-endpoint"),
  loginToken: $("login-token"), loginError: $("login-error"),
  app: $("app"), me: $("me"), signOut: $("sign-out"), roomTitle: $("room-title"),
  conn: $("conn-state"), connDetail: $("conn-detail"), reconnectNow: $("reconnect-now"),
  rooms: $("rooms"), joinForm: $("join-form"), roomInput: $("room-input"),
  scroller: $("scroller"), loadOlder: $("load-older"), messages: $("messages"),
  typing: $("typing"), composer: $("composer"), input: $("message-input"), send: $("send"),
  presence: $("presence"), presenceCount: $("presence-count"), toast: $("toast"),
};

const state = {
  user: null, // the name signed in with
  me: null, // the user id the server knows us by (from `welcome`)
  endpoint: null,
  manualToken: "",
  devToken: null, // {token, expiresAtMs}
  auth: "unknown", // "token" | "none" once the local token endpoint has answered
  rooms: new Map(), // name -> Room, in sidebar order
  active: null,
  ws: null,
  online: false,
  attempt: 0,
  everOnline: false,
  connectionId: null,
  retryTimer: null,
  retryAt: 0,
  welcomeTimer: null,
  holds: new Set(), // reasons not to (re)connect: "network", "debug"
  outbox: new Map(), // client_msg_id -> {room, text, sentAt}; sentAt 0: due
  bucket: { tokens: 20, at: 0 }, // client-side pacing, see takeToken()
  pumpTimer: null,
  lastTypingSent: 0,
  toastTimer: null,
};

// --- rooms and messages ----------------------------------------------------------------

function newRoom(name) {
  return {
    name,
    items: [], // [{cursor, id, el}] sorted by cursor
    ids: new Set(),
    pending: new Map(), // client_msg_id -> <li>
    presence: new Set(),
    typing: new Map(), // user -> timeout id
    unread: 0,
    historyLoaded: false,
    olderCursor: null,
  };
}

function ensureRoom(name) {
  let room = state.rooms.get(name);
  if (!room) {
    room = newRoom(name);
    state.rooms.set(name, room);
    renderRooms();
  }
  return room;
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const today = new Date().toDateString() === date.toDateString();
  return today ? time : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function messageElement({ user_id, message, timestamp, message_id, cursor }, pending = false) {
  const mine = user_id === state.me;
  return h(
    "li",
    {
      class: `msg${mine ? " mine" : ""}${pending ? " pending" : ""}`,
      "data-testid": "message",
      "data-message-id": message_id,
      "data-cursor": cursor,
    },
    h(
      "div",
      { class: "meta" },
      h("span", { class: "user", "data-testid": "message-user" }, user_id),
      timestamp ? h("time", { datetime: timestamp, title: timestamp }, formatTime(timestamp)) : null,
      pending ? h("span", { class: "status" }, "sending…") : null,
    ),
    h("div", { class: "text", "data-testid": "message-text" }, message),
  );
}

/** Run fn, keeping the view pinned to the bottom if it was there (or if forced). */
function keepingScroll(fn, forceBottom = false) {
  const s = ui.scroller;
  const atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  const fromBottom = s.scrollHeight - s.scrollTop;
  fn();
  if (atBottom || forceBottom) s.scrollTop = s.scrollHeight;
  else s.scrollTop = s.scrollHeight - fromBottom;
}

/** Insert a stored message in cursor order unless its message_id is already shown. */
function addMessage(frame, source) {
  const room = state.rooms.get(frame.room);
  if (!room || room.ids.has(frame.message_id)) return;
  room.ids.add(frame.message_id);
  const pendingEl = frame.client_msg_id ? room.pending.get(frame.client_msg_id) : undefined;
  if (pendingEl) {
    room.pending.delete(frame.client_msg_id);
    state.outbox.delete(frame.client_msg_id);
    pendingEl.remove();
    pumpOutbox(); // the next queued message may go now
  }
  const el = messageElement(frame);
  const { items } = room;
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].cursor < frame.cursor) lo = mid + 1;
    else hi = mid;
  }
  items.splice(lo, 0, { cursor: frame.cursor, id: frame.message_id, el });
  stopTyping(room, frame.user_id);
  if (room.name === state.active) {
    const next = items[lo + 1]?.el ?? room.pending.values().next().value ?? null;
    keepingScroll(() => ui.messages.insertBefore(el, next), frame.user_id === state.me && source === "live");
  } else if (source !== "older" && frame.user_id !== state.me) {
    room.unread += 1;
    renderRooms();
  }
}

function addPending(room, clientMsgId, text) {
  const el = messageElement({ user_id: state.me ?? state.user, message: text }, true);
  room.pending.set(clientMsgId, el);
  if (room.name === state.active) keepingScroll(() => ui.messages.append(el), true);
}

function newestCursor(room) {
  return room.items.length ? room.items[room.items.length - 1].cursor : null;
}

/** The cursor RECOVERY_OVERLAP_MS before `cursor`, with the smallest message id. */
function overlapCursor(cursor) {
  const stamp = cursor.split("#")[0]; // 2026-11-26T17:41:32.123456Z
  const micros = stamp.slice(20, 26);
  const whole = Date.parse(`${stamp.slice(0, 19)}Z`) - RECOVERY_OVERLAP_MS;
  return `${new Date(whole).toISOString().slice(0, 19)}.${micros}Z#${ZERO_ID}`;
}

/** Ask for what this room's view lacks: the latest page, or everything after what we saw. */
function syncRoom(room) {
  const newest = newestCursor(room);
  if (newest) send({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: overlapCursor(newest) });
  else if (room.historyLoaded) send({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: EPOCH_CURSOR });
  else send({ action: "getHistory", room: room.name, limit: HISTORY_PAGE });
  send({ action: "getPresence", room: room.name });
}

// --- typing -----------------------------------------------------------------------------

function stopTyping(room, user) {
  if (!room.typing.has(user)) return;
  clearTimeout(room.typing.get(user));
  room.typing.delete(user);
  if (room.name === state.active) renderTyping();
}

function startTyping(room, user) {
  clearTimeout(room.typing.get(user));
  room.typing.set(user, setTimeout(() => stopTyping(room, user), TYPING_SHOW_MS));
  if (room.name === state.active) renderTyping();
}

function renderTyping() {
  const room = state.rooms.get(state.active);
  const names = room ? [...room.typing.keys()] : [];
  let text = "";
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = "Several people are typing…";
  ui.typing.textContent = text;
}

// --- rendering --------------------------------------------------------------------------

function renderRooms() {
  const items = [...state.rooms.values()].map((room) =>
    h(
      "li",
      { class: room.name === state.active ? "active" : "" },
      h(
        "button",
        {
          type: "button",
          class: "tab",
          "data-testid": `room-tab-${room.name}`,
          "aria-current": room.name === state.active ? "true" : undefined,
          onclick: () => activate(room.name),
        },
        h("span", { class: "hash" }, "#"),
        h("span", { class: "name" }, room.name),
        room.unread ? h("span", { class: "badge", "data-testid": `room-unread-${room.name}` }, String(room.unread)) : null,
      ),
      h(
        "button",
        {
          type: "button",
          class: "leave",
          title: `Leave #${room.name}`,
          "aria-label": `Leave ${room.name}`,
          "data-testid": `room-leave-${room.name}`,
          onclick: () => leaveRoom(room.name),
        },
        "×",
      ),
    ),
  );
  ui.rooms.replaceChildren(...items);
  const unread = [...state.rooms.values()].reduce((sum, r) => sum + r.unread, 0);
  document.title = unread ? `(${unread}) wschat` : "wschat";
}

function renderPresence() {
  const room = state.rooms.get(state.active);
  const users = room ? [...room.presence].sort() : [];
  ui.presence.replaceChildren(
    ...users.map((u) => h("li", { class: u === state.me ? "self" : "", "data-testid": `presence-${u}` }, u)),
  );
  ui.presenceCount.textContent = users.length ? String(users.length) : "";
}

function renderActiveRoom() {
  const room = state.rooms.get(state.active);
  ui.roomTitle.textContent = room ? `#${room.name}` : "";
  ui.messages.replaceChildren(...(room ? [...room.items.map((i) => i.el), ...room.pending.values()] : []));
  ui.loadOlder.hidden = !room?.olderCursor;
  ui.input.placeholder = room ? `Message #${room.name}` : "Join a room to chat";
  ui.input.disabled = ui.send.disabled = !room;
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  renderPresence();
  renderTyping();
}

function activate(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  state.active = name;
  room.unread = 0;
  renderRooms();
  renderActiveRoom();
  saveSession();
  ui.input.focus();
}

function setConn(conn, detail = "") {
  ui.conn.textContent = conn;
  ui.conn.dataset.state = conn;
  ui.connDetail.textContent = detail;
  ui.reconnectNow.hidden = conn !== "reconnecting" || !state.retryTimer;
}

function toast(text, kind = "error") {
  ui.toast.textContent = text;
  ui.toast.dataset.kind = kind;
  ui.toast.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => (ui.toast.hidden = true), 5000);
}

// --- connection -------------------------------------------------------------------------

function defaultEndpoint() {
  if (location.protocol === "http:" || location.protocol === "https:") {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/prod`;
  }
  return "ws://127.0.0.1:3001/prod";
}

function sameOrigin(endpoint) {
  try {
    return (location.protocol === "http:" || location.protocol === "https:") && new URL(endpoint).host === location.host;
  } catch {
    return false;
  }
}

function parseExpiry(value) {
  if (typeof value === "number") return value > 1e12 ? value : value * 1000;
  if (typeof value === "string") return Date.parse(value) || 0;
  return 0;
}

/** A token for the connect URL: the one given in settings, or a dev token from the local runtime. */
async function token() {
  if (state.manualToken) return state.manualToken;
  if (state.auth === "none" || !sameOrigin(state.endpoint)) return null;
  if (state.devToken && state.devToken.expiresAtMs - Date.now() > 60_000) return state.devToken.token;
  const response = await fetch("/_local/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user_id: state.user }),
  });
  if (response.status === 404 || response.status === 405) {
    state.auth = "none"; // the local runtime runs without authentication
    return null;
  }
  if (!response.ok) throw new Error(`the token endpoint answered ${response.status}`);
  const body = await response.json();
  state.auth = "token";
  state.devToken = { token: body.token, expiresAtMs: parseExpiry(body.expires_at) };
  return body.token;
}

async function connect() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  if (!state.user || state.ws) return;
  if (state.holds.size) {
    setConn("offline");
    return;
  }
  setConn(state.everOnline || state.attempt > 0 ? "reconnecting" : "connecting");
  let url;
  try {
    url = new URL(state.endpoint);
    const params = new URLSearchParams(url.search);
    if (state.rooms.size) params.set("rooms", [...state.rooms.keys()].join(","));
    params.set("user_id", state.user);
    const jwt = await token();
    if (jwt) params.set("token", jwt);
    url.search = params.toString();
  } catch (error) {
    scheduleReconnect(error instanceof TypeError && !url ? "invalid endpoint" : "server unreachable");
    return;
  }
  if (!state.user || state.ws || state.holds.size) return; // signed out or held while fetching
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.welcomeTimer = setTimeout(() => state.ws === ws && !state.online && goOnline(), WELCOME_WAIT_MS);
  });
  ws.addEventListener("message", (event) => state.ws === ws && onFrame(event.data));
  ws.addEventListener("close", (event) => state.ws === ws && onClosed(event));
}

function goOnline() {
  clearTimeout(state.welcomeTimer);
  state.online = true;
  state.everOnline = true;
  state.attempt = 0;
  setConn("online");
  for (const room of state.rooms.values()) syncRoom(room);
  resendOutbox();
}

function onClosed(event) {
  clearTimeout(state.welcomeTimer);
  state.ws = null;
  state.online = false;
  for (const room of state.rooms.values()) for (const user of [...room.typing.keys()]) stopTyping(room, user);
  if (!state.user) return;
  if (state.holds.size) setConn("offline");
  else scheduleReconnect(event.code === 1000 || event.code === 4000 ? "" : "connection lost");
}

function scheduleReconnect(reason) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** state.attempt);
  const delay = ceiling / 2 + Math.random() * (ceiling / 2); // exponential backoff, "equal jitter"
  state.attempt += 1;
  state.retryAt = Date.now() + delay;
  state.retryTimer = setTimeout(connect, delay);
  const tick = () => {
    if (!state.retryTimer || state.ws) return;
    const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
    setConn("reconnecting", `${reason ? `${reason}; ` : ""}retrying in ${seconds} s`);
    setTimeout(tick, 1000);
  };
  tick();
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

/** Spend one token of a bucket mirroring the server's send rate; false if none is left. */
function takeToken() {
  const now = Date.now();
  const bucket = state.bucket;
  bucket.tokens = Math.min(SEND_BURST, bucket.tokens + ((now - bucket.at) / 1000) * SEND_RATE_PER_S);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/**
 * Send the outbox one message at a time, the next only once the previous is acknowledged:
 * concurrent sends may be stored in any order (each is its own Lambda invocation), serial ones
 * keep the order they were typed in. Paced by a bucket mirroring the server's rate limit. An
 * entry unacknowledged for RESEND_AFTER_MS is sent again with the same client_msg_id, which the
 * server stores and broadcasts at most once.
 */
function pumpOutbox() {
  clearTimeout(state.pumpTimer);
  state.pumpTimer = null;
  if (!state.online) return;
  for (const [clientMsgId, entry] of state.outbox) {
    if (!state.rooms.has(entry.room)) {
      state.outbox.delete(clientMsgId);
      continue;
    }
    if (entry.sentAt && Date.now() - entry.sentAt < RESEND_AFTER_MS) return; // in flight
    if (!takeToken()) {
      state.pumpTimer = setTimeout(pumpOutbox, 1000 / SEND_RATE_PER_S);
      return;
    }
    send({ action: "sendMessage", room: entry.room, message: entry.text, client_msg_id: clientMsgId });
    entry.sentAt = Date.now();
    return;
  }
}

/** Make every unacknowledged entry due again (after a reconnect or a refusal). */
function resendOutbox() {
  for (const entry of state.outbox.values()) entry.sentAt = 0;
  pumpOutbox();
}

// --- frames from the server ----------------------------------------------------------------

function onFrame(data) {
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return;
  }
  const room = typeof frame.room === "string" ? state.rooms.get(frame.room) : undefined;
  switch (frame.action) {
    case "welcome":
      state.me = frame.user_id;
      state.connectionId = frame.connection_id;
      ui.me.textContent = frame.user_id;
      for (const name of frame.rooms) ensureRoom(name);
      for (const name of state.rooms.keys()) {
        if (!frame.rooms.includes(name)) send({ action: "joinRoom", room: name });
      }
      if (!state.active && state.rooms.size) activate(state.rooms.keys().next().value);
      goOnline();
      break;
    case "message":
      addMessage(frame, "live");
      break;
    case "ack":
      if (room?.pending.has(frame.client_msg_id)) {
        const text = state.outbox.get(frame.client_msg_id)?.text ?? room.pending.get(frame.client_msg_id).querySelector(".text").textContent;
        addMessage({ ...frame, action: "message", user_id: state.me, message: text }, "live");
      }
      break;
    case "history":
      if (!room) break;
      keepingScroll(() => {
        for (const message of frame.messages) addMessage(message, frame.direction === "before" ? "older" : "recovered");
      }, !room.historyLoaded);
      if (frame.direction === "after" && frame.next_cursor) {
        send({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: frame.next_cursor });
      }
      if (frame.direction === "before") room.olderCursor = frame.next_cursor;
      room.historyLoaded = true;
      if (room.name === state.active) ui.loadOlder.hidden = !room.olderCursor;
      break;
    case "joined":
    case "presenceList":
      if (!room) break;
      room.presence = new Set(frame.users);
      if (frame.action === "joined" && !room.historyLoaded) syncRoom(room);
      if (room.name === state.active) renderPresence();
      break;
    case "presence":
      if (!room) break;
      if (frame.event === "join") room.presence.add(frame.user_id);
      else {
        room.presence.delete(frame.user_id);
        stopTyping(room, frame.user_id);
      }
      if (room.name === state.active) renderPresence();
      break;
    case "typing":
      if (room && frame.user_id !== state.me) startTyping(room, frame.user_id);
      break;
    case "left":
      break;
    case "error":
      onError(frame);
      break;
    default:
      if (frame.message) toast(`Server: ${frame.message}`);
  }
}

function onError(frame) {
  if (frame.code === "rate_limited") {
    const wait = frame.retry_after_ms ?? 1000;
    toast(`Slow down: sending again in ${(wait / 1000).toFixed(1)} s`, "warn");
    state.bucket = { tokens: 0, at: Date.now() + wait };
    setTimeout(resendOutbox, wait);
  } else if (frame.code === "unknown_connection") {
    toast("The server forgot this connection; reconnecting", "warn");
    state.ws?.close(4000, "unknown connection");
  } else {
    toast(`${frame.code}: ${frame.message}`);
  }
}

// --- user actions -------------------------------------------------------------------------

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `c${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function sendMessage() {
  const room = state.rooms.get(state.active);
  const text = ui.input.value.replace(CONTROL_CHARS, "");
  if (!room || !text.trim()) return;
  const clientMsgId = randomId();
  state.outbox.set(clientMsgId, { room: room.name, text, sentAt: 0 });
  addPending(room, clientMsgId, text);
  pumpOutbox();
  ui.input.value = "";
  autoGrow();
  // Others hide our typing indicator when our message arrives: allow the next typing event as
  // soon as the server would relay it (at most one per second), not a full TYPING_SEND_MS later.
  state.lastTypingSent = Math.min(state.lastTypingSent, Date.now() + TYPING_RELAY_MS - TYPING_SEND_MS);
}

function joinRoom(rawName) {
  const name = rawName.trim().replace(/^#/, "");
  if (!ROOM_RE.test(name)) {
    toast("Room names: 1–64 letters, digits, _ . - (starting with a letter or digit)");
    return false;
  }
  if (!state.rooms.has(name)) {
    if (state.rooms.size >= MAX_ROOMS) {
      toast(`At most ${MAX_ROOMS} rooms at a time`);
      return false;
    }
    ensureRoom(name);
    send({ action: "joinRoom", room: name }); // offline: joined through the connect URL later
  }
  activate(name);
  return true;
}

function leaveRoom(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  send({ action: "leaveRoom", room: name });
  for (const timer of room.typing.values()) clearTimeout(timer);
  for (const clientMsgId of room.pending.keys()) state.outbox.delete(clientMsgId);
  const names = [...state.rooms.keys()];
  state.rooms.delete(name);
  if (state.active === name) {
    const index = names.indexOf(name);
    state.active = names[index + 1] ?? names[index - 1] ?? null;
    if (state.active === name) state.active = null;
  }
  renderRooms();
  if (state.active) activate(state.active);
  else renderActiveRoom();
  saveSession();
}

function autoGrow() {
  ui.input.style.height = "auto";
  ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
}

// --- session ------------------------------------------------------------------------------

function saveSession() {
  if (!state.user) return;
  const session = {
    user: state.user,
    endpoint: state.endpoint,
    token: state.manualToken,
    rooms: [...state.rooms.keys()],
    active: state.active,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

function start({ user, endpoint, token: manualToken = "", rooms = ["general"], active = null }) {
  state.user = user;
  state.endpoint = endpoint || defaultEndpoint();
  state.manualToken = manualToken;
  for (const name of rooms.filter((r) => ROOM_RE.test(r)).slice(0, MAX_ROOMS)) ensureRoom(name);
  state.active = state.rooms.has(active) ? active : (state.rooms.keys().next().value ?? null);
  localStorage.setItem(LAST_USER_KEY, user);
  saveSession();
  ui.login.hidden = true;
  ui.app.hidden = false;
  ui.me.hidden = ui.signOut.hidden = false;
  ui.me.textContent = user;
  renderRooms();
  renderActiveRoom();
  if (!navigator.onLine) state.holds.add("network");
  connect();
}

function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  state.user = null;
  state.ws?.close(1000, "signed out");
  location.reload();
}

function init() {
  const query = new URLSearchParams(location.search);
  const queryEndpoint = query.get("endpoint");
  ui.loginUser.value = localStorage.getItem(LAST_USER_KEY) ?? "";
  ui.loginEndpoint.value = queryEndpoint ?? defaultEndpoint();

  ui.login.addEventListener("submit", (event) => {
    event.preventDefault();
    const user = ui.loginUser.value.trim();
    if (!USER_RE.test(user)) {
      ui.loginError.textContent = "User names: 1–64 letters, digits, _ . @ - (starting with a letter or digit).";
      return;
    }
    const endpoint = ui.loginEndpoint.value.trim() || defaultEndpoint();
    if (!/^wss?:\/\/./.test(endpoint)) {
      ui.loginError.textContent = "The endpoint must start with ws:// or wss://.";
      return;
    }
    const rooms = (query.get("rooms") ?? "general").split(",").map((r) => r.trim()).filter(Boolean);
    start({ user, endpoint, token: ui.loginToken.value.trim(), rooms });
  });
  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (joinRoom(ui.roomInput.value)) ui.roomInput.value = "";
  });
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
    ui.input.focus();
  });
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });
  ui.input.addEventListener("input", () => {
    autoGrow();
    const now = Date.now();
    if (ui.input.value.trim() && state.active && now - state.lastTypingSent >= TYPING_SEND_MS) {
      if (send({ action: "typing", room: state.active })) state.lastTypingSent = now;
    }
  });
  ui.loadOlder.addEventListener("click", () => {
    const room = state.rooms.get(state.active);
    if (room?.olderCursor) send({ action: "getHistory", room: room.name, limit: HISTORY_PAGE, before: room.olderCursor });
  });
  ui.reconnectNow.addEventListener("click", () => connect());
  ui.signOut.addEventListener("click", signOut);
  window.addEventListener("offline", () => {
    state.holds.add("network");
    state.ws?.close(1000, "browser offline");
    setConn("offline", "no network");
  });
  window.addEventListener("online", () => {
    state.holds.delete("network");
    state.attempt = 0;
    connect();
  });
  setInterval(pumpOutbox, RESEND_AFTER_MS / 2);

  const saved = sessionStorage.getItem(SESSION_KEY);
  if (saved) {
    try {
      start({ ...JSON.parse(saved), ...(queryEndpoint ? { endpoint: queryEndpoint } : {}) });
    } catch {
      sessionStorage.removeItem(SESSION_KEY);
    }
  }
}

// Debug and test hooks: force the disconnects a flaky network would cause.
window.__wschat = {
  /** Close the socket as a network drop would; the client reconnects with backoff. */
  dropConnection() {
    state.ws?.close(4000, "dropped by debug hook");
  },
  /** Close the socket and stay offline until goOnline(). */
  goOffline() {
    state.holds.add("debug");
    state.ws?.close(4000, "offline by debug hook");
    setConn("offline");
  },
  /** Send any frame as is (to see how the client shows the server's answer). */
  sendRaw(frame) {
    return send(frame);
  },
  goOnline() {
    state.holds.delete("debug");
    state.attempt = 0;
    connect();
  },
  get connectionId() {
    return state.online ? state.connectionId : null;
  },
};

init();
