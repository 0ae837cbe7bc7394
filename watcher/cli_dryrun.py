"""``watcher dry-run``: execute one rule or watch against the real cluster and show everything.

Shows the search request sent, a summary of hits and aggregations, the condition result, what the
filter step dropped, each rendered message and the exact request every action would send (secrets
masked). Nothing is sent unless ``--action-mode execute``. With ``--from``/``--to`` it backtests every
scheduled time in the range and prints a table of when the rule would have fired.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from urllib.parse import urlencode

import click

from watcher.support.datemath import DateMathError, resolve


def _parse_time(value: str | None, now: dt.datetime, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return resolve(value, now)
    except (DateMathError, ValueError) as error:
        raise click.BadParameter(f"expected an ISO-8601 time or date math such as now-1h, found {value!r} ({error})",
                                 param_hint=name) from None


def _pick_watch(result, path: str, watch_id: str | None):
    from pathlib import Path

    candidates = [w for w in result.watches.values()
                  if Path(w.file).resolve() == Path(path).resolve() or Path(path).is_dir()]
    if watch_id:
        candidates = [w for w in result.watches.values() if w.id == watch_id]
    if len(candidates) != 1:
        names = ", ".join(sorted(w.id for w in candidates)) or "none"
        raise click.UsageError(f"{path}: expected exactly one rule or watch (use --id), found: {names}")
    return candidates[0]


@click.command("dry-run")
@click.argument("path", type=click.Path(exists=True))
@click.option("--id", "watch_id", help="Which rule/watch to run when PATH is a directory.")
@click.option("--connectors", "connectors_path", type=click.Path(exists=True), help="connectors.yaml to use (default: beside the rule).")
@click.option("--at", "at", help="Scheduled time to execute at (ISO-8601 or date math, default now).")
@click.option("--from", "start", help="Backtest: first scheduled time (ISO-8601 or date math).")
@click.option("--to", "end", help="Backtest: last scheduled time (default now).")
@click.option("--action-mode", type=click.Choice(["simulate", "execute", "skip"]), default="simulate", show_default=True,
              help="simulate renders requests without sending; execute sends them; skip runs no action.")
@click.option("--json", "as_json", is_flag=True, help="Print the watch record(s) as JSON.")
@click.option("--record", is_flag=True,
              help="Also write the watch record(s) to the history index (Watcher's record_execution).")
@click.option("--index-prefix", default="watcher", show_default=True, envvar="WATCHER_INDEX_PREFIX",
              help="Prefix of the history index (<prefix>-history-YYYY.MM.DD).")
def dry_run(path, watch_id, connectors_path, at, start, end, action_mode, as_json, record, index_prefix) -> None:
    """Execute a rule or watch against the cluster (ES_URL) without side effects, and show the result."""
    from watcher.definitions.load import load_paths

    loaded = load_paths([path], connectors_path=connectors_path)
    if loaded.problems:
        for problem in loaded.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    watch = _pick_watch(loaded, path, watch_id)
    now = dt.datetime.now(dt.timezone.utc)
    at_time = _parse_time(at, now, "--at") or now
    first, last = _parse_time(start, now, "--from"), _parse_time(end, now, "--to")
    if last is not None and first is None:
        raise click.UsageError("--to needs --from")
    services = _services(loaded.connectors)
    times = _schedule_times(watch, first, last or now) if first else [at_time]
    records = _execute_all(watch, services, times, action_mode, show_progress=len(times) > 20 and not as_json)
    if record:
        from watcher.es import history

        history.ensure_template(services.es, index_prefix)
        for item in records:
            history.write_record(services.es, index_prefix, item, refresh="wait_for")
        click.echo(f"recorded {len(records)} watch record(s) in {history.index_pattern(index_prefix)}", err=True)
    if as_json:
        click.echo(json.dumps(records if first else records[0], indent=2, ensure_ascii=False, default=str))
    elif first:
        _print_backtest(watch, records)
    else:
        _print_record(watch, records[0])
    sys.exit(1 if any(r["state"] == "failed" for r in records) else 0)


def _services(connectors):
    from elasticsearch import ConnectionError as ESConnectionError

    from watcher.engine.context import Services
    from watcher.es.client import ConnectionSettings, make_client

    try:
        settings = ConnectionSettings.from_env()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    es = make_client(settings)
    try:
        es.cluster.health(timeout="5s")
    except ESConnectionError as error:
        raise click.ClickException(f"cannot reach Elasticsearch at {', '.join(settings.urls)}: {error.message}") from None
    except Exception as error:  # auth errors and the like: say what the cluster answered
        raise click.ClickException(f"Elasticsearch at {', '.join(settings.urls)} refused the health check: {error}") from None
    return Services(es=es, connectors=connectors)


def _schedule_times(watch, first: dt.datetime, last: dt.datetime) -> list[dt.datetime]:
    from watcher.schedule import next_fire

    times, current = [], first
    if first <= last:
        times.append(first)
    while True:
        current = next_fire(watch.trigger, current, anchor=first)
        if current is None or current > last:
            return times
        times.append(current)
        if len(times) > 100_000:
            raise click.UsageError("the range holds more than 100000 scheduled times; narrow --from/--to")


def _execute_all(watch, services, times, action_mode, show_progress: bool) -> list[dict]:
    from watcher.engine.context import Run
    from watcher.engine.delivery import SendNow, Simulate
    from watcher.engine.execute import ExecuteOptions, execute_watch
    from watcher.engine.throttle import WatchStatus

    status = WatchStatus()
    deliveries = {"simulate": Simulate(), "execute": SendNow()}
    options = ExecuteOptions(action_modes={"_all": action_mode}, trigger_type="manual")
    records = []
    iterator = click.progressbar(times, label="backtesting", file=sys.stderr) if show_progress else None
    with (iterator if iterator is not None else _nullcontext(times)) as ticks:
        for tick in ticks:
            run = Run(watch=watch, execution_time=tick, triggered_time=tick, scheduled_time=tick, services=services)
            records.append(execute_watch(watch, run, status, deliveries, options))
    return records


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        return self.value

    def __exit__(self, *exc):
        return False


# ----------------------------------------------------------------------------------------------
# human output

def _print_record(watch, record: dict) -> None:
    echo = click.echo
    result = record["result"]
    echo(f"{click.style(watch.id, bold=True)} ({watch.file}) at {result['execution_time']}")
    _print_input(result.get("input", {}))
    condition = result.get("condition")
    if condition:
        met = click.style("met", fg="red", bold=True) if condition.get("met") else click.style("not met", fg="green")
        extra = json.dumps(condition.get(condition.get("type"), {}), default=str, ensure_ascii=False)
        if len(extra) > 240:  # a grouped rule resolves whole bucket lists; --json shows them
            extra = extra[:200] + f"… ({len(extra)} characters; --json shows all)"
        echo(f"condition {condition.get('type')}: {met}" + (f"  {extra}" if extra != "{}" else ""))
    if record.get("exception"):
        echo(click.style(f"error: {record['exception'].get('reason')}", fg="red"))
    for message in record.get("messages", []):
        echo(click.style(message, fg="red"))
    rule = result.get("rule")
    if rule:
        echo(f"filter: dropped {rule['filter']['dropped']}, kept {rule['filter']['kept']}; alerts: {rule['alerts']}"
             + (f" (groups: {', '.join(map(str, rule['groups']))})" if rule.get("groups") else ""))
    for action in result.get("actions", []):
        _print_action(action)
    echo(f"state: {click.style(record['state'], bold=True)}")


def _print_input(input_result: dict) -> None:
    echo = click.echo
    kind = input_result.get("type")
    if input_result.get("status") != "success":
        reason = str(input_result.get("error", {}).get("reason"))
        echo(click.style(f"input {kind} failed: {reason}", fg="red"))
        field = re.search(r"Fielddata is disabled on \[([^\]]+)\]", reason)
        if field:  # the most common first-rule mistake: grouping or sorting on a dynamically mapped text field
            echo(f"hint: [{field[1]}] is a text field; group by a keyword field instead (with dynamic mappings: "
                 f"{field[1]}.keyword), or map {field[1]} as keyword or ip in an index template")
        return
    request = (input_result.get("search") or {}).get("request")
    if request:
        echo(f"input search on {', '.join(request.get('indices') or ['_all'])}")
        echo("  request: " + json.dumps(request.get("body"), ensure_ascii=False, default=str))
    elif input_result.get("http"):
        echo(f"input http: {json.dumps(input_result['http'].get('request'), default=str)}")
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
            shown = ", ".join(f"{b.get('key_as_string', b.get('key'))}: {b.get('doc_count')}" for b in buckets[:10])
            echo(f"  aggregation {name}: {len(buckets)} buckets" + (f" ({shown}{', …' if len(buckets) > 10 else ''})" if buckets else ""))
        elif isinstance(agg, dict) and "value" in agg:
            echo(f"  aggregation {name}: {agg['value']}")


def _print_action(action: dict) -> None:
    echo = click.echo
    colour = {"success": "green", "simulated": "cyan", "failure": "red", "throttled": "yellow"}.get(action["status"])
    echo(f"action {action['id']} [{action['type']}]: {click.style(action['status'], fg=colour)}"
         + (f" — {action['reason']}" if action.get("reason") else ""))
    for item in action.get("foreach") or [action]:
        if "group" in item:
            echo(f"  group {item['group']}: {item['status']}" + (f" — {item['reason']}" if item.get("reason") and item is not action else ""))
        detail = item.get(action["type"]) or {}
        if "logged_text" in detail:
            echo("    " + detail["logged_text"].replace("\n", "\n    "))
        message = detail.get("message") if isinstance(detail, dict) else None
        if isinstance(message, dict):  # slack: the message that would be posted
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


def _print_backtest(watch, records: list[dict]) -> None:
    echo = click.echo
    fired = [r for r in records if r["state"] not in ("execution_not_needed", "failed")]
    echo(f"{watch.id}: {len(records)} scheduled times, fired at {len(fired)}, failed at "
         f"{sum(r['state'] == 'failed' for r in records)}")
    echo(f"{'scheduled time':<26} {'state':<22} {'hits':>6}  alerts")
    for record in records:
        if record["state"] == "execution_not_needed":
            continue
        payload = record["result"].get("input", {}).get("payload") or {}
        total = (payload.get("hits") or {}).get("total")
        total = total.get("value") if isinstance(total, dict) else total
        rule = record["result"].get("rule") or {}
        groups = rule.get("groups")
        alerts = ", ".join(map(str, groups)) if groups else ("" if not rule else str(rule.get("alerts")))
        scheduled = record["trigger_event"].get("manual", record["trigger_event"]).get("schedule", {}).get("scheduled_time")
        echo(f"{scheduled:<26} {record['state']:<22} {'' if total is None else total:>6}  {alerts}")
