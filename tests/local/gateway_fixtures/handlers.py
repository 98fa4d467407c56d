"""Tiny Lambda handlers the gateway tests map onto the stack's functions (via handler overrides).

They run in real worker processes and talk back through the gateway's ``@connections`` API with
the unmodified boto3 client, exactly like the chat handlers do. Every event they see is appended
as one JSON line to ``$GATEWAY_EVENTS_FILE`` so tests can assert what the gateway sent.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from typing import Any

import boto3

__all__ = ["authorizer", "connect", "default", "disconnect", "echo_route"]


@cache
def _client() -> Any:
    return boto3.client("apigatewaymanagementapi")  # endpoint from AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI


def _record(event: Any) -> None:
    with open(os.environ["GATEWAY_EVENTS_FILE"], "a", encoding="utf-8") as log:
        log.write(json.dumps(event) + "\n")


def _post(connection_id: str, message: Any) -> None:
    _client().post_to_connection(ConnectionId=connection_id, Data=json.dumps(message).encode())


def connect(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    """``?mode=reject&status=N`` → statusCode N; ``raise`` → exception; ``probe`` → post during
    $connect and accept only if that was 410; ``protocol`` → return ``Sec-WebSocket-Protocol:
    ?protocol=`` if the client offered it (or ``always=1``) and other headers; anything else → accept."""
    _record(event)
    query = event.get("queryStringParameters") or {}
    mode = query.get("mode")
    if mode == "reject":
        return {"statusCode": int(query.get("status", "401")), "body": "no"}
    if mode == "raise":
        raise RuntimeError("connect failed")
    if mode == "probe":
        try:
            _post(event["requestContext"]["connectionId"], {"too": "early"})
        except _client().exceptions.GoneException:
            return {"statusCode": 200}
        return {"statusCode": 418}
    if mode == "none":
        return None
    if mode == "protocol":  # choose ?protocol= if the client offered it (AWS's documented example)
        wanted = query.get("protocol", "chat")
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        offered = [p.strip() for p in str(headers.get("sec-websocket-protocol", "")).split(",")]
        if wanted in offered or query.get("always") == "1":
            return {
                "statusCode": 200,
                "headers": {"Sec-WebSocket-Protocol": wanted, "X-Chat-Server": "local"},
                "multiValueHeaders": {"X-Chat-Tag": ["a", "b"]},
            }
        return {"statusCode": 200, "headers": {"X-Chat-Server": "local"}}
    return {"statusCode": 200}


def default(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Body ``{"do": "echo"|"raise"|"sleep", ...}``; anything else is echoed."""
    _record(event)
    try:
        body = json.loads(event["body"])
    except ValueError:
        body = {}
    command = body.get("do") if isinstance(body, dict) else None
    if command == "raise":
        raise ValueError("handler failed")
    if command == "sleep":
        time.sleep(float(body.get("seconds", 1)))
    _post(event["requestContext"]["connectionId"], {"echo": event})
    return {"statusCode": 200, "body": "this is never sent to the client"}


def echo_route(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Any other route: echo the event back."""
    _record(event)
    _post(event["requestContext"]["connectionId"], {"echo": event})
    return {"statusCode": 200}


def disconnect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record(event)
    return {"statusCode": 200}


def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """token ``good`` → Allow with a context, ``deny`` → Deny, ``bad`` → Unauthorized, else raise."""
    _record(event)
    token = (event.get("queryStringParameters") or {}).get("token")
    if token == "bad":
        raise Exception("Unauthorized")
    if token not in ("good", "deny"):
        raise RuntimeError("authorizer crashed")
    effect = "Allow" if token == "good" else "Deny"
    return {
        "principalId": "alice",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}],
        },
        "context": {"user_id": "alice", "name": "Alice"},
    }
