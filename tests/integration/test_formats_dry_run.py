"""`watcher dry-run` against the real cluster for the formats of issue 18: a chained input whose link
fails (shown in the human output), a JSON watch with comments, and an ElastAlert2 rule whose
``_type`` filter (gone in Elasticsearch 8) was dropped by `watcher convert --from elastalert`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "watches"
AT = "2026-11-29T10:10:00Z"


def dry_run(es_cluster, *args):
    result = CliRunner().invoke(main, ["dry-run", *map(str, args)], env=es_cluster.env(), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def logs(es, index_name):
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "log.level": {"type": "keyword"}, "service.name": {"type": "keyword"}}})
    for i, minute in enumerate((1, 2, 3, 4, 5)):
        es.index(index=index_name, id=str(i), document={
            "@timestamp": f"2026-11-29T10:0{minute}:00Z", "log": {"level": "error"}, "service": {"name": "checkout"}})
    es.indices.refresh(index=index_name)
    return index_name


def chained(logs: str, refused: bool) -> str:
    """The shipped chained-input example on ``logs``; ``refused``: its search link sends the ``type``
    query, which Elasticsearch 8 refuses (``unknown query [type]``)."""
    text = (EXAMPLES / "chained-input.json").read_text().replace('"logs-*"', f'"{logs}"')
    return text.replace('{"term": {"log.level": "error"}}', '{"type": {"value": "doc"}}') if refused else text


def test_a_failed_chain_link_is_shown_with_the_clusters_reason(es_cluster, logs, tmp_path):
    path = tmp_path / "chained-input.json"
    path.write_text(chained(logs, refused=True))
    code, out, _ = dry_run(es_cluster, path, "--at", AT)
    assert out.splitlines()[1:4] == [
        "input chain",
        "  link limits [simple]: keys: max_errors",
        "  link errors [search] failed: unknown query [type] (parsing_exception)"], out
    # Watcher's chain goes on after a failed link: the run itself completes (the condition reads {})
    assert code == 0 and "state: execution_not_needed" in out
    path.write_text(chained(logs, refused=False))
    code, out, _ = dry_run(es_cluster, path, "--at", AT)
    assert code == 0 and f"  link errors [search] on {logs}: 5 hits" in out.splitlines(), out


def test_backtest_names_a_failing_link(es_cluster, logs, tmp_path):
    path = tmp_path / "chained-input.json"
    path.write_text(chained(logs, refused=True))
    code, out, _ = dry_run(es_cluster, path, "--from", "2026-11-29T10:00:00Z", "--to", "2026-11-29T10:20:00Z")
    assert out.splitlines()[-1] == ("chain link errors failed at 3 scheduled time(s), first: unknown query [type] "
                                    "(parsing_exception)"), out


def test_a_watch_with_comments_dry_runs_and_a_broken_one_says_where(es_cluster, logs, tmp_path):
    text = (EXAMPLES / "chained-input.json").read_text().replace('"logs-*"', f'"{logs}"')
    commented = ("// checkout errors against a limit\n"
                 + text.replace('"metadata":', '/* the service whose errors count */ "metadata":')
                       .replace('{"term": {"log.level": "error"}},', '{"term": {"log.level": "error"}}, // errors only'))
    path = tmp_path / "commented.json"
    path.write_text(commented)
    code, out, err = dry_run(es_cluster, path, "--at", AT)
    assert code == 0, out + err
    assert "condition compare: met" in out  # 5 errors > 3
    assert "checkout: 5 errors (limit 3)" in out
    path.write_text(commented.replace('"size": 0,', '"size": 0,,'))
    code, out, err = dry_run(es_cluster, path, "--at", AT)
    line = next(n for n, row in enumerate(commented.splitlines(), 1) if '"size": 0,' in row)
    column = commented.splitlines()[line - 1].index('"size": 0,') + len('"size": 0,,')
    assert (code, out) == (1, "")
    assert err == f"{path}:{line}:{column}: expected a member name in double quotes after ',', found ','\n"


def test_a_converted_rule_without_its_type_filter_finds_what_the_original_could_not(es_cluster, es, logs, tmp_path):
    source = tmp_path / "ea-errors.yaml"
    source.write_text(f"""\
name: checkout errors
type: frequency
index: {logs}
num_events: 3
timeframe: {{minutes: 10}}
filter:
- term:
    _type: "doc"
- term:
    log.level: error
alert:
- post
http_post_url: "http://127.0.0.1:9/hook"
""")
    rules = tmp_path / "rules"
    rules.mkdir()
    converted = CliRunner().invoke(main, ["convert", str(source), "--from", "elastalert", "--connectors-out",
                                          str(rules / "connectors.yaml")])
    assert converted.exit_code == 0, converted.stderr
    assert ('note: filter[0]: {"term": {"_type": "doc"}} dropped: Elasticsearch 8 has no _type field (mapping types '
            'were removed), so it would match no document') in converted.stderr.splitlines()
    (rules / "checkout-errors.yaml").write_text(converted.stdout)
    # What the original filter would have found on this cluster: nothing.
    original = es.count(index=logs, query={"bool": {"filter": [{"term": {"_type": "doc"}},
                                                               {"term": {"log.level": "error"}}]}})
    assert original["count"] == 0
    env = {**es_cluster.env(), "CHECKOUT_ERRORS_HTTP_POST_URL": "http://127.0.0.1:9/hook"}
    result = CliRunner().invoke(main, ["dry-run", str(rules / "checkout-errors.yaml"), "--at", AT], env=env)
    assert result.exit_code == 0, result.output
    assert re.search(r"matches: 1\b", result.stdout), result.stdout
