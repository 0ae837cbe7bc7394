"""The "Watcher search request" shared by the search input and the search transform.

Parsing follows Watcher's ``WatcherSearchTemplateRequest`` (docs/semantics.md#search-input): ``indices``
(list or comma-separated string; date-math names such as ``<logs-{now/d}>`` are passed through and
resolved by Elasticsearch), ``search_type``, ``body`` or ``template``, ``indices_options`` and
``rest_total_hits_as_int``. Execution renders the body the way Watcher does — the body is turned
into an inline Mustache template and rendered in JSON-escaping mode with ``{ctx: …}`` (plus
``template.params``) as the model — then sends one ``_search`` and returns the response body.

Date math *inside* the body (``now-5m``, ``{{ctx.trigger.scheduled_time}}||-5m``) is resolved by
Elasticsearch, so ``now`` there is the cluster's wall clock at search time, exactly as in Watcher
(docs/semantics.md#date-math-and-now), not the run's ``execution_time``. Use
``{{ctx.trigger.scheduled_time}}`` for a window anchored to the schedule.

Sources: docs/semantics.md#search-input, docs/semantics.md#search-transform;
x-pack/plugin/watcher/.../support/search/{WatcherSearchTemplateRequest,WatcherSearchTemplateService}.java;
.../input/search/ExecutableSearchInput.java; .../support/XContentFilterKeysUtils.java.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from watcher.engine.run_warnings import check_search
from watcher.es.search_batch import batcher_for
from watcher.model.fields import parse_timeout
from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.templates.mustache import Template, TemplateSyntaxError, compile_template

SEARCH_TYPES = ("query_then_fetch", "dfs_query_then_fetch")
EXPAND_WILDCARDS = ("open", "closed", "hidden", "none", "all")
# Watcher's DEFAULT_INDICES_OPTIONS = IndicesOptions.lenientExpandOpen()
DEFAULT_INDICES_OPTIONS = {"expand_wildcards": ["open"], "ignore_unavailable": True, "allow_no_indices": True}
REQUEST_KEYS = ("indices", "types", "search_type", "body", "template", "indices_options", "rest_total_hits_as_int")
TEMPLATE_KEYS = ("source", "id", "params", "lang", "options")
INDICES_OPTIONS_KEYS = ("expand_wildcards", "ignore_unavailable", "allow_no_indices", "ignore_throttled")


@dataclasses.dataclass(frozen=True)
class SearchTemplate:
    """``request.template``: an inline Mustache ``source`` (text) or a stored template ``id``.

    ``params`` are merged over the ``{ctx: …}`` model when rendering.
    """

    source: str | None
    id: str | None
    params: dict
    body: dict  # the template object as written, echoed in the result's request


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    """A parsed ``request`` object.

    Attributes:
        indices: index names/patterns (empty = all indices), kept as written.
        search_type: ``query_then_fetch`` or ``dfs_query_then_fetch``.
        body: the query DSL as plain JSON (None when absent).
        template: the search template (wins over ``body`` when both are given, as in Watcher).
        indices_options: ``expand_wildcards`` (list), ``ignore_unavailable``, ``allow_no_indices``
            and optionally ``ignore_throttled``; Watcher's lenient defaults open/true/true.
        rest_total_hits_as_int: True (Watcher's default) → ``hits.total`` is an integer.
    """

    indices: tuple[str, ...] = ()
    search_type: str = "query_then_fetch"
    body: Any = None
    template: SearchTemplate | None = None
    indices_options: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_INDICES_OPTIONS))
    rest_total_hits_as_int: bool = True
    # ``body`` as JSON text and its compiled Mustache template, made once when the watch is loaded
    # rather than on every run (about 0.06 ms of an evaluation's 0.6 ms of CPU at 1,000 rules), and
    # held here because the shared template cache (4,096 entries) cannot hold 10,000 rules' bodies.
    # None when there is nothing to prepare or preparing fails: the run then does it and fails
    # with the same error as before (a template syntax error fails the run, not the load).
    body_source: str | None = dataclasses.field(default=None, init=False, repr=False, compare=False)
    body_template: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.body is None:
            return

        try:
            source = json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))
            template = Template(source) if "{{" in source else None
        except (TypeError, ValueError, TemplateSyntaxError):
            return
        object.__setattr__(self, "body_source", source)
        object.__setattr__(self, "body_template", template)


@dataclasses.dataclass(frozen=True)
class SearchSpec:
    """A parsed search input/transform body: the request, optional ``extract`` paths, the timeout."""

    request: SearchRequest
    extract: tuple[str, ...] | None
    timeout: dt.timedelta


def parse_search(reader: Reader, body: Any, path: Sequence[str | int], *, default_timeout: dt.timedelta,
                 allow_extract: bool) -> SearchSpec | None:
    """Parse ``{"request": {…}, "extract"?: […], "timeout"?|"timeout_in_millis"?}``.

    Args:
        reader: where problems go (file:line:column, field path, expected/found).
        body: the search input or transform body.
        path: where ``body`` sits in the document.
        default_timeout: 1 minute for the input, 30 seconds for the transform (Watcher docs).
        allow_extract: the input accepts ``extract``; the transform does not.

    ``dynamic_name_timezone`` is accepted and ignored: date-math index names are resolved by
    Elasticsearch in UTC.

    Returns:
        The spec, or None when problems were recorded.
    """
    allowed = ["request", "timeout", "timeout_in_millis", "dynamic_name_timezone"] + (["extract"] if allow_extract else [])
    holder = reader.check_keys(path, body, allowed, "a search object such as {request: {indices: [...], body: {...}}}")
    if holder is None:
        return None
    if "request" not in holder:
        reader.problem(path, "missing required field 'request'")
        return None
    request = parse_request(reader, holder["request"], (*path, "request"))
    extract = None
    if allow_extract and "extract" in holder:
        extract = parse_extract(reader, holder["extract"], (*path, "extract"))
    timeout = parse_timeout(reader, holder, path, "timeout", "timeout_in_millis", default_timeout)
    if request is None:
        return None
    return SearchSpec(request=request, extract=extract, timeout=timeout)


def parse_request(reader: Reader, value: Any, path: Sequence[str | int]) -> SearchRequest | None:
    """Parse a Watcher search ``request`` object; see :class:`SearchRequest`. None on problems."""
    request = reader.mapping(path, value, "a search request object such as {indices: [logs-*], body: {...}}")
    if request is None:
        return None
    before = len(reader.problems)
    for key in request:
        if key not in REQUEST_KEYS:
            reader.unknown_key(path, str(key), REQUEST_KEYS)
    fields: dict[str, Any] = {}
    if "indices" in request:
        fields["indices"] = _parse_indices(reader, request["indices"], (*path, "indices"))
    if "types" in request and plain(request["types"]) != []:
        reader.expected((*path, "types"), "an empty list (mapping types were removed)", request["types"])
    if "search_type" in request:
        search_type = plain(request["search_type"])
        if isinstance(search_type, str) and search_type.lower() in SEARCH_TYPES:
            fields["search_type"] = search_type.lower()
        else:
            reader.expected((*path, "search_type"), f"one of {', '.join(SEARCH_TYPES)}", search_type)
    if "body" in request:
        if reader.mapping((*path, "body"), request["body"], "a query DSL object such as {query: {...}}") is not None:
            fields["body"] = plain(request["body"])
    if "template" in request:
        fields["template"] = _parse_template(reader, request["template"], (*path, "template"))
    if "indices_options" in request:
        fields["indices_options"] = _parse_indices_options(reader, request["indices_options"], (*path, "indices_options"))
    if "rest_total_hits_as_int" in request:
        flag = plain(request["rest_total_hits_as_int"])
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if isinstance(flag, bool):
            fields["rest_total_hits_as_int"] = flag
        else:
            reader.expected((*path, "rest_total_hits_as_int"), "true or false", flag)
    if len(reader.problems) > before:
        return None
    return SearchRequest(**fields)


def _parse_indices(reader: Reader, value: Any, path) -> tuple[str, ...]:
    value = plain(value)
    if isinstance(value, str):
        # Watcher: Strings.delimitedListToStringArray(text, ",", " \t") — split, drop blanks/tabs
        return tuple(part.replace(" ", "").replace("\t", "") for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    reader.expected(path, "a list of index names or a comma-separated string such as 'logs-*,metrics-*'", value)
    return ()


def _parse_template(reader: Reader, value: Any, path) -> SearchTemplate | None:
    template = reader.mapping(path, value, "a template object such as {source: '...', params: {...}} or {id: name}")
    if template is None:
        return None
    for key in template:
        if key not in TEMPLATE_KEYS:
            reader.unknown_key(path, str(key), TEMPLATE_KEYS)
    source, template_id = plain(template.get("source")), plain(template.get("id"))
    if (source is None) == (template_id is None):
        reader.problem(path, "expected exactly one of 'source' (inline template) or 'id' (stored template)")
        return None
    if source is not None and not isinstance(source, (str, dict)):
        reader.expected((*path, "source"), "a template string or a query DSL object", source)
        return None
    if template_id is not None and not isinstance(template_id, str):
        reader.expected((*path, "id"), "a stored template id (string)", template_id)
        return None
    lang = plain(template.get("lang", "mustache"))
    if lang != "mustache":
        reader.expected((*path, "lang"), "mustache (search templates are Mustache)", lang)
    params = plain(template.get("params", {}))
    if not isinstance(params, dict):
        reader.expected((*path, "params"), "a mapping of template parameters", params)
        params = {}
    if isinstance(source, dict):  # Script.parse turns an object source into its JSON text
        source = json.dumps(source, ensure_ascii=False, separators=(",", ":"))
    return SearchTemplate(source=source, id=template_id, params=params, body=plain(template))


def _parse_indices_options(reader: Reader, value: Any, path) -> dict:
    options = reader.mapping(path, value, "a mapping such as {expand_wildcards: open, ignore_unavailable: true}")
    result = dict(DEFAULT_INDICES_OPTIONS)
    if options is None:
        return result
    for key, item in options.items():
        item = plain(item)
        if key not in INDICES_OPTIONS_KEYS:
            reader.unknown_key(path, str(key), INDICES_OPTIONS_KEYS)
        elif key == "expand_wildcards":
            names = item.split(",") if isinstance(item, str) else item
            if isinstance(names, list) and names and all(isinstance(n, str) and n.strip().lower() in EXPAND_WILDCARDS for n in names):
                result[key] = [n.strip().lower() for n in names]
            else:
                reader.expected((*path, key), f"one or more of {', '.join(EXPAND_WILDCARDS)}", item)
        elif isinstance(item, bool):
            result[key] = item
        else:
            reader.expected((*path, key), "true or false", item)
    return result


def parse_extract(reader: Reader, value: Any, path) -> tuple[str, ...] | None:
    """``extract``: a list of dot paths such as ``hits.total``. None on problems."""
    value = plain(value)
    if isinstance(value, list) and all(isinstance(item, str) and item for item in value):
        return tuple(value)
    reader.expected(path, "a list of dot paths such as [hits.total, aggregations.x.value]", value)
    return None


# ---------------------------------------------------------------------------------------------- run

def render_body(request: SearchRequest, model: dict, es: Any = None) -> dict:
    """Render the request's body (or template) into the search body to send.

    Watcher converts ``body`` into an inline Mustache template (its JSON text) and renders it in
    JSON-escaping mode, so ``{{x}}`` inside a string value is JSON-escaped and the result is parsed
    back as JSON. A template's ``params`` are merged over the model. A stored template (``id``) is
    fetched with ``GET _scripts/<id>`` and rendered here, so the cluster needs no lang-mustache.

    Args:
        request: the parsed request.
        model: ``{"ctx": {...}}`` (see ``Run.model``).
        es: the Elasticsearch client, needed only for stored templates.

    Returns:
        The rendered body (``{}`` when the request has neither body nor template).

    Raises:
        LookupError: the stored template does not exist.
        ValueError: the rendered text is not a JSON object.
        watcher.templates.mustache.TemplateSyntaxError: the template does not compile.
    """
    if request.template is not None:
        template = request.template
        source = template.source if template.source is not None else fetch_stored_template(es, template.id)
        return _render_json(source, {**model, **template.params})
    if request.body is None:
        return {}
    source = request.body_source
    if source is None:  # not prepared at load (see SearchRequest.body_source)
        source = json.dumps(request.body, ensure_ascii=False, separators=(",", ":"))
    if "{{" not in source:  # Watcher uses a string without "{{" verbatim
        return json.loads(source)  # a copy: the result must not share the watch definition
    return _render_json(source, model, request.body_template)


def _render_json(source: str, model: dict, template: Any = None) -> dict:
    if template is None and "{{" in source:
        # compile_template, not render: search templates know no "__json__::" text-template prefix
        template = compile_template(source)
    text = template.render(model, escape="json") if template is not None else source
    try:
        rendered = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"the rendered search body is not valid JSON ({error.msg} at line {error.lineno} "
                         f"column {error.colno}): {text[:500]}") from None
    if not isinstance(rendered, dict):
        raise ValueError(f"the rendered search body must be a JSON object, got: {text[:200]}")
    return rendered


def fetch_stored_template(es: Any, template_id: str) -> str:
    """The source text of stored script ``template_id`` (``GET _scripts/<id>``).

    Raises:
        RuntimeError: no Elasticsearch client is configured.
        LookupError: the script does not exist.
    """
    if es is None:
        raise RuntimeError("a stored search template needs an Elasticsearch connection")
    response = es.options(ignore_status=404).get_script(id=template_id)
    body = response.body if hasattr(response, "body") else response
    script = body.get("script") if isinstance(body, Mapping) else None
    if not body.get("found", script is not None) or not script:
        raise LookupError(f"unable to find stored search template [{template_id}]")
    source = script.get("source")
    if isinstance(source, Mapping):
        source = json.dumps(source, ensure_ascii=False)
    return str(source)


def request_echo(request: SearchRequest, rendered_body: dict) -> dict:
    """The ``search.request`` part of the result, as Watcher's ``WatcherSearchTemplateRequest`` prints it.

    ``{search_type, indices, rest_total_hits_as_int, body: <rendered>}`` plus ``indices_options``
    when not the defaults and ``template`` when one was given.
    """
    echo: dict[str, Any] = {"search_type": request.search_type, "indices": list(request.indices),
                            "rest_total_hits_as_int": request.rest_total_hits_as_int}
    if rendered_body:
        echo["body"] = rendered_body
    if request.indices_options != DEFAULT_INDICES_OPTIONS:
        echo["indices_options"] = dict(request.indices_options)
    if request.template is not None:
        echo["template"] = request.template.body
    return echo


def run_search(es: Any, request: SearchRequest, rendered_body: dict, timeout: dt.timedelta) -> dict:
    """Send the search; return the response body as plain JSON.

    The search goes through the client's :class:`~watcher.es.search_batch.SearchBatcher`
    (:func:`~watcher.es.search_batch.batcher_for`): alone it is one ``_search`` exactly as before;
    searches of other threads waiting at the same moment share one ``_msearch``, and each caller
    still gets its own response or its own error.

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client.
        request: the parsed request (indices, search type, indices options, total-hits form).
        rendered_body: the body from :func:`render_body`.
        timeout: client-side wait for the response (Watcher's ``actionGet(timeout)``).

    Raises:
        RuntimeError: no client configured; elasticsearch exceptions for errors from the cluster
            (the same types a lone ``_search`` raises, also when the search was batched).
    """
    if es is None:
        raise RuntimeError("a search needs an Elasticsearch connection (services.es is not set)")
    options = request.indices_options
    params: dict[str, Any] = {
        "search_type": request.search_type,
        "expand_wildcards": ",".join(options["expand_wildcards"]),
        "ignore_unavailable": options["ignore_unavailable"],
        "allow_no_indices": options["allow_no_indices"],
    }
    if "ignore_throttled" in options:
        params["ignore_throttled"] = options["ignore_throttled"]
    return batcher_for(es).search(",".join(request.indices) or None, rendered_body, params,
                                  rest_total_hits_as_int=request.rest_total_hits_as_int,
                                  timeout_s=timeout.total_seconds())


def execute_search(spec: SearchSpec, run: Any, model: dict, search: str = "input") -> tuple[dict, dict]:
    """Render and run ``spec`` for one execution.

    A partial answer (``_shards.failed > 0``) is reported in ``run.warnings``
    (:func:`watcher.engine.run_warnings.check_search`). For a Watcher watch it is kept, as Watcher
    keeps it: the payload carries ``_shards`` and the condition decides. For a rule (``run.watch.rule``
    set) it fails the search unless the rule has ``allow_partial_results: true``.

    Args:
        search: which search of the run, for warnings and errors (``input``, ``transform``).

    Returns:
        ``(payload, {"request": echo})``: the response (or its ``extract`` subset) and the
        ``search`` part of the input/transform result.

    Raises:
        watcher.es.shards.PartialResultsError: a rule's search answered from only some shards.
    """
    es = run.services.es
    body = render_body(spec.request, model, es)
    response = run_search(es, spec.request, body, spec.timeout)
    rule = getattr(run.watch, "rule", None)
    check_search(response, run.warnings, search=search, index=",".join(spec.request.indices) or "_all",
                 allow_partial=rule is None or bool(rule.allow_partial_results))
    payload = extract_paths(response, spec.extract) if spec.extract is not None else response
    return payload, {"request": request_echo(spec.request, body)}


def extract_paths(data: Mapping, paths: Sequence[str]) -> dict:
    """Keep only the values at ``paths`` (dot paths) in ``data``, preserving structure.

    Follows Watcher's ``XContentFilterKeysUtils.filterMapOrdered``: objects on the way to a path
    are kept even when the path ends in nothing (``hits.nope`` → ``{"hits": {}}``); a list on the
    way keeps its scalar items and filters its object items with the rest of the path; a scalar on
    the way is kept (``hits.total.value`` with an integer ``hits.total`` keeps ``hits.total``);
    nulls are dropped. Unlike Watcher's prefix test, a path only matches whole segments
    (``hits.to`` does not select ``hits.total``).

    Example: ``extract_paths({"hits": {"total": 3, "hits": []}, "took": 1}, ["hits.total"])``
    → ``{"hits": {"total": 3}}``.
    """
    return _filter_map(data, [p.split(".") for p in paths])


def _filter_map(data: Mapping, paths: list[list[str]]) -> dict:
    result: dict[str, Any] = {}
    for key, value in data.items():
        rests = [p[1:] for p in paths if p and p[0] == key]
        if not rests or value is None:
            continue
        if any(not rest for rest in rests):  # an exact match keeps the whole value
            result[key] = value
        elif isinstance(value, Mapping):
            result[key] = _filter_map(value, rests)
        elif isinstance(value, list):
            result[key] = [_filter_map(item, rests) if isinstance(item, Mapping) else item
                           for item in value if item is not None]
        else:
            result[key] = value
    return result
