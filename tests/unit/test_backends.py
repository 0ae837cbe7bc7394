"""The parts of the Elasticsearch/OpenSearch seam and of the local engines that need no cluster.

What a real cluster answers is tested in tests/integration (test_cluster_plumbing.py runs on each engine).
"""

from __future__ import annotations

import socket
from pathlib import Path

import elastic_transport
import pytest

from elasticsearch import ApiError, UnsupportedProductError

from watcher.errors import PermanentClusterError, TransientClusterError
from watcher.es.client import ConnectionSettings, _product_from_root, cluster_error_class, make_client, redact_url
from watcher.es.opensearch import _ndjson_line, _opensearch_shape, _query_value
from watcher.localcluster import distribution
from watcher.localcluster.cluster import ClusterUnavailable
from watcher.localcluster.engines import ENGINES, selected_engine


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nobody listens there


# --- choosing the product --------------------------------------------------------------------------------

def test_es_product_setting():
    base = {"ES_URL": "http://127.0.0.1:9200"}
    assert ConnectionSettings.from_env(base).product is None
    assert ConnectionSettings.from_env({**base, "ES_PRODUCT": "auto"}).product is None
    assert ConnectionSettings.from_env({**base, "ES_PRODUCT": " OpenSearch "}).product == "opensearch"
    with pytest.raises(ValueError, match=r"ES_PRODUCT: expected elasticsearch, opensearch or auto, found 'solr'"):
        ConnectionSettings.from_env({**base, "ES_PRODUCT": "solr"})


def test_a_client_contacts_nobody_until_its_first_request():
    client = make_client(ConnectionSettings(urls=[f"http://127.0.0.1:{closed_port()}"]))
    client.close()  # built and closed without a cluster: no error


@pytest.mark.parametrize("product", [None, "opensearch"])
def test_an_unreachable_cluster_is_the_same_transient_error_on_both_paths(product):
    client = make_client(ConnectionSettings(urls=[f"http://127.0.0.1:{closed_port()}"], product=product,
                                            request_timeout=2))
    try:
        with pytest.raises(elastic_transport.ConnectionError) as caught:
            client.options(max_retries=0).search(index="x", size=0)
        assert cluster_error_class(caught.value) is TransientClusterError
    finally:
        client.close()


# --- request shapes for OpenSearch -----------------------------------------------------------------------

def test_field_caps_fields_move_to_the_query_string():
    params, body = _opensearch_shape("/logs-*/_field_caps", {"ignore_unavailable": True}, {"fields": ["a", "b"]})
    assert params == {"ignore_unavailable": True, "fields": ["a", "b"]} and body is None
    params, body = _opensearch_shape("/logs/_field_caps", {}, {"fields": ["a"], "index_filter": {"match_all": {}}})
    assert params == {"fields": ["a"]} and body == {"index_filter": {"match_all": {}}}
    assert _opensearch_shape("/logs/_search", {}, {"fields": ["a"]}) == ({}, {"fields": ["a"]})


def test_query_values_as_the_cluster_reads_them():
    assert _query_value(True) == "true" and _query_value(False) == "false"
    assert _query_value(["a", "b", 3]) == "a,b,3"
    assert _query_value(b"x") == "x" and _query_value(2.5) == "2.5"


def test_ndjson_lines_keep_what_the_bulk_helpers_serialised():
    assert _ndjson_line({"index": {"_id": "1"}}) == '{"index":{"_id":"1"}}\n'
    assert _ndjson_line('{"a":1}') == '{"a":1}\n'
    assert _ndjson_line('{"é":1}'.encode()) == '{"é":1}\n'


# --- local engines -----------------------------------------------------------------------------------------

def test_engine_choice():
    assert selected_engine({}).name == "elasticsearch"
    assert selected_engine({"WATCHER_TEST_ENGINE": "OpenSearch"}).product == "OpenSearch"
    assert selected_engine({"WATCHER_TEST_ENGINE": "elasticsearch9"}).min_java == 21
    with pytest.raises(ClusterUnavailable, match=r"expected one of elasticsearch, opensearch, elasticsearch9, "
                                                 r"found 'solr'"):
        selected_engine({"WATCHER_TEST_ENGINE": "solr"})


def test_opensearch_module_descriptors_and_policies():
    modules = {m.name: m for m in ENGINES["opensearch"].modules}
    assert set(modules) == {"lang-painless", "lang-mustache", "ingest-common", "mapper-extras", "analysis-common"}
    descriptor = dict(line.split("=", 1) for line in modules["ingest-common"].descriptor("2.19.6").splitlines())
    assert descriptor["classname"] == "org.opensearch.ingest.common.IngestCommonPlugin"
    assert descriptor["extended.plugins"] == "lang-painless"
    assert descriptor["opensearch.version"] == descriptor["version"] == "2.19.6"
    assert modules["lang-painless"].policy() == ('grant {\n  permission java.lang.RuntimePermission "createClassLoader";\n'
                                                 '  permission java.lang.RuntimePermission "getClassLoader";\n};\n')
    assert modules["mapper-extras"].policy() is None


def test_fetch_pom_lists_every_artifact_with_its_folder(tmp_path):
    engine = ENGINES["opensearch"]
    wanted = [(engine.distribution, tmp_path)] + [(jar, tmp_path / m.name) for m in engine.modules for jar in m.jars]
    pom = distribution._fetch_pom(wanted)
    assert pom.count("<artifactItem>") == len(wanted) == 18
    assert (f"<artifactId>opensearch</artifactId><version>2.19.6</version><type>zip</type>"
            f"<outputDirectory>{tmp_path}</outputDirectory>") in pom
    assert f"<artifactId>joni</artifactId><version>2.2.1</version><type>jar</type><outputDirectory>" \
           f"{tmp_path / 'ingest-common'}</outputDirectory>" in pom


