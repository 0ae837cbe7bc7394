"""``change``, ``blacklist``, ``whitelist`` and ``new_term`` against the real cluster: the matches
are worked out by hand from each test's own documents (windows are ``[start, end)``)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.integration.ruletype_helpers import (RuleRunner, add_docs, create_index, delivered, ecs_doc, match_details,
                                               matches)
from watcher.schedule import next_fire

UTC = dt.timezone.utc
T = dt.datetime(2026, 11, 29, 10, 0, 0, tzinfo=UTC)  # first scheduled time
KEYWORDS = {"host": {"properties": {"name": {"type": "keyword"}}},
            "user": {"properties": {"name": {"type": "keyword"}}},
            "tags": {"type": "keyword"}, "port": {"type": "integer"}}


def at(minutes: float, seconds: float = 0) -> str:
    return (T + dt.timedelta(minutes=minutes, seconds=seconds)).isoformat().replace("+00:00", "Z")


doc = ecs_doc


def folder(tmp_path, name: str):
    """A sub-folder for one more rule (a rule folder holds one rule)."""
    path = tmp_path / name
    path.mkdir()
    return path


@pytest.fixture
def index(es, index_name):
    create_index(es, index_name, KEYWORDS)
    return index_name


def rule(index: str, rule_type: str, params: str, *, group_by: str | None = "host.name", window: str = "10m",
         name: str = "r", schedule: str = "10m") -> str:
    group = f"group_by: {group_by}\n" if group_by else ""
    return (f"name: {name}\ntype: {rule_type}\nindex: {index}\nwindow: {window}\nschedule: {schedule}\n{group}"
            f"params:\n{params}actions:\n  - connector: log\n")


# ---- change ----------------------------------------------------------------------------------

CHANGE = "  compare_key: user.name\n"


def test_change_per_key_across_runs_with_boundaries_and_missing_group(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-9), "h1", "alice"), doc(at(-5), "h1", "alice"), doc(at(-2), "h1", "bob"),     # 1 change
        doc(at(-8), "h2", "carol"),                                                           # first value only
        doc(at(-7), "h3", "dave"), doc(at(-6), "h3", "erin"), doc(at(-4), "h3", "dave"),      # 2 changes
        doc(at(-10), "h4", "x1"), doc(at(-1), "h4", "x2"),       # x1 exactly on the start: in → 1 change
        doc(at(-3), None, "x"), doc(at(-1), None, "y"),           # no host: the _missing group, 1 change
        doc(at(0), "h2", "zed"),                                  # exactly on the end: the next run's
        doc(at(-11), "h1", "bob"),                                # before the window
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "change", CHANGE))
    first = runner.run(T)
    assert matches(first) == {"h1": 1, "h3": 2, "h4": 1, "_missing": 1}
    h3 = match_details(first)["h3"]
    assert (h3["details"]["old_value"], h3["details"]["new_value"]) == ("erin", "dave")
    assert [(c["old_value"], c["new_value"], c["time"]) for c in h3["details"]["changes"]] == [
        ("dave", "erin", "2026-11-29T09:54:00.000Z"), ("erin", "dave", "2026-11-29T09:56:00.000Z")]
    assert match_details(first)["_missing"]["details"]["old_value"] == "x"

    add_docs(es, index, [doc(at(5), "h1", "bob"),          # same as the kept value: no change
                         doc(at(6), "h1"),                 # no user.name: skipped (ignore_null)
                         doc(at(7), "h3", "dave")])
    second = runner.run(T + dt.timedelta(minutes=10))
    assert matches(second) == {"h2": 1}                    # carol (kept from run 1) → zed at T
    details = match_details(second)["h2"]["details"]
    assert (details["old_value"], details["new_value"]) == ("carol", "zed")

    third = runner.run(T + dt.timedelta(minutes=20))       # empty window
    assert matches(third) == {}
    assert runner.state["type_state"]["data"]["h1"] == {"value": "bob", "time": "2026-11-29T10:05:00.000Z"}


def test_change_rules_never_share_state_and_restart_keeps_it(es, index, tmp_path):
    add_docs(es, index, [doc(at(-5), "h1", "alice"), doc(at(5), "h1", "bob")])
    one = RuleRunner(es, folder(tmp_path, "one"),
                     rule(index, "change", CHANGE, name="one"))
    two = RuleRunner(es, folder(tmp_path, "two"),
                     rule(index, "change", CHANGE, name="two"))
    assert matches(one.run(T)) == {}                       # alice learned by rule one only
    later = T + dt.timedelta(minutes=10)
    assert matches(two.run(later)) == {}                   # rule two never saw alice: bob is a first value
    restarted = RuleRunner(es, folder(tmp_path, "three"),
                           rule(index, "change", CHANGE, name="one"))
    restarted.state = one.state                            # a restart loads the saved state
    assert matches(restarted.run(later)) == {"h1": 1}


def test_change_timeframe(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-9), "h1", "alice"), doc(at(-3), "h1", "bob"),          # 6m apart > 5m: not a change
        doc(at(-6), "h2", "x"), doc(at(-1), "h2", "y"),                # 5m apart = timeframe: a change
    ])
    timed = RuleRunner(es, tmp_path, rule(index, "change", CHANGE + "  timeframe: 5m\n"))
    assert matches(timed.run(T)) == {"h2": 1}
    assert set(timed.state["type_state"]["data"]) == {"h1", "h2"}
    timed.run(T + dt.timedelta(minutes=10))   # both values last seen more than 5m before the end: forgotten
    assert timed.state["type_state"]["data"] == {}


def test_change_arrays_compound_key_and_nulls(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-9), "h1", "alice", tags=["a", "b"]), doc(at(-8), "h1", "alice", tags=["a", "b"]),
        doc(at(-7), "h1", "alice", tags=["a", "b", "c"]),               # the array changed
        doc(at(-6), "h2", "x", tags=["a"]), doc(at(-5), "h2", "y", tags=["a"]),   # the user changed
        doc(at(-4), "h3", "z"), doc(at(-3), "h3", "z", tags=["a"]),     # tags appear: ignore_null skips the first
    ])
    compound = RuleRunner(es, tmp_path, rule(index, "change", "  compare_key: [user.name, tags]\n"))
    record = compound.run(T)
    assert matches(record) == {"h1": 1, "h2": 1}
    assert match_details(record)["h1"]["details"]["new_value"] == ["alice", ["a", "b", "c"]]
    assert match_details(record)["h2"]["details"]["old_value"] == ["x", ["a"]]

    with_nulls = RuleRunner(es, folder(tmp_path, "n"),
                            rule(index, "change", "  compare_key: tags\n  ignore_null: false\n"))
    record = with_nulls.run(T)
    assert matches(record) == {"h1": 1, "h3": 1}
    assert match_details(record)["h3"]["details"]["old_value"] is None


def test_change_beyond_the_walked_documents_compares_the_newest(es, index, tmp_path):
    docs = [doc(at(-9, i), "h1", "same") for i in range(101)] + [doc(at(-1), "h1", "other")]
    add_docs(es, index, docs)
    runner = RuleRunner(es, tmp_path, rule(index, "change", CHANGE))
    record = runner.run(T)
    assert matches(record) == {"h1": 1}
    assert match_details(record)["h1"]["details"]["truncated"] is True
    assert runner.state["type_state"]["data"]["h1"]["value"] == "other"


# ---- blacklist / whitelist -------------------------------------------------------------------

def test_blacklist_with_a_list_file_groups_arrays_and_boundaries(es, index, tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "bad.txt").write_text("# known bad accounts\n\noracle\n  guest  \n")
    add_docs(es, index, [
        doc(at(-9), "h1", "root"), doc(at(-8), "h1", "root"), doc(at(-7), "h1", "alice"),
        doc(at(-6), "h2", "oracle"), doc(at(-5), "h2", "bob"), doc(at(-5), "h2", "guest"),
        doc(at(-4), None, "admin"),                        # no host: _missing
        doc(at(-10), "h3", "root"),                        # on the start: in
        doc(at(0), "h3", "root"), doc(at(-11), "h4", "root"),  # on the end / before: out
        doc(at(-3), "h5", ["bob", "admin"]),               # an array with one listed value
        doc(at(-2), "h6", "# known bad accounts"),         # a comment line is not a value
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "blacklist",
                                           "  compare_key: user.name\n"
                                           "  blacklist: [root, admin, '!file lists/bad.txt']\n"))
    record = runner.run(T)
    assert matches(record) == {"h1": 2, "h2": 2, "_missing": 1, "h3": 1, "h5": 1}
    details = match_details(record)
    assert details["h1"]["details"]["offending_values"] == [{"value": "root", "count": 2}]
    assert details["h2"]["details"]["offending_values"] == [{"value": "guest", "count": 1}, {"value": "oracle", "count": 1}]
    assert details["h5"]["details"]["offending_values"] == [{"value": "admin", "count": 1}]
    assert details["h1"]["details"]["list_size"] == 4
    assert len(details["h1"]["hits"]) == 2
    assert matches(runner.run(T + dt.timedelta(minutes=20))) == {}   # empty window


def test_whitelist_ignore_null_and_arrays(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-9), "h1", "alice"), doc(at(-8), "h1", "mallory"), doc(at(-7), "h1", "mallory"),
        doc(at(-6), "h2"),                                  # no user.name
        doc(at(-5), "h2", ["alice", "eve"]),                # eve is not listed: fires, although alice is
        doc(at(-4), None, "trent"),                         # no host: _missing
        doc(at(0), "h3", "mallory"),                        # on the end: out
    ])
    listed = "  compare_key: user.name\n  whitelist: [alice, bob]\n"
    ignoring = RuleRunner(es, tmp_path, rule(index, "whitelist", listed))
    record = ignoring.run(T)
    assert matches(record) == {"h1": 2, "h2": 1, "_missing": 1}
    assert match_details(record)["h1"]["details"]["offending_values"] == [{"value": "mallory", "count": 2}]
    assert match_details(record)["h2"]["details"]["offending_values"] == [{"value": "eve", "count": 1}]
    counting = RuleRunner(es, folder(tmp_path, "n"), rule(index, "whitelist", listed + "  ignore_null: false\n"))
    record = counting.run(T)
    assert matches(record) == {"h1": 2, "h2": 2, "_missing": 1}
    assert match_details(record)["h2"]["details"]["missing_field"] == 1
    assert match_details(record)["h2"]["details"]["offending_values"] == [{"value": "eve", "count": 1}]


def test_arrays_fire_a_whitelist_when_any_element_is_unlisted_and_a_blacklist_when_any_is_listed(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-9), "h1", tags=["info", "error"]),          # error is not listed
        doc(at(-8), "h1", tags=["warn"]),
        doc(at(-7), "h2", tags=["info"]),                   # only listed values
        doc(at(-6), "h2", tags=["info", "info"]),
        doc(at(-5), "h3", tags=["debug", "error", "info"]),
        doc(at(-4), "h4", tags=[]),                         # no value at all
        doc(at(-3), "h5", tags=["info"], port=[22, 8080]),  # the tags are fine
    ])
    white = RuleRunner(es, tmp_path, rule(index, "whitelist", "  compare_key: tags\n  whitelist: [info]\n"))
    record = white.run(T)
    assert matches(record) == {"h1": 2, "h3": 1}
    details = match_details(record)
    assert details["h1"]["details"]["offending_values"] == [{"value": "error", "count": 1}, {"value": "warn", "count": 1}]
    assert details["h3"]["details"]["offending_values"] == [{"value": "debug", "count": 1}, {"value": "error", "count": 1}]
    assert [hit["tags"] for hit in details["h1"]["hits"]] == [["warn"], ["info", "error"]]
    sent = {group: text for _, _, group, text in delivered(record)}
    assert sent["h1"].endswith("have a tags not in the whitelist: error, warn (group h1).")
    assert sent["h3"].endswith("has a tags not in the whitelist: debug, error (group h3).")

    numbers = RuleRunner(es, folder(tmp_path, "p"), rule(index, "whitelist", "  compare_key: port\n  whitelist: [22, 443]\n"))
    record = numbers.run(T)
    assert matches(record) == {"h5": 1}
    assert match_details(record)["h5"]["details"]["offending_values"] == [{"value": 8080, "count": 1}]

    black = RuleRunner(es, folder(tmp_path, "b"), rule(index, "blacklist", "  compare_key: tags\n  blacklist: [info, error]\n"))
    record = black.run(T)
    assert matches(record) == {"h1": 1, "h2": 2, "h3": 1, "h5": 1}      # a document counts once
    details = match_details(record)
    assert details["h1"]["details"]["offending_values"] == [{"value": "error", "count": 1}, {"value": "info", "count": 1}]
    assert details["h3"]["details"]["offending_values"] == [{"value": "error", "count": 1}, {"value": "info", "count": 1}]


def test_whitelist_says_when_there_are_more_unlisted_values_than_it_looks_for(es, index, tmp_path, monkeypatch, caplog):
    from watcher.engine.ruletypes import value_lists

    monkeypatch.setattr(value_lists, "MAX_OFFENDING", 2)    # the window holds 3 distinct unlisted values
    add_docs(es, index, [doc(at(-9), "h1", tags=["a"]), doc(at(-8), "h1", tags=["a", "b"]),
                         doc(at(-7), "h2", tags=["c"]), doc(at(-6), "h2", tags=["ok"])])
    runner = RuleRunner(es, tmp_path, rule(index, "whitelist", "  compare_key: tags\n  whitelist: [ok]\n"))
    with caplog.at_level("WARNING", logger="watcher.rules"):
        record = runner.run(T)
    assert matches(record) == {"h1": 2}                   # c (the least frequent) was not looked for
    assert match_details(record)["h1"]["details"]["offending_values_incomplete"] is True
    note = ("more than 2 distinct values of tags outside the whitelist in the window: the documents of the others "
            "are not counted (counts are lower bounds)")
    assert record["result"]["input"]["payload"]["info"]["note"] == note
    assert [r.getMessage() for r in caplog.records if r.name == "watcher.rules"] == [f"rule 'r': {note}"]


def test_five_thousand_values(es, index, tmp_path):
    allowed = [f"user-{i:04d}" for i in range(5000)]
    (tmp_path / "users.txt").write_text("\n".join(allowed) + "\n")
    add_docs(es, index, [doc(at(-5), "h1", "user-4999"), doc(at(-4), "h1", "user-0000"),
                         doc(at(-3), "h1", "stranger")])
    black = RuleRunner(es, tmp_path, rule(index, "blacklist", "  compare_key: user.name\n"
                                                              "  blacklist: ['!file users.txt']\n", group_by=None))
    record = black.run(T)
    assert matches(record) == {None: 2}
    assert match_details(record)[None]["details"]["list_size"] == 5000
    inline = "".join(f"    - {value}\n" for value in allowed)     # written inline, not from a file
    white = RuleRunner(es, folder(tmp_path, "w"),
                       rule(index, "whitelist", f"  compare_key: user.name\n  whitelist:\n{inline}", group_by=None))
    record = white.run(T)
    assert matches(record) == {None: 1}
    assert match_details(record)[None]["details"]["offending_values"] == [{"value": "stranger", "count": 1}]


def test_cron_in_paris_windows_follow_the_paris_instant(es, index, tmp_path):
    paris = ZoneInfo("Europe/Paris")
    add_docs(es, index, [
        doc("2026-11-29T08:00:00+01:00", "h1", "root"),     # 07:00Z, the window's start: in
        doc("2026-11-29T08:59:59+01:00", "h1", "root"),     # in
        doc("2026-11-29T09:00:00+01:00", "h1", "root"),     # 08:00Z, the window's end: out
        doc("2026-11-29T07:59:59+01:00", "h1", "root"),     # before: out
        doc("2026-11-29T08:30:00Z", "h1", "root"),          # 09:30 in Paris: out
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "blacklist", "  compare_key: user.name\n  blacklist: [root]\n",
                                           window="1h", schedule="{cron: '0 9 * * *', timezone: Europe/Paris}"))
    scheduled = next_fire(runner.watch.trigger, dt.datetime(2026, 11, 29, 0, 0, tzinfo=UTC))
    assert scheduled == dt.datetime(2026, 11, 29, 9, 0, tzinfo=paris)
    record = runner.run(scheduled)
    assert record["result"]["input"]["payload"]["window"] == {"start": "2026-11-29T07:00:00.000Z",
                                                              "end": "2026-11-29T08:00:00.000Z"}
    assert matches(record) == {"h1": 2}


# ---- new_term --------------------------------------------------------------------------------

NEW_TERM = "  fields: [user.name]\n"


def test_new_term_first_run_learns_then_alerts_only_new_terms(es, index, tmp_path):
    add_docs(es, index, [
        doc(at(-20 * 1440), "h1", "alice"), doc(at(-1440), "h1", "bob"),
        doc(at(-40 * 1440), "h1", "carol"),                 # older than terms_window_size: not learned
        doc(at(-5), "h1", "dave"),                          # in the first run's window: learned, no alert
        doc(at(-3), "h1"),                                  # no user.name
    ])
    runner = RuleRunner(es, tmp_path, rule(index, "new_term", NEW_TERM, group_by=None))
    first = runner.run(T)
    assert matches(first) == {}
    assert first["result"]["input"]["payload"]["info"]["new_term"]["learned"] == {"user.name": 3}

    add_docs(es, index, [
        doc(at(1), "h1", "bob"), doc(at(2), "h1", "carol"), doc(at(3), "h1", "erin"), doc(at(4), "h2", "erin"),
        doc(at(5), "h1", ""),                               # a falsy value is a term
        doc(at(6), "h1"),                                   # no field: no alert (alert_on_missing_field false)
        doc(at(10), "h1", "frank"),                         # on the end: next run
    ])
    second = runner.run(T + dt.timedelta(minutes=10))
    assert matches(second) == {"carol": 1, "erin": 2, "": 1}
    erin = match_details(second)["erin"]
    assert erin["details"] == {"field": "user.name", "fields": ["user.name"], "term": "erin",
                               "first_seen": "2026-11-29T10:03:00.000Z"}
    assert sorted(h["host"]["name"] for h in erin["hits"]) == ["h1", "h2"]

    add_docs(es, index, [doc(at(15), "h1", "erin")])
    third = runner.run(T + dt.timedelta(minutes=20))
    assert matches(third) == {"frank": 1}                   # frank on the start: in; erin known now

    add_docs(es, index, [doc(at(25), "h1", "carol"), doc(at(26), "h1", "gina")])
    restarted = RuleRunner(es, folder(tmp_path, "again"),
                           rule(index, "new_term", NEW_TERM, group_by=None))
    restarted.state = runner.state
    assert matches(restarted.run(T + dt.timedelta(minutes=30))) == {"gina": 1}   # no flood


def test_new_term_rules_never_share_state(es, index, tmp_path):
    add_docs(es, index, [doc(at(-5), "h1", "alice"), doc(at(5), "h1", "bob")])
    one = RuleRunner(es, folder(tmp_path, "a"), rule(index, "new_term", NEW_TERM, group_by=None, name="one"))
    two = RuleRunner(es, folder(tmp_path, "b"), rule(index, "new_term", NEW_TERM, group_by=None, name="two"))
    assert matches(one.run(T)) == {}
    later = T + dt.timedelta(minutes=10)
    assert matches(two.run(later)) == {}                    # rule two's first run: baseline only
    assert matches(one.run(later)) == {"bob": 1}
    assert two.state["type_state"]["data"]["user.name"].keys() == {'"alice"', '"bob"'}


def test_new_term_pages_beyond_one_composite_page(es, index, tmp_path):
    add_docs(es, index, [doc(at(-60), "h1", f"u{i:04d}") for i in range(2500)])
    runner = RuleRunner(es, tmp_path, rule(index, "new_term", NEW_TERM, group_by=None))
    first = runner.run(T)
    assert first["result"]["input"]["payload"]["info"]["new_term"]["learned"] == {"user.name": 2500}
    add_docs(es, index, [doc(at(1), "h1", "u0005"), doc(at(2), "h1", "u2499"), doc(at(3), "h1", "u9999")])
    assert matches(runner.run(T + dt.timedelta(minutes=10))) == {"u9999": 1}


def test_new_term_composite_falsy_numbers_and_missing_fields(es, index, tmp_path):
    add_docs(es, index, [doc(at(-1440), "web-1", "root", port=22)])
    runner = RuleRunner(es, tmp_path, rule(index, "new_term", "  fields: [[host.name, user.name], port]\n"
                                                              "  alert_on_missing_field: true\n", group_by=None))
    assert matches(runner.run(T)) == {}
    add_docs(es, index, [
        doc(at(1), "web-1", "root", port=0),                # port 0: new (falsy); the pair is known
        doc(at(2), "web-2", "root", port=22),               # the pair is new
        doc(at(3), "web-1", "root"),                        # no port: missing for port
        doc(at(4), None, "root", port=22),                  # no host: missing for the pair
        doc(at(5), None, None, port=22),
    ])
    record = runner.run(T + dt.timedelta(minutes=10))
    assert matches(record) == {"port=0": 1, 'host.name,user.name=["web-2", "root"]': 1,
                               "port=_missing": 1, "host.name,user.name=_missing": 2}
    details = match_details(record)
    assert details["port=0"]["details"]["term"] == 0
    assert details['host.name,user.name=["web-2", "root"]']["details"]["term"] == ["web-2", "root"]
    assert details["host.name,user.name=_missing"]["details"]["missing_field"] == "host.name,user.name"
    assert details["host.name,user.name=_missing"]["details"]["first_seen"] == "2026-11-29T10:04:00.000Z"
    assert len(details["host.name,user.name=_missing"]["hits"]) == 2


def test_new_term_with_a_paris_cron_schedule(es, index, tmp_path):
    paris = ZoneInfo("Europe/Paris")
    add_docs(es, index, [doc("2026-11-28T08:30:00+01:00", "h1", "alice")])
    runner = RuleRunner(es, tmp_path, rule(index, "new_term", NEW_TERM, group_by=None, window="1d",
                                           schedule="{cron: '0 9 * * *', timezone: Europe/Paris}"))
    assert matches(runner.run(dt.datetime(2026, 11, 28, 9, 0, tzinfo=paris))) == {}
    add_docs(es, index, [
        doc("2026-11-28T09:00:00+01:00", "h1", "bob"),      # the new window's start in Paris: in
        doc("2026-11-29T08:59:59+01:00", "h1", "carol"),    # in
        doc("2026-11-29T09:00:00+01:00", "h1", "dave"),     # the end: out
    ])
    record = runner.run(dt.datetime(2026, 11, 29, 9, 0, tzinfo=paris))
    assert matches(record) == {"bob": 1, "carol": 1}
    assert match_details(record)["bob"]["details"]["first_seen"] == "2026-11-28T08:00:00.000Z"
