"""The fan-out processes of the simulated large room: warm "containers" running the real delivery.

Each is started with ``multiprocessing``'s spawn context by ``benchmarks.large_room``, builds the
``ChatService`` and ``ConnectionsApi`` the handlers build (from the environment it is given), makes
one small delivery to warm up, says it is ready on the results queue, then:

* :func:`sender` (``websocket-default``) waits for ``go`` and runs ``delivery.deliver`` to the room,
  handing further ranges to the shard queue when sharded;
* :func:`shard_worker` (``websocket-fanout``) runs ``deliver_range`` for every shard event from the
  queue until it gets ``None``.

Each reports its times and its peak RSS during the delivery (``VmHWM``, reset just before through
``/proc/self/clear_refs``, so imports do not count) on the results queue.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serverless_app.chat.connections_api import ConnectionsApi
    from serverless_app.chat.service import ChatService

__all__ = ["sender", "shard_worker"]


def _vm(field_name: str) -> int:
    """``VmRSS``/``VmHWM`` of this process in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS (Linux ≥ 4.0)
    except OSError:
        pass


def _container(env: dict[str, str], sink_url: str) -> tuple[ChatService, ConnectionsApi]:
    os.environ.update(env)
    import boto3

    from serverless_app.chat.connections_api import ConnectionsApi
    from serverless_app.chat.service import ChatService
    from serverless_app.chat.settings import Settings
    from serverless_app.chat.store import DynamoDBStore

    settings = Settings.from_env()
    client = boto3.client("dynamodb", endpoint_url=env["DYNAMODB_ENDPOINT"], region_name="us-east-1")
    service = ChatService(DynamoDBStore(client, settings), settings, clock=time.time)
    api = ConnectionsApi(
        sink_url, concurrency=settings.fanout_concurrency, rate_per_s=settings.fanout_rate_per_s
    )
    return service, api


def _frame(room: str) -> dict[str, Any]:
    return {
        "action": "message",
        "room": room,
        "user_id": "bench-sender",
        "message": "a message to a large room",
        "timestamp": "2026-11-27T00:00:00.000000Z",
        "message_id": "0" * 32,
        "cursor": "2026-11-27T00:00:00.000000Z#" + "0" * 32,
    }


def sender(
    env: dict[str, str], sink_url: str, room: str, sharded: bool, shards: Any, results: Any, go: Any
) -> None:
    """The sending ``websocket-default`` container: warm up, wait for ``go``, deliver to ``room``."""
    from serverless_app.chat.delivery import Shard, deliver
    from serverless_app.chat.service import ToRoom

    service, api = _container(env, sink_url)
    settings = service.settings
    deliver(service, api, [ToRoom("warm-up", _frame("warm-up"))], page_size=settings.fanout_page_size)
    launched: list[float] = []

    def launch(shard: Shard) -> None:
        launched.append(time.monotonic())
        shards.put(shard.to_json(sink_url))

    results.put({"role": "ready"})
    go.wait(60)
    _reset_peak()
    base = _vm("VmRSS")
    started = time.monotonic()
    report = deliver(
        service,
        api,
        [ToRoom(room, _frame(room))],
        page_size=settings.fanout_page_size,
        shard_size=settings.fanout_shard_size,
        launch=launch if sharded else None,
    )
    results.put(
        {
            "role": "sender",
            "started": started,
            "finished": time.monotonic(),
            "rss_base": base,
            "rss_peak": _vm("VmHWM"),
            "results": dict(report.results),
            "shards": report.shards,
            "plans": report.plans,
            "launched": launched,
        }
    )


def shard_worker(env: dict[str, str], sink_url: str, shards: Any, results: Any) -> None:
    """A warm ``websocket-fanout`` container: runs shards from the queue until it gets ``None``."""
    from serverless_app.chat.delivery import Shard, deliver
    from serverless_app.chat.service import ToRoom

    service, api = _container(env, sink_url)
    settings = service.settings
    deliver(service, api, [ToRoom("warm-up", _frame("warm-up"))], page_size=settings.fanout_page_size)
    results.put({"role": "ready"})
    from serverless_app.chat.delivery import deliver_range

    while True:
        event = shards.get()
        if event is None:
            return
        _reset_peak()
        base = _vm("VmRSS")
        started = time.monotonic()
        shard = Shard.from_json(event)
        report = deliver_range(
            service,
            api,
            shard,
            page_size=settings.fanout_page_size,
            launch=lambda shard: shards.put(shard.to_json(sink_url)),  # a planning shard launches ranges
        )
        results.put(
            {
                "role": "shard",
                "plans": shard.plans,
                "launched": report.shards + report.plans,
                "started": started,
                "finished": time.monotonic(),
                "rss_base": base,
                "rss_peak": _vm("VmHWM"),
                "results": dict(report.results),
            }
        )