def fake_jdk(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return folder


def test_java_home_takes_the_oldest_jdk_that_is_new_enough(tmp_path, monkeypatch):
    jvms = tmp_path / "jvm"
    fake_jdk(jvms / "jdk-17", "17.0.15")
    fake_jdk(jvms / "jdk-25", "25.0.1")
    fake_jdk(jvms / "jdk-21", "21.0.4")
    monkeypatch.setattr(distribution, "JVM_FOLDERS", (jvms,))
    monkeypatch.delenv("WATCHER_JAVA_HOME", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-java-here"))
    assert distribution.java_home(17) == jvms / "jdk-17"
    assert distribution.java_home(21) == jvms / "jdk-21"
    monkeypatch.setenv("WATCHER_JAVA_HOME", str(jvms / "jdk-25"))
    assert distribution.java_home(21) == jvms / "jdk-25"
    with pytest.raises(ClusterUnavailable, match=r"no Java 26 or newer found \(seen: .*jdk-25 \(25\)"):
        distribution.java_home(26)


# --- which product answered GET / ----------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "headers", "body", "product"), [
    (200, {}, {"version": {"distribution": "opensearch", "number": "2.19.6"}}, "opensearch"),
    (200, {"x-elastic-product": "Elasticsearch"}, {"version": {"number": "8.14.1"}}, "elasticsearch"),
    (200, {}, {"version": {"number": "8.14.1"}}, "elasticsearch"),
    (405, {}, {"error": "Incorrect HTTP method"}, "elasticsearch"),       # integ-test zips: no GET / handler
    (401, {"x-elastic-product": "Elasticsearch"}, {}, "elasticsearch"),  # Elasticsearch sends it on errors too
    (401, {}, "Unauthorized", None),                                      # an OpenSearch security plugin, a proxy
    (503, {}, "OpenSearch Security not initialized.", None),
    (429, {}, {}, None),
])
def test_product_from_the_root_answer(status, headers, body, product):
    assert _product_from_root(status, headers, body) == product


def test_an_undecided_answer_is_asked_again_and_never_pins_the_product(httpserver):
    root = httpserver.expect_request("/", method="GET")
    root.respond_with_data("OpenSearch Security not initialized.", status=503, content_type="text/plain")
    client = make_client(ConnectionSettings(urls=[httpserver.url_for("/").rstrip("/")], request_timeout=5))
    try:
        with pytest.raises(ApiError) as caught:
            client.options(max_retries=0).count(index="logs")
        assert caught.value.status_code == 503 and "set ES_PRODUCT" in str(caught.value)
        assert cluster_error_class(caught.value) is TransientClusterError
        httpserver.clear()
        httpserver.expect_request("/", method="GET").respond_with_json(
            {"version": {"distribution": "opensearch", "number": "2.19.6"}})
        httpserver.expect_request("/logs/_count").respond_with_json({"count": 7})
        assert client.count(index="logs")["count"] == 7 and client.product == "opensearch"
        sent = httpserver.log[-1][0]
        assert sent.headers["Accept"] == "application/json"  # not the compatible-with=8 type OpenSearch refuses
    finally:
        client.close()


def test_elasticsearch_forced_on_another_product_says_what_to_change(httpserver):
    httpserver.expect_request("/logs/_count").respond_with_json({"count": 7})  # no X-Elastic-Product header
    client = make_client(ConnectionSettings(urls=[httpserver.url_for("/").rstrip("/")], product="elasticsearch"))
    try:
        with pytest.raises(UnsupportedProductError, match="ES_PRODUCT=elasticsearch says it is; leave ES_PRODUCT unset"):
            client.count(index="logs")
    finally:
        client.close()


def test_a_4xx_without_a_class_of_its_own_is_permanent():
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

    meta = ApiResponseMeta(status=406, http_version="1.1", headers=HttpHeaders(), duration=0.0,
                           node=NodeConfig("http", "127.0.0.1", 9200))
    assert cluster_error_class(ApiError("not acceptable", meta=meta, body={})) is PermanentClusterError
    assert cluster_error_class(ApiError) is TransientClusterError  # the class alone: 429/5xx in practice


@pytest.mark.parametrize(("url", "shown"), [
    ("http://admin:Hunter2/pw@127.0.0.1:9260", "http://admin:***@127.0.0.1:9260"),
    ("https://a:b#c?d@es.example:443", "https://a:***@es.example:443"),
    ("http://127.0.0.1:9200/a@b", "http://127.0.0.1:9200/a@b"),
])
def test_passwords_with_url_delimiters_are_masked(url, shown):
    assert redact_url(url) == shown


def test_a_failed_product_question_is_asked_again_and_an_answer_is_kept():
    from watcher.es.client import _Backend

    backend = _Backend(ConnectionSettings(urls=["http://127.0.0.1:9200"]))
    answers = iter([ConnectionRefusedError("down"), "elasticsearch"])
    asked = []

    def ask():
        asked.append(1)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(ConnectionRefusedError):
        backend.resolve(ask)
    assert backend.resolve(ask) == "elasticsearch" and backend.resolve(ask) == "elasticsearch"
    assert len(asked) == 2  # asked again after the failure, never after the answer
