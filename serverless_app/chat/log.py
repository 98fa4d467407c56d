"""Structured JSON logs (one object per line), as CloudWatch Logs Insights likes them."""

from __future__ import annotations

import logging
import os

import structlog

__all__ = ["configure_logging"]

_configured = False


def configure_logging() -> None:
    global _configured
    if _configured:
        return
    level = logging.getLevelNamesMapping().get(os.environ.get("LOG_LEVEL", "INFO").upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    _configured = True
