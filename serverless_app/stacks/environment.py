"""Deployment environments: ``cdk deploy -c env=dev``, ``-c env=prod``, or none (the seed's names).

Without an environment every physical name is the seed's (``websocket-connections``,
``chat-websocket-api``, …) and the stack is ``WebSocketChatStack``. With ``env=NAME`` every physical
name is ``NAME-<seed name>`` and the stack ``WebSocketChatStack-NAME``, so several environments live
side by side in one account and region. ``prod`` (or ``-c production=true`` with any environment)
is a production environment: the chat history is retained on ``cdk destroy`` and protected from
deletion, and logs are kept longer; any other environment is removed entirely by ``cdk destroy``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_logs as logs
from constructs import Construct

from serverless_app.definitions import physical_name, service_name

__all__ = [
    "ENV_CONTEXT_KEY",
    "PRODUCTION_CONTEXT_KEY",
    "STACK_ID",
    "DeploymentEnvironment",
    "context_flag",
]

STACK_ID = "WebSocketChatStack"
"""The seed's stack name; environments append ``-<env>``."""
ENV_CONTEXT_KEY = "env"
"""CDK context key naming the environment: ``cdk deploy -c env=dev WebSocketChatStack-dev``."""
PRODUCTION_CONTEXT_KEY = "production"
"""CDK context key: ``-c production=true`` makes any environment a production one (``prod`` is by default)."""
PRODUCTION_NAMES = frozenset({"prod", "production"})

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$|^[a-z]$")
"""Lower-case letters, digits and inner hyphens, at most 16 characters: valid in every name it prefixes
(tables, functions, log groups, alarms, queues, the stack) and short enough for the longest of them."""


def context_flag(scope: Construct, key: str, default: bool = False) -> bool:
    """A boolean CDK context value: ``-c key=true`` arrives as the string ``"true"``, cdk.json as a bool."""
    value: Any = scope.node.try_get_context(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ValueError(f"context {key} must be true or false, not {value!r}")


@dataclass(frozen=True)
class DeploymentEnvironment:
    """One deployment of the stack: its name (``None``: the seed's names) and whether it is production."""

    name: str | None = None
    production: bool | None = None
    """``None``: production when the name is ``prod`` (or ``production``)."""

    def __post_init__(self) -> None:
        if self.name is not None and not _NAME.match(self.name):
            raise ValueError(
                f"environment name {self.name!r}: use 1-16 lower-case letters, digits and inner hyphens"
            )

    @classmethod
    def from_context(cls, scope: Construct) -> DeploymentEnvironment:
        """The environment ``-c env=NAME`` / ``-c production=true`` choose (the seed's default without them)."""
        name = scope.node.try_get_context(ENV_CONTEXT_KEY)
        production = scope.node.try_get_context(PRODUCTION_CONTEXT_KEY)
        return cls(
            name=str(name) if name not in (None, "") else None,
            production=None if production is None else context_flag(scope, PRODUCTION_CONTEXT_KEY),
        )

    @property
    def is_production(self) -> bool:
        if self.production is not None:
            return self.production
        return self.name in PRODUCTION_NAMES

    @property
    def stack_id(self) -> str:
        return f"{STACK_ID}-{self.name}" if self.name else STACK_ID

    @property
    def service_name(self) -> str:
        """The ``service`` dimension of the handlers' metrics (``POWERTOOLS_SERVICE_NAME``)."""
        return service_name(self.name)

    def physical_name(self, name: str) -> str:
        """``name`` as this environment names it: unchanged without an environment, else ``<env>-name``."""
        return physical_name(name, self.name)

    @property
    def history_removal_policy(self) -> RemovalPolicy:
        """The messages table: retained in production (``cdk destroy`` leaves it), destroyed elsewhere."""
        return RemovalPolicy.RETAIN if self.is_production else RemovalPolicy.DESTROY

    @property
    def log_retention(self) -> logs.RetentionDays:
        return logs.RetentionDays.THREE_MONTHS if self.is_production else logs.RetentionDays.ONE_MONTH
