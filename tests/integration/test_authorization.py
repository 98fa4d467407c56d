"""Who may do what: every room action × every standing × every kind of room, through the local runtime.

Real WebSocket clients talk to the local stack (auth mode ``none``: the same rules apply to
the claimed user id as to a token's). For each (kind of room, action) a scene is built — a
room with its owner, an admin, a member, an invited user, a stranger, a banned user and a
watcher — and each standing in turn sends the action. Every case asserts the answer and
what happened beyond it: nothing stored, delivered or changed where the action was refused,
the change made where it was allowed. The expected table is written out here, independently
of ``serverless_app/chat/access.py``; it is the table of ``docs/protocol.md``.

The scenes run concurrently (one local stack for the module), and each case is reported as
its own test.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from serverless_app.definitions import MESSAGES_TABLE, ROOMS_TABLE
from serverless_app.local.dynamodb_local import DynamoDBLocal
from serverless_app.local.dynamodb_tables import dynamodb_client
from tests.support.chat_client import SyncChatClient, unique
from tests.support.waiting import eventually

OK, SEES, HIDDEN = "ok", "sees", "hidden"
FORBIDDEN, NOT_FOUND = "forbidden", "not_found"
STANDINGS = ("owner", "admin", "member", "invited", "stranger", "banned")
DIRECT_STANDINGS = ("member", "stranger")
"""A direct room has its two users and everyone else: no owner, admin, invitation or ban."""

ALL_OK = dict.fromkeys(STANDINGS, OK)
MODERATION_PUBLIC = {**dict.fromkeys(STANDINGS, FORBIDDEN), "owner": OK, "admin": OK}
MODERATION_PRIVATE = {**MODERATION_PUBLIC, "stranger": NOT_FOUND}
NOBODY_MODERATES_DIRECT = {"member": FORBIDDEN, "stranger": NOT_FOUND}

EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "public": {
        "joinRoom": {**ALL_OK, "banned": FORBIDDEN},
        "sendMessage": {**ALL_OK, "banned": FORBIDDEN},
        "getHistory": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": FORBIDDEN,
            "stranger": FORBIDDEN,
            "banned": FORBIDDEN,
        },
        "getPresence": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": FORBIDDEN,
            "stranger": FORBIDDEN,
            "banned": FORBIDDEN,
        },
        "typing": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": FORBIDDEN,
            "stranger": FORBIDDEN,
            "banned": FORBIDDEN,
        },
        "getUserHistory": {**dict.fromkeys(STANDINGS, SEES), "banned": HIDDEN},
        "leaveRoom": ALL_OK,
        "invite": MODERATION_PUBLIC,
        "kick": MODERATION_PUBLIC,
        "ban": MODERATION_PUBLIC,
        "unban": MODERATION_PUBLIC,
        "setRole": {**MODERATION_PUBLIC, "admin": FORBIDDEN},
    },
    "private": {
        "joinRoom": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": OK,
            "stranger": NOT_FOUND,
            "banned": FORBIDDEN,
        },
        "sendMessage": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": OK,
            "stranger": NOT_FOUND,
            "banned": FORBIDDEN,
        },
        "getHistory": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": FORBIDDEN,
            "stranger": NOT_FOUND,
            "banned": FORBIDDEN,
        },
        "getPresence": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": FORBIDDEN,
            "stranger": NOT_FOUND,
            "banned": FORBIDDEN,
        },
        "typing": {
            "owner": OK,
            "admin": OK,
            "member": OK,
            "invited": FORBIDDEN,
            "stranger": NOT_FOUND,
            "banned": FORBIDDEN,
        },
        "getUserHistory": {
            "owner": SEES,
            "admin": SEES,
            "member": SEES,
            "invited": HIDDEN,
            "stranger": HIDDEN,
            "banned": HIDDEN,
        },
        "leaveRoom": ALL_OK,
        "invite": MODERATION_PRIVATE,
        "kick": MODERATION_PRIVATE,
        "ban": MODERATION_PRIVATE,
        "unban": MODERATION_PRIVATE,
        "setRole": {**MODERATION_PRIVATE, "admin": FORBIDDEN},
    },
    "direct": {
        "joinRoom": {"member": OK, "stranger": NOT_FOUND},
        "sendMessage": {"member": OK, "stranger": NOT_FOUND},
        "getHistory": {"member": OK, "stranger": NOT_FOUND},
        "getPresence": {"member": OK, "stranger": NOT_FOUND},
        "typing": {"member": OK, "stranger": NOT_FOUND},
        "getUserHistory": {"member": SEES, "stranger": HIDDEN},
        "leaveRoom": {"member": OK, "stranger": OK},
        "invite": NOBODY_MODERATES_DIRECT,
        "kick": NOBODY_MODERATES_DIRECT,
        "ban": NOBODY_MODERATES_DIRECT,
        "unban": NOBODY_MODERATES_DIRECT,
        "setRole": NOBODY_MODERATES_DIRECT,
    },
}

SCENES: tuple[tuple[str, ...], ...] = (
    ("joinRoom",),
    ("sendMessage",),
    ("leaveRoom",),
    ("getHistory", "getPresence", "typing", "getUserHistory"),
    ("invite", "kick", "ban", "unban", "setRole"),
)
"""Actions that may share a scene: none of them changes the standing or the joined rooms of an actor
(moderation acts on fresh targets). Joining, sending (which joins) and leaving get scenes of their own."""

assert {action for scene in SCENES for action in scene} == set(EXPECTED["public"]), "every action has a scene"

CASES = [
    (kind, action, standing)
    for kind, actions in EXPECTED.items()
    for action, by_standing in actions.items()
    for standing in by_standing
]

ANSWER = {
    "joinRoom": "joined",
    "getHistory": "history",
    "getPresence": "presenceList",
    "getUserHistory": "userHistory",
    "leaveRoom": "left",
    "invite": "roomUpdated",
    "kick": "roomUpdated",
    "ban": "roomUpdated",
    "unban": "roomUpdated",
    "setRole": "roomUpdated",
}
"""The success answer each action gets (``sendMessage``: the message itself; ``typing``: none to the typist)."""


def exchange(
    client: SyncChatClient, frame: dict[str, Any], answers: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Send ``frame`` and wait for its answer; a ``rate_limited`` refusal is waited out and sent again
    (scenes share a user's rate between set-up and cases; the limits have tests of their own)."""
    for _ in range(20):
        start = len(client.frames)
        client.send(**frame)
        answer = client.wait_for(answers, what, start=start)
        if answer.get("code") != "rate_limited":
            return answer
        time.sleep(answer["retry_after_ms"] / 1000)
    raise AssertionError(f"{what}: rate limited twenty times")


