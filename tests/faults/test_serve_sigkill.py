"""Fault: ``wschat serve`` is killed with SIGKILL (or crashes): no DynamoDB Local is left behind.

A real ``wschat serve`` subprocess is started, the Java process holding its DynamoDB Local port is
found, ``serve`` gets SIGKILL (no handler, no cleanup runs), and the Java child must be gone within a
bounded wait (``PR_SET_PDEATHSIG``, and the launcher's stdin watchdog), the port free for the next run.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from serverless_app.local.dynamodb_local import free_port, port_holder
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited; only its reaping is left


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc to find the Java child")
@pytest.mark.timeout(240)
def test_sigkilled_serve_leaves_no_java_behind() -> None:
    """SIGKILL to wschat serve: its DynamoDB Local exits within 15 s and frees the port."""
    dynamodb_port = free_port()
    serve = ["serve", "--in-memory", "--port", "0", "--dynamodb-port", str(dynamodb_port), "--auth", "none"]
    process = subprocess.Popen(
        [sys.executable, "-m", "serverless_app.cli", *serve],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    try:
        banner = ""
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not banner.endswith("Ctrl-C stops everything.\n"):
            line = process.stdout.readline()
            if not line:
                break
            banner += line
        assert re.search(rf"DynamoDB\s+http://127\.0\.0\.1:{dynamodb_port}", banner), banner
        holder = port_holder(dynamodb_port)
        assert holder is not None and "java" in holder[1], holder
        java_pid = holder[0]
        assert java_pid != process.pid
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        process.stdout.close()
    eventually(
        lambda: not _alive(java_pid),
        timeout_s=15,
        interval_s=0.1,
        what=f"DynamoDB Local (pid {java_pid}) gone after the SIGKILLed serve",
    )
    assert port_holder(dynamodb_port) is None
