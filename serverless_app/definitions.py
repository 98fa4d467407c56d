"""One source of truth for the chat system's resources.

The CDK stack, the Lambda handlers, the local runtime and the tests all read
table names, key schemas, indexes, TTL attributes, function names, routes,
handler strings, environment variable names and limits from here. This module
is part of the Lambda asset: it must never import ``aws_cdk``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "API_NAME",
    "AUTHORIZER_IDENTITY_SOURCE",
    "CONNECTIONS_TABLE",
    "FUNCTIONS",
    "LIMITS",
    "MESSAGES_TABLE",
    "METRICS_NAMESPACE",
    "ROOMS_TABLE",
    "ROUTES",
    "ROUTE_SELECTION_EXPRESSION",
    "SERVICE_NAME",
    "STAGE_NAME",
    "TABLES",
    "TOKEN_QUERY_PARAMETER",
    "TOKEN_SECRET_NAME",
    "EnvVar",
    "FunctionDefinition",
    "GatewayLimits",
    "IndexDefinition",
    "KeyAttribute",
    "Metric",
    "RouteDefinition",
    "TableDefinition",
    "function_by_name",
    "function_environment",
    "physical_name",
    "service_name",
]

AttributeType = Literal["S", "N", "B"]


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: AttributeType = "S"


@dataclass(frozen=True)
class IndexDefinition:
    """A global secondary index (projection ALL)."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None


@dataclass(frozen=True)
class TableDefinition:
    """A DynamoDB table: pay-per-request, TTL on ``ttl_attribute``."""

    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute | None = None
    ttl_attribute: str = "ttl"
    indexes: tuple[IndexDefinition, ...] = ()
    env_var: str = ""

    def key_attributes(self) -> tuple[KeyAttribute, ...]:
        """Every attribute named in the table's or an index's key schema, once."""
        seen: dict[str, KeyAttribute] = {}
        keys = [self.partition_key, self.sort_key]
        for index in self.indexes:
            keys += [index.partition_key, index.sort_key]
        for key in keys:
            if key is not None:
                seen.setdefault(key.name, key)
        return tuple(seen.values())


class EnvVar:
    """Names of the environment variables the handlers read."""

    CONNECTIONS_TABLE = "CONNECTIONS_TABLE"
    MESSAGES_TABLE = "MESSAGES_TABLE"
    ROOMS_TABLE = "ROOMS_TABLE"
    WELCOME_FUNCTION = "WELCOME_FUNCTION"
    MESSAGE_RETENTION_DAYS = "MESSAGE_RETENTION_DAYS"
    CONNECTION_TTL_SECONDS = "CONNECTION_TTL_SECONDS"
    AUTH_MODE = "AUTH_MODE"
    TOKEN_SECRET_ARN = "TOKEN_SECRET_ARN"
    TOKEN_SECRET = "TOKEN_SECRET"  # local runtime only: the secret itself
    TOKEN_ISSUER = "TOKEN_ISSUER"
    TOKEN_AUDIENCE = "TOKEN_AUDIENCE"
    JWKS_URL = "JWKS_URL"  # OIDC mode: verify an external issuer's RS256 tokens
    TOKEN_USE = "TOKEN_USE"  # OIDC mode: Cognito token kinds accepted, "id" (default) or "id,access"
    TOKEN_MAX_LIFETIME_S = "TOKEN_MAX_LIFETIME_S"  # longest exp - iat accepted (default 24 h)
    LOG_LEVEL = "LOG_LEVEL"
    MAX_CONNECTIONS_PER_USER = "MAX_CONNECTIONS_PER_USER"  # default 10
    TOKEN_LEEWAY_S = "TOKEN_LEEWAY_S"  # clock skew on token times, default 30
    PRESENCE_THRESHOLD = "PRESENCE_THRESHOLD"  # online users up to which presence is live (default 30)
    FANOUT_FUNCTION = "FANOUT_FUNCTION"  # websocket-fanout, for functions that shard large rooms
    FANOUT_PAGE_SIZE = "FANOUT_PAGE_SIZE"  # members per Query page of a fan-out (default 200)
    FANOUT_SHARD_SIZE = "FANOUT_SHARD_SIZE"  # members per fan-out shard (default 1,000)
    FANOUT_RATE_PER_S = "FANOUT_RATE_PER_S"  # @connections posts/s for the whole stack (default 5,000)
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"  # the `service` dimension of every metric
    POWERTOOLS_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"  # CloudWatch namespace of the EMF metrics


# --- names per deployment environment ------------------------------------------


