"""Destinations: one module per type, and the one registry of them.

A destination module holds everything about one kind of place alerts go to:

* the connector (connectors.yaml): ``Config`` (a pydantic model, ``extra="forbid"``, with a ``type``
  literal), ``parse_connector(reader, body, path) -> Config | None``, optional ``secrets(config)``
  (what to mask; default: every ``Secret`` field's value) and ``build_request(config, fields)``;
* the action (Watcher's action body of that type, or a rule action naming such a connector):
  ``parse(reader, body, path)``, ``render(config, run, model)`` returning a rendered request of
  :mod:`watcher.model.requests`, and ``result(config, rendered, outcome)`` (the ``<type>`` part of
  Watcher's action result);
* how a response is read: ``interpret(response) -> Outcome``; optional ``delivered(outcome) -> dict | None``,
  what a delivery made at the receiver (Jira's issue key), kept with it in the outbox as ``result``;
* the file formats: ``ACTION_SCHEMA`` (JSON Schema of the watch action body) and, optional,
  ``rule_defaults(connector, overrides)`` / ``without_rule_defaults(action)`` (what a rule's action
  sends when the rule gives no override, and the inverse for ``watcher convert --to rule``);
* optional ``missing_for(config, connector) -> str | None``: what an action can never be sent without
  that neither it nor the connector's defaults give (checked when files load, so ``validate`` says so);
* optional ``action_secrets(config) -> list[str]``: the secrets an action's parsed config holds that
  are not :class:`~watcher.model.secrets.Secret` values (a webhook's inline basic-auth password),
  so the daemon can resolve them in the outbox (:func:`action_secrets`);
* optional ``DELIVERS = False`` for a destination that reaches nobody (the log of the process that
  runs the watch): ``watcher validate`` warns about a watch whose actions are all such (:func:`delivers`).

Actions only *render*; who sends is :mod:`watcher.delivery`. Adding a destination = one module
plus one line in :data:`DESTINATIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.destinations import discord, email, index, jira, logging, ms_teams, opsgenie, pagerduty, slack, webhook
from watcher.model.registry import Registry
from watcher.model.secrets import secret_values

DESTINATIONS = (webhook, opsgenie, slack, email, logging, index, pagerduty, jira, ms_teams, discord)
"""Every destination module, in the order names are listed in messages."""

ACTIONS = Registry("action", DESTINATIONS)
"""The action kind of the watch format: ``{<type>: body}`` parsed by each module's ``parse``."""

CONNECTORS = Registry("connector", DESTINATIONS)
"""The connector types of connectors.yaml (``parse_connector``)."""


def delivers(destination_type: str) -> bool:
    """True when an action of ``destination_type`` takes the alert somewhere someone sees it (its
    module's ``DELIVERS``, default True; unknown types count as delivering)."""
    module = ACTIONS.get(destination_type) if destination_type in ACTIONS else None
    return bool(getattr(module, "DELIVERS", True))


def interpreter(destination_type: str) -> Callable[[Any], Any]:
    """``interpret`` of the destination ``destination_type`` (KeyError if unknown)."""
    return CONNECTORS.get(destination_type).interpret


def action_secrets(destination_type: str, config: Any) -> list[str]:
    """The secret values an action of ``destination_type`` carries in its own parsed ``config`` (written
    in the watch, not taken from a connector), known as soon as the watch is loaded: every
    :class:`~watcher.model.secrets.Secret` inside it plus what the module's ``action_secrets(config)``
    declares. Empty for unknown types. The daemon gives these to its outbox, which resolves the
    placeholders it stored for them (docs/correctness.md#secret-placeholders)."""
    module = ACTIONS.get(destination_type) if destination_type in ACTIONS else None
    declared = getattr(module, "action_secrets", None)
    return [*secret_values(config), *(declared(config) if declared is not None else ())]
