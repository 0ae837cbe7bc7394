"""Unit tests for watcher.templates.mustache: Watcher-compatible Mustache.

Expected strings follow Elasticsearch's lang-mustache (mustache.java 0.9.x + CustomMustacheFactory /
CustomReflectionObjectHandler); the quirkier ones (list printing, whitespace, join on a non-list) were
checked against mustache.java 0.9.10 driven through a replica of the Elasticsearch object handler.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest

from watcher.templates.mustache import (
    MAX_OUTPUT_SIZE,
    Template,
    TemplateRenderError,
    TemplateSyntaxError,
    compile_template,
    render,
    to_json,
    to_text,
)

EXECUTION_TIME = datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=timezone.utc)


def search_ctx(*ids: str, **payload_extra: object) -> dict:
    """A Watcher model whose payload is a search response (hits.total as an int, Watcher's default)."""
    hits = [{"_index": "logs", "_id": i, "_source": {"message": f"error {i}"}} for i in ids]
    return {
        "ctx": {
            "watch_id": "errors",
            "execution_time": EXECUTION_TIME,
            "trigger": {
                "triggered_time": datetime(2024, 5, 1, 10, 15, 30, 120000, tzinfo=timezone.utc),
                "scheduled_time": datetime(2024, 5, 1, 10, 15, tzinfo=timezone.utc),
            },
            "metadata": None,
            "payload": {"hits": {"total": len(ids), "hits": hits}, **payload_extra},
            "vars": {},
        }
    }


# --------------------------------------------------------------------------------------------------
# Variables and paths


def test_appendix_a_logging_text() -> None:
    template = "{{ctx.payload.hits.total}} errors:{{#ctx.payload.hits.hits}}{{_id}}:{{/ctx.payload.hits.hits}}"
    assert render(template, search_ctx("4", "1", "3")) == "3 errors:4:1:3:"


def test_dot_path_through_maps() -> None:
    model = {"ctx": {"watch_id": "w1", "payload": {"a": {"b": {"c": "deep"}}}}}
    assert render("{{ctx.watch_id}}/{{ctx.payload.a.b.c}}", model) == "w1/deep"


def test_numeric_segment_indexes_lists() -> None:
    model = search_ctx("4", "1") | {"grid": [[1, 2], [3]]}
    assert render("{{ctx.payload.hits.hits.1._id}} {{ctx.payload.hits.hits.0._source.message}}", model) == "1 error 4"
    assert render("{{grid.0.1}}", model) == "2"


def test_size_of_lists() -> None:
    model = {"l": ["a", "b", "c"], "empty": [], "t": (1, 2), "m": {"k": 1}, "sized": {"size": 7}}
    assert render("{{l.size}} {{empty.size}} {{t.size}}", model) == "3 0 2"
    assert render("[{{m.size}}]{{sized.size}}", model) == "[]7"  # maps have no size, only a key of that name


def test_missing_values_render_empty() -> None:
    model = {"ctx": {"payload": {"n": None, "s": "str", "hits": {"total": 0}}}}
    template = "<{{nope}}|{{ctx.nope.deeper}}|{{ctx.payload.n}}|{{ctx.payload.n.x}}|{{ctx.payload.s.length}}|{{ctx.payload.hits.total.value}}>"
    assert render(template, model) == "<|||||>"


def test_list_index_out_of_range_is_an_error_like_elasticsearch() -> None:
    with pytest.raises(TemplateRenderError, match=r"ctx\.payload\.hits\.hits\.5\._id.*index 5"):
        render("{{ctx.payload.hits.hits.5._id}}", search_ctx("1"))
    with pytest.raises(TemplateRenderError):
        render("{{l.-1}}", {"l": ["a"]})
    assert render("{{l.x}}{{l.99999999999}}", {"l": ["a"]}) == ""  # not an int: just missing


def test_outer_names_reachable_inside_sections() -> None:
    model = search_ctx("4", "1")
    template = "{{#ctx.payload.hits.hits}}{{ctx.watch_id}}/{{_index}}/{{_id}}/{{ctx.payload.hits.total}};{{/ctx.payload.hits.hits}}"
    assert render(template, model) == "errors/logs/4/2;errors/logs/1/2;"


def test_inner_scope_shadows_outer() -> None:
    model = {"name": "outer", "items": [{"name": "inner"}, {"other": 1}]}
    assert render("{{#items}}{{name}},{{/items}}", model) == "inner,outer,"


def test_intermediate_miss_tries_outer_scope_but_last_segment_miss_does_not() -> None:
    model = {"x": {"y": {"z": "outer"}}, "inner": {"x": {}}}
    assert render("{{#inner}}{{x.y.z}}{{/inner}}", model) == "outer"  # x.y missing in inner: next scope
    assert render("{{#inner}}[{{x.y}}]{{/inner}}", model) == "[]"  # only the last segment missing: stop
    model = {"x": {"y": "outer"}, "inner": {"x": None}}
    assert render("{{#inner}}[{{x.y}}]{{/inner}}", model) == "[]"  # a null on the way: stop


def test_dot_is_the_current_element() -> None:
    assert render("{{#l}}<{{.}}>{{/l}}", {"l": ["a", 1, 2.5, True]}) == "<a><1><2.5><true>"
    assert render("{{.}}", {"k": 1}) == "{k=1}"


def test_key_containing_dots_is_reachable_only_directly_in_a_scope() -> None:
    # mustache.java tries the whole name as one key before walking the dots, so it even wins.
    model = {"host.name": "dotted", "host": {"name": "nested"}, "doc": {"agent.name": "x"}}
    assert render("{{host.name}}", model) == "dotted"
    assert render("{{host.name}}", {"host": {"name": "nested"}}) == "nested"
    assert render("[{{doc.agent.name}}]", model) == "[]"  # not directly in a scope: unreachable
    assert render("{{#doc}}{{agent.name}}{{/doc}}", model) == "x"


def test_blanks_inside_tags_are_ignored() -> None:
    assert render("{{ name }}|{{# t }}T{{/ t }}|{{{ name }}}|{{& name }}", {"name": "n", "t": True}) == "n|T|n|n"


# --------------------------------------------------------------------------------------------------
# Java-style stringification


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (-42, "-42"),
        (3.0, "3.0"),
        (12.5, "12.5"),
        (0.1, "0.1"),
        (-0.0, "-0.0"),
        (1234567.0, "1234567.0"),
        (1e7, "1.0E7"),
        (1e10, "1.0E10"),
        (123456789.5, "1.234567895E8"),
        (0.001, "0.001"),
        (1e-4, "1.0E-4"),
        (1.2345e-5, "1.2345E-5"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
        ("héllo ✓ 𝄞", "héllo ✓ 𝄞"),
    ],
)
def test_to_text_scalars(value: object, expected: str) -> None:
    assert to_text(value) == expected


