"""One Lambda "container": a long-lived process that runs one function's handler, one invocation at a time.

Started by :mod:`serverless_app.local.lambda_runtime` as ``python -m serverless_app.local.lambda_worker``
with exactly that function's environment (``_HANDLER`` names the handler, like on AWS). It imports the
handler once (the init phase), says ``ready``, then serves invocations until stdin closes.

Wire protocol (private to the runtime): frames of a 4-byte big-endian length followed by UTF-8 JSON
(:mod:`serverless_app.local.lambda_container`).

* worker → runtime, once: ``{"ready": true, "pid": …, "init_ms": …}``
* runtime → worker: ``{"id": <request id>, "event": …, "deadline_ms": <epoch ms>}``
* worker → runtime: ``{"id": …, "payload": …}`` or ``{"id": …, "error": {"errorType", "errorMessage", …}}``

The IPC channel uses private duplicates of descriptors 0 and 1: descriptor 1 is pointed at stderr and
descriptor 0 at ``/dev/null``, so a handler's ``print`` (or a child process it starts) can never corrupt
the channel. Everything written to stderr is forwarded to the runtime's log.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import IO, Any

from serverless_app.local.lambda_container import ACCOUNT_ID, HEADER, REGION, encode_message, function_arn

__all__ = ["LambdaContext", "load_handler", "main"]

HandlerFunction = Callable[[Any, Any], Any]


class LambdaContext:
    """The context object the Python runtime passes to a handler (the fields handlers use)."""

    def __init__(self, request_id: str, deadline_ms: int, environ: dict[str, str] | os._Environ[str]) -> None:
        self.aws_request_id = request_id
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = function_arn(
            self.function_name,
            region=environ.get("AWS_REGION", REGION),
            account_id=environ.get("LOCAL_LAMBDA_ACCOUNT_ID", ACCOUNT_ID),
        )
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": stack or []}


def load_handler(handler: str) -> tuple[HandlerFunction | None, dict[str, Any] | None]:
    """Import ``module.function``; on failure return the error AWS's Python runtime reports instead."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        return None, _error("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        message = f"Unable to import module '{module_name}': {exc}"
        return None, _error("Runtime.ImportModuleError", message, traceback.format_exc().splitlines())
    function = getattr(module, function_name, None)
    if not callable(function):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, _error("Runtime.HandlerNotFound", message)
    return function, None


def _write(channel: IO[bytes], message: dict[str, Any]) -> None:
    channel.write(encode_message(message))
    channel.flush()


def _read(channel: IO[bytes]) -> dict[str, Any] | None:
    header = channel.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    body = channel.read(length)
    if len(body) < length:
        return None
    message: dict[str, Any] = json.loads(body)
    return message


def _invoke(function: HandlerFunction, request: dict[str, Any]) -> dict[str, Any]:
    context = LambdaContext(str(request["id"]), int(request["deadline_ms"]), os.environ)
    _REQUEST_ID.request_id = context.aws_request_id
    try:
        payload = function(request["event"], context)
    except Exception as exc:
        stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        return {"error": _error(type(exc).__name__, str(exc), stack)}
    try:  # marshal here, so an unserialisable result is the handler's error, not the channel's
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        return {"error": _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")}
    return {"payload": payload}


def _take_channels() -> tuple[IO[bytes], IO[bytes]]:
    """Move the IPC pipes off descriptors 0 and 1 so nothing else can read or write them."""
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    return channel_in, channel_out


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


_REQUEST_ID = _RequestIdFilter()


def _configure_logging() -> None:
    """Like the Python runtime: a root handler writing ``[LEVEL]\\ttime\\trequest id\\tmessage`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(aws_request_id)s\t%(message)s"))
    handler.addFilter(_REQUEST_ID)
    logging.getLogger().addHandler(handler)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runtime's to handle
    channel_in, channel_out = _take_channels()
    _configure_logging()
    started = time.perf_counter()
    function, init_error = load_handler(os.environ.get("_HANDLER", ""))
    init_ms = (time.perf_counter() - started) * 1000
    _write(channel_out, {"ready": True, "pid": os.getpid(), "init_ms": init_ms})
    while (request := _read(channel_in)) is not None:
        reply = {"error": init_error} if function is None else _invoke(function, request)
        reply["id"] = request["id"]
        sys.stderr.flush()
        _write(channel_out, reply)


if __name__ == "__main__":
    main()
