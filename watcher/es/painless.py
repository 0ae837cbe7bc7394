"""Run Watcher's Painless scripts on the connected cluster (no Python library runs Painless).

Watcher runs a script condition/transform inside Elasticsearch with ``ctx`` (the execution context)
and ``params`` as variables. We have only the Painless execute API
(``POST /_scripts/painless/_execute``, Painless reference "Painless execute API"), whose default
``painless_test`` context differs from Watcher's script contexts in two ways, bridged here:

1. **Only ``params`` is visible, not ``ctx``.** The execution context travels as one extra parameter,
   ``params._watcher_ctx``; :data:`DATES_PRELUDE` turns its times back into ``ZonedDateTime``
   objects, and every *identifier* ``ctx`` of the script is rewritten to read the result (a local
   ``__watcher_ctx`` declared before the script's first statement). The rewrite works on tokens (a small Painless lexer): ``ctx`` inside
   string literals, regex literals and comments, and member names (``foo.ctx``, ``foo?.ctx``) are
   left alone. Limits: a script that declares its own variable or lambda parameter named ``ctx``
   is rewritten too (Watcher's scripts cannot, ``ctx`` is taken there); functions declared at the
   top of a script cannot see ``ctx`` (as in Watcher) and are not rewritten; writes to
   ``ctx.vars``/``ctx.payload`` stay on the cluster (they are not copied back).
2. **The result comes back as ``Objects.toString(result)``.** That is enough for a condition
   (``"true"``/``"false"``) — :func:`execute_script` with ``json_result=False``. For transforms
   that return maps and lists, ``json_result=True`` (the default) wraps the script so that the
   cluster returns JSON text:

   * a small JSON serialiser written in Painless (:data:`JSON_PRELUDE`: ``null``, booleans, numbers
     — NaN/±Infinity become ``null`` as JSON has no such numbers —, strings with ``"``, ``\\`` and
     control characters escaped, maps (keys through ``toString``), any ``Iterable`` as an array,
     Java arrays as arrays, ``ZonedDateTime`` as ISO-8601 text, and everything else as its
     ``toString`` string) is prepended;
   * the functions the script declares at its top stay at the top (Painless requires it);
   * the rest becomes the body of ``def __watcher_main(Map __watcher_params, Map __watcher_ctx)``
     with the identifiers ``params`` and ``ctx`` renamed to those arguments (user functions cannot
     see script variables, so they are passed in); Painless returns the value of a function's last
     expression statement implicitly, as it does for a script, so ``['a': 1]`` and
     ``return ['a': 1]`` both work;
   * the script's main statement becomes
     ``return __watcher_json(__watcher_main(params, params._watcher_ctx));``.

   Unlike a script, a Painless function must return on every path; when the cluster answers "not
   all paths provide a return value" the script is sent once more with ``return null;`` appended,
   which is what a script's missing return means. Java arrays (``Object[]`` from
   ``stream().toArray()``, ``int[]``…) become JSON arrays, ``char[]`` a string, and a
   ``ZonedDateTime`` an ISO-8601 string with milliseconds and offset (``2024-05-01T10:15:30.123Z``),
   as Watcher puts them in the payload.

Values in ``ctx``: ``ctx.execution_time``, ``ctx.trigger.triggered_time`` and
``ctx.trigger.scheduled_time`` are ``ZonedDateTime`` objects in UTC, as in Watcher
(``ctx.execution_time.getHour()``, ``ctx.trigger.scheduled_time.minusMinutes(5)`` work); they travel
as ISO-8601 text with milliseconds and are parsed on the cluster. Payload values from search
responses are plain JSON in both.

Failures: :class:`PainlessError` carries the cluster's reason, cause, ``script_stack`` and the
position mapped back into the script as written; :class:`ScriptUnavailable` means the cluster
cannot run Painless at all (no lang-painless module). Without that module the URL falls through to
``POST /_scripts/{id}/{context}`` (put stored script), which answers "must specify lang for stored
script" — the request body therefore never carries ``lang``, so it can never store a script.

Source: Painless reference, "Painless execute API" (painless_test context; result converted to a
String) and "Functions"; docs/semantics.md#script-condition and
docs/semantics.md#script-transform; docs/semantics.md#the-ctx-model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from watcher.errors import PermanentClusterError
from watcher.model.problems import Reader
from watcher.model.source import plain
from watcher.support.datemath import format_iso_millis

__all__ = [
    "CTX_PARAM",
    "JSON_PRELUDE",
    "PainlessError",
    "ScriptUnavailable",
    "execute_script",
    "parse_script",
    "prepare_source",
    "to_script_value",
]

CTX_PARAM = "_watcher_ctx"
"""The parameter that carries ``ctx`` to the cluster (``params._watcher_ctx``)."""

SCRIPT_KEYS = ("source", "id", "lang", "params")
"""Keys of Watcher's script object (``{"source"|"id": …, "lang": "painless", "params": {…}}``)."""

