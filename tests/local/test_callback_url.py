"""The handlers' callback URL for an AWS-shaped event (issue 12, item 7).

Locally ``domainName`` carries a port and the scheme is ``http``, so the AWS-only form
``https://{domainName}/{stage}`` is never built by the local gateway's own events. Here an event
shaped exactly like API Gateway's (an ``execute-api`` domain, no port, stage ``prod``) is given to
the real ``websocket-default`` through the local Lambda ``Invoke`` API: the handler builds the AWS
URL, botocore's own per-service endpoint override (``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI``,
which the local runtime sets) sends the post to the local gateway, and a real client gets it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import boto3
import pytest

from serverless_app.chat.connections_api import MANAGEMENT_ENDPOINT_ENV, callback_url
from serverless_app.definitions import DEFAULT_FUNCTION
from tests.support.chat_client import ChatClient, run_clients

AWS_DOMAIN = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"


def test_the_callback_url_of_an_aws_event_is_the_https_stage_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the endpoint override the handlers post to ``https://{domainName}/{stage}``."""
    monkeypatch.delenv(MANAGEMENT_ENDPOINT_ENV, raising=False)
    assert callback_url(AWS_DOMAIN, "prod") == f"https://{AWS_DOMAIN}/prod"


def test_an_aws_shaped_event_is_answered_through_the_local_endpoint(local_stack: Any) -> None:
    """websocket-default invoked with an AWS-shaped getHistory event for a live local connection:
    the answer reaches that connection through the local @connections endpoint."""
    room = f"callback-{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        client = await ChatClient.open(local_stack.ws_url, rooms=room, user_id="aws-shaped")
        connection_id = await client.connection_id()
        event = {
            "requestContext": {
                "routeKey": "getHistory",
                "eventType": "MESSAGE",
                "connectionId": connection_id,
                "requestId": "AWSshapedReq=",
                "domainName": AWS_DOMAIN,
                "stage": "prod",
                "apiId": "a1b2c3d4e5",
                "connectedAt": 1764460800000,
                "requestTimeEpoch": 1764460801000,
                "messageDirection": "IN",
                "identity": {"sourceIp": "203.0.113.7"},
                "authorizer": {"user_id": "aws-shaped", "verified": "false"},
            },
            "body": json.dumps({"action": "getHistory", "room": room}),
            "isBase64Encoded": False,
        }
        lambda_client = boto3.client(
            "lambda",
            endpoint_url=local_stack.lambda_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        mark = len(client.frames)
        response = await asyncio.to_thread(
            lambda_client.invoke, FunctionName=DEFAULT_FUNCTION.name, Payload=json.dumps(event).encode()
        )
        assert response["StatusCode"] == 200 and "FunctionError" not in response
        history = await client.wait_for(lambda f: f.get("action") == "history", timeout_s=30, start=mark)
        assert history["room"] == room

    run_clients(scenario)
