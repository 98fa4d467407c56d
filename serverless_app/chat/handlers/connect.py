"""``$connect``: record the connection and its rooms, then schedule the welcome.

A ``PostToConnection`` made during ``$connect`` fails with 410 on AWS (the connection is
not established until this handler returns), so the welcome and the presence ``join``
events are delivered by ``websocket-welcome``, invoked asynchronously.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from serverless_app.chat import container
from serverless_app.chat.errors import ChatError, FrameError, RateLimited
from serverless_app.chat.events import WebSocketRequest
from serverless_app.chat.fanout import callback_url
from serverless_app.chat.models import Identity
from serverless_app.chat.serialization import deliveries_to_json
from serverless_app.chat.service import parse_rooms, valid_user_id

log = structlog.get_logger("websocket-connect")


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


def _forget_half_made(connection_id: str, rooms: list[str]) -> None:
    """Best effort: a refused handshake gets no ``$disconnect``, so remove what was already written."""
    try:
        container.service().disconnect(connection_id, also_rooms=frozenset(rooms))
    except ChatError:
        log.warning("could not clean up a refused connection; TTL will", connection_id=connection_id)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = container.settings()
    request = WebSocketRequest.from_event(event)
    identity = _identity(request, settings.auth_mode)
    if identity is None:
        log.warning("connect refused: no verified identity", connection_id=request.connection_id)
        return {"statusCode": 401, "body": "Unauthorized"}
    try:
        rooms = parse_rooms(
            request.query.get("rooms"),
            default=settings.default_room,
            maximum=settings.max_rooms_per_connection,
        )
        outcome = container.service().connect(request.connection_id, identity, rooms)
    except ChatError as error:
        status = 400 if isinstance(error, FrameError) else 429 if isinstance(error, RateLimited) else 500
        log.warning(
            "connect refused", connection_id=request.connection_id, code=error.code, reason=error.message
        )
        if status == 500:
            _forget_half_made(request.connection_id, rooms)
        return {"statusCode": status, "body": error.message}
    log.info("connected", connection_id=request.connection_id, user_id=identity.user_id, rooms=rooms)
    if settings.welcome_function:
        payload = {
            "connection_id": request.connection_id,
            "callback_url": callback_url(request.domain_name, request.stage),
            "welcome": outcome.welcome,
            "announcements": deliveries_to_json(outcome.announcements),
        }
        try:
            container.lambda_client().invoke(
                FunctionName=settings.welcome_function,
                InvocationType="Event",
                Payload=json.dumps(payload).encode(),
            )
        except (BotoCoreError, ClientError):  # the connection works without its welcome
            log.exception("could not schedule the welcome", connection_id=request.connection_id)
    return {"statusCode": 200}
