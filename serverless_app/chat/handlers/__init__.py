"""Lambda entry points: event → container → service → response. One module per function.

Which function runs which handler is in ``serverless_app/definitions.py``. Each handler reads its
event (:mod:`~serverless_app.chat.events`), takes what :mod:`~serverless_app.chat.container` built
once for the Lambda container, calls :class:`~serverless_app.chat.service.ChatService` (the rules;
``service/facade.py`` first) and hands the deliveries it returns to
:func:`~serverless_app.chat.delivery.deliver` (``fanout``: ``deliver_range``). Two do not: ``$connect``
records the connection and hands its welcome to ``websocket-welcome``, and the authorizer only
checks the token.
"""
