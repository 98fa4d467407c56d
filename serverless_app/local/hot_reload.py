"""Hot reload for the local Lambda runtime: noticing that the handlers' source changed.

:class:`SourceWatcher` snapshots the mtime and size of every ``*.py`` under some roots and counts
*generations*: the generation goes up by one whenever a later scan differs. The runtime
(:mod:`serverless_app.local.lambda_runtime`) tags each worker with the generation it started in and
retires idle workers of an older one, so the next invocation runs the new code.

Known limit: Python's timestamp-based ``.pyc`` check works in whole seconds, so an edit that keeps a
file's size and lands within the same second as the previous write may still run the old bytecode.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["RELOAD_CHECK_INTERVAL_S", "SourceWatcher"]

RELOAD_CHECK_INTERVAL_S = 0.5


class SourceWatcher:
    """Notices edits to ``*.py`` under some roots (mtime and size), scanning at most every interval."""

    def __init__(self, roots: Sequence[Path], interval_s: float = RELOAD_CHECK_INTERVAL_S) -> None:
        self._roots = [Path(root) for root in roots]
        self._interval_s = interval_s
        self._snapshot = self._scan()
        self._next_check = time.monotonic() + interval_s
        self.generation = 0

    def _scan(self) -> dict[str, tuple[int, int]]:
        snapshot: dict[str, tuple[int, int]] = {}
        for root in self._roots:
            for directory, dirs, files in os.walk(root):
                dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
                for name in files:
                    if name.endswith(".py"):
                        path = os.path.join(directory, name)
                        with contextlib.suppress(OSError):
                            stat = os.stat(path)
                            snapshot[path] = (stat.st_mtime_ns, stat.st_size)
        return snapshot

    def poll(self) -> int:
        """The current source generation; it goes up by one whenever the files changed."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._interval_s
            snapshot = self._scan()
            if snapshot != self._snapshot:
                self._snapshot = snapshot
                self.generation += 1
        return self.generation
