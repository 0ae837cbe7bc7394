"""Index connector: an Elasticsearch index (or alias / data stream) to write documents to.

Configuration (connectors.yaml)::

    alerts-index:
      type: index
      index: alerts-history         # index, alias or data stream (date math allowed)
      op_type: index                # index | create (create for data streams)
      refresh: wait_for             # true | false | wait_for
      execution_time_field: '@timestamp'
      timeout: 60s

An index action with ``connector: alerts-index`` takes these as defaults (Watcher's index action,
docs/semantics.md#index-action; x-pack/plugin/watcher/.../actions/index/ExecutableIndexAction.java).
Documents go through the Elasticsearch client of the run (``services.es``).

The action (a watch's ``index`` action, or a rule action naming a index connector):

The ``index`` action: index the payload into Elasticsearch.

Body (docs/semantics.md#index-action;
x-pack/plugin/watcher/.../actions/index/{IndexAction,ExecutableIndexAction}.java): ``index``
(required unless every document carries ``_index``), ``doc_id``, ``op_type`` (index|create),
``execution_time_field``, ``timeout``/``timeout_in_millis`` (60 s), ``refresh``
(true|false|wait_for), ``dynamic_name_timezone`` (accepted; Elasticsearch resolves date math in
index names in UTC), and our ``connector`` (an index connector giving the defaults).

Documents (docs/semantics.md#index-documents): the payload; when it has ``_doc``, a map is the document and a
list of maps is indexed in bulk. ``_index``/``_id`` keys are removed from each document and used as its
index/id; setting one of them together with the action's ``index``/``doc_id`` is an error, as is ``doc_id``
with a bulk list. ``execution_time_field`` adds the execution time (ISO, ms, UTC).

Result ``{"index": {"response": {"created", "result", "id", "version", "index"}}}`` (bulk: a list);
simulated ``{"index": {"request": {"index", "doc_id"?, "refresh"?, "source"}}}`` and, for bulk,
Watcher's ``{"index": "", "doc_id": "", "source": [{"_id", "_index"}, …]}``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.destinations.common import check_keys, connector_for, parse_connector_name
from watcher.destinations.webhook import Seconds, StrictModel
from watcher.model.problems import Reader
from watcher.model.requests import IndexRequest, Outcome
from watcher.model.schema_parts import CONNECTOR_REF, TIME_VALUE
from watcher.model.source import plain
from watcher.support.datemath import format_iso_millis
from watcher.support.durations import DurationError, parse_time_value

# ---- the connector (connectors.yaml) ------------------------------------------------------------

TYPE = "index"
ACTION_SCHEMA = {"type": "object", "properties": {
    "index": {"type": "string"}, "doc_id": {"type": "string"}, "op_type": {"enum": ["index", "create"]},
    "execution_time_field": {"type": "string"}, "timeout": TIME_VALUE,
    "timeout_in_millis": {"type": "integer"}, "refresh": {"enum": [True, False, "true", "false", "wait_for"]},
    **CONNECTOR_REF}}
"""JSON Schema of the watch action body (editors; ``watcher validate`` stays the authority)."""
DEFAULT_TIMEOUT_S = 60.0  # xpack.watcher.actions.index.default_timeout / bulk.default_timeout


def refresh_value(value: Any) -> str | None:
    """``true``/``false`` (booleans or strings), ``wait_for`` or ``""`` (= true, as RefreshPolicy.parse)
    → ``"true"``/``"false"``/``"wait_for"``; None stays None.

    Raises:
        ValueError: anything else.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false", "wait_for", ""):
        return value.lower() or "true"
    raise ValueError(f"expected true, false or wait_for, found {value!r}")


class Config(StrictModel):
    """An index destination."""

    type: Literal["index"]
    index: str | None = None
    op_type: Literal["index", "create"] | None = None
    refresh: str | bool | None = None
    execution_time_field: str | None = None
    timeout: Seconds = DEFAULT_TIMEOUT_S

    @pydantic.field_validator("refresh")
    @classmethod
    def _refresh(cls, value: Any) -> str | None:
        return refresh_value(value)


def parse_connector(reader: Reader, body: Any, path) -> Config | None:
    """Validate a ``type: index`` connector body (problems go to ``reader``)."""
    return reader.validate(Config, body, path)


