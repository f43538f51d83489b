"""The handler runtime: runs actions (:mod:`handlers.action_contract`) on the events topic.

Pure decisions, no I/O:

- :mod:`~handlers.runtime.offsets` - lowest-unfinished-offset commit tracking
- :mod:`~handlers.runtime.keyed` - per-key ordering with parked retries
- :mod:`~handlers.runtime.retry` - backoff schedule with jitter, attempts and time budget
- :mod:`~handlers.runtime.guard` - the bad-deploy guard
- :mod:`~handlers.runtime.rebalance` - folding rebalance notifications
- :mod:`~handlers.runtime.dispatch` - one attempt at one record, classified
- :mod:`~handlers.runtime.dlq`, :mod:`~handlers.runtime.outcomes` - record builders

Kafka and processes:

- :mod:`~handlers.runtime.runner` - one action's poll / dispatch / commit loop
- :mod:`~handlers.runtime.txn` - outputs and offsets in one transaction
- :mod:`~handlers.runtime.state` - state store and tables over compacted topics
- :mod:`~handlers.runtime.replay` - DLQ listing and replay
- :mod:`~handlers.runtime.supervisor` - several actions in one process, signals
- :mod:`~handlers.runtime.metrics`, :mod:`~handlers.runtime.health` - observability

Nothing is imported here, so importing a pure module stays cheap.
"""
