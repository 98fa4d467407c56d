"""What the local Lambda runtime and its worker processes agree on (standard library only, so the
worker imports it before the handler at no cost).

* :func:`lambda_environment`: the variables Lambda itself sets in every function's environment;
  the function's own variables (:mod:`serverless_app.local.wiring`) are added on top.
* :data:`HEADER`, :func:`encode_message`, :func:`decode_length`: the worker channel's framing, a
  4-byte big-endian length followed by UTF-8 JSON (the messages are listed in
  :mod:`serverless_app.local.lambda_worker`).
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serverless_app.definitions import FunctionDefinition

__all__ = [
    "ACCOUNT_ID",
    "HEADER",
    "REGION",
    "REPO_ROOT",
    "encode_message",
    "function_arn",
    "lambda_environment",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
HEADER = struct.Struct(">I")
"""The worker channel's message header: the JSON body's length in bytes."""


def function_arn(name: str, *, region: str = REGION, account_id: str = ACCOUNT_ID) -> str:
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def encode_message(message: dict[str, Any]) -> bytes:
    """One worker-channel frame: :data:`HEADER` then the compact JSON body."""
    data = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


def lambda_environment(definition: FunctionDefinition) -> dict[str, str]:
    """What Lambda sets for ``definition``'s containers; nothing from this process leaks in but ``PATH``."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": definition.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(definition.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{definition.name}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "LAMBDA_TASK_ROOT": str(REPO_ROOT),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Lambda sets X-Ray's daemon address and trace header when tracing is active; there is no
        # daemon here, so Powertools' Tracer is told to stay off (logs and EMF metrics stay on).
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
