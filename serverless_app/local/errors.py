"""Errors of the local runtime (never deployed).

LocalRuntimeError
├── SetupError              something the machine lacks: Java, npm packages, a free port
├── FunctionNotFoundError   the Lambda runtime has no function of that name (Invoke answers 404)
├── WorkerDied              a Lambda worker process closed its channel: it exited or was killed
├── SignatureError          a request's SigV4 signature was refused (403, ``code``, ``message``)
└── ConnectionsError        an ``@connections`` operation failed as on AWS (``code``, ``status_code``)
    ├── Gone                410 GoneException: no such connection, or not (or no longer) open
    ├── PayloadTooLarge     413 PayloadTooLargeException: over the 128 KB message limit
    └── LimitExceeded       429 LimitExceededException: the account's quota, or the client's buffer is full
"""

from typing import ClassVar

__all__ = [
    "ConnectionsError",
    "FunctionNotFoundError",
    "Gone",
    "LimitExceeded",
    "LocalRuntimeError",
    "PayloadTooLarge",
    "SetupError",
    "SignatureError",
    "WorkerDied",
]


class LocalRuntimeError(Exception):
    """Base class of every local-runtime error."""


class SetupError(LocalRuntimeError):
    """The machine lacks something the local runtime needs; the message says how to fix it."""


class FunctionNotFoundError(LocalRuntimeError, KeyError):
    """The local Lambda runtime has no function of this name; ``args[0]`` is the name."""

    def __str__(self) -> str:
        return f"Function not found: {self.args[0]}"


class WorkerDied(LocalRuntimeError):
    """The worker closed its end of the channel: it exited or was killed."""


class SignatureError(LocalRuntimeError):
    """Why a request's signature was refused: the ``x-amzn-ErrorType`` code and the message (HTTP 403)."""

    status = 403

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class ConnectionsError(LocalRuntimeError):
    """An ``@connections`` operation failed: ``code`` is the error type botocore reads
    (``x-amzn-ErrorType``), ``status_code`` the HTTP status, ``message`` the body's (or ``None``)."""

    code: ClassVar[str]
    status_code: ClassVar[int]

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.code)
        self.message = message


class Gone(ConnectionsError):
    """No such connection, or one not (yet, or any longer) open: API Gateway answers 410, also while
    ``$connect`` runs."""

    code = "GoneException"
    status_code = 410


class PayloadTooLarge(ConnectionsError):
    """The message is over the API's message limit (128 KB)."""

    code = "PayloadTooLargeException"
    status_code = 413


class LimitExceeded(ConnectionsError):
    """Throttled: the account's ``@connections`` quota, or the client's buffer is full."""

    code = "LimitExceededException"
    status_code = 429
