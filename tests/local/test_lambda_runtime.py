"""The local Lambda runtime: real worker processes with Lambda's invocation semantics."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from serverless_app.definitions import DEFAULT_FUNCTION, FunctionDefinition
from serverless_app.local.errors import FunctionNotFoundError
from serverless_app.local.lambda_runtime import InvocationResult, LambdaRuntime
from tests.local.fixtures.loop import fixture_function
from tests.support.waiting import eventually, eventually_async

T = TypeVar("T")
ECHO = fixture_function("echo")
SLOW = fixture_function("slow", timeout_s=3)


def run(
    functions: Sequence[FunctionDefinition],
    scenario: Callable[[LambdaRuntime], Awaitable[T]],
    **options: Any,
) -> T:
    """Start a runtime for ``functions``, play ``scenario`` on it, always stop it."""
    options.setdefault("environments", {})
    options.setdefault("reload", False)

    async def main() -> T:
        runtime = LambdaRuntime(functions=functions, **options)
        await runtime.start()
        try:
            return await scenario(runtime)
        finally:
            await runtime.stop()
            await runtime.stop()  # idempotent

    return asyncio.run(main())


def test_event_and_payload_round_trip() -> None:
    """The handler gets the event as sent; its return value comes back as the payload."""
    event = {"text": "héllo", "n": [1, 2.5, None, True], "nested": {"a": {}}}
    result = run([ECHO], lambda rt: rt.invoke("echo", event))
    assert result.ok and result.error is None and not result.timed_out
    assert result.payload["event"] == event
    assert result.function_name == "echo" and result.duration_ms > 0


def test_context_carries_lambda_fields_and_remaining_time() -> None:
    """The context names the function, version, ARN, memory, request id, log group/stream and counts down."""
    result = run([ECHO], lambda rt: rt.invoke("echo", {}, timeout_s=2))
    context = result.payload["context"]
    assert context["function_name"] == "echo"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo"
    assert context["memory_limit_in_mb"] == 128
    assert context["aws_request_id"] == result.request_id
    assert context["log_group_name"] == "/aws/lambda/echo"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 0 < context["remaining_ms"] <= 2000  # the smaller of the function's 5 s and the 2 s asked for


def test_functions_have_isolated_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each function's workers see exactly its own environment, nothing of another's or the runtime's."""
    monkeypatch.setenv("WSCHAT_RUNTIME_ONLY", "leaked")
    first, second = fixture_function("first", "environment"), fixture_function("second", "environment")
    names = ["SHARED", "ONLY_FIRST", "ONLY_SECOND", "WSCHAT_RUNTIME_ONLY", "AWS_LAMBDA_FUNCTION_NAME"]
    environments = {
        "first": {"SHARED": "1", "ONLY_FIRST": "yes"},
        "second": {"SHARED": "2", "ONLY_SECOND": "yes"},
    }

    async def scenario(rt: LambdaRuntime) -> list[InvocationResult]:
        return list(
            await asyncio.gather(rt.invoke("first", {"names": names}), rt.invoke("second", {"names": names}))
        )

    one, two = run([first, second], scenario, environments=environments)
    assert one.payload == {
        "SHARED": "1",
        "ONLY_FIRST": "yes",
        "ONLY_SECOND": None,
        "WSCHAT_RUNTIME_ONLY": None,
        "AWS_LAMBDA_FUNCTION_NAME": "first",
    }
    assert two.payload == {
        "SHARED": "2",
        "ONLY_FIRST": None,
        "ONLY_SECOND": "yes",
        "WSCHAT_RUNTIME_ONLY": None,
        "AWS_LAMBDA_FUNCTION_NAME": "second",
    }


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def test_concurrency_is_bounded_per_function() -> None:
    """Six slow invocations with max_concurrency=2 run on two workers, never more than two at once."""

    async def scenario(rt: LambdaRuntime) -> tuple[list[InvocationResult], dict[str, Any]]:
        results = await asyncio.gather(*(rt.invoke("slow", {"seconds": 0.3}) for _ in range(6)))
        return list(results), rt.stats()["slow"]

    results, stats = run([SLOW], scenario, max_concurrency=2)
    assert all(result.ok for result in results)
    intervals = [(r.payload["start"], r.payload["end"]) for r in results]
    assert _max_overlap(intervals) == 2
    assert len({r.payload["pid"] for r in results}) == 2
    assert stats["cold_starts"] == 2 and stats["invocations"] == 6 and stats["workers"] == 2


