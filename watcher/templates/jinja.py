"""Sandboxed Jinja2 for rule templates (``title``, ``message`` and action overrides of YAML rules).

One environment for the whole process: :class:`jinja2.sandbox.SandboxedEnvironment` (templates
cannot reach Python internals), :class:`jinja2.StrictUndefined` (a misspelt variable is an error
naming it, not an empty string; ``{{ x | default('n/a') }}`` still works), no autoescaping (the
connector decides how a rendered string is embedded). A request body declared JSON renders with
``json_strings=True`` (:func:`render_jinja`): each ``{{ … }}`` that the template's own text puts inside
a JSON string literal prints its value JSON-string-escaped (docs/correctness.md#json-bodies).
Extra filters:

* ``tojson`` — always valid JSON, whatever the data holds (datetimes as ISO-8601, sets as lists,
  anything else as its text); unlike Jinja's built-in it does not HTML-escape ``<>&'``. Its output
  (:class:`JsonText`) and ``| safe`` output are never escaped again.
* ``datetimeformat(value, format="%Y-%m-%dT%H:%M:%SZ", tz="UTC")`` — formats a datetime, an
  ISO-8601 string or epoch milliseconds with :func:`datetime.strftime`, in the given IANA zone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from watcher import errors
from watcher.model.problems import did_you_mean
from watcher.support.datemath import parse_instant
from watcher.support.durations import format_duration
from watcher.support.paths import dotted_child
from watcher.templates.jsontext import StringTracker, json_escape

__all__ = ["MISSING_VALUE", "JsonText", "TemplateRenderError", "check_syntax", "environment", "missing_values",
           "render_jinja", "tojson"]

TEMPLATE_NAME = "<template>"


TemplateRenderError = errors.TemplateRenderError  # one class for both template languages


class _NamedStrictUndefined(jinja2.StrictUndefined):
    """StrictUndefined whose message always names the missing variable or attribute."""

    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any):
        name = self._undefined_name
        if self._undefined_hint:
            message = self._undefined_hint
        elif self._undefined_obj is jinja2.utils.missing:
            message = f"undefined variable {name!r}"
        elif isinstance(self._undefined_obj, dict):
            keys = ", ".join(map(str, list(self._undefined_obj)[:10])) or "none"
            message = f"undefined attribute {name!r} (the mapping has keys: {keys})"
        else:
            message = f"undefined attribute {name!r} of {type(self._undefined_obj).__name__}"
        raise _Undefined(message, name)


# Jinja binds the failing dunders (__str__, __iter__, __add__…) to the base class's function object,
# so rebind every one of them to the override above.
for _name in dir(jinja2.StrictUndefined):
    if getattr(jinja2.StrictUndefined, _name, None) is jinja2.Undefined._fail_with_undefined_error:
        setattr(_NamedStrictUndefined, _name, _NamedStrictUndefined._fail_with_undefined_error)


MISSING_VALUE = "<MISSING VALUE>"
"""What a missing attribute or item renders as under :func:`missing_values` (ElastAlert2's placeholder)."""

_missing: ContextVar[list[str] | None] = ContextVar("watcher_jinja_missing", default=None)


@contextlib.contextmanager
def missing_values() -> Iterator[list[str]]:
    """Within this block, :func:`render_jinja` renders a missing attribute or item of a defined value
    (``hits[0].clientip`` when the document has no ``clientip``, ``hits[3]`` of two hits) as
    :data:`MISSING_VALUE` instead of failing, and appends its name to the yielded list, so that an
    alert is sent with a visible gap rather than lost (docs/correctness.md). An undefined top-level
    variable still fails (``watcher validate`` reports those at load). Used for rule alerts."""
    names: list[str] = []
    token = _missing.set(names)
    try:
        yield names
    finally:
        _missing.reset(token)


class _LenientUndefined(jinja2.ChainableUndefined):
    """A missing attribute or item: renders as :data:`MISSING_VALUE` and notes its name; chains
    (``a.b.c``), iterates as empty and tests false. A missing top-level variable fails as strict."""

    __slots__ = ()

    def _note(self) -> None:
        if self._undefined_obj is jinja2.utils.missing:
            _NamedStrictUndefined(hint=self._undefined_hint, obj=self._undefined_obj, name=self._undefined_name,
                                  exc=self._undefined_exception)._fail_with_undefined_error()
        names = _missing.get()
        if names is not None:
            names.append(str(self._undefined_name))

    def __str__(self) -> str:
        self._note()
        return MISSING_VALUE

    def __html__(self) -> str:
        return str(self)


class _Undefined(errors.TemplateRenderError, jinja2.UndefinedError):
    def __init__(self, message: str, name: Any):
        super().__init__(message)
        self.name = None if name is None else str(name)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
            return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class JsonText(str):
    """Text that is JSON already (what ``tojson`` returns): a JSON body prints it without escaping.

    A plain ``str`` in every other respect; string operations on it (``~``, ``replace``…) give plain
    strings again, which a JSON body escapes where they land inside a JSON string.
    """

    __slots__ = ()


def tojson(value: Any, indent: int | None = None) -> JsonText:
    """JSON text of ``value`` (never fails on datetimes or other non-JSON types; NaN → null)."""
    return JsonText(json.dumps(_finite(value), default=_json_default, ensure_ascii=False, indent=indent))


def _finite(value: Any) -> Any:
    # json.dumps would write NaN/Infinity, which is not JSON.
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def datetimeformat(value: Any, format: str = "%Y-%m-%dT%H:%M:%SZ", tz: str = "UTC") -> str:
    """Format a datetime, ISO-8601 string or epoch milliseconds in zone ``tz`` with ``strftime``."""

    if isinstance(value, dt.datetime):
        instant = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    else:
        instant = parse_instant(value)
    return instant.astimezone(ZoneInfo(tz)).strftime(format)


# Bounds that keep one template from taking the process down (the sandbox itself only guards access).
MAX_OUTPUT_CHARS = 1_048_576        # like Watcher's mustache.max_output_size_bytes (1 MB)
MAX_EXPONENT = 1_000                # ``9 ** (9 ** 9)`` would run for minutes


class _BoundedSandbox(SandboxedEnvironment):
    """The sandbox, plus limits on ``**`` and on repeating strings and lists with ``*``."""

    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _is_number(left) and _is_number(right) and abs(right) > MAX_EXPONENT and abs(left) > 1:
            raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and _is_number(times) and len(sequence) * times > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"repeating a value of length {len(sequence)} {times} times exceeds "
                                        f"{MAX_OUTPUT_CHARS} items")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data first: ``details.values`` or ``hit.items`` name a key of the document, not the
        # dict method (Jinja's default order would print "<built-in method values …>"). Keys with
        # dots are reached too: ``hit.output_fields.container.image.repository`` finds
        # {"output_fields": {"container.image.repository": …}} (docs/correctness.md#dotted-keys-inside-documents).
        if isinstance(obj, Mapping) and isinstance(attribute, str):
            found, value = dotted_child(obj, attribute)
            if found:
                return value
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        # ``hit["output_fields.container.image.repository"]`` and ``map(attribute="a.b")`` (which
        # walks "a" then "b" through here) follow the same lookup as attributes.
        if isinstance(obj, Mapping) and isinstance(argument, str):
            found, value = dotted_child(obj, argument)
            if found:
                return value
        return super().getitem(obj, argument)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# The filter the JSON-body rewrite wraps around values printed inside a JSON string. Its name has a