def physical_name(name: str, environment: str | None = None) -> str:
    """The name a resource gets in a deployment environment: the seed's name without one
    (``websocket-connections``), ``<environment>-<name>`` with one (``dev-websocket-connections``)."""
    return f"{environment}-{name}" if environment else name


# --- metrics (CloudWatch Embedded Metric Format, emitted by the handlers) -----------

METRICS_NAMESPACE = "wschat"
"""CloudWatch namespace of the handlers' custom metrics (``POWERTOOLS_METRICS_NAMESPACE``)."""
SERVICE_NAME = "wschat"
"""The ``service`` dimension of every custom metric (``POWERTOOLS_SERVICE_NAME``), per environment
``service_name(environment)``: ``wschat``, ``dev-wschat``."""


def service_name(environment: str | None = None) -> str:
    return physical_name(SERVICE_NAME, environment)


class Metric:
    """Names of the custom metrics (namespace ``wschat``, dimension ``service``). Unit Count unless noted;
    the stack's alarms and dashboard read exactly these."""

    DELIVERIES_SUCCEEDED = "DeliveriesSucceeded"  # @connections posts that reached the client
    DELIVERIES_GONE = "DeliveriesGone"  # posts answered 410 (connection gone, then pruned)
    DELIVERIES_FAILED = "DeliveriesFailed"  # posts that failed otherwise (after retries)
    DELIVERIES_THROTTLED = "DeliveriesThrottled"  # posts answered 429 (retried with backoff)
    CONNECTIONS_PRUNED = "ConnectionsPruned"
    FANOUT_RECIPIENTS = "FanoutRecipients"  # members one fan-out posted to
    FANOUT_DURATION = "FanoutDuration"  # Milliseconds
    FRAMES_REFUSED = "FramesRefused"  # client frames answered with an error frame
    RATE_LIMITED = "RateLimited"
    AUTH_FAILURES = "AuthFailures"  # tokens the authorizer refused
    WELCOME_LATENCY = "WelcomeLatency"  # Milliseconds, $connect to the welcome frame


# --- DynamoDB -----------------------------------------------------------------

CONNECTIONS_TABLE = TableDefinition(
    name="websocket-connections",
    partition_key=KeyAttribute("connection_id"),
    env_var=EnvVar.CONNECTIONS_TABLE,
)
"""Three kinds of item (layouts in ``chat/store/keys.py``): one per live connection (its user,
the rooms it joined, ttl), one per user (``user#<user_id>``: the user's live connections and
per-user rate limits) and the stack's ``@connections`` posts budget (``budget#connections-api``)."""

MESSAGES_TABLE = TableDefinition(
    name="websocket-messages",
    partition_key=KeyAttribute("room"),
    sort_key=KeyAttribute("timestamp"),
    indexes=(
        IndexDefinition(
            name="user-timestamp-index",
            partition_key=KeyAttribute("user_id"),
            sort_key=KeyAttribute("timestamp"),
        ),
    ),
    env_var=EnvVar.MESSAGES_TABLE,
)
"""Chat history. The sort key ``timestamp`` is ``<ISO-8601 UTC>#<message id>``,
unique per message, so two messages in the same microsecond never overwrite
each other; it still sorts by time and begins with the ISO timestamp."""

ROOMS_TABLE = TableDefinition(
    name="websocket-rooms",
    partition_key=KeyAttribute("room"),
    sort_key=KeyAttribute("sk"),
    indexes=(
        IndexDefinition(
            name="user-rooms-index",
            partition_key=KeyAttribute("grant_user"),
            sort_key=KeyAttribute("room"),
        ),
        IndexDefinition(
            name="public-rooms-index",
            partition_key=KeyAttribute("listing"),
            sort_key=KeyAttribute("room"),
        ),
    ),
    env_var=EnvVar.ROOMS_TABLE,
)
"""Rooms: who may be in them, and who is. Fan-out is a Query of one room's partition,
never a Scan of all connections. Item kinds by ``sk``: ``meta`` (visibility, owner, the
two users of a direct room), ``stats`` (online count, presence mode, typing),
``role#<user_id>`` (owner, admin, member or invited),
``ban#<user_id>``, ``member#<connection_id>`` (one per connection in the room),
``user#<user_id>`` (count of that user's connections in the room, drives presence
events) and ``idem#<user_id>#<client_msg_id>`` (idempotent sends). Two sparse indexes:
``user-rooms-index`` holds only ``role#`` items (their ``grant_user``), so a user's rooms
are one Query; ``public-rooms-index`` holds only public rooms' ``meta`` (``listing``)."""

