"""Secrets: ${ENV} / ${file:…} references, the Secret type, masking."""

from __future__ import annotations

import pydantic
import pytest

from watcher.model.problems import Reader
from watcher.model.secrets import MASK, Secret, mask, mask_data, resolve_secrets, secret_values
from watcher.model.source import load_text


def resolve(text: str, environ=None, base_dir=None):
    document = load_text(text, "c.yaml")
    reader = Reader(document)
    value, found = resolve_secrets(document.data, reader, (), environ=environ or {}, base_dir=base_dir)
    return value, found, [str(p) for p in reader.problems]


def test_secret_hides_its_value():
    secret = Secret("hunter2")
    assert str(secret) == "***"
    assert repr(secret) == "***"
    assert f"{secret}" == "***"
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2") and secret != Secret("other")


def test_secret_as_pydantic_field():
    class Model(pydantic.BaseModel):
        password: Secret

    model = Model(password="hunter2")
    assert isinstance(model.password, Secret)
    assert model.password.reveal() == "hunter2"
    assert "hunter2" not in repr(model)
    assert model.model_dump() == {"password": "***"}
    assert model.model_dump_json() == '{"password":"***"}'
    with pytest.raises(pydantic.ValidationError) as error:
        Model(password=12)
    assert error.value.errors()[0]["type"] == "string_type"


def test_env_reference_anywhere_in_a_string():
    value, found, problems = resolve("a:\n  url: https://h/${TOKEN}/x\n  n: 3\n", {"TOKEN": "s3cr3t"})
    assert problems == []
    assert value == {"a": {"url": "https://h/s3cr3t/x", "n": 3}}
    assert found == ["s3cr3t"]


def test_several_references_and_escape():
    value, found, _ = resolve("k: '${A}:${B} $${C}'\n", {"A": "one", "B": "two"})
    assert value == {"k": "one:two ${C}"}
    assert found == ["one", "two"]


def test_undefined_env_is_a_problem_at_the_value():
    _, found, problems = resolve("connectors:\n  ops:\n    api_key: ${OPSGENIE_API_KEY}\n")
    assert found == []
    assert problems == ["c.yaml:3:14: connectors.ops.api_key: undefined environment variable OPSGENIE_API_KEY"]


def test_file_reference_strips_trailing_newline(tmp_path):
    (tmp_path / "key").write_text("file-secret\n", encoding="utf-8")
    value, found, problems = resolve(f"k: ${{file:{tmp_path / 'key'}}}\n")
    assert problems == []
    assert value == {"k": "file-secret"}
    assert found == ["file-secret"]


def test_relative_file_reference_uses_base_dir(tmp_path):
    (tmp_path / "key").write_text("rel\r\n", encoding="utf-8")
    value, _, problems = resolve("k: ${file:key}\n", base_dir=tmp_path)
    assert problems == [] and value == {"k": "rel"}


def test_unreadable_file_is_a_problem(tmp_path):
    _, _, problems = resolve(f"list:\n  - ${{file:{tmp_path / 'missing'}}}\n")
    assert problems == [f"c.yaml:2:5: list[0]: cannot read secret file {tmp_path / 'missing'}: No such file or directory"]


def test_malformed_reference():
    _, _, problems = resolve("k: ${not valid}\n")
    assert problems == ["c.yaml:1:4: k: expected ${ENV_VAR}, ${ENV_VAR:-default} or ${file:/path}, found ${not valid}"]


def test_default_applies_when_the_variable_is_unset_or_empty():
    value, found, problems = resolve("a: ${KEY:-local-key}\nb: ${KEY2:-x}\nc: ${EMPTY:-d}\n",
                                     {"KEY2": "from-env", "EMPTY": ""})
    assert problems == []
    assert value == {"a": "local-key", "b": "from-env", "c": "d"}
    assert found == ["local-key", "from-env", "d"]


def test_mask_replaces_plain_url_encoded_and_json_escaped_forms():
    secret = 'p@ss w"rd/1'
    text = f'plain={secret} url=p%40ss%20w%22rd%2F1 form=p%40ss+w%22rd%2F1 json="p@ss w\\"rd/1"'
    assert mask(text, [secret]) == 'plain=*** url=*** form=*** json="***"'


def test_mask_longest_first_and_ignores_empty():
    assert mask("abcdefgh abcd", ["abcd", "abcdefgh", ""]) == "*** ***"
    assert mask("", ["x"]) == ""


def test_mask_data_walks_everything():
    data = {"url": "http://h/?k=KEY9", "list": ["KEY9", 1, None], "KEY9": True, "s": Secret("x")}
    assert mask_data(data, ["KEY9"]) == {"url": "http://h/?k=***", "list": ["***", 1, None], "***": True, "s": MASK}


def test_secret_values_finds_nested_secrets():
    class Inner(pydantic.BaseModel):
        token: Secret

    class Outer(pydantic.BaseModel):
        inner: Inner
        items: list[Secret]
        name: str

    model = Outer(inner={"token": "t1"}, items=["t2"], name="visible")
    assert secret_values(model) == ["t1", "t2"]


def test_mask_covers_the_forms_a_url_gives_a_base64_secret():
    secret = "dGVzdC+0b2tlbi/2MDA="
    sent = "http://h/q?token=dGVzdC+0b2tlbi%2F2MDA%3D"          # '+' kept, '/' and '=' encoded
    decoded = {"token": "dGVzdC 0b2tlbi/2MDA="}                  # parse_qsl reads '+' as a space
    assert mask(sent, [secret]) == "http://h/q?token=***"
    assert mask_data(decoded, [secret]) == {"token": "***"}
    assert mask("http://h/q?t=dgvzdc%2b0b2tlbi%2f2mda%3d", [secret]) == "http://h/q?t=***"


def test_short_values_are_not_masked_inside_other_words():
    text = '{"method": "post", "scheme": "http", "timed_out": false}'
    assert mask(text, ["e", "80"]) == text
    assert mask("token=abcd", ["abcd"]) == "token=***"


def test_a_variable_set_but_empty_and_an_empty_secret_file_are_problems(tmp_path):
    (tmp_path / "key").write_text("\n", encoding="utf-8")
    _, found, problems = resolve(f"a: ${{EMPTY_KEY}}\nb: ${{file:{tmp_path / 'key'}}}\nc: ${{EMPTY_KEY:-}}\n",
                                 {"EMPTY_KEY": ""})
    assert problems == [
        "c.yaml:1:4: a: environment variable EMPTY_KEY is set but empty (write ${EMPTY_KEY:-} if empty is meant)",
        f"c.yaml:2:4: b: secret file {tmp_path / 'key'} is empty"]
