"""Every module of the local runtime imports on its own, in a fresh interpreter (no import cycles,
no module that only works once another has been imported first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import serverless_app.local

LOCAL = Path(serverless_app.local.__file__).parent
MODULES = sorted(
    f"serverless_app.local.{path.stem}" for path in LOCAL.glob("*.py") if path.stem != "__init__"
)


def test_the_local_modules_are_found() -> None:
    assert {"serverless_app.local.gateway", "serverless_app.local.connections_api"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_each_local_module_imports_alone(module: str) -> None:
    """``python -c "import <module>"`` succeeds for every module under ``serverless_app/local``."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_connections_wire_does_not_import_the_websocket_wire() -> None:
    """The ``@connections`` wire knows the model only: importing it loads no gateway module."""
    code = (
        "import sys, serverless_app.local.connections_api; "
        "sys.exit('serverless_app.local.gateway' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
