"""``/api/v1`` under requests a careless or hostile caller makes, end to end: ``watcher run`` as a real
subprocess with API tokens, the session's real Elasticsearch, httpx as the client.

* a silence whose group key the events index cannot hold is refused before anything is saved (it
  was saved, then answered a plain-text 500);
* while the cluster refuses to read a watch's state (its state index closed), reading or executing
  the watch answers 502 with the cluster's status, not a made-up blank status; it recovers when the
  index is open again.

Waits are on conditions with deadlines; nothing asserts a duration.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from api_helpers import ADMIN_TOKEN, start_served, write_http_config
from daemon_helpers import delete_indices, wait_for

pytestmark = [pytest.mark.es, pytest.mark.http_surface]

WATCH = {"trigger": {"schedule": {"interval": "1h"}}, "input": {"simple": {"n": 1}}, "condition": {"always": {}},
         "actions": {"log": {"logging": {"text": "n={{ctx.payload.n}}"}}}}


@pytest.fixture(scope="module")
def served(es, es_cluster, tmp_path_factory):
    """The module's daemon over one hourly watch ``hourly``: ``{"url", "prefix"}``."""
    folder = tmp_path_factory.mktemp("hostile")
    rules = folder / "rules"
    rules.mkdir()
    (rules / "hourly.json").write_text(json.dumps(WATCH))
    prefix = f"hostile-{uuid.uuid4().hex[:10]}"
    daemon = start_served(es_cluster, folder, prefix, rules, write_http_config(folder))
    try:
        daemon.wait_healthy()
        yield {"url": f"http://127.0.0.1:{daemon.http_port}", "prefix": prefix}
    finally:
        daemon.kill()
        delete_indices(es, prefix)
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-events")


@pytest.fixture
def api(served):
    with httpx.Client(base_url=served["url"], headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                      timeout=30) as client:
        yield client


def test_a_silence_group_too_long_to_record_is_refused_and_nothing_is_saved(api):
    answer = api.post("/api/v1/watches/hourly/_silence", json={"for": "1h", "group": "g" * 40_000})
    assert answer.status_code == 400
    assert answer.json() == {"error": {"type": "illegal_argument_exception",
                                       "reason": "expected a group key of at most 512 characters, found 40000"},
                             "status": 400}
    assert api.get("/api/v1/watches/hourly").json()["silences"] == {}


def test_a_state_the_cluster_refuses_to_read_answers_502_not_a_blank_status(es, served, api):
    assert api.post("/api/v1/watches/hourly/_deactivate").json()["active"] is False
    state_index = f"{served['prefix']}-state"
    es.indices.close(index=state_index)
    try:
        for answer in (api.get("/api/v1/watches/hourly"), api.post("/api/v1/watches/hourly/_execute")):
            assert answer.status_code == 502
            assert answer.json() == {"error": {"type": "cluster_error",
                                               "reason": "the cluster answered 400 (BadRequestError)"},
                                     "status": 502}
    finally:
        es.indices.open(index=state_index, wait_for_active_shards="all")
    wait_for(lambda: api.get("/api/v1/watches/hourly").status_code == 200, timeout=30)
    shown = api.get("/api/v1/watches/hourly").json()
    assert (shown["active"], shown["saved"], shown["status"]["state"]["active"]) == (False, True, False)
    assert api.post("/api/v1/watches/hourly/_activate").json()["active"] is True