_MAIN = "__watcher_main"
_PARAMS_ARG = "__watcher_params"
_CTX_ARG = "__watcher_ctx"

DATES_PRELUDE = r"""Map __watcher_dates(Map c) {
  Map d = new HashMap(c);
  if (d.execution_time instanceof String) { d.execution_time = ZonedDateTime.parse(d.execution_time); }
  if (d.trigger instanceof Map) {
    Map t = new HashMap(d.trigger);
    if (t.triggered_time instanceof String) { t.triggered_time = ZonedDateTime.parse(t.triggered_time); }
    if (t.scheduled_time instanceof String) { t.scheduled_time = ZonedDateTime.parse(t.scheduled_time); }
    d.trigger = t;
  }
  return d;
}
"""
"""A Painless function giving ``ctx`` with Watcher's ``ZonedDateTime`` values for the times that
travel as ISO-8601 text (``execution_time``, ``trigger.triggered_time``, ``trigger.scheduled_time``)."""

JSON_PRELUDE = r"""String __watcher_json_string(String s) {
  StringBuilder b = new StringBuilder();
  b.append('"');
  for (int i = 0; i < s.length(); ++i) {
    int c = s.charAt(i);
    if (c == 34) { b.append('\\"'); }
    else if (c == 92) { b.append('\\\\'); }
    else if (c < 32) {
      String h = Integer.toHexString(c);
      b.append('\\u');
      for (int k = h.length(); k < 4; ++k) { b.append('0'); }
      b.append(h);
    }
    else { b.append((char) c); }
  }
  b.append('"');
  return b.toString();
}
String __watcher_json(def v) {
  if (v == null) { return 'null'; }
  if (v instanceof Boolean) { return v.toString(); }
  if (v instanceof Double || v instanceof Float) {
    double d = ((Number) v).doubleValue();
    if (Double.isNaN(d) || Double.isInfinite(d)) { return 'null'; }
    return v.toString();
  }
  if (v instanceof Number) { return v.toString(); }
  if (v instanceof Map) {
    StringBuilder b = new StringBuilder();
    b.append('{');
    boolean first = true;
    for (def e : v.entrySet()) {
      if (first == false) { b.append(','); }
      first = false;
      def key = e.getKey();
      b.append(__watcher_json_string(key == null ? 'null' : key.toString()));
      b.append(':');
      b.append(__watcher_json(e.getValue()));
    }
    b.append('}');
    return b.toString();
  }
  if (v instanceof ZonedDateTime) {
    return __watcher_json_string(DateTimeFormatter.ofPattern("uuuu-MM-dd'T'HH:mm:ss.SSSXXX").format(v));
  }
  if (v instanceof char[]) {
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < v.length; ++i) { b.append(v[i]); }
    return __watcher_json_string(b.toString());
  }
  if (v instanceof Object[] || v instanceof int[] || v instanceof long[] || v instanceof double[]
      || v instanceof float[] || v instanceof short[] || v instanceof byte[] || v instanceof boolean[]) {
    StringBuilder b = new StringBuilder();
    b.append('[');
    for (int i = 0; i < v.length; ++i) {
      if (i > 0) { b.append(','); }
      b.append(__watcher_json(v[i]));
    }
    b.append(']');
    return b.toString();
  }
  if (v instanceof Iterable) {
    StringBuilder b = new StringBuilder();
    b.append('[');
    boolean first = true;
    for (def item : v) {
      if (first == false) { b.append(','); }
      first = false;
      b.append(__watcher_json(item));
    }
    b.append(']');
    return b.toString();
  }
  return __watcher_json_string(v.toString());
}
"""
"""Painless functions that turn a script's result into JSON text (see the module docstring)."""


