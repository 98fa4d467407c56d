"""The terminal client, driven through pseudo-terminals against the real local stack."""

from __future__ import annotations

import json
import re
import signal
import time
import uuid
from typing import Any

import pytest
from websockets.sync.client import connect

from serverless_app.definitions import EnvVar
from tests.clients.conftest import WAIT_S, PtyClient
from tests.support.stacks import TOKEN_SECRET, running_stack

pytestmark = pytest.mark.slow


def start_chat(terminal: Any, stack: Any, user: str, *rooms: str, options: tuple[str, ...] = ()) -> PtyClient:
    args = [stack.ws_url, "--user", user, *options]
    for room in rooms:
        args += ["--room", room]
    client: PtyClient = terminal(*args)
    client.wait_for(rf"connected as {re.escape(user)} \(connection ")
    return client


def test_two_users_chat_see_presence_and_who_and_quit_cleanly(
    terminal: Any, local_stack: Any, room: str
) -> None:
    """Messages cross both ways exactly once, joins are announced, /who lists both, /quit exits 0."""
    alice = start_chat(terminal, local_stack, "alice", room)
    bob = start_chat(terminal, local_stack, "bob", room)
    alice.wait_for(rf"#{room} → bob joined")

    alice.type("hello from alice")
    bob.wait_for(rf"#{room} alice: hello from alice$")
    alice.wait_for(rf"#{room} alice: hello from alice$")  # confirmed, no longer pending
    bob.type("hi alice")
    alice.wait_for(rf"#{room} bob: hi alice$")

    alice.type("/who")
    alice.wait_for(rf"#{room} online \(2\): alice, bob$")

    bob.type("/quit")
    assert bob.wait_exit() == 0
    alice.wait_for(rf"#{room} ← bob left")
    alice.type("/quit")
    assert alice.wait_exit() == 0
    assert len(alice.wait_for(rf"#{room} bob: hi alice$")) == 1


def test_join_leave_switch_room_and_history(terminal: Any, local_stack: Any, room: str) -> None:
    """/join makes a room active and shows who is there, /room switches, /leave leaves, /history lists."""
    other = f"{room}-b"
    alice = start_chat(terminal, local_stack, "alice", room)
    alice.type(f"/join {other}")
    alice.wait_for(rf"joined #{other} — online: alice$")
    alice.type("in the other room")
    alice.wait_for(rf"#{other} alice: in the other room$")
    alice.type(f"/room {room}")
    alice.wait_for(rf"now sending to #{room}$")
    alice.type("back home")
    alice.wait_for(rf"#{room} alice: back home$")
    alice.type(f"/leave {other}")
    alice.wait_for(rf"left #{other}$")
    alice.type("/rooms")
    alice.wait_for(rf"^  #{room}\s+public\s+- \(joined, active\)$")
    assert not re.search(rf"^  #{other}\s+public\s+-\s+\(joined", alice.text, re.MULTILINE)
    alice.type("/history 5")
    alice.wait_for(rf"── #{room}: 1 message\(s\) ──\n.*#{room} alice: back home\n──")
    alice.type("/frobnicate")
    alice.wait_for(r"unknown command /frobnicate")
    alice.type("/quit")
    assert alice.wait_exit() == 0


class Bob:
    """A plain websockets client for bob that records every frame it receives."""

    def __init__(self, stack: Any, room: str) -> None:
        self.room = room
        self.frames: list[dict[str, Any]] = []
        for _ in range(5):  # until the server answers on this connection (see the report on pruning)
            self.ws = connect(
                f"{stack.ws_url}?rooms={room}&user_id=bob",
                open_timeout=WAIT_S,
                proxy=None,
                max_queue=None,
                legacy=True,
            )
            self.until(lambda f: f.get("action") == "welcome")
            self.ws.send(json.dumps({"action": "getPresence", "room": room}))
            if self.until(lambda f: f.get("action") in ("presenceList", "error"))["action"] == "presenceList":
                return
            self.ws.close()
        raise AssertionError("bob's connection never became usable")

    def until(self, done: Any) -> dict[str, Any]:
        """The next frame satisfying ``done`` (bounded by WAIT_S); every frame is recorded."""
        deadline = time.monotonic() + WAIT_S
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frame = json.loads(self.ws.recv(timeout=remaining))
            except TimeoutError:
                break
            self.frames.append(frame)
            if done(frame):
                return frame
        raise AssertionError(f"bob never received the expected frame; got {self.frames}")

    def say(self, text: str) -> None:
        """Send ``text`` and wait for its ack, retrying (same client_msg_id) when rate limited."""
        cid = uuid.uuid4().hex
        frame = {
            "action": "sendMessage",
            "room": self.room,
            "user_id": "bob",
            "message": text,
            "client_msg_id": cid,
        }
        for _ in range(20):
            self.ws.send(json.dumps(frame))
            answer = self.until(
                lambda f: (
                    f.get("action") == "error" or (f.get("action") == "ack" and f.get("client_msg_id") == cid)
                )
            )
            if answer["action"] == "ack":
                return
            assert answer["code"] == "rate_limited", answer
            time.sleep(answer.get("retry_after_ms", 100) / 1000)
        raise AssertionError(f"{text!r} was never acknowledged")

    def saw(self, text: str) -> int:
        """How many message frames carrying ``text`` bob received."""
        return sum(1 for f in self.frames if f.get("action") == "message" and f.get("message") == text)


