"""The search batcher's pieces that need no cluster: which searches share a request, which exception
an ``_msearch`` error item becomes, one batcher per client, and a refused connection. The batching
itself against the node: tests/integration/test_search_batcher.py."""

from __future__ import annotations

import datetime as dt
import threading

import elastic_transport
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError

from watcher.daemon.service import TRANSIENT_ERROR_TYPES
from watcher.engine.execute import error_json
from watcher.engine.searching import SearchRequest, run_search
from watcher.es.search_batch import SearchBatcher, _item_error, _Pending, batcher_for

META = ApiResponseMeta(status=200, http_version="1.1", headers=HttpHeaders(), duration=0.01,
                       node=NodeConfig("http", "127.0.0.1", 9200))


def item(kind: str, status: int) -> dict:
    return {"error": {"root_cause": [{"type": kind, "reason": "why"}], "type": kind, "reason": "why"},
            "status": status}


@pytest.mark.parametrize("status, kind, cls, transient", [
    (400, "search_phase_execution_exception", BadRequestError, False),
    (404, "index_not_found_exception", NotFoundError, False),
    (429, "es_rejected_execution_exception", ApiError, True),
    (503, "search_phase_execution_exception", ApiError, True),
])
def test_error_items_become_the_lone_search_exception(status, kind, cls, transient):
    error = _item_error(item(kind, status), META)
    assert type(error) is cls
    assert error.status_code == status and error.meta.status == status
    assert error.message == kind and error.info == item(kind, status)
    assert str(error) == f"{cls.__name__}({status}, '{kind}', 'why')"
    assert (error_json(error)["type"] in TRANSIENT_ERROR_TYPES) is transient


def test_an_item_without_a_status_is_a_server_error():
    error = _item_error({"error": "boom"}, META)
    assert type(error) is ApiError and error.status_code == 500 and error.message == "boom"


def queued(batcher: SearchBatcher, keys: list[tuple]) -> None:
    for number, key in enumerate(keys):
        batcher._queue.append(_Pending(key, f"index-{number}", {}, {}))


def test_a_batch_takes_the_oldest_search_and_the_next_ones_with_its_key():
    batcher = SearchBatcher(Elasticsearch("http://127.0.0.1:1"), max_batch=3)
    a, b = (True, 60.0), (False, 60.0)
    queued(batcher, [a, b, a, a, b, a])
    assert [p.index for p in batcher._take()] == ["index-0", "index-2", "index-3"]  # max_batch 3
    assert [p.index for p in batcher._take()] == ["index-1", "index-4"]  # then the oldest left: key b
    assert [p.index for p in batcher._take()] == ["index-5"]
    assert not batcher._queue


def test_limits_must_be_positive():
    es = Elasticsearch("http://127.0.0.1:1")
    with pytest.raises(ValueError):
        SearchBatcher(es, max_batch=0)
    with pytest.raises(ValueError):
        SearchBatcher(es, max_in_flight=0)


def test_one_batcher_per_client():
    first, second = Elasticsearch("http://127.0.0.1:1"), Elasticsearch("http://127.0.0.1:1")
    assert batcher_for(first) is batcher_for(first)
    assert batcher_for(first) is not batcher_for(second)
    assert batcher_for(first).es is first


def test_refused_connection_reaches_every_caller_as_connection_error():
    es = Elasticsearch("http://127.0.0.1:1", max_retries=0, request_timeout=2)
    request = SearchRequest(indices=("logs",), body={"size": 0})
    with pytest.raises(elastic_transport.ConnectionError):  # alone
        run_search(es, request, {"size": 0}, dt.timedelta(seconds=2))
    batcher = batcher_for(es)
    errors: list = []
    with batcher._guard:  # hold the only slots so the four searches queue and go as one _msearch
        batcher._in_flight = batcher.max_in_flight

    def call():
        try:
            run_search(es, request, {"size": 0}, dt.timedelta(seconds=2))
        except Exception as error:  # collected for the assertions
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    while len(batcher._queue) < 4:
        threading.Event().wait(0.005)
    with batcher._guard:
        batcher._in_flight = 0
        batcher._wake_next_sender()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 4 and all(isinstance(e, elastic_transport.ConnectionError) for e in errors)
    assert batcher.stats["requests"] == 2 and batcher.stats["largest_batch"] == 4  # the lone one, then one batch
    assert {error_json(e)["type"] for e in errors} == {"connection_error"}
