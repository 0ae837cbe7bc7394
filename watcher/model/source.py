"""Read YAML or JSON files keeping the line and column of every key and item.

A file named ``*.json`` is read as JSON the way Elasticsearch reads it — ``//`` and ``/* */``
comments allowed, errors worded in JSON's terms (:mod:`watcher.model.json_reader`,
docs/semantics.md#json-watch-files); any other file with ruamel.yaml's round-trip loader. Both give
the same positioned containers, so :class:`Document` answers "where is the value at this path?" the
same way for both, and every problem can name ``file:line:column``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from watcher.errors import DefinitionProblem
from watcher.model.json_reader import JsonSyntaxError, parse_json

Path_ = tuple[str | int, ...]


class SourceError(DefinitionProblem, ValueError):
    """The file cannot be read, or is not valid YAML/JSON. ``line``/``column`` are 1-based;
    ``message`` is in the file format's terms (JSON: ``expected ',' or '}' after an object member,
    found ']'``)."""

    def __init__(self, file: str, line: int, column: int, message: str):
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.file, self.line, self.column, self.message = file, line, column, message


@dataclasses.dataclass
class Document:
    """A parsed file: ``data`` keeps ruamel's positioned containers; :meth:`plain` converts them."""

    file: str
    data: Any
    text: str

    def position(self, path: Sequence[str | int]) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path``, or of its nearest existing ancestor.

        For a mapping key the position is the key's own position (where a reader looks for it).
        """
        node, best = self.data, (1, 1)
        for segment in path:
            if isinstance(node, CommentedMap) and segment in node:
                line, col = node.lc.key(segment)
                best = (line + 1, col + 1)
                node = node[segment]
            elif isinstance(node, CommentedSeq) and isinstance(segment, int) and 0 <= segment < len(node):
                line, col = node.lc.item(segment)
                best = (line + 1, col + 1)
                node = node[segment]
            else:
                if isinstance(node, (CommentedMap, CommentedSeq)) and best == (1, 1):
                    best = (node.lc.line + 1, node.lc.col + 1)
                break
        return best

    def value_position(self, path: Sequence[str | int]) -> tuple[int, int]:
        """1-based (line, column) of the *value* at ``path`` (for a mapping entry: after the colon)."""
        if not path:
            return self.position(path)
        parent = self.get(path[:-1])
        key = path[-1]
        if isinstance(parent, CommentedMap) and key in parent:
            line, col = parent.lc.value(key)
            return line + 1, col + 1
        return self.position(path)

    def get(self, path: Sequence[str | int]) -> Any:
        node = self.data
        for segment in path:
            try:
                node = node[segment]
            except (KeyError, IndexError, TypeError):
                return None
        return node


def is_json(file: str | Path) -> bool:
    """True for a file read as JSON: its name ends in ``.json`` (any case)."""
    return Path(str(file)).suffix.lower() == ".json"


def load_text(text: str, file: str, *, as_json: bool | None = None) -> Document:
    """Parse YAML or JSON text; JSON when ``file`` is named ``*.json`` (:func:`is_json`) or
    ``as_json`` is true, with Elasticsearch's comments (:func:`watcher.model.json_reader.parse_json`).

    Raises:
        SourceError: syntax error or duplicate key, with the 1-based position of the problem.
    """
    if as_json or (as_json is None and is_json(file)):
        try:
            data = parse_json(text, max_depth=MAX_DEPTH)
        except JsonSyntaxError as error:
            raise SourceError(file, error.line, error.column, error.message) from None
        check_size(data, file)
        return Document(file=file, data=data, text=text)
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        data = yaml.load(text)
    except RecursionError:
        raise SourceError(file, 1, 1, f"nested more than {MAX_DEPTH} levels deep") from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = " ".join(part for part in (error.context, error.problem) if part)
        if isinstance(error, DuplicateKeyError):
            # ruamel's problem goes on with both values: they may be secrets (a token, a password)
            message = f"duplicate key: {(error.problem or '').split(' with value ')[0]}"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SourceError(file, line, col, message.replace("\n", " ")) from None
    check_size(data, file)
    return Document(file=file, data=data, text=text)


# Bounds on what one definition file may expand to: YAML aliases can make a few hundred bytes
# stand for billions of values ("billion laughs"), and deep nesting exhausts the stack.
MAX_EXPANDED_VALUES = 1_000_000
MAX_DEPTH = 100


def check_size(data: Any, file: str) -> None:
    """Raise :class:`SourceError` when ``data`` expands to more than :data:`MAX_EXPANDED_VALUES`
    values (aliases counted each time they are used) or nests deeper than :data:`MAX_DEPTH`."""
    stack, seen = [(data, 1)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_EXPANDED_VALUES:
            raise SourceError(file, 1, 1, f"the document expands to more than {MAX_EXPANDED_VALUES:,} values "
                                          "(YAML aliases repeating large structures?)")
        if depth > MAX_DEPTH:
            raise SourceError(file, 1, 1, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, Mapping):
            stack.extend((value, depth + 1) for value in node.values())
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)


def load_file(path: str | Path) -> Document:
    """Read and parse one file (UTF-8). Raises :class:`SourceError` (also for unreadable files)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SourceError(str(path), 1, 1, f"cannot read file: {error}") from None
    return load_text(text, str(path))


def plain(value: Any) -> Any:
    """Convert ruamel containers and scalar subclasses to plain dict/list/str/int/float/bool/None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value
