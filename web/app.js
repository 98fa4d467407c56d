// wschat browser client: one WebSocket, rooms (public, private, direct) with a sidebar rebuilt
// from listRooms, invitations, moderation notices, history, presence, typing, acknowledged sends,
// reconnect with backoff, transparent token renewal and gap-free recovery. No framework, no build
// step, no innerHTML: every piece of text from the network reaches the page through text nodes.

import { $, h } from "./dom.js";
import { checkEndpoint, defaultEndpoint } from "./endpoint.js";

// The protocol schema's room and user_id patterns (tests/clients/test_web_patterns.py keeps them equal).
const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const USER_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
const MAX_ROOMS = 20;
const HISTORY_PAGE = 50;
const RECOVERY_PAGE = 100;
const LIST_PAGE = 100;
const PRESENCE_PAGE = 50; // users per getPresence page ("show more"); ?presence_page=N (1–100) overrides
const RECOVERY_OVERLAP_MS = 30_000; // messages may be stored slightly out of timestamp order
const ZERO_ID = "0".repeat(32);
const EPOCH_CURSOR = `1970-01-01T00:00:00.000000Z#${ZERO_ID}`;
const TYPING_SEND_MS = 2000;
const TYPING_SHOW_MS = 3000;
const TYPING_RELAY_MS = 1100; // the server relays at most one typing event per second
const RESEND_AFTER_MS = 8000; // an unacknowledged send is retried (same client_msg_id: idempotent)
const SEND_RATE_PER_S = 5; // the server's sendMessage limit per user (docs/protocol.md)
const SEND_BURST = 20;
// Every other action shares one per-user limit of 10/s, bursts of 30: stay a little under it so
// that a reconnect with 20 rooms (listRooms + joins + history + presence) is not refused.
const CONTROL_RATE_PER_S = 8;
const CONTROL_BURST = 24;
const WELCOME_WAIT_MS = 5000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const RENEW_MIN_INTERVAL_MS = 5000; // a token refused again this soon after a renewal: back off
const SESSION_KEY = "wschat.session";
const LAST_USER_KEY = "wschat.lastUser";
const MODERATOR_ROLES = new Set(["owner", "admin"]);

const ui = {
  login: $("login"), loginUser: $("login-user"), loginEndpoint: $("login-endpoint"),
  loginToken: $("login-token"), loginError: $("login-error"),
  app: $("app"), me: $("me"), signOut: $("sign-out"), roomTitle: $("room-title"),
  conn: $("conn-state"), connDetail: $("conn-detail"), reconnectNow: $("reconnect-now"),
  rooms: $("rooms"), publicSection: $("public-rooms-section"), publicRooms: $("public-rooms"),
  publicCount: $("public-count"),
  joinForm: $("join-form"), roomInput: $("room-input"),
  createForm: $("create-form"), createName: $("create-name"), createVisibility: $("create-visibility"),
  notices: $("notices"),
  scroller: $("scroller"), loadOlder: $("load-older"), messages: $("messages"),
  typing: $("typing"), composer: $("composer"), input: $("message-input"), send: $("send"),
  presence: $("presence"), presenceCount: $("presence-count"),
  presenceMore: $("presence-more"), presenceRefresh: $("presence-refresh"),
  elsewhere: $("elsewhere"), elsewhereTitle: $("elsewhere-title"), toast: $("toast"),
};

const state = {
  user: null, // the name signed in with
  me: null, // the user id the server knows us by (from `welcome`)
  endpoint: null,
  manualToken: "",
  devToken: null, // {token, expiresAtMs}
  auth: "unknown", // "token" | "none" once the local token endpoint has answered
  rooms: new Map(), // name -> Room: the rooms this tab is in, in sidebar order
  directory: new Map(), // name -> {room, visibility, role, peer}: what the server told us (listRooms, joined, invited…)
  listing: null, // pages of a listRooms walk in progress
  invitations: new Map(), // room -> {by, visibility}: `invited` not yet acted on
  removals: new Map(), // room -> {reason, by, label}: rooms we were kicked or banned from
  sentInvites: new Map(), // room -> Set of users we invited (from roomUpdated)
  leaving: new Set(), // rooms left by the user whose `left` has not come yet
  active: null,
  ws: null,
  online: false,
  attempt: 0,
  everOnline: false,
  connectionId: null,
  retryTimer: null,
  retryAt: 0,
  welcomeTimer: null,
  holds: new Set(), // reasons not to (re)connect: "network", "debug", "token", "endpoint"
  renewing: false, // the server said token_expired: reconnect at once with a fresh token
  lastRenewal: 0,
  outbox: new Map(), // client_msg_id -> {room, text, sentAt}; sentAt 0: due
  bucket: { tokens: SEND_BURST, at: 0 }, // client-side pacing of sendMessage, see take()
  pumpTimer: null,
  control: {
    queue: [], // [{frame, key, retry}] waiting for the control bucket
    awaiting: new Map(), // key -> {frame, key, retry, sentAt}: sent, answer not yet seen
    bucket: { tokens: CONTROL_BURST, at: 0 },
    timer: null,
  },
  lastTypingSent: 0,
  toastTimer: null,
  presencePage: PRESENCE_PAGE,
};

// --- rooms and messages ----------------------------------------------------------------