def test_to_text_maps_and_lists_java_style() -> None:
    value = {"k": 1, "l": ["x", "y"], "n": None, "d": 2.5, "m": {"z": True}, "e": {}, "el": []}
    assert to_text(value) == "{k=1, l=[x, y], n=null, d=2.5, m={z=true}, e={}, el=[]}"
    assert to_text(["a", None, ("t", 1)]) == "[a, null, [t, 1]]"


def test_map_tag_prints_java_map() -> None:
    model = {"ctx": {"payload": {"hits": {"total": 1, "max_score": 0.0, "hits": []}}}}
    assert render("{{ctx.payload.hits}}", model) == "{total=1, max_score=0.0, hits=[]}"


def test_list_tag_prints_elasticsearch_collection_map() -> None:
    # CustomReflectionObjectHandler turns a list reached by a tag into a map {index=item}.
    model = {"tags": ["a", "b"], "empty": [], "grid": [[1, 2], [3]]}
    assert render("{{tags}}|{{empty}}|{{grid}}|{{grid.1}}", model) == "{0=a, 1=b}|{}|{0=[1, 2], 1=[3]}|{0=3}"
    assert render("{{#grid}}<{{.}}>{{/grid}}", model) == "<{0=1, 1=2}><{0=3}>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2024, 5, 1, 10, 15, tzinfo=timezone.utc), "2024-05-01T10:15Z"),
        (datetime(2024, 5, 1, 10, 15, 30, tzinfo=timezone.utc), "2024-05-01T10:15:30Z"),
        (datetime(2024, 5, 1, 10, 15, 0, 500000, tzinfo=timezone.utc), "2024-05-01T10:15:00.500Z"),
        (datetime(2024, 5, 1, 10, 15, 30, 123000, tzinfo=timezone.utc), "2024-05-01T10:15:30.123Z"),
        (datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=timezone.utc), "2024-05-01T10:15:30.123456Z"),
        (datetime(2024, 5, 1, 10, 15, 30, 123400, tzinfo=timezone.utc), "2024-05-01T10:15:30.123400Z"),
        (datetime(2024, 5, 1, 12, 15, tzinfo=timezone(timedelta(hours=2))), "2024-05-01T10:15Z"),
        (datetime(2024, 5, 1, 10, 15, 30), "2024-05-01T10:15:30Z"),  # naive is taken as UTC
        (date(2024, 5, 1), "2024-05-01"),
    ],
)
def test_to_text_datetimes_like_zoned_date_time(value: object, expected: str) -> None:
    assert to_text(value) == expected


