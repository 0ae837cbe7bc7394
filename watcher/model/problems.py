"""Problems found in definition files, and :class:`Reader`, which collects them while parsing.

Every problem names the file, the 1-based line and column, the field path, what was expected and
what was found. Parsing never stops at the first problem in a file, and a bad file never stops the
others from loading (see :mod:`watcher.definitions.load`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import pydantic

from watcher.errors import DefinitionProblem
from watcher.model.source import Document, plain

M = TypeVar("M", bound=pydantic.BaseModel)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One problem: ``file:line:column: path: message``."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DefinitionError(DefinitionProblem, ValueError):
    """A definition could not be loaded; ``problems`` lists every problem found (at least one)."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def format_path(path: Sequence[str | int]) -> str:
    """``("actions", 0, "connector")`` → ``actions[0].connector``."""
    out = ""
    for segment in path:
        out += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if out else str(segment))
    return out


def describe(value: Any) -> str:
    """A short, human description of a found value for messages: ``a string 'abc'``, ``a list``…"""
    value = plain(value)
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"an integer {value}"
    if isinstance(value, float):
        return f"a number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"a string {shown!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} item{'s' if len(value) != 1 else ''}"
    if isinstance(value, dict):
        return "a mapping" + (f" with keys {', '.join(list(value)[:5])}" if value else " (empty)")
    return type(value).__name__


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ``""``."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


# pydantic error type → what was expected, in our words
_EXPECTED = {
    "string_type": "a string", "int_type": "an integer", "int_parsing": "an integer",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
    "model_type": "a mapping", "list_type": "a list", "greater_than": "a number greater than {gt}",
    "greater_than_equal": "a number of at least {ge}", "less_than_equal": "a number of at most {le}",
    "string_too_short": "a non-empty string", "too_short": "at least {min_length} item(s)",
    "literal_error": "one of {expected}", "enum": "one of {expected}",
}


class Reader:
    """Collects problems for one document while parsers walk it.

    Args:
        document: the positioned document being parsed.
    """

    def __init__(self, document: Document):
        self.document = document
        self.problems: list[Problem] = []

    def problem(self, path: Sequence[str | int], message: str, *, at_value: bool = False) -> None:
        """Record a problem at ``path`` (the key's position; ``at_value`` → the value's position)."""
        line, column = (self.document.value_position(path) if at_value else self.document.position(path))
        self.problems.append(Problem(self.document.file, line, column, format_path(path), message))

    def expected(self, path: Sequence[str | int], expected: str, found: Any) -> None:
        """Record ``expected <expected>, found <description of found>`` at the value's position."""
        self.problem(path, f"expected {expected}, found {describe(found)}", at_value=True)

    def unknown_key(self, path: Sequence[str | int], key: str, allowed: Iterable[str], what: str = "key") -> None:
        allowed = sorted(allowed)
        self.problem((*path, key), f"unknown {what} {key!r}{did_you_mean(key, allowed)}; "
                                   f"expected one of: {', '.join(allowed)}")

    def mapping(self, path: Sequence[str | int], value: Any, what: str = "a mapping") -> Mapping | None:
        """``value`` if it is a mapping, else record a problem and return None."""
        if isinstance(value, Mapping):
            return value
        self.expected(path, what, value)
        return None

    def check_keys(self, path: Sequence[str | int], value: Any, allowed: Iterable[str], what: str) -> Mapping | None:
        """``value`` if it is a mapping (else a problem: expected ``what``); each key not in
        ``allowed`` is a problem with did-you-mean. Returns None when ``value`` is not a mapping."""
        mapping = self.mapping(path, value, what)
        if mapping is None:
            return None
        allowed = tuple(allowed)
        for key in mapping:
            if key not in allowed:
                self.unknown_key(path, str(key), allowed)
        return mapping

    def validate(self, model: type[M], value: Any, path: Sequence[str | int]) -> M | None:
        """Validate ``value`` with a pydantic model; translate its errors into problems.

        Returns:
            The model instance, or None when there were problems (already recorded).
        """
        try:
            return model.model_validate(plain(value))
        except pydantic.ValidationError as error:
            for item in error.errors(include_url=False):
                self._from_pydantic(model, value, tuple(path), item)
            return None

    def _from_pydantic(self, model, value, base: tuple, item: Mapping) -> None:
        loc = tuple(segment for segment in item["loc"] if not _is_union_tag(segment))
        kind, ctx = item["type"], item.get("ctx") or {}
        if kind == "extra_forbidden":
            parent = loc[:-1]
            allowed = _fields_at(model, parent)
            self.unknown_key((*base, *parent), str(loc[-1]), allowed)
        elif kind == "missing":
            self.problem((*base, *loc[:-1]), f"missing required field {loc[-1]!r}")
        elif kind in ("value_error", "assertion_error"):
            message = str(ctx.get("error", item["msg"]))
            self.problem((*base, *loc), message, at_value=True)
        else:
            expected = _EXPECTED.get(kind)
            if expected:
                try:
                    expected = expected.format(**ctx)
                except (KeyError, IndexError):
                    pass
            else:
                expected = item["msg"][0].lower() + item["msg"][1:]
            self.expected((*base, *loc), expected, item.get("input"))

    def raise_if_problems(self) -> None:
        if self.problems:
            raise DefinitionError(self.problems)


def _is_union_tag(segment: Any) -> bool:
    # pydantic inserts the union member's name into ``loc`` (e.g. 'str', 'function-after[...]').
    return isinstance(segment, str) and ("[" in segment or segment in ("str", "int", "float", "bool", "dict", "list"))


def _fields_at(model: type[pydantic.BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names (aliases when set) of the sub-model reached by ``loc`` (for did-you-mean)."""
    current: Any = model
    for segment in loc:
        if isinstance(segment, int) or not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
            current = _inner_model(current)
            if isinstance(segment, int):
                continue
        if not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
            return []
        field = _field_by_name(current, segment)
        current = _inner_model(field.annotation) if field else None
    if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _field_by_name(model, name):
    for field_name, field in model.model_fields.items():
        if name in (field_name, field.alias):
            return field
    return None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
