// The chat pane and the top bar: room title, messages (stored, then pending), "load earlier",
// who is typing, the composer, the connection state and toasts. Rendering only: it reads the
// session's state and keeps nothing but the DOM nodes it made for it.

import { $, h } from "./dom.js";

export const ui = {
  login: $("login"), loginUser: $("login-user"), loginEndpoint: $("login-endpoint"),
  loginToken: $("login-token"), loginError: $("login-error"),
  app: $("app"), me: $("me"), signOut: $("sign-out"), roomTitle: $("room-title"),
  conn: $("conn-state"), connDetail: $("conn-detail"), reconnectNow: $("reconnect-now"),
  joinForm: $("join-form"), roomInput: $("room-input"),
  createForm: $("create-form"), createName: $("create-name"), createVisibility: $("create-visibility"),
  scroller: $("scroller"), loadOlder: $("load-older"), messages: $("messages"),
  typing: $("typing"), composer: $("composer"), input: $("message-input"), send: $("send"),
  presenceMore: $("presence-more"), presenceRefresh: $("presence-refresh"), toast: $("toast"),
};

/** The little mark before a room's name: "#" public, a lock for private, "@" direct. */
export function kindIcon(visibility) {
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

function messageElement({ user_id, message, timestamp, message_id, cursor }, mine, pending = false) {
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

/** Mark a pending message's element as refused. */
function showFailed(el, code) {
  el.classList.add("failed");
  const status = el.querySelector(".status");
  if (status) status.textContent = `not sent (${code})`;
}

export class ChatView {
  constructor(session) {
    this.session = session;
    this.nodes = new WeakMap(); // a room's item or pending entry -> its <li>
    this.toastTimer = null;
  }

  itemNode(item) {
    let el = this.nodes.get(item);
    if (!el) {
      el = messageElement(item.message, item.mine);
      this.nodes.set(item, el);
    }
    return el;
  }

  pendingNode(pending) {
    let el = this.nodes.get(pending);
    if (!el) {
      el = messageElement({ user_id: pending.user, message: pending.text }, pending.mine, true);
      if (pending.failed) showFailed(el, pending.failed);
      this.nodes.set(pending, el);
    }
    return el;
  }

  /** The active room's elements in order: stored messages, then pending ones. */
  wanted() {
    const room = this.session.activeRoom;
    if (!room) return [];
    return [...room.items.map((item) => this.itemNode(item)), ...[...room.pending.values()].map((p) => this.pendingNode(p))];
  }

  /** Make the message list match the active room, moving as few nodes as possible. */
  reconcile() {
    const list = ui.messages;
    let cursor = list.firstChild;
    for (const el of this.wanted()) {
      if (el === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(el, cursor);
    }
    while (cursor) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
  }

  /** Take away the elements of messages no longer shown (a pending send now stored). */
  prune() {
    const keep = new Set(this.wanted());
    for (const el of [...ui.messages.children]) if (!keep.has(el)) el.remove();
  }

  /** Run fn, keeping the view pinned to the bottom if it was there (or if forced). */
  keepingScroll(fn, forceBottom = false) {
    const s = ui.scroller;
    const atBottom = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
    const fromBottom = s.scrollHeight - s.scrollTop;
    fn();
    if (atBottom || forceBottom) s.scrollTop = s.scrollHeight;
    else s.scrollTop = s.scrollHeight - fromBottom;
  }

  /** A live message (or a pending send) in the active room. */
  showMessage(forceBottom) {
    this.prune();
    this.keepingScroll(() => this.reconcile(), forceBottom);
  }

  /** A page of history for `room` (the first one scrolls to the bottom). */
  showHistory(room, firstPage) {
    const active = room.name === this.session.active;
    this.keepingScroll(() => active && this.reconcile(), firstPage);
    if (active) ui.loadOlder.hidden = !room.olderCursor;
  }

  showFailed(room, clientMsgId) {
    const pending = room.pending.get(clientMsgId);
    const el = pending && this.nodes.get(pending);
    if (el) showFailed(el, pending.failed);
  }

  renderTitle() {
    const room = this.session.activeRoom;
    if (!room) {
      ui.roomTitle.replaceChildren();
      return;
    }
    const { visibility = "public", role, peer } = this.session.directory.info(room.name);
    ui.roomTitle.dataset.visibility = visibility;
    const parts = [kindIcon(visibility), h("span", { class: "name" }, visibility === "direct" ? (peer ?? room.name) : room.name)];
    if (role && visibility !== "direct") parts.push(h("span", { class: `role role-${role}` }, role));
    ui.roomTitle.replaceChildren(...parts); // (replaceChildren would print a null as "null")
  }

  /** The unread count in the tab's title. */
  renderDocumentTitle() {
    const unread = [...this.session.rooms.values()].reduce((sum, r) => sum + r.unread, 0);
    document.title = unread ? `(${unread}) wschat` : "wschat";
  }

  renderTyping() {
    const room = this.session.activeRoom;
    const names = room ? [...room.typing.keys()] : [];
    let text = "";
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = "Several people are typing…";
    ui.typing.textContent = text;
  }

  /** The active room's pane from scratch (the people panel is the sidebar's). */
  renderActiveRoom() {
    const room = this.session.activeRoom;
    this.renderTitle();
    ui.messages.replaceChildren(...this.wanted());
    ui.loadOlder.hidden = !room?.olderCursor;
    ui.input.placeholder = room ? `Message ${this.session.directory.label(room.name)}` : "Join a room to chat";
    ui.input.disabled = ui.send.disabled = !room;
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
  }

  setConn(conn, detail, canRetryNow) {
    ui.conn.textContent = conn;
    ui.conn.dataset.state = conn;
    ui.connDetail.textContent = detail;
    ui.reconnectNow.hidden = !canRetryNow;
  }

  toast(text, kind = "error", code = "") {
    ui.toast.textContent = text;
    ui.toast.dataset.kind = kind;
    ui.toast.dataset.code = code;
    ui.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => (ui.toast.hidden = true), 5000);
  }

  autoGrow() {
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 160)}px`;
  }

  /** Signed in as `user`: the app instead of the login form. */
  showApp(user) {
    ui.login.hidden = true;
    ui.app.hidden = false;
    ui.me.hidden = ui.signOut.hidden = false;
    ui.me.textContent = user;
  }
}
