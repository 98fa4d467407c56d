"""The one way tests start the local runtime (:func:`running_stack`, :func:`run_stack`), the token-mode
secret, and what tests read off a running stack."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from serverless_app.local.background import LocalStackThread
from serverless_app.local.server import LocalStack
from serverless_app.local.server import management_client as local_management_client

__all__ = ["TOKEN_SECRET", "lambda_failures", "management_client", "run_stack", "running_stack"]

TOKEN_SECRET = "t" * 64
"""The signing secret of the suite's ``token_stack`` (tests mint their tokens with it)."""


@contextlib.contextmanager
def running_stack(*, dynamodb_endpoint: str | None, **options: Any) -> Iterator[LocalStack]:
    """``run_local_stack`` on a background thread: a free port, auth ``none`` and no hot reload
    unless ``options`` say otherwise; yields the running stack (``ws_url``, ``http_url``, ...).
    ``dynamodb_endpoint`` ``None``: the stack starts a DynamoDB Local of its own (``options`` may
    say where it keeps its data)."""
    defaults: dict[str, Any] = {"port": 0, "auth_mode": "none", "reload": False}
    with LocalStackThread(dynamodb_endpoint=dynamodb_endpoint, **(defaults | options)) as stack:
        yield stack


@contextlib.contextmanager
def run_stack(*, dynamodb_endpoint: str | None, **options: Any) -> Iterator[Any]:
    """:func:`running_stack` without the web client."""
    with running_stack(dynamodb_endpoint=dynamodb_endpoint, **({"static_dir": None} | options)) as stack:
        yield stack


def lambda_failures(stats: dict[str, Any]) -> dict[str, int]:
    """Errors plus timeouts per function, from ``stack.stats()`` (``GET /_local/stats``)."""
    return {name: fn["errors"] + fn["timeouts"] for name, fn in stats["lambda"].items()}


def management_client(http_url: str) -> Any:
    """The unmodified boto3 ``@connections`` client for the ``prod`` stage; no retries, so every answer shows."""
    return local_management_client(f"{http_url}/prod")