class Seen(Exception):
    """What a case observed that it must not have."""


@dataclass
class Scene:
    """One room of one kind, with a user of every standing connected."""

    ws_url: str
    ddb: Any
    kind: str
    room: str = ""
    prefix: str = field(default_factory=lambda: unique("az"))
    clients: dict[str, SyncChatClient] = field(default_factory=dict)
    connection_ids: dict[str, str] = field(default_factory=dict)
    secret: str = ""
    _targets: Iterator[int] = field(default_factory=itertools.count)

    def user(self, standing: str) -> str:
        return f"{self.prefix}-{standing}"

    def connect(self, name: str) -> SyncChatClient:
        client = SyncChatClient(self.ws_url, user_id=self.user(name), rooms=f"{self.prefix}-{name}-home")
        self.clients[name] = client
        self.connection_ids[name] = client.wait_action("welcome")["connection_id"]
        return client

    def ask(self, name: str, action: str, expect: str, **frame: Any) -> dict[str, Any]:
        """Send a set-up frame and wait for its success answer (any error fails the set-up)."""
        answer = exchange(
            self.clients[name],
            {"action": action, **frame},
            lambda f: f.get("action") in (expect, "error"),
            f"{expect} for {action}",
        )
        assert answer["action"] == expect, f"set-up {action} by {name} failed: {answer}"
        return answer

    def build(self) -> Scene:
        if self.kind == "direct":
            return self._build_direct()
        owner = self.connect("owner")
        self.room = f"{self.prefix}-room"
        self.ask("owner", "createRoom", "joined", room=self.room, visibility=self.kind)
        for name in ("admin", "member", "watcher", "banned"):
            self.connect(name)
            self.enter(name)
        self.ask("owner", "setRole", "roomUpdated", room=self.room, user_id=self.user("admin"), role="admin")
        self.ask("owner", "ban", "roomUpdated", room=self.room, user_id=self.user("banned"))
        self.connect("invited")
        self.ask("owner", "invite", "roomUpdated", room=self.room, user_id=self.user("invited"))
        self.connect("stranger")
        self.secret = f"secret of {self.prefix}"
        owner.send(action="sendMessage", room=self.room, message=self.secret)
        self.clients["watcher"].wait_action("message", message=self.secret)
        return self

    def _build_direct(self) -> Scene:
        opener = self.connect("owner")
        self.connect("member")
        self.connect("stranger")
        opened = self.ask("owner", "openDirect", "joined", user_id=self.user("member"))
        self.room = opened["room"]
        self.ask("member", "openDirect", "joined", user_id=self.user("owner"))
        self.clients["watcher"] = opener  # the only other one who can be in the room
        self.connection_ids["watcher"] = self.connection_ids["owner"]
        self.secret = f"secret of {self.prefix}"
        opener.send(action="sendMessage", room=self.room, message=self.secret)
        self.clients["member"].wait_action("message", message=self.secret)
        return self

    def enter(self, name: str) -> None:
        """Make ``name`` a member whose connection joined the room (invited first if private)."""
        if self.kind == "private":
            self.ask("owner", "invite", "roomUpdated", room=self.room, user_id=self.user(name))
        self.ask(name, "joinRoom", "joined", room=self.room)

    def fresh_target(self, *, joined: bool) -> tuple[str, SyncChatClient | None]:
        name = f"target{next(self._targets)}"
        if not joined:
            return self.user(name), None
        client = self.connect(name)
        self.enter(name)
        return self.user(name), client

    # --- what DynamoDB holds ---------------------------------------------------------------

    def item(self, sk: str) -> dict[str, Any] | None:
        response = self.ddb.get_item(
            TableName=ROOMS_TABLE.name, Key={"room": {"S": self.room}, "sk": {"S": sk}}, ConsistentRead=True
        )
        return response.get("Item")

    def role_of(self, user: str) -> str | None:
        item = self.item(f"role#{user}")
        return item["role"]["S"] if item else None

    def stored_texts(self) -> list[str]:
        items = self.ddb.query(
            TableName=MESSAGES_TABLE.name,
            KeyConditionExpression="#r = :r",
            ExpressionAttributeNames={"#r": "room"},
            ExpressionAttributeValues={":r": {"S": self.room}},
            ConsistentRead=True,
        )["Items"]
        return [i["message"]["S"] for i in items]

    def quiet_at_watcher(self, forbidden: Callable[[dict[str, Any]], bool]) -> None:
        """Nothing matching ``forbidden`` reached the watcher before a marker sent after it."""
        marker = f"marker {unique('m')}"
        sender = "member" if self.kind == "direct" else "owner"
        if self.kind == "direct":
            self.clients["member"].send(action="sendMessage", room=self.room, message=marker)
        else:
            self.clients[sender].send(action="sendMessage", room=self.room, message=marker)
        watcher = self.clients["watcher"]
        watcher.wait_action("message", message=marker)
        leaked = [f for f in watcher.frames if forbidden(f)]
        if leaked:
            raise Seen(f"the watcher received {leaked}")


