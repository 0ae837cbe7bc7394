"""The event log read by cursor against the real cluster (docs/events.md#ordering): several threads
append concurrently while a reader follows the log; the reader's sequence is the final log in
``_seq_no`` order, nothing missing, nothing repeated. Also: filters move the cursor on, a cursor of
a re-created log is refused, retention flags the gap."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest

from watcher.es.events import (BEGINNING, Cursor, EventFilter, EventLog,
                               StaleCursorError)
from watcher.model.events import Event, event_id

UTC = dt.timezone.utc
WRITERS = 4
PER_WRITER = 150


def _event(writer: int, n: int, kind: str = "fired") -> Event:
    return Event(id=event_id(kind, writer, n), kind=kind, watch_id=f"w{writer}", time=dt.datetime.now(UTC),
                 group=f"g{n % 3}", message=f"writer {writer} event {n}")


@pytest.fixture
def log(es):
    prefix = f"ev-{uuid.uuid4().hex[:10]}"
    event_log = EventLog(es, prefix)
    event_log.ensure()
    yield event_log
    es.options(ignore_status=404).indices.delete(index=event_log.index)


def _final_log(es, log: EventLog) -> list[tuple[int, str]]:
    es.indices.refresh(index=log.index)
    hits = es.search(index=log.index, size=10000, seq_no_primary_term=True, sort=[{"_seq_no": "asc"}],
                     query={"match_all": {}})["hits"]["hits"]
    return [(hit["_seq_no"], hit["_id"]) for hit in hits]


def test_reader_following_concurrent_writers_misses_and_repeats_nothing(es, log):
    done = threading.Event()
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for start in range(0, PER_WRITER, 5):  # small bulks, interleaved with the other writers
                log.append(_event(writer, n) for n in range(start, start + 5))
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    seen: list[tuple[int, str]] = []
    cursor = log.head()
    assert cursor.seq_no == -1
    for thread in threads:
        thread.start()
    while not done.is_set():
        writing = any(thread.is_alive() for thread in threads)
        page = log.read(cursor, limit=7)
        seen.extend((Cursor.parse(event.cursor).seq_no, event.id) for event in page.events)
        assert page.cursor >= cursor
        cursor = page.cursor
        if not writing and not page.events:
            done.set()
    assert not failures
    final = _final_log(es, log)
    assert len(final) == WRITERS * PER_WRITER
    assert seen == final


def test_filters_cursor_and_stale_log(es, log):
    log.append([_event(1, n) for n in range(6)] + [_event(2, n, "dead") for n in range(3)])
    page = log.read(BEGINNING, EventFilter(watch_ids=("w2",)), limit=100)
    assert [event.id for event in page.events] == [event_id("dead", 2, n) for n in range(3)]
    assert page.cursor == log.head()  # moved past what the filter left out
    page = log.read(BEGINNING, EventFilter(kinds=("fired",), groups=("g1",)), limit=1)
    assert [event.id for event in page.events] == [event_id("fired", 1, 1)]
    assert page.cursor == Cursor.parse(page.events[0].cursor)  # the limit stopped it: the last event's
    assert log.append([_event(1, 0)]) == 0  # the same fact again: stored once
    old = log.head()
    es.indices.delete(index=log.index)
    log.ensure()
    with pytest.raises(StaleCursorError):
        log.read(old)
    assert log.read(BEGINNING).events == []


def test_retention_deletes_old_events_and_flags_the_gap(es, log):
    log.append([_event(1, n) for n in range(4)])
    before = log.head()
    reader = log.read(BEGINNING, limit=1).cursor  # a reader that read the first event only
    later = EventLog(es, log.prefix, clock=lambda: dt.datetime.now(UTC) + dt.timedelta(days=8))
    assert later.expire(dt.timedelta(days=7)) == 4
    log.ensure()  # a daemon starting again keeps the retention mark
    log.append([_event(1, 9)])
    page = log.read(reader)
    assert page.gap is True
    assert [event.id for event in page.events] == [event_id("fired", 1, 9)]
    caught_up = log.read(before)
    assert caught_up.gap is False and [event.id for event in caught_up.events] == [event_id("fired", 1, 9)]
    assert log.read(BEGINNING).gap is False
