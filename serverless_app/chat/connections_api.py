"""The ``@connections`` management API: concurrent posts with 410 and 429 handling.

Called by the Lambda handlers and the delivery code (through :func:`serverless_app.chat.container.connections_api`
and :func:`callback_url`). Each request is SigV4-signed with botocore's own signer and sent by
:class:`serverless_app.chat.http11.Http11Pool` (h11 over a pool of keep-alive connections driven by
one asyncio event loop that lives for the whole Lambda container); it also calls tenacity for the
retries and :class:`~serverless_app.chat.budget.PostsBudget`. Compared with a boto3
client call per post (or urllib3 from a thread pool), this avoids both per-call client
overhead and GIL contention between threads, so the CPU billed per delivery stays low and
a room of 1,000 is served by a few dozen connections in parallel. It speaks exactly the
wire protocol boto3's ``apigatewaymanagementapi`` client speaks.

Every ``@connections`` request of the account draws on one quota (10,000 requests/s by default,
shared by every API in the account and region; 429 past it). Every POST first takes one post from
the stack's shared budget (:class:`~serverless_app.chat.budget.PostsBudget`, ``FANOUT_RATE_PER_S``,
shared by every container), and each container spaces its POSTs at that rate so a leased chunk
does not leave as one spike; a 429 that still happens is retried with jittered exponential backoff
like a 5xx.
"""

from __future__ import annotations

import asyncio
import enum
import json
import os
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import h11
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import get_session
from tenacity import AsyncRetrying, RetryError, retry_if_result, stop_after_attempt, wait_random_exponential

from serverless_app.chat.budget import PostsBudget
from serverless_app.chat.http11 import Http11Pool, StaleConnection, run_on_loop

__all__ = ["ConnectionsApi", "PostResult", "callback_url"]

MANAGEMENT_ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"
_T = TypeVar("_T")


class PostResult(enum.Enum):
    OK = "ok"
    GONE = "gone"
    """410: the connection no longer exists; its records should be pruned."""
    TOO_LARGE = "too_large"
    THROTTLED = "throttled"
    """429 even after retries with backoff."""
    FAILED = "failed"
    """Network failures or 5xx even after retries, or another unexpected answer."""


def callback_url(domain_name: str, stage: str) -> str:
    """Where to reach this API's ``@connections``: ``https://{domainName}/{stage}``.

    ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` (botocore's own per-service endpoint
    variable) overrides it; the local runtime sets it to its plain-HTTP gateway.
    """
    return os.environ.get(MANAGEMENT_ENDPOINT_ENV) or f"https://{domain_name}/{stage}"


def _retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


def _result_of(status: int | None) -> PostResult:
    if status is None or status >= 500:
        return PostResult.FAILED
    if 200 <= status < 300:
        return PostResult.OK
    if status == 410:
        return PostResult.GONE
    if status == 413:
        return PostResult.TOO_LARGE
    if status == 429:
        return PostResult.THROTTLED
    return PostResult.FAILED


class _Pacer:
    """The container's ``@connections`` budget: POSTs spaced ``1/rate`` apart, with a burst of a tenth
    of a second's worth. One per process, so every fan-out running in the container shares it."""

    def __init__(self) -> None:
        self.rate = 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if self.rate <= 0:
            return
        now = asyncio.get_running_loop().time()
        interval = 1.0 / self.rate
        slot = max(self._next, now - max(1.0, self.rate / 10) * interval)
        self._next = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)


_PACER = _Pacer()


