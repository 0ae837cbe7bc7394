"""The parts of the Elasticsearch/OpenSearch seam and of the local engines that need no cluster.

What a real cluster answers is tested in tests/integration (test_cluster_plumbing.py runs on each engine).
"""

from __future__ import annotations

import socket
from pathlib import Path

import elastic_transport
import pytest

from watcher.errors import TransientClusterError
from watcher.es.client import ConnectionSettings, cluster_error_class, make_client
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
