"""Logs, metrics and traces with Powertools for AWS Lambda (Python): one of each per container.

* ``logger``: JSON lines on stdout. :func:`lambda_handler` injects the Lambda context (``cold_start``,
  ``function_name``, ``function_request_id``, …) and binds, once per invocation, ``correlation_id``
  (API Gateway's ``requestContext.requestId``, the ``request_id`` clients get in ``error`` frames),
  ``connection_id`` and ``route``; handlers add ``user_id``, ``room`` and ``message_id`` with
  :func:`bind` when they know them. Call it like the standard logger, context as keywords:
  ``logger.info("frame refused", code=error.code)``.
* ``metrics``: CloudWatch Embedded Metric Format, namespace ``POWERTOOLS_METRICS_NAMESPACE``
  (``wschat``) and the one dimension ``service`` (``POWERTOOLS_SERVICE_NAME``), flushed as one JSON
  line at the end of each invocation that recorded any. Names in :class:`~serverless_app.definitions.Metric`,
  which the stack's alarms and dashboard read too.
* ``tracer``: X-Ray, ``botocore`` patched; disabled outside Lambda and wherever
  ``POWERTOOLS_TRACE_DISABLED=true`` (the local runtime sets it: there is no X-Ray daemon).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from serverless_app import definitions
from serverless_app.chat.errors import ChatError, RateLimited
from serverless_app.definitions import Metric

if TYPE_CHECKING:
    from serverless_app.chat.delivery import DeliveryReport

__all__ = [
    "METRICS_NAMESPACE",
    "SERVICE_NAME",
    "bind",
    "lambda_handler",
    "logger",
    "metrics",
    "record_auth_failure",
    "record_delivery",
    "record_rate_limited",
    "record_refusal",
    "record_welcome_latency",
    "tracer",
]

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or definitions.SERVICE_NAME
"""``wschat`` or, per environment, ``dev-wschat`` (the stack sets ``POWERTOOLS_SERVICE_NAME``)."""
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or definitions.METRICS_NAMESPACE


class _Stdout:
    """Whatever ``sys.stdout`` is when a line is written (a test's capture, the worker's redirect)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


logger = Logger(service=SERVICE_NAME, stream=_Stdout(), utc=True, use_rfc3339=True)  # type: ignore[arg-type]
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME, patch_modules=["botocore"])


def _adopt_library_loggers() -> None:
    """Modules that log with the standard library (``logging.getLogger(__name__)``, ``extra={…}``) and
    are also used outside Lambda (``auth``, ``protocol``) write the same JSON lines, with the
    invocation's keys, once this module is imported: that is, in a Lambda function."""
    library = logging.getLogger("serverless_app.chat")
    if logger.registered_handler not in library.handlers:
        library.addHandler(logger.registered_handler)
    library.setLevel(logger.log_level)
    library.propagate = False


_adopt_library_loggers()


def bind(**keys: object) -> None:
    """Add keys to every later log line of this invocation (``None`` values are left out)."""
    logger.append_keys(**{key: value for key, value in keys.items() if value is not None})


# --- metrics ---------------------------------------------------------------------


def record_delivery(report: DeliveryReport, *, duration_ms: float | None = None) -> None:
    """A delivery's results as metrics: posts by result, connections pruned, posts made, and how
    long it took. Nothing is recorded for a delivery that posted nothing."""
    results = report.results
    posts = sum(results.values())
    if not posts and not report.pruned:
        return
    count = MetricUnit.Count
    metrics.add_metric(Metric.DELIVERIES_SUCCEEDED, count, results["ok"])
    metrics.add_metric(Metric.DELIVERIES_GONE, count, results["gone"])
    # Frames a live connection never got: still throttled or failing after every redelivery round
    # (attempts that failed and then went through count in DeliveriesThrottled/ok, not here).
    metrics.add_metric(Metric.DELIVERIES_FAILED, count, report.unsent + results["too_large"])
    metrics.add_metric(Metric.DELIVERIES_THROTTLED, count, results["throttled"])
    metrics.add_metric(Metric.CONNECTIONS_PRUNED, count, len(report.pruned))
    metrics.add_metric(Metric.FANOUT_RECIPIENTS, count, posts)
    if duration_ms is not None:
        metrics.add_metric(Metric.FANOUT_DURATION, MetricUnit.Milliseconds, duration_ms)


