"""What one Lambda container builds once and reuses across invocations.

The settings (:mod:`~serverless_app.chat.settings`), the boto3 DynamoDB and Lambda clients, the
store and :class:`~serverless_app.chat.service.ChatService` over it, the ``@connections`` client
(:mod:`~serverless_app.chat.connections_api`) with this container's share of the posts budget
(:mod:`~serverless_app.chat.budget`), and the options :func:`~serverless_app.chat.delivery.deliver`
takes (page and shard sizes, the launcher of ``websocket-fanout`` shards). Every handler calls
these; tests start again with :func:`reset`.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from serverless_app.chat.budget import PostsBudget
from serverless_app.chat.connections_api import ConnectionsApi
from serverless_app.chat.delivery import Shard, ShardLauncher
from serverless_app.chat.service import ChatService
from serverless_app.chat.settings import Settings
from serverless_app.chat.store import DynamoDBStore

__all__ = [
    "connections_api",
    "delivery_options",
    "dynamodb_client",
    "lambda_client",
    "posts_budget",
    "reset",
    "service",
    "settings",
]


_given_settings: Settings | None = None


@cache
def settings() -> Settings:
    return _given_settings if _given_settings is not None else Settings.from_env()


@cache
def dynamodb_client() -> Any:
    return boto3.client(
        "dynamodb",
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=settings().fanout_concurrency,
        ),
    )


@cache
def lambda_client() -> Any:
    return boto3.client("lambda", config=Config(retries={"max_attempts": 3, "mode": "standard"}))


@cache
def service() -> ChatService:
    return ChatService(DynamoDBStore(dynamodb_client(), settings()), settings(), clock=time.time)


@cache
def posts_budget() -> PostsBudget:
    """This container's share of the stack's ``@connections`` budget (``FANOUT_RATE_PER_S``)."""
    rate = settings().fanout_rate_per_s
    chunk = max(1, min(200, round(rate / 50)))  # a fiftieth of a second's worth: 50 writes/s at most
    burst = max(chunk, round(rate / 10))
    store = DynamoDBStore(dynamodb_client(), settings())

    def reserve(count: int) -> int:
        now = time.time()
        return store.reserve_posts(count, now=now, rate=rate, burst=burst, ttl=int(now) + 86400)

    return PostsBudget(reserve, chunk=chunk)


@cache
def connections_api(endpoint: str) -> ConnectionsApi:
    return ConnectionsApi(
        endpoint,
        concurrency=settings().fanout_concurrency,
        rate_per_s=settings().fanout_rate_per_s,
        budget=posts_budget(),
    )


def delivery_options(callback_url: str) -> dict[str, Any]:
    """``deliver``'s keyword arguments from the settings: page and shard sizes, and the launcher
    that hands a large room's further ranges to ``websocket-fanout`` (when this function may)."""
    options: dict[str, Any] = {
        "page_size": settings().fanout_page_size,
        "shard_size": settings().fanout_shard_size,
    }
    function = settings().fanout_function
    if function:
        options["launch"] = _launcher(function, callback_url)
    return options


def _launcher(function: str, callback_url: str) -> ShardLauncher:
    def launch(shard: Shard) -> None:
        lambda_client().invoke(
            FunctionName=function,
            InvocationType="Event",
            Payload=json.dumps(shard.to_json(callback_url)).encode(),
        )

    return launch


def reset(*, override: Settings | None = None) -> None:
    """Forget everything built so far, so the next call builds it again, as a new Lambda container
    would: from the environment (tests change it between invocations), or from ``override`` when
    given (a test's limits that no environment variable sets). The one way tests override the
    container."""
    global _given_settings
    _given_settings = override
    for built in (settings, dynamodb_client, lambda_client, service, posts_budget, connections_api):
        built.cache_clear()
