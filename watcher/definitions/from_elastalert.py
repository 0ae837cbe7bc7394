"""ElastAlert2 rule files → our rule format (``watcher convert PATH --from elastalert``).

Pure functions: :func:`convert_file` / :func:`convert_document` take one ElastAlert2 rule and give a
:class:`Conversion`: the rule (a plain mapping in file form, printed as YAML by the CLI), the
connectors its actions need (connectors.yaml entries whose secrets are ``${ENV_VAR}`` references,
never the values), the option names that were not carried over, and notes on what differs.
:func:`merge_connectors` adds such connectors to an existing connectors file's text.

The mapping follows ElastAlert2's documentation (Rule Types and Configuration Options, "Alerts")
as summarised in docs/semantics.md#elastalert2-rule-types, #elastalert2-rule-options and
#elastalert2-alerters:

* the type-specific options go under ``params`` with the same names; ``timeframe`` becomes our
  ``window`` (frequency, spike, flatline, cardinality, spike_aggregation); the other types read the
  last ``buffer_time`` (else ``run_every``, else one minute) — ``change`` keeps its ``timeframe`` param;
* ``filter`` (clauses ANDed, the legacy ``query:`` wrapper unwrapped) → ``query``; ``query_key`` →
  ``group_by``; ``timestamp_field`` → ``time_field``; ``query_delay`` → ``delay``; ``run_every`` →
  ``schedule``; ``realert`` (ElastAlert2's default 1 minute written out), ``exponential_realert``,
  ``aggregation`` (+ ``aggregation_key``, ``summary_table_fields``), ``top_count_keys``, ``include``;
* ``alert_subject``/``alert_text`` with their ``str.format`` arguments → Jinja2 ``title``/``message``
  reading the newest sample document (``hits[0]``), the literal dotted key first, then the nested path
  (ElastAlert2's lookup order), ``alert_missing_value`` when absent;
* ``alert`` (post, http_post, post2, slack, opsgenie, email, debug; pagerduty, ms_teams, discord) →
  actions naming connectors (the ``email`` alerter's SMTP settings become an email connector whose
  credentials (``smtp_auth_file``) are ``${ENV}`` references the user must set,
  docs/semantics.md#elastalert2-email-alerter); a rule none of whose alerters converts (or that has no
  ``alert``) is a :class:`NoActionsError` unless ``allow_no_actions`` (docs/semantics.md#elastalert2-alerters);
* filter clauses on mapping types, which Elasticsearch 8 removed (``_type`` term/match queries, the
  ``type`` query, a query string that is only ``_type:X``), are dropped with a note where they are
  ANDed, and are a :class:`ConversionError` where dropping them would change what the query matches
  (docs/semantics.md#elastalert2-mapping-types).

Every option of the file ends up carried over, or named once in :attr:`Conversion.not_carried` or
:attr:`Conversion.not_needed`, in file order, whatever branch dropped it (:meth:`_Converter.not_carried`,
:meth:`_Converter.not_needed`, listed by :meth:`_Converter.list_dropped`;
docs/semantics.md#elastalert2-dropped-options).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from watcher.definitions.rule import parse_rule
from watcher.destinations.webhook import SECRET_HEADER_WORDS
from watcher.engine.ruletypes import REGISTRY, TYPES
from watcher.errors import DefinitionProblem
from watcher.model.problems import Reader, describe
from watcher.model.source import Document, SourceError, load_file, load_text, plain
from watcher.support.durations import format_duration

__all__ = ["ELASTALERT_TYPES", "Conversion", "ConversionError", "NoActionsError", "convert_document", "convert_file",
           "merge_connectors"]

ELASTALERT_TYPES = ("any", "blacklist", "whitelist", "change", "frequency", "spike", "flatline", "new_term",
                    "cardinality", "metric_aggregation", "spike_aggregation", "percentage_match")
"""ElastAlert2's built-in rule types, each a type of ours with the same name."""

TIMEFRAME_TYPES = frozenset({"frequency", "spike", "flatline", "cardinality", "spike_aggregation"})
"""Types whose ``timeframe`` is the window (ElastAlert2 requires it for them)."""

# ElastAlert2's type-specific options (ElastAlert2 docs, Rule Types), all of them: those our type's
# Params accept go under params, the others are listed as not carried over.
TYPE_OPTIONS = {
    "any": (),
    "frequency": ("num_events", "attach_related"),
    "spike": ("spike_height", "spike_type", "threshold_ref", "threshold_cur", "alert_on_new_data", "field_value"),
    "flatline": ("threshold", "forget_keys"),
    "change": ("compare_key", "ignore_null", "timeframe"),
    "blacklist": ("compare_key", "blacklist"),
    "whitelist": ("compare_key", "whitelist", "ignore_null"),
    "new_term": ("fields", "terms_window_size", "alert_on_missing_field", "window_step_size", "use_keyword_postfix"),
    "cardinality": ("cardinality_field", "max_cardinality", "min_cardinality"),
    "metric_aggregation": ("metric_agg_key", "metric_agg_type", "percentile_range", "max_threshold", "min_threshold",
                           "bucket_interval", "min_doc_count", "metric_agg_script", "sync_bucket_interval",
                           "metric_format_string"),
    "spike_aggregation": ("metric_agg_key", "metric_agg_type", "percentile_range", "spike_height", "spike_type",
                          "threshold_ref", "threshold_cur", "alert_on_new_data", "min_doc_count", "metric_agg_script",
                          "metric_format_string"),
    "percentage_match": ("match_bucket_filter", "min_percentage", "max_percentage", "min_denominator",
                         "bucket_interval", "sync_bucket_interval", "percentage_format_string"),
}
# The params docs/rule-types.md lists per type: what is carried when the type module is not loaded.
DOCUMENTED_PARAMS = {
    "any": (),
    "frequency": ("num_events", "reset_after_match"),
    "spike": ("spike_height", "spike_type", "threshold_ref", "threshold_cur", "alert_on_new_data"),
    "flatline": ("threshold", "forget_keys"),
    "change": ("compare_key", "ignore_null", "timeframe"),
    "blacklist": ("compare_key", "blacklist"),
    "whitelist": ("compare_key", "whitelist", "ignore_null"),
    "new_term": ("fields", "terms_window_size", "alert_on_missing_field"),
    "cardinality": ("cardinality_field", "max_cardinality", "min_cardinality"),
    "metric_aggregation": ("metric_agg_key", "metric_agg_type", "percentile_range", "max_threshold", "min_threshold",
                           "bucket_interval", "min_doc_count"),
    "spike_aggregation": ("metric_agg_key", "metric_agg_type", "spike_height", "spike_type", "threshold_ref",
                          "threshold_cur", "alert_on_new_data"),
    "percentage_match": ("match_bucket_filter", "min_percentage", "max_percentage", "min_denominator"),
}
DURATION_PARAMS = frozenset({"timeframe", "terms_window_size", "window_step_size", "bucket_interval"})

# ElastAlert2 options that tune how ElastAlert2 queries; our engine has no use for them (the cluster
# counts and aggregates every time), so dropping them changes no result.
NOT_NEEDED = ("use_count_query", "use_terms_query", "doc_type", "max_query_size", "scroll_keepalive",
              "use_run_every_query_size", "allow_buffer_time_overlap", "max_scrolling_count")

# Fields of an ElastAlert2 match that our alerts carry under another name, per type (for the
# alert_subject_args / alert_text_args that name them). Applies to every type: num_hits.
MATCH_FIELDS = {
    "*": {"num_hits": "count"},
    "spike": {"spike_count": "details.spike_cur", "reference_count": "details.spike_ref"},
    "spike_aggregation": {"spike_count": "details.spike_cur", "reference_count": "details.spike_ref"},
    "flatline": {"count": "count"},
    "change": {"old_value": "details.old_value", "new_value": "details.new_value"},
    "new_term": {"new_field": "details.field"},
    "percentage_match": {"percentage": "details.percentage"},
}

