"""Read JSON as Elasticsearch reads it: comments allowed, every position kept, errors in JSON's words.

Elasticsearch parses request bodies — a watch among them — with Jackson configured to accept
comments (``JsonParser.Feature.ALLOW_COMMENTS``) and to refuse duplicate member names
(``STRICT_DUPLICATE_DETECTION``); see docs/semantics.md#json-watch-files. So a watch file may carry

* ``// line comments`` up to the end of the line, and
* ``/* block comments */``, which may span lines (they do not nest);

comment markers inside strings are string text. Everything else is strict JSON (RFC 8259): no
trailing commas, no single quotes, no ``#`` comments, no ``NaN``, no leading zeros, no unescaped
control characters in strings, one value per file.

:func:`parse_json` returns the same positioned containers as the YAML reader (ruamel's
``CommentedMap``/``CommentedSeq`` with ``lc`` set), so every later problem — a wrong field, a bad
template — names the exact line and column whether the file has comments or not. Scalars are
plain ``str``/``int``/``float``/``bool``/``None``.

Errors are :class:`JsonSyntaxError`: 1-based line and column of where the reading stopped, and a
message saying what was expected and what was found there, e.g.
``expected ',' or '}' after an object member, found ']'``. Columns count characters (code points)
from 1; a byte order mark at the start is not counted.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from watcher.errors import DefinitionProblem

__all__ = ["JsonSyntaxError", "parse_json"]

VALUE = "a value (object, array, string, number, true, false or null)"

_BREAK = re.compile(r"\r\n|\r|\n")
_SPACE = re.compile(r"[ \t\n\r]+")
_LINE_COMMENT = re.compile(r"//[^\n\r]*")
_STRING_RUN = re.compile(r'[^"\\\x00-\x1f]+')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_LIKE = re.compile(r"[-+0-9.eE]*[A-Za-z0-9_.]*")
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class JsonSyntaxError(DefinitionProblem, ValueError):
    """The text is not JSON as Elasticsearch reads it.

    Raised by :func:`parse_json`. The caller reports it with the file name (the YAML/JSON reader,
    :func:`watcher.model.source.load_text`, raises it again as a ``SourceError``).

    Attributes:
        line: 1-based line where reading stopped.
        column: 1-based column (in characters) on that line.
        message: what was expected and what was found, e.g.
            ``expected ':' after the member name "a", found '='``.
    """

    def __init__(self, line: int, column: int, message: str):
        super().__init__(f"line {line}, column {column}: {message}")
        self.line, self.column, self.message = line, column, message


def parse_json(text: str, max_depth: int = 100) -> Any:
    """Parse one JSON document that may contain ``//`` and ``/* */`` comments.

    Args:
        text: the document.
        max_depth: how deeply objects and arrays may nest (the top-level container is depth 1).

    Returns:
        ``CommentedMap`` for objects (``lc.line``/``lc.col`` of the ``{``; ``lc.key(name)`` the name's
        opening quote, ``lc.value(name)`` the value's first character), ``CommentedSeq`` for arrays
        (``lc.item(i)``), and plain scalars. Positions are 0-based, as ruamel's.

    Raises:
        JsonSyntaxError: the first place where the text stops being JSON: a missing or extra
            comma, colon or bracket, a trailing comma, an unterminated string or comment, a bad
            escape or number, a duplicate member name, nesting deeper than ``max_depth``, or text
            after the top-level value.
    """
    return _Parser(text, max_depth).document()


class _Parser:
    def __init__(self, text: str, max_depth: int):
        self.text = text
        self.max_depth = max_depth
        self.i = 1 if text.startswith("\ufeff") else 0
        self.lines = [self.i] + [match.end() for match in _BREAK.finditer(text)]

    # -- positions and errors --

    def where(self, index: int) -> tuple[int, int]:
        """0-based (line, column) of ``index``."""
        line = bisect.bisect_right(self.lines, index) - 1
        return line, index - self.lines[line]

    def error(self, index: int, message: str) -> JsonSyntaxError:
        line, column = self.where(index)
        return JsonSyntaxError(line + 1, column + 1, message)

    def expected(self, what: str, index: int | None = None, hint: str = "") -> JsonSyntaxError:
        index = self.i if index is None else index
        return self.error(index, f"expected {what}, found {self.found(index)}{hint}")

    def found(self, index: int) -> str:
        """What stands at ``index``, for messages: ``']'``, ``a string "abc"``, ``the end of the file``…"""
        text = self.text
        if index >= len(text):
            return "the end of the file"
        char = text[index]
        if char == '"':
            end = index + 1
            while end < len(text) and end - index <= 40 and text[end] not in '"\n\r':
                end += 2 if text[end] == "\\" else 1
            shown = text[index:end + 1] if end < len(text) and text[end] == '"' else text[index:end] + "…"
            return f"a string {shown}"
        if char == "-" or "0" <= char <= "9":
            return f"a number {_NUMBER_LIKE.match(text, index).group()}"
        word = _WORD.match(text, index)
        if word:
            name = word.group()
            if name.lower() in ("true", "false", "null") or name in ("None", "True", "False"):
                return f"'{name}' (JSON writes true, false and null in lower case)"
            if name in ("NaN", "Infinity", "undefined"):
                return f"'{name}' (JSON has no such value)"
            return f"'{name}'"
        if char == "'":
            return "\"'\" (JSON strings are in double quotes)"
        if char == "#":
            return "'#' (JSON has no # comments; Elasticsearch reads // and /* */ comments)"
        if char.isprintable() and not char.isspace():
            return f"'{char}'"
        return f"the character U+{ord(char):04X}"

    # -- whitespace and comments --

    def skip(self) -> None:
        """Move past whitespace and comments."""
        text, i = self.text, self.i
        while i < len(text):
            char = text[i]
            if char in " \t\n\r":
                i = _SPACE.match(text, i).end()
            elif text.startswith("//", i):
                i = _LINE_COMMENT.match(text, i).end()
            elif text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise self.error(i, "unterminated comment: '/*' has no closing '*/'")
                i = end + 2
            else:
                break
        self.i = i

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    # -- values --

    def document(self) -> Any:
        self.skip()
        value = self.value(0, f"expected {VALUE}")
        self.skip()
        if self.i < len(self.text):
            raise self.expected("the end of the file after the top-level value")
        return value

    def value(self, depth: int, expected: str, hint_at: str = "") -> Any:
        """The value at the current position (whitespace already skipped); ``expected`` is the start
        of the message when there is none; ``hint_at`` a closing bracket that would mean a trailing comma."""
        char = self.peek()
        if char == "{":
            return self.object(depth + 1)
        if char == "[":
            return self.array(depth + 1)
        if char == '"':
            return self.string()
        if char == "-" or "0" <= char <= "9":
            return self.number()
        word = _WORD.match(self.text, self.i)
        if word and word.group() in ("true", "false", "null"):
            self.i = word.end()
            return {"true": True, "false": False, "null": None}[word.group()]
        hint = " (JSON allows no trailing comma)" if hint_at and char == hint_at else ""
        raise self.error(self.i, f"{expected}, found {self.found(self.i)}{hint}")

    def opened(self, depth: int, container: CommentedMap | CommentedSeq, closing: str) -> bool:
        """Enter the object or array whose bracket is at the current position: ``container`` gets its
        position; True when it closes at once (``{}``, ``[]``)."""
        if depth > self.max_depth:
            raise self.error(self.i, f"nested more than {self.max_depth} levels deep")
        container.lc.line, container.lc.col = self.where(self.i)
        self.i += 1
        self.skip()
        if self.peek() == closing:
            self.i += 1
            return True
        return False

    def another(self, closing: str, what: str) -> bool:
        """After a member or element: True after a ``,`` (another one follows), False after ``closing``."""
        self.skip()
        char = self.peek()
        if char == ",":
            self.i += 1
            self.skip()
            return True
        if char == closing:
            self.i += 1
            return False
        raise self.expected(f"',' or '{closing}' after {what}")

    def object(self, depth: int) -> CommentedMap:
        mapping = CommentedMap()
        if self.opened(depth, mapping, "}"):
            return mapping
        after_comma = False
        while True:
            if self.peek() != '"':
                if after_comma:
                    hint = " (JSON allows no trailing comma)" if self.peek() == "}" else ""
                    raise self.expected("a member name in double quotes after ','", hint=hint)
                raise self.expected("a member name in double quotes or '}'")
            name_at = self.i
            name = self.string()
            if name in mapping:
                line, column = mapping.lc.key(name)
                raise self.error(name_at, f"duplicate member name {_quoted(name)}: already at line {line + 1}, "
                                          f"column {column + 1} (Elasticsearch refuses duplicate names)")
            self.skip()
            if self.peek() != ":":
                raise self.expected(f"':' after the member name {_quoted(name)}")
            self.i += 1
            self.skip()
            value_at = self.i
            value = self.value(depth, f"expected a value for the member {_quoted(name)}")
            mapping[name] = value
            mapping.lc.add_kv_line_col(name, [*self.where(name_at), *self.where(value_at)])
            if not self.another("}", "an object member"):
                return mapping
            after_comma = True

    def array(self, depth: int) -> CommentedSeq:
        sequence = CommentedSeq()
        if self.opened(depth, sequence, "]"):
            return sequence
        expected, hint_at = "expected a value or ']'", ""
        while True:
            item_at = self.i
            sequence.append(self.value(depth, expected, hint_at))
            sequence.lc.add_kv_line_col(len(sequence) - 1, list(self.where(item_at)))
            if not self.another("]", "an array element"):
                return sequence
            expected, hint_at = "expected a value after ','", "]"

    def string(self) -> str:
        text, start = self.text, self.i
        i, parts = start + 1, []
        while True:
            run = _STRING_RUN.match(text, i)
            if run:
                parts.append(run.group())
                i = run.end()
            if i >= len(text):
                raise self.error(start, "unterminated string: the file ends before its closing '\"'")
            char = text[i]
            if char == '"':
                self.i = i + 1
                return "".join(parts)
            if char == "\\":
                decoded, i = self.escape(i)
                parts.append(decoded)
            elif char in "\n\r":
                raise self.error(start, "unterminated string: the line ends before its closing '\"' (a line "
                                        "break inside a string is written \\n)")
            else:
                raise self.error(i, f"control character U+{ord(char):04X} in a string: write it escaped "
                                    f"({_escape_of(char)})")

    def escape(self, i: int) -> tuple[str, int]:
        """Decode the escape at ``i`` (a backslash): ``(text, index after it)``; a surrogate pair of
        ``\\u`` escapes decodes to one character."""
        text = self.text
        code = text[i + 1:i + 2]
        if code in _ESCAPES:
            return _ESCAPES[code], i + 2
        if code != "u":
            shown = f"\\{code}" if code and code.isprintable() else "\\"
            raise self.error(i, f"invalid escape '{shown}' in a string (JSON's escapes: \\\" \\\\ \\/ \\b \\f \\n "
                                "\\r \\t \\uXXXX)")
        unit = self.unit(i)
        if 0xDC00 <= unit <= 0xDFFF:
            raise self.error(i, f"invalid escape '{text[i:i + 6]}': a low surrogate must follow a high one "
                                "(\\uD800-\\uDBFF)")
        if not 0xD800 <= unit <= 0xDBFF:
            return chr(unit), i + 6
        low = self.unit(i + 6) if text.startswith("\\u", i + 6) else None
        if low is None or not 0xDC00 <= low <= 0xDFFF:
            raise self.error(i, f"invalid escape '{text[i:i + 6]}': a high surrogate must be followed by a low "
                                "one (\\uDC00-\\uDFFF), as in \\ud83d\\ude00")
        return chr(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)), i + 12

    def unit(self, i: int) -> int:
        digits = self.text[i + 2:i + 6]
        if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.error(i, f"invalid escape '{self.text[i:i + 6]}': \\u takes four hexadecimal digits")
        return int(digits, 16)

    def number(self) -> int | float:
        text, start = self.text, self.i
        match = _NUMBER.match(text, start)
        after = match.end() if match else start
        if match is None or (after < len(text) and (text[after] in "0123456789.eE+-" or _WORD.match(text, after))):
            shown = _NUMBER_LIKE.match(text, start).group() or text[start]
            raise self.error(start, f"invalid number '{shown}' (JSON writes numbers as 0, -12, 3.5 or 1e-3: no "
                                    "leading zeros, no '+', digits on both sides of '.')")
        literal = match.group()
        self.i = after
        if any(c in literal for c in ".eE"):
            value = float(literal)
            if math.isinf(value):
                raise self.error(start, f"number {literal} is out of range (larger than a double)")
            return value
        try:
            return int(literal)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise self.error(start, f"number with {len(literal)} digits is too long") from None


def _quoted(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _escape_of(char: str) -> str:
    return {"\t": "\\t", "\b": "\\b", "\f": "\\f"}.get(char, f"\\u{ord(char):04x}")
