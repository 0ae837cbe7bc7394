"""Sealing a rendered request for the outbox (secrets → placeholders) and unsealing it with the
secrets the daemon knows (its connectors' secrets): nothing secret is stored, nothing is lost."""

from __future__ import annotations

import json

from watcher.destinations.webhook import build_request
from watcher.delivery.outbox import seal_request, unseal_request
from watcher.definitions.load import load_connectors_file

CONNECTORS = """\
connectors:
  templated:
    type: webhook
    url: http://127.0.0.1:8011/hook
    headers:
      Authorization: 'Bearer ${TEST_SEAL_TOKEN:-supersecret-token-123}'
  literal:
    type: webhook
    url: http://127.0.0.1:8011/hook
    headers:
      X-Api-Token: literal-token-456789
"""


def test_a_header_holding_a_secret_and_other_text_round_trips_with_the_connectors_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_SEAL_TOKEN", raising=False)
    path = tmp_path / "connectors.yaml"
    path.write_text(CONNECTORS)
    connectors, problems = load_connectors_file(path)
    assert problems == []
    known = [secret for connector in connectors.values() for secret in connector.secrets]  # what the daemon has
    for name, header, value in (("templated", "Authorization", "Bearer supersecret-token-123"),
                                ("literal", "X-Api-Token", "literal-token-456789")):
        request = build_request(connectors[name].config, {"body": "{}"})
        assert request.headers[header] == value
        sealed = seal_request(request)
        stored = json.dumps(sealed)
        assert "supersecret-token-123" not in stored and "literal-token-456789" not in stored
        unsealed, used = unseal_request(sealed, known)
        assert unsealed["headers"][header] == value
        assert used
