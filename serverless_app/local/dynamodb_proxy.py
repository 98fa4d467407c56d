"""A recording HTTP proxy in front of DynamoDB Local: what each operation costs, in capacity units.

The handlers' ``AWS_ENDPOINT_URL_DYNAMODB`` points here. Every request is forwarded to DynamoDB Local
unchanged, except that operations accepting ``ReturnConsumedCapacity`` get ``"TOTAL"`` when the caller
did not ask. Rewriting a signed body is safe because DynamoDB Local checks no SigV4 signatures (the
tests prove it). When the proxy added ``ReturnConsumedCapacity``, it strips ``ConsumedCapacity`` from the
answer again and recomputes the ``x-amz-crc32`` header botocore verifies, so the caller sees exactly
what DynamoDB would have told it.

Per operation (the ``X-Amz-Target`` suffix: ``Query``, ``PutItem``, …) it counts calls, errors by code
(the ``__type`` suffix, e.g. ``ConditionalCheckFailedException``) and sums consumed read and write
capacity units. When DynamoDB Local cannot be reached, the proxy drops the client's connection without
answering, as an unreachable endpoint would; botocore then raises ``ConnectionClosedError`` (an
``HTTPClientError``, after its retries), never a ``ClientError``. Such calls are counted under the
error code ``UpstreamUnreachable``.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

__all__ = ["CONSUMED_CAPACITY_OPERATIONS", "DynamoDBProxy", "OperationStats"]

CONSUMED_CAPACITY_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)
"""Operations whose request accepts ``ReturnConsumedCapacity``."""
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
UNREACHABLE = "UpstreamUnreachable"
_HOP_BY_HOP = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}
)


@dataclass
class OperationStats:
    """What the proxy saw of one DynamoDB operation."""

    calls: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    total_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "errors": dict(self.errors),
            "read_units": self.read_units,
            "write_units": self.write_units,
            "mean_ms": self.total_ms / self.calls if self.calls else 0.0,
        }


def _capacity_units(operation: str, body: dict[str, Any], consumed: Any) -> tuple[float, float]:
    """(read, write) units from a ``ConsumedCapacity`` value: one object or a list of them."""
    entries = consumed if isinstance(consumed, list) else [consumed]
    read = write = 0.0
    is_read = operation in READ_OPERATIONS or (
        operation == "ExecuteStatement" and str(body.get("Statement", "")).lstrip()[:6].upper() == "SELECT"
    )
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if "ReadCapacityUnits" in entry or "WriteCapacityUnits" in entry:
            read += float(entry.get("ReadCapacityUnits", 0.0))
            write += float(entry.get("WriteCapacityUnits", 0.0))
        elif is_read:
            read += float(entry.get("CapacityUnits", 0.0))
        else:
            write += float(entry.get("CapacityUnits", 0.0))
    return read, write


class DynamoDBProxy:
    """Forwards DynamoDB's JSON protocol to ``upstream_url`` and records per-operation costs."""

    def __init__(self, upstream_url: str, *, pool_size: int = 64) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self._pool_size = pool_size
        self._stats: dict[str, OperationStats] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._port = 0
        self._host = "127.0.0.1"

    @property
    def endpoint_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the proxy is not started")
        return f"http://{self._host}:{self._port}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, timeout=aiohttp.ClientTimeout(total=60)
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self._host, self._port = self._runner.addresses[0][:2]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stats(self) -> dict[str, dict[str, Any]]:
        """Operation name → calls, errors by code, read and write units, mean latency."""
        return {name: stats.as_dict() for name, stats in sorted(self._stats.items())}

    def reset(self) -> None:
        self._stats.clear()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        target = request.headers.get("X-Amz-Target", "")
        operation = target.rpartition(".")[2] or request.method
        stats = self._stats.setdefault(operation, OperationStats())
        stats.calls += 1
        body = await request.read()
        parsed: dict[str, Any] = {}
        injected = False
        if operation in CONSUMED_CAPACITY_OPERATIONS:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            if isinstance(parsed, dict) and parsed and "ReturnConsumedCapacity" not in parsed:
                parsed["ReturnConsumedCapacity"] = "TOTAL"
                body = json.dumps(parsed, separators=(",", ":")).encode()
                injected = True
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        started = time.perf_counter()
        try:
            async with self._session.request(
                request.method, self.upstream_url + request.path_qs, data=body, headers=headers
            ) as upstream:
                answer = await upstream.read()
                status = upstream.status
                answer_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        except (aiohttp.ClientError, OSError, TimeoutError):
            stats.errors[UNREACHABLE] += 1
            return self._drop_connection(request)
        finally:
            stats.total_ms += (time.perf_counter() - started) * 1000
        answer = self._record(operation, stats, parsed, status, answer, answer_headers, injected)
        return web.Response(status=status, body=answer, headers=answer_headers)

    def _record(
        self,
        operation: str,
        stats: OperationStats,
        request_body: dict[str, Any],
        status: int,
        answer: bytes,
        headers: dict[str, str],
        injected: bool,
    ) -> bytes:
        try:
            document = json.loads(answer) if answer else {}
        except ValueError:
            document = {}
        if not isinstance(document, dict):
            return answer
        if status >= 400:
            code = str(document.get("__type", f"HTTP{status}")).rpartition("#")[2]
            stats.errors[code] += 1
            return answer
        consumed = document.get("ConsumedCapacity")
        if consumed is None:
            return answer
        read, write = _capacity_units(operation, request_body, consumed)
        stats.read_units += read
        stats.write_units += write
        if not injected:
            return answer
        del document["ConsumedCapacity"]
        answer = json.dumps(document, separators=(",", ":")).encode()
        for name in list(headers):
            if name.lower() == "x-amz-crc32":
                del headers[name]
        headers["x-amz-crc32"] = str(zlib.crc32(answer) & 0xFFFFFFFF)
        return answer

    @staticmethod
    def _drop_connection(request: web.Request) -> web.StreamResponse:
        """Close the client's connection without an answer, as an unreachable endpoint would."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=502)  # never sent: the transport is gone
