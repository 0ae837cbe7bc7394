"""Mustache templates that render exactly like Elastic Watcher's.

Watcher renders every template with Elasticsearch's ``lang-mustache`` module: the mustache.java
compiler (``com.github.mustachejava``, 0.9.x) plus Elasticsearch's ``CustomMustacheFactory`` and
``CustomReflectionObjectHandler``. This module reproduces that observable behaviour in Python; the
rules below were read from those sources and checked against mustache.java 0.9.10 driven through a
replica of the Elasticsearch handler (see
docs/semantics.md#mustache-templates for the user-facing description).

Public API: :func:`compile_template` → :class:`Template` → :meth:`Template.render`; the shortcut
:func:`render`; the stringifiers :func:`to_text` and :func:`to_json`; the errors
:class:`TemplateSyntaxError` (compile time) and :class:`TemplateRenderError` (render time).

Behaviour, in brief:

* ``{{a.b.c}}`` is looked up like mustache.java's ``ReflectionObjectHandler.find``: scopes are tried
  from the innermost outwards; in each scope the *whole* name is first tried as one key (so a key
  that itself contains dots, ``{"host.name": ...}``, IS reachable when it sits directly in a scope),
  then the dotted path is walked. A scope is left for the next outer one only while an intermediate
  segment is missing; once every intermediate segment resolved, a missing last segment (or a null on
  the way) renders as the empty string. On a list, ``size`` is its length and a numeric segment an
  index; an index outside the list is an error in Elasticsearch (``Iterables.get`` throws), so it
  raises :class:`TemplateRenderError` here too.
* ``{{x}}`` prints Java's ``toString`` of the value (:func:`to_text`), with one Elasticsearch twist:
  the handler coerces a list to a map view before printing, so a list *reached by a tag* prints as
  ``{0=a, 1=b}``, while a list nested in a printed map prints as ``[a, b]``. Nothing is HTML-escaped;
  in ``escape="json"`` mode ``{{x}}`` output is JSON-string-escaped (``{{{x}}}``/``{{&x}}`` never);
  in ``escape="json_strings"`` mode (ours, for request bodies declared JSON) only where it lands
  inside a JSON string of the output (docs/correctness.md#json-bodies).
* Sections: a list repeats per element, anything else truthy renders once with the value pushed as
  scope; null/missing, ``false``, ``""`` and empty lists are falsey, numbers (``0`` too) and maps
  (``{}`` too) are truthy. Inverted sections render when falsey, without pushing a scope.
* Lambdas, recognised by tag name at compile time whatever the data holds: ``{{#toJson}}path{{/toJson}}``,
  ``{{#join}}path{{/join}}``, ``{{#join delimiter='x'}}path{{/join delimiter='x'}}`` and
  ``{{#url}}template{{/url}}`` (``toJson``/``join``/``url`` compared case-insensitively).
* Whitespace follows mustache.java's parser, which is *not* the Mustache spec's standalone-line rule:
  a section open/close tag alone on its line drops that line's indentation and newline, comments and
  set-delimiter tags never do, and a lone carriage return in template text is dropped.
* Output is capped at :data:`MAX_OUTPUT_SIZE` characters (UTF-16 code units, as Elasticsearch's
  ``SizeLimitingStringWriter`` counts), the default of ``mustache.max_output_size_bytes``.

Partials and template inheritance (``{{>x}}``, ``{{<x}}``) are rejected: Watcher has no templates to
include. A tag left open at the end of the text is always a syntax error (mustache.java lets a few
kinds, such as ``{{!comment``, run to the end silently).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Literal, TypeAlias
from urllib.parse import quote_plus

from watcher import errors
from watcher.support.javatext import SelfReferenceError, java_double, java_string
from watcher.templates.jsontext import StringTracker
from watcher.templates.jsontext import json_escape as _json_escape

__all__ = [
    "MAX_OUTPUT_SIZE",
    "Template",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "compile_template",
    "render",
    "to_json",
    "to_text",
]

MAX_OUTPUT_SIZE = 1_048_576
"""Most characters one render may produce (Elasticsearch ``mustache.max_output_size_bytes``, 1mb)."""

Escape: TypeAlias = Literal["none", "json", "json_strings"]
ESCAPES = ("none", "json", "json_strings")


# --------------------------------------------------------------------------------------------------
# Errors


TemplateSyntaxError = errors.TemplateSyntaxError  # Mustache is the template language that compiles


TemplateRenderError = errors.TemplateRenderError  # one class for both template languages


# --------------------------------------------------------------------------------------------------
# Compiled form: a tree of immutable nodes


@dataclass(frozen=True, slots=True)
class _Text:
    text: str


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str
    raw: bool  # True for {{{x}}} and {{&x}}: never escaped


@dataclass(frozen=True, slots=True)
class _Section:
    name: str
    children: tuple[_Node, ...]
    inverted: bool


@dataclass(frozen=True, slots=True)
class _ToJson:
    path: str | None  # None when the body was a tag: Elasticsearch then looks up garbage, i.e. nothing


@dataclass(frozen=True, slots=True)
class _Join:
    path: str | None
    delimiter: str
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Url:
    children: tuple[_Node, ...]


_Node: TypeAlias = _Text | _Variable | _Section | _ToJson | _Join | _Url


# --------------------------------------------------------------------------------------------------
# Parser


_JAVA_TRIM = "".join(chr(i) for i in range(33))  # Java String.trim() strips every char <= U+0020
_JOIN_WITH_DELIMITER = re.compile("join delimiter='([^\n\r\u0085\u2028\u2029]*)'")
_JAVA_REGEX_SPACE = re.compile(r"[ \t\n\x0b\f\r]+")


@dataclass(slots=True)
class _Frame:
    """Parser state for one nesting level (mustache.java keeps the same in locals of ``compile``)."""

    tag: str | None  # name of the open section, None at top level
    tag_pos: int
    sol: bool  # still at the start of a line
    sm: str  # start delimiter, "{{" unless changed by {{=<% %>=}} (which lasts to the section's end)
    em: str
    iterable: bool  # the last section tag spanned lines: drop the newline ending this line if blank
    only_ws: bool = True  # the current line held only blanks so far
    saw_cr: bool = False
    out: list[str] = field(default_factory=list)  # pending text
    nodes: list[_Node] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # mustache.java's codes: "text" or "tag"

    def flush(self) -> None:
        """Emit pending text; like mustache.java, text after a tag joins that tag's code."""
        text = "".join(self.out)
        self.out.clear()
        if not text:
            return
        if not self.codes:
            self.codes.append("text")
        if self.nodes and isinstance(self.nodes[-1], _Text):
            self.nodes[-1] = _Text(self.nodes[-1].text + text)
        else:
            self.nodes.append(_Text(text))

    def add(self, node: _Node) -> None:
        self.codes.append("tag")
        self.nodes.append(node)


