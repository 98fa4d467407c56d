"""The load tool's measurement: what each message carries, and what every client receives.

Each message's text is ``wsb:<run>:<seq>:<send ns>[:padding]`` (:meth:`Recorder.frame`): the id and
the send time travel in the message itself, and receivers find the sequence number by string
search; only non-message frames are parsed as JSON. The client shares the machine with the server
under test, so the hot path (one delivery, :meth:`Recorder.read`) is a prefix check, a ``find``,
an ``int()`` and a tuple append. Errors, refusals and other frames are counted by kind; the
accounting of who got what is :mod:`serverless_app.bench.stats`.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from websockets.exceptions import ConnectionClosed

from serverless_app.bench.population import Client, ClosedBeforeWelcome
from serverless_app.bench.stats import SentMessage

__all__ = ["Recorder"]

_MESSAGE_PREFIX = '{"action":"message"'


class Recorder:
    """One run's messages sent and frames received.

    ``receipts`` are ``(client index, seq, receive ns)``; ``refusals`` count, per client, the
    messages the server refused (an ``error`` frame, API Gateway's own error, or a closed send);
    ``closing`` is set once the run closes its clients, whose closes are then not errors."""

    def __init__(self, run_id: str, payload_bytes: int) -> None:
        self.run_id = run_id
        self.payload_bytes = payload_bytes
        self.mark = f'"wsb:{run_id}:'
        self.receipts: list[tuple[int, int, int]] = []
        self.sent: list[SentMessage] = []
        self.errors: Counter[str] = Counter()
        self.refusals: Counter[int] = Counter()
        self.other: Counter[str] = Counter()
        self.closing = False

    def frame(self, client: Client, seq: int) -> tuple[str, int]:
        """The ``sendMessage`` frame of message ``seq`` from ``client``, and its send time (ns)."""
        sent_ns = time.perf_counter_ns()
        text = f"wsb:{self.run_id}:{seq}:{sent_ns}"
        if len(text) < self.payload_bytes:
            text = f"{text}:{'x' * (min(self.payload_bytes, 4000) - len(text) - 1)}"
        return json.dumps({"action": "sendMessage", "room": client.room, "message": text}), sent_ns

    async def read(self, client: Client) -> None:
        """Record every frame ``client`` receives until its connection closes (the hot path)."""
        ws = client.ws
        assert ws is not None
        mark, skip = self.mark, len(self.mark)
        append, clock, index = self.receipts.append, time.perf_counter_ns, client.index
        try:
            async for raw in ws:
                now = clock()
                text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                if text.startswith(_MESSAGE_PREFIX):
                    at = text.find(mark)
                    if at >= 0:
                        start = at + skip
                        seq = int(text[start : text.index(":", start)])
                        append((index, seq, now))
                        if client.awaiting == seq:
                            client.echo.set()
                        continue
                self._other_frame(client, text)
        except ConnectionClosed as closed:
            if not self.closing:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                self.errors[f"closed:{code}"] += 1
        finally:
            if client.welcome is not None and not client.welcome.done():
                client.welcome.set_exception(ClosedBeforeWelcome())

    def _other_frame(self, client: Client, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.errors["frame:not_json"] += 1
            return
        action = frame.get("action") if isinstance(frame, dict) else None
        if action == "welcome":
            if client.welcome is not None and not client.welcome.done():
                client.welcome.set_result(None)
            return
        if action == "error":
            self.errors[str(frame.get("code", "unknown"))] += 1
            self.refusals[client.index] += 1
            client.echo.set()
            return
        if action is None and isinstance(frame, dict) and "message" in frame:
            # API Gateway's own frame for a failed or timed-out integration
            self.errors[f"gateway:{frame['message']}"] += 1
            self.refusals[client.index] += 1
            client.echo.set()
            return
        self.other[str(action)] += 1
