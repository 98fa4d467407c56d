"""A ``@connections`` endpoint that answers every POST with 200 after a fixed latency (20 ms).

The simulated large room (``benchmarks.large_room``) points the real fan-out at it: an aiohttp
server on 127.0.0.1 in the measuring process, ``POST /prod/@connections/{id}`` records (time, id)
and answers as API Gateway would for a live connection.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

__all__ = ["SINK_LATENCY_S", "STAGE", "Sink"]

SINK_LATENCY_S = 0.020
STAGE = "prod"


class Sink:
    """A ``@connections`` endpoint that answers every POST with 200 after ``latency_s``."""

    def __init__(self, latency_s: float = SINK_LATENCY_S) -> None:
        self.latency_s = latency_s
        self.posts: list[tuple[float, str]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(self.latency_s)
        self.posts.append((time.monotonic(), request.match_info["id"]))
        return web.Response(status=200)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(f"/{STAGE}/@connections/{{id}}", self._post)
        app.router.add_post(f"/{STAGE}/%40connections/{{id}}", self._post)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/{STAGE}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