class _Parser:
    """A port of mustache.java's ``MustacheParser.compile`` that builds the node tree.

    It keeps mustache.java's whitespace state machine (see :class:`_Frame`) so that rendered text
    matches Watcher's byte for byte, including where that differs from the Mustache spec.
    """

    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.line = 1  # like mustache.java, only newlines in text count (not those inside tags)

    def parse(self) -> tuple[_Node, ...]:
        frame = self._compile(_Frame(None, 0, sol=True, sm="{{", em="}}", iterable=False))
        return tuple(frame.nodes)

    def _error(self, message: str, index: int) -> TemplateSyntaxError:
        line = self.src.count("\n", 0, index) + 1
        column = index - (self.src.rfind("\n", 0, index) + 1) + 1
        return TemplateSyntaxError(message, line, column)

    def _compile(self, frame: _Frame) -> _Frame:
        """Consume text up to the frame's closing tag (or the end); returns the filled frame."""
        src = self.src
        special = re.compile("[\r\n" + re.escape(frame.sm[0]) + "]")
        while self.pos < len(src):
            match = special.search(src, self.pos)
            stop = match.start() if match else len(src)
            if stop > self.pos:  # plain text up to the next CR, LF or delimiter start
                chunk = src[self.pos : stop]
                frame.saw_cr = False
                frame.only_ws = frame.only_ws and not chunk.strip(" \t")
                frame.out.append(chunk)
                self.pos = stop
                continue
            c = src[self.pos]
            self.pos += 1
            if c == "\r":  # kept only when a newline follows
                frame.saw_cr = True
            elif c == "\n":
                self.line += 1
                if not frame.iterable or not frame.only_ws:
                    frame.out.append("\r\n" if frame.saw_cr else "\n")
                frame.flush()
                frame.iterable, frame.only_ws, frame.sol = False, True, True
            elif len(frame.sm) > 1 and not src.startswith(frame.sm[1], self.pos):  # a lone "{"
                frame.saw_cr = False
                frame.only_ws = frame.only_ws and c in " \t"
                frame.out.append(c)
            else:
                frame.saw_cr = False
                sm = frame.sm
                if self._tag(frame, self.pos - 1):
                    return frame
                frame.sol = False
                if frame.sm != sm:
                    special = re.compile("[\r\n" + re.escape(frame.sm[0]) + "]")
        frame.flush()
        if frame.tag is not None:
            sm, em, tag = frame.sm, frame.em, frame.tag
            raise self._error(f"unclosed section {sm}#{tag}{em}: missing {sm}/{tag}{em}", frame.tag_pos)
        return frame

    def _tag(self, frame: _Frame, start: int) -> bool:
        """Handle the tag whose start delimiter is at ``start``; True when it closed ``frame``."""
        sm, em = frame.sm, frame.em
        close = self.src.find(em, start + len(sm))
        if close < 0:
            raise self._error(f"unclosed tag: missing {em!r}", start)
        command = self.src[start + len(sm) : close]
        self.pos = close + len(em)
        if not command:
            raise self._error(f"empty tag {sm}{em}", start)
        sigil, name = command[0], command[1:].strip(_JAVA_TRIM)

        if sigil in "#^$":
            self._open_section(frame, sigil, name, start)
        elif sigil == "/":
            if not frame.sol or not frame.only_ws:
                frame.flush()
            else:  # blanks before a standalone closing tag are dropped
                frame.out.clear()
            if frame.tag is None:
                raise self._error(f"unexpected closing tag {sm}/{name}{em}: no section is open", start)
            if name != frame.tag:
                raise self._error(f"mismatched closing tag {sm}/{name}{em}: expected {sm}/{frame.tag}{em}", start)
            return True
        elif sigil in "<>":
            raise self._error(f"partials are not supported: {sm}{command}{em}", start)
        elif sigil == "!":  # mustache.java adds the comment's code before writing pending text
            frame.codes.append("tag")
            frame.flush()
        else:
            frame.flush()
            if sigil == "{":
                if len(em) > 1 and em[1] == "}":
                    if not self.src.startswith("}", self.pos):
                        raise self._error(f"unclosed triple mustache: missing '}}' after {sm}{command}{em}", start)
                    self.pos += 1
                else:
                    name = name[:-1]
                frame.add(_Variable(name, raw=True))
            elif sigil == "&":
                frame.add(_Variable(name, raw=True))
            elif sigil == "=":
                frame.sm, frame.em = self._delimiters(command, start)
            elif sigil != "%":  # pragmas: none is implemented, mustache.java ignores them
                frame.add(_Variable(command.strip(_JAVA_TRIM), raw=False))
        return False

    def _open_section(self, frame: _Frame, sigil: str, name: str, start: int) -> None:
        line_before = self.line
        body = self._compile(
            _Frame(name, start, sol=frame.sol and frame.only_ws, sm=frame.sm, em=frame.em, iterable=True)
        )
        spanned_lines = self.line != line_before
        if not frame.only_ws or not spanned_lines:
            frame.flush()
        else:  # indentation before a standalone section tag is dropped
            frame.out.clear()
        children = tuple(body.nodes)
        if sigil == "$":  # a template-inheritance block outside inheritance renders its body
            frame.codes.append("tag")
            frame.nodes.extend(children)
        elif sigil == "^":
            frame.add(_Section(name, children, inverted=True))
        else:
            frame.add(self._section(name, children, body.codes, start))
        frame.iterable = spanned_lines

    def _delimiters(self, command: str, start: int) -> tuple[str, str]:
        spec = _JAVA_REGEX_SPACE.sub("", command)  # "=<% %>=" -> "=<%%>="
        half = len(spec) // 2
        if len(spec) > 6 or len(spec) % 2 or half < 2:
            raise self._error(f"invalid set-delimiter tag {command!r}", start)
        return spec[1:half], spec[half:-1]

    def _section(self, name: str, children: tuple[_Node, ...], codes: list[str], start: int) -> _Node:
        """A ``{{#name}}`` tag: an Elasticsearch lambda when the name says so, else a section."""
        lowered = name.lower()
        if lowered == "tojson":
            return _ToJson(self._function_path("toJson", children, codes, start))
        if lowered == "join":
            return _Join(self._function_path("join", children, codes, start), ",", children)
        custom_join = _JOIN_WITH_DELIMITER.fullmatch(name)
        if custom_join:
            return _Join(self._function_path("join", children, codes, start), custom_join.group(1), children)
        if lowered == "url":
            return _Url(children)
        return _Section(name, children, inverted=False)

    def _function_path(self, function: str, children: tuple[_Node, ...], codes: list[str], start: int) -> str | None:
        """The path a ``toJson``/``join`` body names; None when the body is a tag (names nothing)."""
        if len(codes) != 1:
            raise self._error(f"Mustache function [{function}] must contain one and only one identifier", start)
        if codes[0] != "text":
            return None
        return "".join(node.text for node in children if isinstance(node, _Text))


