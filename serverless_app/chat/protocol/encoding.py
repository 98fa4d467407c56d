"""Server frames out: serialize a frame (repairing a lone surrogate rather than failing) and cut a
page of messages to fit the ``@connections`` post limit.

:func:`dumps` is called by ``delivery`` (every post) and the welcome handler; :func:`fit_messages`
by the history builders in :mod:`~serverless_app.chat.protocol.frames`. No I/O, except a warning
logged when a frame has to be repaired to be sent.
"""

from __future__ import annotations

import json
import logging
import re

from serverless_app.chat.protocol.schema import ServerFrame

__all__ = ["MAX_FRAME_BYTES", "SURROGATE", "dumps", "fit_messages"]

MAX_FRAME_BYTES = 120 * 1024
"""The most a server frame may weigh, encoded: ``@connections`` refuses a post over 128 KiB (413),
so a page of history is cut to fit with 8 KiB to spare."""


log = logging.getLogger(__name__)

SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone UTF-16 surrogate: JSON text can spell one (``"\\ud800"``), but it is no character and
cannot be encoded as UTF-8, so a stored one would break every frame that carries it."""


def dumps(frame: ServerFrame) -> bytes:
    """Serialize a frame compactly as UTF-8 JSON; never raises for a lone surrogate.

    A string holding a lone surrogate (e.g. a message stored before they were refused) cannot be
    UTF-8: each one is replaced by U+FFFD (a split pair is joined again), and a warning is logged.
    """
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        log.warning(
            "lone surrogate replaced with U+FFFD",
            extra={
                "action": frame.get("action"),
                "room": frame.get("room"),
                "surrogates": len(SURROGATE.findall(text)),
            },
        )
        return repaired.encode("utf-8")


def fit_messages(frame: ServerFrame, *, max_bytes: int = MAX_FRAME_BYTES) -> ServerFrame:
    """A ``history`` or ``userHistory`` frame cut to at most ``max_bytes`` once encoded.

    Messages are dropped from the far end of the page: the oldest of a ``before`` page (which
    keeps the newest), the newest of an ``after`` page, the oldest of a ``userHistory`` page
    (newest first). ``next_cursor`` then points at the last message kept in the paging direction,
    so the client's next request starts with the first one dropped: nothing is skipped or repeated.
    At least one message is kept (a single message is far below any frame limit).
    """
    messages: list[ServerFrame] = frame["messages"]
    if len(messages) <= 1 or len(dumps(frame)) <= max_bytes:
        return frame
    backwards = frame["action"] == "history" and frame.get("direction") == "before"
    nearest_first = messages[::-1] if backwards else messages

    def page(kept: int) -> ServerFrame:
        chosen = messages[len(messages) - kept :] if backwards else messages[:kept]
        return {**frame, "messages": chosen, "next_cursor": nearest_first[kept - 1]["cursor"]}

    budget = max_bytes - len(dumps(page(1))) + len(dumps(nearest_first[0]))
    kept, used = 0, 0
    for message in nearest_first:
        size = len(dumps(message)) + (1 if kept else 0)  # a comma between messages
        if kept and used + size > budget:
            break
        kept, used = kept + 1, used + size
    fitted = page(kept)
    while kept > 1 and len(dumps(fitted)) > max_bytes:  # only if the estimate was off
        kept -= 1
        fitted = page(kept)
    return fitted