class ScriptUnavailable(PermanentClusterError, RuntimeError):
    """The cluster cannot run Painless (no lang-painless module, or no cluster connection at all)."""


class PainlessError(PermanentClusterError, RuntimeError):
    """The script failed to compile or to run on the cluster.

    Attributes:
        reason: the cluster's reason (``compile error``, ``runtime error``…).
        cause: ``"<type>: <reason>"`` of the underlying exception (``caused_by``), or None.
        script_stack: the cluster's ``script_stack`` lines (they show the script as sent, i.e.
            after the rewrites described in the module docstring).
        position: ``{"offset", "start", "end", "line", "column"}`` in the script as written
            (0-based offsets, 1-based line/column), or None when the cluster gave none.
        error: the cluster's whole ``error`` object (or None).
    """

    def __init__(self, message: str, *, reason: str | None = None, cause: str | None = None,
                 script_stack: Sequence[str] = (), position: dict | None = None, error: Any = None):
        super().__init__(message)
        self.reason, self.cause, self.position, self.error = reason, cause, position, error
        self.script_stack = list(script_stack)

    def record_fields(self) -> dict:
        """What a watch record adds to ``{"type", "reason"}`` for this error, as Watcher's records do:
        ``script_stack``, ``position`` and the cluster's ``caused_by``, each only when known."""
        out: dict[str, Any] = {}
        if self.script_stack:
            out["script_stack"] = list(self.script_stack)
        if self.position:
            out["position"] = dict(self.position)
        caused_by = self.error.get("caused_by") if isinstance(self.error, dict) else None
        if caused_by:
            out["caused_by"] = caused_by
        return out


# --------------------------------------------------------------------------------------------------
# Parsing Watcher's script object


def parse_script(reader: Reader, body: Any, path: Sequence[str | int]) -> dict | None:
    """Validate Watcher's script object; record problems on ``reader``.

    Accepted forms (docs/semantics.md#script-condition):
    ``"return ctx.payload.hits.total > 5"`` (inline Painless), or a mapping with exactly one of
    ``source`` (a non-empty string) / ``id`` (a stored script's id), optional ``lang`` (only
    ``painless``; not allowed with ``id``, as in Elasticsearch, where a stored script keeps its own
    language) and optional ``params`` (a mapping).

    Returns:
        ``{"source": str, "params": dict}`` or ``{"id": str, "params": dict}`` (plain values), or
        None when problems were recorded.
    """
    value = plain(body)
    if isinstance(value, str):
        if not value.strip():
            reader.expected(path, "a Painless script", value)
            return None
        return {"source": value, "params": {}}
    if not isinstance(value, dict):
        reader.expected(path, "a script: a Painless source string, or {source|id: …, lang: painless, params: {…}}",
                        value)
        return None
    before = len(reader.problems)
    for key in value:
        if key not in SCRIPT_KEYS:
            reader.unknown_key(path, key, SCRIPT_KEYS)
    has_source, has_id = "source" in value, "id" in value
    if has_source == has_id and not (len(reader.problems) > before and not has_source):
        reader.problem(path, "expected exactly one of 'source' (inline Painless) or 'id' (a stored script), "
                             f"found {'both' if has_source else 'neither'}")
    if has_source and (not isinstance(value["source"], str) or not value["source"].strip()):
        reader.expected((*path, "source"), "a Painless script (a non-empty string)", value["source"])
    if has_id and (not isinstance(value["id"], str) or not value["id"]):
        reader.expected((*path, "id"), "a stored script id (a non-empty string)", value["id"])
    if "lang" in value:
        if has_id and not has_source:
            reader.problem((*path, "lang"), "lang cannot be given for a stored script (it keeps its own)")
        elif value["lang"] != "painless":
            reader.expected((*path, "lang"), "'painless' (the only script language supported)", value["lang"])
    params = value.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        reader.expected((*path, "params"), "a mapping of script parameters", params)
    elif CTX_PARAM in params:
        reader.problem((*path, "params", CTX_PARAM), f"the parameter name {CTX_PARAM!r} is reserved (it carries ctx)")
    if len(reader.problems) > before:
        return None
    key = "source" if has_source else "id"
    return {key: value[key], "params": params}


# --------------------------------------------------------------------------------------------------
# A small Painless lexer: enough to find identifiers outside strings, comments and regexes


@dataclasses.dataclass(frozen=True)
class _Token:
    kind: str  # space, comment, string, regex, ident, number, punct
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


