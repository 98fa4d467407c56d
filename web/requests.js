// Requests: every action but sendMessage and typing, paced and matched with their answers.
// Pure (no DOM, no WebSocket): frames go out through an injected link, time comes from an
// injected clock.
//
// The server answers each of these with a frame we can recognise (`key`): getHistory ->
// history:<room>:<direction>, getPresence -> presence:<room>, joinRoom -> join:<room>,
// listRooms -> rooms, createRoom -> create:<room>, invite -> invite:<room>:<user>,
// openDirect -> direct:<user>, leaveRoom -> leave:<room>. Requests are paced under the server's
// rate limit; one refused with rate_limited (the error does not say which) is sent again if it
// is safe to repeat. An error frame names no request either: blame() picks the likeliest one.

import { CONTROL_BURST, CONTROL_RATE_PER_S, take } from "./protocol.js";

// Which requests an error code can answer, the user's own actions first.
const CODE_ACTIONS = {
  not_found: ["joinRoom", "invite", "openDirect", "createRoom", "getHistory", "getPresence"],
  forbidden: ["joinRoom", "invite", "createRoom", "openDirect", "getHistory", "getPresence", "listRooms"],
  room_exists: ["createRoom"],
  invalid_field: ["createRoom", "invite", "openDirect", "joinRoom", "listRooms", "getHistory", "getPresence"],
  unknown_action: ["listRooms", "createRoom", "invite", "openDirect"], // a server older than this client
};

export class Requests {
  /** link: {isOpen(), send(frame)}; clock: {now(), setTimeout(fn, ms), clearTimeout(id)}. */
  constructor(link, clock) {
    this.link = link;
    this.clock = clock;
    this.queue = []; // [{frame, key, retry}] waiting for the bucket
    this.awaiting = new Map(); // key -> {frame, key, retry, sentAt}: sent, answer not yet seen
    this.bucket = { tokens: CONTROL_BURST, at: 0 };
    this.timer = null;
    this.generation = 0; // bumped by reset(): a retry planned before a reconnect is void
  }

  /** Queue a request (false, and nothing queued, when the socket is not open). */
  request(frame, key, { retry = true } = {}) {
    if (!this.link.isOpen()) return false;
    this.queue.push({ frame, key, retry });
    this.drain();
    return true;
  }

  /** Send what the bucket allows now; come back for the rest. */
  drain() {
    this.clock.clearTimeout(this.timer);
    this.timer = null;
    while (this.queue.length) {
      if (!this.link.isOpen()) return;
      if (!take(this.bucket, CONTROL_RATE_PER_S, CONTROL_BURST, this.clock.now())) {
        this.timer = this.clock.setTimeout(() => this.drain(), 1000 / CONTROL_RATE_PER_S);
        return;
      }
      const entry = this.queue.shift();
      this.link.send(entry.frame);
      this.awaiting.set(entry.key, { ...entry, sentAt: this.clock.now() });
    }
  }

  /** The connection closed: forget what was queued and awaited (the bucket stays). */
  reset() {
    this.clock.clearTimeout(this.timer);
    this.queue = [];
    this.awaiting = new Map();
    this.timer = null;
    this.generation += 1;
  }

  /** The answer for `key` arrived; true if we were waiting for it. */
  answered(key) {
    return this.awaiting.delete(key);
  }

  /** After rate_limited without a client_msg_id: wait, then send again what was not answered. */
  retryUnanswered(waitMs) {
    const { generation } = this;
    this.bucket = { tokens: 0, at: this.clock.now() + waitMs };
    const lost = [...this.awaiting.values()].filter((entry) => entry.retry);
    this.clock.setTimeout(() => {
      if (this.generation !== generation) return; // reconnected meanwhile: everything was re-requested
      for (const entry of lost) {
        if (this.awaiting.get(entry.key) !== entry) continue;
        this.awaiting.delete(entry.key);
        this.queue.push({ frame: entry.frame, key: entry.key, retry: entry.retry });
      }
      this.drain();
    }, waitMs);
  }

  /** The unanswered request an error frame most likely refers to (removed from the waiting list). */
  blame(frame) {
    const actions = CODE_ACTIONS[frame.code];
    if (!actions) return null;
    const waiting = [...this.awaiting.values()].filter((entry) => actions.includes(entry.frame.action));
    if (!waiting.length) return null;
    const text = String(frame.message ?? "");
    if (frame.code === "unknown_action") {
      // "unknown action 'listRooms'; expected one of …": only the action it quotes.
      const entry = waiting.find((e) => text.includes(`'${e.frame.action}'`) || text.includes(`"${e.frame.action}"`));
      if (entry) this.awaiting.delete(entry.key);
      return entry?.frame ?? null;
    }
    const names = (entry) => [entry.frame.room, entry.frame.user_id].filter(Boolean);
    const rank = (entry) => actions.indexOf(entry.frame.action) * 1e13 + entry.sentAt;
    const mentioned = waiting.filter((entry) => names(entry).some((name) => text.includes(name)));
    const [chosen] = (mentioned.length ? mentioned : waiting).sort((a, b) => rank(a) - rank(b));
    this.awaiting.delete(chosen.key);
    return chosen.frame;
  }
}
