"""The group-commit mechanism without a cluster: a lone call is sent at once and alone, calls that
queue while every request slot is taken go out together (one request per key), each caller gets its
own result or error, a failed request reaches every caller in it, and the Elasticsearch item
errors become the exceptions a lone request raises. The document requests against the node:
tests/integration/test_state_history_batching.py."""

from __future__ import annotations

import threading
import time

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError

from tests.groupcommit_helpers import held
from watcher.es.groupcommit import UNANSWERED, GroupCommit, Pending, _lone_body, document_requests, item_error, shared

META = ApiResponseMeta(status=200, http_version="1.1", headers=HttpHeaders(), duration=0.01,
                       node=NodeConfig("http", "127.0.0.1", 9200))


class Recorder:
    """A ``send_batch`` that answers each item with ``payload * 10`` (or the error its payload
    names) and records the payloads of every request."""

    def __init__(self, fail_whole: BaseException | None = None):
        self.requests: list[list] = []
        self.fail_whole = fail_whole

    def __call__(self, items: list[Pending]) -> None:
        self.requests.append([item.payload for item in items])
        if self.fail_whole is not None:
            raise self.fail_whole
        for item in items:
            if item.payload == "bad":
                item.error = ValueError(f"bad item of key {item.key}")
            elif item.payload != "silent":
                item.result = item.payload * 10


def submit_all(group: GroupCommit, calls: list[tuple]) -> dict:
    """Submit ``(key, payload)`` calls on one thread each while the group is held; ``{payload:
    result or exception}``, in the order the threads were started (so the queue order is known)."""
    outcome: dict = {}

    def call(key, payload):
        try:
            outcome[payload] = group.submit(Pending(key, payload))
        except BaseException as error:  # collected for the assertions
            outcome[payload] = error

    threads = []
    with held(group, len(calls)):
        for number, (key, payload) in enumerate(calls):
            thread = threading.Thread(target=call, args=(key, payload))
            thread.start()
            threads.append(thread)
            while len(group._queue) < number + 1:  # enqueue in this order
                time.sleep(0.001)
    for thread in threads:
        thread.join(10)
    return outcome


class Watched(Pending):
    """A Pending that notes whether its caller ever parked waiting (``submit`` sets ``waiter`` only
    to wait) and on which thread its request was sent."""

    __slots__ = ("parked", "sent_on")

    def __init__(self, key, payload=None):
        super().__init__(key, payload)
        self.parked, self.sent_on = False, None

    @property
    def waiter(self):
        return Pending.waiter.__get__(self)

    @waiter.setter
    def waiter(self, value):
        if value is not None:
            self.parked = True
        Pending.waiter.__set__(self, value)


def test_a_lone_call_is_sent_at_once_alone():
    item = Watched("k", 4)

    def send(items):
        for each in items:
            each.sent_on = threading.current_thread()
        Recorder()(items)

    group = GroupCommit(send, max_batch=10, max_in_flight=1)
    assert group.submit(item) == 40
    # at once: the caller sent its request itself, without ever waiting (no timer, no other thread)
    assert item.sent_on is threading.current_thread() and not item.parked
    assert group.stats == {"requests": 1, "items": 1, "largest_batch": 1}


def test_queued_calls_go_out_together_per_key_oldest_first():
    send = Recorder()
    group = GroupCommit(send, max_batch=3, max_in_flight=1, counts_as="loads")
    outcome = submit_all(group, [("a", 1), ("b", 2), ("a", 3), ("a", 4), ("a", 5), ("b", 6)])
    assert outcome == {1: 10, 2: 20, 3: 30, 4: 40, 5: 50, 6: 60}
    # oldest (key a) with the next a's up to 3; then the oldest left (b) with its b; then the last a
    assert send.requests == [[1, 3, 4], [2, 6], [5]]
    assert group.stats == {"requests": 3, "loads": 6, "largest_batch": 3}


def test_each_caller_gets_its_own_error():
    group = GroupCommit(Recorder(), max_in_flight=1)
    outcome = submit_all(group, [("k", 1), ("k", "bad"), ("k", 3)])
    assert outcome[1] == 10 and outcome[3] == 30
    assert type(outcome["bad"]) is ValueError and str(outcome["bad"]) == "bad item of key k"


def test_a_failed_request_reaches_every_caller_in_it():
    failure = ConnectionRefusedError("refused")
    send = Recorder(fail_whole=failure)
    group = GroupCommit(send, max_in_flight=1)
    outcome = submit_all(group, [("k", 1), ("k", 2), ("k", 3)])
    assert send.requests == [[1, 2, 3]]
    assert outcome == {1: failure, 2: failure, 3: failure}
    with pytest.raises(ConnectionRefusedError):  # alone too
        group.submit(Pending("k", 9))
    assert group._in_flight == 0  # the slot is given back after a failure


def test_an_item_left_unanswered_is_an_error_not_a_hang():
    group = GroupCommit(Recorder())
    with pytest.raises(RuntimeError, match="no answer"):
        group.submit(Pending("k", "silent"))
    assert Pending("k").result is UNANSWERED


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), max_batch=0)
    with pytest.raises(ValueError):
        GroupCommit(Recorder(), max_in_flight=0)


def test_one_shared_object_per_owner_and_purpose():
    first, second = Elasticsearch("http://127.0.0.1:1"), Elasticsearch("http://127.0.0.1:1")
    assert shared(first, "x", lambda es: object()) is shared(first, "x", lambda es: object())
    assert shared(first, "x", lambda es: object()) is not shared(first, "y", lambda es: object())
    assert shared(first, "x", lambda es: object()) is not shared(second, "x", lambda es: object())
    assert document_requests(first) is document_requests(first)
    assert document_requests(first) is not document_requests(second)


def test_a_bulk_conflict_item_becomes_the_lone_conflict_error():
    error = {"type": "version_conflict_engine_exception", "index": "s", "shard": "0",
             "reason": "[w1]: version conflict, required seqNo [3], primary term [1]. current document has seqNo [4]"}
    raised = item_error(_lone_body(error, 409), META, 409)
    assert type(raised) is ConflictError and raised.meta.status == 409
    assert raised.message == "version_conflict_engine_exception"
    assert raised.body == {"error": {"root_cause": [error], **error}, "status": 409}  # a lone 409's shape
    assert str(raised) == ("ConflictError(409, 'version_conflict_engine_exception', '[w1]: version conflict, "
                           "required seqNo [3], primary term [1]. current document has seqNo [4]')")


def test_a_rejected_bulk_item_stays_a_plain_api_error():
    raised = item_error(_lone_body({"type": "es_rejected_execution_exception", "reason": "queue full"}, 429), META, 429)
    assert type(raised) is ApiError and raised.status_code == 429


def test_a_missing_mget_document_is_the_lone_get_not_found():
    doc = {"_index": "s", "_id": "w9", "found": False}
    raised = item_error(doc, META, 404)
    assert type(raised) is NotFoundError and raised.body == doc
    assert raised.message == str(doc)  # what the client makes of a lone GET's 404 body