def test_datetimes_in_ctx() -> None:
    template = "{{ctx.execution_time}} {{ctx.trigger.triggered_time}} {{ctx.trigger.scheduled_time}}"
    assert render(template, search_ctx()) == "2024-05-01T10:15:30.123456Z 2024-05-01T10:15:30.120Z 2024-05-01T10:15Z"


# --------------------------------------------------------------------------------------------------
# Sections


def test_list_section_repeats_per_element() -> None:
    model = {"people": [{"name": "ann", "age": 30}, {"name": "bob", "age": 4.5}]}
    assert render("{{#people}}{{name}}={{age}} {{/people}}", model) == "ann=30 bob=4.5 "


def test_map_section_renders_once_with_map_as_scope() -> None:
    model = {"agg": {"doc_count": 7, "key": "k"}, "empty": {}}
    assert render("{{#agg}}{{key}}:{{doc_count}}{{/agg}}|{{#empty}}once{{/empty}}", model) == "k:7|once"


FALSINESS = [
    (0, True),
    (0.0, True),
    ({}, True),
    (True, True),
    ("x", True),
    ([0], True),
    ("", False),
    ([], False),
    (None, False),
    (False, False),
]


@pytest.mark.parametrize(("value", "truthy"), FALSINESS)
def test_section_falsiness(value: object, truthy: bool) -> None:
    assert render("{{#v}}yes{{/v}}", {"v": value}) == ("yes" if truthy else "")


@pytest.mark.parametrize(("value", "truthy"), FALSINESS)
def test_inverted_section_falsiness(value: object, truthy: bool) -> None:
    assert render("{{^v}}no{{/v}}", {"v": value}) == ("" if truthy else "no")


def test_missing_value_is_falsey() -> None:
    assert render("{{#missing}}yes{{/missing}}{{^missing}}no{{/missing}}", {}) == "no"


def test_truthy_scalar_is_pushed_as_scope_but_inverted_pushes_nothing() -> None:
    assert render("{{#n}}[{{.}}]{{/n}}{{#s}}[{{.}}]{{/s}}", {"n": 0, "s": "str"}) == "[0][str]"
    assert render("{{^f}}<{{.}}>{{/f}}", {"f": False}) == "<{f=false}>"


def test_nested_sections_over_lists_of_lists() -> None:
    assert render("{{#grid}}{{#.}}({{.}}){{/.}};{{/grid}}", {"grid": [[1, 2], [3]]}) == "(1)(2);(3);"


def test_null_list_element_pushes_no_scope() -> None:
    assert render("{{#l}}[{{k}}]{{/l}}", {"k": "outer", "l": [None, {"k": "inner"}]}) == "[outer][inner]"


