"""Errors of the local runtime (never deployed).

LocalRuntimeError
├── SetupError              something the machine lacks: Java, npm packages, a free port
└── FunctionNotFoundError   the Lambda runtime has no function of that name (Invoke answers 404)
"""

__all__ = ["FunctionNotFoundError", "LocalRuntimeError", "SetupError"]


class LocalRuntimeError(Exception):
    """Base class of every local-runtime error."""


class SetupError(LocalRuntimeError):
    """The machine lacks something the local runtime needs; the message says how to fix it."""


class FunctionNotFoundError(LocalRuntimeError, KeyError):
    """The local Lambda runtime has no function of this name; ``args[0]`` is the name."""

    def __str__(self) -> str:
        return f"Function not found: {self.args[0]}"