# --------------------------------------------------------------------------------------------------
# Value lookup: ReflectionObjectHandler.find over CustomReflectionObjectHandler's coercions


_JAVA_INT = re.compile(r"[+-]?[0-9]+")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_MISSING = object()


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _is_map(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)  # dict first: ABC checks are slow


def _member(scope: Any, key: str, name: str) -> Any:
    """``scope[key]`` the way Elasticsearch sees it, or ``_MISSING``."""
    if _is_map(scope):
        return scope[key] if key in scope else _MISSING
    if _is_list(scope):  # CollectionMap: "size", or an index; a null element counts as absent
        if key == "size":
            return len(scope)
        if not _JAVA_INT.fullmatch(key) or not _INT_MIN <= int(key) <= _INT_MAX:
            return _MISSING
        index = int(key)
        items = scope if isinstance(scope, (list, tuple)) else list(scope)
        if not 0 <= index < len(items):
            raise TemplateRenderError(
                f"Failed to get value for {name}: index {index} is out of bounds for a list of {len(items)}"
            )
        item = items[index]
        return _MISSING if item is None else item
    return _MISSING  # scalars have no members (Elasticsearch disables reflection)


def _lookup(name: str, stack: list[Any]) -> Any:
    """Resolve ``name`` against the scope stack (innermost last); ``None`` when absent."""
    if name == ".":
        return stack[-1] if stack else None
    segments = name.split(".")
    for scope in reversed(stack):
        value = _member(scope, name, name)  # the whole name as one key comes first
        if value is not _MISSING:
            return value
        if len(segments) == 1:
            continue
        current = scope
        for segment in segments[:-1]:
            current = _member(current, segment, name)
            if current is _MISSING:
                break  # an intermediate segment is missing: try the next outer scope
            if current is None:
                return None
        else:
            value = _member(current, segments[-1], name)
            return None if value is _MISSING else value
    return None