def test_comments_render_nothing() -> None:
    assert render("a{{! a comment }}b{{!\nmulti-line\n}}c", {}) == "abc"


def test_set_delimiter() -> None:
    model = {"name": "abc"}
    assert render("{{=<% %>=}}<%name%> {{name}} <%={{ }}=%>{{name}}", model) == "abc {{name}} abc"
    assert render("{{=<% %>=}}<%#l%><%.%>,<%/l%>", {"l": [1, 2]}) == "1,2,"


# --------------------------------------------------------------------------------------------------
# Whitespace: mustache.java's rules


def test_standalone_section_lines_are_removed() -> None:
    template = "Errors:\n{{#ctx.payload.hits.hits}}\n- {{_id}}\n{{/ctx.payload.hits.hits}}\nEnd"
    assert render(template, search_ctx("4", "1")) == "Errors:\n- 4\n- 1\nEnd"


def test_indented_standalone_section_tags_lose_their_indentation() -> None:
    template = "Errors:\n  {{#l}}\n  - {{.}}\n  {{/l}}\nEnd"
    assert render(template, {"l": ["a", "b"]}) == "Errors:\n  - a\n  - b\nEnd"


def test_section_opened_mid_line_still_drops_the_newline_after_it() -> None:
    # mustache.java (not the Mustache spec): the newline right after {{#l}} goes even mid-line.
    assert render("Items: {{#l}}\n- {{.}}\n{{/l}}\nEnd", {"l": ["a", "b"]}) == "Items: - a\n- b\n\nEnd"


def test_comment_and_delimiter_lines_are_not_standalone() -> None:
    assert render("a\n{{! note }}\nb", {}) == "a\n\nb"
    assert render("a\n{{=<% %>=}}\n<%x%>", {"x": "X"}) == "a\n\nX"


def test_carriage_returns() -> None:
    assert render("{{#t}}\r\nx\r\n{{/t}}\r\ny", {"t": True}) == "x\r\ny"
    assert render("a\rb{{x}}", {"x": "\r"}) == "ab\r"  # a lone CR in template text is dropped


# --------------------------------------------------------------------------------------------------
# toJson


def test_to_json_of_whole_ctx_is_a_valid_json_object() -> None:
    out = render("{{#toJson}}ctx{{/toJson}}", search_ctx("4"))
    assert json.loads(out) == {
        "watch_id": "errors",
        "execution_time": "2024-05-01T10:15:30.123Z",
        "trigger": {"triggered_time": "2024-05-01T10:15:30.120Z", "scheduled_time": "2024-05-01T10:15:00.000Z"},
        "metadata": None,
        "payload": {"hits": {"total": 1, "hits": [{"_index": "logs", "_id": "4", "_source": {"message": "error 4"}}]}},
        "vars": {},
    }


def test_to_json_keeps_tricky_strings_intact_in_a_json_body() -> None:
    tricky = 'say "hi"\\path\nnew\ttab\x01\x1f ünï 😀 </script> \u2028'
    model = search_ctx("1", msg=tricky, nested={"list": [tricky, 1.5, None, True]})
    body = '{"alert": {{#toJson}}ctx.payload{{/toJson}}, "tags": {{#toJson}}ctx.payload.nested.list{{/toJson}}}'
    parsed = json.loads(render(body, model))
    assert parsed["alert"]["msg"] == tricky
    assert parsed["tags"] == [tricky, 1.5, None, True]
    assert render("{{#toJson}}m{{/toJson}}", {"m": {"q": 'a"b\\c\n\x01'}}) == '{"q":"a\\"b\\\\c\\n\\u0001"}'


def test_to_json_output_is_compact_and_ordered() -> None:
    model = {"m": {"b": 1, "a": [1, 2.0, 1e10], "u": "é"}}
    assert render("{{#toJson}}m{{/toJson}}", model) == '{"b":1,"a":[1,2.0,1.0E10],"u":"é"}'


