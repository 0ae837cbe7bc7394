"""Secrets in connector files: ``${ENV_VAR}`` / ``${file:/path}`` references, :class:`Secret`, masking.

A connector file never needs to hold a key in clear: any string in a connector's configuration may
contain ``${NAME}`` (an environment variable) or ``${file:/path}`` (a file's contents, trailing
newlines removed; a relative path is relative to the connectors file). ``$${`` writes a literal
``${``. Every substituted value is treated as a secret, and so is every value of a field typed
:class:`Secret` (passwords, tokens, API keys, the Slack webhook URL) even when written in clear.
Secrets are never printed: ``validate``, dry-run output, records and logs show ``***``
(see docs/semantics.md#secrets; Watcher itself shows ``::es_redacted::``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pydantic
from pydantic_core import core_schema

from watcher.model.problems import Reader

MASK = "***"

# ``$${`` escapes a literal ``${``; ``${...}`` is a reference (no nesting).
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Secret:
    """A sensitive string whose ``str``/``repr`` is ``***``; :meth:`reveal` gives the value.

    Usable as a pydantic field type: accepts a string (or a Secret), reports a non-string as
    "expected a string", and serialises as ``***`` (``model_dump`` never leaks it).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = str(value)

    def reveal(self) -> str:
        """The secret value itself: only for building the request that is actually sent."""
        return self._value

    def __repr__(self) -> str:
        return MASK

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return core_schema.no_info_before_validator_function(
            lambda value: value.reveal() if isinstance(value, Secret) else value,
            core_schema.no_info_after_validator_function(cls, core_schema.str_schema()),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _value: MASK),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict:
        return {"type": "string", "writeOnly": True,
                "description": "a secret; use ${ENV_VAR} or ${file:/path} rather than a clear value"}


def reveal(value: Any) -> Any:
    """``value.reveal()`` for a :class:`Secret`, ``value`` unchanged otherwise (None stays None)."""
    return value.reveal() if isinstance(value, Secret) else value


def resolve_secrets(value: Any, reader: Reader, path: Sequence[str | int], *,
                    environ: Mapping[str, str] | None = None,
                    base_dir: str | Path | None = None) -> tuple[Any, list[str]]:
    """Expand ``${ENV}``, ``${ENV:-default}`` and ``${file:/path}`` in every string inside ``value``.

    Args:
        value: plain JSON-like data (mappings, lists, scalars) of one connector's configuration.
        reader: where problems go; each is reported at the position of the string holding the
            reference, e.g. ``connectors.ops.api_key: undefined environment variable OPSGENIE_API_KEY``;
            a variable set but empty (without ``:-``) and an empty secret file are problems too.
        path: where ``value`` sits in the document.
        environ: the environment to read (default ``os.environ``).
        base_dir: directory for relative ``${file:…}`` paths (default: the current directory).

    Returns:
        ``(resolved value, substituted values)``; the second list holds every value that was
        substituted (to be masked wherever it shows up). A reference that could not be resolved is
        left in place, after its problem was recorded.
    """
    environ = os.environ if environ is None else environ
    found: list[str] = []

    def expand_string(text: str, where: tuple) -> str:
        def substitute(match: re.Match) -> str:
            if match.group(0) == "$${":
                return "${"
            reference = match.group(1).strip()
            resolved = _lookup(reference, environ, base_dir)
            if isinstance(resolved, _Failure):
                reader.problem(where, resolved.message, at_value=True)
                return match.group(0)
            found.append(resolved)
            return resolved

        return _REFERENCE.sub(substitute, text) if "${" in text else text

    def walk(node: Any, where: tuple) -> Any:
        if isinstance(node, Mapping):
            return {key: walk(item, (*where, key)) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item, (*where, index)) for index, item in enumerate(node)]
        if isinstance(node, str):
            return expand_string(node, where)
        return node

    return walk(value, tuple(path)), found


class _Failure:
    def __init__(self, message: str):
        self.message = message


