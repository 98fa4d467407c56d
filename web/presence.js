// Who is online in a room (docs/protocol.md, "Presence in large rooms"): the getPresence
// requests (first page, "show more"), the answers to presenceList, presence and presenceMode,
// and the rules that keep a room's list and count. Functions of a Session (session.js) and of a
// room (rooms.js); no DOM, no WebSocket.

/** Ask for the first page of who is online again (it replaces the list when it comes). */
export function refreshPresence(s, room) {
  s.request({ action: "getPresence", room: room.name, limit: s.presencePage }, `presence:${room.name}`);
}

/** Ask for the page after the last one fetched ("show more"). */
export function morePresence(s, room) {
  if (!room.presenceCursor) return;
  const frame = { action: "getPresence", room: room.name, limit: s.presencePage, after: room.presenceCursor };
  s.request(frame, `presence:${room.name}:more`);
}

export function onPresenceList(s, room, frame) {
  // The answer does not say which request it answers: the older of a first page and a "more".
  const firstKey = `presence:${frame.room}`;
  const moreKey = `${firstKey}:more`;
  const first = s.requests.awaiting.get(firstKey);
  const more = s.requests.awaiting.get(moreKey);
  const continued = Boolean(more && (!first || more.sentAt <= first.sentAt));
  s.requests.answered(continued ? moreKey : firstKey);
  if (!room) return;
  applyPresencePage(room, frame, { first: !continued });
  s.emit("presence");
}

export function onPresence(s, room, frame) {
  if (!room) return;
  applyPresenceEvent(room, frame.user_id, frame.event);
  if (frame.event !== "join") s.stopTyping(room, frame.user_id);
  s.emit("presence");
}

/** The room crossed the threshold: on_demand (no more joins and leaves) or live again. */
export function onPresenceMode(s, room, frame) {
  // Either way the list is fetched afresh, and the count is the server's until it comes.
  if (!room) return;
  if (frame.mode === "live" || frame.mode === "on_demand") room.presenceMode = frame.mode;
  if (Number.isInteger(frame.count)) room.presenceCount = frame.count;
  refreshPresence(s, room);
  s.emit("presence");
}

/** Apply a page of who is online (`joined` or `presenceList`): the first replaces, the next ones add. */
export function applyPresencePage(room, frame, { first }) {
  const users = Array.isArray(frame.users) ? frame.users : [];
  if (first) room.presence = new Set(users);
  else for (const user of users) room.presence.add(user);
  if (frame.mode === "live" || frame.mode === "on_demand") room.presenceMode = frame.mode;
  room.presenceCursor = typeof frame.next_cursor === "string" ? frame.next_cursor : null;
  room.presenceCount = Math.max(Number.isInteger(frame.count) ? frame.count : 0, room.presence.size);
}

/** A `presence` event (sent while the room is live; one overtaken by presenceMode is still news). */
export function applyPresenceEvent(room, user, event) {
  if (event === "join") {
    if (!room.presence.has(user)) room.presenceCount += 1;
    room.presence.add(user);
  } else {
    // Someone not listed may be on a page not fetched yet; otherwise they are already gone.
    if (room.presence.has(user) || room.presenceCursor) room.presenceCount = Math.max(0, room.presenceCount - 1);
    room.presence.delete(user);
  }
  room.presenceCount = Math.max(room.presenceCount, room.presence.size);
}
