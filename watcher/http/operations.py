"""``GET /healthz`` and ``GET /metrics``: open to everyone (no secret in them), for load balancers
and Prometheus.

``/healthz`` answers 200 with the daemon's health document when its ``status`` is ``ok``, else 503
(an exception: 503 ``{"status": "error", "reason": <exception type>}`` — its message could hold
anything). ``/metrics`` is prometheus_client's exposition of the daemon's registry, in the format
the ``Accept`` header asks for (text 0.0.4 or OpenMetrics), gzip-compressed when accepted.
"""

from __future__ import annotations

import gzip
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder

from watcher.http.deps import daemon_of

__all__ = ["router"]

LOG = logging.getLogger("watcher.http")
router = APIRouter(tags=["operations"])


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", summary="Health of the daemon (open)")
def healthz(request: Request) -> JSONResponse:
    """200 when the cluster answers and the scheduler runs, else 503; the body says which part is
    down (``cluster``, ``scheduler``, ``outbox``, ``definitions``)."""
    try:
        document = daemon_of(request).health()
    except Exception as error:
        LOG.exception("health check failed")
        document = {"status": "error", "reason": f"health check raised {type(error).__name__}"}
    healthy = isinstance(document, dict) and document.get("status") == "ok"
    return JSONResponse(document, status_code=200 if healthy else 503, headers={"Cache-Control": "no-store"})


@router.get("/metrics", summary="Prometheus metrics (open)", response_class=Response)
def metrics(request: Request) -> Response:
    """The daemon's metrics (docs/api.md#metrics lists them)."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    body = encoder(daemon_of(request).metrics.registry)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(gzip.compress(body), media_type=content_type, headers={"Content-Encoding": "gzip"})
    return Response(body, media_type=content_type)
