"""Load sshd log lines into Elasticsearch as ECS documents, in bulk or replayed live.

**Parsing.** The cluster parses when it can: :func:`cluster_can_parse` asks the node for its
ingest processors (``GET _nodes/_local/ingest``) and modules; with ``grok``/``set``/``remove``
(ingest-common), Painless (``if`` conditions) and Mustache, the loader installs the pipeline of
:func:`watcher.demo.sshd.pipeline_body` and sends raw lines through it. Otherwise it says so
("cluster has no ingest processors (ingest-common); parsed here") and runs the *same* grok patterns
in Python (:mod:`watcher.demo.sshd`), producing the same fields.

**Time rule** (:class:`TimeRule`). Syslog lines carry no year and no zone:

* ``--year Y --timezone Z``: each time is local time in zone Z (IANA name, default UTC) in year Y.
  Lines are in file order; a time more than 30 days *earlier* than the previous line's (Dec 31 →
  Jan 1) moves to the next year.
* no ``--year`` (default): **shift to now** — the times are read as above with the current year in
  UTC, then every one is moved by the same offset so that the **last line lands at now**; the gaps
  between lines stay exactly as in the file.

RFC 3339 timestamps with an offset (newer rsyslog) are exact and only shifted in shift mode.
``message repeated N times: [ … ]`` becomes N events with the line's time.

**Replay** (:func:`replay`): the lines are sent one by one at their original pace divided by
``factor``, each stamped with the wall-clock time it is sent, so a running daemon sees them live.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import click
from elasticsearch import helpers

from watcher.demo import sshd

__all__ = ["DEFAULT_INDEX", "Event", "LoadResult", "PIPELINE_ID", "TEMPLATE_NAME", "TimeRule", "cluster_can_parse",
           "ensure_index", "events_from_lines", "load", "replay", "template_body"]

DEFAULT_INDEX = "logs-ssh-demo"
PIPELINE_ID = "watcher-demo-sshd"
TEMPLATE_NAME = "watcher-demo-sshd"
NO_INGEST = "cluster has no ingest processors (ingest-common); parsed here"
UTC = dt.timezone.utc
YEAR_ROLLOVER = dt.timedelta(days=30)

_KEYWORD = {"type": "keyword"}
MAPPING: dict = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},
        "message": {"type": "text"},
        "event": {"properties": {"original": {"type": "keyword", "index": False, "doc_values": False},
                                 "action": _KEYWORD, "outcome": _KEYWORD}},
        "host": {"properties": {"name": _KEYWORD}},
        "process": {"properties": {"name": _KEYWORD, "pid": {"type": "long"}}},
        "source": {"properties": {"ip": {"type": "ip"}, "port": {"type": "long"}, "address": _KEYWORD,
                                  "domain": _KEYWORD}},
        "user": {"properties": {"name": _KEYWORD}},
        "ssh": {"properties": {"method": _KEYWORD, "pam_more_failures": {"type": "long"}}},
        "error": {"properties": {"message": {"type": "text"}}},
    },
}
"""Explicit ECS mapping of the demo index (unlisted fields are kept in ``_source``, not indexed)."""


def template_body(index: str) -> dict:
    """The composable index template for ``index`` (a name or pattern). Priority 500 beats the
    built-in ``logs-*-*`` data-stream template of full distributions (priority 100), so
    ``logs-ssh-…`` stays a plain index."""
    return {"index_patterns": [index], "priority": 500,
            "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0}, "mappings": MAPPING},
            "_meta": {"description": "sshd logs parsed to ECS (watcher demo)"}}


# --- time -----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TimeRule:
    """How syslog times become instants (module docstring, "Time rule").

    Attributes:
        year: the year of the first line, or None for shift-to-now.
        timezone: IANA zone of the local times (``UTC`` by default).
        now: the instant the last line lands on in shift mode (default: the clock's now, UTC).
    """

    year: int | None = None
    timezone: str = "UTC"
    now: dt.datetime | None = None

    def describe(self) -> str:
        """One line saying which rule applies."""
        if self.year is not None:
            return f"times read as {self.timezone} local time in {self.year}"
        return "times shifted so the last line lands at now (gaps kept)"

    def instants(self, stamps: Sequence[str]) -> list[dt.datetime]:
        """Aware UTC instants of the header time texts ``stamps`` (file order).

        Raises:
            ValueError: a text that is neither syslog (``Dec 10 06:55:46``) nor RFC 3339.
            zoneinfo.ZoneInfoNotFoundError: unknown ``timezone``.
        """
        zone = ZoneInfo(self.timezone)
        year = self.year if self.year is not None else dt.datetime.now(UTC).year
        out: list[dt.datetime] = []
        previous: dt.datetime | None = None
        for text in stamps:
            if text[:1].isdigit():
                instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                if instant.tzinfo is None:
                    instant = instant.replace(tzinfo=zone)
            else:
                local = dt.datetime.strptime(f"{year} {' '.join(text.split())}", "%Y %b %d %H:%M:%S")
                if previous is not None and previous.replace(tzinfo=None) - local > YEAR_ROLLOVER:
                    year += 1
                    local = local.replace(year=year)
                instant = local.replace(tzinfo=zone)
            previous = instant.astimezone(zone)
            out.append(instant.astimezone(UTC))
        if self.year is None and out:
            target = (self.now or dt.datetime.now(UTC)).astimezone(UTC)
            offset = target - out[-1]
            out = [instant + offset for instant in out]
        return out


# --- events ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Event:
    """One event to index: its instant, the (expanded) line and the raw line it came from."""

    timestamp: dt.datetime
    line: str
    original: str

    def raw_document(self) -> dict:
        """The document sent through the ingest pipeline (it parses ``event.original``)."""
        return {"@timestamp": _iso(self.timestamp), "event": {"original": self.line}}

    def parsed_document(self) -> dict:
        """The document the pipeline would produce, parsed here (:func:`watcher.demo.sshd.parse_line`)."""
        fields = sshd.parse_line(self.line) or {"message": self.line}
        document = sshd.nest(fields)
        document["@timestamp"] = _iso(self.timestamp)
        document.setdefault("event", {})["original"] = self.line
        return document


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def events_from_lines(lines: Iterable[str], time_rule: TimeRule) -> tuple[list[Event], int]:
    """Expand repeats and give every line its instant.

    Args:
        lines: raw log lines (CR/LF already stripped).
        time_rule: the rule turning header times into instants.

    Returns:
        ``(events, skipped)``: events in file order; ``skipped`` counts lines without a syslog header.
    """
    pending: list[tuple[str, str, str]] = []  # (time text, expanded line, raw line)
    skipped = 0
    for raw in lines:
        header = sshd.parse_header(raw)
        if header is None:
            skipped += 1
            continue
        for line in sshd.expand_repeats(raw):
            pending.append((header["_tmp.time"], line, raw))
    instants = time_rule.instants([stamp for stamp, _, _ in pending])
    return [Event(at, line, raw) for at, (_, line, raw) in zip(instants, pending)], skipped


# --- cluster --------------------------------------------------------------------------------------------

def cluster_can_parse(es) -> tuple[bool, str]:
    """Whether the cluster can run :func:`watcher.demo.sshd.pipeline_body`, and why not.

    Returns:
        ``(True, "parsed by the cluster's ingest pipeline …")`` or ``(False, reason)``; the reason
        starts with :data:`NO_INGEST` when grok/set/remove are missing.
    """
    nodes = es.nodes.info(node_id="_local", metric="ingest,plugins")["nodes"]
    node = next(iter(nodes.values()))
    processors = {p.get("type") for p in (node.get("ingest") or {}).get("processors", [])}
    missing = [name for name in sshd.PIPELINE_PROCESSORS if name not in processors]
    if missing:
        return False, f"{NO_INGEST}: missing processors {', '.join(missing)}"
    modules = {m.get("name") for m in node.get("modules", [])} | {p.get("name") for p in node.get("plugins", [])}
    lacking = [name for name in ("lang-painless", "lang-mustache") if name not in modules]
    if lacking:
        return False, f"cluster lacks {', '.join(lacking)} (pipeline conditions/templates); parsed here"
    return True, f"parsed by the cluster's ingest pipeline {PIPELINE_ID} (grok)"


def ensure_index(es, index: str, *, with_pipeline: bool, replace: bool = False) -> None:
    """Install the index template (and the pipeline when ``with_pipeline``) and create ``index``.

    Args:
        index: the concrete index name.
        with_pipeline: also ``PUT _ingest/pipeline/watcher-demo-sshd`` and make it the index's
            default pipeline (so replayed and bulk documents both go through it).
        replace: delete ``index`` first when it exists (the demo reloads its own index).
    """
    body = template_body(index)
    if with_pipeline:
        es.ingest.put_pipeline(id=PIPELINE_ID, **sshd.pipeline_body())
        body["template"]["settings"]["index.default_pipeline"] = PIPELINE_ID
    es.indices.put_index_template(name=TEMPLATE_NAME, **body)
    if replace:
        es.options(ignore_status=404).indices.delete(index=index)
    if not es.indices.exists(index=index):
        es.options(ignore_status=400).indices.create(index=index)  # 400: created meanwhile


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """What :func:`load` did: documents indexed, failures, time range (aware UTC), how parsed."""

    indexed: int
    failed: int
    skipped_lines: int
    first: dt.datetime | None
    last: dt.datetime | None
    by_cluster: bool
    how: str


def _documents(events: Sequence[Event], index: str, by_cluster: bool) -> Iterable[dict]:
    for event in events:
        source = event.raw_document() if by_cluster else event.parsed_document()
        action = {"_index": index, "_source": source}
        if by_cluster:
            action["pipeline"] = PIPELINE_ID
        yield action


def load(es, lines: Iterable[str], *, index: str = DEFAULT_INDEX, time_rule: TimeRule = TimeRule(),
         parse: str = "auto", replace: bool = False, progress: bool = True,
         echo: Callable[[str], None] = print) -> LoadResult:
    """Bulk-load sshd ``lines`` into ``index`` (module docstring), refreshed when done.

    Args:
        es: a sync ``elasticsearch.Elasticsearch`` client.
        lines: raw lines (CR/LF stripped).
        index: target index (created with the ECS template).
        time_rule: how times become instants.
        parse: ``auto`` (the cluster when it can), ``cluster`` (fail when it cannot) or ``python``.
        replace: delete the index first.
        progress: show a progress bar on stderr.
        echo: where the one-line notices go.

    Raises:
        RuntimeError: ``parse="cluster"`` and the cluster lacks the processors.
    """

    can, reason = cluster_can_parse(es) if parse != "python" else (False, "parsed here (--parse python)")
    if parse == "cluster" and not can:
        raise RuntimeError(reason)
    echo(reason)
    events, skipped = events_from_lines(lines, time_rule)
    echo(f"{len(events)} events ({skipped} lines without a syslog header skipped); {time_rule.describe()}")
    ensure_index(es, index, with_pipeline=can, replace=replace)
    indexed = failed = 0
    stream = helpers.streaming_bulk(es, _documents(events, index, can), chunk_size=500, raise_on_error=False,
                                    max_retries=2)

    with click.progressbar(length=len(events), label=f"loading {index}", file=None if progress else _Null(),
                           show_pos=True) as bar:
        for ok, item in stream:
            if ok:
                indexed += 1
            else:
                failed += 1
                if failed <= 3:
                    echo(f"failed: {item}")
            bar.update(1)
    es.indices.refresh(index=index)
    first = events[0].timestamp if events else None
    last = events[-1].timestamp if events else None
    return LoadResult(indexed, failed, skipped, first, last, can, reason)


class _Null:
    """A file that drops everything (a hidden progress bar)."""

    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def replay(es, lines: Iterable[str], *, index: str = DEFAULT_INDEX, factor: float = 1.0, parse: str = "auto",
           echo: Callable[[str], None] = print, stop: Callable[[], bool] = lambda: False,
           sleep: Callable[[float], None] = time.sleep, clock: Callable[[], dt.datetime] | None = None) -> int:
    """Send ``lines`` one event at a time at their original pace ÷ ``factor``, each stamped with
    the wall-clock time it is sent (module docstring). Returns the number of events indexed.

    Args:
        factor: speed-up (> 0): 60 plays an hour of log in a minute.
        stop: polled between events; True ends the replay early.
        sleep, clock: injectable for tests (seconds; aware UTC now).
    """
    if factor <= 0:
        raise ValueError("factor must be > 0")
    now = clock or (lambda: dt.datetime.now(UTC))
    can, reason = cluster_can_parse(es) if parse != "python" else (False, "parsed here (--parse python)")
    echo(reason)
    events, _ = events_from_lines(lines, TimeRule(year=2000))  # only the gaps matter here
    ensure_index(es, index, with_pipeline=can)
    sent = 0
    previous: dt.datetime | None = None
    for event in events:
        if stop():
            break
        if previous is not None:
            gap = (event.timestamp - previous).total_seconds() / factor
            if gap > 0:
                sleep(gap)
        previous = event.timestamp
        stamped = dataclasses.replace(event, timestamp=now())
        source = stamped.raw_document() if can else stamped.parsed_document()
        kwargs: dict[str, Any] = {"pipeline": PIPELINE_ID} if can else {}
        es.index(index=index, document=source, refresh=False, **kwargs)
        sent += 1
    es.indices.refresh(index=index)
    return sent
