"""The browser client's session logic (web/session.js, no DOM, no WebSocket) run under Node.

Each test is a small ES module fed to ``node --input-type=module`` on stdin: it imports the
client's modules by file URL (web/package.json makes Node load web/*.js as ES modules, as the
browser does), drives a Session with a fake link and a manual clock, and checks with node:assert.
A failed assertion makes node exit non-zero and the test fails with node's message.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "web"
NODE = shutil.which("node")

HARNESS = """
import assert from "node:assert/strict";
import { Session } from "{web}/session.js";
import { renewalDecision } from "{web}/errors.js";
import { joinRoom, leaveRoom } from "{web}/membership.js";
import { morePresence, refreshPresence } from "{web}/presence.js";

/** A socket that records what the session sends; a clock that moves only when told. */
function harness() {
  const sent = [];
  const events = [];
  const timers = [];
  const link = { open: true, isOpen: () => link.open, send: (frame) => sent.push(frame) };
  const clock = {
    t: 1_000_000,
    now: () => clock.t,
    setTimeout: (fn, ms) => timers.push({ at: clock.t + ms, fn }) - 1,
    clearTimeout: (id) => { if (id != null && timers[id]) timers[id].fn = null; },
    advance(ms) {
      clock.t += ms;
      for (const timer of timers) if (timer.fn && timer.at <= clock.t) { const fn = timer.fn; timer.fn = null; fn(); }
    },
  };
  const session = new Session({ link, clock, emit: (name, ...args) => events.push([name, ...args]) });
  session.user = "alice";
  const receive = (frame) => session.receive(JSON.stringify(frame));
  /** Frames sent since the last call. */
  const take = () => sent.splice(0);
  /** Signed in to "general", welcomed and online, nothing sent yet. */
  const online = () => {
    session.restore("alice", ["general"], "general");
    receive({ action: "welcome", user_id: "alice", connection_id: "c1", rooms: ["general"] });
    session.connected();
    take();
  };
  return { session, link, clock, events, receive, take, online };
}
const STAMP = "2026-11-26T17:41:32.123456Z";
const stored = (room, id, extra = {}) => ({
  action: "message", room, user_id: "bob", message: `m${id}`, timestamp: STAMP,
  message_id: id.padStart(32, "0"), cursor: `${STAMP}#${id.padStart(32, "0")}`, ...extra,
});
"""


def run_js(body: str) -> None:
    if NODE is None:
        pytest.fail("node is missing: the browser client's session tests run under Node 20")
    script = HARNESS.replace("{web}", WEB.as_uri()) + body
    result = subprocess.run(
        [NODE, "--input-type=module", "-"], input=script, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr or result.stdout


def test_welcome_lists_rooms_and_joins_the_rooms_it_did_not_confirm() -> None:
    run_js("""
const { session, events, receive, take } = harness();
session.restore("alice", ["general", "extra"], null);
receive({ action: "welcome", user_id: "alice", connection_id: "c1", rooms: ["general"] });
assert.deepEqual(take(), [
  { action: "listRooms", limit: 100 },
  { action: "joinRoom", room: "extra" },
]);
assert.equal(session.me, "alice");
assert.equal(session.rooms.get("general").joined, true);
assert.equal(session.rooms.get("extra").joined, false);
assert.ok(events.some(([name]) => name === "welcome"));
// Online: only the rooms this connection is in are read (the first page of history, presence).
session.connected();
assert.deepEqual(take(), [
  { action: "getHistory", room: "general", limit: 50 },
  { action: "getPresence", room: "general", limit: 50 },
]);
""")


def test_an_ack_confirms_the_pending_send_and_lets_the_next_one_go() -> None:
    run_js("""
const { session, receive, take, online } = harness();
online();
assert.equal(session.sendMessage("hello\\u0007"), true);
assert.equal(session.sendMessage("again"), true);
const [first, ...rest] = take();
assert.equal(rest.length, 0, "the second message waits for the first one's ack");
assert.equal(first.action, "sendMessage");
assert.equal(first.message, "hello", "control characters are removed");
const room = session.rooms.get("general");
assert.equal(room.pending.size, 2);
receive({ action: "ack", room: "general", client_msg_id: first.client_msg_id,
          message_id: "1".padStart(32, "0"), cursor: `${STAMP}#${"1".padStart(32, "0")}`, timestamp: STAMP });
assert.equal(room.pending.size, 1);
assert.equal(session.outbox.has(first.client_msg_id), false);
assert.deepEqual(room.items.map((item) => [item.message.message, item.mine]), [["hello", true]]);
const [second] = take();
assert.equal(second.message, "again");
assert.notEqual(second.client_msg_id, first.client_msg_id);
""")


def test_unacknowledged_sends_go_again_with_the_same_client_msg_id_after_a_reconnect() -> None:
    run_js("""
const { session, link, clock, receive, take, online } = harness();
online();
session.sendMessage("hello");
const [sent] = take();
link.open = false;
session.disconnected();
assert.equal(session.online, false);
assert.equal(session.rooms.get("general").joined, false);
link.open = true;
clock.advance(1000);
receive({ action: "welcome", user_id: "alice", connection_id: "c2", rooms: ["general"] });
session.connected();
const again = take().filter((frame) => frame.action === "sendMessage");
assert.deepEqual(again, [sent]);
""")


def test_recovery_asks_for_everything_after_the_newest_cursor_minus_the_overlap() -> None:
    run_js("""
