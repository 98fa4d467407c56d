"""Transitional: sends the remaining ``structlog`` calls to the Powertools logger.

Every handler logs through :data:`serverless_app.chat.observability.logger`. Until the last
modules still calling ``structlog.get_logger`` switch to it, this routes their lines into the same
JSON stream, with the same invocation keys (``correlation_id``, ``connection_id``, Lambda context).
Once nothing imports ``structlog``, delete this module and its call in ``container.settings``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping
from typing import Any

import structlog

from serverless_app.chat.observability import logger

__all__ = ["configure_logging"]

_configured = False


def _to_powertools(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> tuple[Any, ...]:
    message = event_dict.pop("event", "")
    exc_info = event_dict.pop("exc_info", None)
    return (message,), {"exc_info": exc_info, "extra": event_dict, "stacklevel": 4}


def configure_logging() -> None:
    global _configured
    if _configured:
        return
    level = logging.getLevelNamesMapping().get(os.environ.get("LOG_LEVEL", "INFO").upper(), logging.INFO)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, _to_powertools],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_: logger,
        cache_logger_on_first_use=True,
    )
    _configured = True
