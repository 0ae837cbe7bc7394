"""``watcher dry-run``: execute one rule or watch against the real cluster and show everything.

Shows the search request sent, a summary of hits and aggregations (for a chain input, each link
and the reason of any link that failed), the condition result, what the filter step dropped, each rendered message and the exact request every action would send (secrets
masked), and every warning of the run (``result.warnings``: a partial answer, groups left out by
``max_groups``…) on a yellow ``warning`` line. Nothing is sent unless ``--action-mode execute``.
With ``--from``/``--to`` it backtests every scheduled time in the range and prints a table of when
the rule would have fired, with each time's warnings, and a count of them per type.

Exit status: 0 when every execution ran and no action failed; 1 when a record's state is ``failed``,
the watch transform failed (so no action ran), or an action (a foreach or group item included) ended
``failure`` or ``partial_failure`` — a dry-run whose actions fail must not look green; 2 for usage
errors (click's convention).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import email.utils
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

import click
from elasticsearch import ConnectionError as ESConnectionError

from watcher import api
from watcher.definitions.load import same_file
from watcher.es import history
from watcher.es.client import ConnectionSettings, check_index_prefix, make_client, redact_url
from watcher.es.fields import refused_text_field
from watcher.model.requests import EMAIL_PRIORITIES
from watcher.support.datemath import DateMathError, resolve, utc_now_millis


def _parse_time(value: str | None, now: dt.datetime, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return resolve(value, now)
    except (DateMathError, ValueError) as error:
        raise click.BadParameter(f"expected an ISO-8601 time or date math such as now-1h, found {value!r} ({error})",
                                 param_hint=name) from None


def _check_index_prefix(ctx, param, value: str) -> str:
    """click callback: ``--index-prefix`` must be able to start an index name."""

    try:
        return check_index_prefix(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _pick_watch(result, path: str, watch_id: str | None):
    candidates = [w for w in result.watches.values()
                  if same_file(w.file, path) or Path(path).is_dir()]
    if watch_id:
        known = sorted(w.id for w in candidates)
        candidates = [w for w in candidates if w.id == watch_id]
        if not candidates:
            close = difflib.get_close_matches(watch_id, known, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise click.UsageError(f"{path}: no rule or watch with id {watch_id!r}; ids: "
                                   f"{', '.join(known) or 'none'}{hint}")
    if len(candidates) != 1:
        names = ", ".join(sorted(w.id for w in candidates)) or "none"
        raise click.UsageError(f"{path}: expected exactly one rule or watch (use --id), found: {names}")
    return candidates[0]


@click.command("dry-run")
@click.argument("path", type=click.Path(exists=True))
@click.option("--id", "watch_id", help="Which rule/watch to run when PATH is a directory.")
@click.option("--connectors", "connectors_path", type=click.Path(exists=True), help="connectors.yaml to use (default: beside the rule).")
@click.option("--at", "at", help="Scheduled time to execute at (ISO-8601 or date math, default now).")
@click.option("--from", "start",
              help="Backtest from this time (ISO-8601 or date math): calendar and cron schedules run at each of "
                   "their fire times from --from to --to; interval schedules run at --from, --from + interval, … "
                   "(Watcher anchors an interval at the time the watch is registered: --from stands for it).")
@click.option("--to", "end", help="Backtest: last scheduled time (default now).")
@click.option("--action-mode", type=click.Choice(["simulate", "execute", "skip"]), default="simulate", show_default=True,
              help="simulate renders requests without sending; execute sends them; skip runs no action.")
@click.option("--json", "as_json", is_flag=True, help="Print the watch record(s) as JSON.")
@click.option("--record", is_flag=True,
              help="Also write the watch record(s) to the history index and save the watch's status (throttle, "
                   "acks, last checked/met; Watcher's record_execution); the runs start from the saved status.")
@click.option("--index-prefix", default="watcher", show_default=True, envvar="WATCHER_INDEX_PREFIX",
              callback=_check_index_prefix, help="Prefix of the history index (<prefix>-history-YYYY.MM.DD).")
def dry_run(path, watch_id, connectors_path, at, start, end, action_mode, as_json, record, index_prefix) -> None:
    """Execute a rule or watch against the cluster (ES_URL) without side effects, and show the result."""

    loaded = api.load([path], connectors=connectors_path)
    # A connector with problems stops only the watches that use it (each gets its own problem, "has
    # problems … reported there"), as in the daemon: the others still run, with the problems shown.
    in_definition = [p for p in loaded.problems
                     if loaded.connectors_file is None or not same_file(p.file, loaded.connectors_file)]
    for problem in loaded.problems:
        click.echo(("" if problem in in_definition else "warning: ") + str(problem), err=True)
    if in_definition:
        sys.exit(1)
    watch = _pick_watch(loaded, path, watch_id)
    now = utc_now_millis()
    at_time = _parse_time(at, now, "--at") or now
    first, last = _parse_time(start, now, "--from"), _parse_time(end, now, "--to")
    if last is not None and first is None:
        raise click.UsageError("--to needs --from")
    if first is not None and at is not None:
        raise click.UsageError("--at runs one scheduled time and --from/--to a range: give one of them")
    if first is not None and first > (last or now):
        raise click.UsageError(f"--from ({first.isoformat()}) is after --to ({(last or now).isoformat()})")
    try:
        times = api.schedule_times(watch, first, last or now) if first else [at_time]
    except ValueError as error:  # too many times in the range
        raise click.UsageError(f"{error}; narrow --from/--to") from None
    es = _client()
    try:
        notes = api.check_fields(loaded, es)
    except Exception as error:  # the search itself will say more; checking is best effort here
        notes = []
        click.echo(f"note: could not check the fields against the cluster: {error}", err=True)
    bad = [problem for problem in loaded.problems if problem.file == watch.file]
    if bad:
        for problem in bad:
            click.echo(str(problem), err=True)
        sys.exit(1)
    for note in notes:
        if note.watch_id == watch.id:
            click.echo(f"note: {note}", err=True)
            watch = loaded.watches[watch.id]
    try:
        for warning in api.template_warnings(loaded, es):
            if warning.watch_id == watch.id:
                click.echo(click.style(f"warning: {warning}", fg="yellow"), err=True)
    except Exception as error:  # best effort, as above
        click.echo(f"note: could not check the templates' fields against the cluster: {error}", err=True)
    # A rule that keeps state (new_term baselines, firing keys…) starts where the daemon left it.
    # With --record the runs also start from the saved status (throttle, acks), whose result is saved.
    saved = api.saved_state(es, watch, index_prefix=index_prefix) if watch.rule is not None or record else None
    show_progress = len(times) > 20 and not as_json
    records = api.backtest(watch, es, times, action_mode=action_mode, connectors=loaded.connectors, state=saved,
                           status=saved.status if record and saved is not None else None,
                           progress=_progressbar if show_progress else None)
    if record:
        api.record(es, records, index_prefix=index_prefix)
        api.save_status(es, watch.id, saved, records, index_prefix=index_prefix)
        click.echo(f"recorded {len(records)} watch record(s) in {history.index_pattern(index_prefix)} and the "
                   f"watch's status in {index_prefix}-state", err=True)
    if as_json:
        click.echo(json.dumps(records if first else records[0], indent=2, ensure_ascii=False, default=str))
    elif first:
        _print_backtest(watch, records, first, last or now)
    else:
        _print_record(watch, records[0])
    sys.exit(1 if any(_failed(r) for r in records) else 0)


def _failed(record: dict) -> bool:
    """True when the record's state is ``failed`` or any action (or foreach/group item) failed."""
    if record.get("state") == "failed":
        return True
    transform = (record.get("result") or {}).get("transform")
    if isinstance(transform, dict) and transform.get("status") == "failure":  # so no action ran
        return True
    for action in (record.get("result") or {}).get("actions") or []:
        items = [action, *(action.get("foreach") or [])]
        if any(item.get("status") in ("failure", "partial_failure") for item in items):
            return True
    return False


