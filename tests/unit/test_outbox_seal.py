"""Sealing a rendered request for the outbox (secrets → placeholders) and unsealing it with the
secrets the daemon knows (its connectors' secrets): nothing secret is stored, nothing is lost.
Placeholders are keyed with the deployment key (docs/correctness.md#secret-placeholders)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import quote

import pytest

from watcher.destinations.webhook import build_request
from watcher.delivery.outbox import (OTHER_KEY, SECRET_GONE, UnresolvedSecret, has_unkeyed_placeholders,
                                     reseal_request, seal_request, unseal_request)
from watcher.delivery.secretkey import SecretKey
from watcher.definitions.load import load_connectors_file
from watcher.model.requests import HttpRequest, basic_auth_header

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


# -- keyed placeholders (docs/correctness.md#secret-placeholders) ---------------------------------------

PIN, WORD = "4711", "hunter2"
KEY_A, KEY_B = SecretKey("a" * 64, "test key A"), SecretKey("b" * 64, "test key B")


def unkeyed(value: str) -> str:
    """The placeholder digest of the previous version: 16 hex of sha256(value), no key."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def short_secret_request() -> HttpRequest:
    return HttpRequest(method="POST", url=f"http://127.0.0.1:9/hook?pin={PIN}",
                       headers={"X-Api-Key": WORD, "Authorization": basic_auth_header("alice", WORD)},
                       body=json.dumps({"password": WORD, "note": "x"}), secrets=(PIN, WORD))


def test_a_placeholder_is_the_hmac_under_the_deployment_key_not_a_hash_of_the_secret():
    sealed_a, sealed_b = seal_request(short_secret_request(), KEY_A), seal_request(short_secret_request(), KEY_B)

    assert sealed_a["url"] == f"http://127.0.0.1:9/hook?pin=${{secret:hmac:{KEY_A.digest(PIN)}}}"
    assert sealed_a["headers"]["X-Api-Key"] == f"${{secret:hmac:{KEY_A.digest(WORD)}}}"
    assert json.loads(sealed_a["body"]) == {"password": f"${{secret:hmac:{KEY_A.digest(WORD)}}}", "note": "x"}
    assert sealed_a["secret_key_id"] == KEY_A.key_id and sealed_b["secret_key_id"] == KEY_B.key_id
    assert KEY_A.digest(PIN) != KEY_B.digest(PIN) and re.fullmatch(r"[0-9a-f]{32}", KEY_A.digest(PIN))
    for sealed in (sealed_a, sealed_b):
        text = json.dumps(sealed)
        assert WORD not in text
        assert unkeyed(PIN) not in text and unkeyed(WORD) not in text
        assert hashlib.sha256(PIN.encode()).hexdigest()[:32] not in text


def test_unsealing_with_the_same_key_gives_the_request_back():
    unsealed, used = unseal_request(seal_request(short_secret_request(), KEY_A), ["other-value", PIN, WORD], KEY_A)
    request = short_secret_request()
    assert (unsealed["url"], unsealed["headers"], unsealed["body"]) == (request.url, request.headers, request.body)
    assert set(used) == {PIN, WORD}


def test_a_delivery_sealed_under_another_key_is_unresolved_with_both_key_ids_and_no_secret():
    with pytest.raises(UnresolvedSecret) as raised:
        unseal_request(seal_request(short_secret_request(), KEY_A), [PIN, WORD], KEY_B)
    message = str(raised.value)
    assert message.startswith(OTHER_KEY)
    assert f"key id {KEY_A.key_id}; this process has {KEY_B.key_id}" in message
    assert PIN not in message and WORD not in message and "a" * 32 not in message


def test_a_secret_no_longer_configured_is_secret_gone_under_the_same_key():
    with pytest.raises(UnresolvedSecret) as raised:
        unseal_request(seal_request(short_secret_request(), KEY_A), [PIN], KEY_A)
    assert str(raised.value) == SECRET_GONE


def unkeyed_request() -> dict:
    """A request as the previous version stored it (placeholders of sha256 prefixes, no key id)."""
    inner = base64.b64encode(f"alice:${{secret:{unkeyed(WORD)}}}".encode()).decode()
    return {"method": "POST", "url": f"http://127.0.0.1:9/hook?pin=${{secret:{unkeyed(PIN)}:url}}",
            "headers": {"X-Api-Key": f"${{secret:{unkeyed(WORD)}}}", "Authorization": f"Basic ${{secret-basic:{inner}}}"},
            "body": json.dumps({"password": f"${{secret:{unkeyed(WORD)}:json}}"}), "timeout_s": 10.0,
            "read_timeout_s": 10.0, "verify": True, "ca_file": None, "proxy": None, "connector_type": "webhook"}


def test_unkeyed_placeholders_written_before_still_resolve_and_are_resealed_keyed():
    stored = unkeyed_request()
    assert has_unkeyed_placeholders(stored)
    unsealed, used = unseal_request(stored, [PIN, WORD], KEY_A)
    assert unsealed["url"] == f"http://127.0.0.1:9/hook?pin={quote(PIN, safe='')}"
    assert unsealed["headers"] == {"X-Api-Key": WORD, "Authorization": basic_auth_header("alice", WORD)}
    assert json.loads(unsealed["body"]) == {"password": WORD}

    resealed = reseal_request(stored, used, KEY_A)
    assert not has_unkeyed_placeholders(resealed)
    text = json.dumps(resealed)
    assert unkeyed(PIN) not in text and unkeyed(WORD) not in text and WORD not in text
    assert resealed["url"] == f"http://127.0.0.1:9/hook?pin=${{secret:hmac:{KEY_A.digest(PIN)}:url}}"
    assert resealed["secret_key_id"] == KEY_A.key_id
    assert unseal_request(resealed, [PIN, WORD], KEY_A)[0] == {**unsealed, "secret_key_id": KEY_A.key_id}


def test_an_unkeyed_placeholder_whose_secret_is_gone_is_secret_gone_and_is_not_resealed():
    stored = unkeyed_request()
    with pytest.raises(UnresolvedSecret) as raised:
        unseal_request(stored, [PIN], KEY_A)
    assert str(raised.value) == SECRET_GONE
    partly = reseal_request(stored, [PIN], KEY_A)
    assert has_unkeyed_placeholders(partly) and "secret_key_id" not in partly
    assert unkeyed(PIN) not in json.dumps(partly)
