"""watcher.http.api_v1 without a cluster: request validation answers 400 naming each bad field (before
the daemon is asked anything), and credential-named keys are hidden. Real HTTP to uvicorn on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from watcher.http.access import Access, HttpConfig
from watcher.http.api_v1 import REDACTED, hide_credentials
from watcher.http.app import create_app
from watcher.http.server import HttpServer

TOKEN = "unit-admin-token-0123456789"


@pytest.fixture(scope="module")
def url():
    # No daemon behind the app: every request below must be answered before a route reads it.
    with HttpServer(create_app(None, HttpConfig(access=Access({"ops": ("admin", TOKEN)}))), "127.0.0.1", 0) as server:
        yield server.url


def test_bad_query_parameters_answer_400_naming_each_one(url):
    answer = httpx.get(f"{url}/api/v1/watches", params={"size": 0, "state": "sleepy"},
                       headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400
    body = answer.json()
    assert (body["status"], body["error"]["type"]) == (400, "illegal_argument_exception")
    assert body["error"]["reason"].startswith("query.size: Input should be greater than or equal to 1; query.state: ")


def test_a_bad_body_field_is_named_with_its_path(url):
    answer = httpx.post(f"{url}/api/v1/watches/w/_ack", json={"actions": [1]},
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 400
    assert answer.json()["error"]["reason"] == "body.actions[0]: Input should be a valid string"


def test_authentication_comes_before_validation(url):
    assert httpx.get(f"{url}/api/v1/watches", params={"size": 0}).status_code == 401


def test_credential_keys_are_hidden_at_any_depth_and_empty_ones_left():
    shown = hide_credentials({"auth": {"basic": {"username": "u", "Password": "pw"}},
                               "headers": [{"Authorization": "Bearer x", "token": ""}], "n": 1})
    assert shown == {"auth": {"basic": {"username": "u", "Password": REDACTED}},
                     "headers": [{"Authorization": REDACTED, "token": ""}], "n": 1}
