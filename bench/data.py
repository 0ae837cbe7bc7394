"""The benchmark index: realistic log documents spread over 24 hours, bulk-loaded.

Documents carry ``@timestamp`` (UTC, within ``[end − 24 h, end)``), ``host.name`` (50 hosts),
``service.name`` (20 services), ``log.level`` (debug/info/warn/error, weighted like real logs),
``source.ip`` (1,000 addresses) and ``message``. The generator is seeded, so a given
``(count, end)`` always produces the same documents.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator

INDEX = "bench-logs"
HOSTS = [f"host-{i:02d}" for i in range(50)]
SERVICES = [f"svc-{i:02d}" for i in range(20)]
LEVELS = ["debug", "info", "warn", "error"]
LEVEL_WEIGHTS = [20, 60, 15, 5]
SPAN = dt.timedelta(hours=24)

MAPPINGS = {
    "properties": {
        "@timestamp": {"type": "date"},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "service": {"properties": {"name": {"type": "keyword"}}},
        "log": {"properties": {"level": {"type": "keyword"}}},
        "source": {"properties": {"ip": {"type": "ip"}}},
        "message": {"type": "text"},
    }
}


def data_end(now: dt.datetime | None = None) -> dt.datetime:
    """The end of the data span: ``now`` (aware UTC, default the wall clock) floored to the hour."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.replace(minute=0, second=0, microsecond=0)


def documents(count: int, end: dt.datetime, index: str = INDEX, seed: int = 8) -> Iterator[dict]:
    """``count`` bulk actions (``{"_index", "_source"}``) with timestamps uniform over ``[end − 24 h, end)``."""
    rng = random.Random(seed)
    start_ms = int((end - SPAN).timestamp() * 1000)
    span_ms = int(SPAN.total_seconds() * 1000)
    levels = rng.choices(LEVELS, LEVEL_WEIGHTS, k=count)
    for n in range(count):
        stamp = dt.datetime.fromtimestamp((start_ms + rng.randrange(span_ms)) / 1000, dt.timezone.utc)
        level = levels[n]
        yield {
            "_index": index,
            "_source": {
                "@timestamp": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "host": {"name": rng.choice(HOSTS)},
                "service": {"name": rng.choice(SERVICES)},
                "log": {"level": level},
                "source": {"ip": f"10.{rng.randrange(4)}.{rng.randrange(16)}.{rng.randrange(16)}"},
                "message": f"{level} request {n} handled in {rng.randrange(1, 900)} ms",
            },
        }


def load(es, count: int, end: dt.datetime, index: str = INDEX) -> dict:
    """(Re)create ``index`` and bulk-load ``count`` documents; returns ``{"documents", "seconds"}``.

    One shard, no replicas and no refresh during the load (a single 2-core node); one refresh and
    a force-merge to one segment at the end so every run searches the same layout. The shard
    request cache is off: in real use each tick's window is new, so repeated passes here must
    not be answered from the cache.

    Raises:
        RuntimeError: some documents were refused.
    """
    from elasticsearch import helpers

    began = time.monotonic()
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.create(index=index, mappings=MAPPINGS,
                      settings={"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "-1",
                                "requests": {"cache": {"enable": False}}})
    ok, errors = helpers.bulk(es, documents(count, end, index), chunk_size=5000, stats_only=True,
                              raise_on_error=False, request_timeout=120)
    if errors:
        raise RuntimeError(f"{errors} of {count} documents were refused by {index}")
    es.indices.put_settings(index=index, settings={"refresh_interval": "1s"})
    es.indices.refresh(index=index)
    es.options(request_timeout=300).indices.forcemerge(index=index, max_num_segments=1)
    stored = es.count(index=index)["count"]
    return {"documents": stored, "seconds": round(time.monotonic() - began, 2)}
