"""The handlers' configuration, read once per container from the environment.

Built by :func:`serverless_app.chat.container.settings` from the variables the stack sets
(``definitions.function_environment``); the per-user limits (rates, connections, presence threshold)
live here with their defaults. Two token settings are read by ``auth``/the authorizer instead:
``TOKEN_LEEWAY_S`` and ``TOKEN_MAX_LIFETIME_S``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from serverless_app.definitions import (
    CONNECTION_TTL_SECONDS,
    CONNECTIONS_TABLE,
    DEFAULT_MESSAGE_RETENTION_DAYS,
    MESSAGES_TABLE,
    ROOMS_TABLE,
    EnvVar,
)

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    connections_table: str = CONNECTIONS_TABLE.name
    messages_table: str = MESSAGES_TABLE.name
    rooms_table: str = ROOMS_TABLE.name
    welcome_function: str | None = None
    message_retention_s: int = DEFAULT_MESSAGE_RETENTION_DAYS * 86400
    connection_ttl_s: int = CONNECTION_TTL_SECONDS
    auth_mode: str = "token"
    default_room: str = "general"
    max_rooms_per_connection: int = 20
    max_connections_per_user: int = 10
    """Live connections one user may hold; the next handshake is refused with 429."""
    message_rate_per_s: float = 5.0
    """Steady sendMessage rate per user, across all of the user's connections."""
    message_burst: int = 20
    """This many messages may be sent back to back."""
    action_rate_per_s: float = 10.0
    """Steady rate of every other action together, per user."""
    action_burst: int = 30
    typing_interval_s: float = 1.0
    """At most one typing event per connection per this many seconds is relayed."""
    history_default_limit: int = 50
    presence_threshold: int = 30
    """Up to this many online users a room announces every join and leave; above, presence is on
    demand. Filling a room live costs ~T²/2 posts, so T bounds the fill of a room of N to
    ~(T²/2)/N presence posts per member: 30 keeps a room of 500 under 1 (100 cost 10)."""
    presence_page_size: int = 100
    fanout_concurrency: int = 32
    fanout_page_size: int = 200
    """Members read per Query page of a fan-out; at most two pages' posts are in flight."""
    fanout_function: str | None = None
    """``websocket-fanout``: rooms larger than ``fanout_shard_size`` are handed to it range by range."""
    fanout_shard_size: int = 1000
    """Members per shard: the sender posts the first range itself, each further one is an
    asynchronous invocation of ``fanout_function`` (and a retried shard re-posts only its range)."""
    fanout_rate_per_s: float = 5000.0
    """Posts per second the whole stack may make to ``@connections``, every container and fan-out
    together (a budget kept in DynamoDB, :mod:`~serverless_app.chat.budget`): half the account's
    default quota of 10,000/s, which every API of the account and region shares."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            connections_table=env.get(EnvVar.CONNECTIONS_TABLE, CONNECTIONS_TABLE.name),
            messages_table=env.get(EnvVar.MESSAGES_TABLE, MESSAGES_TABLE.name),
            rooms_table=env.get(EnvVar.ROOMS_TABLE, ROOMS_TABLE.name),
            welcome_function=env.get(EnvVar.WELCOME_FUNCTION) or None,
            message_retention_s=int(env.get(EnvVar.MESSAGE_RETENTION_DAYS, DEFAULT_MESSAGE_RETENTION_DAYS))
            * 86400,
            connection_ttl_s=int(env.get(EnvVar.CONNECTION_TTL_SECONDS, CONNECTION_TTL_SECONDS)),
            auth_mode=env.get(EnvVar.AUTH_MODE, "token"),
            presence_threshold=int(env.get(EnvVar.PRESENCE_THRESHOLD, cls.presence_threshold)),
            max_connections_per_user=int(
                env.get(EnvVar.MAX_CONNECTIONS_PER_USER, cls.max_connections_per_user)
            ),
            fanout_function=env.get(EnvVar.FANOUT_FUNCTION) or None,
            fanout_page_size=int(env.get(EnvVar.FANOUT_PAGE_SIZE, cls.fanout_page_size)),
            fanout_shard_size=int(env.get(EnvVar.FANOUT_SHARD_SIZE, cls.fanout_shard_size)),
            fanout_rate_per_s=float(env.get(EnvVar.FANOUT_RATE_PER_S, cls.fanout_rate_per_s)),
        )
