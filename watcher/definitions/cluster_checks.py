"""Checks of loaded rules against the cluster they run on: the fields a rule groups by must be
fields the cluster can aggregate on (docs/correctness.md#group-keys-the-cluster-cannot-aggregate),
and the document fields its templates read should be fields the indices map
(docs/correctness.md#template-values-the-data-does-not-have).

A ``group_by`` on a ``text`` field fails every run with "Fielddata is disabled"; one on a field no
index maps (inside an object with ``enabled: false``, or misspelt) puts every document in the
``_missing`` group, so different keys look like one. Before a rule runs, its ``group_by`` is looked
up in the field capabilities of the indices it searches: an aggregatable field is kept; a ``text``
field with an aggregatable ``.keyword`` sub-field is replaced by it (and a note says so); anything
else makes the rule a problem of its file, like a bad definition. When no index matches the rule's
pattern yet, nothing can be checked and the rule is kept as written.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from watcher.definitions.compile import compile_rule
from watcher.definitions.load import LoadResult
from watcher.es.fields import FieldCaps, field_capabilities
from watcher.model.problems import Problem
from watcher.model.source import SourceError, load_file
from watcher.model.watch import Watch
from watcher.templates.jinja import MISSING_VALUE, document_fields

KEYWORD_SUFFIX = ".keyword"


@dataclasses.dataclass(frozen=True)
class FieldNote:
    """A rule whose ``group_by`` was resolved to another field: ``watch_id``, ``written``, ``used``."""

    watch_id: str
    written: str
    used: str

    def __str__(self) -> str:
        return (f"{self.watch_id}: group_by {self.written} is a text field; grouping by its aggregatable "
                f"sub-field {self.used}")


def resolve_group_fields(result: LoadResult, es: Any) -> list[FieldNote]:
    """Check the ``group_by`` of every rule in ``result`` against the cluster (one field capabilities
    request per distinct index list); resolved rules are recompiled in place, refused ones move from
    ``result.watches`` to ``result.problems`` (with the file, line and column of ``group_by``).

    Returns:
        One note per rule now grouping by another field than written.

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    by_indices: dict[tuple[str, ...], list[Watch]] = defaultdict(list)
    for watch in result.watches.values():
        if watch.rule is not None and watch.rule.group_by:
            by_indices[tuple(watch.rule.index)].append(watch)
    notes = []
    for indices, watches in by_indices.items():
        fields = {w.rule.group_by for w in watches} | {w.rule.group_by + KEYWORD_SUFFIX for w in watches}
        caps = field_capabilities(es, indices, fields)
        if not caps.indices:
            continue
        for watch in watches:
            written = watch.rule.group_by
            used, problem = _resolve(caps, written, indices)
            if problem is not None:
                del result.watches[watch.id]
                result.problems.append(_problem_at(watch, problem))
                if watch.file in result.files_ok:
                    result.files_ok.remove(watch.file)
                if watch.file not in result.files_bad:
                    result.files_bad.append(watch.file)
            elif used != written:
                spec = watch.rule.model_copy(update={"group_by": used})
                spec._trigger, spec._file, spec._source, spec._params = (watch.rule.trigger, watch.rule.file,
                                                                          watch.rule.source, watch.rule._params)
                result.watches[watch.id] = compile_rule(spec, watch.file, result.connectors)
                notes.append(FieldNote(watch.id, written, used))
    return notes


def _resolve(caps: FieldCaps, field: str, indices: tuple[str, ...]) -> tuple[str, str | None]:
    """``(field to group by, None)`` or ``(field, why the cluster cannot group by it)``."""
    where = ", ".join(indices)
    if caps.aggregatable(field):
        return field, None
    if caps.aggregatable(field + KEYWORD_SUFFIX):
        return field + KEYWORD_SUFFIX, None
    if caps.mapped(field):
        return field, (f"the cluster cannot group by {field}: it is a {'/'.join(caps.types(field))} field in {where}, "
                       f"not aggregatable, and has no aggregatable {field}{KEYWORD_SUFFIX} sub-field; group by a "
                       f"keyword field")
    return field, (f"the cluster cannot group by {field}: no index of {where} maps it (not indexed — e.g. "
                   f"inside an object with enabled: false — or misspelt), so every document would fall in "
                   f"the _missing group")


def _problem_at(watch: Watch, message: str) -> Problem:
    """The problem at ``group_by`` in the rule's file (line 1 when the file cannot be read again)."""
    line, column = 1, 1
    try:
        line, column = load_file(watch.file).value_position(("group_by",))
    except (OSError, SourceError):
        pass
    return Problem(watch.file, line, column, "group_by", message)


@dataclasses.dataclass(frozen=True)
class FieldWarning:
    """A rule template reads a document field that no index the rule searches maps."""

    watch_id: str
    file: str
    template: str
    field: str
    indices: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.file}: {self.watch_id}: {self.template} reads hits[].{self.field}, which no index of "
                f"{', '.join(self.indices)} maps; unless the documents carry it anyway, it renders as "
                f"{MISSING_VALUE}")


def template_field_warnings(result: LoadResult, es: Any) -> list[FieldWarning]:
    """Warnings for the document fields rule templates read (``hits[0].clientip``…) that the
    mappings of the rule's indices do not have (one field capabilities request per index list).
    Rules whose indices match nothing yet are not checked.

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    wanted: dict[tuple[str, ...], list[tuple[Watch, str, str]]] = defaultdict(list)
    for watch in result.watches.values():
        spec = watch.rule
        if spec is None:
            continue
        for where, source in _templates(spec):
            for field in sorted(document_fields(source)):
                wanted[tuple(spec.index)].append((watch, where, field))
    out = []
    for indices, items in wanted.items():
        caps = field_capabilities(es, indices, {field for _, _, field in items})
        if not caps.indices:
            continue
        for watch, where, field in items:
            if not caps.mapped(field):
                out.append(FieldWarning(watch.id, watch.file, where, field, indices))
    return out


def _templates(spec: Any) -> list[tuple[str, str]]:
    """``(where, template)`` of every Jinja2 template of a rule: title, message, the recovery
    wording and the string values of its actions' overrides."""
    out = [(name, getattr(spec, name)) for name in ("title", "message", "recovered_title", "recovered_message")
           if getattr(spec, name)]

    def walk(where: str, value: Any) -> None:
        if isinstance(value, str):
            out.append((where, value))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{where}.{key}", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{where}[{index}]", item)

    for index, action in enumerate(spec.actions):
        walk(f"actions[{index}]", action.overrides)
    return out