def _reason(result: dict) -> str | None:
    """A failed step's reason, for people: the cluster's own words when Elasticsearch refused (the
    root cause of ``error.caused_by``, e.g. ``no such index [x]``), else ``reason``, else
    ``error.reason`` (Watcher records transport errors as ``error`` only,
    docs/semantics.md#webhook-action)."""
    error = result.get("error") if isinstance(result.get("error"), dict) else {}
    cause = error.get("caused_by")
    while isinstance(cause, dict):  # the root cause, else the deepest cause that says something
        roots = cause.get("root_cause")
        root = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], dict) else None
        if root is not None and root.get("reason"):
            return f"{root['reason']} ({root.get('type', 'error')})"
        deeper = cause.get("caused_by")
        if cause.get("reason") and not (isinstance(deeper, dict) and deeper.get("reason")):
            return f"{cause['reason']} ({cause.get('type', 'error')})"
        cause = deeper
    return result.get("reason") or error.get("reason")


def _client():
    try:
        settings = ConnectionSettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    es = make_client(settings)
    where = ", ".join(map(redact_url, settings.urls))  # from_env strips credentials; never print them anyway
    try:
        es.cluster.health(timeout="5s")
    except ESConnectionError as error:
        raise click.ClickException(f"cannot reach the cluster (ES_URL) at {where}: {error.message}") from None
    except Exception as error:  # auth errors and the like: say what the cluster answered
        raise click.ClickException(f"the cluster (ES_URL) at {where} refused the health check: {error}") from None
    return es


