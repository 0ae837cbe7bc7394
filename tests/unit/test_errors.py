"""The exception hierarchy (watcher.errors): every exception class of the package is under
WatcherError, the re-based classes are still caught as before, and third-party errors (real
elasticsearch / httpx exception objects) are classified as transient/permanent and
retryable/final by class."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil

import elastic_transport
import httpx
import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import (ApiError, AuthenticationException, AuthorizationException, BadRequestError, ConflictError,
                           Elasticsearch, NotFoundError)

import watcher
from watcher import errors
from watcher.daemon.service import TRANSIENT_ERROR_TYPES, transient_reason
from watcher.delivery.outbox import UnresolvedSecret
from watcher.delivery.retry import classify, delivery_error_class
from watcher.delivery.direct import SendNow
from watcher.model.requests import HttpRequest
from watcher.engine.execute import error_json
from watcher.es.client import client_error_classes, cluster_error_class
from watcher.es.painless import PainlessError, ScriptUnavailable
from watcher.es.state import StateConflict

# -- one root ---------------------------------------------------------------------------------------


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(watcher.__path__, "watcher."):
        if info.name.endswith(".__main__"):  # importing it runs the command line
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ == module.__name__ and issubclass(obj, BaseException):
                found.append(obj)
    return found


EXCEPTION_CLASSES = _exception_classes()


def test_the_walk_finds_the_exception_classes():
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in EXCEPTION_CLASSES}
    assert {"watcher.support.durations.DurationError", "watcher.errors.TemplateRenderError",
            "watcher.errors.TemplateSyntaxError", "watcher.es.state.StateConflict",
            "watcher.errors.WatcherError"} <= names
    assert len(EXCEPTION_CLASSES) >= 25
    assert len({cls.__qualname__ for cls in EXCEPTION_CLASSES if cls.__module__ != "watcher.errors"} &
               {cls.__qualname__ for cls in EXCEPTION_CLASSES if cls.__module__ == "watcher.errors"}) <= 2  # re-based:
    # only TemplateSyntaxError and ClusterUnavailable (localcluster) share a name with their base in errors.py


@pytest.mark.parametrize("cls", EXCEPTION_CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_every_exception_class_of_the_package_is_a_watcher_error(cls):
    assert issubclass(cls, errors.WatcherError)


def test_errors_module_imports_nothing_from_watcher():
    tree = ast.parse(pathlib.Path(errors.__file__).read_text())
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name == "watcher" or name.startswith("watcher.")]


@pytest.mark.parametrize("path, builtin, branch", [
    ("watcher.model.source.SourceError", ValueError, errors.DefinitionProblem),
    ("watcher.model.problems.DefinitionError", ValueError, errors.DefinitionProblem),
    ("watcher.definitions.from_elastalert.ConversionError", ValueError, errors.DefinitionProblem),
    ("watcher.definitions.from_elastalert.NoActionsError", ValueError, errors.DefinitionProblem),
    ("watcher.model.json_reader.JsonSyntaxError", ValueError, errors.DefinitionProblem),
    ("watcher.definitions.compile.NotConvertible", ValueError, errors.DefinitionProblem),
    ("watcher.schedule.UnixCronError", ValueError, errors.DefinitionProblem),
    ("watcher.schedule.quartz.QuartzError", ValueError, errors.DefinitionProblem),
    ("watcher.support.durations.DurationError", ValueError, errors.DefinitionProblem),
    ("watcher.support.datemath.DateMathError", ValueError, errors.DefinitionProblem),
    ("watcher.errors.TemplateSyntaxError", ValueError, errors.TemplateSyntaxError),
    ("watcher.templates.mustache.TemplateRenderError", ValueError, errors.TemplateRenderError),
    ("watcher.templates.jinja.TemplateRenderError", ValueError, errors.TemplateRenderError),
    ("watcher.support.javatext.SelfReferenceError", ValueError, errors.WatcherError),
    ("watcher.engine.transforms.chain.ChainTransformError", RuntimeError, errors.WatcherError),
    ("watcher.es.painless.ScriptUnavailable", RuntimeError, errors.PermanentClusterError),
    ("watcher.es.painless.PainlessError", RuntimeError, errors.PermanentClusterError),
    ("watcher.localcluster.cluster.ClusterUnavailable", RuntimeError, errors.ClusterError),
    ("watcher.es.state.StateConflict", Exception, errors.ClusterError),
    ("watcher.delivery.outbox.UnresolvedSecret", Exception, errors.FinalDeliveryError),
])
def test_rebased_classes_keep_their_builtin_base_and_get_their_branch(path, builtin, branch):
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, builtin) and issubclass(cls, branch)


def test_both_template_languages_raise_one_render_error_and_a_syntax_error_is_a_definition_problem():
    from watcher.templates import jinja, mustache

    assert jinja.TemplateRenderError is mustache.TemplateRenderError is errors.TemplateRenderError
    assert issubclass(errors.TemplateRenderError, ValueError)
    for cls in (jinja.TemplateRenderError, mustache.TemplateRenderError, mustache.TemplateSyntaxError):
        assert issubclass(cls, errors.TemplateError)
    assert not issubclass(mustache.TemplateRenderError, errors.DefinitionProblem)
    assert issubclass(mustache.TemplateSyntaxError, errors.DefinitionProblem)
    with pytest.raises(errors.TemplateRenderError):
        jinja.render_jinja("{{ missing }}", {})
    with pytest.raises(errors.TemplateSyntaxError):
        mustache.compile_template("{{#open}}")


# -- cluster errors: transient or permanent -------------------------------------------------------------

def meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(status=status, http_version="1.1", headers=HttpHeaders(), duration=0.01,
                           node=NodeConfig("http", "127.0.0.1", 9200))


def api_error(cls: type, status: int) -> ApiError:
    body = {"error": {"type": "some_exception", "reason": "why"}, "status": status}
    return cls("some_exception", meta(status), body)


@pytest.mark.parametrize("error", [
    elastic_transport.ConnectionError("Connection refused"),
    elastic_transport.ConnectionTimeout("Connection timed out"),
    elastic_transport.SniffingError("no nodes"),
    elastic_transport.TransportError("transport failed"),
    api_error(ApiError, 429),
    api_error(ApiError, 500),
    api_error(ApiError, 503),
], ids=repr)
def test_cluster_errors_that_are_transient(error):
    assert cluster_error_class(error) is errors.TransientClusterError
    assert error_json(error)["type"] in TRANSIENT_ERROR_TYPES
    assert transient_reason({"exception": error_json(error)}) is not None


@pytest.mark.parametrize("error", [
    elastic_transport.TlsError("certificate verify failed"),
    elastic_transport.SerializationError("not JSON"),
    api_error(BadRequestError, 400),
    api_error(AuthenticationException, 401),
    api_error(AuthorizationException, 403),
    api_error(NotFoundError, 404),
    api_error(ConflictError, 409),
    PainlessError("compile error"),
    ScriptUnavailable("no painless"),
], ids=repr)
def test_cluster_errors_that_are_permanent(error):
    assert cluster_error_class(error) is errors.PermanentClusterError
    assert error_json(error)["type"] not in TRANSIENT_ERROR_TYPES
    assert transient_reason({"exception": error_json(error)}) is None


def test_other_errors_are_no_cluster_errors_and_a_conflict_is_neither_transient_nor_permanent():
    assert cluster_error_class(ValueError("bad")) is None
    assert cluster_error_class(httpx.ConnectError("refused")) is None
    assert cluster_error_class(StateConflict("changed")) is errors.ClusterError


def test_a_refused_connection_to_the_cluster_is_transient():
    es = Elasticsearch("http://127.0.0.1:1", max_retries=0, request_timeout=2)
    with pytest.raises(Exception) as caught:
        es.info()
    assert cluster_error_class(caught.value) is errors.TransientClusterError
    assert transient_reason({"result": {"input": {"status": "failure", "error": error_json(caught.value)}}})


def test_transient_error_types_are_the_types_of_the_transient_client_classes():
    assert TRANSIENT_ERROR_TYPES == {"connection_error", "connection_timeout", "transport_error", "api_error",
                                     "sniffing_error", "outbox_unavailable", "partial_results_error"}
    classes = client_error_classes()
    assert elastic_transport.TlsError in classes and NotFoundError in classes
    for cls in classes:
        transient = cluster_error_class(cls) is errors.TransientClusterError
        error = api_error(cls, 503) if issubclass(cls, elastic_transport.ApiError) else cls("x")
        assert (error_json(error)["type"] in TRANSIENT_ERROR_TYPES) is transient, cls


# -- delivery errors: retryable or final ----------------------------------------------------------------

@pytest.mark.parametrize("error", [
    httpx.ConnectError("connection refused"),
    httpx.ConnectTimeout("connect timed out"),
    httpx.ReadTimeout("read timed out"),
    httpx.WriteTimeout("write timed out"),
    httpx.PoolTimeout("no connection free"),
    httpx.ReadError("connection reset"),
    httpx.WriteError("broken pipe"),
    httpx.CloseError("close failed"),
    httpx.RemoteProtocolError("server disconnected without sending a response"),
    httpx.ProxyError("proxy refused"),
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError("timed out"),
], ids=repr)
def test_delivery_errors_that_are_retryable(error):
    assert delivery_error_class(error) is errors.RetryableDeliveryError
    assert classify(error) == "retry"


@pytest.mark.parametrize("error", [
    httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'ftp://'"),
    httpx.InvalidURL("Invalid URL"),
    httpx.LocalProtocolError("illegal header"),
    httpx.DecodingError("bad gzip"),
    httpx.TooManyRedirects("too many"),
    ValueError("bad header value"),
    UnresolvedSecret("secret gone"),
], ids=repr)
def test_delivery_errors_that_are_final(error):
    assert delivery_error_class(error) is errors.FinalDeliveryError
    assert classify(error) == "dead"


@pytest.mark.parametrize("url, verdict", [
    ("http://127.0.0.1:1/hook", "retry"),   # connection refused
    ("ftp://127.0.0.1/hook", "dead"),       # unsupported scheme
])
def test_a_real_failed_send_is_classified_alike_as_exception_and_as_recorded_outcome(url, verdict):
    with pytest.raises(httpx.HTTPError) as caught:
        httpx.post(url, timeout=2, trust_env=False)
    assert classify(caught.value) == verdict
    outcome = SendNow().deliver(HttpRequest("POST", url, timeout_s=2, read_timeout_s=2))
    assert outcome.status == "failure" and outcome.response is None
    assert classify(outcome) == verdict


def test_our_own_delivery_errors_keep_their_branch():
    assert delivery_error_class(errors.RetryableDeliveryError("later")) is errors.RetryableDeliveryError
    assert delivery_error_class(errors.FinalDeliveryError("never")) is errors.FinalDeliveryError