TABLES: tuple[TableDefinition, ...] = (CONNECTIONS_TABLE, MESSAGES_TABLE, ROOMS_TABLE)


# --- Lambda -------------------------------------------------------------------

TableAccess = Literal["read", "write", "read_write"]


@dataclass(frozen=True)
class FunctionDefinition:
    name: str
    handler: str
    memory_mb: int
    timeout_s: int
    description: str
    tables: dict[str, TableAccess] = field(default_factory=dict)
    """Table name → access level; drives both IAM grants and environment."""
    manage_connections: bool = False
    """Needs ``execute-api:ManageConnections`` on this API's stage."""
    invokes: tuple[str, ...] = ()
    """Names of functions this one invokes asynchronously."""
    async_retry_attempts: int | None = None
    """Retries of a failed asynchronous invocation (EventInvokeConfig; ``None``: Lambda's default, 2)."""
    async_max_event_age_s: int | None = None
    """How long an asynchronous event may wait or be retried (``None``: Lambda's default, 6 h)."""


_HANDLERS = "serverless_app.chat.handlers"

CONNECT_FUNCTION = FunctionDefinition(
    name="websocket-connect",
    handler=f"{_HANDLERS}.connect.handler",
    memory_mb=256,
    timeout_s=30,
    description="$connect: records the connection, joins its rooms, schedules the welcome message",
    tables={
        CONNECTIONS_TABLE.name: "read_write",
        ROOMS_TABLE.name: "read_write",
    },
    invokes=("websocket-welcome",),
)
DISCONNECT_FUNCTION = FunctionDefinition(
    name="websocket-disconnect",
    handler=f"{_HANDLERS}.disconnect.handler",
    memory_mb=256,
    timeout_s=30,
    description="$disconnect: removes the connection and its room memberships, announces departures",
    tables={
        CONNECTIONS_TABLE.name: "read_write",
        ROOMS_TABLE.name: "read_write",
    },
    manage_connections=True,
)
DEFAULT_FUNCTION = FunctionDefinition(
    name="websocket-default",
    handler=f"{_HANDLERS}.default.handler",
    memory_mb=512,
    timeout_s=30,
    description="$default: validates frames, stores messages, fans out to the room",
    tables={
        CONNECTIONS_TABLE.name: "read_write",
        ROOMS_TABLE.name: "read_write",
        MESSAGES_TABLE.name: "read_write",
    },
    manage_connections=True,
    invokes=("websocket-fanout",),
)
WELCOME_FUNCTION = FunctionDefinition(
    name="websocket-welcome",
    handler=f"{_HANDLERS}.welcome.handler",
    memory_mb=256,
    timeout_s=30,
    description="Invoked asynchronously by $connect: waits until the connection is live, then welcomes it",
    tables={
        CONNECTIONS_TABLE.name: "read_write",
        ROOMS_TABLE.name: "read_write",
    },
    manage_connections=True,
    async_retry_attempts=0,
    async_max_event_age_s=60,
)
"""Never retried (``async_retry_attempts=0``): a retry would post the welcome and the arrival
announcements again (they are not idempotent), and a duplicate welcome or presence event is worse
than a missing welcome, which the client does not need to chat. An event older than a minute is
dropped: the client has long been chatting (or gone). A failed or dropped event goes to the
function's failure queue (an SQS queue in the stack, with an alarm)."""

FANOUT_FUNCTION = FunctionDefinition(
    name="websocket-fanout",
    handler=f"{_HANDLERS}.fanout.handler",
    memory_mb=256,
    timeout_s=30,
    description="Invoked asynchronously by $default for rooms above FANOUT_SHARD_SIZE: posts a frame to one key range of the room",
    tables={
        # read: the range's members; write: pruning the connections that answer 410 (their
        # connection record, memberships and presence counts). No access to the messages.
        CONNECTIONS_TABLE.name: "read_write",
        ROOMS_TABLE.name: "read_write",
    },
    manage_connections=True,
    invokes=("websocket-fanout",),  # a planning invocation launches the ranges it covers
    async_retry_attempts=1,
    async_max_event_age_s=300,
)
"""One shard per invocation: a range to post to, or a planning shard that launches the ranges of
the rest of the room (up to 100, then the next planning shard). A failed shard is retried once (``async_retry_attempts``) and re-posts
only its own range, so a member can get a frame at most twice, and only in a shard that failed
(clients drop the copy by ``message_id``); an event older than 5 minutes is dropped (clients
recover it from history)."""

