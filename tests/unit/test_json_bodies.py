"""Request bodies declared JSON (docs/correctness.md#json-bodies), the rendering: values printed inside
the body's JSON strings are escaped, in Mustache and Jinja2 alike; toJson/tojson/{{{x}}}/| safe/__json__::
are printed as before; which Content-Types declare JSON, and what the check of a rendered body says.
The webhook action itself: test_webhook_json_body.py."""

from __future__ import annotations

import json

import pytest

from watcher.model.requests import HttpRequest, InvalidJsonBody, json_body_error, json_content_type
from watcher.templates import mustache
from watcher.templates.jinja import render_jinja
from watcher.templates.jsontext import StringTracker, json_escape
from watcher.templates.text import render_text

# A Windows command line and event message as OTRF's Security-Datasets record them (quotes,
# backslashes, CR LF and tabs), and a line with non-ASCII text and a control character.
COMMAND = '"C:\\Windows\\System32\\rundll32.exe" C:\\windows\\System32\\comsvcs.dll MiniDump 756 full'
MESSAGE = 'A process has exited.\r\n\r\nSubject:\r\n\tAccount Name:\t\twardog'
UNICODE = 'ünïcødé ✓ – “quoted” \u2028 bell\x07'
DATA = {"cmd": COMMAND, "msg": MESSAGE, "uni": UNICODE, "n": 3, "obj": {"k": 'v"1'}, "raw": '{"x":[1,"a\\"b"]}',
        "items": ['a"b', "c\\d"]}


