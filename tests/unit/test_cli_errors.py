"""CLI error paths a newcomer hits: each must be one clear line (no traceback, no secret printed).

No cluster is needed: the errors are found before Elasticsearch is asked, or the "cluster" is a port
where nothing listens (127.0.0.1:9, connection refused).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.es.client import ConnectionSettings, check_index_prefix, redact_url
from watcher.receiver import Receiver, is_secret_name, mask_headers, mask_query

UTC = dt.timezone.utc

WATCH = {
    "trigger": {"schedule": {"interval": "5m"}},
    "input": {"simple": {"n": 1}},
    "condition": {"always": {}},
    "actions": {"log": {"logging": {"text": "n={{ctx.payload.n}}"}}},
}


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def write_watch(folder: Path, name: str, trigger: dict | None = None) -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps({**WATCH, **({"trigger": trigger} if trigger else {})}))
    return path


# ----------------------------------------------------------------------------------------------
# 1. the password in ES_URL is never printed

@pytest.mark.parametrize("url, shown", [
    ("http://elastic:EsPassw0rd@127.0.0.1:9", "http://elastic:***@127.0.0.1:9"),
    ("https://u:p%40ss@h.example:443/prefix?x=1", "https://u:***@h.example:443/prefix?x=1"),
    ("http://u:pa@ss@h:9200/", "http://u:***@h:9200/"),  # an unencoded "@" in the password
    ("http://elastic@127.0.0.1:9200", "http://elastic@127.0.0.1:9200"),  # no password: nothing to mask
    ("http://127.0.0.1:9200/a@b", "http://127.0.0.1:9200/a@b"),  # "@" in the path is not userinfo
    ("not a url", "not a url"),
])
def test_redact_url_masks_only_the_password(url, shown):
    assert redact_url(url) == shown


def test_credentials_in_es_url_move_to_basic_auth():
    settings = ConnectionSettings.from_env({"ES_URL": "http://elastic:p%40ss@127.0.0.1:9200/es"})
    assert settings.urls == ["http://127.0.0.1:9200/es"]
    assert (settings.username, settings.password) == ("elastic", "p@ss")
    assert settings.client_kwargs()["basic_auth"] == ("elastic", "p@ss")
    assert "p@ss" not in repr(settings)


def test_es_username_and_password_win_over_the_url():
    settings = ConnectionSettings.from_env({"ES_URL": "http://a:b@h:9200", "ES_USERNAME": "c", "ES_PASSWORD": "d"})
    assert (settings.username, settings.password) == ("c", "d")
    alone = ConnectionSettings.from_env({"ES_URL": "http://a:b@h:9200", "ES_USERNAME": "c"})
    assert (alone.username, alone.password) == ("c", None)  # the URL's password belongs to user a


def test_different_credentials_in_two_urls_are_refused_without_echoing_them():
    with pytest.raises(ValueError) as caught:
        ConnectionSettings.from_env({"ES_URL": "http://a:s3cret1@h1:9200,http://b:s3cret2@h2:9200"})
    assert "different credentials" in str(caught.value) and "s3cret" not in str(caught.value)


def test_dry_run_never_prints_the_password_of_an_unreachable_cluster(tmp_path):
    path = write_watch(tmp_path, "w")
    result = invoke("dry-run", str(path), env={"ES_URL": "http://elastic:EsPassw0rd@127.0.0.1:9"})
    assert result.exit_code == 1, result.output
    assert "cannot reach the cluster (ES_URL) at http://127.0.0.1:9" in result.output
    assert "EsPassw0rd" not in result.output


def test_ops_verbs_never_print_the_password_of_an_unreachable_cluster():
    result = invoke("status", env={"ES_URL": "http://elastic:EsPassw0rd@127.0.0.1:9"})
    assert result.exit_code == 1, result.output
    assert "cannot reach the cluster (ES_URL) at http://127.0.0.1:9" in result.output
    assert "EsPassw0rd" not in result.output


# ----------------------------------------------------------------------------------------------
# 2. messages instead of tracebacks

@pytest.mark.parametrize("url, found", [
    ("not a url", "'not a url'"),
    ("http://127.0.0.1:99999", "'http://127.0.0.1:99999'"),
    ("http://elastic:EsPassw0rd@127.0.0.1:99999", "'http://elastic:***@127.0.0.1:99999'"),
    ("ftp://127.0.0.1:21", "'ftp://127.0.0.1:21'"),
    ("http://127.0.0.1", "'http://127.0.0.1'"),
])
@pytest.mark.parametrize("verb", [["dry-run"], ["status"]])
def test_a_malformed_es_url_is_one_clear_error(tmp_path, verb, url, found):
    args = [*verb, str(write_watch(tmp_path, "w"))] if verb == ["dry-run"] else verb
    result = invoke(*args, env={"ES_URL": url})
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ES_URL: expected http(s)://host:port")
    assert lines[0].endswith(f"found {found}")
    assert "EsPassw0rd" not in result.output


@pytest.mark.parametrize("prefix", ["../Bad*Prefix", "Upper", "_hidden", "-dash", ".dot", "a b", "a:b", "x" * 201, ""])
def test_a_bad_index_prefix_is_a_usage_error(tmp_path, prefix):
    path = write_watch(tmp_path, "w")
    for args in (["dry-run", str(path), "--record", "--index-prefix", prefix], ["status", "--index-prefix", prefix]):
        result = invoke(*args, env={"ES_URL": "http://127.0.0.1:9"})
        assert result.exit_code == 2, result.output
        assert "Invalid value for '--index-prefix': expected lowercase letters, digits" in result.output
        assert f"found {prefix!r}" in result.output


@pytest.mark.parametrize("prefix", ["watcher", "team-a.prod_1", "9lives"])
def test_good_index_prefixes_pass(prefix):
    assert check_index_prefix(prefix) == prefix


def test_receiver_on_a_port_in_use_says_so():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = invoke("receiver", "--port", str(port))
    finally:
        taken.close()
    assert result.exit_code == 1, result.output
    assert result.output.strip() == f"Error: port {port} on 127.0.0.1 is already in use; stop what uses it or give --port"


@pytest.mark.parametrize("args, message", [
    (["--port", "99999"], "Invalid value for '--port': 99999 is not in the range 0<=x<=65535"),
    (["--host", "no-such-host.invalid", "--port", "0"], "Invalid value for --host: cannot listen on 'no-such-host.invalid'"),
    (["--host", "999.1.1.1", "--port", "0"], "Invalid value for --host: cannot listen on '999.1.1.1'"),
])
def test_receiver_bad_port_or_host_is_a_usage_error(args, message):
    result = invoke("receiver", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("out", ["/proc/nope", "{tmp}/a-file/sub"])
def test_schema_out_that_cannot_be_created_names_the_folder(tmp_path, out):
    if out.startswith("/proc") and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    (tmp_path / "a-file").write_text("")
    folder = out.format(tmp=tmp_path)
    result = invoke("schema", "--out", folder)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: cannot write the schemas to the folder {folder} (--out): ")
    assert "Traceback" not in result.output


# ----------------------------------------------------------------------------------------------
# 4. backtest ranges (checked before the cluster is asked: ES_URL points at nothing)

def test_from_after_to_is_a_usage_error(tmp_path):
    path = write_watch(tmp_path, "w")
    result = invoke("dry-run", str(path), "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z",
                    env={"ES_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "--from (2026-01-02T00:00:00+00:00) is after --to (2026-01-01T00:00:00+00:00)" in result.output


def test_at_with_from_is_a_usage_error(tmp_path):
    path = write_watch(tmp_path, "w")
    result = invoke("dry-run", str(path), "--at", "now", "--from", "now-1h", env={"ES_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert "--at runs one scheduled time and --from/--to a range: give one of them" in result.output


def _watch(tmp_path, trigger):
    from watcher.definitions.load import load_paths

    loaded = load_paths([write_watch(tmp_path, "w", trigger)])
    assert not loaded.problems, loaded.problems
    return loaded.watches["w"]


def test_backtest_of_a_calendar_schedule_starts_at_its_first_fire_time(tmp_path):
    from watcher.api import schedule_times as _schedule_times

    hourly = _watch(tmp_path, {"schedule": {"hourly": {"minute": [0, 30]}}})
    first = dt.datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    times = _schedule_times(hourly, first, dt.datetime(2026, 1, 1, 11, 0, tzinfo=UTC))
    assert times == [dt.datetime(2026, 1, 1, 10, 30, tzinfo=UTC), dt.datetime(2026, 1, 1, 11, 0, tzinfo=UTC)]
    on_time = _schedule_times(hourly, dt.datetime(2026, 1, 1, 10, 30, tzinfo=UTC),
                              dt.datetime(2026, 1, 1, 10, 45, tzinfo=UTC))
    assert on_time == [dt.datetime(2026, 1, 1, 10, 30, tzinfo=UTC)]  # --from itself when it is a fire time


def test_backtest_of_an_interval_is_anchored_at_from(tmp_path):
    from watcher.api import schedule_times as _schedule_times

    every_5m = _watch(tmp_path, {"schedule": {"interval": "5m"}})
    first = dt.datetime(2026, 1, 1, 10, 7, tzinfo=UTC)
    times = _schedule_times(every_5m, first, dt.datetime(2026, 1, 1, 10, 20, tzinfo=UTC))
    assert times == [first + dt.timedelta(minutes=m) for m in (0, 5, 10)]


def test_backtest_of_a_schedule_that_never_fires_in_the_range_is_empty(tmp_path):
    from watcher.api import schedule_times as _schedule_times

    daily = _watch(tmp_path, {"schedule": {"daily": {"at": "23:00"}}})
    assert _schedule_times(daily, dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
                           dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == []


def test_from_help_says_how_intervals_are_anchored():
    result = invoke("dry-run", "--help")
    assert "interval schedules run at --from, --from + interval" in " ".join(result.output.split())


# ----------------------------------------------------------------------------------------------
# 5. messages that fit the case

def test_dry_run_unknown_id_lists_the_ids_with_did_you_mean(tmp_path):
    for name in ("cpu-high", "disk-full", "errors"):
        write_watch(tmp_path, name)
    result = invoke("dry-run", str(tmp_path), "--id", "disk-ful", env={"ES_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert (f"{tmp_path}: no rule or watch with id 'disk-ful'; ids: cpu-high, disk-full, errors; "
            f"did you mean 'disk-full'?") in " ".join(result.output.split())


def test_connectors_files_in_a_scanned_folder_are_not_rules(tmp_path):
    from watcher.definitions.load import discover

    rules, elsewhere = tmp_path / "rules", tmp_path / "elsewhere"
    rules.mkdir()
    elsewhere.mkdir()
    write_watch(rules, "w")
    (rules / "connectors.yaml").write_text("connectors:\n  log: {type: logging}\n")
    (rules / "Connectors.yml").write_text("connectors:\n  log: {type: logging}\n")
    (elsewhere / "other.yaml").write_text("connectors:\n  log2: {type: logging}\n")
    assert discover([rules]) == [rules / "w.json"]
    result = invoke("validate", str(rules), "--connectors", str(elsewhere / "other.yaml"))
    assert result.exit_code == 0, result.output
    # other.yaml and w.json; w.json only logs, which is a warning, not a problem
    assert result.output.splitlines()[1:] == ["2 files OK, 0 with problems"]
    assert result.output.startswith(f"warning: {rules / 'w.json'}:")


# ----------------------------------------------------------------------------------------------
# 6. the receiver masks every secret-looking parameter and header

@pytest.mark.parametrize("name", ["apiKey", "api_key", "X-Api-Key", "token", "access_token", "X-Auth-Token",
                                  "Authorization", "Proxy-Authorization", "client_secret", "PASSWORD",
                                  "X-Hub-Signature-256", "X-Slack-Signature", "sig_signature"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["team", "Content-Type", "User-Agent", "alias", "priority"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


def test_mask_query_and_headers():
    assert mask_query("access_token=t&team=ops&X-Signature=s") == "access_token=***&team=ops&X-Signature=***"
    assert mask_headers([("X-Auth-Token", "t"), ("Cookie", "c"), ("Accept", "*/*")]) == {
        "X-Auth-Token": "***", "Cookie": "***", "Accept": "*/*"}


def test_receiver_masks_tokens_and_signatures_over_a_real_socket():
    out = io.StringIO()
    server = Receiver(("127.0.0.1", 0), out=out, save=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        httpx.post(f"http://{host}:{port}/hook?access_token=tok1&team=ops", json={"text": "hi"},
                   headers={"X-Slack-Signature": "v0=sig1", "X-Auth-Token": "tok2"})
    finally:
        server.shutdown()
        server.server_close()
    record = server.records[0]
    assert record["query"] == "access_token=***&team=ops"
    assert record["headers"]["X-Slack-Signature"] == "***" and record["headers"]["X-Auth-Token"] == "***"
    assert not any(secret in json.dumps(record) for secret in ("tok1", "tok2", "sig1"))


def test_receiver_help_says_what_is_masked():
    text = " ".join(invoke("receiver", "--help").output.split())
    assert "whose name contains token, key, secret, password, auth or signature (case-insensitive)" in text
    assert "A secret written in the URL path" in text


def test_dry_run_reason_digs_to_the_deepest_cause_when_root_cause_is_empty():
    from watcher.cli.dryrun import _reason

    failed = {"status": "failure", "error": {
        "type": "bad_request_error", "reason": "BadRequestError(400, 'search_phase_execution_exception')",
        "caused_by": {"root_cause": [], "type": "search_phase_execution_exception", "reason": "",
                      "caused_by": {"type": "illegal_argument_exception",
                                    "reason": "the field existed as two different types in two different indices"}}}}
    assert _reason(failed) == ("the field existed as two different types in two different indices "
                               "(illegal_argument_exception)")
    with_root = {"error": {"caused_by": {"root_cause": [{"type": "index_not_found_exception", "reason": "no such index [x]"}],
                                         "type": "x", "reason": "y"}}}
    assert _reason(with_root) == "no such index [x] (index_not_found_exception)"


def test_run_on_a_port_in_use_says_so_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("run", "--rules", str(tmp_path), "--http-port", str(port), "--state-dir", str(tmp_path),
                        "--grace", "0", env={"ES_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(
        f"Error: the HTTP server cannot listen on 127.0.0.1:{port}: [Errno 98] Address already in use")
    assert "Traceback" not in result.output


def test_events_says_why_it_cannot_reach_the_daemon_without_printing_the_token():
    """https:// to a plain-HTTP port: the TLS failure is named, not only "ConnectError"."""
    server = Receiver(("127.0.0.1", 0), out=io.StringIO(), save=None)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        result = invoke("events", "--url", f"https://{host}:{port}", env={"WATCHER_TOKEN": "tok-0123456789abcdef"})
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1, result.output
    assert f"watcher events: cannot reach https://{host}:{port}: ConnectError: [SSL" in result.output
    assert "tok-0123456789abcdef" not in result.output
