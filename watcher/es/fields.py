"""What the cluster's mappings say about fields (the field capabilities API): whether a field exists
in the indices a rule searches, and whether the cluster can aggregate on it."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import Any


# Both products end the reason with this remedy when a search aggregates or sorts on a text field
# (Elasticsearch 8 starts it with "Fielddata is disabled on [f] in [index]", OpenSearch 2 with
# "Text fields are not optimised…"; docs: "fielddata mapping parameter").
_TEXT_FIELD_REFUSED = re.compile(r"set fielddata=true on \[([^\]]+)\]")


def refused_text_field(reason: str) -> str | None:
    """The field named by a cluster's refusal to aggregate or sort on a ``text`` field, else None."""
    found = _TEXT_FIELD_REFUSED.search(reason)
    return found[1] if found else None


@dataclasses.dataclass(frozen=True)
class FieldCaps:
    """The field capabilities of some fields in some indices.

    Attributes:
        indices: the concrete indices the pattern matched (empty: none matched).
        fields: ``{field: {type: {"aggregatable": bool, "searchable": bool, ...}}}`` as the cluster
            answers; a field no index maps is absent.
    """

    indices: tuple[str, ...]
    fields: dict[str, dict[str, Any]]

    def mapped(self, field: str) -> bool:
        """True when some matched index maps ``field``."""
        return field in self.fields

    def aggregatable(self, field: str) -> bool:
        """True when every index that maps ``field`` can aggregate on it (a ``keyword``, number, date,
        ip… — not a ``text`` field without fielddata)."""
        types = self.fields.get(field) or {}
        return bool(types) and all(entry.get("aggregatable") for entry in types.values())

    def types(self, field: str) -> list[str]:
        """The mapped types of ``field`` (several when indices disagree)."""
        return sorted(self.fields.get(field) or {})


def field_capabilities(es: Any, indices: Sequence[str], fields: Iterable[str]) -> FieldCaps:
    """Ask the cluster about ``fields`` in ``indices`` (names, patterns, aliases).

    Raises:
        elasticsearch.ApiError, elasticsearch.TransportError: the cluster refused or is away.
    """
    response = es.field_caps(index=",".join(indices), fields=sorted(set(fields)), ignore_unavailable=True,
                             allow_no_indices=True)
    body = response.body if hasattr(response, "body") else response
    return FieldCaps(indices=tuple(body.get("indices") or ()), fields=dict(body.get("fields") or {}))
