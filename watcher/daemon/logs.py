"""Logging for the daemon and the CLI: human or JSON lines, and secrets masked in every record.

``configure("human" | "json", level)`` installs one handler on the root logger:

* ``human``: ``2024-05-01T12:00:00.123Z INFO    watcher.daemon: message watch_id=disk-full`` —
  time (UTC, milliseconds, the stamp format of Watcher's records), level padded to 7, logger,
  message, then any ``extra`` fields as ``key=value`` (JSON-quoted when they hold spaces, quotes or
  ``=``). Newlines inside a message are written as ``\\n`` so each event starts a new line; a
  traceback follows on lines indented by two spaces.
* ``json``: one JSON object per line: ``time``, ``level``, ``logger``, ``message``, every ``extra``
  field (``watch_id``, ``action_id``, ``record_id``…; values that JSON cannot hold are written as
  text), and ``exception`` (the formatted traceback) when there is one. An extra field named like
  one of the four core keys is overwritten by it.

Secrets (docs/semantics.md#secrets: never printed or logged): :func:`add_secrets` registers values;
:class:`SecretMasker`, attached to the handler so that it sees the records of every logger
(``elasticsearch``, ``httpx``… included), replaces them by ``***`` in the message, in every extra
field (nested values too) and in tracebacks, including their URL-encoded and JSON-escaped forms
(:func:`watcher.model.secrets.mask`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from collections.abc import Iterable
from typing import Any, Literal, TextIO

from watcher.model.secrets import Secret, mask, mask_data

__all__ = ["HumanFormatter", "JsonFormatter", "SecretMasker", "add_secrets", "configure", "extra_fields", "masker"]

# Libraries that log every request or job at INFO: kept at WARNING unless the level is DEBUG.
NOISY_LOGGERS = ("apscheduler", "httpx", "httpcore", "elastic_transport", "opensearch", "urllib3")

_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime",
                                                                                          "taskName"}
_CORE_KEYS = ("time", "level", "logger", "message")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of ``record`` (its attributes that logging itself does not set), in order."""
    return {key: value for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_")}


def format_time(record: logging.LogRecord) -> str:
    """``record.created`` as ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (UTC)."""
    stamp = dt.datetime.fromtimestamp(record.created, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class SecretMasker(logging.Filter):
    """Replaces known secret values by ``***`` in a record before any formatter sees it.

    Rewrites ``record.msg`` (the formatted message; ``args`` emptied), every extra field, and
    ``exc_text``/``stack_info`` (the traceback is formatted here, then masked). Never drops a record.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add_secrets(self, values: Iterable[str | Secret]) -> None:
        """Register secret values (strings or :class:`Secret`); empty values are ignored."""
        new = [value.reveal() if isinstance(value, Secret) else str(value) for value in values if value]
        with self._lock:
            self._secrets = tuple(dict.fromkeys((*self._secrets, *new)))

    def clear(self) -> None:
        """Forget every registered secret (tests; a reload that rebuilds the list)."""
        with self._lock:
            self._secrets = ()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = self._secrets
        if not secrets:
            return True
        record.msg = mask(record.getMessage(), secrets)
        record.args = ()
        for key, value in extra_fields(record).items():
            setattr(record, key, mask_data(value, secrets))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask(record.stack_info, secrets)
        return True


_MASKER = SecretMasker()


def masker() -> SecretMasker:
    """The process-wide masker that :func:`configure` attaches."""
    return _MASKER


def add_secrets(values: Iterable[str | Secret]) -> None:
    """Register secret values with the process-wide masker (effective in already configured logging)."""
    _MASKER.add_secrets(values)


def _traceback(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    text = record.exc_text or (formatter.formatException(record.exc_info) if record.exc_info else "")
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    return text


class HumanFormatter(logging.Formatter):
    """``<time> <LEVEL:7> <logger>: <message> key=value…`` (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        extras = "".join(f" {key}={_human_value(value)}" for key, value in extra_fields(record).items())
        line = f"{format_time(record)} {record.levelname:<7} {record.name}: {message}{extras}"
        trace = _traceback(record, self)
        if trace:
            line += "\n" + "\n".join("  " + row for row in trace.splitlines())
        return line


def _human_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, (bool, int, float, list, tuple, dict)):
        text = json.dumps(value, default=_json_default, ensure_ascii=False)
    else:
        text = _json_default(value)
    if text == "" or any(c in text for c in ' "=\n\r\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = dict(extra_fields(record))
        document.update(time=format_time(record), level=record.levelname, logger=record.name,
                        message=record.getMessage())
        trace = _traceback(record, self)
        if trace:
            document["exception"] = trace
        ordered = {key: document.pop(key) for key in _CORE_KEYS}
        ordered.update(document)
        return json.dumps(ordered, default=_json_default, ensure_ascii=False)


def _json_default(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


_HANDLER_NAME = "watcher"


def configure(format: Literal["human", "json"] = "human", level: int | str = "INFO",
              stream: TextIO | None = None) -> logging.Handler:
    """Send all logging to ``stream`` in ``format``, with secrets masked.

    Replaces the handler installed by a previous call (other handlers are left alone). The
    libraries in :data:`NOISY_LOGGERS` are set to WARNING unless ``level`` is DEBUG (or lower).

    Args:
        format: ``human`` or ``json``.
        level: a level name (case-insensitive) or number.
        stream: where lines go; default ``sys.stderr`` (looked up at each write).

    Returns:
        The installed handler.

    Raises:
        ValueError: unknown format or level name.
    """
    formatters = {"human": HumanFormatter, "json": JsonFormatter}
    if format not in formatters:
        raise ValueError(f"unknown log format {format!r}: expected 'human' or 'json'")
    numeric = _level_number(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
            handler.close()
    handler: logging.Handler = (logging.StreamHandler(stream) if stream is not None else _StderrHandler())
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatters[format]())
    handler.addFilter(_MASKER)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if numeric <= logging.DEBUG else logging.WARNING)
    # The transport logs every failed request with a traceback while the cluster is away; the daemon
    # reports cluster errors itself, once per tick, so keep only its errors unless debugging.
    if numeric > logging.DEBUG:
        for transport in ("elastic_transport", "opensearch"):
            logging.getLogger(transport).setLevel(logging.ERROR)
    return handler


class _StderrHandler(logging.StreamHandler):
    """A StreamHandler writing to whatever ``sys.stderr`` is at the time (pytest swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _level_number(level: int | str) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(str(level).upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return number
