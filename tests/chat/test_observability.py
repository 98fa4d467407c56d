"""Powertools in the handlers: JSON log lines with the Lambda context and the invocation's correlation
keys, and CloudWatch EMF metrics, read from what the handlers print (DynamoDB Local, recording @connections)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext

from serverless_app import definitions
from serverless_app.chat import container
from serverless_app.chat.auth import mint_token
from serverless_app.chat.handlers import authorizer, connect, default, welcome
from serverless_app.chat.settings import Settings
from serverless_app.definitions import Metric
from tests.chat.conftest import connection_id, ws_event
from tests.chat.connections_double import ConnectionsDouble


class Context(LambdaContext):
    """A Lambda context with the fields Powertools reads."""

    def __init__(self) -> None:
        self._function_name = "websocket-default"
        self._memory_limit_in_mb = 256
        self._invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:websocket-default"
        self._aws_request_id = f"lambda-{time.monotonic_ns()}"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 5000


def printed(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log lines, EMF blobs) printed since the last call."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" not in line], [line for line in lines if "_aws" in line]


def metric_values(blobs: list[dict[str, Any]]) -> dict[str, float]:
    """Every metric of valid EMF blobs (namespace ``wschat``, the one dimension ``service``), summed by name."""
    totals: dict[str, float] = {}
    for blob in blobs:
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "wschat"
        assert directive["Dimensions"] == [["service"]] and blob["service"] == "wschat"
        assert isinstance(blob["_aws"]["Timestamp"], int)
        for metric in directive["Metrics"]:
            values = blob[metric["Name"]]
            totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                values if isinstance(values, list) else [values]
            )
            expected_unit = "Milliseconds" if metric["Name"].endswith(("Duration", "Latency")) else "Count"
            assert metric["Unit"] == expected_unit, metric
    return totals


def connect_as(user: str, rooms: str = "general") -> str:
    cid = connection_id()
    event = ws_event("$connect", cid, query={"rooms": rooms}, authorizer={"user_id": user})
    assert connect.handler(event, Context())["statusCode"] == 200
    return cid


def send(cid: str, frame: dict[str, Any] | str, user: str | None = None) -> dict[str, Any]:
    """Invoke $default with one frame; the event (its requestId is the correlation id)."""
    body = frame if isinstance(frame, str) else json.dumps(frame)
    authorizer_context = {"user_id": user} if user else None
    event = ws_event("$default", cid, body=body, authorizer=authorizer_context)
    assert default.handler(event, Context()) == {"statusCode": 200}
    return event


def test_log_lines_carry_the_lambda_context_and_the_invocation_keys(
    lambda_env: ConnectionsDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every line of an invocation has cold_start, function_request_id, the API Gateway requestId as
    correlation_id, the connection id and the route; a sent message adds user, room and message id."""
    alice = connect_as("alice")
    logs, _ = printed(capsys)
    [connected] = [line for line in logs if line["message"] == "connected"]
    assert connected["route"] == "$connect" and connected["connection_id"] == alice
    assert connected["user_id"] == "alice" and isinstance(connected["cold_start"], bool)
    assert connected["level"] == "INFO" and connected["service"] == "wschat"

    event = send(alice, {"action": "sendMessage", "room": "general", "message": "hi"}, user="alice")
    logs, _ = printed(capsys)
    [handled] = [line for line in logs if line["message"] == "frame handled"]
    assert handled["correlation_id"] == event["requestContext"]["requestId"]
    assert handled["connection_id"] == alice and handled["route"] == "$default"
    assert handled["function_request_id"].startswith("lambda-") and handled["cold_start"] is False
    assert handled["function_name"] == "websocket-default"
    [message] = lambda_env.received(alice, "message")
    assert handled["user_id"] == "alice" and handled["room"] == "general"
    assert handled["message_id"] == message["message_id"]