const { session, receive, take, online } = harness();
online();
receive({ action: "history", room: "general", direction: "before", messages: [stored("general", "2"), stored("general", "1")], next_cursor: null });
receive(stored("general", "2")); // a duplicate is shown once
assert.deepEqual(session.rooms.get("general").items.map((item) => item.message.message), ["m1", "m2"]);
session.disconnected();
receive({ action: "welcome", user_id: "alice", connection_id: "c2", rooms: ["general"] });
session.connected();
const history = take().find((frame) => frame.action === "getHistory");
assert.deepEqual(history, {
  action: "getHistory", room: "general", limit: 100, after: `2026-11-26T17:41:02.123456Z#${"0".repeat(32)}`,
});
""")


def test_a_refused_token_asks_the_connection_to_renew_it_unless_it_cannot() -> None:
    run_js("""
const { session, events, receive } = harness();
receive({ action: "error", code: "token_expired", message: "token expired" });
assert.deepEqual(events.at(-1), ["tokenExpired"]);
assert.equal(renewalDecision({ renewing: false, manualToken: "", lastRenewal: 0 }, 100_000), "renew");
assert.equal(renewalDecision({ renewing: false, manualToken: "", lastRenewal: 98_000 }, 100_000), "wait");
assert.equal(renewalDecision({ renewing: false, manualToken: "pasted", lastRenewal: 0 }, 100_000), "hold");
assert.equal(renewalDecision({ renewing: true, manualToken: "", lastRenewal: 0 }, 100_000), null);
""")


def test_an_error_is_blamed_on_the_request_it_names() -> None:
    run_js("""
const { session, events, receive, take, online } = harness();
online();
assert.equal(joinRoom(session, "#secret"), true);
assert.equal(joinRoom(session, "other"), true);
assert.equal(session.active, "other");
take();
receive({ action: "error", code: "not_found", message: "no room 'secret'" });
assert.deepEqual([...session.rooms.keys()], ["general", "other"], "the optimistic tab of the room refused goes");
const [, text, kind, code] = events.filter(([name]) => name === "toast").at(-1);
assert.match(text, /There is no room "secret"/);
assert.deepEqual([kind, code], ["error", "not_found"]);
assert.ok(session.requests.awaiting.has("join:other"), "the other join is still awaited");
leaveRoom(session, "other");
assert.deepEqual(take(), [{ action: "leaveRoom", room: "other" }]);
assert.equal(session.active, "general");
""")


def test_presence_pages_and_events_keep_the_count() -> None:
    run_js("""
const { session, receive, take } = harness();
session.restore("alice", ["big"], "big");
receive({ action: "welcome", user_id: "alice", connection_id: "c1", rooms: [] });
receive({ action: "joined", room: "big", users: ["a", "b"], count: 5, mode: "on_demand", next_cursor: "b" });
const room = session.rooms.get("big");
assert.deepEqual([room.presenceCount, room.presenceMode, room.presenceCursor], [5, "on_demand", "b"]);
receive({ action: "presence", room: "big", user_id: "zed", event: "leave" });
assert.equal(room.presenceCount, 4, "someone on a page not fetched yet may leave");
take();
morePresence(session, room);
assert.deepEqual(take(), [{ action: "getPresence", room: "big", limit: 50, after: "b" }]);
receive({ action: "presenceList", room: "big", users: ["c"], count: 4, mode: "on_demand", next_cursor: null });
assert.deepEqual([...room.presence], ["a", "b", "c"], "a later page adds to the first");
receive({ action: "presence", room: "big", user_id: "yan", event: "leave" });
assert.equal(room.presenceCount, 4, "all pages fetched: someone not listed is gone already");
receive({ action: "presence", room: "big", user_id: "a", event: "leave" });
assert.deepEqual([room.presenceCount, [...room.presence]], [3, ["b", "c"]]);
""")


def test_requests_refused_with_rate_limited_go_again_after_the_wait_but_a_create_does_not() -> None:
    run_js("""
const { session, clock, receive, take, online } = harness();
online();
refreshPresence(session, session.rooms.get("general"));
session.request({ action: "createRoom", room: "new", visibility: "public" }, "create:new", { retry: false });
assert.equal(take().length, 2);
receive({ action: "error", code: "rate_limited", message: "slow down", retry_after_ms: 2000 });
clock.advance(2000);
assert.deepEqual(take(), [], "the bucket refills only after the wait");
for (let i = 0; i < 8; i++) clock.advance(125);
// Everything unanswered goes again, one request per 1/8 s, except the create.
assert.deepEqual(take().map((frame) => frame.action), ["listRooms", "getHistory", "getPresence"]);
""")


def test_a_recovery_page_with_a_next_cursor_asks_for_the_next_page() -> None:
    run_js("""
const { session, receive, take, online } = harness();
online();
receive({ action: "history", room: "general", direction: "after", messages: [stored("general", "7")], next_cursor: "n1" });
assert.deepEqual(take(), [{ action: "getHistory", room: "general", limit: 100, after: "n1" }]);
assert.equal(session.rooms.get("general").historyLoaded, true);
""")
