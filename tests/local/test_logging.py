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

import serverless_app.chat.observability  # the handlers' Logger(service="wschat"), in this process
import serverless_app.local
from serverless_app.local import gateway, server

LOCAL = Path(serverless_app.local.__file__).parent
MODULES = sorted(
    f"serverless_app.local.{path.stem}" for path in LOCAL.glob("*.py") if path.stem != "__init__"
)
LOGGERS = {
    name: [
        value for value in vars(importlib.import_module(name)).values() if isinstance(value, logging.Logger)
    ]
    for name in MODULES
}
"""Each local module's module-level loggers (imported at collection, before any stack has run)."""


@pytest.mark.parametrize("module", MODULES)
def test_each_local_logger_is_named_after_its_module(module: str) -> None:
    for logger in LOGGERS[module]:
        assert logger.name == module


def test_a_wschat_powertools_logger_does_not_capture_the_gateways_records(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    Logger(service="wschat")  # and one more, as any other code in the process may make
    caplog.set_level(logging.INFO, logger="serverless_app.local")
    loggers = [logger for name in MODULES for logger in LOGGERS[name]]
    assert gateway.log in loggers and server.log in loggers
    assert serverless_app.chat.observability.logger.service == "wschat"
    for logger in loggers:
        logger.info("a record from %s", logger.name)
    assert capsys.readouterr().out == ""
    records = [record for record in caplog.records if record.name.startswith("serverless_app.local")]
    assert [(record.name, record.getMessage()) for record in records] == [
        (logger.name, f"a record from {logger.name}") for logger in loggers
    ]
