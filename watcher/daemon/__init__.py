"""The long-running service (``watcher run``): scheduling, state, and durable delivery.

Modules: :mod:`~watcher.delivery.outbox` (the durable outbox: at-least-once delivery with an
idempotency key), :mod:`~watcher.delivery.retry` (which outcomes are retried, and when),
:mod:`~watcher.delivery.ratelimit` (per-connector concurrency and rate limits).
"""