def test_a_forced_disconnect_recovers_every_missed_message_exactly_once(
    terminal: Any, local_stack: Any, room: str
) -> None:
    """Deleted through @connections while bob keeps talking, alice reconnects and sees each message once."""
    alice = start_chat(terminal, local_stack, "alice", room)
    [first] = alice.wait_for(r"connected as alice \(connection (\S+)\)")
    management = local_stack.management_client()
    bob = Bob(local_stack, room)
    try:
        alice.wait_for(rf"#{room} → bob joined")
        for n in range(1, 4):
            bob.say(f"before {n}")
        alice.wait_for(rf"#{room} bob: before 3$")

        # Freeze alice so that bob's messages certainly land while she is gone, not while she reconnects.
        alice.process.send_signal(signal.SIGSTOP)
        try:
            management.delete_connection(ConnectionId=first.group(1))
            alice.type("typed while offline")  # read on resume: queued or in flight, delivered once
            for n in range(1, 11):
                bob.say(f"during {n}")
        finally:
            alice.process.send_signal(signal.SIGCONT)
        alice.wait_for(r"connected as alice \(connection ", count=2)
        for n in range(1, 6):
            bob.say(f"after {n}")

        alice.wait_for(rf"#{room} bob: after 5$")
        alice.wait_for(rf"#{room} alice: typed while offline$")
        if not bob.saw("typed while offline"):
            bob.until(lambda f: f.get("message") == "typed while offline")
        alice.type("/quit")
        assert alice.wait_exit() == 0
    finally:
        bob.ws.close()

    out = alice.text
    expected = [f"before {n}" for n in range(1, 4)] + [f"during {n}" for n in range(1, 11)]
    for text in [*expected, *(f"after {n}" for n in range(1, 6))]:
        assert out.count(f"#{room} bob: {text}\n") == 1, f"{text!r} not shown exactly once:\n{out}"
    assert out.count(f"#{room} alice: typed while offline\n") == 1
    assert bob.saw("typed while offline") == 1


