"""The Lambda handlers end to end: API Gateway events in, DynamoDB Local, frames out through a recording @connections API."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app.chat import container, errors
from serverless_app.chat.auth import mint_token
from serverless_app.chat.handlers import authorizer, connect, default, disconnect, welcome
from serverless_app.chat.protocol import validate_server_frame
from serverless_app.definitions import CONNECTIONS_TABLE, MESSAGES_TABLE, ROOMS_TABLE
from tests.chat.conftest import chat_items, connection_id
from tests.chat.connections_double import ConnectionsDouble
from tests.support.bad_frames import HANDLER, bad_frames

Event = Callable[..., dict[str, Any]]


def item_counts(ddb: Any) -> dict[str, int]:
    return {table: len(items) for table, items in chat_items(ddb).items()}


def connect_as(make_event: Event, user: str, rooms: str = "general") -> str:
    cid = connection_id()
    response = connect.handler(
        make_event("$connect", cid, query={"rooms": rooms}, authorizer={"user_id": user}), None
    )
    assert response["statusCode"] == 200
    return cid


def say(make_event: Event, cid: str, frame: dict[str, Any] | str) -> None:
    body = frame if isinstance(frame, str) else json.dumps(frame)
    assert default.handler(make_event("$default", cid, body=body), None) == {"statusCode": 200}


def test_the_seed_flow_stores_and_broadcasts_the_seed_message(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connect without auth, send the seed's frame: the sender receives the seed's outgoing message and it is stored."""
    monkeypatch.setenv("AUTH_MODE", "none")
    cid = connection_id()
    assert connect.handler(make_event("$connect", cid), None)["statusCode"] == 200
    say(
        make_event,
        cid,
        {"action": "sendMessage", "room": "general", "user_id": "user123", "message": "Hello, world!"},
    )
    [frame] = lambda_env.received(cid, "message")
    validate_server_frame(frame)
    assert {k: frame[k] for k in ("action", "room", "user_id", "message")} == {
        "action": "message",
        "room": "general",
        "user_id": "user123",
        "message": "Hello, world!",
    }
    assert frame["timestamp"].endswith("Z")
    stored = ddb.query(
        TableName=MESSAGES_TABLE.name,
        IndexName="user-timestamp-index",
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": "user123"}},
    )["Items"]
    assert [i["message"]["S"] for i in stored] == ["Hello, world!"]
    assert lambda_env.unsigned == 0


