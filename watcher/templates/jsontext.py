"""JSON text pieces the template engines share: string escaping, and where a JSON string starts and ends.

A request body declared JSON (``Content-Type: application/json`` or ``…+json``) is rendered in the
``json_strings`` escape mode of both template languages (docs/correctness.md#json-bodies): a value
printed *inside* a JSON string literal of the body is JSON-string-escaped, a value printed outside
one is printed as it is. :class:`StringTracker` tells which of the two a position is, by reading the
text that comes before it; :func:`json_escape` is the escaping (Jackson's ``quoteAsString``, which
Watcher's ``__json__::`` mode and search bodies use, docs/semantics.md#no-html-escaping).
"""

from __future__ import annotations

import re

__all__ = ["StringTracker", "json_escape"]

_JSON_ESCAPES = {chr(i): f"\\u{i:04X}" for i in range(0x20)} | {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_JSON_SPECIAL = re.compile('[\x00-\x1f"\\\\\ud800-\udfff]')
_QUOTE_OR_BACKSLASH = re.compile(r'["\\]')


def _json_escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _JSON_ESCAPES.get(char) or f"\\u{ord(char):04X}"


def json_escape(text: str) -> str:
    """``text`` escaped for the inside of a JSON string, without the surrounding quotes.

    Like Jackson's ``JsonStringEncoder.quoteAsString`` (Elasticsearch's Mustache JSON mode): ``"``
    → ``\\"``, ``\\`` → ``\\\\``, ``\\b \\t \\n \\f \\r`` as such, other control characters below
    U+0020 as ``\\u00XX``, lone surrogates as ``\\uXXXX``; every other character (``/``, non-ASCII)
    is kept as it is. Example: ``'say "hi"\\n'`` → ``'say \\"hi\\"\\\\n'``.
    """
    return _JSON_SPECIAL.sub(_json_escape_char, text)


class StringTracker:
    """Follows text written in order and tells whether the next character lands inside a JSON string.

    Feed it every piece of the output with :meth:`feed`; :attr:`in_string` is then True when the
    text so far has opened a JSON string literal (an unescaped ``"`` outside a string) that it has
    not closed. Only ``"`` and ``\\`` matter: the tracker does not check that the text is JSON (a
    malformed body is caught when the rendered body is parsed, docs/correctness.md#json-bodies).
    """

    __slots__ = ("in_string", "_escaped")

    def __init__(self) -> None:
        self.in_string = False
        self._escaped = False  # the last character fed was a backslash inside a string

    def feed(self, text: str) -> None:
        """Advance over ``text`` (any length, may be empty)."""
        if not text:
            return
        position = 0
        if self._escaped:  # the character after a backslash is part of the escape
            self._escaped = False
            position = 1
        while True:
            if self.in_string:
                match = _QUOTE_OR_BACKSLASH.search(text, position)
                if match is None:
                    return
                if match.group() == "\\":
                    if match.end() == len(text):
                        self._escaped = True
                        return
                    position = match.end() + 1
                    continue
                self.in_string = False
                position = match.end()
            else:
                start = text.find('"', position)
                if start < 0:
                    return
                self.in_string = True
                position = start + 1