class ConnectionsApi:
    """A client of one API stage's ``@connections`` endpoint."""

    def __init__(
        self,
        endpoint: str,
        *,
        concurrency: int = 32,
        region: str | None = None,
        credentials: Credentials | ReadOnlyCredentials | None = None,
        timeout_s: float = 5.0,
        retry_attempts: int = 4,
        rate_per_s: float = 0.0,
        budget: PostsBudget | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        parts = urlsplit(self.endpoint)
        self._host = parts.hostname or "localhost"
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._authority = parts.netloc
        self._base_path = parts.path
        self._region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        resolved = credentials or get_session().get_credentials()
        if resolved is None:
            raise RuntimeError("no AWS credentials for the @connections API")
        self._signer = SigV4Auth(resolved, "execute-api", self._region)
        """botocore's signer, built once: it reads the (refreshable) credentials on every request."""
        self._pool = Http11Pool(
            self._host, self._port, self._tls, concurrency=concurrency, timeout_s=timeout_s
        )
        self._retry_attempts = retry_attempts
        if rate_per_s > 0:
            _PACER.rate = rate_per_s
        """Posts per second for the whole container (every client, every fan-out); 0: unpaced."""
        self._budget = budget
        """The stack's shared budget, drawn on by every POST (``None``: this container's pace only)."""

    # --- public, synchronous API (the Lambda handlers are synchronous) ------------------

    def post(self, connection_id: str, data: bytes) -> PostResult:
        """Send one frame; retries 429 with jittered exponential backoff."""
        return run_on_loop(self._post(connection_id, data))

    def post_many(self, posts: Iterable[tuple[str, bytes]]) -> dict[str, PostResult]:
        """Post concurrently over up to ``concurrency`` connections; each connection's result."""
        return run_on_loop(self._post_many(list(posts)))

    def get(self, connection_id: str) -> dict[str, Any] | None:
        """``GetConnection``: the connection's info, or ``None`` if it is gone (410)."""
        status, body = run_on_loop(self._request("GET", connection_id, b""))
        if status == 410:
            return None
        if status != 200:
            raise RuntimeError(f"GetConnection answered HTTP {status}")
        return dict(json.loads(body))

    def delete(self, connection_id: str) -> bool:
        """Close a connection; ``False`` if it was already gone."""
        status, _ = run_on_loop(self._request("DELETE", connection_id, b""))
        return status != 410

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run a coroutine on the container's connections loop (the one :meth:`post_async` needs)."""
        return run_on_loop(coroutine)

    async def post_async(self, connection_id: str, data: bytes) -> PostResult:
        """:meth:`post` for a coroutine already running on :meth:`run`'s loop."""
        return await self._post(connection_id, data)

    # --- async internals --------------------------------------------------------------

    async def _post_many(self, posts: list[tuple[str, bytes]]) -> dict[str, PostResult]:
        results = await asyncio.gather(*(self._post(connection_id, data) for connection_id, data in posts))
        return {connection_id: result for (connection_id, _), result in zip(posts, results, strict=True)}

    async def _post(self, connection_id: str, data: bytes) -> PostResult:
        """Send one frame. 429s, 5xx answers and network failures are retried with jittered
        exponential backoff (a retry after a lost answer can deliver a frame twice; clients
        de-duplicate by ``message_id``, which beats losing it)."""
        status = await self._attempt(connection_id, data)
        if _retryable(status):
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_result(_retryable),
                    wait=wait_random_exponential(multiplier=0.05, max=1.0),
                    stop=stop_after_attempt(self._retry_attempts - 1),
                ):
                    with attempt:
                        status = await self._attempt(connection_id, data)
                    if attempt.retry_state.outcome is not None and not attempt.retry_state.outcome.failed:
                        attempt.retry_state.set_result(status)
            except RetryError:
                pass  # ``status`` holds the last answer
        return _result_of(status)

    async def _attempt(self, connection_id: str, data: bytes) -> int | None:
        """One POST: its status, or ``None`` when the network failed. Each attempt takes one post from
        the shared budget and is paced by the container (a retry draws on the account's quota like
        any post)."""
        if self._budget is not None:
            await self._budget.take()
        await _PACER.wait()
        try:
            return await self._status("POST", connection_id, data)
        except (OSError, TimeoutError, h11.ProtocolError, StaleConnection):
            return None

    async def _status(self, method: str, connection_id: str, body: bytes) -> int:
        status, _ = await self._request(method, connection_id, body)
        return status

    async def _request(self, method: str, connection_id: str, body: bytes) -> tuple[int, bytes]:
        path = f"{self._base_path}/@connections/{quote(connection_id, safe='')}"
        # Signed when it is sent, not when it is queued: a fan-out of 100,000 posts must not
        # sign them all before the first leaves, and a signature is only valid for 5 minutes.
        return await self._pool.request(method, path, lambda: self._signed_headers(method, path, body), body)

    def _signed_headers(self, method: str, path: str, body: bytes) -> list[tuple[str, str]]:
        request = AWSRequest(
            method=method, url=f"{'https' if self._tls else 'http'}://{self._authority}{path}", data=body
        )
        self._signer.add_auth(request)
        headers = [("host", self._authority), ("content-length", str(len(body)))]
        headers += [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in ("host", "content-length")
        ]
        return headers
