"""``wschat serve`` as a user runs it: banner, a working endpoint, clean stop on SIGINT, clear errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from serverless_app.local.dynamodb_local import free_port
from serverless_app.local.serve import exposure_warning

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
WSCHAT = [sys.executable, "-m", "serverless_app.cli"]


def start_serve(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*WSCHAT, "serve", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_serve_prints_banner_serves_and_stops_on_sigint() -> None:
    """The default (token) mode prints URLs and the commands to try, serves, and stops cleanly on Ctrl-C."""
    process = start_serve("--in-memory", "--port", "0", "--dynamodb-port", str(free_port()))
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        banner = "".join(lines)
        match = re.search(r"WebSocket\s+ws://127\.0\.0\.1:(\d+)/prod", banner)
        assert match, banner
        assert (
            'npx wscat -c "ws://127.0.0.1:' in banner and "?token=$(.venv/bin/wschat token user123)" in banner
        )
        assert "Auth          token" in banner
        assert (
            "aws dynamodb scan --table-name websocket-connections --endpoint-url http://127.0.0.1:" in banner
        )
        assert "--index-name user-timestamp-index" in banner
        assert "python tests/websocket_chat/test_websocket_chat.py" in banner
        with urllib.request.urlopen(
            f"http://127.0.0.1:{match.group(1)}/_local/health", timeout=10
        ) as response:
            assert json.load(response)["status"] == "ok"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped" in out


def test_serve_taken_port_is_one_clear_line_and_nonzero_exit() -> None:
    """A taken port is one line naming the port and the option to change, and a non-zero exit."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_serve("--in-memory", "--port", str(port))
        _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    [line] = err.strip().splitlines()
    assert f"Port {port}" in line and "taken" in line and "--port" in line


def test_serve_on_every_interface_warns_what_it_exposes() -> None:
    """--host 0.0.0.0 prints a warning first (the token endpoint stays loopback-only); loopback prints none."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_serve("--in-memory", "--host", "0.0.0.0", "--port", str(port))
        _, err = process.communicate(timeout=60)
    assert process.returncode != 0  # the port is taken: it stops right after the warning
    assert err.startswith("WARNING: --host 0.0.0.0 exposes the gateway beyond this machine")
    assert "/_local/token still answers this machine only" in err
    assert "DynamoDB Local and the Lambda API stay on loopback" in err
    assert exposure_warning("127.0.0.1", remote_token=False) is None
    assert exposure_warning("localhost", remote_token=False) is None
    assert "ANY user" in (exposure_warning("192.168.1.5", remote_token=True) or "")


def test_serve_timeouts_are_settable_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """--idle-timeout and --max-duration reach the gateway's limits (AWS's 600 s and 7200 s by default)."""
    from click.testing import CliRunner

    from serverless_app.local import serve as serve_module

    seen: list[Any] = []

    def fake_run(coroutine: Any) -> None:  # what serve would run: record its options instead
        seen.append(coroutine.cr_frame.f_locals["options"]["limits"])
        coroutine.close()

    monkeypatch.setattr(serve_module.asyncio, "run", fake_run)
    runner = CliRunner()
    for args in (["--idle-timeout", "5", "--max-duration", "30"], []):
        result = runner.invoke(serve_module.serve, [*args, "--auth", "none"])
        assert result.exit_code == 0, result.output
    assert [(limits.idle_timeout_s, limits.max_connection_s) for limits in seen] == [(5, 30), (600, 7200)]