def _is_falsey(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return value == ""
    if _is_list(value):
        return len(value) == 0
    return False


# --------------------------------------------------------------------------------------------------
# Stringification


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)


def _json_datetime(value: datetime) -> str:
    value = _utc(value)
    return f"{value.date().isoformat()}T{value:%H:%M:%S}.{value.microsecond // 1000:03d}Z"


def to_text(value: Any) -> str:
    """Stringify ``value`` the way Java's ``toString`` does inside Watcher's model.

    Args:
        value: any model value: ``None``, ``bool``, ``int``, ``float``, ``str``, ``datetime``/``date``,
            a mapping, a list/tuple/set, or anything else (printed with ``str``).

    Returns:
        ``None`` → ``""`` (``"null"`` when nested), ``True`` → ``"true"``, ``3`` → ``"3"``,
        ``3.0`` → ``"3.0"``, ``1e10`` → ``"1.0E10"`` (``Double.toString``), a mapping →
        ``"{k=v, k2=v2}"`` and a list → ``"[a, b]"`` (recursive, insertion order), a datetime →
        ``ZonedDateTime.toString()`` in UTC (``"2024-05-01T10:15Z"``, ``"...T10:15:30Z"``,
        ``"...T10:15:30.123Z"``, ``"...T10:15:30.123456Z"``), a date → ``"2024-05-01"``.

    Note that a *tag* whose value is a list prints ``{0=a, 1=b}``, not this function's ``[a, b]``
    (Elasticsearch's ``CustomReflectionObjectHandler`` turns lists into maps before printing).

    Raises:
        TemplateRenderError: the value contains itself.
    """
    if value is None:
        return ""
    try:
        return java_string(value, utc=True)
    except SelfReferenceError as error:
        raise TemplateRenderError(str(error)) from None