def test_token_mode_refuses_a_connection_without_a_verified_identity(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the authorizer's context, $connect answers 401 and writes nothing."""
    monkeypatch.setenv("AUTH_MODE", "token")
    response = connect.handler(make_event("$connect", connection_id(), query={"user_id": "mallory"}), None)
    assert response["statusCode"] == 401
    assert item_counts(ddb) == {CONNECTIONS_TABLE.name: 0, MESSAGES_TABLE.name: 0, ROOMS_TABLE.name: 0}


def test_invalid_rooms_in_the_connect_url_reject_the_handshake(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """A bad room name answers 400 and writes nothing."""
    event = make_event(
        "$connect", connection_id(), query={"rooms": "ok,<bad>"}, authorizer={"user_id": "alice"}
    )
    assert connect.handler(event, None)["statusCode"] == 400
    assert sum(item_counts(ddb).values()) == 0


CONNECT_REFUSALS: list[tuple[type[errors.ChatError], int]] = [
    (errors.InvalidJson, 400),
    (errors.InvalidFrame, 400),
    (errors.UnknownAction, 400),
    (errors.InvalidField, 400),
    (errors.InvalidCursor, 400),
    (errors.RateLimited, 429),
    (errors.Forbidden, 500),
    (errors.NotFound, 500),
    (errors.RoomExists, 500),
    (errors.TokenExpired, 500),
    (errors.UnknownConnection, 500),
    (errors.StorageUnavailable, 500),
    (errors.ChatError, 500),
]


def test_every_chat_error_has_a_connect_refusal_status() -> None:
    named = {getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)}
    assert named - {errors.FrameError} == {kind for kind, _ in CONNECT_REFUSALS}


@pytest.mark.parametrize(("kind", "status"), CONNECT_REFUSALS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_chat_error_refuses_the_handshake_by_its_class(kind: type[errors.ChatError], status: int) -> None:
    """A frame error (an unusable connect URL) is 400, a limit 429, anything else 500."""
    error = errors.RateLimited("x", retry_after_ms=1) if kind is errors.RateLimited else kind("x")
    assert connect.refusal_status(error) == status


@pytest.mark.parametrize(("body", "code"), bad_frames(HANDLER, room="general"))
def test_a_bad_frame_gets_one_error_to_its_sender_and_changes_nothing(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any, body: str, code: str
) -> None:
    """One error frame with the documented code to the sender only; no item written; others get nothing."""
    alice = connect_as(make_event, "alice")
    bob = connect_as(make_event, "bob")
    before = item_counts(ddb)
    lambda_env.clear()
    say(make_event, alice, body)
    [error] = lambda_env.received(alice)
    validate_server_frame(error)
    assert error["action"] == "error" and error["code"] == code and error["request_id"].startswith("req-")
    assert lambda_env.received(bob) == []
    assert item_counts(ddb) == before


def test_a_gone_connection_is_pruned_and_everyone_else_still_receives(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """A 410 during fan-out deletes the stale connection's records (never the sender's) and the room hears it left."""
    alice, bob, carol = (connect_as(make_event, u) for u in ("alice", "bob", "carol"))
    age(ddb, bob, seconds=3600)
    lambda_env.gone.add(bob)
    say(make_event, alice, {"action": "sendMessage", "room": "general", "message": "anyone?"})
    assert [f["message"] for f in lambda_env.received(carol, "message")] == ["anyone?"]
    assert [f["message"] for f in lambda_env.received(alice, "message")] == ["anyone?"]
    assert (
        ddb.get_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": bob}}).get("Item") is None
    )
    assert (
        ddb.get_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": alice}}).get("Item")
        is not None
    )
    assert container.service().recipients(_room("general")) and bob not in container.service().recipients(
        _room("general")
    )
    assert {
        "action": "presence",
        "room": "general",
        "user_id": "bob",
        "event": "leave",
    } in lambda_env.received(carol)


def age(ddb: Any, connection: str, *, seconds: int) -> None:
    """Pretend the connection was opened ``seconds`` ago."""
    connected_at = int((time.time() - seconds) * 1000)
    ddb.update_item(
        TableName=CONNECTIONS_TABLE.name,
        Key={"connection_id": {"S": connection}},
        UpdateExpression="SET connected_at = :t",
        ExpressionAttributeValues={":t": {"N": str(connected_at)}},
    )


def test_a_connection_still_connecting_is_not_pruned_by_a_410(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """API Gateway answers 410 while $connect runs: a brand-new connection's records survive that."""
    alice, bob = connect_as(make_event, "alice"), connect_as(make_event, "bob")
    lambda_env.gone.add(bob)
    say(make_event, alice, {"action": "sendMessage", "room": "general", "message": "early"})
    assert (
        ddb.get_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": bob}}).get("Item")
        is not None
    )
    assert bob in container.service().recipients(_room("general"))


def test_a_membership_without_a_connection_record_is_pruned(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """A room member whose connection record is already gone (a missed $disconnect) leaves the room on the next 410."""
    alice, ghost = connect_as(make_event, "alice"), connect_as(make_event, "ghost")
    ddb.delete_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": ghost}})
    lambda_env.gone.add(ghost)
    say(make_event, alice, {"action": "sendMessage", "room": "general", "message": "who is here?"})
    assert ghost not in container.service().recipients(_room("general"))
    assert {
        "action": "presence",
        "room": "general",
        "user_id": "ghost",
        "event": "leave",
    } in lambda_env.received(alice)


def test_concurrent_sends_within_the_burst_are_all_stored(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """Ten frames from one connection handled at once (as concurrent Lambdas would) are all stored: the bucket's optimistic writes retry."""
    from concurrent.futures import ThreadPoolExecutor

    alice = connect_as(make_event, "alice")
    frames = [
        {"action": "sendMessage", "room": "general", "message": f"m{i}", "client_msg_id": f"c{i}"}
        for i in range(10)
    ]
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda f: say(make_event, alice, f), frames))
    assert sorted(f["client_msg_id"] for f in lambda_env.received(alice, "ack")) == sorted(
        f"c{i}" for i in range(10)
    )
    assert item_counts(ddb)[MESSAGES_TABLE.name] == 10


def _room(room: str) -> Any:
    from serverless_app.chat.service import ToRoom

    return ToRoom(room, {})


def test_throttled_posts_are_retried_with_backoff(lambda_env: ConnectionsDouble, make_event: Event) -> None:
    """A member whose post answers 429 twice still receives the message exactly once."""
    alice, bob = connect_as(make_event, "alice"), connect_as(make_event, "bob")
    lambda_env.throttle[bob] = 2
    say(make_event, alice, {"action": "sendMessage", "room": "general", "message": "again"})
    assert [f["message"] for f in lambda_env.received(bob, "message")] == ["again"]


def test_transient_failures_are_retried_and_the_frame_still_arrives(
    lambda_env: ConnectionsDouble, make_event: Event
) -> None:
    """A member whose post answers 503 twice, and one whose connection is cut without an answer, still receive the message."""
    alice, bob, carol = (connect_as(make_event, u) for u in ("alice", "bob", "carol"))
    lambda_env.fail[bob] = 2
    lambda_env.drop[carol] = 1
    say(make_event, alice, {"action": "sendMessage", "room": "general", "message": "through"})
    assert [f["message"] for f in lambda_env.received(bob, "message")] == ["through"]
    assert [f["message"] for f in lambda_env.received(carol, "message")] == ["through"]


def test_fan_out_reaches_every_member_of_a_large_room_exactly_once(
    lambda_env: ConnectionsDouble, make_event: Event
) -> None:
    """200 members each receive the message once; a member of another room receives nothing."""
    members = [connect_as(make_event, f"u{i}") for i in range(200)]
    outsider = connect_as(make_event, "outsider", rooms="elsewhere")
    lambda_env.clear()
    say(make_event, members[0], {"action": "sendMessage", "room": "general", "message": "all hands"})
    for member in members:
        assert [f["message"] for f in lambda_env.received(member, "message")] == ["all hands"]
    assert lambda_env.received(outsider) == []


READ_OPERATIONS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


def _read_units(client: Any) -> Callable[[], float]:
    """Ask DynamoDB for consumed capacity on every call of ``client`` and sum the units of reads."""
    total = [0.0]

    def ask(params: dict[str, Any], **_: Any) -> None:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def add(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in READ_OPERATIONS:
            capacity = parsed.get("ConsumedCapacity") or []
            for entry in capacity if isinstance(capacity, list) else [capacity]:
                total[0] += float(entry.get("CapacityUnits", 0))

    client.meta.events.register("provide-client-params.dynamodb.*", ask)
    client.meta.events.register("after-call.dynamodb.*", add)
    return lambda: total[0]


def test_read_cost_per_message_does_not_grow_with_the_number_of_connections(
    lambda_env: ConnectionsDouble, make_event: Event
) -> None:
    """With the room fixed at 10 members, read units per message are the same at 10 and at 100 total connections."""
    reads = _read_units(container.dynamodb_client())
    room = [connect_as(make_event, f"m{i}", rooms="fixed") for i in range(10)]

    def per_message() -> float:
        start = reads()
        for i in range(5):
            say(make_event, room[i], {"action": "sendMessage", "room": "fixed", "message": "cost"})
        return (reads() - start) / 5

    small = per_message()
    for i in range(90):
        connect_as(make_event, f"other{i}", rooms=f"other{i % 9}")
    large = per_message()
    assert small > 0
    assert large <= small * 1.2


def test_disconnect_removes_every_record_and_is_idempotent(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """After $disconnect (even twice) no record of the connection remains and the room hears `leave`."""
    alice, bob = connect_as(make_event, "alice", rooms="general,random"), connect_as(make_event, "bob")
    for _ in range(2):
        assert disconnect.handler(make_event("$disconnect", alice), None) == {"statusCode": 200}
    connections = ddb.scan(TableName=CONNECTIONS_TABLE.name)["Items"]
    records = [i["connection_id"]["S"] for i in connections if "user_id" in i and "live" not in i]
    assert records == [bob]
    assert {
        "action": "presence",
        "room": "general",
        "user_id": "alice",
        "event": "leave",
    } in lambda_env.received(bob)
    assert (
        ddb.scan(
            TableName=ROOMS_TABLE.name,
            FilterExpression="contains(sk, :a)",
            ExpressionAttributeValues={":a": {"S": alice}},
        )["Items"]
        == []
    )


class _Context(LambdaContext):
    """Only the remaining time (Powertools' fields are absent, as when a test passes None)."""

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 5000


def test_welcome_waits_until_the_connection_is_live_then_posts(
    lambda_env: ConnectionsDouble, make_event: Event
) -> None:
    """The welcome function polls GetConnection through 410s, then sends welcome and the presence announcement."""
    bob = connect_as(make_event, "bob")
    alice = connection_id()
    lambda_env.gone.add(alice)  # $connect has not returned yet
    payload = {
        "connection_id": alice,
        "callback_url": lambda_env.url,
        "welcome": {
            "action": "welcome",
            "connection_id": alice,
            "user_id": "alice",
            "rooms": ["general"],
            "message": "hi",
        },
        "announcements": [
            {
                "room": "general",
                "frame": {"action": "presence", "room": "general", "user_id": "alice", "event": "join"},
                "exclude": [alice],
            }
        ],
    }
    import threading

    threading.Timer(0.2, lambda: lambda_env.gone.discard(alice)).start()
    assert welcome.handler(payload, _Context()) == {"welcomed": True}
    assert [f["action"] for f in lambda_env.received(alice)] == ["welcome"]
    assert lambda_env.received(bob, "presence")[-1]["user_id"] == "alice"
    assert sum(1 for method, cid in lambda_env.requests if method == "GET" and cid == alice) >= 2


def test_welcome_gives_up_quietly_on_a_connection_that_never_lives(lambda_env: ConnectionsDouble) -> None:
    """A connection that closed during $connect gets no welcome and the function ends."""
    gone = connection_id()
    lambda_env.gone.add(gone)
    assert welcome.wait_until_live(container.connections_api(lambda_env.url), gone, budget_s=0.3) is False


def test_storage_failure_is_reported_to_the_sender(
    lambda_env: ConnectionsDouble, make_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With DynamoDB unreachable, the sender gets storage_unavailable instead of silence."""
    alice = connect_as(make_event, "alice")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
    container.reset()
    say(make_event, alice, {"action": "sendMessage", "room": "general", "message": "lost?"})
    [error] = lambda_env.received(alice)
    assert error["code"] == "storage_unavailable"


# --- the authorizer ------------------------------------------------------------------

SECRET = "s" * 64


@pytest.fixture
def token_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TOKEN_SECRET", SECRET)
    authorizer._verifier.cache_clear()
    return SECRET


def _authorize(token: str | None) -> dict[str, Any]:
    query = {"token": token} if token is not None else {}
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123:abc/prod/$connect",
        "queryStringParameters": query,
    }
    return authorizer.handler(event, None)


def test_a_valid_token_is_allowed_and_its_user_reaches_the_context(token_secret: str) -> None:
    """The policy allows $connect and the context carries the user id."""
    result = _authorize(mint_token("alice", token_secret))
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["user_id"] == "alice" and result["principalId"] == "alice"


def _signed(key: str | None = SECRET, algorithm: str = "HS256", **overrides: Any) -> str:
    """A token with valid claims except for ``overrides`` (``None`` drops a claim)."""
    now = int(time.time())
    claims = {"sub": "alice", "iss": "wschat", "aud": "wschat", "iat": now, "exp": now + 60, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        "not-a-jwt",
        mint_token("alice", "wrong-secret" * 6),
        mint_token("alice", SECRET, ttl_s=-10),
        _signed(key=None, algorithm="none"),
        _signed(algorithm="HS512"),
        _signed(iss="other"),
        _signed(sub="a/b"),
        _signed(sub=None),
    ],
    ids=[
        "missing",
        "empty",
        "malformed",
        "wrong-signature",
        "expired",
        "alg-none",
        "other-algorithm",
        "other-issuer",
        "bad-subject",
        "no-subject",
    ],
)
def test_bad_tokens_are_unauthorized(token_secret: str, token: str | None) -> None:
    """Every missing, malformed, expired, wrongly signed or wrongly shaped token raises Unauthorized (API Gateway: 401)."""
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        _authorize(token)


def test_a_refused_send_names_its_client_msg_id(lambda_env: ConnectionsDouble, make_event: Event) -> None:
    """An error answering a valid but refused sendMessage carries that frame's client_msg_id."""
    alice = connect_as(make_event, "alice")
    say(
        make_event,
        alice,
        {
            "action": "sendMessage",
            "room": "general",
            "user_id": "bob",
            "message": "x",
            "client_msg_id": "m-7",
        },
    )
    [error] = lambda_env.received(alice)
    validate_server_frame(error)
    assert error["code"] == "forbidden" and error["client_msg_id"] == "m-7"


def test_two_hundred_concurrent_sends_are_all_stored_and_each_delivered_to_every_member(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any
) -> None:
    """20 members each send 10 messages at once (200 concurrent $default invocations): 200 items, and every member receives all 200 exactly once."""
    from concurrent.futures import ThreadPoolExecutor

    members = [connect_as(make_event, f"u{i}") for i in range(20)]
    lambda_env.clear()
    sends = [(cid, f"{cid}:{n}") for cid in members for n in range(10)]
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda s: say(
                    make_event, s[0], {"action": "sendMessage", "room": "general", "message": s[1]}
                ),
                sends,
            )
        )
    assert item_counts(ddb)[MESSAGES_TABLE.name] == 200
    expected = sorted(text for _, text in sends)
    for member in members:
        assert sorted(f["message"] for f in lambda_env.received(member, "message")) == expected


def test_a_connect_that_fails_halfway_leaves_no_connection_record(
    lambda_env: ConnectionsDouble, make_event: Event, ddb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If storage fails after the connection record was written, the handshake is refused with 500 and the record is removed."""
    monkeypatch.setenv("ROOMS_TABLE", "websocket-rooms-missing")
    container.reset()
    cid = connection_id()
    response = connect.handler(make_event("$connect", cid, authorizer={"user_id": "alice"}), None)
    assert response["statusCode"] == 500
    assert (
        ddb.get_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": cid}}).get("Item") is None
    )


def test_a_welcome_that_cannot_be_scheduled_does_not_refuse_the_connection(
    lambda_env: ConnectionsDouble, make_event: Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the Lambda API unreachable, $connect still succeeds: the connection works without its welcome."""
    monkeypatch.setenv("WELCOME_FUNCTION", "websocket-welcome")
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", "http://127.0.0.1:9")
    container.reset()
    assert connect.handler(
        make_event("$connect", connection_id(), authorizer={"user_id": "alice"}), None
    ) == {"statusCode": 200}


def test_a_refusal_names_the_action_room_and_client_msg_id_it_refuses(
    lambda_env: ConnectionsDouble, make_event: Event
) -> None:
    """A client with several requests in flight can tell which one an error answers."""
    carol = connect_as(make_event, "carol")
    say(make_event, carol, {"action": "getHistory", "room": "elsewhere"})
    say(
        make_event,
        carol,
        {"action": "sendMessage", "room": "general", "user_id": "x", "message": "m", "client_msg_id": "k1"},
    )
    errors = [f for f in lambda_env.received(carol) if f["action"] == "error"]
    for error in errors:
        validate_server_frame(error)
    assert [(e["refused_action"], e.get("room"), e.get("client_msg_id")) for e in errors] == [
        ("getHistory", "elsewhere", None),
        ("sendMessage", "general", "k1"),
    ]