# space so that no template can name it.
_JSON_STRING_FILTER = "json string content"


def _json_string_content(value: Any) -> str:
    """What ``{{ value }}`` prints inside a JSON string of a JSON body: the text Jinja would print,
    JSON-string-escaped, unless it is JSON already (``tojson``) or marked ``| safe``."""
    if isinstance(value, (JsonText, Markup)):
        return value
    return json_escape(str(value))


@functools.cache
def environment(lenient: bool = False) -> SandboxedEnvironment:
    """The shared sandboxed environment (StrictUndefined, no autoescape, ``tojson``, ``datetimeformat``;
    ``**`` exponents, ``*`` repetition and the output size are bounded); ``lenient``: the one
    :func:`missing_values` renders with (missing attributes and items as :data:`MISSING_VALUE`)."""
    undefined = _LenientUndefined if lenient else _NamedStrictUndefined
    env = _BoundedSandbox(undefined=undefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = tojson
    env.filters["datetimeformat"] = datetimeformat
    env.filters[_JSON_STRING_FILTER] = _json_string_content
    env.policies["json.dumps_function"] = tojson
    return env


def document_fields(source: str, documents: str = "hits") -> set[str]:
    """The document fields a template reads from the list variable ``documents``: dotted paths of
    ``hits[0].source.ip``, ``hits[0]['user.name']``, ``hits | map(attribute='user.name')`` and of a
    loop variable over ``hits`` (``{% for h in hits %}{{ h.event.action }}``). An unparsable
    template reads nothing (its syntax is reported elsewhere)."""
    try:
        tree = environment().parse(source)
    except jinja2.TemplateSyntaxError:
        return set()
    aliases = {loop.target.name for loop in tree.find_all(jinja2.nodes.For)
               if isinstance(loop.target, jinja2.nodes.Name) and isinstance(loop.iter, jinja2.nodes.Name)
               and loop.iter.name == documents}
    found: set[str] = set()

    def document_path(node: jinja2.nodes.Node) -> list[str] | None:
        """The field path below a document (``[]`` at the document itself), None when not one."""
        if isinstance(node, jinja2.nodes.Name):
            return [] if node.name in aliases else None
        if isinstance(node, jinja2.nodes.Getitem):
            if isinstance(node.node, jinja2.nodes.Name) and node.node.name == documents:
                return [] if isinstance(node.arg, jinja2.nodes.Const) and isinstance(node.arg.value, int) else None
            inner = document_path(node.node)
            if inner is not None and isinstance(node.arg, jinja2.nodes.Const) and isinstance(node.arg.value, str):
                return [*inner, node.arg.value]
            return None
        if isinstance(node, jinja2.nodes.Getattr):
            inner = document_path(node.node)
            return None if inner is None else [*inner, node.attr]
        return None

    for node in tree.find_all((jinja2.nodes.Getattr, jinja2.nodes.Getitem)):
        path = document_path(node)
        if path:
            found.add(".".join(path))
    for node in tree.find_all(jinja2.nodes.Filter):
        if node.name == "map" and isinstance(node.node, jinja2.nodes.Name) and node.node.name == documents:
            for keyword in node.kwargs:
                if keyword.key == "attribute" and isinstance(keyword.value, jinja2.nodes.Const):
                    found.add(str(keyword.value.value))
    # a.b.c read as a chain also reads a and a.b: keep the longest paths only
    return {path for path in found if not any(other.startswith(path + ".") for other in found)}


def check_syntax(source: str, known: frozenset[str] | None = None) -> tuple[int, str] | None:
    """None when ``source`` is a valid Jinja2 template, else ``(line, message)`` (line 1-based).

    Compiling (not only parsing) also catches unknown filters and tests. With ``known``, a variable
    the template reads that is neither in ``known``, set by the template, nor a Jinja global (such
    as ``range``) is reported too — an undefined variable fails at render time.
    """

    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as error:
        return (error.lineno or 1), f"template syntax error: {error.message}"
    if known is not None:
        env = environment()
        unknown = sorted(meta.find_undeclared_variables(env.parse(source)) - set(known) - set(env.globals))
        if unknown:
            name = unknown[0]
            return 1, (f"undefined variable {name!r}{did_you_mean(name, known)}; templates here know: "
                       f"{', '.join(sorted(known))}")
    return None


@functools.lru_cache(maxsize=512)
def _compile(source: str, json_strings: bool = False, lenient: bool = False) -> jinja2.Template:
    env = environment(lenient)
    if not json_strings:
        return env.from_string(source)
    tree = env.parse(source)
    _escape_inside_json_strings(tree, StringTracker())
    return env.template_class.from_code(env, env.compile(tree), env.make_globals(None), None)


def _escape_inside_json_strings(node: nodes.Node, tracker: StringTracker) -> None:
    """Wrap each printed expression that the template's text puts inside a JSON string in the
    escaping filter. The template text is read in the order it is written, control flow ignored
    (a ``{% for %}`` body is read once, both branches of an ``{% if %}`` one after the other)."""
    if isinstance(node, nodes.Output):
        printed = []
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                tracker.feed(child.data)
            elif tracker.in_string:
                child = nodes.Filter(child, _JSON_STRING_FILTER, [], [], None, None, lineno=child.lineno)
            printed.append(child)
        node.nodes = printed
        return
    for child in node.iter_child_nodes():
        _escape_inside_json_strings(child, tracker)


def render_jinja(source: str, variables: dict, *, json_strings: bool = False) -> str:
    """Render ``source`` with ``variables`` in the sandbox.

    Args:
        json_strings: the text is a request body declared JSON (docs/correctness.md#json-bodies):
            each ``{{ … }}`` placed inside a JSON string literal by the template's own text prints
            its value JSON-string-escaped (``"`` → ``\\"``, newline → ``\\n``…), except ``tojson``
            and ``| safe`` output; a ``{{ … }}`` outside a string prints as usual.

    Raises:
        TemplateRenderError: syntax error, undefined variable (``variable`` names it), sandbox
            violation or any error raised while rendering; the message gives the template line.
    """
    try:
        template = _compile(source, json_strings, _missing.get() is not None)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateRenderError(f"template syntax error at line {error.lineno}: {error.message}",
                                  line=error.lineno) from None
    try:
        return _bounded(template.generate(variables))
    except _Undefined as error:
        line = _template_line(error)
        raise TemplateRenderError(f"{error.message}{_at(line)}", variable=error.name, line=line) from None
    except jinja2.UndefinedError as error:  # raised by Jinja itself (e.g. attribute of undefined)
        line = _template_line(error)
        raise TemplateRenderError(f"{error.message}{_at(line)}", line=line) from None
    except jinja2.exceptions.SecurityError as error:
        line = _template_line(error)
        raise TemplateRenderError(f"not allowed in templates: {error}{_at(line)}", line=line) from None
    except Exception as error:  # anything a filter or test raised
        line = _template_line(error)
        raise TemplateRenderError(f"template error: {error}{_at(line)}", line=line) from None


def _bounded(chunks) -> str:
    """Join rendered chunks, stopping at :data:`MAX_OUTPUT_CHARS` (a loop can build any size)."""

    out, size = [], 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise SecurityError(f"the rendered text exceeds {MAX_OUTPUT_CHARS} characters")
        out.append(chunk)
    return "".join(out)


def _at(line: int | None) -> str:
    return f" (template line {line})" if line else ""


def _template_line(error: BaseException) -> int | None:
    """The template line of the innermost template frame (Jinja rewrites tracebacks to show them)."""
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == TEMPLATE_NAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