def _progressbar(times):
    return click.progressbar(times, label="backtesting", file=sys.stderr)


# ----------------------------------------------------------------------------------------------
# human output

def _print_record(watch, record: dict) -> None:
    echo = click.echo
    result = record["result"]
    echo(f"{click.style(watch.id, bold=True)} ({watch.file}) at {result['execution_time']}")
    _print_input(result.get("input", {}), watch)
    condition = result.get("condition")
    if condition:
        met = click.style("met", fg="red", bold=True) if condition.get("met") else click.style("not met", fg="green")
        if condition.get("held_on_partial_results"):
            met = click.style("not met (held: met on a partial answer, which cannot prove it)", fg="yellow")
        extra = json.dumps(condition.get(condition.get("type"), {}), default=str, ensure_ascii=False)
        if len(extra) > 240:  # a grouped rule resolves whole bucket lists; --json shows them
            extra = extra[:200] + f"… ({len(extra)} characters; --json shows all)"
        echo(f"condition {condition.get('type')}: {met}" + (f"  {extra}" if extra != "{}" else ""))
        unsure = _condition_unsure(condition)
        if unsure:
            echo(click.style(f"warning: the condition cannot be decided: {unsure}", fg="yellow"))
    for warning in result.get("warnings") or []:
        echo(click.style(f"warning [{warning.get('type')}]: {warning.get('message')}", fg="yellow"))
    if record.get("exception"):
        echo(click.style(f"error: {record['exception'].get('reason')}", fg="red"))
    for message in record.get("messages", []):
        echo(click.style(message, fg="red"))
    transform = result.get("transform")
    if isinstance(transform, dict) and transform.get("status") not in (None, "success"):
        echo(click.style(f"transform {transform.get('type')} failed: {_reason(transform) or 'no reason given'}",
                         fg="red"))
    rule = result.get("rule")
    if rule:
        echo(f"filter: dropped {rule['filter']['dropped']}, kept {rule['filter']['kept']}; alerts: {rule['alerts']}"
             + (f" (groups: {', '.join(map(str, rule['groups']))})" if rule.get("groups") else ""))
        for key, label in (("recovered", "recovered"), ("silenced", "silenced"),
                           ("realert_suppressed", "held by realert"), ("aggregation_pending", "waiting in aggregation")):
            if rule.get(key):
                value = rule[key]
                echo(f"  {label}: {', '.join(map(str, value)) if isinstance(value, list) else value}")
        for note in rule.get("notes") or []:
            echo(click.style(f"  note: {note}", fg="yellow"))
    for action in result.get("actions", []):
        _print_action(action)
    echo(f"state: {click.style(record['state'], bold=True)}")


