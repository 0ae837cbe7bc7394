"""Group commit: concurrent callers share requests, and each still gets its own answer.

:class:`GroupCommit` is the mechanism (no Elasticsearch in it): a caller enqueues one
:class:`Pending` item with a compatibility key and blocks. While fewer than ``max_in_flight``
requests are out, the caller that finds a free slot takes the oldest queued item and the next ones
with the same key (up to ``max_batch``) and hands them to ``send_batch(items)``, which sends them
as one request and sets each item's ``result`` or ``error``. So a lone call is sent at once (no
timer, no added wait) and batches form exactly when calls arrive faster than the server answers.
No thread of its own: the callers do the sending.

The rest of the module is what the Elasticsearch users of it share: one group commit per client
and purpose (:func:`shared`), the exception a failed item of a multi-request (``_msearch``,
``_bulk``, ``_mget``) becomes (:func:`item_error`), and two document requests built on it —
:func:`get_document` (``GET`` alone, ``_mget`` when concurrent) and :func:`index_document`
(``index`` alone, ``_bulk`` when concurrent) — used by the state store and the history writer.
The search batcher is in :mod:`watcher.es.search_batch`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
import weakref
from collections.abc import Callable
from typing import Any

DEFAULT_MAX_BATCH = 100
DEFAULT_MAX_IN_FLIGHT = 2


UNANSWERED = object()  # Pending.result until send_batch sets it


class Pending:
    """One caller's item waiting in a :class:`GroupCommit`.

    Attributes:
        key: items with equal keys may share a request (hashable, compared with ``==``).
        payload: what to send (any shape; ``send_batch`` knows it).
        result, error: set by ``send_batch``: the caller's answer (:data:`UNANSWERED` until
            then) or the exception to raise.
        done: the item has been through a request.
    """

    __slots__ = ("key", "payload", "result", "error", "done", "waiter")

    def __init__(self, key: Any, payload: Any = None):
        self.key, self.payload = key, payload
        self.result: Any = UNANSWERED
        self.error: BaseException | None = None
        self.done = False
        self.waiter: threading.Condition | None = None  # set while the caller waits (GroupCommit)


class GroupCommit:
    """Coalesces the calls of concurrent threads into batch requests (group commit).

    Args:
        send_batch: ``send_batch(items)`` sends ``items`` (1 to ``max_batch`` :class:`Pending`
            sharing one key, oldest first) as one request and sets each item's ``result`` or
            ``error``. If it raises, every item it left unanswered gets that exception (a failure
            of the whole request reaches every caller in it); an item left with neither gets a
            ``RuntimeError``.
        max_batch: most items per request.
        max_in_flight: most requests out at once.
        counts_as: the name of the item counter in :attr:`stats` (``"searches"``, ``"items"``…).

    Raises:
        ValueError: ``max_batch`` or ``max_in_flight`` below 1.

    :attr:`stats` counts ``requests`` sent, items sent (under ``counts_as``) and ``largest_batch``.
    """

    def __init__(self, send_batch: Callable[[list], None], *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, counts_as: str = "items"):
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._send_batch = send_batch
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._counts_as = counts_as
        self._guard = threading.Lock()
        self._queue: collections.deque[Pending] = collections.deque()
        self._in_flight = 0
        self.stats = {"requests": 0, counts_as: 0, "largest_batch": 0}

    def submit(self, item: Pending) -> Any:
        """Queue ``item`` and block until a request (this caller's or another's) answered it.

        Returns:
            ``item.result``.

        Raises:
            ``item.error``: the item's own error, or the failure of the whole request.
        """
        with self._guard:
            self._queue.append(item)
            while not item.done:
                if self._in_flight < self.max_in_flight and self._queue:
                    batch = self._take()
                    self._in_flight += 1
                    self._wake_next_sender()  # another slot may still be free
                    self._guard.release()
                    try:
                        self._send(batch)
                    finally:
                        self._guard.acquire()
                        self._in_flight -= 1
                        self.stats["requests"] += 1
                        self.stats[self._counts_as] += len(batch)
                        self.stats["largest_batch"] = max(self.stats["largest_batch"], len(batch))
                        for answered in batch:
                            if answered.waiter is not None:
                                answered.waiter.notify()
                        self._wake_next_sender()
                else:
                    # Each caller waits on its own condition and is woken only when its item is
                    # answered or it should send: notify_all woke every waiting thread (up to 64
                    # in the daemon) after each request, about a sixth of an evaluation's CPU.
                    item.waiter = threading.Condition(self._guard)
                    try:
                        item.waiter.wait()
                    finally:
                        item.waiter = None
        if item.error is not None:
            raise item.error
        return item.result

    def _wake_next_sender(self) -> None:
        """With a request slot free and items queued, wake the caller of the oldest waiting one:
        it sends the next batch. Called with the lock held."""
        if self._in_flight < self.max_in_flight and self._queue:
            for queued in self._queue:
                if queued.waiter is not None:
                    queued.waiter.notify()
                    return

    def _take(self) -> list[Pending]:
        """The oldest queued item and the next ones sharing its key, up to ``max_batch``."""
        key = self._queue[0].key
        batch, keep = [], []
        while self._queue and len(batch) < self.max_batch:
            item = self._queue.popleft()
            (batch if item.key == key else keep).append(item)
        self._queue.extendleft(reversed(keep))
        return batch

    def _send(self, batch: list[Pending]) -> None:
        try:
            self._send_batch(batch)
        except BaseException as error:  # the whole request failed: every caller in it sees why
            for item in batch:
                if item.result is UNANSWERED and item.error is None:
                    item.error = error
            if not isinstance(error, Exception):
                raise
        finally:
            for item in batch:
                if item.result is UNANSWERED and item.error is None:
                    item.error = RuntimeError("the batch request gave this item no answer")
                item.done = True


# --------------------------------------------------------------------- shared per client and purpose

_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared(owner: Any, purpose: str, make: Callable[[Any], Any]) -> Any:
    """The object ``make(owner)`` made on the first call for (``owner``, ``purpose``), so every
    thread using one client shares its group commits (the daemon's worker threads share one client).

    Held weakly by ``owner``: it goes with its client. ``make``'s result must not hold ``owner``
    strongly (hold a ``weakref.ref``), or the client is never released.
    """
    by_purpose = _SHARED.get(owner)
    found = by_purpose.get(purpose) if by_purpose is not None else None
    if found is None:
        with _SHARED_LOCK:
            by_purpose = _SHARED.setdefault(owner, {})
            found = by_purpose.get(purpose)
            if found is None:
                found = by_purpose[purpose] = make(owner)
    return found


# ------------------------------------------------------------------------ Elasticsearch item errors

def item_error(answer: dict, meta: Any, status: int | None = None) -> Exception:
    """The exception a lone request answering ``answer`` raises, for a failed item of ``_msearch``,
    ``_bulk`` or ``_mget``.

    Mirrors elasticsearch-py's ``BaseClient._perform_request``: class by HTTP status
    (``elasticsearch.HTTP_EXCEPTIONS``, else ``ApiError``, so 429/5xx stay ``ApiError`` and the
    daemon still sees them as transient), message = the error's ``type``, body = ``answer``.

    Args:
        answer: ``{"error": {...} or text, "status"?: int}`` (an item of the multi-response), or
            a not-found ``_mget`` document (message = its text, as for a lone GET's 404).
        meta: the multi-request's response meta (its status is replaced by the item's).
        status: the HTTP status when ``answer`` carries none (``_mget`` items); default 500.
    """
    # deferred: start-up (the ES client costs ~0.25 s to import)
    from elasticsearch.exceptions import HTTP_EXCEPTIONS, ApiError

    if isinstance(answer.get("status"), int):
        status = answer["status"]
    elif status is None:
        status = 500
    error = answer.get("error", str(answer))  # the message, as the client makes it
    message = error["type"] if isinstance(error, dict) and "type" in error else error
    try:
        item_meta = dataclasses.replace(meta, status=status)
    except TypeError:  # not the transport's dataclass (a stand-in client): keep what there is
        item_meta = meta
    return HTTP_EXCEPTIONS.get(status, ApiError)(message=message, meta=item_meta, body=answer)


def _lone_body(error: Any, status: int) -> dict:
    """The body a lone request failing with item ``error`` answers: ``{"error": …, "status": …}``.

    ``_bulk``/``_mget`` items carry the error without ``root_cause``; a lone request's error has it
    (the error itself, without ``caused_by``), and ``ApiError.__str__`` prints its reason.
    """
    if isinstance(error, dict) and "root_cause" not in error:
        error = {"root_cause": [{k: v for k, v in error.items() if k != "caused_by"}], **error}
    return {"error": error, "status": status}


# --------------------------------------------------------------------------------- document requests

class _DocumentRequests:
    """The group commits of one client for document reads (``_mget``) and writes (``_bulk``)."""

    def __init__(self, es: Any):
        self._es = weakref.ref(es)  # the client owns this (shared()), not the reverse
        self.reads = GroupCommit(self._send_reads, counts_as="items")
        self.writes = GroupCommit(self._send_writes, counts_as="items")

    def _client(self) -> Any:
        es = self._es()
        if es is None:
            raise RuntimeError("the Elasticsearch client of this batch is gone")
        return es

    def _send_reads(self, batch: list[Pending]) -> None:
        es = self._client()
        if len(batch) == 1:  # alone: the plain GET, as without batching
            index, doc_id = batch[0].payload
            batch[0].result = dict(es.get(index=index, id=doc_id).body)
            return
        response = es.mget(docs=[{"_index": index, "_id": doc_id} for index, doc_id in (i.payload for i in batch)])
        docs = response.body.get("docs") or []
        if len(docs) != len(batch):
            raise RuntimeError(f"_mget answered {len(docs)} documents to {len(batch)} requests")
        for item, doc in zip(batch, docs):
            if "error" in doc:
                error = doc["error"]
                status = _MGET_STATUS.get(error.get("type") if isinstance(error, dict) else None, 500)
                item.error = item_error(_lone_body(error, status), response.meta, status)
            elif not doc.get("found"):  # a lone GET answers 404 with this very body
                item.error = item_error(dict(doc), response.meta, 404)
            else:
                item.result = dict(doc)

    def _send_writes(self, batch: list[Pending]) -> None:
        es = self._client()
        refresh = batch[0].key
        if len(batch) == 1:  # alone: the plain index request, as without batching
            write = batch[0].payload
            batch[0].result = dict(es.index(index=write.index, id=write.id, document=write.document,
                                            **write.options).body)
            return
        operations: list[dict] = []
        for item in batch:
            write = item.payload
            action = "create" if write.options.get("op_type") == "create" else "index"
            header = {"_index": write.index, "_id": write.id}
            for name in ("if_seq_no", "if_primary_term"):
                if name in write.options:
                    header[name] = write.options[name]
            operations += [{action: header}, write.document]
        kwargs = {} if refresh is None else {"refresh": refresh}
        response = es.bulk(operations=operations, **kwargs)
        answers = response.body.get("items") or []
        if len(answers) != len(batch):
            raise RuntimeError(f"_bulk answered {len(answers)} items to {len(batch)} operations")
        for item, answer in zip(batch, answers):
            outcome = next(iter(answer.values()))  # {"index": {...}} or {"create": {...}}
            status = outcome.get("status", 500)
            if "error" in outcome:
                item.error = item_error(_lone_body(outcome["error"], status), response.meta, status)
            else:
                outcome = dict(outcome)
                outcome.pop("status", None)
                item.result = outcome


# mget items carry no HTTP status: the status a lone GET answers with for these error types
_MGET_STATUS = {"index_not_found_exception": 404, "index_closed_exception": 400,
                "illegal_argument_exception": 400, "no_shard_available_action_exception": 503}


@dataclasses.dataclass(frozen=True)
class _Write:
    index: str
    id: str
    document: dict
    options: dict  # op_type / if_seq_no / if_primary_term / refresh, as given to es.index


def document_requests(es: Any) -> _DocumentRequests:
    """The document group commits of client ``es`` (made on first use; see :func:`shared`)."""
    return shared(es, "documents", _DocumentRequests)


def get_document(es: Any, index: str, doc_id: str) -> dict:
    """``GET <index>/_doc/<doc_id>`` (real-time), shared with concurrent callers as one ``_mget``.

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client.

    Returns:
        The get response body (``_index``, ``_id``, ``_seq_no``, ``_primary_term``, ``found``,
        ``_source``…).

    Raises:
        elasticsearch.NotFoundError: no such document, or no such index (as a lone GET);
        other ``ApiError`` / ``TransportError`` as a lone GET (a failed ``_mget`` reaches every
        caller in it).
    """
    return document_requests(es).reads.submit(Pending(None, (index, doc_id)))


def index_document(es: Any, index: str, doc_id: str, document: dict, *, op_type: str | None = None,
                   if_seq_no: int | None = None, if_primary_term: int | None = None,
                   refresh: bool | str | None = None) -> dict:
    """``PUT <index>/_doc/<doc_id>`` (or ``_create`` with ``op_type="create"``), shared with
    concurrent callers as one ``_bulk``.

    Each item keeps its own ``op_type``/``if_seq_no``/``if_primary_term``; only writes with the
    same ``refresh`` share a request (``refresh`` None = not sent, the cluster's default).

    Returns:
        The index response body (``_index``, ``_id``, ``_version``, ``result``, ``_seq_no``,
        ``_primary_term``, ``_shards``).

    Raises:
        elasticsearch.ConflictError: this item's version conflict (409);
        other ``ApiError`` by the item's status, ``TransportError``: as a lone index request
        (a failed ``_bulk`` reaches every caller in it).
    """
    return document_requests(es).writes.submit(document_write(index, doc_id, document, op_type=op_type,
                                                              if_seq_no=if_seq_no, if_primary_term=if_primary_term,
                                                              refresh=refresh))


def document_write(index: str, doc_id: str, document: dict, *, op_type: str | None = None,
                   if_seq_no: int | None = None, if_primary_term: int | None = None,
                   refresh: bool | str | None = None) -> Pending:
    """The :class:`Pending` item of one write as :func:`index_document` queues it (same arguments),
    for callers that batch writes themselves (:class:`AsyncGroupCommit` + :func:`write_documents`).
    """
    options: dict[str, Any] = {}
    if op_type is not None:
        options["op_type"] = op_type
    if if_seq_no is not None:
        options["if_seq_no"] = if_seq_no
    if if_primary_term is not None:
        options["if_primary_term"] = if_primary_term
    if refresh is not None:
        options["refresh"] = refresh
    key = None if refresh in (None, False, "false") else refresh  # false is the default: may share
    return Pending(key, _Write(index, doc_id, document, options))


def write_documents(es: Any, batch: list[Pending]) -> None:
    """Send ``batch`` (items of :func:`document_write` sharing one key) as one ``_bulk`` — or the plain
    index request when alone — and set each item's ``result`` (the index response body) or
    ``error`` (its own ``ConflictError`` etc., as :func:`index_document` raises). A ``send_batch``
    for :class:`GroupCommit` / :class:`AsyncGroupCommit`.

    Raises:
        ``TransportError`` / ``ApiError``: the whole request failed (every item's caller sees it).
    """
    document_requests(es)._send_writes(batch)


class AsyncGroupCommit:
    """:class:`GroupCommit` for the coroutines of one asyncio event loop: concurrent ``submit`` calls
    share requests, each gets its own answer, and the loop never blocks.

    Same policy as :class:`GroupCommit`: while fewer than ``max_in_flight`` requests are out, the
    oldest queued item and the next ones with its key (up to ``max_batch``) leave at once (a lone
    call is not delayed); ``send_batch(items)`` — synchronous, run in a worker thread
    (``asyncio.to_thread``) — sends them as one request and sets each item's ``result`` or
    ``error``; if it raises, every unanswered item gets that exception.

    Args:
        send_batch, max_batch, max_in_flight, counts_as: as for :class:`GroupCommit`.

    Raises:
        ValueError: ``max_batch`` or ``max_in_flight`` below 1.

    Use it from one event loop only (it holds no lock). A caller cancelled while its item is in
    a request does not cancel the request: the item is still sent and its answer dropped.
    """

    def __init__(self, send_batch: Callable[[list], None], *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, counts_as: str = "items"):
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._sender = GroupCommit(send_batch, max_batch=max_batch, max_in_flight=max_in_flight)  # its _send
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._counts_as = counts_as
        self._queue: collections.deque[tuple[Pending, Any]] = collections.deque()
        self._in_flight = 0
        self._requests: set = set()
        self.stats = {"requests": 0, counts_as: 0, "largest_batch": 0}

    async def submit(self, item: Pending) -> Any:
        """Queue ``item`` and wait until a request answered it.

        Returns:
            ``item.result``.

        Raises:
            ``item.error``: the item's own error, or the failure of the whole request.
        """

        answered = asyncio.get_running_loop().create_future()
        self._queue.append((item, answered))
        self._pump()
        await asyncio.shield(answered)  # cancelling the caller must not lose the answer of others
        if item.error is not None:
            raise item.error
        return item.result

    def _pump(self) -> None:
        while self._in_flight < self.max_in_flight and self._queue:
            key = self._queue[0][0].key
            batch, keep = [], []
            while self._queue and len(batch) < self.max_batch:
                entry = self._queue.popleft()
                (batch if entry[0].key == key else keep).append(entry)
            self._queue.extendleft(reversed(keep))
            self._in_flight += 1
            request = asyncio.get_running_loop().create_task(self._send(batch))
            self._requests.add(request)  # a strong reference until it is done
            request.add_done_callback(self._requests.discard)

    async def _send(self, batch: list[tuple[Pending, Any]]) -> None:
        items = [item for item, _ in batch]
        try:
            await asyncio.to_thread(self._sender._send, items)
        except BaseException as error:  # cancelled, or a BaseException re-raised by _send
            for item in items:
                if item.result is UNANSWERED and item.error is None:
                    item.error = (error if isinstance(error, Exception)
                                  else RuntimeError(f"the batch request ended: {error!r}"))
        finally:
            self._in_flight -= 1
            self.stats["requests"] += 1
            self.stats[self._counts_as] += len(items)
            self.stats["largest_batch"] = max(self.stats["largest_batch"], len(items))
            for _, answered in batch:
                if not answered.done():
                    answered.set_result(None)
            self._pump()
