"""``$connect``: record the connection and its rooms, then schedule the welcome.

A ``PostToConnection`` made during ``$connect`` fails with 410 on AWS (the connection is
not established until this handler returns), so the welcome and the presence ``join``
events are delivered by ``websocket-welcome``, invoked asynchronously.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from serverless_app.chat import container
from serverless_app.chat.connections_api import callback_url
from serverless_app.chat.errors import ChatError, FrameError, RateLimited
from serverless_app.chat.events import WebSocketRequest
from serverless_app.chat.models import Identity
from serverless_app.chat.observability import (
    bind,
    lambda_handler,
    logger,
    metrics,
    record_auth_failure,
    record_rate_limited,
)
from serverless_app.chat.serialization import deliveries_to_json
from serverless_app.chat.service import parse_rooms, valid_user_id


def _identity(request: WebSocketRequest, auth_mode: str) -> Identity | None:
    authorizer = request.authorizer or {}
    user_id = authorizer.get("user_id")
    if isinstance(user_id, str) and valid_user_id(user_id):
        return Identity(user_id=user_id, verified=True, expires_at=_expiry(authorizer.get("exp")))
    if auth_mode == "token":
        return None  # token mode without a verified identity: refuse
    claimed = request.query.get("user_id")
    if claimed and valid_user_id(claimed):
        return Identity(user_id=claimed, verified=False)
    digest = hashlib.sha256(request.connection_id.encode()).hexdigest()[:8]
    return Identity(user_id=f"guest-{digest}", verified=False)


def _expiry(value: Any) -> int | None:
    """The token's ``exp`` from the authorizer context (API Gateway passes context values as strings)."""
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


REFUSALS: tuple[tuple[type[ChatError], int], ...] = ((FrameError, 400), (RateLimited, 429))
"""The handshake's status for a :class:`ChatError` of each kind (the first that matches)."""


def refusal_status(error: ChatError) -> int:
    """400 for an unusable connect URL, 429 over a limit, else 500 (storage failed, maybe halfway)."""
    return next((status for kind, status in REFUSALS if isinstance(error, kind)), 500)


def _forget_half_made(connection_id: str, rooms: list[str]) -> None:
    """Best effort: a refused handshake gets no ``$disconnect``, so remove what was already written."""
    try:
        container.service().disconnect(connection_id, also_rooms=frozenset(rooms))
    except ChatError:
        logger.warning("could not clean up a refused connection; TTL will")


@lambda_handler
def handler(event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
    settings = container.settings()
    request = WebSocketRequest(event)
    identity = _identity(request, settings.auth_mode)
    if identity is None:
        logger.warning("connect refused: no verified identity", status=401)
        record_auth_failure("no verified identity")
        return {"statusCode": 401, "body": "Unauthorized"}
    bind(user_id=identity.user_id)
    rooms: list[str] = []
    try:
        rooms = parse_rooms(
            request.query.get("rooms"),
            default=settings.default_room,
            maximum=settings.max_rooms_per_connection,
        )
        outcome = container.service().connect(request.connection_id, identity, rooms)
    except ChatError as error:
        status = refusal_status(error)
        logger.warning("connect refused", status=status, code=error.code, reason=error.message)
        if isinstance(error, RateLimited):
            record_rate_limited()
            metrics.add_metadata("error_code", error.code)
        if status == 500:
            _forget_half_made(request.connection_id, rooms)
        return {"statusCode": status, "body": error.message}
    logger.info("connected", rooms=rooms, verified=identity.verified)
    if settings.welcome_function:
        payload = {
            "connection_id": request.connection_id,
            "callback_url": callback_url(request.domain_name, request.stage),
            "welcome": outcome.welcome,
            "announcements": deliveries_to_json(outcome.announcements),
            "request_id": request.request_id,  # the welcome's logs carry this $connect's correlation id
            "user_id": identity.user_id,
            "connected_at_ms": request.connected_at_ms or int(time.time() * 1000),
        }
        try:
            container.lambda_client().invoke(
                FunctionName=settings.welcome_function,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except (BotoCoreError, ClientError):  # the connection works without its welcome
            logger.exception("could not schedule the welcome")
    return {"statusCode": 200}