def run_case(scene: Scene, action: str, standing: str) -> str:
    """Send ``action`` as ``standing``; return the outcome observed (``ok``, ``sees``, ``hidden`` or an error code)."""
    actor = scene.clients[standing]
    room = scene.room
    target, target_client = None, None
    before: tuple[str | None, bool] = (None, False)
    frame: dict[str, Any] = {"action": action, "room": room}
    if action == "sendMessage":
        frame["message"] = f"from {standing} {unique('t')}"
    elif action == "getUserHistory":
        frame = {"action": action, "user_id": scene.user("owner"), "limit": 100}
    elif action in ("invite", "kick", "ban", "unban", "setRole"):
        joined = action in ("kick", "ban", "setRole") and scene.kind != "direct"
        target, target_client = scene.fresh_target(joined=joined)
        if action == "unban" and scene.kind != "direct":
            scene.ask("owner", "ban", "roomUpdated", room=room, user_id=target)
        if action == "setRole":
            frame["role"] = "admin"
        frame["user_id"] = target
        before = (scene.role_of(target), scene.item(f"ban#{target}") is not None)
    start = len(actor.frames)
    watcher = scene.clients["watcher"]
    if action == "typing":
        actor.send(**frame)
        answer = _typing_answer(scene, actor, standing, start)
    else:
        expected = ANSWER.get(action, "message")
        answer = exchange(
            actor,
            frame,
            lambda f: f.get("action") == "error" or (f.get("action") == expected and _answers(frame, f)),
            f"answer to {action}",
        )
    refused = answer.get("action") == "error"
    outcome = answer["code"] if refused else OK
    cid = scene.connection_ids[standing]
    if action == "joinRoom":
        if (scene.item(f"member#{cid}") is not None) != (not refused):
            raise Seen(f"membership of {standing} does not match the answer {answer}")
    elif action == "sendMessage":
        stored = frame["message"] in scene.stored_texts()
        if stored == refused:
            raise Seen(f"stored={stored} but answered {answer}")
        if refused:
            scene.quiet_at_watcher(lambda f: f.get("message") == frame["message"])
        else:
            watcher.wait_action("message", message=frame["message"])
    elif action in ("getHistory", "getPresence"):
        if refused and any(
            f.get("action") == ANSWER[action] and f.get("room") == room for f in actor.frames[start:]
        ):
            raise Seen(f"{standing} got an answer as well as the refusal")
    elif action == "getUserHistory":
        texts = [m["message"] for m in answer["messages"] if m["room"] == room]
        outcome = SEES if scene.secret in texts else HIDDEN
        if outcome == HIDDEN and texts:
            raise Seen(f"{standing} got messages of the room: {texts}")
    elif action == "leaveRoom":
        if scene.item(f"member#{cid}") is not None:
            raise Seen(f"{standing} is still a member after leaving")
    elif target is not None:
        after = (scene.role_of(target), scene.item(f"ban#{target}") is not None)
        if refused and after != before:
            raise Seen(f"refused, yet the target's standing went from {before} to {after}")
        if not refused:
            _check_moderation(action, after, target_client)
    return outcome