def _fielddata_hint(field: str, watch) -> str:
    """What to do when the search used text field ``field`` where Elasticsearch needs a keyword, number
    or date field: it refuses to aggregate or sort on text fields ("Fielddata is disabled", docs:
    "fielddata mapping parameter"). Names the rule setting that used the field when there is one."""
    rule = getattr(watch, "rule", None)
    metric = getattr(getattr(getattr(rule, "condition", None), "metric", None), "field", None)
    remedy = f"(with dynamic mappings: {field}.keyword), or map {field} as keyword in an index template"
    if rule is not None and getattr(rule, "group_by", None) == field:
        return f"hint: group_by: {field} is a text field; group by a keyword field instead {remedy}"
    if rule is not None and getattr(rule, "time_field", None) == field:
        return (f"hint: time_field: {field} is a text field, which the search cannot sort on; give a date field, "
                f"or map {field} as date in an index template")
    if rule is not None and metric == field:
        return (f"hint: condition.metric.field: {field} is a text field; aggregate a numeric field (or, for "
                f"cardinality, a keyword field) instead {remedy}")
    return f"hint: the search aggregates or sorts on [{field}], a text field; use a keyword field instead {remedy}"


def _print_input(input_result: dict, watch=None) -> None:
    echo = click.echo
    kind = input_result.get("type")
    if input_result.get("status") != "success":
        reason = str(_reason(input_result))
        echo(click.style(f"input {kind} failed: {reason}", fg="red"))
        field = refused_text_field(reason)
        if field:  # the most common first-rule mistake: a dynamically mapped text field
            echo(_fielddata_hint(field, watch))
        return
    request = (input_result.get("search") or {}).get("request")
    if request:
        echo(f"input search on {', '.join(request.get('indices') or ['_all'])}")
        echo("  request: " + json.dumps(request.get("body"), ensure_ascii=False, default=str))
        note = _no_index_note(input_result)
        if note:
            echo(click.style(note, fg="yellow"))
    elif input_result.get("http"):
        echo(f"input http: {json.dumps(input_result['http'].get('request'), default=str)}")
    elif kind == "chain":
        echo("input chain")
        _print_links(input_result.get("chain") or {}, watch)
        return
    elif kind == "rule":
        payload = input_result.get("payload") or {}
        window = payload.get("window") or {}
        echo(f"input rule type {payload.get('rule_type')} on [{window.get('start')}, {window.get('end')})")
        echo(f"  matches: {payload.get('total_matches')}"
             + "".join(f"\n    {m.get('group') if m.get('group') is not None else '(rule)'}: count {m.get('count')}, "
                       f"value {m.get('value')}" for m in (payload.get("matches") or [])[:20]))
        for key, value in (payload.get("info") or {}).items():
            if key == "note":
                echo(click.style(f"  note: {value}", fg="yellow"))
            else:
                echo(f"  {key}: {value}")
        return
    else:
        echo(f"input {kind}")
    payload = input_result.get("payload") or {}
    hits = payload.get("hits")
    if isinstance(hits, dict):
        total = hits.get("total")
        total = total.get("value") if isinstance(total, dict) else total
        echo(f"  hits: {total} total, {len(hits.get('hits') or [])} returned")
    for name, agg in (payload.get("aggregations") or {}).items():
        if isinstance(agg, dict) and "buckets" in agg:
            buckets = agg["buckets"]
            if isinstance(buckets, dict):  # keyed buckets (filters, ranges with "keyed": true): name → bucket
                buckets = [{"key": key, **(b if isinstance(b, dict) else {})} for key, b in buckets.items()]
            shown = ", ".join(f"{b.get('key_as_string', b.get('key'))}: {b.get('doc_count')}" for b in buckets[:10])
            echo(f"  aggregation {name}: {len(buckets)} buckets" + (f" ({shown}{', …' if len(buckets) > 10 else ''})" if buckets else ""))
        elif isinstance(agg, dict) and "value" in agg:
            echo(f"  aggregation {name}: {agg['value']}")


