// Which rooms the user is in, may join or was removed from: the session's answers to welcome,
// joined, left, rooms, invited and roomUpdated, and the user's room actions (join, create,
// invite, open a direct conversation, leave). Functions of a Session (session.js); no DOM, no
// WebSocket.

import { LIST_PAGE, MAX_ROOMS, MODERATOR_ROLES, ROOM_RE, roomName } from "./protocol.js";
import { applyPresencePage } from "./presence.js";

const ROOM_NAME_RULE = "Room names: 1–64 letters, digits, _ . - (starting with a letter or digit)";
const TOO_MANY = `At most ${MAX_ROOMS} rooms at a time`;
const OFFLINE = "Not connected: try again once online";

export function onWelcome(s, frame) {
  s.me = frame.user_id;
  s.connectionId = frame.connection_id;
  s.emit("me", frame.user_id);
  for (const name of frame.rooms) {
    if (s.leaving.has(name)) continue;
    s.ensureRoom(name).joined = true;
  }
  // The sidebar is rebuilt from listRooms after every (re)connect: all pages, then replaced.
  s.listing = [];
  s.request({ action: "listRooms", limit: LIST_PAGE }, "rooms");
  for (const name of s.rooms.keys()) {
    if (!frame.rooms.includes(name)) s.request({ action: "joinRoom", room: name }, `join:${name}`);
  }
  if (!s.active && s.rooms.size) s.activate(s.rooms.keys().next().value);
  s.emit("welcome");
}

export function onJoined(s, frame) {
  const name = frame.room;
  const asked = s.requests.answered(`join:${name}`);
  const created = s.requests.answered(`create:${name}`);
  const opened = frame.peer ? s.requests.answered(`direct:${frame.peer}`) : false;
  if (!s.rooms.has(name) && s.leaving.has(name)) return; // left again meanwhile
  if (!s.rooms.has(name) && s.rooms.size >= MAX_ROOMS) return;
  const room = s.ensureRoom(name);
  const known = s.directory.info(name);
  s.directory.update(name, {
    visibility: frame.visibility ?? known.visibility,
    role: frame.visibility ? frame.role : known.role, // a server that sends visibility sends role when there is one
    peer: frame.peer ?? known.peer,
  });
  s.invitations.delete(name);
  s.removals.delete(name);
  room.joined = true;
  applyPresencePage(room, frame, { first: true });
  s.syncRoom(room, { presence: false });
  s.emit("notices");
  if (created || opened || (asked && s.active === name) || !s.active) s.activate(name);
  else {
    s.emit("rooms");
    s.emit("presence");
  }
}

export function onLeft(s, frame) {
  s.requests.answered(`leave:${frame.room}`);
  s.leaving.delete(frame.room);
  if (frame.reason === "kicked" || frame.reason === "banned") removedFrom(s, frame.room, frame.reason, frame.by);
}

export function onRooms(s, frame) {
  s.requests.answered("rooms");
  if (!s.listing) s.listing = [];
  s.listing.push(...frame.rooms);
  if (frame.next_cursor) {
    s.request({ action: "listRooms", limit: LIST_PAGE, after: frame.next_cursor }, "rooms");
    return;
  }
  s.directory.replace(s.listing, s.rooms.keys(), s.removals);
  s.listing = null;
  s.emit("rooms");
  s.emit("presence");
}

export function onInvited(s, frame) {
  const direct = frame.visibility === "direct";
  const known = s.directory.info(frame.room);
  const role = direct || MODERATOR_ROLES.has(known.role) || known.role === "member" ? known.role ?? "member" : "invited";
  s.directory.update(frame.room, { visibility: frame.visibility, role, peer: direct ? frame.by : known.peer });
  s.removals.delete(frame.room);
  if (!s.rooms.has(frame.room)) s.invitations.set(frame.room, { by: frame.by, visibility: frame.visibility });
  s.emit("rooms");
  s.emit("notices");
}

export function onRoomUpdated(s, frame) {
  const { room: name, user_id: user, change, by } = frame;
  const label = s.directory.label(name);
  if (change === "invited") s.requests.answered(`invite:${name}:${user}`);
  if (user === s.me) {
    if (change === "invited") {
      if (s.directory.has(name) && !s.directory.info(name).role) s.directory.update(name, { role: "invited" });
    } else if (change === "role") {
      s.directory.update(name, { role: frame.role });
      s.emit("toast", `${by} made you ${frame.role} of ${label}`, "info");
    } else if (change === "kicked" || change === "banned") {
      removedFrom(s, name, change, by);
    } else if (change === "unbanned") {
      s.emit("toast", `${by} lifted your ban from ${label}`, "info");
    }
  } else {
    if (change === "invited") {
      if (!s.sentInvites.has(name)) s.sentInvites.set(name, new Set());
      s.sentInvites.get(name).add(user);
    } else if (change === "kicked" || change === "banned") {
      s.sentInvites.get(name)?.delete(user); // their invitation, if any, is gone
    }
    const text = {
      invited: `Invited ${user} to ${label}`,
      kicked: `Removed ${user} from ${label}`,
      banned: `Banned ${user} from ${label}`,
      unbanned: `Lifted ${user}'s ban from ${label}`,
      role: `${user} is now ${frame.role} of ${label}`,
    }[change];
    if (text) s.emit("toast", text, "info");
  }
  s.emit("rooms");
  s.emit("presence");
}

