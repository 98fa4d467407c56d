"""The load tool against the in-repo floor server: real sockets, every delivery exactly once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from benchmarks.floor_server import run_floor_server
from serverless_app.bench.cli import bench
from serverless_app.bench.config import BenchConfig
from serverless_app.bench.load import run_bench
from serverless_app.clients.endpoint import connect_url

REQUIRED_KEYS = {
    "clients",
    "rooms",
    "messages",
    "lost",
    "duplicated",
    "errors",
    "delivery_ms",
    "fanout_ms",
    "connections_per_s",
}


def test_the_connect_url_carries_the_room_and_the_user_or_the_token() -> None:
    assert connect_url("ws://h:1/prod", ["r1"], user_id="u1") == "ws://h:1/prod?rooms=r1&user_id=u1"
    assert connect_url("ws://h:1/prod?x=1", ["r"], token="t.k") == "ws://h:1/prod?x=1&rooms=r&token=t.k"


def test_twenty_clients_in_two_rooms_get_every_message_exactly_once() -> None:
    async def scenario() -> None:
        async with run_floor_server() as floor:
            config = BenchConfig(
                url=floor.ws_url, clients=20, rooms=2, senders=4, messages=20, progress=False
            )
            result = await run_bench(config)
        acc = result.accounting
        assert result.connected == 20
        assert (acc.sent, acc.expected, acc.delivered) == (20, 200, 200)
        assert (acc.lost, acc.duplicated, acc.unexpected) == (0, 0, 0)
        assert sorted(result.room_sizes.values()) == [10, 10]
        assert len(acc.fanout_ms) == 20
        assert set(result.to_json()) >= REQUIRED_KEYS

    asyncio.run(scenario())


def test_a_paced_run_sends_every_message_too() -> None:
    async def scenario() -> None:
        async with run_floor_server() as floor:
            config = BenchConfig(
                url=floor.ws_url, clients=6, rooms=3, senders=3, messages=9, rate=200.0, progress=False
            )
            result = await run_bench(config)
        assert (result.accounting.delivered, result.accounting.lost) == (18, 0)
        assert result.ok

    asyncio.run(scenario())


def test_the_command_writes_json_and_a_plot_and_exits_zero(tmp_path: Path) -> None:
    """``wschat bench URL … --json --plot`` against a floor server running on a background loop."""
    import threading

    ready: dict[str, str] = {}
    stop = threading.Event()

    def serve() -> None:
        async def main() -> None:
            async with run_floor_server() as floor:
                ready["url"] = floor.ws_url
                while not stop.is_set():
                    await asyncio.sleep(0.02)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        for _ in range(250):
            if "url" in ready:
                break
            stop.wait(0.02)
        out, png = tmp_path / "run.json", tmp_path / "run.png"
        args = [ready["url"], "-n", "10", "-r", "2", "-s", "2", "-m", "6", "-q", "--json", str(out)]
        result = CliRunner().invoke(bench, [*args, "--plot", str(png)])
        assert result.exit_code == 0, result.output
        document = json.loads(out.read_text())
        assert set(document) >= REQUIRED_KEYS
        assert (document["lost"], document["duplicated"], document["clients"]) == (0, 0, 10)
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert "lost / duplicated" in result.output
    finally:
        stop.set()
        thread.join(10)
