"""The chat's storage: what the chat needs (:class:`ChatStore`, a protocol) and two ways to keep it.

The service (:mod:`serverless_app.chat.service`) sees only :class:`ChatStore` (``protocol``:
every operation with its promise); read that first, then one implementation.

* :class:`DynamoDBStore`: the three tables, one module each (``connections``, ``messages``,
  ``rooms``: a package of three parts, ``presence``, ``standing`` and ``grants``), their key
  layouts in ``keys``. Every expression uses placeholders; user input is only ever a value.
  Reads filter out items whose ``ttl`` has passed, because DynamoDB deletes expired items lazily.
* :class:`MemoryStore`: the same promises over plain dicts, for fast tests of the chat's rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serverless_app.chat.store.base import Cancelled, Conflict
from serverless_app.chat.store.dynamodb import DynamoDBStore
from serverless_app.chat.store.memory import MemoryStore
from serverless_app.chat.store.protocol import ChatStore, PageKey, RateDecision

__all__ = ["Cancelled", "ChatStore", "Conflict", "DynamoDBStore", "MemoryStore", "PageKey", "RateDecision"]

if TYPE_CHECKING:  # both keep the protocol, checked by mypy
    _dynamodb: type[ChatStore] = DynamoDBStore
    _memory: type[ChatStore] = MemoryStore
