"""``wschat bench``: a WebSocket load tool measuring fan-out latency, throughput and loss."""
