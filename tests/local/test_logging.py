"""The local runtime logs under its modules' names (``serverless_app.local.…``), never under ``wschat``:
Powertools' ``Logger(service="wschat")`` owns the standard library's ``wschat`` logger, so in a process
that imports the handlers' observability (the pytest process does) a ``wschat.*`` logger's records
would be printed as JSON on stdout instead of reaching the local stack's own logging."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest
from aws_lambda_powertools import Logger

import serverless_app.local
from serverless_app.local import gateway, server

LOCAL = Path(serverless_app.local.__file__).parent
MODULES = sorted(
    f"serverless_app.local.{path.stem}" for path in LOCAL.glob("*.py") if path.stem != "__init__"
)


def _module_loggers(name: str) -> list[logging.Logger]:
    module = importlib.import_module(name)
    return [value for value in vars(module).values() if isinstance(value, logging.Logger)]


@pytest.mark.parametrize("module", MODULES)
def test_each_local_logger_is_named_after_its_module(module: str) -> None:
    for logger in _module_loggers(module):
        assert logger.name == module


def test_a_wschat_powertools_logger_does_not_capture_the_gateways_records(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    import serverless_app.chat.observability  # noqa: F401  (the handlers' Logger(service="wschat"))

    Logger(service="wschat")  # and one more, as any other code in the process may make
    caplog.set_level(logging.INFO, logger="serverless_app.local")
    loggers = [logger for name in MODULES for logger in _module_loggers(name)]
    assert gateway.log in loggers and server.log in loggers
    for logger in loggers:
        logger.info("a record from %s", logger.name)
    assert capsys.readouterr().out == ""
    assert caplog.messages == [f"a record from {logger.name}" for logger in loggers]
