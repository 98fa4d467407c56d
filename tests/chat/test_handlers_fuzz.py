"""Property: whatever a client sends, the $default handler answers with one documented error or a valid reply, and bad frames write nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from serverless_app.chat.errors import ERROR_CODES, FrameError
from serverless_app.chat.handlers import connect, default
from serverless_app.chat.protocol import CLIENT_ACTIONS, parse_client_frame, validate_server_frame
from tests.chat.conftest import chat_items, connection_id, ws_event
from tests.chat.connections_double import ConnectionsDouble

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
frames = st.one_of(
    st.binary(max_size=100).map(lambda b: b.decode("utf-8", errors="replace")),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"action": st.sampled_from([*CLIENT_ACTIONS, "nope"])},
        optional={
            "room": json_values,
            "message": json_values,
            "user_id": json_values,
            "limit": json_values,
            "after": json_values,
            "client_msg_id": json_values,
        },
    ).map(json.dumps),
)


def _snapshot(ddb: Any) -> dict[str, list[Any]]:
    return {table: sorted(map(repr, items)) for table, items in chat_items(ddb).items()}


@pytest.mark.slow
def test_arbitrary_frames_never_escape_and_refusals_write_nothing(
    lambda_env: ConnectionsDouble, ddb: Any
) -> None:
    """200 generated frames: the handler never raises, every reply follows the schema, and each invalid frame gets exactly its one error and changes nothing."""
    sender, watcher = connection_id(), connection_id()
    for cid, user in ((sender, "alice"), (watcher, "bob")):
        connect.handler(ws_event("$connect", cid, authorizer={"user_id": user}), None)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=frames)
    def check(body: str) -> None:
        lambda_env.clear()
        before = _snapshot(ddb)
        assert default.handler(ws_event("$default", sender, body=body), None) == {"statusCode": 200}
        replies = lambda_env.received(sender)
        for frame in replies:
            validate_server_frame(frame)
        try:
            parse_client_frame(body)
        except FrameError as refusal:
            assert [f["code"] for f in replies] == [refusal.code]
            assert refusal.code in ERROR_CODES
            assert _snapshot(ddb) == before
            assert lambda_env.received(watcher) == []

    check()