def _lookup(reference: str, environ: Mapping[str, str], base_dir: str | Path | None) -> str | _Failure:
    if reference.startswith("file:"):
        name = reference[len("file:"):].strip()
        if not name:
            return _Failure("expected ${file:/path/to/secret}, found an empty file name")
        file = Path(name).expanduser()
        if not file.is_absolute() and base_dir is not None:
            file = Path(base_dir) / file
        try:
            content = file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            return _Failure(f"cannot read secret file {file}: {reason}")
        return content or _Failure(f"secret file {file} is empty")
    name, has_default, default = reference.partition(":-")  # shell-style ${VAR:-default}
    name = name.strip()
    if not _ENV_NAME.fullmatch(name):
        return _Failure(f"expected ${{ENV_VAR}}, ${{ENV_VAR:-default}} or ${{file:/path}}, found ${{{reference}}}")
    if environ.get(name):
        return environ[name]
    if has_default:
        return default
    if name not in environ:
        return _Failure(f"undefined environment variable {name}")
    # Set but empty: a deployment that forgot the value (an empty default must be written ${NAME:-}).
    return _Failure(f"environment variable {name} is set but empty (write ${{{name}:-}} if empty is meant)")


def secret_values(value: Any) -> list[str]:
    """Every :class:`Secret` value found inside ``value`` (pydantic models, dataclass instances such as
    a parsed action's config, mappings, lists and tuples)."""

    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Secret):
            out.append(node.reveal())
        elif isinstance(node, pydantic.BaseModel):
            for name in type(node).model_fields:
                walk(getattr(node, name))
        elif dataclasses.is_dataclass(node) and not isinstance(node, type):
            for field in dataclasses.fields(node):
                walk(getattr(node, field.name))
        elif isinstance(node, Mapping):
            for item in node.values():
                walk(item)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(value)
    return out


# Shorter values cannot be masked as substrings without mangling unrelated text ("method" → "m***thod").
# Every ${…} substitution counts as a secret, ports and such included; real secrets are longer.
MIN_MASKABLE_LENGTH = 4

# Characters that one encoder or another leaves alone in a URL (RFC 3986 sub-delims and path chars).
_URL_SAFE_SETS = ("", "/", "+", ":/", "/+=", "~", ":/?#[]@!$&'()*+,;=")


def _variants(secret: str) -> set[str]:
    """Every form in which ``secret`` may appear once sent or decoded: as is, percent-encoded by the
    usual encoders (``+`` kept or not, ``/`` kept or not), form-encoded, form-decoded (``+`` read as
    a space), JSON-escaped, and lower-cased (host names)."""
    forms = {secret, quote_plus(secret), json.dumps(secret)[1:-1], secret.replace("+", " "), secret.lower()}
    forms.update(quote(secret, safe=safe) for safe in _URL_SAFE_SETS)
    forms.update(form.lower() for form in list(forms) if "%" in form)  # %2f as well as %2F
    return forms


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of every secret in ``text`` with ``***``.

    Also masks the encoded and decoded forms of each secret (see :func:`_variants`); longest first,
    so a secret that contains another is masked whole. Secrets shorter than
    :data:`MIN_MASKABLE_LENGTH` are not masked (they would corrupt the text, and every ``${…}``
    value counts as a secret, a port number too).
    """
    if not text:
        return text
    forms = sorted({form for secret in secrets if secret and len(str(secret)) >= MIN_MASKABLE_LENGTH
                    for form in _variants(str(secret)) if form}, key=len, reverse=True)
    for form in forms:
        if form in text:
            text = text.replace(form, MASK)
    return text


def mask_data(value: Any, secrets: Iterable[str]) -> Any:
    """:func:`mask` applied to every string (keys included) inside JSON-like ``value``."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return value
    if isinstance(value, Mapping):
        return {mask(str(key), secrets): mask_data(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_data(item, secrets) for item in value]
    if isinstance(value, Secret):
        return MASK
    if isinstance(value, str):
        return mask(value, secrets)
    return value
