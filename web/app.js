// wschat browser client: one WebSocket, rooms (public, private, direct) with a sidebar rebuilt
// from listRooms, invitations, moderation notices, history, presence, typing, acknowledged sends,
// reconnect with backoff, transparent token renewal and gap-free recovery. No framework, no build
// step, no innerHTML: every piece of text from the network reaches the page through text nodes.
//
// This module is the wiring: page events go to the session (session.js, the state and the
// protocol, no I/O), the session's frames go out through the connection (connection.js, the
// WebSocket), and what the session says changed is redrawn by the view (view.js, sidebar.js).

import { Connection } from "./connection.js";
import { checkEndpoint, defaultEndpoint } from "./endpoint.js";
import { createRoom, invite, joinRoom, leaveRoom, openDirect } from "./membership.js";
import { morePresence, refreshPresence } from "./presence.js";
import { RESEND_AFTER_MS, USER_RE } from "./protocol.js";
import { Session } from "./session.js";
import { Sidebar } from "./sidebar.js";
import { ChatView, ui } from "./view.js";

const SESSION_KEY = "wschat.session";
const LAST_USER_KEY = "wschat.lastUser";

const connection = new Connection({
  user: () => session.user,
  rooms: () => [...session.rooms.keys()],
  receive: (data) => session.receive(data),
  welcomed: () => session.online,
  online: () => session.connected(),
  missedWelcome: () => session.assumeJoined(),
  closed: () => session.disconnected(),
  status: (conn, detail, canRetryNow) => view.setConn(conn, detail, canRetryNow),
  toast: (text, kind, code) => view.toast(text, kind, code),
});
const session = new Session({ link: connection.link, emit: (name, ...args) => changed[name](...args) });
const view = new ChatView(session);
const sidebar = new Sidebar(session, {
  activate: (name) => session.activate(name),
  joinRoom: (name) => joinRoom(session, name),
  leaveRoom: (name) => leaveRoom(session, name),
  invite: (user) => invite(session, user),
  openDirect: (user) => openDirect(session, user),
  dismissInvitation(name) {
    session.invitations.delete(name);
    sidebar.renderNotices();
  },
  dismissRemoval(name) {
    session.removals.delete(name);
    sidebar.renderNotices();
  },
});

function renderRooms() {
  sidebar.renderRooms();
  view.renderDocumentTitle();
  view.renderTitle();
}

function renderActiveRoom() {
  view.renderActiveRoom();
  sidebar.renderPresence();
  view.renderTyping();
}

/** What to redraw (or do) when the session says something changed (see Session's constructor). */
const changed = {
  rooms: renderRooms,
  notices: () => sidebar.renderNotices(),
  presence: () => sidebar.renderPresence(),
  typing: () => view.renderTyping(),
  activeRoom: renderActiveRoom,
  activate() {
    renderRooms();
    renderActiveRoom();
    saveSession();
    ui.input.focus();
  },
  message: (_room, forceBottom) => view.showMessage(forceBottom),
  pending: () => view.showMessage(true),
  pendingFailed: (room, clientMsgId) => view.showFailed(room, clientMsgId),
  history: (room, firstPage) => view.showHistory(room, firstPage),
  toast: (text, kind, code) => view.toast(text, kind, code),
  me(user) {
    ui.me.textContent = user;
  },
  welcome: () => connection.goOnline(),
  save: () => saveSession(),
  tokenExpired: () => connection.renewToken(),
  close: (code, reason) => connection.close(code, reason),
};

function saveSession() {
  if (!session.user) return;
  const saved = {
    user: session.user,
    endpoint: connection.endpoint,
    token: connection.manualToken,
    rooms: [...session.rooms.keys()],
    active: session.active,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
}

function start({ user, endpoint, token: manualToken = "", rooms = ["general"], active = null }) {
  const verdict = checkEndpoint(endpoint || defaultEndpoint());
  if (!verdict.ok) view.toast(`${verdict.reason} Using ${defaultEndpoint() || "no endpoint"} instead.`);
  connection.endpoint = verdict.ok ? verdict.url : defaultEndpoint();
  connection.manualToken = manualToken;
  session.restore(user, rooms, active);
  localStorage.setItem(LAST_USER_KEY, user);
  saveSession();
  view.showApp(user);
  renderRooms();
  renderActiveRoom();
  sidebar.renderNotices();
  if (!navigator.onLine) connection.holds.add("network");
  connection.connect();
}

function signOut() {
  sessionStorage.removeItem(SESSION_KEY);
  session.user = null;
  connection.close(1000, "signed out");
  location.reload();
}

function sendMessage() {
  if (!session.sendMessage(ui.input.value)) return;
  ui.input.value = "";
  view.autoGrow();
}

function init() {
  const query = new URLSearchParams(location.search);
  const queryEndpoint = query.get("endpoint");
  const presencePage = Number(query.get("presence_page"));
  if (Number.isInteger(presencePage) && presencePage >= 1 && presencePage <= 100) session.presencePage = presencePage;
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
    if (joinRoom(session, ui.roomInput.value)) ui.roomInput.value = "";
  });
  ui.createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (createRoom(session, ui.createName.value, ui.createVisibility.value)) ui.createName.value = "";
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
    view.autoGrow();
    session.typing(ui.input.value);
  });
  ui.loadOlder.addEventListener("click", () => session.loadOlder());
  ui.presenceMore.addEventListener("click", () => {
    const room = session.activeRoom;
    if (room) morePresence(session, room);
  });
  ui.presenceRefresh.addEventListener("click", () => {
    const room = session.activeRoom;
    if (room) refreshPresence(session, room);
  });
  ui.reconnectNow.addEventListener("click", () => connection.connect());
  ui.signOut.addEventListener("click", signOut);
  window.addEventListener("offline", () => {
    connection.hold("network", 1000, "browser offline");
    connection.status("offline", "no network");
  });
  window.addEventListener("online", () => connection.release("network"));
  setInterval(() => session.outbox.pump(), RESEND_AFTER_MS / 2);

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
    connection.close(4000, "dropped by debug hook");
  },
  /** Close the socket and stay offline until goOnline(). */
  goOffline() {
    connection.hold("debug", 4000, "offline by debug hook");
    connection.status("offline");
  },
  /** Send any frame as is (to see how the client shows the server's answer). */
  sendRaw(frame) {
    return session.send(frame);
  },
  goOnline() {
    connection.release("debug");
  },
  get connectionId() {
    return session.online ? session.connectionId : null;
  },
  /** The rooms this tab is in, as the next connect URL would list them. */
  get rooms() {
    return [...session.rooms.keys()];
  },
};

init();
