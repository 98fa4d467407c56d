// The protocol facts the browser client needs (docs/protocol.md): the schema's name patterns,
// the server's limits and page sizes, recovery cursors and the token bucket that paces requests.
// Pure: no DOM, no WebSocket.

// The protocol schema's room and user_id patterns (tests/clients/test_web_patterns.py keeps them equal).
export const ROOM_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const USER_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
export const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;
export const MAX_ROOMS = 20;
export const HISTORY_PAGE = 50;
export const RECOVERY_PAGE = 100;
export const LIST_PAGE = 100;
export const PRESENCE_PAGE = 50; // users per getPresence page ("show more"); ?presence_page=N (1–100) overrides
export const RECOVERY_OVERLAP_MS = 30_000; // messages may be stored slightly out of timestamp order
export const ZERO_ID = "0".repeat(32);
export const EPOCH_CURSOR = `1970-01-01T00:00:00.000000Z#${ZERO_ID}`;
export const TYPING_SEND_MS = 2000;
export const TYPING_SHOW_MS = 3000;
export const TYPING_RELAY_MS = 1100; // the server relays at most one typing event per second
export const RESEND_AFTER_MS = 8000; // an unacknowledged send is retried (same client_msg_id: idempotent)
export const SEND_RATE_PER_S = 5; // the server's sendMessage limit per user (docs/protocol.md)
export const SEND_BURST = 20;
// Every other action shares one per-user limit of 10/s, bursts of 30: stay a little under it so
// that a reconnect with 20 rooms (listRooms + joins + history + presence) is not refused.
export const CONTROL_RATE_PER_S = 8;
export const CONTROL_BURST = 24;
export const MODERATOR_ROLES = new Set(["owner", "admin"]);

/** Spend one token of a bucket refilled at `rate` per second up to `burst`; false if none is left. */
export function take(bucket, rate, burst, now) {
  bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
  bucket.at = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/** The cursor RECOVERY_OVERLAP_MS before `cursor`, with the smallest message id. */
export function overlapCursor(cursor) {
  const stamp = cursor.split("#")[0]; // 2026-11-26T17:41:32.123456Z
  const micros = stamp.slice(20, 26);
  const whole = Date.parse(`${stamp.slice(0, 19)}Z`) - RECOVERY_OVERLAP_MS;
  return `${new Date(whole).toISOString().slice(0, 19)}.${micros}Z#${ZERO_ID}`;
}

/** A fresh client_msg_id. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `c${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A room name as typed ("#general " → "general"). */
export function roomName(raw) {
  return raw.trim().replace(/^#/, "");
}
