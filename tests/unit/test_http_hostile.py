"""The HTTP API under hostile or careless requests, without a cluster: every answer is a 4xx/5xx in
the error shape of watcher.http.errors (never a plain-text 500), with ``root_cause`` under
``/_watcher``; bad watch ids and too deeply nested bodies are refused before the daemon is asked
anything. Real HTTP to uvicorn on 127.0.0.1."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from watcher.http.access import Access, HttpConfig
from watcher.http.app import create_app
from watcher.http.server import HttpServer

TOKEN = "unit-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WATCH = {"trigger": {"schedule": {"interval": "1h"}}, "input": {"simple": {}}, "actions": {}}


class BrokenDaemon:
    """A daemon whose definitions cannot be listed: a bug of ours, not a cluster answer."""

    def watches(self):
        raise RuntimeError("secret-in-message-0123456789")


@pytest.fixture(scope="module")
def url():
    config = HttpConfig(access=Access({"ops": ("admin", TOKEN)}))
    with HttpServer(create_app(BrokenDaemon(), config), "127.0.0.1", 0) as server:
        yield server.url


def test_an_unexpected_error_answers_500_in_the_error_shape_without_its_message(url):
    answer = httpx.get(f"{url}/api/v1/watches", headers=AUTH)
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": {"type": "internal_server_error",
                                       "reason": "the request failed with RuntimeError; the daemon's log has "
                                                 "the details"}, "status": 500}


def test_parameter_errors_under_watcher_carry_root_cause(url):
    answer = httpx.put(f"{url}/_watcher/watch/w", params={"if_seq_no": -1, "if_primary_term": 1}, json=WATCH,
                       headers=AUTH)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["root_cause"] == [{"type": "illegal_argument_exception",
                                    "reason": "query.if_seq_no: Input should be greater than or equal to 0"}]


@pytest.mark.parametrize("path", ["/_watcher/watch/w", "/_watcher/watch/_execute", "/_watcher/_query/watches"])
def test_a_body_nested_too_deeply_is_a_400(url, path):
    body = b'{"metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    answer = httpx.post(f"{url}{path}", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "parse_exception"
    assert answer.json()["error"]["reason"] == "request body: nested more than 100 levels deep"


def test_a_query_nested_too_deeply_is_a_400(url):
    query = {"match_all": {}}
    for _ in range(90):
        query = {"bool": {"must": [query]}}
    answer = httpx.post(f"{url}/_watcher/_query/watches", json={"query": query}, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["reason"] == "request body: nested more than 100 levels deep"


@pytest.mark.parametrize(("watch_id", "reason"), [
    ("a b", "watch id [a b] contains whitespace"),
    ("a\nb", "watch id [a\\nb] contains whitespace"),
    ("a\tb", "watch id [a\\tb] contains whitespace"),
    ("a\x00b", "watch id [a\\x00b] contains a control character"),
    ("é" * 300, "watch id is too long: at most 512 bytes (UTF-8), found 600"),
])
def test_a_watch_id_elasticsearch_would_refuse_is_a_400_naming_the_rule(url, watch_id, reason):
    answer = httpx.put(f"{url}/_watcher/watch/{quote(watch_id, safe='')}", json=WATCH, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "action_request_validation_exception"
    assert answer.json()["error"]["reason"] == reason