def test_private_rooms_invitations_direct_conversations_and_the_room_list(
    terminal: Any, local_stack: Any, room: str
) -> None:
    """alice creates a private room and invites bob, who joins from the invitation; they chat;
    carol cannot get in; roles change; alice opens a direct conversation with carol (@carol);
    /rooms lists visibility and role; a kicked bob loses the room."""
    suffix = room.removeprefix("t-")[:6]
    team = f"{room}-x"
    a, b, c = (f"{name}-{suffix}" for name in ("alice", "bob", "carol"))
    alice = start_chat(terminal, local_stack, a, room)
    bob = start_chat(terminal, local_stack, b, room)
    carol = start_chat(terminal, local_stack, c, room)

    alice.type(f"/create {team} private")
    alice.wait_for(rf"joined #{team} \(private, owner\) — online: {a}$")
    alice.type(f"/create {team}")
    alice.wait_for(r"✗ that name is taken: ")
    alice.type(f"/invite {b}")  # the active room: the one just created
    alice.wait_for(rf"#{team}: you invited {b}$")
    bob.wait_for(rf"{a} invited you to {team} — /join {team}$")
    bob.type(f"/join {team}")
    bob.wait_for(rf"joined #{team} \(private, member\) — online: ")
    alice.wait_for(rf"#{team} → {b} joined")
    bob.type("hi team")
    alice.wait_for(rf"#{team} {b}: hi team$")
    alice.type("hello bob")
    bob.wait_for(rf"#{team} {a}: hello bob$")

    carol.type(f"/join {team}")  # private, not invited: the room does not exist for her
    carol.wait_for(r"✗ not found: ")
    carol.type(f"/invite {b} {team}")
    carol.wait_for(r"✗ not found: ", count=2)
    bob.type(f"/kick {a} {team}")  # a member cannot moderate (and nobody acts on the owner)
    bob.wait_for(r"✗ (not allowed|invalid_field): ")

    town = f"{room}-pub"  # roles in a public room (anyone not banned may be made admin)
    alice.type(f"/create {town} public")
    alice.wait_for(rf"joined #{town} \(owner\) — online: {a}$")
    alice.type(f"/admin {b}")
    alice.wait_for(rf"#{town}: you made {b} admin$")
    bob.wait_for(rf"#{town}: {a} made you admin$")
    alice.type(f"/member {b} #{town}")
    alice.wait_for(rf"#{town}: you made {b} member$")

    alice.type(f"/dm {c}")
    alice.wait_for(rf"joined @{c} \(direct conversation\) — online: ")
    carol.wait_for(rf"{a} opened a direct conversation — /dm {a}$")
    alice.type("psst")  # the direct room is now the active one
    alice.wait_for(rf"@{c} {a}: psst$")
    carol.type(f"/dm {a}")
    carol.wait_for(rf"joined @{a} \(direct conversation\) — online: ")
    carol.wait_for(rf"@{a} {a}: psst$")
    carol.type("hi alice")
    alice.wait_for(rf"@{c} {c}: hi alice$")
    assert "opened a direct conversation" not in alice.text  # carol's /dm tells alice nothing new

    alice.type("/rooms")
    alice.wait_for(rf"^  #{team}\s+private\s+owner \(joined\)$")
    alice.wait_for(rf"^  @{c}\s+direct\s+member \(joined, active\)$")
    alice.wait_for(rf"^  #{room}\s+public\s+- \(joined\)$")
    alice.wait_for(rf"^  #{town}\s+public\s+owner \(joined\)$")
    assert "dm-" not in alice.text  # direct rooms are shown by the other user's name only

    alice.type(f"/kick {b} {team}")
    bob.wait_for(rf"kicked from #{team} by {a}$")
    alice.wait_for(rf"#{team}: you kicked {b}$")
    bob.type("/rooms")
    bob.wait_for(rf"^  #{room}\s+public\s+- \(joined, active\)$")
    assert not re.search(rf"^  #{team}\s", bob.text, re.MULTILINE)
    bob.type(f"/join {team}")  # kicked from a private room: the invitation is gone too
    bob.wait_for(r"✗ not found: ")

    for client in (alice, bob, carol):
        client.type("/quit")
        assert client.wait_exit() == 0


def test_an_expired_token_is_replaced_and_nothing_is_lost(
    terminal: Any, dynamodb_local: Any, room: str
) -> None:
    """The server answers token_expired and closes; the client mints a fresh token, reconnects,
    sends the refused message again (stored once) and recovers what it missed."""
    user = f"alice-{room.removeprefix('t-')[:6]}"
    options = ("--secret", TOKEN_SECRET, "--ttl", "6s")
    # no clock skew: the token minted here expires on this machine's clock, to the second
    with running_stack(
        dynamodb_endpoint=dynamodb_local.endpoint_url,
        auth_mode="token",
        token_secret=TOKEN_SECRET,
        function_environment={EnvVar.TOKEN_LEEWAY_S: "0"},
    ) as token_stack:
        _expire_and_renew(terminal, token_stack, user, room, options)


def _expire_and_renew(
    terminal: Any, token_stack: Any, user: str, room: str, options: tuple[str, ...]
) -> None:
    alice = start_chat(terminal, token_stack, user, room, options=options)
    alice.type("before expiry")
    alice.wait_for(rf"#{room} {user}: before expiry$")
    time.sleep(7)  # the token is now expired; the next frame is refused with token_expired
    alice.type("after expiry")
    alice.wait_for(r"the token expired: reconnecting with a fresh one")
    alice.wait_for(rf"connected as {user} \(connection ", count=2)
    alice.wait_for(rf"#{room} {user}: after expiry$")
    alice.type("/quit")
    assert alice.wait_exit() == 0
    out = alice.text
    assert out.count(f"#{room} {user}: after expiry\n") == 1, out
    assert "disconnected (" not in out, out
