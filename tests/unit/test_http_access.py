"""watcher.http.access: the HTTP configuration file and token checks."""

from __future__ import annotations

import subprocess

import pytest

from watcher.errors import DefinitionProblem
from watcher.http.access import Access, load_http_config

READ_TOKEN = "r" * 20
ADMIN_TOKEN = "a-very-secret-admin-token"


def write(tmp_path, text: str):
    path = tmp_path / "http.yaml"
    path.write_text(text)
    return path


def test_tokens_roles_and_secret_references(tmp_path):
    (tmp_path / "admin.token").write_text(ADMIN_TOKEN + "\n")
    path = write(tmp_path, "tokens:\n  board:\n    role: read\n    token: ${BOARD}\n"
                           "  ops:\n    role: admin\n    token: ${file:admin.token}\n"
                           "streams:\n  buffer_events: 50\n")
    config = load_http_config(path, environ={"BOARD": READ_TOKEN})
    assert config.access.authenticate(f"Bearer {READ_TOKEN}").role == "read"
    assert config.access.authenticate(f"Bearer {ADMIN_TOKEN}").name == "ops"
    assert config.access.authenticate(f"ApiKey {ADMIN_TOKEN}").admin
    assert config.access.authenticate(f"Bearer {ADMIN_TOKEN}x") is None
    assert config.access.authenticate("Basic abc") is None
    assert config.access.authenticate(None) is None
    assert config.streams.buffer_events == 50 and config.streams.max_subscribers == 2000
    assert config.tls is None


def test_no_file_closes_the_api():
    config = load_http_config(None)
    assert not config.access.configured
    assert Access().authenticate(f"Bearer {READ_TOKEN}") is None


@pytest.mark.parametrize(("text", "message"), [
    ("tokens:\n  ops:\n    role: root\n    token: ${T}\n", "http.yaml:3:11: tokens.ops.role: expected "),
    ("tokens:\n  ops:\n    role: admin\n    token: short\n", "tokens.ops.token: expected a token of at least 16"),
    ("tokens:\n  ops:\n    role: admin\n    token: ${MISSING}\n", "undefined environment variable MISSING"),
    ("tokenz: {}\n", "unknown key 'tokenz' (did you mean 'tokens'?)"),
    ("tokens:\n  a: {role: read, token: '${T}'}\n  b: {role: admin, token: '${T}'}\n", "two tokens have the same value"),
])
def test_problems_name_file_line_and_field(tmp_path, text, message):
    with pytest.raises(DefinitionProblem) as caught:
        load_http_config(write(tmp_path, text), environ={"T": READ_TOKEN})
    assert message in str(caught.value)
    assert READ_TOKEN not in str(caught.value)


def test_a_duplicate_token_name_is_reported_without_the_values(tmp_path):
    path = write(tmp_path, f"tokens:\n  ops: {{role: admin, token: {ADMIN_TOKEN}}}\n"
                           f"  ops: {{role: read, token: {READ_TOKEN}}}\n")
    with pytest.raises(DefinitionProblem) as caught:
        load_http_config(path)
    assert str(caught.value) == f'{path}:3:3: duplicate key: found duplicate key "ops"'


@pytest.mark.parametrize("token", ["  padded-token-0123456789  ", "token-with-é-0123456789", "tab\ttoken-0123456789"])
def test_a_token_no_header_can_carry_is_refused(tmp_path, token):
    path = write(tmp_path, "tokens:\n  ops:\n    role: admin\n    token: ${T}\n")
    with pytest.raises(DefinitionProblem) as caught:
        load_http_config(path, environ={"T": token})
    assert "tokens.ops.token: expected a token of printable ASCII characters without spaces" in str(caught.value)
    assert token.strip() not in str(caught.value)


def test_tls_files_are_checked_at_load_naming_the_line(tmp_path):
    path = write(tmp_path, f"tokens:\n  ops: {{role: admin, token: {ADMIN_TOKEN}}}\n"
                           f"tls:\n  certfile: {tmp_path}/missing.pem\n  keyfile: {tmp_path}/missing-key.pem\n")
    with pytest.raises(DefinitionProblem) as caught:
        load_http_config(path)
    assert f"{path}:4:3: tls.certfile: cannot load the certificate and key" in str(caught.value)


def test_a_key_that_does_not_match_the_certificate_is_refused_at_load(tmp_path):
    for name in ("one", "two"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-keyout", str(tmp_path / f"{name}.key"),
                        "-out", str(tmp_path / f"{name}.pem")], check=True, capture_output=True)
    path = write(tmp_path, f"tokens:\n  ops: {{role: admin, token: {ADMIN_TOKEN}}}\n"
                           f"tls:\n  certfile: {tmp_path}/one.pem\n  keyfile: {tmp_path}/two.key\n")
    with pytest.raises(DefinitionProblem) as caught:
        load_http_config(path)
    assert f"{path}:4:3: tls.certfile: cannot load the certificate and key" in str(caught.value)
    good = write(tmp_path, f"tokens:\n  ops: {{role: admin, token: {ADMIN_TOKEN}}}\n"
                           f"tls:\n  certfile: {tmp_path}/one.pem\n  keyfile: {tmp_path}/one.key\n")
    assert load_http_config(good).tls.keyfile == f"{tmp_path}/one.key"
