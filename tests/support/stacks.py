"""The one way tests start the local runtime: :func:`running_stack`, and the token-mode secret."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from serverless_app.local.background import LocalStackThread
from serverless_app.local.server import LocalStack

__all__ = ["TOKEN_SECRET", "running_stack"]

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
