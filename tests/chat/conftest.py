"""Fixtures for the chat core: the store and service on DynamoDB Local, handlers wired to a recording @connections API."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

from serverless_app.chat import container
from serverless_app.chat.protocol import ClientFrame, validate_server_frame
from serverless_app.chat.service import ChatService, Delivery
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import ChatStore, DynamoDBStore
from serverless_app.chat.store.keys import BUDGET_ITEM
from serverless_app.definitions import CONNECTIONS_TABLE, MESSAGES_TABLE, ROOMS_TABLE
from serverless_app.local.dynamodb_local import DynamoDBLocal
from tests.chat.connections_double import ConnectionsDouble, running_connections_double


class Clock:
    """A controllable clock: starts at real time, moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings() -> Settings:
    return Settings(auth_mode="none")


@pytest.fixture
def store(ddb: Any, settings: Settings) -> ChatStore:
    return DynamoDBStore(ddb, settings)


@pytest.fixture
def service(store: ChatStore, settings: Settings, clock: Clock) -> ChatService:
    return ChatService(store, settings, clock=clock)


@pytest.fixture
def connections() -> Iterator[ConnectionsDouble]:
    with running_connections_double() as double:
        yield double


@pytest.fixture
def lambda_env(
    aws_env: DynamoDBLocal, ddb: Any, connections: ConnectionsDouble, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ConnectionsDouble]:
    """The handlers' environment: tables on DynamoDB Local, @connections on the recording double."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", connections.url)
    monkeypatch.delenv("WELCOME_FUNCTION", raising=False)
    _forget_container()
    yield connections
    _forget_container()


def _forget_container() -> None:
    """Make the handlers build their clients again, as a new Lambda container would."""
    container.reset()


_ids = itertools.count(1)


def act(service: ChatService, connection: str, action: str, **fields: Any) -> list[Delivery]:
    """Apply one client frame as ``connection``; every frame the service answers with must be valid."""
    frame = cast(ClientFrame, {"action": action, **fields})
    deliveries = service.handle(connection, frame, request_id="r")
    for delivery in deliveries:
        validate_server_frame(delivery.frame)
    return deliveries


def connection_id() -> str:
    """An id shaped like API Gateway's (base64, may end in '=')."""
    return f"Conn{next(_ids):08d}AbC="


def ws_event(
    route: str,
    connection: str,
    *,
    body: str | None = None,
    query: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    context: dict[str, Any] = {
        "routeKey": route,
        "eventType": event_type,
        "connectionId": connection,
        "requestId": f"req-{next(_ids)}",
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "stage": "prod",
        "apiId": "abc123",
        "connectedAt": int(time.time() * 1000),
        "requestTimeEpoch": int(time.time() * 1000),
        "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": False}
    if body is not None:
        event["body"] = body
    if query is not None:
        event["queryStringParameters"] = query
    return event


@pytest.fixture
def make_event() -> Callable[..., dict[str, Any]]:
    return ws_event


def chat_items(ddb: Any) -> dict[str, list[dict[str, Any]]]:
    """Every item of the three tables but the ``@connections`` budget's bookkeeping (which any post
    may move): what "changes nothing" compares."""
    items = {
        t: ddb.scan(TableName=t, ConsistentRead=True)["Items"]
        for t in (CONNECTIONS_TABLE.name, MESSAGES_TABLE.name, ROOMS_TABLE.name)
    }
    items[CONNECTIONS_TABLE.name] = [
        item for item in items[CONNECTIONS_TABLE.name] if item["connection_id"]["S"] != BUDGET_ITEM
    ]
    return items
