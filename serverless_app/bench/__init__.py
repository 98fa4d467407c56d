"""``wschat bench``: a WebSocket load tool measuring fan-out latency, throughput and loss.

``cli`` (the command) → ``load`` (the phases: connect, send, drain, close) over ``population`` (the
clients, their rooms and connections) and ``measure`` (the message format, what each client
receives); ``config`` says what to run, ``tokens`` where tokens come from; ``stats`` accounts,
``result`` holds one run's measurements, ``report`` shows them.
"""
