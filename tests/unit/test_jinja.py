"""Sandboxed Jinja2 for rule templates, and render_text (Mustache strings, template objects, Jinja2)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from watcher.templates.jinja import TemplateRenderError, check_syntax, render_jinja, tojson
from watcher.templates.text import render_text

UTC = dt.timezone.utc


def test_variables_filters_and_loops():
    source = "{{ count }} from {{ group }}:{% for h in hits %} {{ h.user.name }}{% endfor %}"
    out = render_jinja(source, {"count": 3, "group": "10.0.0.9", "hits": [{"user": {"name": "root"}},
                                                                          {"user": {"name": "admin"}}]})
    assert out == "3 from 10.0.0.9: root admin"


def test_undefined_variable_is_an_error_naming_it():
    with pytest.raises(TemplateRenderError) as error:
        render_jinja("line one\n{{ gruop }}", {"group": "x"})
    assert str(error.value) == "undefined variable 'gruop' (template line 2)"
    assert (error.value.variable, error.value.line) == ("gruop", 2)


def test_undefined_attribute_names_the_attribute_and_the_keys():
    with pytest.raises(TemplateRenderError) as error:
        render_jinja("{{ rule.nmae }}", {"rule": {"name": "r", "tags": []}})
    assert str(error.value) == "undefined attribute 'nmae' (the mapping has keys: name, tags) (template line 1)"
    assert error.value.variable == "nmae"


def test_default_filter_covers_undefined_values():
    assert render_jinja("{{ x | default('n/a') }}/{{ rule.owner | default('nobody') }}", {"rule": {}}) == "n/a/nobody"
    assert render_jinja("{% if x is defined %}yes{% else %}no{% endif %}", {}) == "no"


def test_no_autoescape():
    assert render_jinja("{{ v }}", {"v": "<b>&'\"</b>"}) == "<b>&'\"</b>"


def test_tojson_is_valid_json_whatever_the_data():
    data = {"when": dt.datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=UTC), "html": "<a href='x'>&</a>",
            "nan": float("nan"), "set": {1}, "span": dt.timedelta(minutes=5), "naive": dt.datetime(2024, 1, 2),
            "obj": object.__new__(type("Thing", (), {"__str__": lambda self: "thing"}))}
    text = render_jinja("{{ data | tojson }}", {"data": data})
    assert json.loads(text) == {"when": "2024-05-01T10:15:30.123Z", "html": "<a href='x'>&</a>", "nan": None,
                                "set": [1], "span": "5m", "naive": "2024-01-02T00:00:00.000", "obj": "thing"}
    assert tojson("é") == '"é"'


def test_datetimeformat_accepts_datetimes_iso_strings_and_epoch_millis():
    when = dt.datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert render_jinja("{{ t | datetimeformat }}", {"t": when}) == "2024-05-01T10:00:00Z"
    assert render_jinja("{{ t | datetimeformat('%H:%M %Z', 'Europe/Paris') }}", {"t": "2024-05-01T10:00:00Z"}) == "12:00 CEST"
    assert render_jinja("{{ t | datetimeformat('%Y-%m-%d') }}", {"t": 1714557600000}) == "2024-05-01"


def test_sandbox_refuses_python_internals():
    with pytest.raises(TemplateRenderError) as error:
        render_jinja("{{ ''.__class__.__mro__ }}", {})
    assert "unsafe" in str(error.value)


def test_errors_raised_by_filters_become_render_errors():
    with pytest.raises(TemplateRenderError) as error:
        render_jinja("{{ 1 / n }}", {"n": 0})
    assert str(error.value) == "template error: division by zero (template line 1)"


def test_check_syntax_gives_the_line():
    assert check_syntax("fine {{ x }}") is None
    assert check_syntax("a\nb {{ x }\n") == (2, "template syntax error: unexpected '}'")
    assert check_syntax("{% for x in y %}") == (1, "template syntax error: Unexpected end of template. Jinja was "
                        "looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be "
                        "closed is 'for'.")


def test_render_jinja_reports_syntax_errors_too():
    with pytest.raises(TemplateRenderError) as error:
        render_jinja("{{ x", {})
    assert str(error.value).startswith("template syntax error at line 1: ")


# ---- render_text --------------------------------------------------------------------------------

MODEL = {"ctx": {"watch_id": "w1", "payload": {"q": 'say "hi"', "hits": {"total": 7}}}}


def test_mustache_string():
    assert render_text("{{ctx.watch_id}}: {{ctx.payload.hits.total}}", MODEL) == "w1: 7"


def test_json_prefix_and_escape_option():
    assert render_text('__json__::{"q": "{{ctx.payload.q}}"}', MODEL) == '{"q": "say \\"hi\\""}'
    assert render_text('{"q": "{{ctx.payload.q}}"}', MODEL, escape="json") == '{"q": "say \\"hi\\""}'
    assert render_text('{{ctx.payload.q}}', MODEL) == 'say "hi"'


def test_template_object_params_are_merged_at_the_top_level():
    template = {"source": "{{ctx.watch_id}} {{who}}", "params": {"who": "ops"}}
    assert render_text(template, MODEL) == "w1 ops"
    assert render_text({"source": '{{ctx.payload.q}}', "options": {"content_type": "application/json"}},
                       MODEL) == 'say \\"hi\\"'


def test_jinja_template_object_uses_jinja_vars():
    template = {"source": "{{ count }} hits in {{ ctx.watch_id }}", "lang": "jinja"}
    assert render_text(template, MODEL, jinja_vars={"count": 5, "ctx": MODEL["ctx"]}) == "5 hits in w1"
    assert render_text({"source": "{{ ctx.payload.hits.total }} {{ p }}", "lang": "jinja", "params": {"p": "!"}},
                       MODEL) == "7 !"


def test_render_text_refuses_unknown_lang_and_stored_templates():
    with pytest.raises(ValueError, match="expected template lang mustache or jinja, found 'painless'"):
        render_text({"source": "x", "lang": "painless"}, MODEL)
    with pytest.raises(ValueError, match="stored templates are not supported"):
        render_text({"id": "stored"}, MODEL)
    with pytest.raises(ValueError, match="expected escape none or json"):
        render_text("x", MODEL, escape="html")


def test_non_string_sources_render_as_json():
    assert render_text({"source": {"a": 1}}, MODEL) == '{"a": 1}'
    assert render_text(None, MODEL) == ""


def test_resource_limits_stop_runaway_templates():
    from watcher.templates.jinja import TemplateRenderError, render_jinja

    for source, fragment in [("{{ 9 ** (9 ** 9) }}", "exponent 387420489 is larger than 1000"),
                             ("{{ 'x' * 1000000000 }}", "exceeds 1048576 items"),
                             ('{% for i in range(100000) %}{{ "x" * 100 }}{% endfor %}', "exceeds 1048576 characters")]:
        with pytest.raises(TemplateRenderError) as error:
            render_jinja(source, {})
        assert fragment in str(error.value)
    assert render_jinja("{{ 2 ** 10 }} {{ 'ab' * 3 }}", {}) == "1024 ababab"


def test_check_syntax_reports_unknown_filters_and_unknown_variables():
    from watcher.templates.jinja import check_syntax

    assert check_syntax("{{ count | nosuchfilter }}") == (1, "template syntax error: No filter named 'nosuchfilter'.")
    known = frozenset({"count", "group"})
    assert check_syntax("{{ cuont }}", known) == (
        1, "undefined variable 'cuont' (did you mean 'count'?); templates here know: count, group")
    assert check_syntax("{% set n = count %}{% for h in range(n) %}{{ h }}{{ group }}{% endfor %}", known) is None


def test_missing_values_render_as_a_placeholder_and_are_named():
    from watcher.templates.jinja import MISSING_VALUE, missing_values

    hits = [{"user": {"name": "root"}}]
    with missing_values() as missing:
        text = render_jinja("{{ hits[0].user.name }} from {{ hits[0].source.ip }} ({{ hits[4] }}), "
                            "{{ hits[0].tags | default('no tags') }}{% for t in hits[0].tags %}{{ t }}{% endfor %}",
                            {"hits": hits})
    assert text == f"root from {MISSING_VALUE} ({MISSING_VALUE}), no tags"
    assert missing == ["source", "4"]


def test_outside_missing_values_a_missing_attribute_still_fails_and_a_missing_variable_always_does():
    from watcher.templates.jinja import missing_values

    with pytest.raises(TemplateRenderError, match="undefined attribute 'ip'"):
        render_jinja("{{ source.ip }}", {"source": {}})
    with missing_values(), pytest.raises(TemplateRenderError, match="undefined variable 'nosuch'"):
        render_jinja("{{ nosuch }}", {})


# ---- keys with dots inside documents (docs/correctness.md#dotted-keys-inside-documents) ------------

FALCO_HITS = [{"output_fields": {"container.image.repository": "repo-x", "proc.name": "sh"},
               "k8s.ns.name": "prod", "host.name": "literal", "host": {"name": "nested", "ip": "10.0.0.1"}}]


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ hits[0].output_fields.container.image.repository }}", "repo-x"),
    ("{{ hits[0].output_fields['container.image.repository'] }}", "repo-x"),
    ("{{ hits[0]['output_fields.container.image.repository'] }}", "repo-x"),
    ("{{ hits[0].output_fields.proc.name }}", "sh"),
    ("{{ hits[0].k8s.ns.name }}", "prod"),
    ("{{ hits[0].host.name }} {{ hits[0].host.ip }}", "literal 10.0.0.1"),
    ("{{ hits | map(attribute='output_fields.container.image.repository') | join }}", "repo-x"),
    ("{{ hits[0].output_fields.container.image.tag | default('latest') }}", "latest"),
])
def test_templates_reach_keys_with_dots(source, expected):
    assert render_jinja(source, {"hits": FALCO_HITS}) == expected


def test_a_dotted_prefix_that_is_no_field_is_still_undefined():
    with pytest.raises(TemplateRenderError) as error:
        render_jinja("{{ hits[0].output_fields.container.image.tag }}", {"hits": FALCO_HITS})
    assert str(error.value) == ("undefined attribute 'tag' (the mapping has keys: repository) (template line 1)")
