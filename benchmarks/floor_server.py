"""The floor: a bare ``websockets`` broadcast server speaking just enough of the wschat protocol.

Rooms come from ``?rooms=`` (default ``general``); each connection gets a ``welcome``, and a
``sendMessage`` is answered by ``websockets.broadcast`` of a ``message`` frame to every connection
in the room, the sender included. No storage, no authorizer, no Lambda emulation, no checks beyond
what the load tool needs: whatever ``wschat serve`` adds on top of this is the cost of the real
thing, and this server's numbers are the best this machine can do with the same client.

``python -m benchmarks.floor_server [--host H] [--port P]`` prints ``{"ws_url": …, "pid": …}`` as
one JSON line on stdout once it listens (port 0: a free one), then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve

__all__ = ["FloorServer", "main", "run_floor_server"]


class FloorServer:
    """Room membership in memory; one handler coroutine per connection."""

    def __init__(self) -> None:
        self.rooms: dict[str, set[ServerConnection]] = {}
        self.messages = 0

    async def handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        names = [r for r in ",".join(query.get("rooms", ["general"])).split(",") if r] or ["general"]
        user = query.get("user_id", [f"guest-{ws.id.hex[:8]}"])[0]
        for room in names:
            self.rooms.setdefault(room, set()).add(ws)
        try:
            await ws.send(
                json.dumps(
                    {
                        "action": "welcome",
                        "connection_id": ws.id.hex,
                        "user_id": user,
                        "rooms": names,
                        "message": f"Welcome, {user}!",
                    },
                    separators=(",", ":"),
                )
            )
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("action") != "sendMessage":
                    continue
                room = frame["room"]
                stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                message_id = uuid.uuid4().hex
                out = {
                    "action": "message",
                    "room": room,
                    "user_id": frame.get("user_id", user),
                    "message": frame["message"],
                    "timestamp": stamp,
                    "message_id": message_id,
                    "cursor": f"{stamp}#{message_id}",
                }
                self.messages += 1
                broadcast(
                    self.rooms.get(room, ()), json.dumps(out, separators=(",", ":"), ensure_ascii=False)
                )
        finally:
            for room in names:
                members = self.rooms.get(room)
                if members is not None:
                    members.discard(ws)
                    if not members:
                        del self.rooms[room]


@dataclass(frozen=True)
class RunningFloor:
    ws_url: str
    server: Server
    floor: FloorServer


@asynccontextmanager
async def run_floor_server(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[RunningFloor]:
    """Serve on ``host:port`` (0: a free port) in the current event loop."""
    floor = FloorServer()
    async with serve(
        floor.handle, host, port, compression=None, ping_interval=None, max_queue=1024
    ) as server:
        bound = next(iter(server.sockets)).getsockname()
        yield RunningFloor(ws_url=f"ws://{bound[0]}:{bound[1]}/prod", server=server, floor=floor)


async def _serve_forever(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with run_floor_server(host, port) as running:
        print(json.dumps({"ws_url": running.ws_url, "pid": os.getpid(), "started": time.time()}), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.host, args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