def _tag_text(value: Any) -> str:
    """What ``{{x}}`` prints: :func:`to_text`, except that a list goes through ES's ``CollectionMap``."""
    if _is_list(value):
        return to_text(dict(enumerate(value)))
    return to_text(value)


def _json(value: Any, path: tuple[int, ...]) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{_json_escape(value)}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = java_double(value)
        return text if math.isfinite(value) else f'"{text}"'
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else f'"{value}"'
    if isinstance(value, datetime):
        return f'"{_json_datetime(value)}"'
    if isinstance(value, date):
        return f'"{value.isoformat()}"'
    if _is_map(value) or _is_list(value):
        if id(value) in path:
            raise TemplateRenderError("Iterable object is self-referencing itself")
        path = (*path, id(value))
        if _is_map(value):
            fields = (f'"{_json_escape(to_text(k))}":{_json(v, path)}' for k, v in value.items())
            return "{" + ",".join(fields) + "}"
        return "[" + ",".join(_json(item, path) for item in value) + "]"
    return f'"{_json_escape(to_text(value))}"'


def to_json(value: Any) -> str:
    """Serialise ``value`` as compact JSON, the way Elasticsearch's XContent builder does for ``toJson``.

    Args:
        value: a JSON-like model value (mappings, lists/tuples/sets, str, int, float, bool, None,
            datetime, date; anything else becomes a JSON string of :func:`to_text`).

    Returns:
        Compact JSON (no spaces, non-ASCII kept as is) that is always valid: strings escape ``"``,
        ``\\``, control characters (``\\n``, ``\\t``... else ``\\u00XX``) and lone surrogates;
        floats print like Java (``1.0E10``), NaN/Infinity as strings; datetimes become ISO-8601
        UTC strings with exactly milliseconds (``"2024-05-01T10:15:30.123Z"``), dates
        ``"2024-05-01"``.

    Raises:
        TemplateRenderError: the value contains itself.
    """
    return _json(value, ())


def _java_url_encode(text: str) -> str:
    """``URLEncoder.encode(text, UTF_8)``: form encoding, space → ``+``, ``*`` kept, ``~`` encoded."""
    return quote_plus(text, safe="*", encoding="utf-8", errors="replace").replace("~", "%7E")