# Our rule field → the ElastAlert2 option it comes from (to place a validation problem).
_SOURCE_OPTION = {"name": "name", "type": "type", "index": "index", "schedule": "run_every", "delay": "query_delay",
                  "time_field": "timestamp_field", "query": "filter", "group_by": "query_key", "realert": "realert",
                  "exponential_realert": "exponential_realert", "aggregation": "aggregation",
                  "top_count_keys": "top_count_keys", "top_count_number": "top_count_number", "include": "include",
                  "title": "alert_subject", "message": "alert_text", "description": "description",
                  "enabled": "is_enabled", "actions": "alert", "metadata": "owner"}

ALERTERS = {"post": "webhook", "http_post": "webhook", "post2": "webhook", "http_post2": "webhook",
            "slack": "slack", "opsgenie": "opsgenie", "email": "email", "debug": "logging",
            "pagerduty": "pagerduty", "ms_teams": "ms_teams", "discord": "discord"}
"""ElastAlert2 alerter name → our connector type."""

# Mapping types (docs/semantics.md#elastalert2-mapping-types): Elasticsearch 8 has no ``_type`` field
# (queries on it match nothing) and no ``type`` query (refused: "unknown query [type]").
FIELD_QUERIES = ("term", "terms", "match", "match_phrase", "prefix", "wildcard", "regexp")
"""Query kinds that name one field: ``{kind: {field: …}}``."""
STRING_QUERIES = ("query_string", "simple_query_string")
_ONLY_TYPE_QUERY = re.compile(r'\s*_type\s*:\s*(?:"[^"]*"|[^\s()"]+)\s*')
_TYPE_IN_QUERY = re.compile(r"(?<![\w.])_type\s*:")
_NO_TYPE_FIELD = ("Elasticsearch 8 has no _type field (mapping types were removed), so it would match no "
                  "document")
_NO_TYPE_QUERY = "Elasticsearch 8 removed the type query with mapping types, and refuses it"

MISSING_VALUE = "<MISSING VALUE>"
_DURATION_KEYS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1,
                  "milliseconds": 0.001, "microseconds": 0.000001}
_STRFTIME_RUN = re.compile(r"%[a-zA-Z](?:[._\-/]?%[a-zA-Z])*")


class ConversionError(DefinitionProblem, ValueError):
    """The rule cannot be converted. ``str()`` is ``file:line:column: message`` (1-based)."""

    def __init__(self, file: str, line: int, column: int, message: str):
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.file, self.line, self.column, self.message = file, line, column, message


class NoActionsError(ConversionError):
    """The rule converts, but to a rule without actions: none of its alerters has an equivalent
    here (or lacks the settings it needs), or it names none. Deployed, it would alert nobody.

    Raised by the ``convert_*`` functions unless ``allow_no_actions=True`` (``watcher convert
    --allow-no-actions``). The position is the ``alert`` option's value (1:1 when there is none).

    Attributes:
        alerters: the alerter names the rule gives, in file order (empty when it has no ``alert``).
        conversion: the :class:`Conversion` as it would be without actions (its notes and
            ``not_carried`` say why each alerter was left out).
    """

    def __init__(self, file: str, line: int, column: int, message: str, alerters: list[str],
                 conversion: Conversion):
        super().__init__(file, line, column, message)
        self.alerters, self.conversion = alerters, conversion


@dataclasses.dataclass
class Conversion:
    """The result of converting one ElastAlert2 rule.

    Attributes:
        rule: our rule as a plain mapping in file form (durations as ``5m``).
        connectors: ``{name: connector body}`` for connectors.yaml; secrets are ``${ENV}`` references.
        not_carried: ElastAlert2 option (or alerter) names with no equivalent here, in file order.
        not_needed: ElastAlert2 query-tuning options our engine does without (no effect on results).
        notes: one line each: what differs, defaults written out, environment variables to set.
    """

    rule: dict
    connectors: dict = dataclasses.field(default_factory=dict)
    not_carried: list[str] = dataclasses.field(default_factory=list)
    not_needed: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def messages(self) -> list[str]:
        """The lines the CLI prints on stderr, each starting ``note: ``."""
        out = []
        if self.not_carried:
            out.append(f"note: not carried over: {', '.join(self.not_carried)}")
        if self.not_needed:
            out.append(f"note: not needed here (the cluster counts and aggregates on every run): "
                       f"{', '.join(self.not_needed)}")
        out.extend(f"note: {note}" for note in self.notes)
        return out


def convert_file(path: str | Path, known_types: tuple[str, ...] | None = None, *,
                 allow_no_actions: bool = False) -> Conversion:
    """Read and convert one ElastAlert2 rule file (YAML).

    Args:
        path: the rule file.
        known_types: our rule types to accept (default: the registered ones, ``watcher.engine.ruletypes``).
        allow_no_actions: accept a rule that converts without any action (a note says it alerts nobody).

    Raises:
        NoActionsError: no alerter of the rule converts (or it has no ``alert``) and
            ``allow_no_actions`` is false.
        ConversionError: unreadable file, not YAML, not a mapping, a type we do not have, a missing
            required option, a value of the wrong shape, a filter on mapping types that cannot be
            dropped (with the position in the file).
    """
    try:
        document = load_file(path)
    except SourceError as error:
        raise ConversionError(error.file, error.line, error.column, error.message) from None
    return convert_document(document, known_types, allow_no_actions=allow_no_actions)


def convert_text(text: str, file: str = "<text>", known_types: tuple[str, ...] | None = None, *,
                 allow_no_actions: bool = False) -> Conversion:
    """:func:`convert_file` for text already read (``file`` names it in messages)."""
    try:
        document = load_text(text, file)
    except SourceError as error:
        raise ConversionError(error.file, error.line, error.column, error.message) from None
    return convert_document(document, known_types, allow_no_actions=allow_no_actions)


def convert_document(document: Document, known_types: tuple[str, ...] | None = None, *,
                     allow_no_actions: bool = False) -> Conversion:
    """Convert a parsed ElastAlert2 rule; see :func:`convert_file`."""
    return _Converter(document, known_types, allow_no_actions).convert()


# ---- the converter ---------------------------------------------------------------------------------