def esc(text: str) -> str:
    """Python's own JSON escaping, as a second opinion on ours (same output for these characters)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


# ---------------------------------------------------------------------------------------- escaping


def test_json_escape_matches_jackson_for_quotes_backslashes_and_control_characters():
    assert json_escape('say "hi"\\ \n\r\t\b\f\x00\x1f ✓ /') == 'say \\"hi\\"\\\\ \\n\\r\\t\\b\\f\\u0000\\u001F ✓ /'
    assert json_escape(COMMAND) == esc(COMMAND)
    assert json_escape(MESSAGE) == esc(MESSAGE)


@pytest.mark.parametrize("chunks, inside", [
    (['{"a":"'], True),
    (['{"a":"b"'], False),
    (['{"a":"b\\"'], True),            # an escaped quote does not close the string
    (['{"a":"b\\', '"'], True),        # … also when the backslash ends one chunk
    (['{"a":"b\\\\"'], False),         # an escaped backslash does not escape the quote
    (['{"a":"b\\\\', '"'], False),
    (['{"a":', '"', 'x', '"', ',"b":"'], True),
    (['', '{"a":1,', ''], False),
])
def test_string_tracker_follows_quotes_across_chunks(chunks, inside):
    tracker = StringTracker()
    for chunk in chunks:
        tracker.feed(chunk)
    assert tracker.in_string is inside


# ---------------------------------------------------------------------------------------- Mustache


def test_mustache_escapes_values_inside_json_strings_only():
    body = mustache.render('{"cmd":"{{cmd}}","msg":"{{msg}} / {{uni}}","n":{{n}},"raw":{{{raw}}},"also":{{&raw}}}',
                           DATA, escape="json_strings")
    assert body == f'{{"cmd":"{esc(COMMAND)}","msg":"{esc(MESSAGE)} / {esc(UNICODE)}","n":3,' \
                   '"raw":{"x":[1,"a\\"b"]},"also":{"x":[1,"a\\"b"]}}'
    assert json.loads(body)["cmd"] == COMMAND and json.loads(body)["msg"] == f"{MESSAGE} / {UNICODE}"


def test_mustache_value_outside_a_string_is_printed_as_it_is():
    # Watcher watches that splice JSON held in a field keep working.
    assert mustache.render("{{raw}}", DATA, escape="json_strings") == DATA["raw"]
    assert mustache.render('{"a": {{raw}}, "b": "{{cmd}}"}', DATA, escape="json_strings") == \
        f'{{"a": {DATA["raw"]}, "b": "{esc(COMMAND)}"}}'


def test_mustache_tojson_is_never_escaped_again():
    body = mustache.render('{"o":{{#toJson}}obj{{/toJson}},"s":"{{#toJson}}n{{/toJson}}"}', DATA, escape="json_strings")
    assert body == '{"o":{"k":"v\\"1"},"s":"3"}'
    assert mustache.render("{{#toJson}}ctx{{/toJson}}", {"ctx": {"m": MESSAGE}}, escape="json_strings") == \
        json.dumps({"m": MESSAGE}, ensure_ascii=False, separators=(",", ":"))


def test_mustache_sections_join_and_url_in_a_json_body():
    body = mustache.render('{"l":[{{#items}}"{{.}}",{{/items}}"end"],"j":"{{#join}}items{{/join}}",'
                           '"u":"https://x/?q={{#url}}{{cmd}}{{/url}}"}', DATA, escape="json_strings")
    assert json.loads(body) == {"l": ['a"b', "c\\d", "end"], "j": 'a"b,c\\d',
                                "u": "https://x/?q=%22C%3A%5CWindows%5CSystem32%5Crundll32.exe%22+C%3A%5Cwindows"
                                     "%5CSystem32%5Ccomsvcs.dll+MiniDump+756+full"}


def test_mustache_escaped_quote_in_the_template_keeps_the_string_open():
    assert mustache.render('{"a":"x \\" {{cmd}}"}', DATA, escape="json_strings") == f'{{"a":"x \\" {esc(COMMAND)}"}}'


def test_json_prefix_and_plain_text_keep_watchers_behaviour():
    # __json__:: escapes every {{x}}, in a string or not, whatever mode the caller asks for
    assert mustache.render("__json__::{{raw}}", DATA, escape="json_strings") == json_escape(DATA["raw"])
    assert mustache.render('__json__::{"c":"{{cmd}}"}', DATA) == f'{{"c":"{esc(COMMAND)}"}}'
    # no JSON body: printed raw, exactly as Watcher prints it
    assert mustache.render('{"c":"{{cmd}}"}', DATA) == f'{{"c":"{COMMAND}"}}'
    assert render_text('{"c":"{{cmd}}"}', DATA) == f'{{"c":"{COMMAND}"}}'
    assert render_text('{"c":"{{cmd}}"}', DATA, escape="json_strings") == f'{{"c":"{esc(COMMAND)}"}}'


# ---------------------------------------------------------------------------------------- Jinja2


def test_jinja_escapes_values_inside_json_strings_only():
    source = '{"cmd": "{{ cmd }}", "msg": "{{ msg }} / {{ uni | upper }}", "n": {{ n }}, "raw": {{ raw }}}'
    body = render_jinja(source, DATA, json_strings=True)
    assert body == f'{{"cmd": "{esc(COMMAND)}", "msg": "{esc(MESSAGE)} / {esc(UNICODE.upper())}", "n": 3, ' \
                   f'"raw": {DATA["raw"]}}}'
    assert render_jinja(source, DATA) == f'{{"cmd": "{COMMAND}", "msg": "{MESSAGE} / {UNICODE.upper()}", "n": 3, ' \
                                         f'"raw": {DATA["raw"]}}}'  # not a JSON body: unchanged


def test_jinja_tojson_and_safe_are_never_escaped_again():
    body = render_jinja('{"o": {{ obj | tojson }}, "s": "{{ raw | safe }}", "t": "{{ n | tojson }}"}', DATA,
                        json_strings=True)
    assert body == '{"o": {"k": "v\\"1"}, "s": "{"x":[1,"a\\"b"]}", "t": "3"}'


def test_jinja_loops_conditions_and_set_blocks():
    source = ('{"hits": [{% for i in items %}"{{ i }}"{% if not loop.last %}, {% endif %}{% endfor %}], '
              '{% set line %}{{ cmd }}{% endset %}"line": "{{ line }}", '
              '"kind": {% if n > 1 %}"many {{ msg }}"{% else %}"one"{% endif %}}')
    body = render_jinja(source, DATA, json_strings=True)
    assert json.loads(body) == {"hits": ['a"b', "c\\d"], "line": COMMAND, "kind": f"many {MESSAGE}"}


def test_jinja_errors_still_name_the_variable_and_line_in_a_json_body():
    with pytest.raises(Exception) as caught:
        render_jinja('{\n"a": "{{ nope }}"}', {}, json_strings=True)
    assert caught.value.variable == "nope" and caught.value.line == 2


def test_render_text_picks_the_language():
    template = {"source": '{"c": "{{ cmd }}", "w": "{{ ctx.watch_id }}"}', "lang": "jinja"}
    assert render_text(template, {"cmd": COMMAND, "ctx": {"watch_id": 'w"1'}}, escape="json_strings") == \
        f'{{"c": "{esc(COMMAND)}", "w": "w\\"1"}}'


# ---------------------------------------------------------------------------------------- what counts as JSON


@pytest.mark.parametrize("headers, expected", [
    ({"Content-Type": "application/json"}, "application/json"),
    ({"content-type": "Application/JSON; charset=utf-8"}, "Application/JSON; charset=utf-8"),
    ({"CONTENT-TYPE": "application/vnd.api+json"}, "application/vnd.api+json"),
    ({"Content-Type": "application/problem+json"}, "application/problem+json"),
    ({"Content-Type": "application/x-ndjson"}, None),
    ({"Content-Type": "text/plain"}, None),
    ({"Accept": "application/json"}, None),
    ({}, None),
])
def test_json_content_type(headers, expected):
    assert json_content_type(headers) == expected


def request(body, content_type="application/json"):
    return HttpRequest(method="POST", url="http://127.0.0.1:9/x", headers={"Content-Type": content_type}, body=body)


def test_json_body_error_says_where_the_body_breaks():
    assert json_body_error(request('{"a": "b"}')) is None
    assert json_body_error(request("3")) is None  # any JSON value at the top (RFC 8259)
    assert json_body_error(request(None)) is None  # no body at all: nothing to check
    assert json_body_error(request("not json", "text/plain")) is None
    error = json_body_error(request('{"a": "b\nc"}'))
    assert isinstance(error, InvalidJsonBody)
    assert (error.content_type, error.body_line, error.body_column) == ("application/json", 1, 9)
    assert str(error) == ("the body is not valid JSON (Invalid control character at body line 1, column 9), "
                          "but its Content-Type is application/json; not sent")
    assert str(json_body_error(request("  "))) == "the body is empty, but its Content-Type is application/json; not sent"
    assert "NaN is not a JSON value" in str(json_body_error(request('{"a": NaN}')))
    slack_like = (request('{"ok": 1}'), request('{"a": 1,}'))
    assert json_body_error(slack_like).body_column == 9
