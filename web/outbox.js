// The outbox: acknowledged, ordered sends (sendMessage). Pure (no DOM, no WebSocket): frames go
// out through an injected link, time comes from an injected clock.
//
// The outbox is sent one message at a time, the next only once the previous is acknowledged:
// concurrent sends may be stored in any order (each is its own Lambda invocation), serial ones
// keep the order they were typed in. Paced by a bucket mirroring the server's rate limit. An
// entry unacknowledged for RESEND_AFTER_MS is sent again with the same client_msg_id, which the
// server stores and broadcasts at most once.

import { RESEND_AFTER_MS, SEND_BURST, SEND_RATE_PER_S, take } from "./protocol.js";

export class Outbox {
  /**
   * link: {isOpen(), send(frame)}; clock: {now(), setTimeout, clearTimeout};
   * canSend(): the session is online; hasRoom(name): the tab is still in that room.
   */
  constructor(link, clock, { canSend, hasRoom }) {
    this.link = link;
    this.clock = clock;
    this.canSend = canSend;
    this.hasRoom = hasRoom;
    this.entries = new Map(); // client_msg_id -> {room, text, sentAt}; sentAt 0: due
    this.bucket = { tokens: SEND_BURST, at: 0 };
    this.timer = null;
  }

  add(clientMsgId, room, text) {
    this.entries.set(clientMsgId, { room, text, sentAt: 0 });
  }

  get(clientMsgId) {
    return this.entries.get(clientMsgId);
  }

  has(clientMsgId) {
    return this.entries.has(clientMsgId);
  }

  delete(clientMsgId) {
    return this.entries.delete(clientMsgId);
  }

  /** Send the first due entry if the previous one was acknowledged and the bucket allows. */
  pump() {
    this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (!this.canSend()) return;
    for (const [clientMsgId, entry] of this.entries) {
      if (!this.hasRoom(entry.room)) {
        this.entries.delete(clientMsgId);
        continue;
      }
      const now = this.clock.now();
      if (entry.sentAt && now - entry.sentAt < RESEND_AFTER_MS) return; // in flight
      if (!take(this.bucket, SEND_RATE_PER_S, SEND_BURST, now)) {
        this.timer = this.clock.setTimeout(() => this.pump(), 1000 / SEND_RATE_PER_S);
        return;
      }
      if (this.link.isOpen()) this.link.send({ action: "sendMessage", room: entry.room, message: entry.text, client_msg_id: clientMsgId });
      entry.sentAt = this.clock.now();
      return;
    }
  }

  /** Make every unacknowledged entry due again (after a reconnect or a refusal). */
  resendAll() {
    for (const entry of this.entries.values()) entry.sentAt = 0;
    this.pump();
  }

  /** rate_limited on a send: the bucket is empty for `waitMs`, then everything unacknowledged goes again. */
  slowDown(waitMs) {
    this.bucket = { tokens: 0, at: this.clock.now() + waitMs };
    this.clock.setTimeout(() => this.resendAll(), waitMs);
  }
}
