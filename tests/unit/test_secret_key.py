"""Where the deployment key that names secrets in the outbox comes from (watcher.delivery.secretkey,
docs/correctness.md#secret-placeholders): a key file, WATCHER_SECRET_KEY, or a key file created once
in the state directory; a configuration that cannot work is an error naming its source, never the key."""

from __future__ import annotations

import logging
import re
import stat

import pytest
from click.testing import CliRunner

from watcher.cli.run import run
from watcher.delivery.secretkey import (KEY_FILE_NAME, MIN_KEY_LENGTH, SecretKey, SecretKeyError, default_state_dir,
                                        load_secret_key, process_key)

KEY = "0123456789abcdef" * 4


def test_without_configuration_a_key_file_is_created_once_with_mode_0600_and_read_by_every_later_start(tmp_path):
    state = tmp_path / "state"
    first = load_secret_key(environ={"WATCHER_STATE_DIR": str(state)})

    path = state / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert re.fullmatch(r"[0-9a-f]{64}\n", path.read_text())
    assert first.persistent and first.origin == f"file {path}"
    assert [p.name for p in state.iterdir()] == [KEY_FILE_NAME]  # no temporary file left behind
    written = path.read_text()

    again = load_secret_key(state_dir=state, environ={})
    assert again == first and again.key_id == first.key_id
    assert again.digest("hunter2") == first.digest("hunter2")
    assert path.read_text() == written  # read, not re-created


def test_an_existing_key_file_is_not_replaced(tmp_path):
    (tmp_path / KEY_FILE_NAME).write_text(KEY + "\n")
    assert load_secret_key(state_dir=tmp_path, environ={}) == SecretKey(KEY, "same")
    assert (tmp_path / KEY_FILE_NAME).read_text() == KEY + "\n"


def test_a_key_file_and_the_environment_variable(tmp_path):
    path = tmp_path / "key"
    path.write_text(f"  {KEY}\n")
    from_file = load_secret_key(path, environ={})
    assert from_file == SecretKey(KEY, "x") and from_file.origin == f"file {path}"
    assert load_secret_key(environ={"WATCHER_SECRET_KEY_FILE": str(path)}) == from_file
    from_env = load_secret_key(environ={"WATCHER_SECRET_KEY": KEY})
    assert from_env == from_file and from_env.origin == "environment variable WATCHER_SECRET_KEY"
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_a_key_file_and_the_environment_variable_together_are_refused(tmp_path):
    path = tmp_path / "key"
    path.write_text(KEY)
    with pytest.raises(SecretKeyError, match="set one of them"):
        load_secret_key(path, environ={"WATCHER_SECRET_KEY": KEY})


def test_a_short_key_is_refused_without_showing_it(tmp_path):
    path = tmp_path / "key"
    path.write_text("hunter2\n")
    with pytest.raises(SecretKeyError) as raised:
        load_secret_key(path, environ={})
    assert str(raised.value) == (f"the deployment key from file {path} is 7 characters long; expected at least "
                                 f"{MIN_KEY_LENGTH} (make one with `openssl rand -hex 32`)")
    with pytest.raises(SecretKeyError) as raised:
        load_secret_key(environ={"WATCHER_SECRET_KEY": "hunter2"})
    assert "hunter2" not in str(raised.value)


def test_a_missing_key_file_is_an_error(tmp_path):
    with pytest.raises(SecretKeyError) as raised:
        load_secret_key(tmp_path / "nope", environ={})
    assert str(raised.value) == f"cannot read the deployment key file {tmp_path / 'nope'}: No such file or directory"


def test_a_state_dir_given_explicitly_that_cannot_hold_the_key_is_an_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SecretKeyError, match=f"cannot create or read the deployment key in {blocker / 'state'}"):
        load_secret_key(state_dir=blocker / "state", environ={})
    with pytest.raises(SecretKeyError):
        load_secret_key(environ={"WATCHER_STATE_DIR": str(blocker / "state")})


def test_a_default_state_dir_that_cannot_hold_the_key_falls_back_to_the_process_key_with_a_warning(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="watcher.delivery.secretkey"):
        key = load_secret_key(environ={"XDG_STATE_HOME": str(blocker)})
    assert key is process_key() and not key.persistent
    message, = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"no deployment key configured and {blocker / 'watcher'} cannot hold one")
    assert "go dead" in message and key.key_id in message


def test_default_state_dir():
    assert default_state_dir({"WATCHER_STATE_DIR": "/srv/w", "XDG_STATE_HOME": "/x"}).as_posix() == "/srv/w"
    assert default_state_dir({"XDG_STATE_HOME": "/x"}).as_posix() == "/x/watcher"
    assert default_state_dir({}).as_posix().endswith("/.local/state/watcher")


def test_a_key_never_shows_itself():
    key = SecretKey(KEY, "test")
    assert KEY not in repr(key) and KEY not in str(key)
    assert repr(key) == f"SecretKey(key_id='{key.key_id}', origin='test')"
    assert re.fullmatch(r"[0-9a-f]{16}", key.key_id) and key.key_id not in KEY
    assert SecretKey.generate() != SecretKey.generate()


def test_watcher_run_reports_an_unusable_key_and_exits_before_doing_anything(tmp_path, monkeypatch):
    monkeypatch.setattr("watcher.daemon.logs.configure", lambda *args, **kwargs: None)  # leave logging alone
    result = CliRunner().invoke(run, ["--secret-key-file", str(tmp_path / "missing")], env={"WATCHER_SECRET_KEY": ""})
    assert result.exit_code == 1
    assert f"Error: cannot read the deployment key file {tmp_path / 'missing'}: No such file or directory" in result.output
