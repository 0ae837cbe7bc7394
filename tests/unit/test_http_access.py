"""watcher.http.access: the HTTP configuration file and token checks."""

from __future__ import annotations

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