_KEYWORDS = frozenset("""if else while do for in continue break return new try catch throw this instanceof
                         true false null def boolean byte short char int long float double void""".split())
_NOT_TYPE = frozenset("""if else while do for in continue break return new try catch throw this instanceof
                         true false null""".split())
# After these a "/" divides; elsewhere it opens a regex literal (Painless's lexer rule).
_OPERAND_END = frozenset({")", "]", "++", "--"})
_SPACE = re.compile(r"\s+")
_LINE_COMMENT = re.compile(r"//[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?(?:\*/|\Z)", re.S)
_DQ = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\Z)', re.S)
_SQ = re.compile(r"'(?:[^'\\]|\\.)*(?:'|\Z)", re.S)
_REGEX = re.compile(r"/(?:\\[^\n]|[^/\n\\])+/[cilmsuUx]*")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_]*(?:\.[0-9][0-9A-Za-z_]*)?")
_DIGITS = re.compile(r"[0-9]+")
_PUNCT = re.compile(r"\?\.|->|\+\+|--|::|.", re.S)


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    last: _Token | None = None  # last significant token
    i = 0
    while i < len(source):
        for kind, pattern in (("space", _SPACE), ("comment", _LINE_COMMENT), ("comment", _BLOCK_COMMENT),
                              ("string", _DQ), ("string", _SQ)):
            match = pattern.match(source, i)
            if match:
                break
        else:
            kind, match = "", None
            if source[i] == "/" and not _slash_divides(last):
                match, kind = _REGEX.match(source, i), "regex"
            if not match:
                for kind, pattern in (("ident", _IDENT),
                                      ("number", _DIGITS if last and last.text in (".", "?.") else _NUMBER),
                                      ("punct", _PUNCT)):
                    match = pattern.match(source, i)
                    if match:
                        break
        token = _Token(kind, match.group(0), i)
        tokens.append(token)
        if kind not in ("space", "comment"):
            last = token
        i = token.end
    return tokens


def _slash_divides(last: _Token | None) -> bool:
    """True when a "/" after ``last`` is a division (after an operand), False when it opens a regex."""
    if last is None:
        return False
    if last.kind in ("number", "string", "regex"):
        return True
    if last.kind == "ident":
        return last.text not in _KEYWORDS or last.text in ("true", "false", "null", "this")
    return last.text in _OPERAND_END


def _significant(tokens: list[_Token]) -> list[int]:
    return [n for n, t in enumerate(tokens) if t.kind not in ("space", "comment")]


def _leading_functions_end(tokens: list[_Token]) -> int:
    """Offset of the first character after the function declarations at the top of the script (0 if none).

    A declaration is ``type name(params) { … }`` where type is ``def``, a primitive or a (dotted)
    class name, optionally followed by ``[]`` pairs.
    """
    sig = _significant(tokens)
    pos, end = 0, 0
    while pos < len(sig):
        k = pos
        first = tokens[sig[k]]
        if first.kind != "ident" or first.text in _NOT_TYPE:
            break
        k += 1
        while k + 1 < len(sig) and tokens[sig[k]].text == "." and tokens[sig[k + 1]].kind == "ident":
            k += 2
        while k + 1 < len(sig) and tokens[sig[k]].text == "[" and tokens[sig[k + 1]].text == "]":
            k += 2
        if not (k + 1 < len(sig) and tokens[sig[k]].kind == "ident" and tokens[sig[k]].text not in _KEYWORDS
                and tokens[sig[k + 1]].text == "("):
            break
        k = _matching(tokens, sig, k + 1)
        if k is None or k + 1 >= len(sig) or tokens[sig[k + 1]].text != "{":
            break
        k = _matching(tokens, sig, k + 1)
        if k is None:
            break
        pos, end = k + 1, tokens[sig[k]].end
    return end


