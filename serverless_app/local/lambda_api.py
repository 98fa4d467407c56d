"""The Lambda ``Invoke`` wire protocol over :class:`LambdaRuntime`, for the unmodified boto3 client.

``POST /2015-03-31/functions/{FunctionName}/invocations`` (rest-json), as the real service answers it:

* ``X-Amz-Invocation-Type: RequestResponse`` (default) → 200 with the handler's JSON result; when the
  handler raised, timed out or crashed, still 200 but with ``X-Amz-Function-Error: Unhandled`` and the
  error object (``errorType``, ``errorMessage``, ``stackTrace``) as the payload.
* ``Event`` → 202, empty body; the invocation is queued (:meth:`LambdaRuntime.invoke_async`).
* ``DryRun`` → 204.
* Unknown function or a qualifier other than ``$LATEST`` → 404 ``ResourceNotFoundException``; a body
  that is not JSON → 400 ``InvalidRequestContentException``; an oversize payload → 413
  ``RequestTooLargeException``. Errors carry ``x-amzn-ErrorType`` and ``{"Type": "User", "message"}``,
  which botocore turns into a ``ClientError`` with that code.

Served on a port of its own, on loopback only (AWS's Lambda endpoint is separate from execute-api
too; the handlers find it through ``AWS_ENDPOINT_URL_LAMBDA``). Every request must be SigV4-signed for
service ``lambda`` and the local region with the local runtime's credentials
(:mod:`serverless_app.local.sigv4`), else 403 ``InvalidSignatureException`` (or
``MissingAuthenticationTokenException``, ...); a request carrying an ``Origin`` header (a browser's:
the SDKs send none) is refused with 403 before anything else, and so is a foreign ``Host``
(:mod:`serverless_app.local.http_guard`).

``FunctionName`` may be a name, ``name:qualifier``, a partial ARN (``123456789012:function:name``) or a
full ARN. Not emulated: ``X-Amz-Log-Type: Tail`` (no ``LogResult``), ``ClientContext``, throttling (429):
excess invocations wait for a free worker instead.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from serverless_app.local.errors import FunctionNotFoundError, SignatureError
from serverless_app.local.lambda_container import REGION, function_arn
from serverless_app.local.lambda_runtime import LambdaRuntime
from serverless_app.local.sigv4 import verify_sigv4

__all__ = [
    "INVOKE_PATH",
    "MAX_ASYNC_PAYLOAD_BYTES",
    "MAX_SYNC_PAYLOAD_BYTES",
    "add_lambda_routes",
    "parse_function_name",
]

INVOKE_PATH = "/2015-03-31/functions/{function_name}/invocations"
MAX_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
"""Synchronous invocation: request and response payloads (6 MB each)."""
MAX_ASYNC_PAYLOAD_BYTES = 1024 * 1024
"""Asynchronous invocation payload (1 MB since October 2025; 256 KB before)."""
RUNTIME_KEY: web.AppKey[LambdaRuntime] = web.AppKey("lambda_runtime", LambdaRuntime)


def parse_function_name(raw: str) -> tuple[str, str | None]:
    """``(name, qualifier)`` from a name, ``name:qualifier``, a partial ARN or a full ARN."""
    parts = raw.split(":")
    if parts[0] == "arn" and len(parts) >= 7:
        return parts[6], (parts[7] if len(parts) > 7 else None)
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2], (parts[3] if len(parts) > 3 else None)
    if len(parts) == 2:
        return parts[0], parts[1]
    return raw, None


def add_lambda_routes(app: web.Application, runtime: LambdaRuntime) -> None:
    """Serve Lambda ``Invoke`` for ``runtime``'s functions on ``app``."""
    app[RUNTIME_KEY] = runtime
    app.router.add_post(INVOKE_PATH, _invoke)


def _error(status: int, code: str, message: str, request_id: str) -> web.Response:
    return web.json_response(
        {"Type": "User", "message": message},
        status=status,
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id},
    )


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The body, or None past ``limit`` bytes (read directly: the app's ``client_max_size`` is 1 MB)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _invoke(request: web.Request) -> web.StreamResponse:
    runtime = request.app[RUNTIME_KEY]
    request_id = str(uuid.uuid4())
    if "Origin" in request.headers:  # a browser (a "simple" cross-site POST needs no preflight)
        return _error(403, "AccessDeniedException", "Browser requests are not accepted", request_id)
    invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
    limit = MAX_ASYNC_PAYLOAD_BYTES if invocation_type == "Event" else MAX_SYNC_PAYLOAD_BYTES
    body = await _read_body(request, limit)
    if body is not None:
        try:
            verify_sigv4(
                method=request.method,
                raw_path=request.raw_path,
                headers=request.headers,
                body=body,
                service="lambda",
                region=REGION,
            )
        except SignatureError as error:
            return _error(error.status, error.code, error.message, request_id)
    name, qualifier = parse_function_name(request.match_info["function_name"])
    qualifier = request.query.get("Qualifier", qualifier)
    if not runtime.has_function(name) or qualifier not in (None, "$LATEST"):
        target = function_arn(name) + (f":{qualifier}" if qualifier else "")
        return _error(404, "ResourceNotFoundException", f"Function not found: {target}", request_id)
    if invocation_type not in ("RequestResponse", "Event", "DryRun"):
        message = f"1 validation error detected: Value '{invocation_type}' at 'invocationType' failed to satisfy constraint"
        return _error(400, "InvalidParameterValueException", message, request_id)
    if body is None:
        operation = "InvokeAsync" if invocation_type == "Event" else "Invoke"
        message = f"Request must be smaller than {limit} bytes for the {operation} operation"
        return _error(413, "RequestTooLargeException", message, request_id)
    try:
        event: Any = json.loads(body) if body.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        message = f"Could not parse request body into json: {exc}"
        return _error(400, "InvalidRequestContentException", message, request_id)
    if invocation_type == "DryRun":
        return web.Response(status=204, headers={"x-amzn-RequestId": request_id})
    try:
        if invocation_type == "Event":
            request_id = runtime.invoke_async(name, event)
            return web.Response(status=202, headers={"x-amzn-RequestId": request_id})
        result = await runtime.invoke(name, event)
    except FunctionNotFoundError:
        return _error(
            404, "ResourceNotFoundException", f"Function not found: {function_arn(name)}", request_id
        )
    headers = {"x-amzn-RequestId": result.request_id, "X-Amz-Executed-Version": "$LATEST"}
    if result.error is not None:
        headers["X-Amz-Function-Error"] = "Unhandled"
        payload = json.dumps(result.error)
    else:
        payload = json.dumps(result.payload)
        if len(payload) > MAX_SYNC_PAYLOAD_BYTES:
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = json.dumps(
                {
                    "errorType": "Function.ResponseSizeTooLarge",
                    "errorMessage": f"Response payload size ({len(payload)} bytes) exceeded maximum allowed "
                    f"payload size ({MAX_SYNC_PAYLOAD_BYTES} bytes).",
                }
            )
    return web.Response(status=200, body=payload.encode(), content_type="application/json", headers=headers)
