"""Route selection (``$request.body.action``), without a socket or a runtime."""

from __future__ import annotations

from typing import cast

import pytest

from serverless_app.definitions import LIMITS
from serverless_app.local.gateway_integrations import FunctionRunner, Integrations
from serverless_app.local.stats import GatewayStats
from serverless_app.local.throttle import TokenBucket


def integrations(routes: dict[str, str]) -> Integrations:
    return Integrations(
        cast(FunctionRunner, None),
        routes=routes,
        stage="prod",
        api_id="api",
        limits=LIMITS,
        bucket=TokenBucket(0, 1),
        stats=GatewayStats(),
        tasks=set(),
    )


ROUTES = {"$connect": "connect", "$disconnect": "disconnect", "$default": "default", "sendMessage": "send"}


@pytest.mark.parametrize(
    ("body", "route"),
    [
        ('{"action": "sendMessage"}', "sendMessage"),
        ('{"action": "nope"}', "$default"),
        ('{"action": "$connect"}', "$default"),
        ('{"action": "$disconnect"}', "$default"),
        ('{"action": 7}', "$default"),
        ("[1, 2]", "$default"),
        ("not json", "$default"),
        ("[" * 100_000, "$default"),
    ],
)
def test_the_action_selects_its_route_else_default(body: str, route: str) -> None:
    assert integrations(ROUTES).select_route(body) == route


def test_without_a_default_route_an_unknown_action_selects_nothing() -> None:
    routes = {key: value for key, value in ROUTES.items() if key != "$default"}
    assert integrations(routes).select_route('{"action": "nope"}') is None
    assert integrations(routes).select_route('{"action": "sendMessage"}') == "sendMessage"