class _Converter:
    def __init__(self, document: Document, known_types: tuple[str, ...] | None, allow_no_actions: bool = False):
        self.document = document
        self.allow_no_actions = allow_no_actions
        self.raw = document.data
        if not isinstance(self.raw, Mapping):
            raise ConversionError(document.file, 1, 1, "expected an ElastAlert2 rule (a mapping with name, type, "
                                                       f"index, …), found {_describe(plain(self.raw))}")
        self.data = {str(k): _plain(v) for k, v in self.raw.items()}
        self.known_types = known_types
        self.used: set[str] = set()
        self.dropped: dict[str, str] = {}  # option or alerter name → "not_carried" | "not_needed"
        self.out = Conversion(rule={})
        self.rule_type = ""
        self.group_field: str | None = None
        self.env_names: set[str] = set()
        self.missing = MISSING_VALUE

    # -- helpers --

    def fail(self, path: tuple, message: str, *, at_value: bool = False):
        line, column = (self.document.value_position(path) if at_value else self.document.position(path))
        raise ConversionError(self.document.file, line, column, message)

    def take(self, key: str, default: Any = None) -> Any:
        """The option's value, marking it used."""
        if key in self.data:
            self.used.add(key)
            return self.data[key]
        return default

    def not_carried(self, name: str) -> None:
        """Option or alerter ``name`` is not carried over (listed once by :meth:`list_dropped`)."""
        self.dropped.setdefault(name, "not_carried")

    def not_needed(self, name: str) -> None:
        """Option ``name`` is dropped because our engine does without it (no effect on results)."""
        self.dropped.setdefault(name, "not_needed")

    def list_dropped(self) -> None:
        """The one place the dropped options are listed: every option never read, and every name
        given to :meth:`not_carried`/:meth:`not_needed`, in the order of the file (alerter names at
        ``alert``), into ``not_carried`` or ``not_needed``."""
        for key in self.data:
            if key not in self.used:
                (self.not_needed if key in NOT_NEEDED else self.not_carried)(key)
        order = {key: (index, 0) for index, key in enumerate(self.data)}
        at_alert = order.get("alert", (len(order), 0))[0]
        order.update({name: (at_alert, index) for index, name in enumerate(self.alerter_names())})
        for name in sorted(self.dropped, key=lambda name: order.get(name, (at_alert, 0))):
            getattr(self.out, self.dropped[name]).append(name)

    def alerter_names(self) -> list[str]:
        """The alerter names ``alert`` gives (a name, a list of names or of ``{name: settings}``)."""
        alert = self.data.get("alert")
        entries = [alert] if isinstance(alert, (str, Mapping)) else alert if isinstance(alert, list) else []
        return [str(next(iter(e))) if isinstance(e, Mapping) and e else str(e) for e in entries]

    def duration(self, key: str, value: Any, path: tuple | None = None, allow_zero: bool = False) -> str:
        """ElastAlert2's ``{minutes: 5}`` (timedelta keywords) → ``5m``."""
        path = path or (key,)
        expected = "a duration such as {minutes: 5} (weeks, days, hours, minutes, seconds)"
        if not isinstance(value, Mapping) or not value:
            self.fail(path, f"{key}: expected {expected}, found {_describe(value)}", at_value=True)
        seconds = 0.0
        for unit, amount in value.items():
            if unit not in _DURATION_KEYS or isinstance(amount, bool) or not isinstance(amount, (int, float)) \
                    or amount < 0:
                self.fail(path, f"{key}: expected {expected}, found {_describe(value)}", at_value=True)
            seconds += amount * _DURATION_KEYS[unit]
        delta = dt.timedelta(seconds=round(seconds, 6))
        if delta % dt.timedelta(seconds=1):
            self.fail(path, f"{key}: expected whole seconds, found {_describe(value)}", at_value=True)
        if not delta and not allow_zero:
            self.fail(path, f"{key}: expected a duration greater than zero, found {_describe(value)}", at_value=True)
        return format_duration(delta)

    # -- the parts --

    def convert(self) -> Conversion:
        rule = self.out.rule
        self.convert_identity(rule)
        self.convert_time(rule)
        self.convert_query(rule)
        self.convert_params(rule)
        self.convert_alert_features(rule)
        self.convert_templates(rule)
        self.convert_alerters(rule)
        self.list_dropped()
        self.check_result()
        self.check_actions(rule)
        return self.out

    def check_actions(self, rule: dict) -> None:
        """A rule that converts without actions would alert nobody: :class:`NoActionsError`, unless
        allowed (then a note says so)."""
        if rule.get("actions"):
            return
        alert, names = self.data.get("alert"), self.alerter_names()
        if self.allow_no_actions:
            self.out.notes.append("actions: none — the converted rule alerts nobody until you add one")
            return
        again = "--allow-no-actions converts it anyway, without actions"
        if alert is None:
            message = (f"missing option 'alert' (ElastAlert2 requires it): the converted rule would alert nobody; "
                       f"{again}")
        else:
            message = (f"alert: none of the rule's alerters ({', '.join(names)}) converts to an action here, so the "
                       f"converted rule would alert nobody; watcher converts the alerters {', '.join(ALERTERS)} "
                       f"({again})")
        line, column = self.document.value_position(("alert",)) if alert is not None else (1, 1)
        raise NoActionsError(self.document.file, line, column, message, names, self.out)

    def check_result(self) -> None:
        """Validate the converted rule as ``watcher validate`` would (connectors aside); a problem is
        reported at the ElastAlert2 option it came from."""

        document = Document(file=self.document.file, data=self.out.rule, text="")
        reader = Reader(document)
        parse_rule(document, reader)
        for problem in reader.problems:
            option = _SOURCE_OPTION.get(problem.path.split("[")[0].split(".")[0], "")
            if problem.path.startswith("params."):
                option = problem.path.split(".")[1].split("[")[0]
            elif problem.path == "window":
                option = "timeframe" if self.rule_type in TIMEFRAME_TYPES else "buffer_time"
            path = (option,) if option in self.data else ()
            self.fail(path, f"{option or problem.path}: {problem.message} (converted to {problem.path})",
                      at_value=bool(path))

    def convert_identity(self, rule: dict) -> None:
        name = self.take("name")
        if name is None:
            name = Path(self.document.file).stem
            self.out.notes.append(f"name: the rule has none; ElastAlert2 uses the file name, so does the "
                                  f"converted rule ({name!r})")
        elif not isinstance(name, str) or not name.strip():
            self.fail(("name",), f"name: expected a non-empty string, found {_describe(name)}", at_value=True)
        rule["name"] = name
        rule_type = self.take("type")
        if rule_type is None:
            self.fail((), "missing required option 'type' (one of: " + ", ".join(ELASTALERT_TYPES) + ")")
        known = self.known_types if self.known_types is not None else _registered_types()
        if not isinstance(rule_type, str) or rule_type not in ELASTALERT_TYPES:
            self.fail(("type",), f"type: {_describe(rule_type)} is not a rule type watcher has; it converts "
                                 f"ElastAlert2's built-in types: {', '.join(ELASTALERT_TYPES)}", at_value=True)
        if rule_type not in known:
            self.fail(("type",), f"type: {rule_type!r} is not available in this watcher (registered types: "
                                 f"{', '.join(t for t in known if t != 'threshold')})", at_value=True)
        self.rule_type = rule_type
        rule["type"] = rule_type
        description = self.take("description")
        if description is not None:
            rule["description"] = str(description)
        enabled = self.take("is_enabled")
        if enabled is not None:
            if not isinstance(enabled, bool):
                self.fail(("is_enabled",), f"is_enabled: expected true or false, found {_describe(enabled)}",
                          at_value=True)
            if not enabled:
                rule["enabled"] = False
        index = self.take("index")
        if index is None:
            self.fail((), "missing required option 'index'")
        if isinstance(index, list):
            index = ",".join(str(i) for i in index)
        if not isinstance(index, str) or not index.strip():
            self.fail(("index",), f"index: expected an index name or pattern, found {_describe(index)}", at_value=True)
        if "use_strftime_index" in self.data:
            self.not_carried("use_strftime_index")  # our index names never hold strftime codes: listed in every case
        if self.take("use_strftime_index") and "%" in index:
            pattern = _STRFTIME_RUN.sub("*", index)
            self.out.notes.append(f"index: the strftime pattern {index!r} is searched as {pattern!r} (every "
                                  "day's index; the time range still limits the documents)")
            index = pattern
        rule["index"] = index

    def convert_time(self, rule: dict) -> None:
        run_every = self.take("run_every")
        schedule = self.duration("run_every", run_every) if run_every is not None else None
        if schedule is not None:
            rule["schedule"] = schedule
        timeframe = self.data.get("timeframe")
        buffer_time = self.data.get("buffer_time")
        if self.rule_type in TIMEFRAME_TYPES:
            if timeframe is None:
                self.fail((), f"missing required option 'timeframe' (ElastAlert2 requires it for type "
                              f"{self.rule_type})")
            rule["window"] = self.duration("timeframe", self.take("timeframe"))
            if buffer_time is not None:
                self.not_needed("buffer_time")
        elif buffer_time is not None:
            rule["window"] = self.duration("buffer_time", self.take("buffer_time"))
        else:
            rule["window"] = schedule or "1m"
            source = "run_every" if schedule else "ElastAlert2's usual 1 minute"
            self.out.notes.append(f"window: {rule['window']} ({source}); the rule has no buffer_time, which "
                                  f"ElastAlert2 takes from config.yaml for type {self.rule_type} — set window to "
                                  "that buffer_time if it differs")
        time_field = self.take("timestamp_field")
        if time_field is not None and time_field != "@timestamp":
            rule["time_field"] = time_field
        timestamp_type = self.data.get("timestamp_type")
        if timestamp_type in (None, "iso"):
            self.take("timestamp_type")
        delay = self.take("query_delay")
        if delay is not None:
            rule["delay"] = self.duration("query_delay", delay, allow_zero=True)

    def convert_query(self, rule: dict) -> None:
        clauses = self.clauses("filter", self.take("filter"))
        if clauses:
            rule["query"] = clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}
        query_key = self.data.get("query_key")
        if query_key is None:
            return
        self.take("query_key")
        fields = [query_key] if isinstance(query_key, str) else query_key
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            self.fail(("query_key",), f"query_key: expected a field name or a list of them, found "
                                      f"{_describe(query_key)}", at_value=True)
        if self.rule_type == "new_term" and "fields" not in self.data:
            return  # new_term watches query_key's fields (params.fields) when it has no fields
        if len(fields) == 1:
            rule["group_by"] = self.group_field = fields[0]
        else:
            self.not_carried("query_key")
            self.out.notes.append(f"query_key: a compound key ({', '.join(fields)}) is not carried over: group_by "
                                  "takes one field (add a field that joins them to your documents and group by it)")

    def clauses(self, key: str, value: Any) -> list[dict]:
        """ElastAlert2 filter clauses (ANDed) as query DSL clauses, the ``query:`` wrapper unwrapped."""
        if value is None:
            return []
        if isinstance(value, Mapping):
            value = [value]
        if not isinstance(value, list):
            self.fail((key,), f"{key}: expected a list of query clauses, found {_describe(value)}", at_value=True)
        out = []
        for index, clause in enumerate(value):
            path = (key, index)
            if isinstance(clause, Mapping) and set(clause) == {"query"} and isinstance(clause["query"], Mapping):
                clause = clause["query"]  # the legacy wrapper ElastAlert2 unwraps
            if not isinstance(clause, Mapping) or len(clause) != 1:
                self.fail(path, f"{key}[{index}]: expected one query clause such as {{term: {{field: value}}}}, "
                                f"found {_describe(clause)}")
            kind = next(iter(clause))
            if kind in ("eql", "esql"):
                self.fail(path, f"{key}[{index}]: {kind.upper()} filters have no equivalent in watcher's rules "
                                "(they are not query DSL); rewrite the filter as query DSL or Lucene")
            if value[index] is not clause:
                path = (*path, "query")
            kept = self.without_mapping_types(dict(clause), f"{key}[{index}]", path, droppable=True)
            if kept is not None:
                out.append(kept)
        if value and not out:
            self.out.notes.append(f"{key}: every clause was dropped; the rule matches every document of its "
                                  "indices in the window")
        return out

    def without_mapping_types(self, clause: dict, where: str, path: tuple, droppable: bool) -> dict | None:
        """``clause`` without what tests a mapping type (docs/semantics.md#elastalert2-mapping-types).

        A clause that only tests the mapping type (``{term: {_type: x}}``, ``{type: {value: x}}``, a
        query string that is only ``_type:x``) is dropped with a note when it is ANDed with the rest
        (``droppable``: a filter list item, ``bool.must``/``bool.filter`` at any depth): every
        document of an index has its one type now. Returns None when the clause itself is dropped.

        Raises:
            ConversionError: such a clause under ``should``/``must_not``, where dropping it would
                change what the query matches, or ``_type:`` inside a longer query string.
        """
        kind = next(iter(clause)) if len(clause) == 1 else None
        body = clause.get(kind) if kind is not None else None
        if not isinstance(body, Mapping):
            return clause
        if kind == "type" and set(body) <= {"value", "boost", "_name"} and "value" in body:
            return self.drop_type_clause(clause, where, path, droppable, _NO_TYPE_QUERY)
        if kind in FIELD_QUERIES and list(body) == ["_type"]:
            return self.drop_type_clause(clause, where, path, droppable, _NO_TYPE_FIELD)
        if kind in FIELD_QUERIES and list(body) == ["type"]:
            self.out.notes.append(f"{where}: {_compact(clause)} kept: it tests a document field named 'type'; if it "
                                  "was meant for the mapping type of Elasticsearch 6 and earlier (_type), remove it: "
                                  "Elasticsearch 8 has none")
            return clause
        if kind in STRING_QUERIES and isinstance(body.get("query"), str):
            text = body["query"]
            if _ONLY_TYPE_QUERY.fullmatch(text):
                return self.drop_type_clause(clause, where, path, droppable, _NO_TYPE_FIELD)
            if _TYPE_IN_QUERY.search(text):
                self.fail((*path, kind, "query"), f"{where}.{kind}.query: {text!r} searches _type; "
                                                  f"{_NO_TYPE_FIELD} — remove the _type part of the query",
                          at_value=True)
            return clause
        if kind != "bool":
            return clause
        rewritten: dict[str, Any] = {}
        for occur, items in body.items():
            single = isinstance(items, Mapping)
            if occur not in ("must", "filter", "should", "must_not") or not (single or isinstance(items, list)):
                rewritten[occur] = items
                continue
            kept = []
            for index, item in enumerate([items] if single else items):
                at, at_path = (f"{where}.bool.{occur}", (*path, "bool", occur)) if single else \
                    (f"{where}.bool.{occur}[{index}]", (*path, "bool", occur, index))
                item = self.without_mapping_types(dict(item), at, at_path, occur in ("must", "filter")) \
                    if isinstance(item, Mapping) else item
                if item is not None:
                    kept.append(item)
            if kept:
                rewritten[occur] = kept[0] if single else kept
        if droppable and body and not rewritten:
            return None
        return {"bool": rewritten}

    def drop_type_clause(self, clause: dict, where: str, path: tuple, droppable: bool, why: str) -> None:
        if not droppable:
            self.fail(path, f"{where}: {_compact(clause)}: {why}; it cannot be dropped here without changing what "
                            "the query matches — rewrite the clause without the mapping type",
                      at_value=isinstance(path[-1], str))
        self.out.notes.append(f"{where}: {_compact(clause)} dropped: {why}")
        return None

    def convert_params(self, rule: dict) -> None:
        params: dict[str, Any] = {}
        accepted = _params_of(self.rule_type)
        for option in TYPE_OPTIONS[self.rule_type]:
            if option not in self.data:
                continue
            if option == "timeframe" and self.rule_type in TIMEFRAME_TYPES:
                continue
            value = self.take(option)
            if option not in accepted:
                self.not_carried(option)
                continue
            if option in DURATION_PARAMS:
                value = self.duration(option, value)
            elif option == "match_bucket_filter":
                clauses = self.clauses(option, value)
                value = clauses[0] if len(clauses) == 1 else {"bool": {"filter": clauses}}
            elif option in ("blacklist", "whitelist"):
                value = self.value_list(option, value)
            params[option] = value
        if self.rule_type == "new_term" and "fields" not in params and "query_key" in self.data:
            query_key = self.data["query_key"]
            params["fields"] = [query_key] if isinstance(query_key, str) else query_key
            self.out.notes.append("new_term: query_key gives the fields to watch (ElastAlert2 uses it when "
                                  "fields is not set)")
        if self.rule_type == "frequency":
            # ElastAlert2 forgets the events a match counted; a native rule counts every window.
            params["reset_after_match"] = True
        if params:
            rule["params"] = params

    def value_list(self, option: str, value: Any) -> Any:
        """A blacklist/whitelist: values and ``"!file PATH"`` entries (one value per line)."""
        if not isinstance(value, list):
            return value
        out = []
        for index, item in enumerate(value):
            if isinstance(item, str) and item.startswith("!file"):
                parts = item.split(None, 1)
                if len(parts) != 2:
                    self.fail((option, index), f"{option}[{index}]: expected '!file PATH', found {item!r}",
                              at_value=True)
                out.append(f"!file {self.list_file(option, parts[1].strip())}")
            else:
                out.append(item)
        return out

    def list_file(self, option: str, name: str) -> str:
        """A ``!file`` path as an absolute path: ElastAlert2 opens it relative to its working
        directory, which the converted rule (printed elsewhere) cannot know."""
        path = Path(name)
        if path.is_absolute():
            return name
        for base in (Path.cwd(), Path(self.document.file).resolve().parent):
            if (base / path).is_file():
                found = str((base / path).resolve())
                self.out.notes.append(f"{option}: !file {name} is {found} (ElastAlert2 reads it from its working "
                                      "directory)")
                return found
        self.out.notes.append(f"{option}: !file {name} not found in the current directory or beside the rule; "
                              "kept as written — make it an absolute path")
        return name

    def convert_alert_features(self, rule: dict) -> None:
        aggregation = self.data.get("aggregation")
        aggregated = False
        if aggregation is not None:
            self.take("aggregation")
            if isinstance(aggregation, Mapping) and "schedule" in aggregation:
                self.not_carried("aggregation")
                self.out.notes.append("aggregation: the cron form (schedule) is not carried over: aggregation "
                                      "collects for a period from the first alert here")
            else:
                settings: dict[str, Any] = {"period": self.duration("aggregation", aggregation)}
                key = self.take("aggregation_key")
                if isinstance(key, list) and len(key) == 1:
                    key = key[0]
                if isinstance(key, str):
                    settings["key"] = key
                elif key is not None:
                    self.not_carried("aggregation_key")
                fields = self.take("summary_table_fields")
                if fields is not None:
                    settings["summary_table_fields"] = [f.get("path") if isinstance(f, Mapping) else f
                                                        for f in (fields if isinstance(fields, list) else [fields])]
                rows = self.take("summary_table_max_rows")
                if isinstance(rows, int) and not isinstance(rows, bool):
                    settings["max_rows"] = rows
                elif rows is not None:
                    self.not_carried("summary_table_max_rows")
                rule["aggregation"] = settings
                aggregated = True
        realert = self.take("realert")
        if realert is not None:
            rule["realert"] = self.duration("realert", realert, allow_zero=True)
        elif not aggregated:
            rule["realert"] = "1m"
            self.out.notes.append("realert: 1m written out (ElastAlert2's default; ours is none)")
        exponential = self.take("exponential_realert")
        if exponential is not None:
            rule["exponential_realert"] = self.duration("exponential_realert", exponential)
        keys = self.take("top_count_keys")
        if keys is not None:
            rule["top_count_keys"] = [keys] if isinstance(keys, str) else list(keys)
            if self.data.get("raw_count_keys", True) is not False:
                self.out.notes.append("top_count_keys: counted on the fields as written; ElastAlert2 adds "
                                      "'.keyword' unless raw_count_keys is false — name the keyword field if "
                                      "the field is text")
            if "raw_count_keys" in self.data:
                self.take("raw_count_keys")
        number = self.take("top_count_number")
        if number is not None:
            rule["top_count_number"] = number
        include = self.take("include")
        if include is not None:
            include = [include] if isinstance(include, str) else list(include)
            if "*" not in include:
                # ElastAlert2 adds these so that its own lookups work
                extra = [self.group_field, self.data.get("compare_key"), *(rule.get("top_count_keys") or []),
                         rule.get("time_field", "@timestamp")]
                for field in extra:
                    for name in ([field] if isinstance(field, str) else field or []):
                        if isinstance(name, str) and name not in include:
                            include.append(name)
                rule["include"] = include
        metadata = {key: self.take(key) for key in ("owner", "priority", "category") if key in self.data}
        if metadata:
            rule["metadata"] = metadata

    # -- templates --

    def convert_templates(self, rule: dict) -> None:
        missing = self.take("alert_missing_value")
        self.missing = missing if isinstance(missing, str) else MISSING_VALUE
        if missing is not None and not isinstance(missing, str):
            self.not_carried("alert_missing_value")
        text_type = self.take("alert_text_type") or "default"
        if text_type == "alert_text_jinja":
            for key in ("alert_subject", "alert_subject_args", "alert_text", "alert_text_args", "alert_text_kw"):
                if key in self.data:
                    self.take(key)
                    self.not_carried(key)
            self.not_carried("alert_text_type")
            self.out.notes.append("alert_text_type alert_text_jinja: ElastAlert2's Jinja sees the match's fields "
                                  "as variables; rewrite alert_subject/alert_text as title/message with hits[0], "
                                  "group, count, details (docs/rule-types.md)")
            return
        subject = self.take("alert_subject")
        if subject is not None:
            rule["title"] = self.format_template("alert_subject", subject, self.take("alert_subject_args"), None)
            if "alert_subject_max_len" in self.data:
                limit = self.take("alert_subject_max_len")
                rule["title"] = _wrap(rule["title"], f"{{% filter truncate({int(limit)}, True, '') %}}",
                                      "{% endfilter %}")
        text = self.take("alert_text")
        if text is None:
            return
        message = self.format_template("alert_text", text, self.take("alert_text_args"), self.take("alert_text_kw"))
        if text_type == "default":
            if rule.get("top_count_keys"):
                message += TOP_COUNTS
            message += "{% if hits %}\n\n{{ hits[0] | tojson(2) }}{% endif %}"
            self.out.notes.append("alert_text_type default: the message is alert_text, the top counts and the first "
                                  "document's fields; ElastAlert2 also adds its rule type's own text")
        elif text_type == "exclude_fields":
            if rule.get("top_count_keys"):
                message += TOP_COUNTS
            self.out.notes.append("alert_text_type exclude_fields: the message is alert_text and the top counts; "
                                  "ElastAlert2 also adds its rule type's own text")
        elif text_type not in ("alert_text_only", "aggregation_summary_only"):
            self.fail(("alert_text_type",), f"alert_text_type: expected one of alert_text_only, exclude_fields, "
                                            f"aggregation_summary_only, alert_text_jinja, found {text_type!r}",
                      at_value=True)
        if rule.get("aggregation"):
            summary = ("{{ matches | length }} alert{{ 's' if matches | length != 1 }} ({{ count }} documents) "
                       "collected since {{ details.aggregation_start }}.{% if summary_table %}\n\n"
                       "{{ summary_table }}{% endif %}")
            message = _wrap(message, f"{{% if matches is not none %}}{summary}{{% else %}}", "{% endif %}")
            self.out.notes.append("aggregation: the summary lists the alerts in its summary table; ElastAlert2 "
                                  "repeats alert_text once per match")
        rule["message"] = message

    def format_template(self, key: str, text: Any, args: Any, kw: Any) -> str:
        """A Python ``str.format`` template with positional args (or ``alert_text_kw``) → Jinja2."""
        if not isinstance(text, str):
            self.fail((key,), f"{key}: expected a string, found {_describe(text)}", at_value=True)
        args_key = f"{key}_args"
        if args is not None and not isinstance(args, list):
            self.fail((args_key,), f"{args_key}: expected a list of field names, found {_describe(args)}",
                      at_value=True)
        if not args and not kw:
            return _literal(text)  # ElastAlert2 formats only when args are given
        names = {value: field for field, value in kw.items()} if isinstance(kw, Mapping) else {}
        out, auto = [], 0
        try:
            pieces = list(string.Formatter().parse(text))
        except ValueError as error:
            self.fail((key,), f"{key}: not a Python format string: {error}", at_value=True)
        for literal, field, spec, conversion in pieces:
            out.append(_literal(literal))
            if field is None:
                continue
            if spec or conversion:
                self.out.notes.append(f"{key}: the format {{{field}{'!' + conversion if conversion else ''}"
                                      f"{':' + spec if spec else ''}}} is shown as the plain value")
            if field == "":
                field, auto = str(auto), auto + 1
            if field.isdigit():
                position = int(field)
                if not args or position >= len(args):
                    self.out.notes.append(f"{key}: {{{field}}} has no {args_key} entry; shown as {self.missing!r}")
                    out.append(_literal(self.missing))
                    continue
                out.append("{{ " + self.value_expression(str(args[position])) + " }}")
            elif field in names:
                out.append("{{ " + self.value_expression(str(names[field])) + " }}")
            else:
                self.out.notes.append(f"{key}: {{{field}}} names no argument; shown as {self.missing!r}")
                out.append(_literal(self.missing))
        return _with_macro("".join(out))

    def value_expression(self, field: str) -> str:
        """A Jinja2 expression for an ElastAlert2 match field: the group key, a fact of the alert, or the
        newest document's field (literal dotted key first, then the nested path), else the rule's own
        option of that name, else ``alert_missing_value`` (ElastAlert2's lookup order)."""
        if self.group_field is not None and field == self.group_field:
            return "group"
        facts = {**MATCH_FIELDS["*"], **MATCH_FIELDS.get(self.rule_type, {})}
        if self.rule_type == "metric_aggregation":  # ElastAlert2 names the value metric_<key>_<type>
            facts[f"metric_{self.data.get('metric_agg_key')}_{self.data.get('metric_agg_type')}"] = "value"
        if field in facts:
            return facts[field]
        fallback = self.data.get(field)
        if fallback is None or isinstance(fallback, (dict, list)):
            fallback = self.missing
        if fallback == MISSING_VALUE:
            return f"{FIELD_MACRO_NAME}({_string(field)})"
        return f"{FIELD_MACRO_NAME}({_string(field)}, {_string(str(fallback))})"

    # -- alerters → actions and connectors --

    def convert_alerters(self, rule: dict) -> None:
        alert = self.take("alert")
        if alert is None:
            return
        entries = [alert] if isinstance(alert, (str, Mapping)) else alert
        if not isinstance(entries, list):
            self.fail(("alert",), f"alert: expected an alerter name or a list of them, found {_describe(alert)}",
                      at_value=True)
        slug = re.sub(r"[^a-z0-9_.]+", "-", rule["name"].lower()).strip("-.") or "rule"
        env_prefix = re.sub(r"[^A-Z0-9]+", "_", rule["name"].upper()).strip("_") or "RULE"
        if env_prefix[0].isdigit():
            env_prefix = "RULE_" + env_prefix
        actions, used_names = [], set()
        for index, entry in enumerate(entries):
            inline: dict = {}
            if isinstance(entry, Mapping) and len(entry) == 1:
                name, inline = next(iter(entry.items()))
                inline = dict(inline) if isinstance(inline, Mapping) else {}
            elif isinstance(entry, str):
                name = entry
            else:
                self.fail(("alert", index), f"alert[{index}]: expected an alerter name or {{name: {{settings}}}}, "
                                            f"found {_describe(entry)}")
            kind = ALERTERS.get(name)
            if kind is None:
                self.not_carried(name)
                continue
            settings = {**{k: v for k, v in self.data.items() if _belongs(name, k)}, **inline}
            for key in settings:
                if key in self.data:
                    self.used.add(key)
            base = f"{slug}-{'webhook' if kind == 'webhook' else name}"
            built = _ALERTER_BUILDERS[kind](self, name, settings, env_prefix)
            for connector, action_overrides, _consumed in built:
                connector_name, number = base, 2
                while connector_name in used_names:
                    connector_name, number = f"{base}-{number}", number + 1
                used_names.add(connector_name)
                self.out.connectors[connector_name] = connector
                actions.append({"connector": connector_name, **action_overrides})
            leftover = [key for key in settings if key not in built.consumed]
            for key in leftover:
                self.not_carried(key)
        if actions:
            rule["actions"] = actions

    def secret(self, env_prefix: str, setting: str, value: Any, *, note: bool = True) -> str:
        """``${PREFIX_SETTING}`` in place of a secret value, with a note naming the variable (unless
        ``note`` is false: the caller writes its own)."""
        variable = f"{env_prefix}_{re.sub(r'[^A-Z0-9]+', '_', setting.upper()).strip('_')}"
        suffix, candidate = 1, variable
        while candidate in self.env_names:
            suffix += 1
            candidate = f"{variable}_{suffix}"
        self.env_names.add(candidate)
        if note:
            self.out.notes.append(f"connectors: set {candidate} to the rule's {setting} (secrets are not copied)")
        return "${" + candidate + "}"


