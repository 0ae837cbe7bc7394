"""Search batching: the searches of concurrent threads on one client share ``_msearch`` requests.

A group commit (:mod:`watcher.es.groupcommit`) over ``_search``: a lone search is one plain
``_search``, exactly as without batching; searches waiting at the same moment (many rules due at the
same tick on the daemon's worker threads) go as one ``_msearch``, and each caller still gets its own
response or its own error. :func:`batcher_for` gives every user of a client the same
:class:`SearchBatcher`; the searches of search inputs and transforms and of the rule types go
through it.
"""

from __future__ import annotations

import weakref
from typing import Any

from watcher.es import groupcommit

_TIMEOUT_CLIENTS: dict = {}


def _with_timeout(es, seconds: float):
    """``es.options(request_timeout=seconds)``, built once per (client, timeout).

    Building it costs about 0.75 ms, 16 % of an evaluation in the benchmark (docs/benchmarks.md).
    """
    key = (id(es), seconds)
    client = _TIMEOUT_CLIENTS.get(key)
    if client is None or client.transport is not es.transport:
        client = _TIMEOUT_CLIENTS[key] = es.options(request_timeout=seconds)
    return client


# ------------------------------------------------------------------------------------------ batching

DEFAULT_MAX_BATCH = groupcommit.DEFAULT_MAX_BATCH  # 100
DEFAULT_MAX_IN_FLIGHT = groupcommit.DEFAULT_MAX_IN_FLIGHT  # 2


class _Pending(groupcommit.Pending):
    """One caller's search waiting in a :class:`SearchBatcher`: what to send, then what came back."""

    __slots__ = ("index", "body", "params")

    def __init__(self, key: tuple, index: str | None, body: dict, params: dict):
        super().__init__(key)
        self.index, self.body, self.params = index, body, params


class SearchBatcher(groupcommit.GroupCommit):
    """Coalesces the searches of concurrent threads into ``_msearch`` requests (group commit,
    :class:`watcher.es.groupcommit.GroupCommit`).

    A caller sends at once while fewer than ``max_in_flight`` requests are out; otherwise its
    search waits in a queue, and the next caller to find a free slot sends everything queued (up
    to ``max_batch`` searches with the same total-hits form and timeout) as one ``_msearch``. So a
    lone search costs no added wait — it is one plain ``_search``, as without batching — and
    batches form exactly when searches arrive faster than the cluster answers (many rules due at
    the same tick on the daemon's worker threads). No thread of its own: callers do the sending.

    Each caller gets its own response (the ``_msearch`` item without its ``status``), or its own
    error: an item that failed raises the exception class a lone ``_search`` with that status
    raises (``elasticsearch.HTTP_EXCEPTIONS``, else ``ApiError``; message = the error type), so
    one bad query fails only its rule, and the daemon still recognises 429/5xx as transient. A
    failure of the whole request (connection refused, timeout, 5xx of ``_msearch``) is raised to
    every caller in the batch, as ``concurrent.futures`` does with one shared exception.

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client.
        max_batch: most searches per ``_msearch``.
        max_in_flight: most requests out at once (2: the cluster works on one batch while the
            callers of the previous one process their responses).

    :attr:`stats`: ``requests``, ``searches``, ``largest_batch``.
    """

    def __init__(self, es: Any, *, max_batch: int = DEFAULT_MAX_BATCH, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT):
        super().__init__(self._send_searches, max_batch=max_batch, max_in_flight=max_in_flight,
                         counts_as="searches")
        self._es = weakref.ref(es)  # the client owns its batcher (batcher_for), not the reverse

    @property
    def es(self) -> Any:
        """The client this batcher sends with (None once the client is gone)."""
        return self._es()

    def search(self, index: str | None, body: dict, params: dict, *, rest_total_hits_as_int: bool,
               timeout_s: float) -> dict:
        """One search; blocks until its response is in.

        Args:
            index: comma-separated indices, None for all.
            body: the search body (query DSL).
            params: ``search_type``, ``expand_wildcards`` (comma-separated text),
                ``ignore_unavailable``, ``allow_no_indices``, optionally ``ignore_throttled``.
            rest_total_hits_as_int: ``hits.total`` as an integer.
            timeout_s: the client's request timeout, seconds.

        Returns:
            The response body as a plain dict.

        Raises:
            elasticsearch.ApiError (and subclasses), elastic_transport.TransportError: as a lone
            ``_search``.
        """
        return self.submit(_Pending((bool(rest_total_hits_as_int), float(timeout_s)), index, body, params))

    def _send_searches(self, batch: list[_Pending]) -> None:
        total_hits_as_int, timeout_s = batch[0].key
        client = _with_timeout(self.es, timeout_s)
        if len(batch) == 1:  # alone: the plain _search, byte for byte as without batching
            item = batch[0]
            response = client.search(index=item.index, body=item.body,
                                     rest_total_hits_as_int=total_hits_as_int, **item.params)
            item.result = dict(response.body)
            return
        lines: list[dict] = []
        for item in batch:
            header = dict(item.params)
            if item.index is not None:
                header["index"] = item.index
            lines += [header, item.body]
        response = client.msearch(searches=lines, rest_total_hits_as_int=total_hits_as_int)
        answers = response.body.get("responses") or []
        if len(answers) != len(batch):
            raise RuntimeError(f"_msearch answered {len(answers)} responses to {len(batch)} searches")
        for item, answer in zip(batch, answers):
            if "error" in answer:
                item.error = _item_error(answer, response.meta)
            else:
                answer = dict(answer)
                answer.pop("status", None)
                item.result = answer


def _item_error(answer: dict, meta: Any) -> Exception:
    """The exception a lone ``_search`` answering ``answer`` (an ``_msearch`` error item) raises
    (:func:`watcher.es.groupcommit.item_error`: class by HTTP status, message = the error's
    ``type``, body = the item)."""
    return groupcommit.item_error(answer, meta)


def batcher_for(es: Any) -> SearchBatcher:
    """The :class:`SearchBatcher` of client ``es``, made on first use, so every execution sharing
    a client — the daemon's worker threads share one — shares its batcher. Held weakly: it goes
    with its client."""
    return groupcommit.shared(es, "searches", SearchBatcher)