def test_keys_bound_for_one_invocation_do_not_leak_into_the_next(
    lambda_env: ConnectionsDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused frame's invocation has no room or message id left over from the one before."""
    alice = connect_as("alice")
    send(alice, {"action": "sendMessage", "room": "general", "message": "hi"}, user="alice")
    printed(capsys)
    event = send(alice, "not json")
    logs, _ = printed(capsys)
    assert logs and all(line["correlation_id"] == event["requestContext"]["requestId"] for line in logs)
    assert not any("message_id" in line or "room" in line for line in logs)


def test_an_error_frames_request_id_is_in_the_log_line_of_its_invocation(
    lambda_env: ConnectionsDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """The request_id a client reports from an error frame finds the refusal in the logs, with its code."""
    alice = connect_as("alice")
    printed(capsys)
    send(alice, {"action": "sendMessage", "room": "general", "user_id": "bob", "message": "hi"})
    [error] = lambda_env.received(alice, "error")
    logs, blobs = printed(capsys)
    [refused] = [line for line in logs if line["message"] == "frame refused"]
    assert refused["correlation_id"] == error["request_id"]
    assert refused["message"] == "frame refused" and refused["code"] == error["code"] == "forbidden"
    assert refused["connection_id"] == alice
    values = metric_values(blobs)
    assert values[Metric.FRAMES_REFUSED] == 1 and Metric.RATE_LIMITED not in values
    [blob] = blobs
    assert blob["error_code"] == "forbidden"  # metadata, not a dimension


def test_a_delivery_with_a_gone_member_is_counted_by_result(
    lambda_env: ConnectionsDouble, ddb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two members reached, one gone and pruned: one EMF blob with the delivery metrics of the send."""
    alice, bob, carol = (connect_as(user) for user in ("alice", "bob", "carol"))
    connected_long_ago = str(int((time.time() - 3600) * 1000))
    ddb.update_item(
        TableName=definitions.CONNECTIONS_TABLE.name,
        Key={"connection_id": {"S": bob}},
        UpdateExpression="SET connected_at = :t",
        ExpressionAttributeValues={":t": {"N": connected_long_ago}},
    )
    lambda_env.gone.add(bob)
    printed(capsys)
    send(alice, {"action": "sendMessage", "room": "general", "message": "anyone?"}, user="alice")
    logs, blobs = printed(capsys)
    assert len(blobs) == 1
    values = metric_values(blobs)
    assert values[Metric.DELIVERIES_GONE] == 1
    assert values[Metric.CONNECTIONS_PRUNED] == 1
    assert values[Metric.DELIVERIES_SUCCEEDED] >= 3  # the ack and the message to alice, the message to carol
    assert values[Metric.DELIVERIES_FAILED] == values[Metric.DELIVERIES_THROTTLED] == 0
    assert values[Metric.FANOUT_RECIPIENTS] == values[Metric.DELIVERIES_SUCCEEDED] + 1
    assert values[Metric.FANOUT_DURATION] > 0
    assert [line["message"] for line in logs if line["message"] == "frame handled"]
    assert lambda_env.received(carol, "message")


def test_a_rate_limited_send_counts_as_refused_and_rate_limited(
    lambda_env: ConnectionsDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past the burst, the error frame is counted in FramesRefused and RateLimited."""
    strict = dataclasses.replace(Settings.from_env(), message_burst=1, message_rate_per_s=0.01)
    container.reset(override=strict)
    alice = connect_as("alice")
    send(alice, {"action": "sendMessage", "room": "general", "message": "one"}, user="alice")
    printed(capsys)
    send(alice, {"action": "sendMessage", "room": "general", "message": "two"}, user="alice")
    [error] = lambda_env.received(alice, "error")
    assert error["code"] == "rate_limited"
    logs, blobs = printed(capsys)
    values = metric_values(blobs)
    assert values[Metric.FRAMES_REFUSED] == values[Metric.RATE_LIMITED] == 1
    assert blobs[0]["error_code"] == "rate_limited"
    assert any(
        line["code"] == "rate_limited" and line["correlation_id"] == error["request_id"] for line in logs
    )


def test_refused_tokens_and_identities_are_auth_failures(
    lambda_env: ConnectionsDouble, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The authorizer refusing a token, and $connect refusing a connection without a verified identity,
    each count one AuthFailures; an accepted token counts none."""
    monkeypatch.setenv("TOKEN_SECRET", "s" * 64)
    authorizer._verifier.cache_clear()
    cid = connection_id()
    request_event = ws_event("$connect", cid, query={"token": "not-a-jwt"})
    request_event.update(
        {"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:0:abc/prod/$connect"}
    )
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorizer.handler(request_event, Context())
    logs, blobs = printed(capsys)
    assert metric_values(blobs) == {Metric.AUTH_FAILURES: 1}
    [refused] = [line for line in logs if line["message"] == "token refused"]
    assert refused["correlation_id"] == request_event["requestContext"]["requestId"]
    assert refused["connection_id"] == cid and refused["route"] == "$connect"

    request_event["queryStringParameters"] = {"token": mint_token("alice", "s" * 64)}
    assert authorizer.handler(request_event, Context())["principalId"] == "alice"
    logs, blobs = printed(capsys)
    assert blobs == [] and [line["user_id"] for line in logs if line["message"] == "token accepted"] == [
        "alice"
    ]

    monkeypatch.setenv("AUTH_MODE", "token")
    assert connect.handler(ws_event("$connect", connection_id()), Context())["statusCode"] == 401
    _, blobs = printed(capsys)
    assert metric_values(blobs) == {Metric.AUTH_FAILURES: 1}


def test_the_welcome_reports_its_latency_and_carries_the_connects_correlation_id(
    lambda_env: ConnectionsDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """WelcomeLatency runs from connectedAt to the welcome posted; the welcome's log lines carry the
    $connect request id it was scheduled by."""
    alice = connection_id()
    payload = {
        "connection_id": alice,
        "callback_url": lambda_env.url,
        "welcome": {
            "action": "welcome",
            "connection_id": alice,
            "user_id": "alice",
            "rooms": [],
            "message": "hi",
        },
        "announcements": [],
        "request_id": "connect-request-1",
        "user_id": "alice",
        "connected_at_ms": int(time.time() * 1000) - 250,
    }
    assert welcome.handler(payload, Context()) == {"welcomed": True}
    logs, blobs = printed(capsys)
    values = metric_values(blobs)
    assert 250 <= values[Metric.WELCOME_LATENCY] < 10_000
    assert values[Metric.DELIVERIES_SUCCEEDED] == 1
    [welcomed] = [line for line in logs if line["message"] == "welcomed"]
    assert welcomed["correlation_id"] == "connect-request-1" and welcomed["connection_id"] == alice
    assert welcomed["user_id"] == "alice"


def test_an_invocation_without_metrics_prints_no_emf_and_no_warning(
    lambda_env: ConnectionsDouble, capsys: pytest.CaptureFixture[str]
) -> None:
    """$connect records no metric: no EMF blob, and no "No application metrics" warning (an error here)."""
    connect_as("alice")
    _, blobs = printed(capsys)
    assert blobs == []