def _print_links(links: dict, watch=None, indent: str = "  ") -> None:
    """One line per link of a chain input: its name, type and what it gave, or why it failed (a
    failed link leaves ``{}`` under its name and the chain goes on, docs/semantics.md#chain-input)."""
    echo = click.echo
    for name, link in links.items():
        kind = link.get("type")
        if link.get("status") != "success":
            reason = str(_reason(link) or "no reason given")
            echo(click.style(f"{indent}link {name} [{kind}] failed: {reason}", fg="red"))
            field = refused_text_field(reason)
            if field:
                echo(f"{indent}  " + _fielddata_hint(field, watch))
            continue
        request = (link.get("search") or {}).get("request")
        where = f" on {', '.join(request.get('indices') or ['_all'])}" if request else ""
        echo(f"{indent}link {name} [{kind}]{where}: {_payload_summary(link.get('payload'))}")
        if kind == "chain":
            _print_links(link.get("chain") or {}, watch, indent + "  ")


def _payload_summary(payload) -> str:
    """``3 hits`` for a search payload, else the payload's keys (``keys: max_errors``)."""
    if not isinstance(payload, dict):
        return "ok"
    hits = payload.get("hits")
    if isinstance(hits, dict):
        total = hits.get("total")
        total = total.get("value") if isinstance(total, dict) else total
        return f"{total} hits"
    return f"keys: {', '.join(map(str, payload))}" if payload else "empty payload"


def _no_index_note(input_result: dict) -> str | None:
    """``note: no index matched …`` when the search ran on zero shards (a typo in ``index:`` would
    otherwise never alert, silently)."""
    payload = input_result.get("payload") or {}
    shards = payload.get("_shards") if isinstance(payload, dict) else None
    if not isinstance(shards, dict) or shards.get("total") != 0:
        return None
    request = (input_result.get("search") or {}).get("request") or {}
    return f"note: no index matched {', '.join(request.get('indices') or ['_all'])}"


def _print_action(action: dict) -> None:
    echo = click.echo
    colours = {"success": "green", "simulated": "cyan", "failure": "red", "partial_failure": "red",
               "throttled": "yellow"}
    reason = _reason(action)
    items = action.get("foreach") or []
    failed = [item for item in items if item.get("status") in ("failure", "partial_failure")]
    if failed and not reason:  # foreach/group: the items carry the reasons; summarise on the action line
        first = next((r for r in map(_reason, failed) if r), None)
        reason = f"{len(failed)} of {len(items)} failed" + (f", first: {first}" if first else "")
    echo(f"action {action['id']} [{action['type']}]: {click.style(action['status'], fg=colours.get(action['status']))}"
         + (f" — {reason}" if reason else ""))
    for index, item in enumerate(action.get("foreach") or [action]):
        item_reason = _reason(item) if item is not action else None
        if "group" in item:
            echo(f"  group {item['group']}: {item['status']}" + (f" — {item_reason}" if item_reason else ""))
        elif item is not action and (item_reason or item.get("status") in ("failure", "partial_failure")):
            echo(f"  item {index}: {item['status']}" + (f" — {item_reason}" if item_reason else ""))
        detail = item.get(action["type"]) or {}
        if "logged_text" in detail:
            echo("    " + detail["logged_text"].replace("\n", "\n    "))
        message = detail.get("message") if isinstance(detail, dict) else None
        if isinstance(message, dict) and isinstance(detail.get("smtp"), dict):  # email: headers, then bodies
            for line in _email_lines(detail):
                echo("    " + line)
        elif isinstance(message, dict):  # slack: the message that would be posted
            for key in ("to", "from"):
                if message.get(key):
                    echo(f"    {key}: {message[key]}")
            if message.get("text"):
                echo("    " + str(message["text"]).replace("\n", "\n    "))
        request = detail.get("request") if isinstance(detail, dict) else None
        if isinstance(request, dict):
            for line in _request_lines(request):
                echo("    " + line)
        response = detail.get("response") if isinstance(detail, dict) else None
        if isinstance(response, dict) and "status" in response:
            echo(f"    → {response['status']}")