function newRoom(name) {
  return {
    name,
    items: [], // [{cursor, id, el}] sorted by cursor
    ids: new Set(),
    pending: new Map(), // client_msg_id -> <li>
    // Who is online (docs/protocol.md, "Presence in large rooms"). A `live` room announces every
    // join and leave: the set is kept up to date. An `on_demand` one (too many online) announces
    // nothing per user: the set holds the pages fetched so far, the count is the server's.
    presence: new Set(),
    presenceCount: 0,
    presenceMode: "live",
    presenceCursor: null, // next_cursor of the last page: "show more" asks getPresence after it
    typing: new Map(), // user -> timeout id
    unread: 0,
    historyLoaded: false,
    olderCursor: null,
    joined: false, // this connection is in the room (welcome or joined), reset on disconnect
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

/** What we know of a room: {room, visibility?, role?, peer?}. */
function info(name) {
  return state.directory.get(name) ?? { room: name };
}

/** Merge fields into a room's directory entry; an undefined value removes the field. */
function setInfo(name, fields) {
  const next = { ...info(name) };
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) delete next[key];
    else next[key] = value;
  }
  state.directory.set(name, next);
  return next;
}

/** How a room is named to the user: "@peer" for a direct room, its name otherwise. */
function roomLabel(name) {
  const { visibility, peer } = info(name);
  if (visibility === "direct") return `@${peer ?? "direct"}`;
  return visibility === "private" ? `${name} (private)` : `#${name}`;
}

