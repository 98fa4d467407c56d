"""Fault injection for the local runtime: AWS's best-effort and at-least-once behaviour, on demand.

``wschat serve --chaos disconnect-drop=0.1,async-retry=1 --chaos-seed 7`` (and
``run_local_stack(chaos="...", chaos_seed=7)``):

* ``disconnect-drop=P`` — each ``$disconnect`` invocation is skipped with probability ``P`` (0 to 1).
  On AWS ``$disconnect`` is best effort; cleanup that relies on it (instead of pruning on 410 and
  TTL) fails under this fault.
* ``async-retry=N`` — every asynchronous (``Event``) invocation is delivered ``N`` more times, each
  after the previous one finished, even when it succeeded (Lambda's async delivery is at least once,
  and a failed event is retried twice by default): duplicated side effects show up locally.

Draws come from one ``random.Random(seed)``: with the same seed and the same order of events, the
same ``$disconnect`` invocations are dropped. Without a seed one is chosen and logged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["FAULTS", "Chaos"]

FAULTS = ("disconnect-drop", "async-retry")
MAX_ASYNC_RETRY = 10


@dataclass(frozen=True)
class Chaos:
    disconnect_drop: float = 0.0
    """Probability that a ``$disconnect`` invocation is skipped."""
    async_retry: int = 0
    """Extra deliveries of every asynchronous invocation."""
    seed: int | None = None
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.disconnect_drop <= 1.0:
            raise ValueError(f"disconnect-drop must be a probability from 0 to 1, not {self.disconnect_drop}")
        if not 0 <= self.async_retry <= MAX_ASYNC_RETRY:
            raise ValueError(
                f"async-retry must be a whole number from 0 to {MAX_ASYNC_RETRY}, not {self.async_retry}"
            )
        if self.seed is None:
            object.__setattr__(self, "seed", random.SystemRandom().randrange(2**31))
        self._random.seed(self.seed)

    @classmethod
    def parse(cls, spec: str, *, seed: int | None = None) -> Chaos:
        """``"disconnect-drop=0.1,async-retry=1"`` (either, in any order; empty: no faults)."""
        values: dict[str, float | int] = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name, sep, raw = part.partition("=")
            name, raw = name.strip(), raw.strip()
            if not sep or not raw:
                raise ValueError(f"{part!r}: expected NAME=VALUE, e.g. disconnect-drop=0.1")
            if name not in FAULTS:
                raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
            if name in values:
                raise ValueError(f"{name} given twice")
            try:
                values[name] = float(raw) if name == "disconnect-drop" else int(raw)
            except ValueError:
                kind = "a number from 0 to 1" if name == "disconnect-drop" else "a whole number"
                raise ValueError(f"{name}={raw}: the value must be {kind}") from None
        return cls(
            disconnect_drop=float(values.get("disconnect-drop", 0.0)),
            async_retry=int(values.get("async-retry", 0)),
            seed=seed,
        )

    @property
    def active(self) -> bool:
        return self.disconnect_drop > 0 or self.async_retry > 0

    def drop_disconnect(self) -> bool:
        """Draw: skip this ``$disconnect``?"""
        return self.disconnect_drop > 0 and self._random.random() < self.disconnect_drop

    def describe(self) -> str:
        return f"disconnect-drop={self.disconnect_drop:g},async-retry={self.async_retry} (seed {self.seed})"