def _email_lines(detail: dict) -> list[str]:
    """An email result as its reader would see it: the SMTP account (never a password), the headers,
    the text body, the HTML body and the attachments."""
    smtp, message = detail["smtp"], detail["message"]
    lines = [f"SMTP {smtp.get('host')}:{smtp.get('port')} ({smtp.get('security')})"
             + (f" as {smtp['user']}" if smtp.get("user") else "")
             + (f", account {detail['account']}" if detail.get("account") else "")]
    for header, key in (("Message-ID", "id"), ("Date", "sent_date"), ("From", "from"), ("To", "to"), ("Cc", "cc"),
                        ("Bcc", "bcc"), ("Reply-To", "reply_to"), ("Subject", "subject"), ("X-Priority", "priority")):
        value = message.get(key)
        if value in (None, "", []):
            continue
        if key == "sent_date":  # the record keeps ISO-8601; the message carries RFC 5322's form
            with contextlib.suppress(ValueError):
                value = email.utils.format_datetime(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")))
        elif key == "priority":
            value = f"{EMAIL_PRIORITIES.get(value, value)} ({value})"
        elif key == "bcc":
            header = "Bcc (envelope only, no header)"
        lines.append(f"{header}: {', '.join(value) if isinstance(value, list) else value}")
    lines.append("Auto-Submitted: auto-generated")
    body = message.get("body") or {}
    if body.get("text") is not None:
        lines += ["", *str(body["text"]).splitlines()]
    if body.get("html") is not None:
        lines += ["", "--- html ---", *str(body["html"]).splitlines()]
    for attachment in message.get("attachments") or []:
        lines.append(f"attachment {attachment['name']} ({attachment['content_type']}, {attachment['size']} bytes)")
    return lines


def _request_lines(request: dict) -> list[str]:
    if "source" in request and "index" in request:
        return [f"index {request['index']}" + (f" id {request['doc_id']}" if request.get("doc_id") else ""),
                json.dumps(request["source"], ensure_ascii=False, default=str)]
    url = request.get("url")
    if not url:
        port = request.get("port")
        scheme = request.get("scheme", "http")
        default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
        url = f"{scheme}://{request.get('host')}{'' if default or port is None else f':{port}'}{request.get('path') or ''}"
        if request.get("params"):
            url += "?" + urlencode(request["params"], safe="*:")
    lines = [f"{str(request.get('method', 'get')).upper()} {url}"]
    lines += [f"{name}: {value}" for name, value in (request.get("headers") or {}).items()]
    if request.get("body"):
        lines.append(str(request["body"]))
    return lines


def _condition_unsure(condition: dict) -> str | None:
    """The reason a compare/array_compare condition could not be decided, if it could not
    (docs/correctness.md#hit-totals-as-objects)."""
    body = condition.get(condition.get("type")) if isinstance(condition, dict) else None
    return body.get("unsure") if isinstance(body, dict) else None


def _sent(record: dict) -> int:
    """How many alerts the record's actions sent (or simulated)."""
    count = 0
    for action in record["result"].get("actions") or []:
        items = action.get("foreach") if "foreach" in action else [action]
        count += sum((item or {}).get("status") in ("success", "simulated") for item in items or [])
    return count


def _alerts_cell(rule: dict, warnings: list | None = None) -> str:
    """The backtest's alerts column: groups alerted, then recoveries and what held alerts back,
    then the time's warnings by type (``warnings: partial_results, groups_truncated``)."""
    kinds = list(dict.fromkeys(str(w.get("type")) for w in warnings or [] if isinstance(w, dict)))
    tail = [f"warnings: {', '.join(kinds)}"] if kinds else []
    if not rule:
        return "; ".join(tail)
    groups = rule.get("groups")
    parts = [", ".join(map(str, groups)) if groups else str(rule.get("alerts"))]
    if rule.get("recovered"):
        parts.append("recovered: " + ", ".join(map(str, rule["recovered"])))
    if rule.get("realert_suppressed"):
        parts.append("held by realert: " + ", ".join(map(str, rule["realert_suppressed"])))
    if rule.get("silenced"):
        parts.append("silenced: " + ", ".join(map(str, rule["silenced"])))
    if rule.get("aggregation_pending"):
        parts.append(f"collecting: {rule['aggregation_pending']}")
    return "; ".join(parts + tail)


def _print_backtest(watch, records: list[dict], first: dt.datetime, last: dt.datetime) -> None:
    echo = click.echo
    if not records:
        echo(f"{watch.id}: 0 scheduled times in the range {first.isoformat()} to {last.isoformat()} "
             f"(schedule: {json.dumps(watch.trigger.body, default=str, ensure_ascii=False)})")
        return
    fired = [r for r in records if r["state"] not in ("execution_not_needed", "failed")]
    sent = sum(bool(_sent(r)) for r in records)
    echo(f"{watch.id}: {len(records)} scheduled times, condition met at {len(fired)}, alerts sent at {sent}, "
         f"failed at {sum(r['state'] == 'failed' for r in records)}")
    typed = watch.input.type == "rule"
    echo(f"{'scheduled time':<26} {'state':<22} {'matches' if typed else 'hits':>7}  alerts")
    for record in records:
        rule = record["result"].get("rule") or {}
        warnings = record["result"].get("warnings") or []
        if record["state"] == "execution_not_needed" and not rule and not warnings:
            continue
        payload = record["result"].get("input", {}).get("payload") or {}
        total = payload.get("total_matches") if typed else (payload.get("hits") or {}).get("total")
        total = total.get("value") if isinstance(total, dict) else total
        scheduled = record["trigger_event"].get("manual", record["trigger_event"]).get("schedule", {}).get("scheduled_time")
        echo(f"{scheduled:<26} {record['state']:<22} {'' if total is None else total:>7}  "
             f"{_alerts_cell(rule, warnings)}")
    undecided = sum(bool(_condition_unsure(r["result"].get("condition") or {})) for r in records)
    if undecided:
        echo(click.style(f"warning: the condition could not be decided at {undecided} scheduled time(s) (reported "
                         f"not met; --json shows each reason)", fg="yellow"))
    notes = {note for r in records if (note := _no_index_note(r["result"].get("input") or {}))}
    for note in sorted(notes):
        echo(click.style(note, fg="yellow"))
    failed_links: dict[str, list] = {}
    for record in records:
        for name, link in ((record["result"].get("input") or {}).get("chain") or {}).items():
            if isinstance(link, dict) and link.get("status") != "success":
                failed_links.setdefault(name, [0, _reason(link)])[0] += 1
    for name, (count, reason) in failed_links.items():
        echo(click.style(f"chain link {name} failed at {count} scheduled time(s), first: {reason}", fg="red"))
    counts: dict[str, int] = {}
    for record in records:
        for kind in dict.fromkeys(str(w.get("type")) for w in record["result"].get("warnings") or []):
            counts[kind] = counts.get(kind, 0) + 1
    if counts:
        by_kind = ", ".join(f"{kind} at {n}" for kind, n in counts.items())
        echo(click.style(f"warnings at {sum(bool(r['result'].get('warnings')) for r in records)} scheduled time(s) "
                         f"({by_kind}); --json shows them", fg="yellow"))
    failed_actions = sum(_failed(r) and r["state"] != "failed" for r in records)
    if failed_actions:
        echo(click.style(f"actions failed at {failed_actions} scheduled time(s); --json shows why", fg="red"))