def test_to_json_of_scalars_is_their_text_and_missing_is_empty() -> None:
    model = {"s": "abc", "d": 3.0, "b": False, "t": EXECUTION_TIME, "n": None}
    template = "{{#toJson}}s{{/toJson}}|{{#toJson}}d{{/toJson}}|{{#toJson}}b{{/toJson}}|{{#toJson}}t{{/toJson}}"
    assert render(template, model) == "abc|3.0|false|2024-05-01T10:15:30.123456Z"
    assert render("<{{#toJson}}n{{/toJson}}{{#toJson}}nope{{/toJson}}>", model) == "<>"


def test_to_json_of_dot_is_the_current_scope() -> None:
    model = {"bulks": [{"index": "i1", "id": 1}, {"index": "i2", "id": 2}]}
    assert render("{{#bulks}}{{#toJson}}.{{/toJson}}{{/bulks}}", model) == '{"index":"i1","id":1}{"index":"i2","id":2}'
    assert render("{{#toJson}}.{{/toJson}}", {"x": [1]}) == '{"x":[1]}'


def test_to_json_output_is_never_escaped() -> None:
    model = {"m": {"k": 'a"b'}}
    assert render('{"q": {{#toJson}}m{{/toJson}}}', model, escape="json") == '{"q": {"k":"a\\"b"}}'


def test_to_json_path_is_taken_literally() -> None:
    # Elasticsearch looks the body text up as is: padding makes it a different (missing) name.
    assert render("[{{#toJson}} m {{/toJson}}]", {"m": {"k": 1}}) == "[]"


def test_lambda_names_are_case_insensitive_and_win_over_model_keys() -> None:
    model = {"m": {"k": 1}, "toJson": "value", "url": False, "join": ["q"]}
    assert render("{{#TOJSON}}m{{/TOJSON}}", model) == '{"k":1}'
    assert render("{{#url}}a b{{/url}}|{{toJson}}|{{^toJson}}no{{/toJson}}", model) == "a+b|value|"


@pytest.mark.parametrize("template", ["{{#toJson}}{{/toJson}}", "{{#toJson}}a{{b}}{{/toJson}}", "{{#join}}{{/join}}"])
def test_function_body_must_be_one_identifier(template: str) -> None:
    with pytest.raises(TemplateSyntaxError, match=r"must contain one and only one identifier"):
        compile_template(template)


# --------------------------------------------------------------------------------------------------
# join


def test_join_with_default_comma() -> None:
    model = {"ctx": {"payload": {"tags": ["a", "b", "c"]}}}
    assert render("{{#join}}ctx.payload.tags{{/join}}", model) == "a,b,c"


def test_join_with_custom_delimiter() -> None:
    model = {"ctx": {"payload": {"tags": ["a", "b", "c"]}}, "n": [1, 2, 3, 4]}
    assert render("{{#join delimiter=' | '}}ctx.payload.tags{{/join delimiter=' | '}}", model) == "a | b | c"
    assert render("{{#join delimiter=''}}n{{/join delimiter=''}}", model) == "1234"


def test_join_close_tag_must_repeat_the_options() -> None:
    with pytest.raises(TemplateSyntaxError, match=r"mismatched closing tag \{\{/join\}\}"):
        compile_template("{{#join delimiter=' | '}}tags{{/join}}")


def test_join_items_are_java_stringified() -> None:
    model = {"l": [1, 2.0, True, "s", [1, 2], {"k": 1}, EXECUTION_TIME]}
    assert render("{{#join}}l{{/join}}", model) == "1,2.0,true,s,[1, 2],{k=1},2024-05-01T10:15:30.123456Z"


def test_join_of_a_non_list_returns_the_body_text_like_elasticsearch() -> None:
    model = {"ctx": {"payload": {"name": "abc", "m": {"k": 1}}}}
    assert render("{{#join}}ctx.payload.name{{/join}}", model) == "ctx.payload.name"
    assert render("{{#join}}ctx.payload.m{{/join}}|{{#join}}nope{{/join}}", model) == "ctx.payload.m|nope"


