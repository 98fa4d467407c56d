"""The event builders: API Gateway's shapes, ids and time formats (pure, no I/O)."""

from __future__ import annotations

import re
from typing import Any

from serverless_app.local import gateway_events
from serverless_app.local.throttle import TokenBucket

CONTEXT: dict[str, Any] = {
    "connection_id": "L0SM9cOFvHcCIhw=",
    "connected_at": 1_700_000_000_000,
    "domain_name": "127.0.0.1:3001",
    "stage": "prod",
    "api_id": "l0ca1wsapi",
    "identity": {"sourceIp": "127.0.0.1", "userAgent": "test"},
}


def test_ids_look_like_api_gateway_ids() -> None:
    """16 characters of URL-safe base64 ending in "=" (like ``L0SM9cOFvHcCIhw=``), all different."""
    ids = {gateway_events.new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{15}=", value) for value in ids)  # URL-safe, as on AWS


def test_request_time_is_clf_utc() -> None:
    """``26/Nov/2026:17:41:32 +0000``."""
    assert gateway_events.request_time(1_795_714_892_000) == "26/Nov/2026:17:41:32 +0000"


def test_connect_event_has_headers_and_query_views() -> None:
    """Single-value views keep the last value; multi-value views keep all; no messageId on CONNECT."""
    event = gateway_events.connect_event(
        headers={"Host": ["h"], "X-Multi": ["a", "b"]}, query={"rooms": ["x", "y"]}, **CONTEXT
    )
    assert event["headers"] == {"Host": "h", "X-Multi": "b"}
    assert event["multiValueHeaders"]["X-Multi"] == ["a", "b"]
    assert event["queryStringParameters"] == {"rooms": "y"}
    assert event["multiValueQueryStringParameters"] == {"rooms": ["x", "y"]}
    context = event["requestContext"]
    assert context["eventType"] == "CONNECT" and context["routeKey"] == "$connect"
    assert context["messageDirection"] == "IN" and "messageId" not in context
    assert context["extendedRequestId"] and context["requestId"]
    assert event["isBase64Encoded"] is False


def test_connect_event_without_query_omits_query_views() -> None:
    event = gateway_events.connect_event(headers={}, query={}, **CONTEXT)
    assert "queryStringParameters" not in event and "multiValueQueryStringParameters" not in event


def test_message_event_carries_body_message_id_and_authorizer() -> None:
    event = gateway_events.message_event(
        route_key="$default", body="hi", authorizer={"principalId": "u"}, **CONTEXT
    )
    assert event["body"] == "hi" and event["isBase64Encoded"] is False
    assert event["requestContext"]["messageId"]
    assert event["requestContext"]["authorizer"] == {"principalId": "u"}


def test_disconnect_event_carries_status_and_reason() -> None:
    event = gateway_events.disconnect_event(status_code=1001, reason="Going away", host="h:1", **CONTEXT)
    context = event["requestContext"]
    assert (context["disconnectStatusCode"], context["disconnectReason"]) == (1001, "Going away")
    assert context["eventType"] == "DISCONNECT"


def test_authorizer_event_is_request_type_with_method_arn() -> None:
    connect = gateway_events.connect_event(headers={}, query={"token": ["t"]}, **CONTEXT)
    event = gateway_events.authorizer_event(connect, region="us-east-1", account_id="000000000000")
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:us-east-1:000000000000:l0ca1wsapi/prod/$connect"
    assert event["queryStringParameters"] == {"token": "t"}


def test_token_bucket_allows_burst_then_refills() -> None:
    """Burst tokens up front, then ``rate`` per second."""
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=3, clock=lambda: now[0])
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    now[0] = 0.5
    assert bucket.try_acquire() and not bucket.try_acquire()
    assert bucket.throttled == 2


def test_token_bucket_reserve_paces_instead_of_refusing() -> None:
    """``reserve`` takes a token on credit: the burst is free, then each one waits 1/rate more."""
    now = [0.0]
    bucket = TokenBucket(rate=2, burst=2, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.5, 1.0]
    now[0] = 1.0  # the two reserved tokens are paid back: the bucket is empty, not in debt
    assert bucket.reserve() == 0.5
    assert bucket.throttled == 0