# --------------------------------------------------------------------------------------------------
# Rendering


class _Output:
    """Collects rendered text; enforces the size limit the way SizeLimitingStringWriter does.

    With a ``tracker`` (escape mode ``json_strings``) it also follows whether the text written so
    far has left an open JSON string (see :class:`watcher.templates.jsontext.StringTracker`).
    """

    __slots__ = ("parts", "size", "limit", "tracker")

    def __init__(self, limit: int | None, tracker: StringTracker | None = None) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.tracker = tracker

    def write(self, text: str) -> None:
        if not text:
            return
        if self.limit is not None:
            self.size += len(text) if text.isascii() else len(text.encode("utf-16-le", "surrogatepass")) // 2
            if self.size > self.limit:
                raise TemplateRenderError(
                    f"Mustache script result size limit exceeded: the output is longer than {self.limit} "
                    "characters (mustache.max_output_size_bytes)"
                )
        if self.tracker is not None:
            self.tracker.feed(text)
        self.parts.append(text)

    def write_value(self, text: str, escape: Escape) -> None:
        """Write the text of a value: JSON-escaped in mode ``json``, and in mode ``json_strings``
        when it lands inside a JSON string (docs/correctness.md#json-bodies)."""
        if escape == "json" or (escape == "json_strings" and self.tracker is not None and self.tracker.in_string):
            text = _json_escape(text)
        self.write(text)

    def nested(self) -> _Output:
        """An unlimited output for a lambda's body, starting in this output's JSON-string state."""
        tracker = None
        if self.tracker is not None:
            tracker = StringTracker()
            tracker.feed('"' if self.tracker.in_string else "")
        return _Output(None, tracker)

    def value(self) -> str:
        return "".join(self.parts)


def _render(nodes: tuple[_Node, ...], stack: list[Any], escape: Escape, out: _Output) -> None:
    for node in nodes:
        match node:
            case _Text(text):
                out.write(text)
            case _Variable(name, raw):
                value = _lookup(name, stack)
                if value is not None:
                    text = _tag_text(value)
                    if raw:
                        out.write(text)
                    else:
                        out.write_value(text, escape)
            case _Section(name, children, inverted):
                _render_section(_lookup(name, stack), children, inverted, stack, escape, out)
            case _ToJson(path):  # already JSON: never escaped
                value = None if path is None else _lookup(path, stack)
                if _is_map(value) or _is_list(value):
                    out.write(to_json(value))
                elif value is not None:
                    out.write(to_text(value))
            case _Join(path, delimiter, children):
                body = out.nested()
                _render(children, stack, escape, body)
                value = None if path is None else _lookup(path, stack)
                if not _is_list(value):
                    out.write(body.value())  # Elasticsearch returns the rendered body unchanged
                elif any(item is None for item in value):
                    raise TemplateRenderError(f"join of {path}: the list holds a null element")
                else:
                    joined = delimiter.join(to_text(item) for item in value)
                    # Watcher's json mode prints a join as it is; in a JSON body, joined values are text
                    out.write_value(joined, "json_strings" if escape == "json_strings" else "none")
            case _Url(children):
                body = _Output(None)
                # form-encoded output holds no quote, backslash or control character: nothing to
                # escape in a JSON body, and escaping before encoding would change the value
                _render(children, stack, "none" if escape == "json_strings" else escape, body)
                out.write(_java_url_encode(body.value()))


def _render_section(
    value: Any, children: tuple[_Node, ...], inverted: bool, stack: list[Any], escape: Escape, out: _Output
) -> None:
    """``IterableCode``/``NotIterableCode``: repeat per list element, once for other truthy values."""
    if inverted or _is_falsey(value):
        if inverted and _is_falsey(value):
            _render(children, stack, escape, out)  # no scope pushed
        return
    for item in value if _is_list(value) else (value,):
        if item is not None:  # mustache.java pushes no scope for a null element
            stack.append(item)
        try:
            _render(children, stack, escape, out)
        finally:
            if item is not None:
                stack.pop()