def _answers(sent: dict[str, Any], received: dict[str, Any]) -> bool:
    """Whether ``received`` is the answer to ``sent`` (not a late frame of the set-up)."""
    return all(
        received.get(key) == sent[key]
        for key in ("room", "user_id", "message")
        if key in sent and key in received
    )


def _typing_answer(scene: Scene, actor: SyncChatClient, standing: str, start: int) -> dict[str, Any]:
    """A typing event has no answer when relayed: wait for the watcher to see it, or for a refusal."""
    user = scene.user(standing)
    watcher = scene.clients["watcher"]
    if watcher is actor:
        watcher = scene.clients["member"]

    def answer() -> dict[str, Any] | None:
        for f in actor.frames[start:]:
            if f.get("action") == "error":
                return f
        if any(f.get("action") == "typing" and f.get("user_id") == user for f in watcher.frames):
            return {"action": "typing"}
        return None

    found = eventually(answer, timeout_s=15, what=f"typing by {standing}: relayed or refused")
    if found["action"] == "error":
        scene.quiet_at_watcher(lambda f: f.get("action") == "typing" and f.get("user_id") == user)
    return found


def _check_moderation(action: str, after: tuple[str | None, bool], target: SyncChatClient | None) -> None:
    role, banned = after
    wanted = {
        "invite": ("invited", False),
        "kick": (None, False),
        "ban": (None, True),
        "unban": (None, False),
        "setRole": ("admin", False),
    }[action]
    if after != wanted:
        raise Seen(f"{action} allowed, but the target's standing is {(role, banned)}, not {wanted}")
    if action in ("kick", "ban") and target is not None:
        target.wait_action("left", reason="kicked" if action == "kick" else "banned")


@pytest.fixture(scope="module")
def outcomes(local_stack: Any, dynamodb_local: DynamoDBLocal) -> dict[tuple[str, str, str], str]:
    """Every case, run once: scenes concurrently, the cases of one scene in turn."""
    ddb = dynamodb_client(dynamodb_local.endpoint_url)
    results: dict[tuple[str, str, str], str] = {}

    def run_scene(kind: str, actions: tuple[str, ...]) -> None:
        scene = Scene(local_stack.ws_url, ddb, kind)
        cases = [(action, standing) for action in actions for standing in EXPECTED[kind][action]]
        try:
            scene.build()
            for action, standing in cases:
                try:
                    results[(kind, action, standing)] = run_case(scene, action, standing)
                except (Seen, AssertionError) as error:
                    results[(kind, action, standing)] = f"defect: {error}"
        except AssertionError as error:
            for action, standing in cases:
                results.setdefault((kind, action, standing), f"set-up failed: {error}")
        finally:
            for client in scene.clients.values():
                client.close()

    scenes = [(kind, actions) for kind in EXPECTED for actions in SCENES]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda scene: run_scene(*scene), scenes))
    return results


@pytest.mark.parametrize(("kind", "action", "standing"), CASES, ids=["-".join(c) for c in CASES])
def test_who_may_do_what(
    outcomes: dict[tuple[str, str, str], str], kind: str, action: str, standing: str
) -> None:
    """The answer matches the table, and nothing was stored, delivered or changed where it was refused."""
    assert outcomes[(kind, action, standing)] == EXPECTED[kind][action][standing]