def build_request(config: Config | None, fields: Mapping[str, Any]) -> IndexRequest:
    """An :class:`IndexRequest`.

    Args:
        config: the connector, or None.
        fields: ``docs`` (``[{"index", "id", "source"}]``, indices already resolved by the action),
            ``bulk`` (bool), and optional overrides ``op_type``, ``refresh``, ``timeout_s``.
    """
    return IndexRequest(
        docs=tuple(fields["docs"]),
        op_type=fields.get("op_type") or (config.op_type if config else None) or "index",
        refresh=refresh_value(fields.get("refresh")) or (config.refresh if config else None),
        bulk=bool(fields.get("bulk")),
        timeout_s=fields.get("timeout_s") or (config.timeout if config else DEFAULT_TIMEOUT_S),
        connector_type=TYPE,
    )


def index_response(response: Mapping[str, Any]) -> dict:
    """Watcher's shape of one index response: ``{"created", "result", "id", "version", "index"}``
    (ExecutableIndexAction.indexResponseToXContent)."""
    return {"created": response.get("result") == "created", "result": response.get("result"),
            "id": response.get("_id"), "version": response.get("_version"), "index": response.get("_index")}


def interpret(response: Mapping[str, Any]) -> Outcome:
    """An index response → success; a bulk response (``items``) → a list of item results
    (failed items as ``{"failed": true, "message", "id", "index"}``) with status success,
    partial_failure or failure (all items failed), as ExecutableIndexAction.indexBulk."""
    if "items" not in response:
        return Outcome("success", response=index_response(response))
    items, failures = [], 0
    for entry in response["items"]:
        item = next(iter(entry.values()))
        if item.get("error"):
            failures += 1
            error = item["error"]
            message = error.get("reason") if isinstance(error, Mapping) else str(error)
            items.append({"failed": True, "message": message, "id": item.get("_id"), "index": item.get("_index")})
        else:
            items.append(index_response(item))
    if failures == 0:
        return Outcome("success", response=items)
    if failures == len(items):
        return Outcome("failure", response=items, reason=items[0]["message"])
    return Outcome("partial_failure", response=items)


# ---- the action --------------------------------------------------------------------------------

KEYS = ("index", "doc_id", "op_type", "execution_time_field", "timeout", "timeout_in_millis", "refresh",
        "dynamic_name_timezone", "connector")


@dataclasses.dataclass(frozen=True)
class IndexConfig:
    """A parsed index action; None fields fall back to the connector's, then Watcher's defaults."""

    index: str | None = None
    doc_id: str | None = None
    op_type: str | None = None
    execution_time_field: str | None = None
    timeout: dt.timedelta | None = None
    refresh: str | None = None
    connector: str | None = None


def parse(reader: Reader, body: Any, path) -> IndexConfig | None:
    """Validate a Watcher ``index`` action body (docs/semantics.md#index-action); problems go to
    ``reader``."""
    holder = check_keys(reader, body, path, KEYS, "an index action such as {index: alerts}")
    if holder is None:
        return None
    before = len(reader.problems)
    fields: dict[str, Any] = {}
    for key in ("index", "doc_id", "execution_time_field", "dynamic_name_timezone"):
        if key in holder:
            value = plain(holder[key])
            if isinstance(value, str) and value:
                fields[key] = value
            else:
                reader.expected((*path, key), "a non-empty string", value)
    fields.pop("dynamic_name_timezone", None)
    if "op_type" in holder:
        op_type = plain(holder["op_type"])
        if isinstance(op_type, str) and op_type.lower() in ("index", "create"):
            fields["op_type"] = op_type.lower()
        else:
            reader.expected((*path, "op_type"), "index or create", op_type)
    if "refresh" in holder:
        try:
            fields["refresh"] = refresh_value(plain(holder["refresh"]))
        except ValueError:
            reader.expected((*path, "refresh"), "true, false or wait_for", holder["refresh"])
    fields["timeout"] = _timeout(reader, holder, path)
    fields["connector"] = parse_connector_name(reader, holder, path)
    if len(reader.problems) > before:
        return None
    return IndexConfig(**fields)