def test_join_of_a_list_holding_null_fails() -> None:
    with pytest.raises(TemplateRenderError, match="null"):
        render("{{#join}}l{{/join}}", {"l": ["a", None]})


# --------------------------------------------------------------------------------------------------
# url


def test_url_encodes_like_java_url_encoder() -> None:
    assert render("{{#url}}a b&c=d/é*~+{{/url}}", {}) == "a+b%26c%3Dd%2F%C3%A9*%7E%2B"


def test_url_renders_its_body_as_a_template_first() -> None:
    model = {"ctx": {"payload": {"q": "status:error AND host:\"web 1\""}}}
    assert render("/search?q={{#url}}{{ctx.payload.q}}{{/url}}", model) == "/search?q=status%3Aerror+AND+host%3A%22web+1%22"
    assert render("{{#url}}{{q}}{{/url}}", {"q": 'a"b'}, escape="json") == "a%5C%22b"  # escaped, then encoded


# --------------------------------------------------------------------------------------------------
# Escaping


def test_no_html_escaping_anywhere() -> None:
    model = {"v": "<b>Tom & \"Jerry\" 'x'</b>"}
    assert render("{{v}}|{{{v}}}", model) == "<b>Tom & \"Jerry\" 'x'</b>|<b>Tom & \"Jerry\" 'x'</b>"
    assert render("{{v}}", model, escape="json") == "<b>Tom & \\\"Jerry\\\" 'x'</b>"


def test_json_mode_escapes_variable_output() -> None:
    model = {"msg": 'quote " backslash \\ nl \n tab \t cr \r bell \x07 uni ü 😀 /'}
    out = render('{"text": "{{msg}}"}', model, escape="json")
    assert out == '{"text": "quote \\" backslash \\\\ nl \\n tab \\t cr \\r bell \\u0007 uni ü 😀 /"}'
    assert json.loads(out)["text"] == model["msg"]


def test_json_mode_leaves_triple_ampersand_and_text_alone() -> None:
    model = {"q": 'a"b'}
    assert render('"{{q}}" {{{q}}} {{&q}} \\"text\\"', model, escape="json") == '"a\\"b" a"b a"b \\"text\\"'


def test_text_mode_breaks_naive_json_bodies_as_watcher_does() -> None:
    out = render('{"msg":"{{ctx.payload.msg}}"}', search_ctx(msg='he said "hi"'))
    assert out == '{"msg":"he said "hi""}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)


def test_unknown_escape_is_rejected() -> None:
    with pytest.raises(ValueError, match="escape"):
        compile_template("{{x}}").render({"x": 1}, escape="html")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# render() and compile_template()


def test_render_returns_text_without_braces_verbatim() -> None:
    assert render("no tags {here} }} {", {}) == "no tags {here} }} {"


def test_render_json_prefix_switches_to_json_escaping() -> None:
    assert render('__json__::{"m":"{{m}}"}', {"m": 'a"b'}) == '{"m":"a\\"b"}'
    assert render("__json__::plain", {}) == "plain"


def test_render_other_prefix_is_removed_and_text_mode_is_used() -> None:
    assert render('__yaml__::m: "{{m}}"', {"m": 'a"b'}, escape="json") == 'm: "a"b"'


def test_compile_template_is_cached_and_reusable() -> None:
    template = compile_template("Hello {{name}}")
    assert compile_template("Hello {{name}}") is template
    assert isinstance(template, Template)
    assert [template.render({"name": n}) for n in ("a", "b")] == ["Hello a", "Hello b"]


# --------------------------------------------------------------------------------------------------
# Syntax errors


