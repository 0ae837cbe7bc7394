"""Render a Watcher text template: a Mustache string, or a template object in Mustache or Jinja2.

Watcher's text templates (webhook ``body``, ``path``, ``params``, ``headers``; logging ``text``…) are
either a string or an object ``{"source" | "id": …, "lang": "mustache", "params": {…},
"options": {"content_type": …}}`` whose ``params`` are merged into the model at the top level
(docs/semantics.md#the-ctx-model and #mustache-templates).
Rules compiled from YAML carry their templates as ``{"source": …, "lang": "jinja"}`` objects.
A request body declared JSON renders with ``escape="json_strings"`` in either language
(docs/correctness.md#json-bodies).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from watcher.templates import mustache
from watcher.templates.jinja import render_jinja, tojson

__all__ = ["JSON_PREFIX", "TEMPLATE_LANGS", "render_text"]

JSON_PREFIX = "__json__::"
"""A string template starting with this renders with JSON escaping (Watcher's Mustache convention)."""

TEMPLATE_LANGS = ("mustache", "jinja")
ESCAPES = ("none", "json", "json_strings")


def render_text(template: Any, model: Mapping, *, escape: str = "none", jinja_vars: Mapping | None = None) -> str:
    """Render ``template`` against ``model``.

    Args:
        template: a Mustache string (``__json__::`` prefix → JSON escaping, prefix removed), or a
            mapping ``{source, lang?, params?, options?}``; ``lang`` is ``mustache`` (default) or
            ``jinja``; ``options.content_type: application/json`` selects JSON escaping for Mustache.
            Stored templates (``id``) are not available and raise ValueError.
        model: the Mustache model, normally ``{"ctx": {...}}`` (plus rule variables for rules).
        escape: ``"none"``; ``"json"`` (Watcher's JSON escaping of every ``{{x}}``; Mustache only,
            Jinja2 ignores it); or ``"json_strings"`` for a request body declared JSON, both
            languages: values printed inside a JSON string are JSON-string-escaped, ``toJson``/
            ``tojson``/``{{{x}}}``/``| safe`` output never (docs/correctness.md#json-bodies). A
            ``__json__::`` prefix or ``options.content_type`` of the template wins over it.
        jinja_vars: the variables of a Jinja2 template (default: ``model``).

    Returns:
        The rendered text (``None`` or a non-string template renders as its JSON-ish text).

    Raises:
        ValueError: unknown ``lang``/``escape``, stored template id, malformed template object.
        watcher.templates.mustache.TemplateSyntaxError / watcher.templates.jinja.TemplateRenderError:
            the template does not parse or fails to render.
    """
    if escape not in ESCAPES:
        raise ValueError(f"expected escape none or json, or json_strings for a JSON body, found {escape!r}")
    params: Mapping = {}
    lang = "mustache"
    if isinstance(template, Mapping):
        if "id" in template and "source" not in template:
            raise ValueError(f"stored templates are not supported (template id {template['id']!r}); "
                             "give the template inline with 'source'")
        if "source" not in template:
            raise ValueError("expected a template object with 'source', found keys: " + ", ".join(map(str, template)))
        lang = template.get("lang") or "mustache"
        params = template.get("params") or {}
        content_type = (template.get("options") or {}).get("content_type")
        if content_type == "application/json":
            escape = "json"
        template = template["source"]
    if lang not in TEMPLATE_LANGS:
        raise ValueError(f"expected template lang mustache or jinja, found {lang!r}")
    if template is None:
        return ""
    if not isinstance(template, str):
        return tojson(template)
    if lang == "jinja":
        variables = dict(model if jinja_vars is None else jinja_vars)
        variables.update(params)
        return render_jinja(template, variables, json_strings=escape == "json_strings")

    merged = {**model, **params} if params else model
    return mustache.render(template, merged, escape=escape)
