"""The local stack (``run_local_stack``) in a process of its own, for the benchmarks.

The gateway must not share an event loop, or a GIL, with the load tool measuring it: in
``wschat serve`` it has its own process too. ``python -m benchmarks.stack_process`` starts the
stack with auth mode ``none``, in-memory DynamoDB Local on a free port and no hot reload, prints
``{"ws_url", "http_url", "dynamodb_endpoint", "pid"}`` as one JSON line once it serves, and stops
everything it started on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from serverless_app.local.server import run_local_stack

__all__ = ["main"]


async def _serve(port: int, auth_mode: str, token_secret: str | None) -> None:
    # one line per invocation ("$default  <id> websocket-default 12.3 ms 200"): the benchmark's durations
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for module in ("gateway", "gateway_connect", "gateway_integrations"):  # the gateway's loggers
        gateway_log = logging.getLogger(f"serverless_app.local.{module}")
        gateway_log.addHandler(handler)
        gateway_log.setLevel(logging.INFO)
        gateway_log.propagate = False
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with run_local_stack(
        port=port,
        in_memory=True,
        auth_mode="token" if auth_mode == "token" else "none",
        token_secret=token_secret,
        reload=False,
        static_dir=None,
    ) as stack:
        line = {
            "ws_url": stack.ws_url,
            "http_url": stack.http_url,
            "dynamodb_endpoint": stack.dynamodb_endpoint,
            "pid": os.getpid(),
            "token_secret": stack.token_secret,
        }
        print(json.dumps(line), flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stack_process", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--auth", choices=("none", "token"), default="none")
    parser.add_argument("--token-secret")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.auth, args.token_secret))


if __name__ == "__main__":
    main()