def _matching(tokens: list[_Token], sig: list[int], k: int) -> int | None:
    """Position in ``sig`` of the bracket closing the one at ``sig[k]``, or None."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    for j in range(k, len(sig)):
        text = tokens[sig[j]].text
        if text in pairs:
            stack.append(pairs[text])
        elif text in (")", "]", "}"):
            if not stack or stack.pop() != text:
                return None
            if not stack:
                return j
    return None


@dataclasses.dataclass
class _Prepared:
    """The source sent to the cluster and how to map its offsets back to the source as written."""

    source: str = ""
    # (sent_start, original_start, verbatim): text from sent_start on comes from original_start on,
    # character by character when verbatim, else it is ours and maps to original_start.
    segments: list[tuple[int, int, bool]] = dataclasses.field(default_factory=list)

    def add(self, text: str, original: int, verbatim: bool) -> None:
        self.segments.append((len(self.source), original, verbatim))
        self.source += text

    def original_offset(self, offset: int) -> int:
        found = (0, 0, False)
        for segment in self.segments:
            if segment[0] > offset:
                break
            found = segment
        start, original, verbatim = found
        return original + (offset - start) if verbatim else original


def prepare_source(source: str, *, json_result: bool = True, append_return_null: bool = False) -> _Prepared:
    """Rewrite a Watcher script for the ``painless_test`` context (see the module docstring).

    Args:
        source: the Painless source as written in the watch (or stored).
        json_result: wrap it so that the result comes back as JSON text.
        append_return_null: (JSON mode) end the wrapped body with ``return null;``.

    Returns:
        An object with ``source`` (what to send) and ``original_offset(offset)`` (maps an offset in
        the sent source to one in ``source``).
    """
    tokens = _tokens(source)
    head_end = _leading_functions_end(tokens)
    prepared = _Prepared()
    prepared.add(DATES_PRELUDE, 0, False)
    if json_result:
        prepared.add(JSON_PRELUDE, 0, False)
    head = [t for t in tokens if t.start < head_end]
    if head:
        prepared.add(source[:head_end], 0, True)
        prepared.add("\n", head_end, False)
    if json_result:
        prepared.add(f"def {_MAIN}(Map {_PARAMS_ARG}, Map {_CTX_ARG}) {{\n", head_end, False)
        renames = {"ctx": _CTX_ARG, "params": _PARAMS_ARG}
    else:
        prepared.add(f"Map {_CTX_ARG} = __watcher_dates(params.{CTX_PARAM});\n", head_end, False)
        renames = {"ctx": _CTX_ARG}
    previous = ""
    for token in tokens[len(head):]:
        if token.kind == "ident" and token.text in renames and previous not in (".", "?."):
            prepared.add(renames[token.text], token.start, False)
        else:
            prepared.add(token.text, token.start, True)
        if token.kind not in ("space", "comment"):
            previous = token.text
    if json_result:
        end = len(source)
        if append_return_null:
            prepared.add("\nreturn null;", end, False)
        prepared.add(f"\n}}\nreturn __watcher_json({_MAIN}(params, __watcher_dates(params.{CTX_PARAM})));\n", end,
                     False)
    return prepared


# --------------------------------------------------------------------------------------------------
# Values and execution


def to_script_value(value: Any) -> Any:
    """Convert a model value to JSON for the cluster: datetimes → ISO-8601 UTC strings with
    milliseconds, tuples/sets → lists, Decimals → int/float, mapping keys → strings, NaN and
    ±infinity → None (JSON has no such numbers; the cluster would reject the request).
    Other non-JSON objects become their ``str``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return format_iso_millis(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_script_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_script_value(v) for v in value]
    return str(value)


def execute_script(es: Any, script: Mapping, model: Mapping, *, json_result: bool = True) -> Any:
    """Run a Watcher script on the cluster through ``POST /_scripts/painless/_execute``.

    Args:
        es: a synchronous ``elasticsearch.Elasticsearch`` client (None → :class:`ScriptUnavailable`).
        script: as :func:`parse_script` returns it: ``{"source": str, "params": {…}}`` or
            ``{"id": str, "params": {…}}`` (a stored script: its source is fetched with
            ``GET _scripts/<id>``).
        model: ``{"ctx": {...}}`` (``run.model()``); ``ctx`` is passed as ``params._watcher_ctx``.
        json_result: True → the script's return value as JSON values (dict, list, str, int, float,
            bool, None); False → the cluster's ``String.valueOf(result)`` text (``"true"``, ``"7"``,
            ``"null"``, ``"{a=1}"``), which is all a condition needs.

    Raises:
        ScriptUnavailable: no client, or the cluster has no Painless.
        PainlessError: compile or runtime error (reason, cause, script_stack, position), a missing
            stored script, or a stored script in another language.
        elasticsearch.TransportError: the cluster could not be reached.
    """
    if es is None:
        raise ScriptUnavailable("Painless scripts run on the Elasticsearch cluster, and no cluster connection "
                                "is configured")
    source = _script_source(es, script)
    params = dict(script.get("params") or {})
    params[CTX_PARAM] = to_script_value(model.get("ctx", {}))
    prepared = prepare_source(source, json_result=json_result)
    try:
        text = _execute(es, prepared, source, params)
    except PainlessError as error:
        if not (json_result and error.cause and "not all paths provide a return value" in error.cause):
            raise
        prepared = prepare_source(source, json_result=True, append_return_null=True)
        text = _execute(es, prepared, source, params)
    if not json_result:
        return text
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise PainlessError(f"the script's result could not be read as JSON: {text!r}") from None


