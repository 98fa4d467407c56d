"""Clients of the wschat protocol: ``wschat token`` and the terminal chat ``wschat chat``.

Nothing here is deployed; these modules run on a user's machine.

The chat state, without I/O (any Python client can drive it):

- :mod:`.session`: :class:`~.session.ChatSession`, user intents to client frames, recovery after a reconnect;
- :mod:`.incoming` and :mod:`.membership`: how it applies server frames (messages; rooms and presence);
- :mod:`.events`: the typed events it emits, in a :class:`~.events.Reply`;
- :mod:`.messages`, :mod:`.rooms`, :mod:`.outbox`, :mod:`.request_log`: the message model and input checks,
  what is known of each room, the pending sends, the requests awaiting their answer.

The terminal client: :mod:`.terminal` (connection and input loops), :mod:`.commands` (the ``/commands``),
:mod:`.render` (one line per event), :mod:`.chat_cmd` (``wschat chat``). Around them: :mod:`.endpoint`
(the URL and credentials), :mod:`.secrets_source` and :mod:`.token_cmd` (``wschat token``).
"""