AUTHORIZER_FUNCTION = FunctionDefinition(
    name="websocket-authorizer",
    handler=f"{_HANDLERS}.authorizer.handler",
    memory_mb=256,
    timeout_s=10,
    description="REQUEST authorizer on $connect: verifies the signed token in the `token` query parameter",
)
"""Deployed only in ``token`` auth mode; reads its key from ``TOKEN_SECRET_ARN`` (AWS) or ``TOKEN_SECRET`` (local)."""

FUNCTIONS: tuple[FunctionDefinition, ...] = (
    CONNECT_FUNCTION,
    DISCONNECT_FUNCTION,
    DEFAULT_FUNCTION,
    WELCOME_FUNCTION,
    FANOUT_FUNCTION,
    AUTHORIZER_FUNCTION,
)


def function_by_name(name: str) -> FunctionDefinition:
    for function in FUNCTIONS:
        if function.name == name:
            return function
    raise KeyError(name)


# --- API Gateway --------------------------------------------------------------

API_NAME = "chat-websocket-api"
STAGE_NAME = "prod"
ROUTE_SELECTION_EXPRESSION = "$request.body.action"
TOKEN_QUERY_PARAMETER = "token"
AUTHORIZER_IDENTITY_SOURCE = f"route.request.querystring.{TOKEN_QUERY_PARAMETER}"
TOKEN_SECRET_NAME = "websocket-token-secret"
"""Secrets Manager secret holding the token signing key (``token`` auth mode on AWS)."""


@dataclass(frozen=True)
class RouteDefinition:
    route_key: str
    function: str


ROUTES: tuple[RouteDefinition, ...] = (
    RouteDefinition("$connect", CONNECT_FUNCTION.name),
    RouteDefinition("$disconnect", DISCONNECT_FUNCTION.name),
    RouteDefinition("$default", DEFAULT_FUNCTION.name),
)


@dataclass(frozen=True)
class GatewayLimits:
    """API Gateway WebSocket quotas (AWS defaults); the local runtime enforces them."""

    max_message_bytes: int = 128 * 1024
    max_frame_bytes: int = 32 * 1024
    idle_timeout_s: float = 10 * 60
    max_connection_s: float = 2 * 60 * 60
    integration_timeout_s: float = 29.0
    stage_rate_limit: float = 500.0
    """Steady-state requests per second for the stage (set in the stack)."""
    stage_burst_limit: int = 1000
    connections_rate_limit: float = 10_000.0
    """The account's ``@connections`` request quota (requests/s, every API of the account and region
    together; lower in newer regions); past it API Gateway answers 429 LimitExceededException."""
    connections_burst_limit: int = 5_000


LIMITS = GatewayLimits()

CONNECTION_TTL_SECONDS = int(LIMITS.max_connection_s) + 60
"""Connection records expire just after API Gateway's 2 h maximum duration."""

DEFAULT_MESSAGE_RETENTION_DAYS = 30


AuthMode = Literal["token", "none"]
DEFAULT_AUTH_MODE: AuthMode = "token"


def function_environment(
    function: FunctionDefinition,
    *,
    auth_mode: AuthMode = DEFAULT_AUTH_MODE,
    message_retention_days: int = DEFAULT_MESSAGE_RETENTION_DAYS,
    environment_name: str | None = None,
) -> dict[str, str]:
    """The environment variables a function gets, on AWS and in the local runtime alike.

    Table and function names are the physical names of ``environment_name`` (the seed's names
    without one), so the handlers never assume a name. The deployment adds what only it knows
    (e.g. ``TOKEN_SECRET_ARN``); the local runtime adds endpoint overrides (``AWS_ENDPOINT_URL_*``)
    and dummy credentials.
    """
    tables_by_name = {table.name: table for table in TABLES}
    environment = {
        tables_by_name[name].env_var: physical_name(name, environment_name) for name in function.tables
    }
    for invoked in function.invokes:
        if invoked == WELCOME_FUNCTION.name:
            environment[EnvVar.WELCOME_FUNCTION] = physical_name(invoked, environment_name)
        if invoked == FANOUT_FUNCTION.name:
            environment[EnvVar.FANOUT_FUNCTION] = physical_name(invoked, environment_name)
    environment[EnvVar.MESSAGE_RETENTION_DAYS] = str(message_retention_days)
    environment[EnvVar.CONNECTION_TTL_SECONDS] = str(CONNECTION_TTL_SECONDS)
    environment[EnvVar.AUTH_MODE] = auth_mode
    environment[EnvVar.LOG_LEVEL] = "INFO"
    environment[EnvVar.POWERTOOLS_SERVICE_NAME] = service_name(environment_name)
    environment[EnvVar.POWERTOOLS_METRICS_NAMESPACE] = METRICS_NAMESPACE
    return environment
