"""The ``@connections`` management API: concurrent posts with 410 and 429 handling.

Posts are SigV4-signed with botocore's own signer and sent over one pooled urllib3
connection pool sized to the concurrency, which costs far less CPU per delivery than a
boto3 client call while speaking the same wire protocol.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials
from botocore.session import get_session
from tenacity import RetryError, retry, retry_if_result, stop_after_attempt, wait_random_exponential

__all__ = ["ConnectionsApi", "PostResult", "callback_url"]

MANAGEMENT_ENDPOINT_ENV = "AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI"


class PostResult(enum.Enum):
    OK = "ok"
    GONE = "gone"
    """410: the connection no longer exists; its records should be pruned."""
    TOO_LARGE = "too_large"
    THROTTLED = "throttled"
    """429 even after retries with backoff."""
    FAILED = "failed"


def callback_url(domain_name: str, stage: str) -> str:
    """Where to reach this API's ``@connections``: ``https://{domainName}/{stage}``.

    ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` (botocore's own per-service endpoint
    variable) overrides it; the local runtime sets it to its plain-HTTP gateway.
    """
    return os.environ.get(MANAGEMENT_ENDPOINT_ENV) or f"https://{domain_name}/{stage}"


class _Throttled(Exception):
    pass


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
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._concurrency = concurrency
        session = get_session()
        self._region = (
            region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        resolved = credentials or session.get_credentials()
        if resolved is None:
            raise RuntimeError("no AWS credentials for the @connections API")
        self._credentials = resolved
        self._pool = urllib3.PoolManager(
            maxsize=concurrency,
            block=True,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        )
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="fanout")
        self._retry_attempts = retry_attempts

    def _signed(self, method: str, connection_id: str, body: bytes | None) -> tuple[str, dict[str, str]]:
        url = f"{self.endpoint}/@connections/{quote(connection_id, safe='')}"
        request = AWSRequest(method=method, url=url, data=body or b"")
        SigV4Auth(self._credentials, "execute-api", self._region).add_auth(request)
        return url, dict(request.headers.items())

    def _request(
        self, method: str, connection_id: str, body: bytes | None = None
    ) -> urllib3.BaseHTTPResponse:
        url, headers = self._signed(method, connection_id, body)
        return self._pool.request(method, url, body=body, headers=headers)

    def post(self, connection_id: str, data: bytes) -> PostResult:
        """Send one frame; retries 429 with jittered exponential backoff."""

        @retry(
            retry=retry_if_result(lambda status: status == 429),
            wait=wait_random_exponential(multiplier=0.05, max=1.0),
            stop=stop_after_attempt(self._retry_attempts),
        )
        def attempt() -> int:
            return int(self._request("POST", connection_id, data).status)

        try:
            status = attempt()
        except RetryError:
            return PostResult.THROTTLED
        except urllib3.exceptions.HTTPError:
            return PostResult.FAILED
        if 200 <= status < 300:
            return PostResult.OK
        if status == 410:
            return PostResult.GONE
        if status == 413:
            return PostResult.TOO_LARGE
        return PostResult.FAILED

    def post_many(self, posts: Iterable[tuple[str, bytes]]) -> dict[str, PostResult]:
        """Post concurrently (bounded by the pool size); return each connection's result."""
        items = list(posts)
        if len(items) == 1:
            connection_id, data = items[0]
            return {connection_id: self.post(connection_id, data)}
        futures = {
            connection_id: self._executor.submit(self.post, connection_id, data)
            for connection_id, data in items
        }
        return {connection_id: future.result() for connection_id, future in futures.items()}

    def get(self, connection_id: str) -> dict[str, Any] | None:
        """``GetConnection``: the connection's info, or ``None`` if it is gone (410)."""
        response = self._request("GET", connection_id)
        if response.status == 410:
            return None
        if response.status != 200:
            raise RuntimeError(f"GetConnection answered HTTP {response.status}")
        return dict(json.loads(response.data))

    def delete(self, connection_id: str) -> bool:
        """Close a connection; ``False`` if it was already gone."""
        return int(self._request("DELETE", connection_id).status) != 410
