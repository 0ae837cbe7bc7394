"""A loaded connector: a named, reusable destination with its secrets (Kibana's term).

Each destination type's configuration schema lives in :mod:`watcher.destinations` (``<type>.Config``);
:mod:`watcher.definitions.connectors` reads connectors.yaml into :class:`Connector` values.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from watcher.model.problems import did_you_mean
from watcher.model.secrets import mask_data


@dataclasses.dataclass(frozen=True)
class Connector:
    """One loaded connector.

    Attributes:
        name: the key in ``connectors``.
        type: the connector type (a key of ``watcher.destinations.CONNECTORS``).
        config: the type's validated ``Config`` (secret fields are :class:`~watcher.model.secrets.Secret`).
        secrets: every value to mask when anything about this connector is shown.
        file: the file it came from.
    """

    name: str
    type: str
    config: Any
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    file: str = ""

    def masked(self) -> dict:
        """The configuration as shown by ``validate``/dry-run: secrets as ``***``."""
        shown = self.config.model_dump(mode="json", by_alias=True, exclude_none=True)
        return mask_data(shown, self.secrets)


def find_connector(connectors: Mapping[str, Connector], name: str, expected_type: str) -> Connector:
    """The connector ``name`` of type ``expected_type``, for an action that refers to it.

    Raises:
        LookupError: no such connector, or it has another type (the message says which exist).
    """
    connector = connectors.get(name)
    if connector is None:
        known = ", ".join(sorted(connectors)) or "none"
        raise LookupError(f"unknown connector [{name}]{did_you_mean(name, connectors)}; known connectors: {known}")
    if connector.type != expected_type:
        raise LookupError(f"connector [{name}] is of type [{connector.type}], a {expected_type} action needs "
                          f"a connector of type [{expected_type}]")
    return connector
