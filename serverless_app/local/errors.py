"""Errors of the local runtime (never deployed).

LocalRuntimeError
└── SetupError        something the machine lacks: Java, npm packages, a free port
"""

__all__ = ["LocalRuntimeError", "SetupError"]


class LocalRuntimeError(Exception):
    """Base class of every local-runtime error."""


class SetupError(LocalRuntimeError):
    """The machine lacks something the local runtime needs; the message says how to fix it."""
