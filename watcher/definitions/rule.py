"""The YAML rule format: one rule per file, validated into a :class:`RuleSpec`.

The format mirrors Kibana's Elasticsearch-query rule (docs/semantics.md#kibana-es-query-rule: index, time
field, window, query, group by, threshold on the count or on a metric) plus the connector flow of
docs/semantics.md#kibana-rule-actions (actions name a connector and override its parameters), with
ElastAlert2's names where users know them (``filter``, ``realert``-like ``throttle``). A rule compiles to a
watch (:mod:`watcher.definitions.compile`); the engine applies ``group_by`` fan-out, the ``filter`` step and
per-group throttle from the :class:`RuleSpec` kept on ``Watch.rule``.

Validation reports every problem with its position (``file:line:column: field.path: message``):
pydantic validates the shapes (validators raise ``ValueError("expected …, found …")``), the
schedule goes through :func:`watcher.schedule.parse_rule_schedule`, ``compare``/``array_compare``
conditions through the condition registry, action overrides through the connector's action type,
and templates are checked for Jinja2 syntax at the template's own line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

from watcher.definitions.compile import jinja_template, with_rule_defaults
from watcher.definitions.connectors import INVALID_CONNECTOR
from watcher.definitions.watch import looks_like_watch, registries
from watcher.engine.ruletypes import REGISTRY
from watcher.model.problems import Problem, Reader, did_you_mean, format_path
from watcher.model.rule import DEFAULT_SCHEDULE, THRESHOLD, RuleSpec
from watcher.model.source import Document, plain
from watcher.schedule import parse_rule_schedule
from watcher.templates.jinja import check_syntax


def looks_like_rule(data: Any) -> bool:
    """True for a mapping that is not a watch (the loader treats every other mapping as a rule)."""

    return isinstance(data, Mapping) and not looks_like_watch(data)


def parse_rule(document: Document, reader: Reader | None = None, connectors: Mapping | None = None, *,
               connectors_file: str | None = None) -> RuleSpec | None:
    """Validate one rule document; record every problem on ``reader``.

    Args:
        document: the positioned file (YAML or JSON).
        reader: collects problems (a new one if None).
        connectors: ``{name: Connector}`` from connectors.yaml; None skips the connector checks.
        connectors_file: where the connectors came from (named in unknown-connector messages).

    Returns:
        The spec (with ``trigger``, ``file``, ``source`` set), or None when problems were recorded.
    """
    reader = reader or Reader(document)
    data = document.data
    if reader.mapping((), data, "a rule (a mapping with name, index, window, type or condition, actions)") is None:
        return None
    before = len(reader.problems)
    _hint_elastalert(reader, data)
    spec = reader.validate(RuleSpec, data, ())
    trigger = _parse_schedule(reader, data)
    if data.get("calendar_window") is True and trigger is not None and trigger.kind == "interval":
        reader.problem(("calendar_window",), "a calendar window needs a cron schedule (it runs from the previous fire "
                                             "time); an interval schedule searches its fixed window", at_value=True)
    _check_condition(reader, data.get("condition"))
    params = _check_type(reader, data)
    for key in ("title", "message", "recovered_title", "recovered_message"):
        if isinstance(data.get(key), str):
            check_template(reader, (key,), data[key], known=ALERT_VARIABLES)
    actions = data.get("actions")
    if isinstance(actions, Sequence) and not isinstance(actions, str):
        for index, action in enumerate(actions):
            _check_action(reader, action, ("actions", index), connectors, connectors_file)
    if spec is None or len(reader.problems) > before:
        return None
    spec._trigger, spec._file, spec._source = trigger, document.file, plain(data)
    spec._params = params
    return spec


def _check_type(reader: Reader, data: Mapping):
    """The type's params (validated at ``params``) and its cross-field checks; None for threshold
    rules or when there were problems. ``condition`` belongs to threshold rules only."""
    rule_type = data.get("type", THRESHOLD)
    if not isinstance(rule_type, str) or rule_type == THRESHOLD:
        if "params" in data:
            reader.problem(("params",), "params belong to rule types other than threshold "
                                        "(set type: frequency, spike, …) — a threshold rule uses condition")
        return None

    if rule_type not in REGISTRY:
        return None  # pydantic reported the unknown type
    if "condition" in data:
        reader.problem(("condition",), f"condition belongs to threshold rules; a rule of type {rule_type} "
                                       f"fires as its params say")
    module = REGISTRY.get(rule_type)
    params = reader.validate(module.Params, data.get("params") or {}, ("params",))
    if params is None:
        return None
    spec_view = _SpecView(data, reader.document.file)
    for path, message in module.check(spec_view, params):
        reader.problem(path, message)
    return params


class _SpecView:
    """Attribute access to a rule's raw fields for type checks run before the spec exists."""

    def __init__(self, data: Mapping, file: str = ""):
        self._data = data
        self.file = file  # the rule file: types resolve paths (blacklist '!file PATH') against its folder

    def __getattr__(self, name: str) -> Any:
        return plain(self._data.get(name))


