// The chat session, without I/O (mirrors serverless_app/clients/session.py): the rooms this tab
// is in, what was seen, what is pending, how to recover. Frames from the server go in through
// receive(); frames to the server go out through the injected link (paced by Requests and the
// Outbox); what the view must redraw is announced through emit(name, ...args). No DOM, no
// WebSocket: time and timers come from an injected clock, so Node can run it (tests/web/).
// Beside it, as pure as it: requests.js and outbox.js (pacing, answers, resends), rooms.js (a
// room's data, the directory), presence.js, membership.js (which rooms) and errors.js.

import { onError } from "./errors.js";
import { onInvited, onJoined, onLeft, onRoomUpdated, onRooms, onWelcome } from "./membership.js";
import { Outbox } from "./outbox.js";
import { onPresence, onPresenceList, onPresenceMode, refreshPresence } from "./presence.js";
import {
  CONTROL_CHARS, EPOCH_CURSOR, HISTORY_PAGE, MAX_ROOMS, PRESENCE_PAGE, ROOM_RE, RECOVERY_PAGE, TYPING_RELAY_MS, TYPING_SEND_MS,
  TYPING_SHOW_MS, overlapCursor, randomId,
} from "./protocol.js";
import { Requests } from "./requests.js";
import { Directory, insertMessage, newRoom, newestCursor } from "./rooms.js";

export const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

export class Session {
  /**
   * link: {isOpen(), send(frame)}, the socket as the session sees it; clock: {now, setTimeout,
   * clearTimeout}; emit(name, ...args): what changed ("rooms", "notices", "presence", "typing",
   * "activate", "activeRoom", "message", "pending", "pendingFailed", "history", "toast", "me",
   * "welcome", "save", "tokenExpired", "close").
   */
  constructor({ link, clock = systemClock, emit = () => {} }) {
    this.link = link;
    this.clock = clock;
    this.emit = emit;
    this.user = null; // the name signed in with
    this.me = null; // the user id the server knows us by (from `welcome`)
    this.connectionId = null;
    this.online = false; // welcomed on the current connection
    this.rooms = new Map(); // name -> room (rooms.js): the rooms this tab is in, in sidebar order
    this.directory = new Directory();
    this.listing = null; // pages of a listRooms walk in progress
    this.invitations = new Map(); // room -> {by, visibility}: `invited` not yet acted on
    this.removals = new Map(); // room -> {reason, by, label}: rooms we were kicked or banned from
    this.sentInvites = new Map(); // room -> Set of users we invited (from roomUpdated)
    this.leaving = new Set(); // rooms left by the user whose `left` has not come yet
    this.active = null;
    this.presencePage = PRESENCE_PAGE;
    this.lastTypingSent = 0;
    this.requests = new Requests(link, clock);
    this.outbox = new Outbox(link, clock, { canSend: () => this.online, hasRoom: (name) => this.rooms.has(name) });
  }

  get activeRoom() {
    return this.rooms.get(this.active);
  }

  /** Send a frame as is (typing, debug); false when the socket is not open. */
  send(frame) {
    if (!this.link.isOpen()) return false;
    this.link.send(frame);
    return true;
  }

  request(frame, key, options) {
    return this.requests.request(frame, key, options);
  }

  ensureRoom(name) {
    let room = this.rooms.get(name);
    if (!room) {
      room = newRoom(name);
      this.rooms.set(name, room);
      this.emit("rooms");
    }
    return room;
  }

  /** Signed in as `user` with these rooms (a restored tab's, or the link's): the valid ones, at most MAX_ROOMS. */
  restore(user, rooms, active) {
    this.user = user;
    for (const name of rooms.filter((r) => ROOM_RE.test(r)).slice(0, MAX_ROOMS)) this.ensureRoom(name);
    this.active = this.rooms.has(active) ? active : (this.rooms.keys().next().value ?? null);
  }

  activate(name) {
    const room = this.rooms.get(name);
    if (!room) return;
    this.active = name;
    room.unread = 0;
    this.emit("activate", name);
  }

  /** After the active room was dropped: show the next one, or none. */
  reactivate() {
    if (this.active) this.activate(this.active);
    else this.emit("activeRoom");
  }

  // --- messages ---------------------------------------------------------------------------

  /** Insert a stored message in cursor order unless its message_id is already known. */
  addMessage(frame, source, { quiet = false } = {}) {
    const room = this.rooms.get(frame.room);
    if (!room || room.ids.has(frame.message_id)) return;
    const clientMsgId = frame.client_msg_id;
    if (clientMsgId && room.pending.has(clientMsgId)) {
      room.pending.delete(clientMsgId);
      this.outbox.delete(clientMsgId);
      this.outbox.pump(); // the next queued message may go now
    }
    const mine = frame.user_id === this.me;
    insertMessage(room, frame, mine);
    this.stopTyping(room, frame.user_id);
    if (room.name === this.active) {
      if (!quiet) this.emit("message", room, mine && source === "live");
    } else if (source !== "older" && !mine) {
      room.unread += 1;
      this.emit("rooms");
    }
  }

  /** The user's message for the active room (control characters removed); false if there is none to send. */
  sendMessage(rawText) {
    const room = this.activeRoom;
    const text = rawText.replace(CONTROL_CHARS, "");
    if (!room || !text.trim()) return false;
    const clientMsgId = randomId();
    this.outbox.add(clientMsgId, room.name, text);
    const user = this.me ?? this.user;
    room.pending.set(clientMsgId, { text, user, mine: user === this.me, failed: null });
    if (room.name === this.active) this.emit("pending", room);
    this.outbox.pump();
    // Others hide our typing indicator when our message arrives: allow the next typing event as
    // soon as the server would relay it (at most one per second), not a full TYPING_SEND_MS later.
    this.lastTypingSent = Math.min(this.lastTypingSent, this.clock.now() + TYPING_RELAY_MS - TYPING_SEND_MS);
    return true;
  }