class _Built(list):
    """``[(connector body, action overrides, consumed keys)]`` plus ``consumed`` for the whole alerter."""

    def __init__(self, items, consumed):
        super().__init__(items)
        self.consumed = set(consumed)


def _urls(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def _http_settings(converter: _Converter, settings: dict, prefix: str, connector: dict, consumed: set) -> None:
    """proxy/timeout/TLS options of an ElastAlert2 HTTP alerter → the connector's HTTP settings."""
    proxy = settings.get(f"{prefix}_proxy")
    if isinstance(proxy, str):
        connector["proxy"] = proxy if "://" in proxy else f"http://{proxy}"
        consumed.add(f"{prefix}_proxy")
    timeout = settings.get(f"{prefix}_timeout")
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        connector["timeout"] = connector["read_timeout"] = f"{int(timeout)}s"
        consumed.add(f"{prefix}_timeout")
    if settings.get(f"{prefix}_ignore_ssl_errors") is True:
        connector["verify"] = False
    if f"{prefix}_ignore_ssl_errors" in settings:
        consumed.add(f"{prefix}_ignore_ssl_errors")
    ca_certs = settings.get(f"{prefix}_ca_certs")
    if isinstance(ca_certs, str):
        connector["ca_file"] = ca_certs
        consumed.add(f"{prefix}_ca_certs")
    elif isinstance(ca_certs, bool):
        consumed.add(f"{prefix}_ca_certs")  # True = verify with the system CAs, our default


def _webhook(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """post/http_post/post2: one webhook connector per URL (ElastAlert2 posts to each)."""
    prefix = "http_post2" if name in ("post2", "http_post2") else "http_post"
    consumed = {f"{prefix}_url"}
    urls = _urls(settings.get(f"{prefix}_url"))
    if not urls:
        converter.out.notes.append(f"{name}: no {prefix}_url; the alerter is not carried over")
        converter.not_carried(name)
        return _Built([], ())
    headers = settings.get(f"{prefix}_headers")
    base: dict[str, Any] = {}
    if isinstance(headers, Mapping):
        base["headers"] = {str(k): (converter.secret(env_prefix, f"{prefix}_headers {k}", v)
                                    if any(word in str(k).lower() for word in SECRET_HEADER_WORDS) else str(v))
                           for k, v in headers.items()}
        consumed.add(f"{prefix}_headers")
    _http_settings(converter, settings, prefix, base, consumed)
    items = []
    for url in urls:
        connector = {"type": "webhook", "url": converter.secret(env_prefix, f"{prefix}_url", url), **base}
        items.append((connector, {}, consumed))
    converter.out.notes.append(f"{name}: the webhook body is the alert as JSON (title, message, group, count, "
                               "details…), not ElastAlert2's match document")
    return _Built(items, consumed)


def _slack(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    consumed = {"slack_webhook_url"}
    urls = _urls(settings.get("slack_webhook_url"))
    if not urls:
        converter.out.notes.append("slack: no slack_webhook_url; the alerter is not carried over")
        converter.not_carried(name)
        return _Built([], ())
    message: dict[str, Any] = {}
    channels = settings.get("slack_channel_override")
    if channels:
        message["to"] = [channels] if isinstance(channels, str) else list(channels)
        consumed.add("slack_channel_override")
    if isinstance(settings.get("slack_username_override"), str):
        message["from"] = settings["slack_username_override"]
        consumed.add("slack_username_override")
    for key in ("slack_icon_url_override", "slack_emoji_override"):
        if isinstance(settings.get(key), str):
            message.setdefault("icon", settings[key])
            consumed.add(key)
    base: dict[str, Any] = {}
    _http_settings(converter, settings, "slack", base, consumed)
    overrides = {"message": message} if message else {}
    items = [({"type": "slack", "url": converter.secret(env_prefix, "slack_webhook_url", url), **base}, overrides,
              consumed) for url in urls]
    return _Built(items, consumed)


def _opsgenie(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """ElastAlert2's OpsGenie alerter uses the Alert API v2: our connector's mode alert_v2."""

    key = settings.get("opsgenie_key")
    if not isinstance(key, str):
        converter.out.notes.append("opsgenie: no opsgenie_key; the alerter is not carried over")
        converter.not_carried(name)
        return _Built([], ())
    consumed = {"opsgenie_key"}
    connector: dict[str, Any] = {"type": "opsgenie", "api_key": converter.secret(env_prefix, "opsgenie_key", key),
                                 "mode": "alert_v2"}
    address = settings.get("opsgenie_addr")
    if isinstance(address, str):
        parts = urlsplit(address)
        if parts.scheme and parts.netloc:
            connector["api_url"] = f"{parts.scheme}://{parts.netloc}"
            consumed.add("opsgenie_addr")
    _http_settings(converter, settings, "opsgenie", connector, consumed)
    action: dict[str, Any] = {}
    priority = settings.get("opsgenie_priority")
    if isinstance(priority, str):
        action["priority"] = priority
        consumed.add("opsgenie_priority")
    tags = settings.get("opsgenie_tags")
    if isinstance(tags, list):
        action["tags"] = [_literal(str(t)) for t in tags]
        consumed.add("opsgenie_tags")
    for source, target in (("opsgenie_entity", "entity"), ("opsgenie_alias", "alias"),
                           ("opsgenie_description", "description"), ("opsgenie_source", "source")):
        if isinstance(settings.get(source), str):
            action[target] = _literal(settings[source])
            consumed.add(source)
    subject = settings.get("opsgenie_subject")
    if isinstance(subject, str):
        action["message"] = converter.format_template("opsgenie_subject", subject,
                                                      settings.get("opsgenie_subject_args"), None)
        consumed.update({"opsgenie_subject", "opsgenie_subject_args"})
    details = settings.get("opsgenie_details")
    if isinstance(details, Mapping):
        action["details"] = {str(k): (_with_macro("{{ " + converter.value_expression(str(v["field"])) + " }}")
                                      if isinstance(v, Mapping) and "field" in v else _literal(str(v)))
                             for k, v in details.items()}
        consumed.add("opsgenie_details")
    return _Built([(connector, action, consumed)], consumed)


def _start_webhook_alerter(converter: _Converter, name: str, settings: dict, kind: str,
                           texts: Mapping[str, str]) -> tuple[list[str], dict, dict, set] | None:
    """``(URLs, connector HTTP settings, action overrides, consumed options)`` of an alerter that posts
    to ``<kind>_webhook_url`` (one or a list); the string options of ``texts`` become the action's
    literal texts (``{option: action key}``). None, with a note and the alerter listed as not
    carried, when it has no URL."""
    urls = _urls(settings.get(f"{kind}_webhook_url"))
    if not urls:
        converter.out.notes.append(f"{name}: no {kind}_webhook_url; the alerter is not carried over")
        converter.not_carried(name)
        return None
    consumed = {f"{kind}_webhook_url"}
    base: dict[str, Any] = {}
    _http_settings(converter, settings, kind, base, consumed)
    action: dict[str, Any] = {}
    for option, target in texts.items():
        if isinstance(settings.get(option), str):
            action[target] = _literal(settings[option])
            consumed.add(option)
    return urls, base, action, consumed


def _per_url(converter: _Converter, env_prefix: str, kind: str, urls: list[str], base: dict,
             use: tuple[dict, set]) -> _Built:
    """One connector of type ``kind`` per URL of ``<kind>_webhook_url`` (a secret) with the ``base``
    settings, each used by an action with the same ``use`` (overrides, consumed options)."""
    action, consumed = use
    items = [({"type": kind, "url": converter.secret(env_prefix, f"{kind}_webhook_url", url), **base}, action, consumed)
             for url in urls]
    return _Built(items, consumed)


def _choice(converter: _Converter, option: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        converter.fail((option,), f"{option}: expected one of {', '.join(allowed)}, found {_describe(value)}",
                       at_value=True)
    return value


def _pagerduty(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """ElastAlert2's PagerDuty alerter → a pagerduty connector (always the Events API v2) and an action
    with its client, event type, dedup key, payload fields and custom details
    (docs/semantics.md#elastalert2-pagerduty-alerter)."""
    key = settings.get("pagerduty_service_key")
    if not isinstance(key, str):
        converter.out.notes.append("pagerduty: no pagerduty_service_key; the alerter is not carried over")
        converter.not_carried(name)
        return _Built([], ())
    consumed = {"pagerduty_service_key", "pagerduty_api_version", "pagerduty_v2_payload_include_all_info"}
    connector: dict[str, Any] = {"type": "pagerduty",
                                 "routing_key": converter.secret(env_prefix, "pagerduty_service_key", key)}
    _http_settings(converter, settings, "pagerduty", connector, consumed)
    if settings.get("pagerduty_api_version", "v1") != "v2":
        converter.out.notes.append("pagerduty: ElastAlert2 posts to the Events API v1 unless pagerduty_api_version "
                                   "is v2; the converted connector uses the Events API v2 (same routing key)")
    action: dict[str, Any] = {}
    if isinstance(settings.get("pagerduty_client_name"), str):
        action["client"] = _literal(settings["pagerduty_client_name"])
        consumed.add("pagerduty_client_name")
    if "pagerduty_event_type" in settings:
        action["event_type"] = _choice(converter, "pagerduty_event_type", settings["pagerduty_event_type"],
                                       ("trigger", "acknowledge", "resolve"))
        consumed.add("pagerduty_event_type")
    if "pagerduty_v2_payload_severity" in settings:
        severities = ("critical", "error", "warning", "info")
        action["severity"] = _choice(converter, "pagerduty_v2_payload_severity",
                                     settings["pagerduty_v2_payload_severity"], severities)
        consumed.add("pagerduty_v2_payload_severity")
    for option, target in (("pagerduty_incident_key", "incident_key"), ("pagerduty_v2_payload_class", "class"),
                           ("pagerduty_v2_payload_component", "component"), ("pagerduty_v2_payload_group", "group"),
                           ("pagerduty_v2_payload_source", "source")):
        if isinstance(settings.get(option), str) and settings[option]:
            action[target] = converter.format_template(option, settings[option], settings.get(f"{option}_args"), None)
            consumed.update({option, f"{option}_args"})
    if "incident_key" not in action:
        consumed.add("pagerduty_incident_key")
        converter.out.notes.append("pagerduty: without pagerduty_incident_key ElastAlert2 opens a new incident per "
                                   "alert; the converted action keys events by rule and group (<rule>[:<group>]), so "
                                   "repeats update one incident, and on: [firing, recovered] resolves it")
    details = settings.get("pagerduty_v2_payload_custom_details")
    if isinstance(details, Mapping):
        action["custom_details"] = {
            str(k): _with_macro(f"{{{{ {FIELD_MACRO_NAME}({_string(str(v))}, {_string(str(v))}) }}}}")
            for k, v in details.items()}
        consumed.add("pagerduty_v2_payload_custom_details")
    if settings.get("pagerduty_v2_payload_include_all_info") is False:
        converter.out.notes.append("pagerduty: pagerduty_v2_payload_include_all_info is false, but the converted "
                                   "action still sends the alert message as custom_details.message")
    return _Built([(connector, action, consumed)], consumed)


def _ms_teams(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """ElastAlert2's Microsoft Teams alerter → an ms_teams connector per webhook URL; the card's title
    and text are the rule's title and message (docs/semantics.md#elastalert2-microsoft-teams-alerter)."""
    started = _start_webhook_alerter(converter, name, settings, "ms_teams",
                                     {"ms_teams_alert_summary": "summary", "ms_teams_alert_title": "title"})
    if started is None:
        return _Built([], ())
    urls, base, action, consumed = started
    color = settings.get("ms_teams_theme_color")
    if color is not None:  # '' is ElastAlert2's "no colour"
        if color != "" and not (isinstance(color, str) and re.fullmatch(r"#?[0-9A-Fa-f]{6}", color)):
            converter.fail(("ms_teams_theme_color",), f"ms_teams_theme_color: expected a hex colour such as ff0000, "
                                                      f"found {_describe(color)}", at_value=True)
        if color:
            action["theme_color"] = color
        consumed.add("ms_teams_theme_color")
    if isinstance(settings.get("ms_teams_alert_fixed_width"), bool):
        if settings["ms_teams_alert_fixed_width"]:
            action["fixed_width"] = True
        consumed.add("ms_teams_alert_fixed_width")
    return _per_url(converter, env_prefix, "ms_teams", urls, base, (action, consumed))


def _discord(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """ElastAlert2's Discord alerter → a discord connector; the message is the rule's title between
    two emoji and an embed with the rule's message (docs/semantics.md#elastalert2-discord-alerter)."""
    started = _start_webhook_alerter(converter, name, settings, "discord",
                                     {"discord_emoji_title": "emoji_title", "discord_embed_footer": "embed_footer",
                                      "discord_embed_icon_url": "embed_icon_url"})
    if started is None:
        return _Built([], ())
    urls, base, action, consumed = started
    color = settings.get("discord_embed_color")
    if color is not None:
        if isinstance(color, bool) or not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
            converter.fail(("discord_embed_color",), f"discord_embed_color: expected a colour number from 0 to "
                                                     f"0xFFFFFF, found {_describe(color)}", at_value=True)
        action["embed_color"] = color
        consumed.add("discord_embed_color")
    return _per_url(converter, env_prefix, "discord", urls, base, (action, consumed))


def _debug(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """debug logs the alert: a logging connector at info level."""
    return _Built([({"type": "logging", "level": "info", "category": "elastalert.debug"}, {}, set())], set())


def _addresses(value: Any) -> list[str] | None:
    """An ElastAlert2 address option (a string, comma-separated or not, or a list) as a list."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value if item.strip()]
    return None


def _email(converter: _Converter, name: str, settings: dict, env_prefix: str) -> _Built:
    """The email alerter: an email connector (smtp_host, smtp_port, smtp_ssl, from_addr, the
    credentials of smtp_auth_file as ${ENV} references) and an action with the recipients."""
    to = _addresses(settings.get("email"))
    if not to:
        converter.out.notes.append("email: no email (recipients); the alerter is not carried over")
        converter.not_carried(name)
        return _Built([], ())
    consumed = {"email"}
    host = settings.get("smtp_host")
    connector: dict[str, Any] = {"type": "email", "host": host if isinstance(host, str) and host else "localhost"}
    if "smtp_host" in settings:
        consumed.add("smtp_host")
    else:
        converter.out.notes.append("email: no smtp_host; ElastAlert2's default, localhost, is written out")
    ssl_ = settings.get("smtp_ssl") is True
    if "smtp_ssl" in settings:
        consumed.add("smtp_ssl")
    connector["security"] = "tls" if ssl_ else "starttls"
    port = settings.get("smtp_port")
    if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
        connector["port"] = port
        consumed.add("smtp_port")
    else:
        connector["port"] = 465 if ssl_ else 25
    if not ssl_:
        converter.out.notes.append(
            "email: ElastAlert2 upgrades to TLS only when the server offers STARTTLS, without checking its "
            "certificate; the converted connector requires STARTTLS and a valid certificate (security: starttls; "
            "set security: none for a server without TLS, verify: false or ca_file for a private one)")
    sender = settings.get("from_addr")
    if isinstance(sender, str) and sender:
        connector["from"] = sender
        consumed.add("from_addr")
    else:
        converter.out.notes.append("email: no from_addr in the rule (ElastAlert2 takes it from config.yaml); the "
                                   "connector sends from watcher@<this host's name> until you set its 'from'")
    auth_file = settings.get("smtp_auth_file")
    if isinstance(auth_file, str) and auth_file:
        consumed.add("smtp_auth_file")
        user = converter.secret(env_prefix, "smtp_user", auth_file, note=False)
        password = converter.secret(env_prefix, "smtp_password", auth_file, note=False)
        connector.update(user=user, password=password)
        converter.out.notes.append(f"connectors: set {user[2:-1]} and {password[2:-1]} to the user and password in "
                                   f"{auth_file} (smtp_auth_file; secrets are not copied)")
    action: dict[str, Any] = {"to": to}
    for option, key in (("cc", "cc"), ("bcc", "bcc"), ("email_reply_to", "reply_to")):
        found = _addresses(settings.get(option))
        if found:
            action[key] = found
            consumed.add(option)
    if settings.get("email_format") == "html":
        action["body"] = {"html": "{{ message }}"}
        consumed.add("email_format")
    return _Built([(connector, action, consumed)], consumed)


_ALERTER_BUILDERS = {"webhook": _webhook, "slack": _slack, "opsgenie": _opsgenie, "email": _email,
                     "logging": _debug, "pagerduty": _pagerduty, "ms_teams": _ms_teams, "discord": _discord}

# Which top-level options belong to an alerter (ElastAlert2 names them after it).
_SETTING_PREFIXES = {"post": ("http_post_",), "http_post": ("http_post_",), "post2": ("http_post2_",),
                     "http_post2": ("http_post2_",), "slack": ("slack_",), "opsgenie": ("opsgenie_",),
                     "email": ("email", "smtp_", "from_addr", "cc", "bcc"),
                     "debug": (), "pagerduty": ("pagerduty_",), "ms_teams": ("ms_teams_",), "discord": ("discord_",)}


def _belongs(alerter: str, key: str) -> bool:
    return any(key.startswith(prefix) for prefix in _SETTING_PREFIXES.get(alerter, ()))


FIELD_MACRO_NAME = "field"
FIELD_MACRO = ('{% macro field(name, default="<MISSING VALUE>") %}{{ hits[0][name] if hits and name in hits[0] else '
               '(hits[:1] | map(attribute=name, default=default) | first | default(default)) }}{% endmacro -%}')
"""``field("a.b")``: the newest document's field (literal dotted key first, then the nested path, as
ElastAlert2's lookup_es_key), else ``default``. Put on the template's first line, before the text."""


def _with_macro(template: str) -> str:
    """``template`` with :data:`FIELD_MACRO` in front when it calls ``field(…)``."""
    if f"{{{{ {FIELD_MACRO_NAME}(" not in template:
        return template
    return f"{FIELD_MACRO}\n{template}"


def _wrap(template: str, before: str, after: str) -> str:
    """``before + template + after``, the field macro (if any) kept in front."""
    head = FIELD_MACRO + "\n"
    if template.startswith(head):
        return head + before + template[len(head):] + after
    return before + template + after


TOP_COUNTS = ("{% for field, counts in top_counts.items() %}\n\n{{ field }}:"
              "{% for item in counts %}\n{{ item.key }}: {{ item.count }}{% endfor %}{% endfor %}")
"""ElastAlert2's top counts block (``field:`` then ``value: count`` lines), in Jinja2."""


# ---- connectors file -------------------------------------------------------------------------------

def merge_connectors(existing: str | None, connectors: Mapping[str, dict], file: str = "connectors.yaml"
                     ) -> tuple[str, list[str]]:
    """The text of a connectors file with ``connectors`` added.

    Args:
        existing: the file's current text (None or blank: a new file).
        connectors: ``{name: body}`` to add; an entry of the same name is replaced.
        file: the file's name, for messages.

    Returns:
        ``(text, replaced names)``; comments and other connectors of ``existing`` are kept.

    Raises:
        ConversionError: ``existing`` is not YAML or not a mapping with ``connectors``.
    """

    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 120
    data = None
    if existing and existing.strip():
        try:
            data = load_text(existing, file).data
        except SourceError as error:
            raise ConversionError(error.file, error.line, error.column, error.message) from None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, Mapping):
        raise ConversionError(file, 1, 1, "expected a connectors file (a mapping with the key 'connectors')")
    entries = data.get("connectors")
    if entries is None:
        entries = data["connectors"] = CommentedMap()
    if not isinstance(entries, Mapping):
        raise ConversionError(file, 1, 1, "connectors: expected a mapping of connector name to connector")
    replaced = [name for name in connectors if name in entries]
    for name, body in connectors.items():
        entries[name] = body
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue(), replaced


# ---- small helpers ---------------------------------------------------------------------------------

def _registered_types() -> tuple[str, ...]:
    return TYPES


def _params_of(rule_type: str) -> frozenset[str]:
    """The params our type accepts: its Params fields when registered, else the documented ones."""

    if rule_type in REGISTRY:
        return frozenset(REGISTRY.get(rule_type).Params.model_fields)
    return frozenset(DOCUMENTED_PARAMS[rule_type])


def _plain(value: Any) -> Any:
    """Plain values; a ``!file path`` tagged scalar becomes ElastAlert2's ``"!file path"`` string."""
    tag = getattr(getattr(value, "tag", None), "value", None) or getattr(value, "tag", None)
    if isinstance(tag, str) and tag == "!file":
        return f"!file {getattr(value, 'value', '')}"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return plain(value)


def _string(text: str) -> str:
    """A Jinja2 string literal."""
    return json.dumps(text, ensure_ascii=False)


def _literal(text: str) -> str:
    """Text shown as is by Jinja2 (braces and ``{%``/``{#`` escaped)."""
    if not text:
        return ""
    if "{" in text:
        return "{{ " + _string(text) + " }}"
    return text


def _describe(value: Any) -> str:
    return describe(value)


def _compact(value: Any) -> str:
    """A query clause on one line, for notes: ``{"term": {"_type": "logs"}}``."""
    return json.dumps(value, ensure_ascii=False, default=str)