@pytest.mark.parametrize(
    ("template", "line", "column", "message"),
    [
        ("x\n{{#hits}}\n{{_id}}", 2, 1, "unclosed section {{#hits}}: missing {{/hits}}"),
        ("abc {{#a}} {{/b}}", 1, 12, "mismatched closing tag {{/b}}: expected {{/a}}"),
        ("x {{/a}}", 1, 3, "unexpected closing tag {{/a}}: no section is open"),
        ("line one\nhello {{name", 2, 7, "unclosed tag: missing '}}'"),
        ("a\nb {{}}", 2, 3, "empty tag {{}}"),
        ("{{{x}} y", 1, 1, "unclosed triple mustache: missing '}' after {{{x}}"),
        ("a {{> part}}", 1, 3, "partials are not supported: {{> part}}"),
        ("{{=<% %>=}}\n  <%#a%>", 2, 3, "unclosed section <%#a%>: missing <%/a%>"),
        ("{{=<% x %>=}}", 1, 1, "invalid set-delimiter tag '=<% x %>='"),
    ],
)
def test_syntax_errors_carry_line_and_column(template: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TemplateSyntaxError) as caught:
        compile_template(template)
    error = caught.value
    assert (error.message, error.line, error.column) == (message, line, column)
    assert str(error) == f"line {line}, column {column}: {message}"
    assert isinstance(error, ValueError)


def test_render_raises_syntax_errors_too() -> None:
    with pytest.raises(TemplateSyntaxError):
        render("{{#a}}", {})


# --------------------------------------------------------------------------------------------------
# Output size limit


def test_output_up_to_the_limit_renders() -> None:
    model = {"l": list(range(1024)), "s": "x" * 1024}
    assert len(render("{{#l}}{{s}}{{/l}}", model)) == MAX_OUTPUT_SIZE == 1_048_576


def test_output_over_the_limit_fails() -> None:
    model = {"l": list(range(1024)), "s": "x" * 1024}
    with pytest.raises(TemplateRenderError, match="size limit"):
        render("{{#l}}{{s}}{{/l}}!", model)


def test_output_limit_counts_utf16_units_like_java() -> None:
    model = {"l": list(range(512)), "s": "😀" * 1024}  # each emoji is 2 UTF-16 units, 4 UTF-8 bytes
    assert len(render("{{#l}}{{s}}{{/l}}", model)) == 512 * 1024
    with pytest.raises(TemplateRenderError):
        render("{{#l}}{{s}}{{/l}}x", model)


# --------------------------------------------------------------------------------------------------
# to_json


def test_to_json_datetimes_have_exactly_milliseconds() -> None:
    value = {
        "us": datetime(2024, 5, 1, 10, 15, 30, 123456, tzinfo=timezone.utc),
        "whole": datetime(2024, 5, 1, 10, 15, tzinfo=timezone.utc),
        "paris": datetime(2024, 5, 1, 12, 15, 30, 5000, tzinfo=timezone(timedelta(hours=2))),
        "day": date(2024, 5, 1),
    }
    assert to_json(value) == (
        '{"us":"2024-05-01T10:15:30.123Z","whole":"2024-05-01T10:15:00.000Z",'
        '"paris":"2024-05-01T10:15:30.005Z","day":"2024-05-01"}'
    )


def test_to_json_is_always_valid_json() -> None:
    value = {
        "control": "".join(chr(i) for i in range(32)),
        "quotes": '"\\\'',
        "lone_surrogate": "a\ud800b",
        "floats": [0.5, -0.0, 1e300, float("nan"), float("inf")],
        1: ("tuple", {"nested": None}),
        "big": 2**70,
    }
    out = to_json(value)
    parsed = json.loads(out)
    assert parsed["control"] == value["control"]
    assert parsed["lone_surrogate"] == "a\ud800b"
    assert parsed["floats"] == [0.5, -0.0, 1e300, "NaN", "Infinity"]
    assert parsed["1"] == ["tuple", {"nested": None}]
    assert parsed["big"] == 2**70
    assert '"\\u0000\\u0001' in out and "\\b\\t\\n\\u000B\\f\\r" in out
    out.encode("utf-8")  # encodable: no raw lone surrogate


def test_self_referencing_values_fail_cleanly() -> None:
    loop: dict = {"a": 1}
    loop["self"] = loop
    with pytest.raises(TemplateRenderError, match="self-referencing"):
        to_json(loop)
    with pytest.raises(TemplateRenderError, match="self-referencing"):
        render("{{m}}", {"m": loop})
