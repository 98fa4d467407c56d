// The data of one room (messages in cursor order, pending sends, presence, typing, unread) and
// the directory of every room the user knows of (visibility, role, direct peer). Pure data and
// the rules that change it (presence's are in presence.js): no DOM, no WebSocket, no timers.

export function newRoom(name) {
  return {
    name,
    items: [], // [{cursor, id, message, mine}] sorted by cursor; message is the stored frame
    ids: new Set(),
    pending: new Map(), // client_msg_id -> {text, user, mine, failed}: sends not yet stored (failed: the refusal's code)
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

/** Insert a stored message in cursor order; its index, or -1 if its message_id is already there. */
export function insertMessage(room, frame, mine) {
  if (room.ids.has(frame.message_id)) return -1;
  room.ids.add(frame.message_id);
  const { items } = room;
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].cursor < frame.cursor) lo = mid + 1;
    else hi = mid;
  }
  items.splice(lo, 0, { cursor: frame.cursor, id: frame.message_id, message: frame, mine });
  return lo;
}

export function newestCursor(room) {
  return room.items.length ? room.items[room.items.length - 1].cursor : null;
}

/** What the server told us of rooms (listRooms, joined, invited…): name -> {room, visibility?, role?, peer?}. */
export class Directory {
  constructor() {
    this.entries = new Map();
  }

  /** What we know of a room: {room, visibility?, role?, peer?}. */
  info(name) {
    return this.entries.get(name) ?? { room: name };
  }

  /** Merge fields into a room's entry; an undefined value removes the field. */
  update(name, fields) {
    const next = { ...this.info(name) };
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) delete next[key];
      else next[key] = value;
    }
    this.entries.set(name, next);
    return next;
  }

  has(name) {
    return this.entries.has(name);
  }

  delete(name) {
    return this.entries.delete(name);
  }

  values() {
    return this.entries.values();
  }

  /** How a room is named to the user: "@peer" for a direct room, its name otherwise. */
  label(name) {
    const { visibility, peer } = this.info(name);
    if (visibility === "direct") return `@${peer ?? "direct"}`;
    return visibility === "private" ? `${name} (private)` : `#${name}`;
  }

  /** The direct room with `user`, if we know one. */
  directWith(user) {
    return [...this.entries.values()].find((e) => e.visibility === "direct" && e.peer === user);
  }

  /** A complete listRooms walk: the rooms listed, plus the joined ones it did not list, minus removals. */
  replace(listing, joined, removals) {
    const next = new Map();
    for (const entry of listing) {
      if (removals.has(entry.room) && !entry.role && entry.visibility !== "public") continue;
      next.set(entry.room, { room: entry.room, visibility: entry.visibility, role: entry.role, peer: entry.peer });
    }
    for (const name of joined) {
      if (!next.has(name) && this.entries.has(name)) next.set(name, this.entries.get(name));
    }
    this.entries = next;
  }
}