class Template:
    """A compiled template; immutable, cheap to render many times, safe to share between threads.

    Build it with :func:`compile_template`. ``source`` is the template text it was compiled from.
    """

    __slots__ = ("source", "_nodes")

    def __init__(self, source: str) -> None:
        """Compile ``source``; raises :class:`TemplateSyntaxError`. Prefer :func:`compile_template`."""
        self.source = source
        self._nodes = _Parser(source).parse()

    def render(self, model: Mapping[str, Any], *, escape: Escape = "none") -> str:
        """Render against ``model``.

        Args:
            model: the template model, e.g. ``{"ctx": {...}}`` plus template params.
            escape: ``"none"`` for Watcher text templates (logging text, webhook path, params,
                headers: ``text/plain``, nothing escaped); ``"json"`` for search bodies and
                ``__json__::`` templates (``application/json``: ``{{x}}`` output JSON-string-escaped,
                without quotes; ``{{{x}}}``, ``{{&x}}`` and lambda output never escaped);
                ``"json_strings"`` for request bodies declared JSON (ours, docs/correctness.md#json-bodies):
                ``{{x}}`` and ``join`` output JSON-string-escaped where it lands inside a JSON string
                of the output, printed as it is elsewhere; ``{{{x}}}``, ``{{&x}}``, ``toJson`` and
                ``url`` output never escaped.

        Returns:
            The rendered text.

        Raises:
            TemplateRenderError: a list index out of range, a ``join`` over a null element, a value
                that contains itself, or output longer than :data:`MAX_OUTPUT_SIZE` characters.
            ValueError: ``escape`` is not one of ``"none"``, ``"json"``, ``"json_strings"``.
        """
        if escape not in ESCAPES:
            raise ValueError(f"escape must be 'none', 'json' or 'json_strings', not {escape!r}")
        out = _Output(MAX_OUTPUT_SIZE, StringTracker() if escape == "json_strings" else None)
        _render(self._nodes, [model], escape, out)
        return out.value()

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


@functools.lru_cache(maxsize=4096)
def compile_template(source: str) -> Template:
    """Compile (once; results are cached) Mustache text into a :class:`Template`.

    Args:
        source: the template text, without any ``__json__::`` prefix.

    Returns:
        The compiled template.

    Raises:
        TemplateSyntaxError: unclosed section, mismatched or stray closing tag, unclosed ``{{``,
            empty ``{{}}``, a partial, a bad set-delimiter tag, or a ``toJson``/``join`` whose body
            is not exactly one identifier.
    """
    return Template(source)


def _content_type_prefix(source: str) -> tuple[str, str | None]:
    """Watcher's ``TextTemplateEngine`` prefix handling: ``__json__::text`` → (``text``, ``"json"``)."""
    if not source.startswith("__"):
        return source, None
    index = source.find("__::", 3)
    if index < 0:
        return source, None
    content_type = source[2:index].lower()
    if index < 12:
        source = source[index + 4 :]
    return source, "json" if content_type in ("json", "application/json") else "none"


def render(source: str, model: Mapping[str, Any], *, escape: Escape = "none") -> str:
    """Render a Watcher text template in one call.

    Args:
        source: template text. A ``__<type>__::`` prefix is removed as Watcher's text template
            engine does; ``__json__::`` switches to ``escape="json"``, any other type to ``"none"``.
        model: the template model, e.g. ``{"ctx": {...}}``.
        escape: ``"none"``, ``"json"`` or ``"json_strings"`` (see :meth:`Template.render`) when
            ``source`` has no content-type prefix.

    Returns:
        The rendered text; text without ``{{`` is returned unchanged, never compiled.

    Raises:
        TemplateSyntaxError, TemplateRenderError: as :func:`compile_template` and :meth:`Template.render`.
    """
    source, prefix_escape = _content_type_prefix(source)
    if "{{" not in source:
        return source
    return compile_template(source).render(model, escape=prefix_escape or escape)
