"""The fault suite: one module per fault, each a specification bounded in time (``make test`` runs it).

* ``test_dynamodb_restart`` — DynamoDB Local killed mid-stream and restarted on its port and files
* ``test_dropped_connections`` — 30% of a 300-member room drop TCP without a close frame mid-burst
* ``test_stale_record`` — a connection record whose ``$disconnect`` was missed
* ``test_slow_consumer`` — a client that never reads
* ``test_handler_timeout`` — ``$default`` slower than the integration timeout, or than its own timeout
* ``test_serve_restart`` — the local stack stopped and started again on persisted data
* ``test_mass_close`` — 500 clients closing at the same instant
"""
