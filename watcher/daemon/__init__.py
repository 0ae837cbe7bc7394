"""The long-running service (``watcher run``): scheduling, state, and durable delivery.

Modules: :mod:`~watcher.daemon.outbox` (the durable outbox: at-least-once delivery with an
idempotency key), :mod:`~watcher.daemon.retry` (which outcomes are retried, and when),
:mod:`~watcher.daemon.ratelimit` (per-connector concurrency and rate limits).
"""