  /** A send the server refused for good (forbidden, not_found…): mark it, stop retrying. */
  failPending(clientMsgId, code) {
    const entry = this.outbox.get(clientMsgId);
    this.outbox.delete(clientMsgId);
    const room = entry ? this.rooms.get(entry.room) : undefined;
    const pending = room?.pending.get(clientMsgId);
    if (pending) {
      pending.failed = code;
      this.emit("pendingFailed", room, clientMsgId);
    }
    this.outbox.pump();
  }

  /** The user is typing in the active room: tell the others, at most every TYPING_SEND_MS. */
  typing(text) {
    const now = this.clock.now();
    const room = this.activeRoom;
    if (text.trim() && room?.joined && now - this.lastTypingSent >= TYPING_SEND_MS) {
      if (this.send({ action: "typing", room: room.name })) this.lastTypingSent = now;
    }
  }

  /** Ask for what this room's view lacks: the latest page, or everything after what we saw. */
  syncRoom(room, { presence = true } = {}) {
    const newest = newestCursor(room);
    const key = (direction) => `history:${room.name}:${direction}`;
    if (newest) this.request({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: overlapCursor(newest) }, key("after"));
    else if (room.historyLoaded) this.request({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: EPOCH_CURSOR }, key("after"));
    else this.request({ action: "getHistory", room: room.name, limit: HISTORY_PAGE }, key("before"));
    if (presence) refreshPresence(this, room);
  }

  /** "Load earlier messages" in the active room. */
  loadOlder() {
    const room = this.activeRoom;
    if (room?.olderCursor) {
      this.request({ action: "getHistory", room: room.name, limit: HISTORY_PAGE, before: room.olderCursor }, `history:${room.name}:before`);
    }
  }

  // --- typing -----------------------------------------------------------------------------

  stopTyping(room, user) {
    if (!room.typing.has(user)) return;
    this.clock.clearTimeout(room.typing.get(user));
    room.typing.delete(user);
    if (room.name === this.active) this.emit("typing");
  }

  startTyping(room, user) {
    this.clock.clearTimeout(room.typing.get(user));
    room.typing.set(user, this.clock.setTimeout(() => this.stopTyping(room, user), TYPING_SHOW_MS));
    if (room.name === this.active) this.emit("typing");
  }

  // --- the connection's life --------------------------------------------------------------

  /** Welcomed (or the welcome wait is over): read the rooms joined, send what waits. */
  connected() {
    this.online = true;
    // Rooms rejoined with joinRoom are synced when their `joined` arrives: reading a room needs
    // this connection to be in it.
    for (const room of this.rooms.values()) if (room.joined) this.syncRoom(room);
    this.outbox.resendAll();
    this.requests.drain();
  }

  /** No welcome came (an older server): the rooms of the connect URL were joined. */
  assumeJoined() {
    for (const room of this.rooms.values()) room.joined = true;
  }

  disconnected() {
    this.online = false;
    this.requests.reset();
    for (const room of this.rooms.values()) {
      room.joined = false;
      for (const user of [...room.typing.keys()]) this.stopTyping(room, user);
    }
  }

  // --- frames from the server -------------------------------------------------------------

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    const room = typeof frame.room === "string" ? this.rooms.get(frame.room) : undefined;
    switch (frame.action) {
      case "welcome":
        return onWelcome(this, frame);
      case "message":
        return this.addMessage(frame, "live");
      case "ack":
        if (room?.pending.has(frame.client_msg_id)) {
          const text = this.outbox.get(frame.client_msg_id)?.text ?? room.pending.get(frame.client_msg_id).text;
          this.addMessage({ ...frame, action: "message", user_id: this.me, message: text }, "live");
        }
        return;
      case "history":
        return this.onHistory(room, frame);
      case "joined":
        return onJoined(this, frame);
      case "presenceList":
        return onPresenceList(this, room, frame);
      case "presence":
        return onPresence(this, room, frame);
      case "presenceMode":
        return onPresenceMode(this, room, frame);
      case "typing":
        if (room && frame.user_id !== this.me) this.startTyping(room, frame.user_id);
        return;
      case "left":
        return onLeft(this, frame);
      case "rooms":
        return onRooms(this, frame);
      case "invited":
        return onInvited(this, frame);
      case "roomUpdated":
        return onRoomUpdated(this, frame);
      case "error":
        return onError(this, frame);
      default:
        if (frame.message) this.emit("toast", `Server: ${frame.message}`);
    }
  }

  onHistory(room, frame) {
    this.requests.answered(`history:${frame.room}:${frame.direction}`);
    if (!room) return;
    const firstPage = !room.historyLoaded;
    const source = frame.direction === "before" ? "older" : "recovered";
    for (const message of frame.messages) this.addMessage(message, source, { quiet: true });
    if (frame.direction === "after" && frame.next_cursor) {
      this.request({ action: "getHistory", room: room.name, limit: RECOVERY_PAGE, after: frame.next_cursor }, `history:${room.name}:after`);
    }
    if (frame.direction === "before") room.olderCursor = frame.next_cursor;
    room.historyLoaded = true;
    this.emit("history", room, firstPage);
  }
}
