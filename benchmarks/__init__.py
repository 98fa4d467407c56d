"""``make bench``: the benchmark suite (``benchmarks.run``) and the floor server it compares against."""