/** The little mark before a room's name: "#" public, a lock for private, "@" direct. */
function kindIcon(visibility) {
  if (visibility === "private") {
    return h("span", { class: "kind private", role: "img", title: "private room", "aria-label": "private" });
  }
  if (visibility === "direct") return h("span", { class: "kind direct", title: "direct conversation" }, "@");
  return h("span", { class: "kind hash" }, "#");
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

/** A send the server refused for good (forbidden, not_found…): say so on the message, stop retrying. */
function failPending(clientMsgId, code) {
  const entry = state.outbox.get(clientMsgId);
  state.outbox.delete(clientMsgId);
  const room = entry ? state.rooms.get(entry.room) : undefined;
  const el = room?.pending.get(clientMsgId);
  if (el) {
    el.classList.add("failed");
    const status = el.querySelector(".status");
    if (status) status.textContent = `not sent (${code})`;
  }
  pumpOutbox();
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
function syncRoom(room, { presence = true } = {}) {
  const newest = newestCursor(room);
  const key = (direction) => `history:${room.name}:${direction}`;
  if (newest) request({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: overlapCursor(newest) }, key("after"));
  else if (room.historyLoaded) request({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: EPOCH_CURSOR }, key("after"));
  else request({ action: "getHistory", room: room.name, limit: HISTORY_PAGE }, key("before"));
  if (presence) refreshPresence(room);
}

// --- presence ---------------------------------------------------------------------------

/** Ask for the first page of who is online again (it replaces the list when it comes). */
function refreshPresence(room) {
  request({ action: "getPresence", room: room.name, limit: state.presencePage }, `presence:${room.name}`);
}

/** Ask for the page after the last one fetched ("show more"). */
function morePresence(room) {
  if (!room.presenceCursor) return;
  const frame = { action: "getPresence", room: room.name, limit: state.presencePage, after: room.presenceCursor };
  request(frame, `presence:${room.name}:more`);
}

/** Apply a page of who is online (`joined` or `presenceList`): the first replaces, the next ones add. */
function applyPresencePage(room, frame, { first }) {
  const users = Array.isArray(frame.users) ? frame.users : [];
  if (first) room.presence = new Set(users);
  else for (const user of users) room.presence.add(user);
  if (frame.mode === "live" || frame.mode === "on_demand") room.presenceMode = frame.mode;
  room.presenceCursor = typeof frame.next_cursor === "string" ? frame.next_cursor : null;
  room.presenceCount = Math.max(Number.isInteger(frame.count) ? frame.count : 0, room.presence.size);
}

/** A `presence` event (sent while the room is live; one overtaken by presenceMode is still news). */
function applyPresenceEvent(room, user, event) {
  if (event === "join") {
    if (!room.presence.has(user)) room.presenceCount += 1;
    room.presence.add(user);
  } else {
    // Someone not listed may be on a page not fetched yet; otherwise they are already gone.
    if (room.presence.has(user) || room.presenceCursor) room.presenceCount = Math.max(0, room.presenceCount - 1);
    room.presence.delete(user);
    stopTyping(room, user);
  }
  room.presenceCount = Math.max(room.presenceCount, room.presence.size);
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

/** One sidebar entry: a room this tab is in (a tab), or one we may join (a join button). */
function sidebarItem(name, joined) {
  const { visibility = "public", role, peer } = info(name);
  const room = state.rooms.get(name);
  const active = joined && name === state.active;
  const classes = [active ? "active" : "", joined ? "" : "unjoined", role === "invited" ? "invited" : ""];
  const showRole = role && visibility !== "direct"; // both users of a direct room are simply members
  return h(
    "li",
    {
      class: classes.filter(Boolean).join(" "),
      "data-testid": `room-item-${name}`,
      "data-visibility": visibility,
      "data-role": role,
      "data-peer": peer,
    },
    h(
      "button",
      {
        type: "button",
        class: "tab",
        "data-testid": joined ? `room-tab-${name}` : `room-open-${name}`,
        "aria-current": active ? "true" : undefined,
        title: joined ? roomLabel(name) : `Join ${roomLabel(name)}`,
        onclick: joined ? () => activate(name) : () => joinRoom(name),
      },
      kindIcon(visibility),
      h("span", { class: "name" }, visibility === "direct" ? (peer ?? name) : name),
      showRole ? h("span", { class: `role role-${role}`, "data-testid": `room-role-${name}` }, role) : null,
      room?.unread ? h("span", { class: "badge", "data-testid": `room-unread-${name}` }, String(room.unread)) : null,
    ),
    joined
      ? h(
          "button",
          {
            type: "button",
            class: "leave",
            title: `Leave ${roomLabel(name)}`,
            "aria-label": `Leave ${name}`,
            "data-testid": `room-leave-${name}`,
            onclick: () => leaveRoom(name),
          },
          "×",
        )
      : null,
  );
}

/**
 * The sidebar: the rooms this tab is in, then the rooms the user holds a role in (invitations,
 * memberships, direct conversations) but has not joined here, then public rooms to browse.
 */
function renderRooms() {
  const others = [...state.directory.values()].filter((entry) => !state.rooms.has(entry.room));
  const mine = others.filter((entry) => entry.role || entry.visibility === "direct");
  const publicRooms = others
    .filter((entry) => !entry.role && entry.visibility === "public")
    .sort((a, b) => (a.room < b.room ? -1 : 1));
  ui.rooms.replaceChildren(
    ...[...state.rooms.keys()].map((name) => sidebarItem(name, true)),
    ...mine.map((entry) => sidebarItem(entry.room, false)),
  );
  ui.publicRooms.replaceChildren(...publicRooms.map((entry) => sidebarItem(entry.room, false)));
  ui.publicCount.textContent = publicRooms.length ? String(publicRooms.length) : "";
  ui.publicSection.hidden = publicRooms.length === 0;
  const unread = [...state.rooms.values()].reduce((sum, r) => sum + r.unread, 0);
  document.title = unread ? `(${unread}) wschat` : "wschat";
  renderTitle();
}

function renderTitle() {
  const room = state.rooms.get(state.active);
  if (!room) {
    ui.roomTitle.replaceChildren();
    return;
  }
  const { visibility = "public", role, peer } = info(room.name);
  ui.roomTitle.dataset.visibility = visibility;
  const parts = [kindIcon(visibility), h("span", { class: "name" }, visibility === "direct" ? (peer ?? room.name) : room.name)];
  if (role && visibility !== "direct") parts.push(h("span", { class: `role role-${role}` }, role));
  ui.roomTitle.replaceChildren(...parts); // (replaceChildren would print a null as "null")
}

/** Invitations to act on and removals to explain, above the messages. */
function renderNotices() {
  const items = [];
  for (const [name, invitation] of state.invitations) {
    const direct = invitation.visibility === "direct";
    const dismiss = () => {
      state.invitations.delete(name);
      renderNotices();
    };
    items.push(
      h(
        "li",
        { class: "notice invitation", "data-testid": `invitation-${name}` },
        h(
          "span",
          { class: "text" },
          direct
            ? `${invitation.by} started a direct conversation with you`
            : `${invitation.by} invited you to the ${invitation.visibility} room ${name}`,
        ),
        h(
          "button",
          {
            type: "button",
            "data-testid": `invitation-join-${name}`,
            onclick: () => {
              dismiss();
              joinRoom(name);
            },
          },
          direct ? "Open" : "Join",
        ),
        h("button", { type: "button", class: "link", "data-testid": `invitation-dismiss-${name}`, onclick: dismiss }, "Dismiss"),
      ),
    );
  }
  for (const [name, removal] of state.removals) {
    items.push(
      h(
        "li",
        { class: "notice removal", "data-testid": `removed-${name}`, "data-reason": removal.reason },
        h(
          "span",
          { class: "text" },
          `You were ${removal.reason === "banned" ? "banned from" : "removed from"} ${removal.label}` +
            `${removal.by ? ` by ${removal.by}` : ""}` +
            `${removal.reason === "banned" ? "." : " (kicked)."}`,
        ),
        h(
          "button",
          {
            type: "button",
            class: "link",
            "data-testid": `removed-dismiss-${name}`,
            onclick: () => {
              state.removals.delete(name);
              renderNotices();
            },
          },
          "Dismiss",
        ),
      ),
    );
  }
  ui.notices.replaceChildren(...items);
}

/** A user in the people panel, with "message" (direct) and, when allowed, "invite" buttons. */
function personItem(user, testId, { canInvite }) {
  const self = user === state.me;
  const invited = state.sentInvites.get(state.active)?.has(user);
  const actions = self
    ? null
    : h(
        "span",
        { class: "acts" },
        canInvite && !invited
          ? h("button", {
              type: "button",
              class: "act invite",
              title: `Invite ${user} to ${state.active}`,
              "aria-label": `Invite ${user}`,
              "data-testid": `invite-${user}`,
              onclick: () => invite(user),
            })
          : null,
        canInvite && invited
          ? h("span", { class: "act invited", title: `${user} is invited`, "data-testid": `invited-${user}` })
          : null,
        h("button", {
          type: "button",
          class: "act dm",
          title: `Direct message to ${user}`,
          "aria-label": `Message ${user}`,
          "data-testid": `dm-${user}`,
          onclick: () => openDirect(user),
        }),
      );
  // Button labels come from CSS (::before), so a row's text is exactly the user's name.
  return h("li", { class: self ? "self" : "", "data-testid": testId }, h("span", { class: "who" }, user), actions);
}

/**
 * Who is online in the active room, then who is online in the user's other rooms: those are the
 * people one can invite to the active private room (owner or admin) or write to directly.
 */
function renderPresence() {
  const room = state.rooms.get(state.active);
  const here = room ? [...room.presence].sort() : [];
  const { visibility, role } = room ? info(room.name) : {};
  const canInvite = visibility === "private" && MODERATOR_ROLES.has(role);
  ui.presence.replaceChildren(...here.map((user) => personItem(user, `presence-${user}`, { canInvite: false })));
  ui.presenceCount.textContent = room ? `${room.presenceCount} online` : "";
  ui.presenceMore.hidden = !room?.presenceCursor;
  ui.presenceRefresh.hidden = room?.presenceMode !== "on_demand";
  const elsewhere = new Set();
  for (const other of state.rooms.values()) {
    if (other === room) continue;
    for (const user of other.presence) if (user !== state.me && !room?.presence.has(user)) elsewhere.add(user);
  }
  ui.elsewhere.replaceChildren(
    ...[...elsewhere].sort().map((user) => personItem(user, `elsewhere-${user}`, { canInvite })),
  );
  ui.elsewhereTitle.hidden = elsewhere.size === 0;
}

function renderActiveRoom() {
  const room = state.rooms.get(state.active);
  renderTitle();
  ui.messages.replaceChildren(...(room ? [...room.items.map((i) => i.el), ...room.pending.values()] : []));
  ui.loadOlder.hidden = !room?.olderCursor;
  ui.input.placeholder = room ? `Message ${roomLabel(room.name)}` : "Join a room to chat";
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

function toast(text, kind = "error", code = "") {
  ui.toast.textContent = text;
  ui.toast.dataset.kind = kind;
  ui.toast.dataset.code = code;
  ui.toast.hidden = false;
  clearTimeout(state.toastTimer);
  state.toastTimer = setTimeout(() => (ui.toast.hidden = true), 5000);
}

// --- connection -------------------------------------------------------------------------

function parseExpiry(value) {
  if (typeof value === "number") return value > 1e12 ? value : value * 1000;
  if (typeof value === "string") return Date.parse(value) || 0;
  return 0;
}

/**
 * A token for the connect URL: the one given in settings, or a dev token from the local runtime
 * (POST /_local/token, same origin). Only ever called for an endpoint checkEndpoint() accepted,
 * i.e. on the page's own host.
 */
async function token() {
  if (state.manualToken) return state.manualToken;
  if (state.auth === "none") return null;
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
  // The one place a connect URL (and so a token) is built: never for another host (endpoint.js).
  const verdict = checkEndpoint(state.endpoint);
  if (!verdict.ok) {
    state.holds.add("endpoint");
    setConn("offline", "endpoint refused");
    toast(verdict.reason);
    return;
  }
  setConn(state.everOnline || state.attempt > 0 ? "reconnecting" : "connecting", state.renewing ? "renewing the token" : "");
  let url;
  try {
    url = new URL(verdict.url);
    const params = new URLSearchParams(url.search);
    if (state.rooms.size) params.set("rooms", [...state.rooms.keys()].join(","));
    params.set("user_id", state.user);
    const jwt = await token();
    if (jwt) params.set("token", jwt);
    url.search = params.toString();
  } catch (error) {
    state.renewing = false;
    scheduleReconnect(error instanceof TypeError && !url ? "invalid endpoint" : "server unreachable");
    return;
  }
  if (!state.user || state.ws || state.holds.size) return; // signed out or held while fetching
  state.renewing = false;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.welcomeTimer = setTimeout(() => {
      if (state.ws !== ws || state.online) return;
      for (const room of state.rooms.values()) room.joined = true; // joined through the connect URL
      goOnline();
    }, WELCOME_WAIT_MS);
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
  // Rooms rejoined with joinRoom are synced when their `joined` arrives: reading a room needs
  // this connection to be in it.
  for (const room of state.rooms.values()) if (room.joined) syncRoom(room);
  resendOutbox();
  drainControl();
}

function onClosed(event) {
  clearTimeout(state.welcomeTimer);
  state.ws = null;
  state.online = false;
  resetControl();
  for (const room of state.rooms.values()) {
    room.joined = false;
    for (const user of [...room.typing.keys()]) stopTyping(room, user);
  }
  if (!state.user) return;
  if (state.holds.size) setConn("offline", state.holds.has("token") ? "token expired" : "");
  else if (state.renewing) {
    // token_expired: fetch a fresh token and reconnect now; recovery fills any gap as usual.
    state.attempt = 0;
    connect();
  } else scheduleReconnect(event.code === 1000 || event.code === 4000 ? "" : "connection lost");
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

/** The server said the token expired (and closes the connection): renew it and reconnect. */
function renewToken() {
  if (state.renewing) return;
  state.devToken = null;
  if (state.manualToken) {
    // A token pasted at sign-in cannot be renewed by the client.
    state.holds.add("token");
    toast("Your token has expired: sign out and sign in with a new one.", "error", "token_expired");
  } else if (Date.now() - state.lastRenewal < RENEW_MIN_INTERVAL_MS) {
    return; // refused again right after a renewal (clocks far apart?): the normal backoff applies
  } else {
    state.renewing = true;
    state.lastRenewal = Date.now();
  }
  state.ws?.close(4001, "token expired");
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

/** Spend one token of a bucket refilled at `rate` per second up to `burst`; false if none is left. */
function take(bucket, rate, burst) {
  const now = Date.now();
  bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

// --- requests: every action but sendMessage and typing ------------------------------------
//
// The server answers each of these with a frame we can recognise (`key`): getHistory ->
// history:<room>:<direction>, getPresence -> presence:<room>, joinRoom -> join:<room>,
// listRooms -> rooms, createRoom -> create:<room>, invite -> invite:<room>:<user>,
// openDirect -> direct:<user>, leaveRoom -> leave:<room>. Requests are paced under the server's
// rate limit; one refused with rate_limited (the error does not say which) is sent again if it
// is safe to repeat. An error frame names no request either: blame() picks the likeliest one.

function request(frame, key, { retry = true } = {}) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.control.queue.push({ frame, key, retry });
  drainControl();
  return true;
}

function drainControl() {
  const control = state.control;
  clearTimeout(control.timer);
  control.timer = null;
  while (control.queue.length) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return;
    if (!take(control.bucket, CONTROL_RATE_PER_S, CONTROL_BURST)) {
      control.timer = setTimeout(drainControl, 1000 / CONTROL_RATE_PER_S);
      return;
    }
    const entry = control.queue.shift();
    send(entry.frame);
    control.awaiting.set(entry.key, { ...entry, sentAt: Date.now() });
  }
}

function resetControl() {
  clearTimeout(state.control.timer);
  state.control = { queue: [], awaiting: new Map(), bucket: state.control.bucket, timer: null };
}

/** The answer for `key` arrived; true if we were waiting for it. */
function answered(key) {
  return state.control.awaiting.delete(key);
}

/** After rate_limited without a client_msg_id: wait, then send again what was not answered. */
function retryUnanswered(waitMs) {
  const control = state.control;
  control.bucket = { tokens: 0, at: Date.now() + waitMs };
  const lost = [...control.awaiting.values()].filter((entry) => entry.retry);
  setTimeout(() => {
    if (state.control !== control) return; // reconnected meanwhile: everything was re-requested
    for (const entry of lost) {
      if (control.awaiting.get(entry.key) !== entry) continue;
      control.awaiting.delete(entry.key);
      control.queue.push({ frame: entry.frame, key: entry.key, retry: entry.retry });
    }
    drainControl();
  }, waitMs);
}

// Which requests an error code can answer, the user's own actions first.
const CODE_ACTIONS = {
  not_found: ["joinRoom", "invite", "openDirect", "createRoom", "getHistory", "getPresence"],
  forbidden: ["joinRoom", "invite", "createRoom", "openDirect", "getHistory", "getPresence", "listRooms"],
  room_exists: ["createRoom"],
  invalid_field: ["createRoom", "invite", "openDirect", "joinRoom", "listRooms", "getHistory", "getPresence"],
  unknown_action: ["listRooms", "createRoom", "invite", "openDirect"], // a server older than this client
};

/** The unanswered request an error frame most likely refers to (removed from the waiting list). */
function blame(frame) {
  const actions = CODE_ACTIONS[frame.code];
  if (!actions) return null;
  const waiting = [...state.control.awaiting.values()].filter((entry) => actions.includes(entry.frame.action));
  if (!waiting.length) return null;
  const text = String(frame.message ?? "");
  if (frame.code === "unknown_action") {
    // "unknown action 'listRooms'; expected one of …": only the action it quotes.
    const entry = waiting.find((e) => text.includes(`'${e.frame.action}'`) || text.includes(`"${e.frame.action}"`));
    if (entry) state.control.awaiting.delete(entry.key);
    return entry?.frame ?? null;
  }
  const names = (entry) => [entry.frame.room, entry.frame.user_id].filter(Boolean);
  const rank = (entry) => actions.indexOf(entry.frame.action) * 1e13 + entry.sentAt;
  const mentioned = waiting.filter((entry) => names(entry).some((name) => text.includes(name)));
  const [chosen] = (mentioned.length ? mentioned : waiting).sort((a, b) => rank(a) - rank(b));
  state.control.awaiting.delete(chosen.key);
  return chosen.frame;
}

// --- the outbox: acknowledged, ordered sends ---------------------------------------------

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
    if (!take(state.bucket, SEND_RATE_PER_S, SEND_BURST)) {
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
      onWelcome(frame);
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
      answered(`history:${frame.room}:${frame.direction}`);
      if (!room) break;
      keepingScroll(() => {
        for (const message of frame.messages) addMessage(message, frame.direction === "before" ? "older" : "recovered");
      }, !room.historyLoaded);
      if (frame.direction === "after" && frame.next_cursor) {
        request({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: frame.next_cursor }, `history:${room.name}:after`);
      }
      if (frame.direction === "before") room.olderCursor = frame.next_cursor;
      room.historyLoaded = true;
      if (room.name === state.active) ui.loadOlder.hidden = !room.olderCursor;
      break;
    case "joined":
      onJoined(frame);
      break;
    case "presenceList": {
      // The answer does not say which request it answers: the older of a first page and a "more".
      const firstKey = `presence:${frame.room}`;
      const moreKey = `${firstKey}:more`;
      const first = state.control.awaiting.get(firstKey);
      const more = state.control.awaiting.get(moreKey);
      const continued = Boolean(more && (!first || more.sentAt <= first.sentAt));
      answered(continued ? moreKey : firstKey);
      if (!room) break;
      applyPresencePage(room, frame, { first: !continued });
      renderPresence();
      break;
    }
    case "presence":
      if (!room) break;
      applyPresenceEvent(room, frame.user_id, frame.event);
      renderPresence();
      break;
    case "presenceMode":
      // The room crossed the threshold: on_demand (no more joins and leaves) or live again.
      // Either way the list is fetched afresh, and the count is the server's until it comes.
      if (!room) break;
      if (frame.mode === "live" || frame.mode === "on_demand") room.presenceMode = frame.mode;
      if (Number.isInteger(frame.count)) room.presenceCount = frame.count;
      refreshPresence(room);
      renderPresence();
      break;
    case "typing":
      if (room && frame.user_id !== state.me) startTyping(room, frame.user_id);
      break;
    case "left":
      answered(`leave:${frame.room}`);
      state.leaving.delete(frame.room);
      if (frame.reason === "kicked" || frame.reason === "banned") removedFrom(frame.room, frame.reason, frame.by);
      break;
    case "rooms":
      onRooms(frame);
      break;
    case "invited":
      onInvited(frame);
      break;
    case "roomUpdated":
      onRoomUpdated(frame);
      break;
    case "error":
      onError(frame);
      break;
    default:
      if (frame.message) toast(`Server: ${frame.message}`);
  }
}

function onWelcome(frame) {
  state.me = frame.user_id;
  state.connectionId = frame.connection_id;
  ui.me.textContent = frame.user_id;
  for (const name of frame.rooms) {
    if (state.leaving.has(name)) continue;
    ensureRoom(name).joined = true;
  }
  // The sidebar is rebuilt from listRooms after every (re)connect: all pages, then replaced.
  state.listing = [];
  request({ action: "listRooms", limit: LIST_PAGE }, "rooms");
  for (const name of state.rooms.keys()) {
    if (!frame.rooms.includes(name)) request({ action: "joinRoom", room: name }, `join:${name}`);
  }
  if (!state.active && state.rooms.size) activate(state.rooms.keys().next().value);
  goOnline();
}

function onJoined(frame) {
  const name = frame.room;
  const asked = answered(`join:${name}`);
  const created = answered(`create:${name}`);
  const opened = frame.peer ? answered(`direct:${frame.peer}`) : false;
  if (!state.rooms.has(name) && state.leaving.has(name)) return; // left again meanwhile
  if (!state.rooms.has(name) && state.rooms.size >= MAX_ROOMS) return;
  const room = ensureRoom(name);
  const known = info(name);
  setInfo(name, {
    visibility: frame.visibility ?? known.visibility,
    role: frame.visibility ? frame.role : known.role, // a server that sends visibility sends role when there is one
    peer: frame.peer ?? known.peer,
  });
  state.invitations.delete(name);
  state.removals.delete(name);
  room.joined = true;
  applyPresencePage(room, frame, { first: true });
  syncRoom(room, { presence: false });
  renderNotices();
  if (created || opened || (asked && state.active === name) || !state.active) activate(name);
  else {
    renderRooms();
    renderPresence();
  }
}

function onRooms(frame) {
  answered("rooms");
  if (!state.listing) state.listing = [];
  state.listing.push(...frame.rooms);
  if (frame.next_cursor) {
    request({ action: "listRooms", limit: LIST_PAGE, after: frame.next_cursor }, "rooms");
    return;
  }
  const next = new Map();
  for (const entry of state.listing) {
    if (state.removals.has(entry.room) && !entry.role && entry.visibility !== "public") continue;
    next.set(entry.room, { room: entry.room, visibility: entry.visibility, role: entry.role, peer: entry.peer });
  }
  for (const name of state.rooms.keys()) {
    if (!next.has(name) && state.directory.has(name)) next.set(name, state.directory.get(name));
  }
  state.directory = next;
  state.listing = null;
  renderRooms();
  renderPresence();
}

function onInvited(frame) {
  const direct = frame.visibility === "direct";
  const known = info(frame.room);
  const role = direct || MODERATOR_ROLES.has(known.role) || known.role === "member" ? known.role ?? "member" : "invited";
  setInfo(frame.room, { visibility: frame.visibility, role, peer: direct ? frame.by : known.peer });
  state.removals.delete(frame.room);
  if (!state.rooms.has(frame.room)) state.invitations.set(frame.room, { by: frame.by, visibility: frame.visibility });
  renderRooms();
  renderNotices();
}

function onRoomUpdated(frame) {
  const { room: name, user_id: user, change, by } = frame;
  const label = roomLabel(name);
  if (change === "invited") answered(`invite:${name}:${user}`);
  if (user === state.me) {
    if (change === "invited") {
      if (state.directory.has(name) && !info(name).role) setInfo(name, { role: "invited" });
    } else if (change === "role") {
      setInfo(name, { role: frame.role });
      toast(`${by} made you ${frame.role} of ${label}`, "info");
    } else if (change === "kicked" || change === "banned") {
      removedFrom(name, change, by);
    } else if (change === "unbanned") {
      toast(`${by} lifted your ban from ${label}`, "info");
    }
  } else {
    if (change === "invited") {
      if (!state.sentInvites.has(name)) state.sentInvites.set(name, new Set());
      state.sentInvites.get(name).add(user);
    } else if (change === "kicked" || change === "banned") {
      state.sentInvites.get(name)?.delete(user); // their invitation, if any, is gone
    }
    const text = {
      invited: `Invited ${user} to ${label}`,
      kicked: `Removed ${user} from ${label}`,
      banned: `Banned ${user} from ${label}`,
      unbanned: `Lifted ${user}'s ban from ${label}`,
      role: `${user} is now ${frame.role} of ${label}`,
    }[change];
    if (text) toast(text, "info");
  }
  renderRooms();
  renderPresence();
}

/** Kicked or banned: the room leaves the sidebar (and the next connect URL), with a notice why. */
function removedFrom(name, reason, by) {
  const label = roomLabel(name);
  const { visibility } = info(name);
  dropRoom(name);
  if (reason === "banned" || visibility !== "public") state.directory.delete(name);
  else setInfo(name, { role: undefined });
  state.invitations.delete(name);
  state.sentInvites.delete(name);
  if (!state.removals.has(name)) {
    state.removals.set(name, { reason, by, label });
    toast(`You were ${reason === "banned" ? "banned from" : "removed from"} ${label}${by ? ` by ${by}` : ""}`, "warn", reason);
  }
  renderRooms();
  renderNotices();
  if (state.active) activate(state.active);
  else renderActiveRoom();
  saveSession();
}

/** A sentence for an error, in terms of what the user tried. */
function describeError(frame, failed) {
  const { code } = frame;
  const room = failed?.room;
  const what = room ? (state.directory.has(room) ? roomLabel(room) : `"${room}"`) : "";
  if (code === "not_found") {
    if (failed?.action === "invite") return `Could not invite ${failed.user_id}: no such room (not_found)`;
    if (room) return `There is no room ${what}, or it is private and you are not invited (not_found)`;
    return `No such room, or it is private and you are not invited (not_found)`;
  }
  if (code === "room_exists") return `A room named ${what || "like that"} already exists (room_exists)`;
  if (code === "forbidden") {
    if (failed?.action === "invite") return `You may not invite people to ${what} (forbidden): ${frame.message}`;
    if (failed?.action === "joinRoom") return `You may not join ${what} (forbidden): ${frame.message}`;
    return `Not allowed (forbidden): ${frame.message}`;
  }
  return `${code}: ${frame.message}`;
}

function onError(frame) {
  if (frame.code === "token_expired") {
    renewToken(); // the refused send, if any, stays in the outbox and goes again once reconnected
    return;
  }
  if (frame.code === "rate_limited") {
    const wait = frame.retry_after_ms ?? 1000;
    if (frame.client_msg_id) {
      toast(`Slow down: sending again in ${(wait / 1000).toFixed(1)} s`, "warn", frame.code);
      state.bucket = { tokens: 0, at: Date.now() + wait };
      setTimeout(resendOutbox, wait);
    } else {
      retryUnanswered(wait);
    }
    return;
  }
  if (frame.code === "unknown_connection") {
    toast("The server forgot this connection; reconnecting", "warn", frame.code);
    state.ws?.close(4000, "unknown connection");
    return;
  }
  if (frame.client_msg_id && state.outbox.has(frame.client_msg_id)) {
    if (frame.code !== "storage_unavailable" && frame.code !== "internal_error") failPending(frame.client_msg_id, frame.code);
    toast(describeError(frame, null), "error", frame.code);
    return;
  }
  const failed = blame(frame);
  if (failed?.action === "listRooms" && frame.code === "unknown_action") {
    state.listing = null; // a server without rooms directory: the sidebar shows the rooms joined here
    return;
  }
  if (failed?.action === "joinRoom" && state.rooms.has(failed.room) && !state.rooms.get(failed.room).joined) {
    dropRoom(failed.room); // never joined: take the optimistic tab away again
    if (frame.code === "not_found" && info(failed.room).visibility !== "public") state.directory.delete(failed.room);
    renderRooms();
    if (state.active) activate(state.active);
    else renderActiveRoom();
    saveSession();
  } else if ((failed?.action === "getHistory" || failed?.action === "getPresence") && !state.rooms.has(failed.room)) {
    return; // a read for a room we have left or been removed from meanwhile
  }
  toast(describeError(frame, failed), "error", frame.code);
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
    state.leaving.delete(name);
    state.invitations.delete(name);
    ensureRoom(name);
    renderNotices();
    request({ action: "joinRoom", room: name }, `join:${name}`); // offline: joined through the connect URL later
  }
  activate(name);
  return true;
}

function createRoom(rawName, visibility) {
  const name = rawName.trim().replace(/^#/, "");
  if (!ROOM_RE.test(name)) {
    toast("Room names: 1–64 letters, digits, _ . - (starting with a letter or digit)");
    return false;
  }
  if (name.startsWith("dm-")) {
    toast('Names starting with "dm-" are kept for direct conversations');
    return false;
  }
  if (state.rooms.has(name)) {
    toast(`You are already in ${roomLabel(name)}`);
    return false;
  }
  if (state.rooms.size >= MAX_ROOMS) {
    toast(`At most ${MAX_ROOMS} rooms at a time`);
    return false;
  }
  state.leaving.delete(name);
  // Not repeated after rate_limited: a repeat of a create that did succeed would say room_exists.
  if (!request({ action: "createRoom", room: name, visibility }, `create:${name}`, { retry: false })) {
    toast("Not connected: try again once online", "warn");
    return false;
  }
  return true;
}

function invite(user) {
  const name = state.active;
  if (!name) return;
  if (!request({ action: "invite", room: name, user_id: user }, `invite:${name}:${user}`)) {
    toast("Not connected: try again once online", "warn");
  }
}

function openDirect(user) {
  const existing = [...state.directory.values()].find((e) => e.visibility === "direct" && e.peer === user);
  if (existing && state.rooms.has(existing.room)) {
    activate(existing.room);
    return;
  }
  if (state.rooms.size >= MAX_ROOMS) {
    toast(`At most ${MAX_ROOMS} rooms at a time`);
    return;
  }
  if (!request({ action: "openDirect", user_id: user }, `direct:${user}`)) {
    toast("Not connected: try again once online", "warn");
  }
}

/** Forget a room locally (no frame sent): its tab, typing timers and unsent messages. */
function dropRoom(name) {
  const room = state.rooms.get(name);
  if (!room) return;
  for (const timer of room.typing.values()) clearTimeout(timer);
  for (const clientMsgId of room.pending.keys()) state.outbox.delete(clientMsgId);
  const names = [...state.rooms.keys()];
  state.rooms.delete(name);
  if (state.active === name) {
    const index = names.indexOf(name);
    state.active = names[index + 1] ?? names[index - 1] ?? null;
    if (state.active === name) state.active = null;
  }
}

function leaveRoom(name) {
  if (!state.rooms.has(name)) return;
  if (request({ action: "leaveRoom", room: name }, `leave:${name}`)) state.leaving.add(name);
  dropRoom(name);
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
  const verdict = checkEndpoint(endpoint || defaultEndpoint());
  if (!verdict.ok) toast(`${verdict.reason} Using ${defaultEndpoint() || "no endpoint"} instead.`);
  state.user = user;
  state.endpoint = verdict.ok ? verdict.url : defaultEndpoint();
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
  renderNotices();
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
  const presencePage = Number(query.get("presence_page"));
  if (Number.isInteger(presencePage) && presencePage >= 1 && presencePage <= 100) state.presencePage = presencePage;
  ui.loginUser.value = localStorage.getItem(LAST_USER_KEY) ?? "";
  ui.loginEndpoint.value = queryEndpoint ?? defaultEndpoint();
  if (queryEndpoint && !checkEndpoint(queryEndpoint).ok) ui.loginError.textContent = checkEndpoint(queryEndpoint).reason;

  ui.login.addEventListener("submit", (event) => {
    event.preventDefault();
    const user = ui.loginUser.value.trim();
    if (!USER_RE.test(user)) {
      ui.loginError.textContent = "User names: 1–64 letters, digits, _ . @ - (starting with a letter or digit).";
      return;
    }
    const verdict = checkEndpoint(ui.loginEndpoint.value.trim() || defaultEndpoint());
    if (!verdict.ok) {
      ui.loginError.textContent = verdict.reason;
      return;
    }
    const rooms = (query.get("rooms") ?? "general").split(",").map((r) => r.trim()).filter(Boolean);
    start({ user, endpoint: verdict.url, token: ui.loginToken.value.trim(), rooms });
  });
  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (joinRoom(ui.roomInput.value)) ui.roomInput.value = "";
  });
  ui.createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (createRoom(ui.createName.value, ui.createVisibility.value)) ui.createName.value = "";
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
    const room = state.rooms.get(state.active);
    if (ui.input.value.trim() && room?.joined && now - state.lastTypingSent >= TYPING_SEND_MS) {
      if (send({ action: "typing", room: room.name })) state.lastTypingSent = now;
    }
  });
  ui.loadOlder.addEventListener("click", () => {
    const room = state.rooms.get(state.active);
    if (room?.olderCursor) {
      request({ action: "getHistory", room: room.name, limit: HISTORY_PAGE, before: room.olderCursor }, `history:${room.name}:before`);
    }
  });
  ui.presenceMore.addEventListener("click", () => {
    const room = state.rooms.get(state.active);
    if (room) morePresence(room);
  });
  ui.presenceRefresh.addEventListener("click", () => {
    const room = state.rooms.get(state.active);
    if (room) refreshPresence(room);
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
      // A ?endpoint= on another host is refused by start() (endpoint.js): the tab stays on its own.
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
  /** The rooms this tab is in, as the next connect URL would list them. */
  get rooms() {
    return [...state.rooms.keys()];
  },
};

init();
