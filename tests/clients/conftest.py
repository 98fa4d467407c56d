"""Fixtures for the clients: a session with a fixed clock and ids, the real local stack in a thread
(also in token mode), terminal clients on pseudo-terminals."""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serverless_app.clients.session import ChatSession

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 30.0
"""Upper bound of every wait (cold Lambda workers on a busy two-core machine)."""
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


@pytest.fixture
def session() -> ChatSession:
    """alice in #general and #random, at a fixed time, with client_msg_ids c1, c2…"""
    ids = (f"c{i}" for i in itertools.count(1))
    return ChatSession(
        "alice", ["general", "random"], clock=lambda: 1_800_000_000.0, new_id=lambda: next(ids)
    )


@pytest.fixture
def room() -> str:
    """A fresh room name, so tests sharing the stack never see each other's messages."""
    return f"t-{uuid.uuid4().hex[:12]}"


class PtyClient:
    """``wschat chat`` running on a pseudo-terminal: type lines, wait for output (ANSI stripped)."""

    def __init__(self, args: list[str], *, cwd: Path = REPO_ROOT) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        env.pop("NO_COLOR", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "serverless_app.clients.chat_cmd", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._raw = bytearray()
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            with self._changed:
                if not chunk:
                    self._closed = True
                    self._changed.notify_all()
                    return
                self._raw += chunk
                self._changed.notify_all()

    _closed = False

    @property
    def text(self) -> str:
        """Everything printed so far, without colours and cursor movements."""
        with self._changed:
            return _ANSI.sub("", self._raw.decode("utf-8", "replace"))

    def type(self, line: str) -> None:
        os.write(self._master, line.encode() + b"\n")

    def wait_for(self, pattern: str, *, count: int = 1, timeout: float = WAIT_S) -> list[re.Match[str]]:
        """Wait until ``pattern`` (a regex, multiline) matched ``count`` times; fail with the output otherwise."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                matches = list(regex.finditer(_ANSI.sub("", self._raw.decode("utf-8", "replace"))))
                if len(matches) >= count:
                    return matches
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._changed.wait(min(remaining, 0.5))
        raise AssertionError(
            f"{pattern!r} seen {len(matches)}/{count} times within {timeout} s; output:\n{self.text}"
        )

    def wait_exit(self, timeout: float = WAIT_S) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self._master)


@pytest.fixture
def terminal() -> Iterator[Any]:
    """A factory of terminal clients on pseudo-terminals; all are killed at the end."""
    started: list[PtyClient] = []

    def start(*args: str) -> PtyClient:
        client = PtyClient(list(args))
        started.append(client)
        return client

    yield start
    for client in started:
        client.close()