def _timeout(reader: Reader, holder: Mapping, path) -> dt.timedelta | None:
    if "timeout" in holder and "timeout_in_millis" in holder:
        reader.problem((*path, "timeout_in_millis"), "give timeout or timeout_in_millis, not both")
        return None
    if "timeout_in_millis" in holder:
        millis = plain(holder["timeout_in_millis"])
        if isinstance(millis, int) and not isinstance(millis, bool) and millis > 0:
            return dt.timedelta(milliseconds=millis)
        reader.expected((*path, "timeout_in_millis"), "a whole number of milliseconds", millis)
        return None
    if "timeout" in holder:
        value = plain(holder["timeout"])
        try:
            if isinstance(value, str):
                return parse_time_value(value, field="timeout")
            raise DurationError("a duration such as 30s or 1m", value, field="timeout")
        except DurationError as error:
            reader.problem((*path, "timeout"), str(error), at_value=True)
    return None


def render(config: IndexConfig, run: Any, model: dict) -> IndexRequest:
    """The documents to index.

    Raises:
        LookupError: unknown connector. ValueError: ``_doc`` neither a map nor a list of maps,
        ``_index``/``_id`` together with ``index``/``doc_id``, ``doc_id`` with bulk, no index
        (Watcher's messages, with the watch id).
    """
    connector = connector_for(run, config.connector, TYPE)
    settings = connector.config if connector is not None else None
    index = config.index or (settings.index if settings else None)
    time_field = config.execution_time_field or (settings.execution_time_field if settings else None)
    watch_id = run.watch.id
    payload = model["ctx"]["payload"]
    data: Any = payload
    bulk = False
    if isinstance(payload, Mapping) and "_doc" in payload:
        data = payload["_doc"]
        if isinstance(data, (list, tuple)):
            bulk = True
        elif not isinstance(data, Mapping):
            raise ValueError(_not_maps(watch_id))
    if bulk and config.doc_id is not None:
        raise ValueError(f"could not execute action of watch [{watch_id}]. [doc_id] cannot be used with bulk [_doc] indexing")
    if not isinstance(data, (Mapping, list, tuple)):
        raise ValueError(_not_maps(watch_id))
    items = list(data) if bulk else [data]
    docs = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(_not_maps(watch_id))
        source = dict(item)
        doc_index = _take(source, "_index", index, "index", watch_id)
        doc_id = _take(source, "_id", config.doc_id, "id", watch_id)
        if time_field:
            source[time_field] = format_iso_millis(run.execution_time)
        if doc_index is None:
            raise ValueError(f"could not execute action of watch [{watch_id}]. no index given: set the action's "
                             "[index] or [ctx.payload._index] / [ctx.payload._doc._index]")
        docs.append({"index": doc_index, "id": doc_id, "source": source})
    fields = {"docs": docs, "bulk": bulk, "op_type": config.op_type, "refresh": config.refresh,
              "timeout_s": config.timeout.total_seconds() if config.timeout else None}
    return build_request(settings, fields)


def _take(source: dict, key: str, default: str | None, name: str, watch_id: str) -> str | None:
    # ExecutableIndexAction.getField: the key is removed; a non-null value conflicts with the action's
    if key not in source:
        return default
    value = source.pop(key)
    if value is None:
        return default
    if default is not None:
        raise ValueError(f"could not execute action of watch [{watch_id}]. [ctx.payload.{key}] or "
                         f"[ctx.payload._doc.{key}] were set together with action [{name}] field. Only set one of them")
    return str(value)


def _not_maps(watch_id: str) -> str:
    return (f"could not execute action of watch [{watch_id}]. failed to index payload data. "
            "[_data] field must either hold a Map or an List/Array of Maps")


def result(config: IndexConfig, rendered: IndexRequest, outcome: Outcome) -> dict:
    """``{"index": {"response": …}}``, or the simulated ``request`` (see the module docstring)."""
    if outcome.status == "simulated":
        request: dict[str, Any]
        if rendered.bulk:
            request = {"index": "", "doc_id": ""}
            source: Any = [{"_id": doc["id"], "_index": doc["index"]} for doc in rendered.docs]
        else:
            doc = rendered.docs[0]
            request = {"index": doc["index"]}
            if doc["id"] is not None:
                request["doc_id"] = doc["id"]
            source = doc["source"]
        if rendered.refresh is not None:
            request["refresh"] = rendered.refresh
        request["source"] = source
        return {"index": {"request": request}}
    if outcome.response is None:
        return {}
    return {"index": {"response": outcome.response}}
