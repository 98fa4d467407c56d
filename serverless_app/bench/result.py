"""One ``wschat bench`` run's measurements (:class:`BenchResult`) and its ``--json`` document."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from serverless_app.bench.config import BenchConfig
from serverless_app.bench.stats import Accounting, Percentiles, summary_dict

__all__ = ["BenchResult"]


@dataclass
class BenchResult:
    """One run's measurements; :meth:`to_json` is the ``--json`` document."""

    config: BenchConfig
    run_id: str
    accounting: Accounting
    errors: Counter[str]
    other_frames: Counter[str]
    room_sizes: dict[str, int]
    connected: int
    connect_ms: Percentiles
    connect_s: float
    send_s: float
    first_send_ns: int | None
    last_send_ns: int | None
    started_at: float

    @property
    def connections_per_s(self) -> float:
        return self.connected / self.connect_s if self.connect_s > 0 else 0.0

    @property
    def messages_per_s(self) -> float:
        return self.accounting.sent / self.send_s if self.send_s > 0 else 0.0

    @property
    def deliveries_per_s(self) -> float:
        acc = self.accounting
        if self.first_send_ns is None or acc.last_receipt_ns is None:
            return 0.0
        span = (acc.last_receipt_ns - self.first_send_ns) / 1e9
        return acc.delivered / span if span > 0 else 0.0

    @property
    def ok(self) -> bool:
        """No delivery lost or duplicated, nothing misdelivered, and every client connected."""
        return self.accounting.ok and self.connected == self.config.clients

    def to_json(self) -> dict[str, Any]:
        sizes = sorted(set(self.room_sizes.values()))
        return {
            "url": self.config.url,
            "run_id": self.run_id,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "clients": self.config.clients,
            "connected": self.connected,
            "rooms": self.config.rooms,
            "room_sizes": sizes,
            "senders": self.config.senders,
            "messages": self.config.messages,
            "rate": self.config.rate,
            "payload_bytes": self.config.payload_bytes,
            **summary_dict(self.accounting),
            "errors": dict(sorted(self.errors.items())),
            "other_frames": dict(sorted(self.other_frames.items())),
            "connections_per_s": round(self.connections_per_s, 1),
            "presence_frames_per_join": round(
                (self.other_frames.get("presence", 0) + self.other_frames.get("presenceMode", 0))
                / max(1, self.connected),
                2,
            ),
            "connect_ms": self.connect_ms.as_dict(),
            "messages_per_s": round(self.messages_per_s, 1),
            "deliveries_per_s": round(self.deliveries_per_s, 1),
            "ok": self.ok,
        }
