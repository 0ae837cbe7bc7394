"""The local webhook receiver, exercised over a real socket on 127.0.0.1."""

from __future__ import annotations

import io
import json
import threading

import httpx
import pytest

from watcher.receiver import Receiver, mask_query


@pytest.fixture
def receiver(tmp_path):
    out, save = io.StringIO(), open(tmp_path / "got.jsonl", "a", encoding="utf-8")
    server = Receiver(("127.0.0.1", 0), out=out, save=save)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, out, tmp_path / "got.jsonl"
    server.shutdown()
    server.server_close()
    save.close()


def test_prints_one_line_per_alert_and_masks_the_api_key(receiver):
    server, out, saved = receiver
    host, port = server.server_address
    body = {"watch_id": "ssh-bruteforce", "payload": {"hits": {"total": 12}}}
    response = httpx.post(f"http://{host}:{port}/v1/json/eswatcher?apiKey=s3cret", json=body)
    assert response.status_code == 200
    assert response.json()["result"] == "Request will be processed"
    line = out.getvalue().strip()
    assert "POST /v1/json/eswatcher?apiKey=***" in line
    assert "watch_id='ssh-bruteforce'" in line and "hits=12" in line
    assert "s3cret" not in line
    record = json.loads(saved.read_text().strip())
    assert record["body"] == body and record["query"] == "apiKey=***"


def test_non_json_bodies_are_kept_as_text(receiver):
    server, out, saved = receiver
    host, port = server.server_address
    httpx.put(f"http://{host}:{port}/hook", content="plain text", headers={"Authorization": "Bearer x"})
    record = json.loads(saved.read_text().strip())
    assert record["body"] == "plain text" and record["method"] == "PUT"
    assert record["headers"]["Authorization"] == "***"


def test_mask_query_keeps_other_parameters():
    assert mask_query("apiKey=k&team=ops&token=t") == "apiKey=***&team=ops&token=***"


def test_idempotency_key_is_shown_so_duplicates_can_be_checked():
    from watcher.receiver import is_secret_name

    assert is_secret_name("Idempotency-Key") is False
    assert is_secret_name("X-Api-Key") is True and is_secret_name("apiKey") is True
