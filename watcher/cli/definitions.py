"""CLI verbs about definition files: ``watcher validate``, ``watcher schema``, ``watcher convert``.

Registered on the main group in :mod:`watcher.cli` (``main.add_command(validate)`` …).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from watcher.definitions.cluster_checks import resolve_group_fields, template_field_warnings
from watcher.definitions.compile import NotConvertible, watch_body, watch_to_rule
from watcher.definitions.from_elastalert import ConversionError, NoActionsError, convert_file, merge_connectors
from watcher.definitions.load import default_connectors_path, load_connectors_file, load_definition, load_paths
from watcher.definitions.schema import FILE_NAMES, KINDS, schema
from watcher.engine.windows import uses_calendar_window
from watcher.es.client import ConnectionSettings, make_client
from watcher.model.problems import Problem
from watcher.support.durations import format_duration

DEFAULT_RULES_DIR = "rules/"


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--connectors", "connectors_path", type=click.Path(),
              help="Connectors file (default: connectors.yaml beside the first path).")
@click.option("--cluster", "with_cluster", is_flag=True,
              help="Also check against the cluster named by ES_URL: group_by fields it cannot aggregate, and "
                   "document fields the templates read that no index maps (warnings).")
def validate(paths: tuple[str, ...], connectors_path: str | None, with_cluster: bool) -> None:
    """Check rule and watch files (default: rules/) and the connectors file.

    Prints every problem as file:line:column: field.path: message, then a summary. Exits with
    status 1 when any file has a problem. A rule or watch with no action that sends its alert
    anywhere (none, or only logging) gets a warning line. With --cluster, the rules are also checked
    against the cluster's mappings (ES_URL). Warnings do not change the exit status.
    """

    result = load_paths(paths or (DEFAULT_RULES_DIR,), connectors_path)
    if with_cluster:
        try:
            es = make_client(ConnectionSettings.from_env())
            notes = resolve_group_fields(result, es)
            warnings = template_field_warnings(result, es)
        except Exception as error:  # ValueError (settings) or the client's errors: say what failed
            raise click.ClickException(f"cannot check against the cluster: {error}") from None
        for note in notes:
            click.echo(f"note: {note}")
        for warning in warnings:
            click.echo(f"warning: {warning}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    for problem in result.problems:
        click.echo(str(problem))
    click.echo(f"{len(result.files_ok)} file{'s' if len(result.files_ok) != 1 else ''} OK, "
               f"{len(result.files_bad)} with problems")
    if result.problems:
        sys.exit(1)


@click.command("schema")
@click.argument("kind", required=False, type=click.Choice(["rule", "watch", "connectors"]))
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Write rule.schema.json, watch.schema.json, connectors.schema.json into this directory.")
def schema_command(kind: str | None, out_dir: str | None) -> None:
    """Print the JSON Schema of rule files, watch files or connectors.yaml (all three by default).

    Point your editor's YAML language server at it, e.g. a first line
    `# yaml-language-server: $schema=./schemas/rule.schema.json`.
    """

    kinds = (kind,) if kind else KINDS
    if out_dir:
        directory = Path(out_dir)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            for name in kinds:
                target = directory / FILE_NAMES[name]
                target.write_text(json.dumps(schema(name), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
                click.echo(f"wrote {target}")
        except OSError as error:  # a folder that cannot be created or written to: say which, not a traceback
            raise click.ClickException(f"cannot write the schemas to the folder {out_dir} (--out): "
                                       f"{error.strerror or error}") from None
        return
    document = schema(kind) if kind else {name: schema(name) for name in KINDS}
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


RULE_METADATA_KEY = "watcher_rule"
_RULE_ONLY = ("description", "tags", "filter", "title", "message", "recovered_title", "recovered_message", "realert",
              "exponential_realert", "aggregation", "top_count_keys", "top_count_number", "include", "calendar_window")


def _rule_only_parts(rule: dict) -> dict:
    """The parts of a rule that a watch JSON cannot express (kept in its metadata by convert)."""
    return {key: rule[key] for key in _RULE_ONLY if rule.get(key) not in (None, [], {}, "")}


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--to", "target", type=click.Choice(["watch", "rule"]),
              help="watch: print the Watcher JSON; rule: print the YAML rule (when the watch fits the rule form).")
@click.option("--from", "source", type=click.Choice(["elastalert"]),
              help="elastalert: PATH is an ElastAlert2 rule; print the equivalent YAML rule.")
@click.option("--connectors", "connectors_path", type=click.Path(),
              help="Connectors file (default: connectors.yaml beside PATH).")
@click.option("--connectors-out", "connectors_out", type=click.Path(dir_okay=False),
              help="With --from elastalert: add the connectors the rule's actions need to this connectors.yaml "
                   "(created if missing; secrets written as ${ENV_VAR} references).")
@click.option("--allow-no-actions", is_flag=True,
              help="With --from elastalert: convert a rule none of whose alerters converts (it would alert "
                   "nobody) instead of failing.")
def convert(path: str, target: str | None, source: str | None, connectors_path: str | None,
            connectors_out: str | None, allow_no_actions: bool) -> None:
    """Convert a rule to the equivalent watch JSON, a watch to a rule, or an ElastAlert2 rule to a rule.

    A watch converts to a rule only when it has the rule's shape (one search input with a time
    range, a count/metric/compare condition, connector actions); otherwise the message says which
    part does not fit, and the exit status is 1.

    With --from elastalert, every ElastAlert2 option that is not carried over is named on stderr
    (note: not carried over: …); the exit status is 0 when the rule converted, 1 when it cannot be.
    A rule none of whose alerters converts would alert nobody: that is an error (exit status 1,
    naming the alerters) unless --allow-no-actions.
    """
    if (target is None) == (source is None):
        raise click.UsageError("give either --to (watch or rule) or --from elastalert" +
                               (", not both" if target else ""))
    if source is not None:
        if connectors_path:
            raise click.UsageError("--connectors belongs to --to; with --from elastalert use --connectors-out FILE")
        _convert_elastalert(path, connectors_out, allow_no_actions)
        return
    if connectors_out:
        raise click.UsageError("--connectors-out belongs to --from elastalert")
    if allow_no_actions:
        raise click.UsageError("--allow-no-actions belongs to --from elastalert")

    connectors_file = Path(connectors_path) if connectors_path else default_connectors_path([path])
    connectors: dict = {}
    if connectors_file is not None:
        connectors, problems = load_connectors_file(connectors_file)
        _fail_on(problems)
    watch, problems = load_definition(path, connectors, connectors_file=str(connectors_file) if connectors_file else None)
    _fail_on(problems)
    if target == "watch":
        if watch.rule is not None and not watch.rule.is_threshold:
            click.echo(f"{path}: cannot convert to a watch: rule type {watch.rule.type!r} is evaluated by watcher's "
                       "rule engine (its queries, state and matching have no Elastic Watcher equivalent); "
                       "only threshold rules convert", err=True)
            sys.exit(1)
        body = dict(watch.body)
        if watch.rule is not None and uses_calendar_window(watch.rule):
            body = watch_body(watch.rule, connectors, str(path), portable=True)
            click.echo(f"note: the rule searches from its previous fire time (calendar window); Elastic Watcher "
                       f"has no such time, so the watch searches a fixed {format_duration(watch.rule.window)} "
                       "before each fire time (23- and 25-hour days are then counted as 24 hours)", err=True)
        if watch.rule is not None:
            kept = _rule_only_parts(watch.rule.to_document())
            if kept:
                body["metadata"] = {**(body.get("metadata") or {}), RULE_METADATA_KEY: kept}
                click.echo(f"note: the rule's {', '.join(kept)} are steps of watcher's rule engine, not of a watch; "
                           f"they travel in metadata.{RULE_METADATA_KEY} (Elastic Watcher ignores it) so "
                           "`convert --to rule` restores them", err=True)
        if any("connector" in (next(iter(a.values()), {}) or {}) for a in (body.get("actions") or {}).values()
               if isinstance(a, dict)):
            click.echo("note: actions name connectors (connector: NAME), resolved by watcher from connectors.yaml; "
                       "for an Elastic Watcher cluster, write the destination into each action", err=True)
        click.echo(json.dumps(body, indent=2, ensure_ascii=False))
        return
    if watch.rule is not None:
        rule = watch.rule.to_document()
    else:
        try:
            rule = watch_to_rule(watch)
        except NotConvertible as error:
            click.echo(f"{path}: cannot convert to a rule: {error}", err=True)
            sys.exit(1)
        kept = (watch.metadata or {}).get(RULE_METADATA_KEY)
        if isinstance(kept, dict):  # written by `convert --to watch`: restore the rule-only steps
            rule.update(kept)
            metadata = {k: v for k, v in (rule.get("metadata") or {}).items() if k != RULE_METADATA_KEY}
            rule.pop("metadata", None)
            if metadata:
                rule["metadata"] = metadata
    click.echo(_yaml(rule), nl=False)


def _convert_elastalert(path: str, connectors_out: str | None, allow_no_actions: bool) -> None:
    """``convert PATH --from elastalert``: the rule on stdout, notes on stderr, connectors to a file.
    A rule that would have no action: its notes (why each alerter was left out), then the error."""

    try:
        conversion = convert_file(path, allow_no_actions=allow_no_actions)
    except NoActionsError as error:
        for line in error.conversion.messages():
            click.echo(line, err=True)
        click.echo(f"{error}", err=True)
        sys.exit(1)
    except ConversionError as error:
        click.echo(f"{error}", err=True)
        sys.exit(1)
    if conversion.connectors:
        names = ", ".join(conversion.connectors)
        if connectors_out:
            target = Path(connectors_out)
            try:
                existing = target.read_text(encoding="utf-8") if target.exists() else None
                text, replaced = merge_connectors(existing, conversion.connectors, str(target))
                target.write_text(text, encoding="utf-8")
            except ConversionError as error:
                click.echo(f"{error}", err=True)
                sys.exit(1)
            except OSError as error:
                raise click.ClickException(f"cannot write the connectors to {target} (--connectors-out): "
                                           f"{error.strerror or error}") from None
            conversion.notes.append(f"connectors {names} written to {target}"
                                    + (f" (replacing {', '.join(replaced)})" if replaced else ""))
        else:
            conversion.notes.append(f"the actions name the connectors {names}: write them into your "
                                    "connectors.yaml with --connectors-out FILE")
    for line in conversion.messages():
        click.echo(line, err=True)
    click.echo(_yaml(conversion.rule), nl=False)


def _fail_on(problems: list[Problem]) -> None:
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


def _yaml(data: dict) -> str:
    def blocks(value):  # multi-line strings (templates) as | blocks
        if isinstance(value, str) and "\n" in value:
            return LiteralScalarString(value)
        if isinstance(value, dict):
            return {k: blocks(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blocks(v) for v in value]
        return value

    data = blocks(data)
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()