def _script_source(es: Any, script: Mapping) -> str:
    from elasticsearch import NotFoundError  # deferred: start-up (the ES client costs ~0.25 s to import)

    if "source" in script:
        return script["source"]

    script_id = script["id"]
    try:
        stored = es.get_script(id=script_id)
    except NotFoundError:
        raise PainlessError(f"unable to find stored script [{script_id}] in the cluster (GET _scripts/{script_id})") \
            from None
    body = stored.body if hasattr(stored, "body") else stored
    if not body.get("found", True) or "script" not in body:
        raise PainlessError(f"unable to find stored script [{script_id}] in the cluster (GET _scripts/{script_id})")
    lang = body["script"].get("lang")
    if lang != "painless":
        raise PainlessError(f"stored script [{script_id}] is written in [{lang}], not painless")
    return body["script"]["source"]


def _execute(es: Any, prepared: _Prepared, original: str, params: dict) -> str:
    from elasticsearch import ApiError  # deferred: start-up (the ES client costs ~0.25 s to import)

    try:
        with warnings.catch_warnings():  # the client flags the API as "technical preview" on every call
            warnings.simplefilter("ignore")
            # No "context": painless_test is the default, and without lang-painless the URL is read as
            # "put stored script [painless] in context [_execute]", which then fails on "lang" alone.
            response = es.scripts_painless_execute(script={"source": prepared.source, "params": params})
    except ApiError as error:
        raise _translate(error, prepared, original) from None
    body = response.body if hasattr(response, "body") else response
    return body.get("result")


_UNAVAILABLE_SIGNS = ("must specify lang for stored script", "unknown script context", "lang [painless]",
                      "no handler found", "unsupported lang", "unexpected field [context]")


def _translate(error: Any, prepared: _Prepared, original: str) -> Exception:
    """An ``ApiError`` from the execute API → :class:`ScriptUnavailable` or :class:`PainlessError`."""
    body = getattr(error, "body", None)
    details = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(details, Mapping):
        details = {"reason": str(details or body or error)}
    reason = str(details.get("reason") or error)
    status = getattr(error, "status_code", None) or getattr(getattr(error, "meta", None), "status", None)
    text = json.dumps(body) if isinstance(body, (Mapping, list)) else str(body)
    if status in (404, 405) or any(sign in text for sign in _UNAVAILABLE_SIGNS):
        return ScriptUnavailable(
            "this Elasticsearch cluster cannot run Painless scripts (POST /_scripts/painless/_execute answered "
            f"{status}: {reason}); the lang-painless module is missing. Script conditions and transforms need a "
            "cluster with Painless (every regular Elasticsearch distribution has it)")
    caused = details.get("caused_by")
    cause = f"{caused.get('type')}: {caused.get('reason')}" if isinstance(caused, Mapping) else None
    position = None
    message = reason + (f": {cause}" if cause else "")
    raw = details.get("position")
    if isinstance(raw, Mapping) and isinstance(raw.get("offset"), int):
        offset = prepared.original_offset(raw["offset"])
        line = original.count("\n", 0, offset) + 1
        column = offset - (original.rfind("\n", 0, offset) + 1) + 1
        position = {"offset": offset, "start": prepared.original_offset(raw.get("start", raw["offset"])),
                    "end": prepared.original_offset(raw.get("end", raw["offset"])), "line": line, "column": column}
        source_line = original.splitlines()[line - 1] if original.splitlines()[line - 1:] else ""
        message += f" (script line {line}, column {column}: {source_line.strip()})"
    return PainlessError(message, reason=reason, cause=cause, script_stack=details.get("script_stack") or (),
                         position=position, error=details)