def record_refusal(error: ChatError) -> None:
    """An ``error`` frame sent: ``FramesRefused`` (and ``RateLimited`` for a rate limit), the code as
    metadata rather than a dimension, so each metric keeps the one ``service`` dimension."""
    metrics.add_metric(Metric.FRAMES_REFUSED, MetricUnit.Count, 1)
    metrics.add_metadata("error_code", error.code)
    if isinstance(error, RateLimited):
        record_rate_limited()


def record_rate_limited() -> None:
    """A rate or connection limit refused a frame or a connection."""
    metrics.add_metric(Metric.RATE_LIMITED, MetricUnit.Count, 1)


def record_auth_failure(reason: str) -> None:
    metrics.add_metric(Metric.AUTH_FAILURES, MetricUnit.Count, 1)
    metrics.add_metadata("auth_failure", reason)


def record_welcome_latency(connected_at_ms: float) -> None:
    """From the connection's ``connectedAt`` (epoch ms) to now, when the welcome was posted."""
    metrics.add_metric(Metric.WELCOME_LATENCY, MetricUnit.Milliseconds, time.time() * 1000 - connected_at_ms)


def _flush_metrics() -> None:
    """``log_metrics`` without its "No application metrics" warning on invocations that recorded none."""
    if metrics.metric_set:
        metrics.flush_metrics()
    else:
        metrics.clear_metrics()


# --- the handler decorator -----------------------------------------------------------

Handler = TypeVar("Handler", bound=Callable[[Any, Any], Any])


class _PartialContext:
    """What Powertools reads from the Lambda context, for a handler called with ``None`` or a partial
    stand-in (tests, scripts); the handler itself still gets what it was called with."""

    _FIELDS = ("function_name", "memory_limit_in_mb", "invoked_function_arn", "aws_request_id")

    def __init__(self, context: Any) -> None:
        self.context = context
        self.function_name = getattr(context, "function_name", os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""))
        self.memory_limit_in_mb = getattr(context, "memory_limit_in_mb", 0)
        self.invoked_function_arn = getattr(context, "invoked_function_arn", "")
        self.aws_request_id = getattr(context, "aws_request_id", "")

    @classmethod
    def needed(cls, context: Any) -> bool:
        return not all(hasattr(context, name) for name in cls._FIELDS)


def _correlation(event: Any) -> dict[str, Any]:
    """``correlation_id``, ``connection_id`` and ``route`` of an API Gateway event, or of an
    asynchronous invocation's payload that carries ``request_id`` and ``connection_id``."""
    if not isinstance(event, dict):
        return {}
    context = event.get("requestContext")
    if isinstance(context, dict):
        return {
            "correlation_id": context.get("requestId"),
            "connection_id": context.get("connectionId"),
            "route": context.get("routeKey"),
        }
    return {"correlation_id": event.get("request_id"), "connection_id": event.get("connection_id")}


def lambda_handler(function: Handler) -> Handler:
    """A Lambda entry point with Powertools' Tracer, Logger (context injected, state cleared each
    invocation, correlation keys bound) and Metrics (flushed at the end of the invocation)."""

    @functools.wraps(function)
    def bound(event: Any, context: Any) -> Any:
        bind(**_correlation(event))
        return function(event, context.context if isinstance(context, _PartialContext) else context)

    traced = tracer.capture_lambda_handler(bound)
    logged = logger.inject_lambda_context(traced, clear_state=True)

    @functools.wraps(function)
    def handler(event: Any, context: Any) -> Any:
        try:
            return logged(event, _PartialContext(context) if _PartialContext.needed(context) else context)
        finally:
            _flush_metrics()

    return handler  # type: ignore[return-value]
