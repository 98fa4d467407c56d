// What the session does with an error frame: renew the token, slow down, give up on a send,
// or blame the request it most likely answers and say so in terms of what the user tried.
// Functions of a Session (session.js); no DOM, no WebSocket.

import { dropRoom } from "./membership.js";

export const RENEW_MIN_INTERVAL_MS = 5000; // a token refused again this soon after a renewal: back off

/**
 * The server refused the token (token_expired): what to do, given the connection's
 * {renewing, manualToken, lastRenewal} at `now`. null: a renewal is under way already;
 * "hold": a token pasted at sign-in cannot be renewed, stay offline; "wait": refused again
 * right after a renewal (clocks far apart?), let the normal backoff apply; "renew": fetch a
 * fresh token and reconnect at once.
 */
export function renewalDecision({ renewing, manualToken, lastRenewal }, now) {
  if (renewing) return null;
  if (manualToken) return "hold";
  if (now - lastRenewal < RENEW_MIN_INTERVAL_MS) return "wait";
  return "renew";
}

/** A sentence for an error, in terms of what the user tried. */
export function describeError(s, frame, failed) {
  const { code } = frame;
  const room = failed?.room;
  const what = room ? (s.directory.has(room) ? s.directory.label(room) : `"${room}"`) : "";
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

export function onError(s, frame) {
  if (frame.code === "token_expired") {
    s.emit("tokenExpired"); // the refused send, if any, stays in the outbox and goes again once reconnected
    return;
  }
  if (frame.code === "rate_limited") {
    const wait = frame.retry_after_ms ?? 1000;
    if (frame.client_msg_id) {
      s.emit("toast", `Slow down: sending again in ${(wait / 1000).toFixed(1)} s`, "warn", frame.code);
      s.outbox.slowDown(wait);
    } else {
      s.requests.retryUnanswered(wait);
    }
    return;
  }
  if (frame.code === "unknown_connection") {
    s.emit("toast", "The server forgot this connection; reconnecting", "warn", frame.code);
    s.emit("close", 4000, "unknown connection");
    return;
  }
  if (frame.client_msg_id && s.outbox.has(frame.client_msg_id)) {
    if (frame.code !== "storage_unavailable" && frame.code !== "internal_error") s.failPending(frame.client_msg_id, frame.code);
    s.emit("toast", describeError(s, frame, null), "error", frame.code);
    return;
  }
  const failed = s.requests.blame(frame);
  if (failed?.action === "listRooms" && frame.code === "unknown_action") {
    s.listing = null; // a server without rooms directory: the sidebar shows the rooms joined here
    return;
  }
  if (failed?.action === "joinRoom" && s.rooms.has(failed.room) && !s.rooms.get(failed.room).joined) {
    dropRoom(s, failed.room); // never joined: take the optimistic tab away again
    if (frame.code === "not_found" && s.directory.info(failed.room).visibility !== "public") s.directory.delete(failed.room);
    s.emit("rooms");
    s.reactivate();
    s.emit("save");
  } else if ((failed?.action === "getHistory" || failed?.action === "getPresence") && !s.rooms.has(failed.room)) {
    return; // a read for a room we have left or been removed from meanwhile
  }
  s.emit("toast", describeError(s, frame, failed), "error", frame.code);
}