# Options only an ElastAlert2 rule file has (our names differ: window, group_by, params, actions…).
_ELASTALERT_KEYS = ("alert", "timeframe", "num_events", "query_key", "buffer_time", "run_every", "alert_text",
                    "alert_subject", "timestamp_field", "use_count_query", "compare_key", "spike_height",
                    "spike_type", "es_host", "is_enabled", "query_delay")


def _hint_elastalert(reader: Reader, data: Mapping) -> None:
    """One problem that says what to do when the file is an ElastAlert2 rule."""
    found = [key for key in _ELASTALERT_KEYS if key in data]
    if "alert" in found or len(found) >= 2:
        reader.problem((), f"this looks like an ElastAlert2 rule ({', '.join(found)}); convert it with "
                           f"`watcher convert {reader.document.file} --from elastalert`")


def _parse_schedule(reader: Reader, data: Mapping):
    return parse_rule_schedule(reader, data.get("schedule", DEFAULT_SCHEDULE), ("schedule",), None)


def _check_condition(reader: Reader, condition: Any) -> None:
    """Watcher ``compare``/``array_compare`` conditions are checked by the condition registry."""
    if not isinstance(condition, Mapping) or len(condition) != 1:
        return
    kind = next(iter(condition))
    if kind in ("compare", "array_compare") and isinstance(condition[kind], Mapping):
        registries()["condition"].parse(reader, condition, ("condition",))


def _check_action(reader: Reader, action: Any, path: tuple, connectors: Mapping | None,
                  connectors_file: str | None) -> None:
    """Connector known (did-you-mean otherwise), overrides valid for its type, templates parse."""
    if not isinstance(action, Mapping):
        return  # pydantic reported it
    for key, value in action.items():
        if key not in ("connector", "on"):
            _check_templates(reader, (*path, key), value)
    name = action.get("connector")
    if connectors is None or not isinstance(name, str) or not name.strip():
        return

    if connectors.get(name) is INVALID_CONNECTOR:
        reader.problem((*path, "connector"), f"connector {name!r} has problems in "
                                             f"{connectors_file or 'the connectors file'} (reported there)", at_value=True)
        return
    if name not in connectors:
        where = f" in {connectors_file}" if connectors_file else ""
        if connectors:
            message = (f"unknown connector {name!r}{did_you_mean(name, connectors)}; "
                       f"connectors defined{where}: {', '.join(sorted(connectors))}")
        else:
            message = f"unknown connector {name!r}; no connectors are defined{where or ' (no connectors file)'}"
        reader.problem((*path, "connector"), message, at_value=True)
        return

    actions = registries()["action"]
    connector_type = getattr(connectors[name], "type", None)
    if connector_type in actions:
        # Checked in compiled form (templates as {source, lang: jinja}); positions still come from
        # the document, since the reader locates problems by path.

        written = {key: plain(value) for key, value in action.items() if key != "on"}
        merged = with_rule_defaults(connectors[name], written)
        body = {key: (value if key == "connector" else jinja_template(value)) for key, value in merged.items()}
        actions.get(connector_type).parse(reader, body, path)


def _check_templates(reader: Reader, path: tuple, value: Any) -> None:
    if isinstance(value, str):
        check_template(reader, path, value, known=ACTION_VARIABLES)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_templates(reader, (*path, key), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_templates(reader, (*path, index), item)


# The Jinja2 variables of rule templates (watcher.engine.rules.RuleAlerts.variables): title and
# message see the alert's facts; actions also see the rendered title and message.
ALERT_VARIABLES = frozenset({"rule", "group", "count", "value", "hits", "dropped", "window", "ctx", "details",
                             "status", "fired_for", "top_counts", "matches", "summary_table"})
ACTION_VARIABLES = ALERT_VARIABLES | {"title", "message", "alert"}


def check_template(reader: Reader, path: tuple, source: str, known: frozenset[str] | None = None) -> bool:
    """Record a Jinja2 problem at the template's own line (file line + template line − 1): a syntax
    error, an unknown filter, or (with ``known``) a variable rule templates do not have.

    Returns True when the template is fine.
    """

    error = check_syntax(source, known)
    if error is None:
        return True
    template_line, message = error
    line, column = reader.document.value_position(path)
    if isinstance(source, (LiteralScalarString, FoldedScalarString)):
        line += template_line  # a block scalar's text starts on the line after "|" or ">"
        column = _indent(reader.document.text, line) or column
    elif template_line > 1:
        line += template_line - 1
        column = _indent(reader.document.text, line) or column
    reader.problems.append(Problem(reader.document.file, line, column, format_path(path), message))
    return False


def _indent(text: str, line: int) -> int | None:
    """1-based column of the first non-blank character of ``line`` in ``text``."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    content = lines[line - 1]
    return len(content) - len(content.lstrip()) + 1

