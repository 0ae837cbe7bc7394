"""The daemon's HTTP surface (docs/api.md): ``/healthz``, ``/metrics``, our API under ``/api/v1``,
the live event streams and Elastic Watcher's REST API under ``/_watcher``, served by uvicorn.

Top layer: it imports the daemon and everything below; nothing imports it but the command line.
"""