def test_warm_workers_are_reused() -> None:
    """Sequential invocations reuse one warm worker: one cold start, the same pid every time."""

    async def scenario(rt: LambdaRuntime) -> tuple[list[InvocationResult], dict[str, Any]]:
        results = [await rt.invoke("echo", {"i": i}) for i in range(4)]
        return results, rt.stats()["echo"]

    results, stats = run([ECHO], scenario)
    assert len({r.payload["pid"] for r in results}) == 1
    assert [r.cold_start for r in results] == [True, False, False, False]
    assert results[0].init_duration_ms is not None and results[1].init_duration_ms is None
    assert stats["cold_starts"] == 1 and stats["invocations"] == 4 and stats["errors"] == 0


def test_timeout_kills_the_worker_and_a_fresh_one_serves_next() -> None:
    """Past its timeout an invocation is Sandbox.Timedout; its worker dies and the next gets a new one."""

    async def scenario(
        rt: LambdaRuntime,
    ) -> tuple[InvocationResult, InvocationResult, InvocationResult, dict[str, Any]]:
        before = await rt.invoke("slow", {"seconds": 0})
        timed_out = await rt.invoke("slow", {"seconds": 30}, timeout_s=0.3)
        after = await rt.invoke("slow", {"seconds": 0})
        return before, timed_out, after, rt.stats()["slow"]

    before, timed_out, after, stats = run([SLOW], scenario)
    assert timed_out.timed_out and not timed_out.ok and timed_out.payload is None
    assert timed_out.error is not None
    assert timed_out.error["errorType"] == "Sandbox.Timedout"
    assert timed_out.error["errorMessage"] == (
        f"RequestId: {timed_out.request_id} Error: Task timed out after 0.30 seconds"
    )
    assert after.ok and after.payload["pid"] != before.payload["pid"]
    assert stats["timeouts"] == 1 and stats["errors"] == 1 and stats["cold_starts"] == 2


