"""The local stack on a background thread, for synchronous callers (tests, scripts).

``run_local_stack`` is an async context manager; :class:`LocalStackThread` runs it on its
own event loop in a daemon thread so that synchronous code (Playwright's sync API, a
``websocket-client`` script, a pseudo-terminal driver) can talk to it from the main thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serverless_app.local.server import LocalStack

__all__ = ["LocalStackThread"]


class LocalStackThread:
    """``run_local_stack`` on its own event loop in a daemon thread; a context manager."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.stack: LocalStack | None = None

    async def _main(self) -> None:
        from serverless_app.local.server import run_local_stack

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with run_local_stack(**self._options) as stack:
                self.stack = stack
                self._ready.set()
                await self._stop.wait()
        except BaseException as error:
            self._error = error
        finally:
            self._ready.set()

    def __enter__(self) -> LocalStack:
        self._thread.start()
        if not self._ready.wait(timeout=180):
            raise RuntimeError("the local stack did not start within 180 s")
        if self._error is not None:
            raise RuntimeError("the local stack failed to start") from self._error
        assert self.stack is not None
        return self.stack

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)
        if self._error is not None:
            raise RuntimeError("the local stack failed while stopping") from self._error
