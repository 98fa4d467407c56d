"""``make bench``: the benchmark suite (``benchmarks.run``) and the floor server it compares against.

``run`` orders the sections; ``stack`` starts the processes and reads the stack; ``scenarios``
(sections 1–4), ``rooms`` (5) and ``large_room`` (6, with ``sink``, ``fanout_process`` and
``large_room_results``) measure; ``render`` writes ``RESULTS.md``.
"""