/** Kicked or banned: the room leaves the sidebar (and the next connect URL), with a notice why. */
export function removedFrom(s, name, reason, by) {
  const label = s.directory.label(name);
  const { visibility } = s.directory.info(name);
  dropRoom(s, name);
  if (reason === "banned" || visibility !== "public") s.directory.delete(name);
  else s.directory.update(name, { role: undefined });
  s.invitations.delete(name);
  s.sentInvites.delete(name);
  if (!s.removals.has(name)) {
    s.removals.set(name, { reason, by, label });
    s.emit("toast", `You were ${reason === "banned" ? "banned from" : "removed from"} ${label}${by ? ` by ${by}` : ""}`, "warn", reason);
  }
  s.emit("rooms");
  s.emit("notices");
  s.reactivate();
  s.emit("save");
}

/** Forget a room locally (no frame sent): its tab, typing timers and unsent messages. */
export function dropRoom(s, name) {
  const room = s.rooms.get(name);
  if (!room) return;
  for (const timer of room.typing.values()) s.clock.clearTimeout(timer);
  for (const clientMsgId of room.pending.keys()) s.outbox.delete(clientMsgId);
  const names = [...s.rooms.keys()];
  s.rooms.delete(name);
  if (s.active === name) {
    const index = names.indexOf(name);
    s.active = names[index + 1] ?? names[index - 1] ?? null;
    if (s.active === name) s.active = null;
  }
}

// --- the user's room actions ------------------------------------------------------------

/** Join (or switch to) a room by name; false if the name or the number of rooms is refused. */
export function joinRoom(s, rawName) {
  const name = roomName(rawName);
  if (!ROOM_RE.test(name)) {
    s.emit("toast", ROOM_NAME_RULE);
    return false;
  }
  if (!s.rooms.has(name)) {
    if (s.rooms.size >= MAX_ROOMS) {
      s.emit("toast", TOO_MANY);
      return false;
    }
    s.leaving.delete(name);
    s.invitations.delete(name);
    s.ensureRoom(name);
    s.emit("notices");
    s.request({ action: "joinRoom", room: name }, `join:${name}`); // offline: joined through the connect URL later
  }
  s.activate(name);
  return true;
}

export function createRoom(s, rawName, visibility) {
  const name = roomName(rawName);
  if (!ROOM_RE.test(name)) {
    s.emit("toast", ROOM_NAME_RULE);
    return false;
  }
  if (name.startsWith("dm-")) {
    s.emit("toast", 'Names starting with "dm-" are kept for direct conversations');
    return false;
  }
  if (s.rooms.has(name)) {
    s.emit("toast", `You are already in ${s.directory.label(name)}`);
    return false;
  }
  if (s.rooms.size >= MAX_ROOMS) {
    s.emit("toast", TOO_MANY);
    return false;
  }
  s.leaving.delete(name);
  // Not repeated after rate_limited: a repeat of a create that did succeed would say room_exists.
  if (!s.request({ action: "createRoom", room: name, visibility }, `create:${name}`, { retry: false })) {
    s.emit("toast", OFFLINE, "warn");
    return false;
  }
  return true;
}

export function invite(s, user) {
  const name = s.active;
  if (!name) return;
  if (!s.request({ action: "invite", room: name, user_id: user }, `invite:${name}:${user}`)) s.emit("toast", OFFLINE, "warn");
}

export function openDirect(s, user) {
  const existing = s.directory.directWith(user);
  if (existing && s.rooms.has(existing.room)) {
    s.activate(existing.room);
    return;
  }
  if (s.rooms.size >= MAX_ROOMS) {
    s.emit("toast", TOO_MANY);
    return;
  }
  if (!s.request({ action: "openDirect", user_id: user }, `direct:${user}`)) s.emit("toast", OFFLINE, "warn");
}

export function leaveRoom(s, name) {
  if (!s.rooms.has(name)) return;
  if (s.request({ action: "leaveRoom", room: name }, `leave:${name}`)) s.leaving.add(name);
  dropRoom(s, name);
  s.emit("rooms");
  s.reactivate();
  s.emit("save");
}