def test_crashed_worker_reports_exit_error_and_is_replaced() -> None:
    """A handler that kills its process yields Runtime.ExitError; the next invocation gets a fresh worker."""
    functions = [fixture_function("crash"), ECHO]

    async def scenario(rt: LambdaRuntime) -> tuple[InvocationResult, InvocationResult, InvocationResult]:
        return (
            await rt.invoke("crash", {"code": 3}),
            await rt.invoke("crash", {"code": 4}),
            await rt.invoke("echo", {}),
        )

    first, second, echo = run(functions, scenario)
    assert first.error is not None and first.error["errorType"] == "Runtime.ExitError"
    assert first.error["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert second.error is not None and second.error["errorMessage"].endswith("exit status 4")
    assert echo.ok


def test_handler_exception_is_reported_and_the_worker_survives() -> None:
    """A raised exception becomes {errorType, errorMessage, stackTrace}; the warm worker stays."""
    functions = [fixture_function("fail")]

    async def scenario(rt: LambdaRuntime) -> tuple[InvocationResult, dict[str, Any]]:
        result = await rt.invoke("fail", {"message": "bad input"})
        await rt.invoke("fail", {})
        return result, rt.stats()["fail"]

    result, stats = run(functions, scenario)
    assert result.error is not None
    assert result.error["errorType"] == "ValueError"
    assert result.error["errorMessage"] == "bad input"
    assert any("in fail" in line for line in result.error["stackTrace"])
    assert stats["cold_starts"] == 1 and stats["errors"] == 2


def test_unserialisable_result_and_missing_module_are_runtime_errors() -> None:
    """A result JSON cannot encode is Runtime.MarshalError; an unimportable handler Runtime.ImportModuleError."""
    functions = [fixture_function("unserialisable"), fixture_function("missing", "missing")]
    overrides = {"missing": "tests.local.fixtures.no_such_module.handler"}

    async def scenario(rt: LambdaRuntime) -> tuple[InvocationResult, InvocationResult]:
        return await rt.invoke("unserialisable", {}), await rt.invoke("missing", {})

    marshal, missing = run(functions, scenario, handler_overrides=overrides)
    assert marshal.error is not None and marshal.error["errorType"] == "Runtime.MarshalError"
    assert missing.error is not None and missing.error["errorType"] == "Runtime.ImportModuleError"
    assert "no_such_module" in missing.error["errorMessage"]


def test_handler_output_is_logged_and_never_corrupts_the_channel(caplog: pytest.LogCaptureFixture) -> None:
    """print, stderr and raw writes to descriptor 1 reach the log, prefixed with the function name."""
    caplog.set_level(logging.INFO, logger="serverless_app.local")

    async def scenario(rt: LambdaRuntime) -> list[InvocationResult]:
        results = [await rt.invoke("noisy", {}) for _ in range(3)]
        await eventually_async(  # stderr is forwarded asynchronously
            lambda: sum("[noisy] raw bytes on descriptor 1" in m for m in caplog.messages) == 3,
            what="three raw writes logged",
        )
        return results

    results = run([fixture_function("noisy")], scenario)
    assert [r.payload for r in results] == [{"answer": "still intact"}] * 3
    assert any(m.startswith("[noisy] hello from stdout") for m in caplog.messages)
    assert "[noisy] hello from stderr" in caplog.messages
    assert caplog.messages.count("[noisy] raw bytes on descriptor 1") == 3


def test_hot_reload_runs_edited_code_without_a_restart(tmp_path: Path) -> None:
    """After a handler module is rewritten, the next invocation runs the new code in a new worker."""
    module = tmp_path / "reloadable.py"
    module.write_text("def handler(event, context):\n    return 'v1'\n")
    function = FunctionDefinition("reloadable", "reloadable.handler", 128, 5, "hot reload fixture")

    async def scenario(rt: LambdaRuntime) -> tuple[list[Any], dict[str, Any]]:
        seen = [(await rt.invoke("reloadable", {})).payload, (await rt.invoke("reloadable", {})).payload]
        module.write_text("def handler(event, context):\n    return {'version': 'v2, edited'}\n")
        seen.append((await rt.invoke("reloadable", {})).payload)
        return seen, rt.stats()["reloadable"]

    seen, stats = run(
        [function],
        scenario,
        environments={"reloadable": {"PYTHONPATH": str(tmp_path)}},
        reload=True,
        source_roots=[tmp_path],
        reload_interval_s=0.0,
    )
    assert seen == ["v1", "v1", {"version": "v2, edited"}]
    assert stats["cold_starts"] == 2


def test_reload_lets_in_flight_invocations_finish_on_their_worker(tmp_path: Path) -> None:
    """An edit during an invocation does not interrupt it; only later invocations see the new code."""
    module = tmp_path / "inflight.py"
    started = tmp_path / "started"
    module.write_text(
        "import pathlib, time\n"
        "def handler(event, context):\n"
        "    if event['s']:\n"
        f"        pathlib.Path({str(started)!r}).touch()\n"
        "    time.sleep(event['s'])\n"
        "    return 'old'\n"
    )
    function = FunctionDefinition("inflight", "inflight.handler", 128, 5, "hot reload fixture")

    async def scenario(rt: LambdaRuntime) -> tuple[Any, Any]:
        await rt.invoke("inflight", {"s": 0})
        running = asyncio.ensure_future(rt.invoke("inflight", {"s": 0.5}))
        await eventually_async(started.exists, what="the slow invocation runs")
        module.write_text("def handler(event, context):\n    return 'new code'\n")
        later = await rt.invoke("inflight", {"s": 0})
        return (await running).payload, later.payload

    in_flight, later = run(
        [function],
        scenario,
        environments={"inflight": {"PYTHONPATH": str(tmp_path)}},
        reload=True,
        source_roots=[tmp_path],
        reload_interval_s=0.0,
    )
    assert (in_flight, later) == ("old", "new code")


def test_handler_overrides_keep_the_real_functions_settings() -> None:
    """An override swaps only the handler: name, memory and environment stay the real function's."""
    overrides = {DEFAULT_FUNCTION.name: "tests.local.fixtures.handlers.echo"}
    result = run(
        [DEFAULT_FUNCTION], lambda rt: rt.invoke(DEFAULT_FUNCTION.name, {"x": 1}), handler_overrides=overrides
    )
    assert result.payload["event"] == {"x": 1}
    assert result.payload["context"]["function_name"] == "websocket-default"
    assert result.payload["context"]["memory_limit_in_mb"] == DEFAULT_FUNCTION.memory_mb


def test_invoke_async_queues_the_invocation_and_returns_its_request_id(tmp_path: Path) -> None:
    """invoke_async returns at once with a request id; the handler then runs in the background."""
    target = tmp_path / "events.txt"

    async def scenario(rt: LambdaRuntime) -> str:
        request_id = rt.invoke_async("record", {"path": str(target), "line": "queued"})
        await eventually_async(target.exists, what="the queued invocation ran")
        return request_id

    request_id = run([fixture_function("record")], scenario)
    assert len(request_id) == 36
    assert eventually(lambda: target.exists() and target.read_text()) == "queued\n"


def test_unknown_function_is_refused() -> None:
    """Invoking a function the runtime does not have raises FunctionNotFoundError, sync or async."""

    async def scenario(rt: LambdaRuntime) -> None:
        with pytest.raises(FunctionNotFoundError):
            await rt.invoke("nope", {})
        with pytest.raises(FunctionNotFoundError):
            rt.invoke_async("nope", {})

    run([ECHO], scenario)


def test_empty_handler_round_trip_is_cheap() -> None:
    """Warm invocations of an empty handler are counted and timed in stats (overhead measured, not asserted)."""

    async def scenario(rt: LambdaRuntime) -> dict[str, Any]:
        for _ in range(200):
            await rt.invoke("empty", {"action": "sendmessage"})
        return rt.stats()["empty"]

    stats = run([fixture_function("empty")], scenario)
    assert stats["invocations"] == 200 and stats["errors"] == 0 and stats["cold_starts"] == 1
    assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    print(f"empty handler round trip: p50 {stats['p50_ms']:.3f} ms, p99 {stats['p99_ms']:.3f} ms")


def test_stats_list_every_function_even_before_its_first_invocation() -> None:
    """stats() reports each known function, with zero counts until it runs."""
    stats = run([ECHO, SLOW], lambda rt: asyncio.sleep(0, rt.stats()))
    assert set(stats) == {"echo", "slow"}
    assert stats["slow"]["invocations"] == 0 and stats["slow"]["p50_ms"] == 0.0


def test_an_idle_worker_killed_from_outside_is_replaced_transparently() -> None:
    """If a warm worker dies while idle, the next invocation quietly gets a fresh one."""

    async def scenario(rt: LambdaRuntime) -> tuple[int, InvocationResult]:
        pid = (await rt.invoke("echo", {})).payload["pid"]
        os.kill(pid, signal.SIGKILL)
        await eventually_async(lambda: _noticed_dead(rt, pid), what="the runtime saw the worker exit")
        return pid, await rt.invoke("echo", {})

    pid, result = run([ECHO], scenario)
    assert result.ok and result.payload["pid"] != pid


def _noticed_dead(rt: LambdaRuntime, pid: int) -> bool:
    """The runtime knows the worker ``pid`` has exited (its process has a return code): what it
    checks before handing an idle worker an invocation. The OS reaping the process comes a moment
    before asyncio's child watcher sets the return code, so waiting for the pid to vanish is not enough."""
    return all(
        worker.process.returncode is not None
        for pool in rt._pools.values()  # the runtime's own view of its workers
        for worker in pool.workers
        if worker.process.pid == pid
    )
