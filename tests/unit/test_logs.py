"""watcher.daemon.logs: exact human and JSON lines, secrets masked everywhere."""

from __future__ import annotations

import io
import json
import logging

import pytest

from watcher.daemon import logs
from watcher.model.secrets import Secret

CREATED = 1714564800.123456  # 2024-05-01T12:00:00.123456Z
STAMP = "2024-05-01T12:00:00.123Z"


@pytest.fixture
def output():
    """Logging configured into a StringIO, with a fixed record time; everything restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_factory = logging.getLogRecordFactory()

    def fixed_time(*args, **kwargs):
        record = saved_factory(*args, **kwargs)
        record.created = CREATED
        return record

    logging.setLogRecordFactory(fixed_time)
    stream = io.StringIO()
    yield stream
    logging.setLogRecordFactory(saved_factory)
    for handler in list(root.handlers):
        if handler not in saved_handlers:
            root.removeHandler(handler)
    root.setLevel(saved_level)
    for name in logs.NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logs.masker().clear()


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_human_lines(output):
    logs.configure("human", "info", stream=output)
    log = logging.getLogger("watcher.daemon")
    log.info("watch %s executed in %d ms", "disk-full", 42, extra={"watch_id": "disk-full", "record_id": "r-1"})
    log.warning("two\nlines", extra={"reason": "receiver said no", "attempt": 3, "ok": False, "empty": ""})
    log.debug("not shown at INFO")
    assert lines(output) == [
        f"{STAMP} INFO    watcher.daemon: watch disk-full executed in 42 ms watch_id=disk-full record_id=r-1",
        f'{STAMP} WARNING watcher.daemon: two\\nlines reason="receiver said no" attempt=3 ok=false empty=""',
    ]


def test_json_lines(output):
    logs.configure("json", "DEBUG", stream=output)
    log = logging.getLogger("watcher.engine")
    log.debug("action %s sent", "page", extra={"watch_id": "disk-full", "action_id": "page",
                                               "record_id": "r-1", "status": 200, "tags": ["a", "b"]})
    log.info("plain")
    first, second = (json.loads(line) for line in lines(output))
    assert lines(output)[1] == f'{{"time": "{STAMP}", "level": "INFO", "logger": "watcher.engine", "message": "plain"}}'
    assert first == {"time": STAMP, "level": "DEBUG", "logger": "watcher.engine", "message": "action page sent",
                     "watch_id": "disk-full", "action_id": "page", "record_id": "r-1", "status": 200,
                     "tags": ["a", "b"]}
    assert list(first)[:4] == ["time", "level", "logger", "message"]


def test_json_exception_is_one_line(output):
    logs.configure("json", "INFO", stream=output)
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("watcher").exception("failed", extra={"watch_id": "w"})
    (line,) = lines(output)
    document = json.loads(line)
    assert document["message"] == "failed" and document["watch_id"] == "w"
    assert document["exception"].startswith("Traceback (most recent call last):")
    assert document["exception"].endswith("ValueError: bad value")


def test_human_traceback_is_indented(output):
    logs.configure("human", "INFO", stream=output)
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("watcher").exception("failed")
    first, *rest = lines(output)
    assert first == f"{STAMP} ERROR   watcher: failed"
    assert rest[0] == "  Traceback (most recent call last):"
    assert rest[-1] == "  ValueError: bad value"
    assert all(row.startswith("  ") for row in rest)


def test_secrets_are_masked_in_messages_extras_and_tracebacks(output):
    logs.configure("json", "INFO", stream=output)
    logs.add_secrets(["s3cr3t/key", Secret("tok-123"), ""])
    log = logging.getLogger("httpx")  # another library's logger: the handler's filter still applies
    log.warning("POST https://hooks.example/?token=%s failed", "s3cr3t%2Fkey",
                extra={"headers": {"Authorization": "GenieKey tok-123"}, "url": "https://x/tok-123",
                       "secret": Secret("whatever")})
    try:
        raise RuntimeError("auth failed for tok-123")
    except RuntimeError:
        logging.getLogger("watcher").exception("delivery with %s", "tok-123")
    text = output.getvalue()
    assert "tok-123" not in text and "s3cr3t" not in text
    first, second = (json.loads(line) for line in lines(output))
    assert first["message"] == "POST https://hooks.example/?token=*** failed"
    assert first["headers"] == {"Authorization": "GenieKey ***"}
    assert first["url"] == "https://x/***"
    assert first["secret"] == "***"
    assert second["message"] == "delivery with ***"
    assert second["exception"].endswith("RuntimeError: auth failed for ***")


def test_secrets_added_after_configure_apply_and_human_extras_are_masked(output):
    logs.configure("human", "INFO", stream=output)
    logging.getLogger("watcher").info("before", extra={"api_key": "k-42"})
    logs.add_secrets(["k-42"])
    logging.getLogger("watcher").info("after %s", "k-42", extra={"api_key": "k-42"})
    assert lines(output) == [
        f"{STAMP} INFO    watcher: before api_key=k-42",
        f"{STAMP} INFO    watcher: after *** api_key=***",
    ]


def test_configure_replaces_its_own_handler_and_quiets_noisy_libraries(output):
    other = io.StringIO()
    logs.configure("human", "INFO", stream=other)
    logs.configure("json", "INFO", stream=output)
    assert sum(h.get_name() == "watcher" for h in logging.getLogger().handlers) == 1
    logging.getLogger("apscheduler.scheduler").info("Added job")
    logging.getLogger("apscheduler.scheduler").warning("job missed")
    assert other.getvalue() == ""
    assert [json.loads(line)["message"] for line in lines(output)] == ["job missed"]
    logs.configure("human", "debug", stream=output)
    assert logging.getLogger("apscheduler").level == logging.NOTSET


def test_configure_rejects_unknown_format_and_level():
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.configure("xml", "INFO")
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        logs.configure("human", "LOUD")
