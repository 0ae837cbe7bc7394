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
watcher-semantics §1.7 index; x-pack/plugin/watcher/.../actions/index/ExecutableIndexAction.java).
Documents go through the Elasticsearch client of the run (``services.es``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import pydantic

from watcher.connectors.webhook import Seconds, StrictModel
from watcher.model.problems import Reader
from watcher.engine.delivery import IndexRequest, Outcome

TYPE = "index"
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


def parse(reader: Reader, body: Any, path) -> Config | None:
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
