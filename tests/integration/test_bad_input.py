"""Every malformed frame, end to end through the local runtime: one error to the sender, nothing stored, nobody else affected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import websocket

from serverless_app.definitions import CONNECTIONS_TABLE, MESSAGES_TABLE, ROOMS_TABLE
from serverless_app.local.dynamodb_local import dynamodb_client
from tests.integration.clients import ChatClient, unique

CURSOR = "2026-11-26T17:41:32.123456Z#" + "0" * 32

BAD_FRAMES: list[tuple[str, str, str]] = [
    ("not JSON", "hello there", "invalid_json"),
    ("JSON that is not an object", "[1, 2, 3]", "invalid_frame"),
    ("JSON string", '"sendMessage"', "invalid_frame"),
    ("no action", '{"room": "general", "message": "hi"}', "invalid_frame"),
    ("unknown action", '{"action": "dropTables"}', "unknown_action"),
    ("missing message", '{"action": "sendMessage", "room": "ROOM"}', "invalid_field"),
    (
        "message of the wrong type",
        '{"action": "sendMessage", "room": "ROOM", "message": {"html": 1}}',
        "invalid_field",
    ),
    ("empty message", '{"action": "sendMessage", "room": "ROOM", "message": ""}', "invalid_field"),
    (
        "message over 4,000 characters",
        json.dumps({"action": "sendMessage", "room": "ROOM", "message": "x" * 4001}),
        "invalid_field",
    ),
    (
        "control characters",
        '{"action": "sendMessage", "room": "ROOM", "message": "bell\\u0007"}',
        "invalid_field",
    ),
    (
        "room outside the pattern",
        '{"action": "sendMessage", "room": "../etc", "message": "hi"}',
        "invalid_field",
    ),
    (
        "user id outside the pattern",
        '{"action": "sendMessage", "room": "ROOM", "user_id": "<b>", "message": "hi"}',
        "invalid_field",
    ),
    ("unknown field", '{"action": "joinRoom", "room": "ROOM", "role": "admin"}', "invalid_field"),
    ("huge history limit", '{"action": "getHistory", "room": "ROOM", "limit": 1000000000}', "invalid_field"),
    (
        "forged cursor",
        '{"action": "getHistory", "room": "ROOM", "before": "#\\" OR \\"1\\"=\\"1"}',
        "invalid_cursor",
    ),
    (
        "both cursors",
        json.dumps({"action": "getHistory", "room": "ROOM", "before": CURSOR, "after": CURSOR}),
        "invalid_field",
    ),
]


def _state(endpoint: str, room: str, *clients: ChatClient) -> dict[str, Any]:
    """Every item this test's room and connections own (other tests' connections come and go meanwhile)."""
    client = dynamodb_client(endpoint)

    def partition(table: str) -> list[Any]:
        items = client.query(
            TableName=table, KeyConditionExpression="room = :r", ExpressionAttributeValues={":r": {"S": room}}
        )["Items"]
        return sorted(items, key=repr)

    connection_ids = [c.wait_action("welcome")["connection_id"] for c in clients]
    connections = [
        client.get_item(TableName=CONNECTIONS_TABLE.name, Key={"connection_id": {"S": cid}}).get("Item")
        for cid in connection_ids
    ]
    return {
        "messages": partition(MESSAGES_TABLE.name),
        "rooms": partition(ROOMS_TABLE.name),
        "connections": connections,
    }


@pytest.fixture
def pair(local_stack: Any) -> Iterator[tuple[ChatClient, ChatClient, str]]:
    room = unique("bad")
    sender = ChatClient(local_stack.ws_url, user_id="sender", rooms=room)
    bystander = ChatClient(local_stack.ws_url, user_id="bystander", rooms=room)
    for client in (sender, bystander):
        client.wait_action("welcome")
    sender.wait_action(
        "presence", user_id="bystander", event="join"
    )  # let the connect-time announcements finish
    yield sender, bystander, room
    sender.close()
    bystander.close()


@pytest.mark.parametrize(
    ("body", "code"), [(b, c) for _, b, c in BAD_FRAMES], ids=[n for n, _, _ in BAD_FRAMES]
)
def test_a_bad_frame_gets_one_error_and_changes_nothing(
    pair: Any, local_stack: Any, body: str, code: str
) -> None:
    """The sender gets exactly one error with the documented code; the connection stays open; no item is written; the bystander gets nothing."""
    sender, bystander, room = pair
    bystander.drain(0.3)
    seen_by_bystander = len(bystander.frames)
    before = _state(local_stack.dynamodb_endpoint, room, sender, bystander)
    sender.send_raw(body.replace("ROOM", room))
    error = sender.wait_action("error")
    assert error["code"] == code and error["request_id"] and error["message"]
    sender.drain(0.3)
    assert [f for f in sender.frames if f.get("action") == "error"] == [error]
    assert _state(local_stack.dynamodb_endpoint, room, sender, bystander) == before
    assert len(bystander.drain(0.3)) == seen_by_bystander
    sender.send(action="getPresence", room=room)  # still open and served
    sender.wait_action("presenceList", room=room)


def test_a_user_id_that_is_not_the_senders_is_refused_only_with_a_token(pair: Any) -> None:
    """Without authentication the seed's behaviour holds: the frame's user_id is taken as given."""
    sender, bystander, room = pair
    sender.send(action="sendMessage", room=room, user_id="someone-else", message="seed mode")
    assert bystander.wait_action("message", message="seed mode")["user_id"] == "someone-else"


@pytest.mark.parametrize(
    ("payload", "code"),
    [("x" * (32 * 1024 + 1), 1009), ("y" * (128 * 1024 + 1), 1009), (b"\x00\x01binary", 1003)],
    ids=["frame over 32 KB", "message over 128 KB", "binary frame"],
)
def test_oversize_and_binary_frames_close_the_connection_like_api_gateway(
    pair: Any, payload: Any, code: int
) -> None:
    """API Gateway closes with 1009 for oversize frames and 1003 for binary ones; the bystander is unaffected."""
    sender, bystander, room = pair
    if isinstance(payload, bytes):
        sender.ws.send_binary(payload)
    elif len(payload) > 64 * 1024:
        sender.ws.send_frame(
            websocket.ABNF.create_frame(payload[: 30 * 1024], websocket.ABNF.OPCODE_TEXT, fin=0)
        )
        for start in range(30 * 1024, len(payload), 30 * 1024):
            chunk = payload[start : start + 30 * 1024]
            last = start + 30 * 1024 >= len(payload)
            sender.ws.send_frame(
                websocket.ABNF.create_frame(chunk, websocket.ABNF.OPCODE_CONT, fin=int(last))
            )
    else:
        sender.ws.send(payload)
    sender.ws.settimeout(10)
    opcode, frame = sender.ws.recv_data_frame(control_frame=True)
    while opcode != websocket.ABNF.OPCODE_CLOSE:
        opcode, frame = sender.ws.recv_data_frame(control_frame=True)
    assert int.from_bytes(frame.data[:2], "big") == code
    bystander.send(action="sendMessage", room=room, message="still here")
    bystander.wait_action("message", message="still here")
