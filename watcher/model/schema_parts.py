"""JSON Schema fragments (draft 2020-12) shared by the schemas of watch files: time values,
Watcher text templates, Painless scripts and Watcher's HTTP request template. Plain dicts, no logic."""

from __future__ import annotations

TIME_VALUE = {"type": "string", "pattern": r"^\s*([0-9.]+\s*(nanos|micros|ms|s|m|h|d|w)|0|-1)\s*$",
               "description": "A time value such as 30s, 5m, 1.5h (units ms, s, m, h, d, w)."}
TEMPLATE = {
    "description": "A Mustache template: a string, or {source, lang, params}.",
    "anyOf": [{"type": "string"},
              {"type": "object", "properties": {
                  "source": {"type": "string"}, "id": {"type": "string"},
                  "lang": {"enum": ["mustache", "jinja"]}, "params": {"type": "object"},
                  "options": {"type": "object"}}, "additionalProperties": False}],
}
SCRIPT = {
    "description": "A Painless script: a source string or {source|id, lang, params}.",
    "anyOf": [{"type": "string"},
              {"type": "object", "properties": {
                  "source": {"type": "string"}, "id": {"type": "string"},
                  "lang": {"type": "string", "default": "painless"}, "params": {"type": "object"}},
               "additionalProperties": False}],
}


def http_request_schema() -> dict:
    return {"type": "object", "description": "An HTTP request (webhook action, http input).",
            "properties": {
                "scheme": {"enum": ["http", "https"], "default": "http"},
                "host": {"type": "string"}, "port": {"type": "integer", "minimum": 1},
                "method": {"enum": ["head", "get", "post", "put", "delete", "HEAD", "GET", "POST", "PUT", "DELETE"],
                           "default": "get"},
                "path": TEMPLATE, "url": {"type": "string", "description": "Sets scheme, host, port, path and params."},
                "params": {"type": "object", "additionalProperties": TEMPLATE},
                "headers": {"type": "object", "additionalProperties": TEMPLATE},
                "auth": {"type": "object", "properties": {"basic": {"type": "object", "properties": {
                    "username": {"type": "string"}, "password": {"type": "string"}}}}},
                "body": TEMPLATE,
                "proxy": {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "integer"},
                                                           "scheme": {"type": "string"}}},
                "connection_timeout": TIME_VALUE, "connection_timeout_in_millis": {"type": "integer"},
                "read_timeout": TIME_VALUE, "read_timeout_millis": {"type": "integer"}},
            "additionalProperties": False}


CONNECTOR_REF = {"connector": {"type": "string", "description": "A connector from connectors.yaml."}}
