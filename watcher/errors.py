"""The exception classes of watcher, under one root: :class:`WatcherError`.

Code decides by class (``except``/``isinstance``), never by an exception's name or message. Each
branch says when it is raised and what the caller should do::

    WatcherError
    ├── DefinitionProblem           a definition cannot be used as written (fix the file)
    │   └── TemplateSyntaxError     (also a TemplateError) a template does not compile
    ├── TemplateError               a template failed
    │   ├── TemplateSyntaxError
    │   └── TemplateRenderError     a compiled template failed while rendering
    ├── ClusterError                Elasticsearch could not do what was asked
    │   ├── TransientClusterError   it could not answer now (retry the same work later)
    │   └── PermanentClusterError   it answered with an error no retry fixes
    └── DeliveryError               a delivery to a receiver failed
        ├── RetryableDeliveryError  try again later (the outbox backs off)
        └── FinalDeliveryError      dead: no retry can succeed

The concrete classes live next to the code that raises them and keep their historical builtin
bases (``ValueError``, ``RuntimeError``), so ``except ValueError`` still catches what it caught.
Third-party exceptions (elasticsearch, httpx) are mapped to these branches by the modules that know
those libraries (:func:`watcher.es.client.cluster_error_class`,
:func:`watcher.delivery.retry.delivery_error_class`).

This module is the bottom layer: it imports nothing from the watcher package.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "DefinitionProblem",
    "DeliveryError",
    "FinalDeliveryError",
    "PermanentClusterError",
    "RetryableDeliveryError",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "TransientClusterError",
    "WatcherError",
]


class WatcherError(Exception):
    """Root of every exception watcher defines.

    Raised only through its subclasses. A caller that must not crash on any of our errors (a CLI
    entry point, the daemon's loop) catches this; everything else catches the narrowest branch.
    """


# -- definitions ------------------------------------------------------------------------------------

class DefinitionProblem(WatcherError):
    """A definition cannot be used as written: a file that is not valid YAML/JSON or breaks the
    schema, a template that does not compile, a bad schedule (cron), duration or date math, or a
    watch/rule that cannot be converted.

    Raised while loading, validating or converting definitions (and when a date math or duration
    written in a definition is first resolved). The caller reports it — with the file position
    when the subclass carries one — and skips that definition; retrying without changing the file
    gives the same error.
    """


# -- templates --------------------------------------------------------------------------------------

class TemplateError(WatcherError):
    """A Mustache or Jinja2 template failed; see :class:`TemplateSyntaxError` (compile time) and
    :class:`TemplateRenderError` (render time). Catch this when both end the same way (e.g. a
    dry-run showing the error)."""


class TemplateSyntaxError(TemplateError, DefinitionProblem, ValueError):
    """A template that cannot be compiled (unclosed section, bad tag...).

    Raised when a template is compiled or checked, normally at load time. It is a definition
    problem: the caller reports it with its line and column and does not load the definition.

    Attributes:
        message: what is wrong, e.g. ``"unclosed section {{#hits}}"``.
        line: 1-based line of the offending tag in the template text.
        column: 1-based column (in characters) of the tag's opening delimiter.
    """

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class TemplateRenderError(TemplateError, ValueError):
    """A template that compiled but failed while rendering with one run's data (undefined
    variable, self-referencing value, output too large, sandbox violation...). Both template
    languages raise it (:mod:`watcher.templates.mustache`, :mod:`watcher.templates.jinja`).

    Raised during an execution. The caller fails only what was being rendered (one action, one
    input), records the reason and carries on; the next run, with other data, may succeed.

    Attributes:
        variable: the undefined variable or attribute name, when that is the cause (else None).
        line: 1-based template line where it failed, when known (else None).
    """

    def __init__(self, message: str, *, variable: str | None = None, line: int | None = None):
        super().__init__(message)
        self.variable, self.line = variable, line


# -- the cluster ------------------------------------------------------------------------------------

class ClusterError(WatcherError):
    """Elasticsearch could not do what was asked (or could not be provided at all).

    Raised by the code that talks to the cluster. A caller that can tell transient from permanent
    catches the two subclasses; a direct instance means "neither": e.g. an optimistic-concurrency
    conflict, which the caller resolves by reloading, merging and saving again.
    """


class TransientClusterError(ClusterError):
    """The cluster could not answer now: connection refused or reset, timeout, node restarting,
    HTTP 429 or 5xx.

    The caller must not treat it as a result: the daemon records the run as failed, does not
    advance progress and runs the same window again at the next tick; other callers retry with
    backoff.
    """


class PermanentClusterError(ClusterError):
    """The cluster answered, with an error that retrying the same request will not fix: a bad
    query, a missing index or script, a rejected script, missing privileges, a TLS or
    serialization problem.

    The caller fails what it was doing (recording the cluster's reason) and moves on; the run is
    complete, and progress advances.
    """


# -- deliveries -------------------------------------------------------------------------------------

class DeliveryError(WatcherError):
    """A delivery to a receiver (webhook, Slack, Opsgenie...) failed. The outbox decides what to do
    by subclass: :class:`RetryableDeliveryError` or :class:`FinalDeliveryError`."""


class RetryableDeliveryError(DeliveryError):
    """The receiver could not be reached or answered 429/5xx: connection errors, timeouts, network
    and remote protocol errors.

    The outbox keeps the delivery ``pending`` and tries again after a backoff (never before a
    ``Retry-After``), until the retry policy gives up.
    """


class FinalDeliveryError(DeliveryError):
    """A delivery that no retry can make succeed: a malformed or unsupported URL, a 4xx answer, a
    secret that is no longer configured.

    The outbox marks the delivery ``dead`` at once with the reason; an operator fixes the cause and
    re-sends it.
    """
