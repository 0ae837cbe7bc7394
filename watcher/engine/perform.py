"""One action, once: render it for a payload and hand the rendered request to a delivery.

Used by the pipeline (:mod:`watcher.engine.execute`) and by the rule steps
(:mod:`watcher.engine.rules`, once per alert). Also how an exception becomes Watcher's
``{"type", "reason"}`` error in a record.

Before any delivery (simulate, send now, outbox) a request whose Content-Type declares JSON must
carry a body that parses: otherwise the action fails unsent, with the reason in the record and a
WARNING log line (docs/correctness.md#json-bodies).
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from watcher.destinations import ACTIONS
from watcher.engine.context import Run
from watcher.engine.run_warnings import TEMPLATE_MISSING_VALUE
from watcher.es.painless import PainlessError
from watcher.model.requests import InvalidJsonBody, Origin, Outcome, json_body_error, with_origin
from watcher.model.watch import Action
from watcher.templates.jinja import MISSING_VALUE, missing_values

log = logging.getLogger("watcher.engine")


def error_type(error: BaseException | type[BaseException]) -> str:
    """The ``type`` :func:`error_json` writes for an exception or exception class: its class name in
    snake_case (``ConnectionTimeout`` → ``connection_timeout``)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", (error if isinstance(error, type) else type(error)).__name__).lower()


def error_json(error: BaseException) -> dict:
    """``{"type", "reason"}`` for an exception, Elasticsearch-style (snake_case type)."""
    name = error_type(error)
    if isinstance(error, PainlessError):
        # Its short `reason` ("runtime error") is only a part of the message, which also has the cause
        # and the position in the script as written.
        return {"type": name, "reason": str(error), **error.record_fields()}
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    out = {"type": name, "reason": str(reason)}
    info = getattr(error, "info", None)
    if isinstance(info, dict) and "error" in info:
        out["caused_by"] = info["error"]
    return out


def perform(action: Action, run: Run, payload: Any, delivery, extra_vars=None, sequence: str = "0") -> dict:
    """Render one action for ``payload`` and hand it to ``delivery``.

    Args:
        extra_vars: a callable returning variables added to the template model (a rule alert's
            Jinja2 variables); called here so that a template error becomes this action's failure.
        sequence: which item of the action this is (``foreach:<i>``, ``group:<key>``); with the
            record id it makes the outbox's delivery id, so re-running a record sends nothing twice.

    Returns:
        ``{"status", "<type>": {...}, "reason"?, "error"?, "warnings"?}`` — the type part of the
        action result. A rule alert whose Jinja2 templates read a missing attribute or item (a
        document without the field) is still sent, the gap rendered as ``<MISSING VALUE>``, with
        ``warnings: [{"type": "template_missing_value", "names": [...], "placeholder"}]`` and a
        WARNING on ``watcher.engine`` (docs/correctness.md). A rendered JSON body that does not parse
        gives ``status: failure`` with the reason, the request as it would have been sent, and
        ``error.type`` ``invalid_json_body``; nothing is handed to ``delivery``.
    """
    module = ACTIONS.get(action.type)
    model = run.model(payload)
    missing: list[str] = []
    try:
        with missing_values() if extra_vars is not None else contextlib.nullcontext(missing) as missing:
            if extra_vars is not None:
                variables = extra_vars()
                model = {**model, **variables}
                if "alert" in variables:  # rule alerts: Mustache templates reach them as ctx.vars.alert
                    model["ctx"] = {**model["ctx"], "vars": {**model["ctx"]["vars"], "alert": variables["alert"]}}
            rendered = module.render(action.config, run, model)
        rendered = with_origin(rendered, Origin(run.watch.id, run.record_id, action.id, sequence,
                                                getattr(action.config, "connector", None)))
        invalid = json_body_error(rendered)
        if invalid is not None:
            outcome = _not_sent(run, action, sequence, rendered, invalid)
        else:
            outcome = delivery.deliver(rendered, run.services)
    except Exception as error:  # nothing was sent: say so where operators look, not only in the record
        item = "" if sequence == "0" else f" ({sequence})"  # which foreach item or group, when there are several
        log.warning("watch [%s] action [%s]%s failed before sending: %s", run.watch.id, action.id, item, error)
        return {"status": "failure", "reason": str(error), "error": error_json(error)}
    out = {"status": outcome.status, **module.result(action.config, rendered, outcome)}
    if missing:
        names = sorted(set(missing))
        out["warnings"] = [{"type": TEMPLATE_MISSING_VALUE, "names": names, "placeholder": MISSING_VALUE}]
        run.warnings.add(TEMPLATE_MISSING_VALUE,
                         f"action [{action.id}] {sequence}: the templates read values the data does not have "
                         f"({', '.join(names)}); sent with {MISSING_VALUE} in their place",
                         action=action.id, sequence=sequence, names=names)
    if outcome.reason:
        out["reason"] = outcome.reason
    if outcome.error:
        out["error"] = outcome.error
    return out


def _not_sent(run: Run, action: Action, sequence: str, rendered: Any, invalid: InvalidJsonBody) -> Outcome:
    """The failure outcome of a request held back because its JSON body does not parse (every
    request of a multi-request action is held back with it); logs the WARNING saying so."""
    where = f" ({sequence})" if sequence != "0" else ""
    log.warning("watch %s action %s%s not sent: %s", run.watch.id, action.id, where, invalid)
    error = error_json(invalid)
    if isinstance(rendered, tuple):
        parts = tuple(Outcome("failure", reason=str(invalid), error=error) for _ in rendered)
        return Outcome("failure", reason=str(invalid), error=error, parts=parts)
    return Outcome("failure", reason=str(invalid), error=error)
