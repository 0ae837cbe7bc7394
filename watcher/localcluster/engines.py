"""The search engines :mod:`watcher.localcluster` can run in a local JVM, all assembled from Maven Central.

``WATCHER_TEST_ENGINE`` picks one (default ``elasticsearch``):

* ``elasticsearch`` — Elasticsearch 8.14.1, Elastic's integration-test distribution. Its modules are
  only apm, transport-netty4, x-pack-core and x-pack-security: no Painless, Mustache, ingest
  processors, ``scaled_float`` or pipeline aggregations.
* ``opensearch`` — OpenSearch 2.19.6, the integration-test distribution (transport-netty4 only) plus the
  modules a full distribution ships, each fetched as its jar(s) from Central and laid out as a module:
  lang-painless, lang-mustache, ingest-common, mapper-extras and analysis-common. This is the engine
  that runs Painless scripts, stored Mustache templates, grok pipelines and ``bucket_selector``.
* ``elasticsearch9`` — Elasticsearch 9.2.0, same module set as 8.14.1; needs a Java 21 or newer.

The jars carry no ``plugin-descriptor.properties`` (a distribution's build writes it), so the
descriptors and security policies below are ours; docs/backends.md#local-engines says why each
permission is there.
"""

from __future__ import annotations

import dataclasses
import os

from watcher.localcluster.cluster import ClusterUnavailable

OPENSEARCH_VERSION = "2.19.6"


@dataclasses.dataclass(frozen=True)
class Jar:
    """One Maven artifact (``group:artifact:version``, packaging ``jar`` unless given)."""

    group: str
    artifact: str
    version: str
    packaging: str = "jar"

    @property
    def file_name(self) -> str:
        return f"{self.artifact}-{self.version}.{self.packaging}"


@dataclasses.dataclass(frozen=True)
class Module:
    """A module folder added to a distribution: its jars, descriptor fields and security policy.

    Attributes:
        name: folder under ``modules/`` and the plugin name.
        classname: the plugin class the server loads.
        jars: the module's jar and the libraries it needs (the server's own jars are already in ``lib/``).
        extends: plugins whose class loader this one extends (``lang-painless`` for its SPI users).
        permissions: lines of the ``grant { … }`` block of ``plugin-security.policy``.
    """

    name: str
    classname: str
    jars: tuple[Jar, ...]
    extends: tuple[str, ...] = ()
    permissions: tuple[str, ...] = ()

    def descriptor(self, version: str) -> str:
        """The ``plugin-descriptor.properties`` text for a server of ``version``."""
        fields = {
            "description": f"{self.name} (assembled by watcher.localcluster)",
            "version": version,
            "name": self.name,
            "classname": self.classname,
            "java.version": "11",
            "opensearch.version": version,
            "custom.foldername": self.name,
            "extended.plugins": ",".join(self.extends),
            "has.native.controller": "false",
        }
        return "".join(f"{key}={value}\n" for key, value in fields.items())

    def policy(self) -> str | None:
        """The ``plugin-security.policy`` text, or None when the module needs no permission."""
        if not self.permissions:
            return None
        return "grant {\n" + "".join(f"  permission {line};\n" for line in self.permissions) + "};\n"


@dataclasses.dataclass(frozen=True)
class Engine:
    """How to fetch, configure and launch one engine.

    Attributes:
        name: the ``WATCHER_TEST_ENGINE`` value.
        product: ``Elasticsearch`` or ``OpenSearch`` (what the cluster says it is).
        version: server version.
        distribution: the integration-test zip on Maven Central.
        modules: folders added under ``modules/`` (OpenSearch only).
        launcher: script under ``bin/``.
        config_file: settings file under ``config/``.
        env_prefix: prefix of the launcher's variables (``ES_JAVA_HOME``, ``OPENSEARCH_PATH_CONF``…).
        min_java: oldest Java feature release the server runs on.
        settings: node settings beyond the common ones (ports, paths, single node).
    """

    name: str
    product: str
    version: str
    distribution: Jar
    launcher: str
    config_file: str
    env_prefix: str
    min_java: int
    settings: tuple[tuple[str, object], ...] = ()
    modules: tuple[Module, ...] = ()

    @property
    def folder(self) -> str:
        """Name of the unpacked (and assembled) home under the cache folder."""
        return f"{self.name}-{self.version}"


def _es(name: str, version: str, min_java: int) -> Engine:
    return Engine(
        name=name, product="Elasticsearch", version=version,
        distribution=Jar("org.elasticsearch.distribution.integ-test-zip", "elasticsearch", version, "zip"),
        launcher="elasticsearch", config_file="elasticsearch.yml", env_prefix="ES", min_java=min_java,
        # Local, loopback-only node for tests and demos: security is off on purpose.
        settings=(("xpack.security.enabled", False),))


def _opensearch(version: str) -> Engine:
    def plugin(artifact: str) -> Jar:
        return Jar("org.opensearch.plugin", artifact, version)

    painless = Module(
        "lang-painless", "org.opensearch.painless.PainlessPlugin",
        (plugin("lang-painless"), plugin("opensearch-scripting-painless-spi"),
         Jar("org.antlr", "antlr4-runtime", "4.13.1"),
         *(Jar("org.ow2.asm", name, "9.7") for name in ("asm", "asm-util", "asm-tree", "asm-commons", "asm-analysis"))),
        # Painless compiles each script into a class of its own loader.
        permissions=('java.lang.RuntimePermission "createClassLoader"',
                     'java.lang.RuntimePermission "getClassLoader"'))
    mustache = Module(
        "lang-mustache", "org.opensearch.script.mustache.MustachePlugin",
        (plugin("lang-mustache-client"), Jar("com.github.spullara.mustache.java", "compiler", "0.9.14")),
        # mustache.java reflects over the objects it renders.
        permissions=('java.lang.RuntimePermission "accessDeclaredMembers"',))
    ingest = Module(
        "ingest-common", "org.opensearch.ingest.common.IngestCommonPlugin",
        (plugin("ingest-common"), Jar("org.opensearch", "opensearch-grok", version),
         Jar("org.opensearch", "opensearch-dissect", version), Jar("org.jruby.joni", "joni", "2.2.1"),
         Jar("org.jruby.jcodings", "jcodings", "1.0.61")),
        extends=("lang-painless",))
    mapper_extras = Module("mapper-extras", "org.opensearch.index.mapper.MapperExtrasPlugin",
                           (plugin("mapper-extras-client"),))
    analysis = Module("analysis-common", "org.opensearch.analysis.common.CommonAnalysisPlugin",
                      (plugin("analysis-common"),), extends=("lang-painless",))
    return Engine(
        name="opensearch", product="OpenSearch", version=version,
        distribution=Jar("org.opensearch.distribution.integ-test-zip", "opensearch", version, "zip"),
        launcher="opensearch", config_file="opensearch.yml", env_prefix="OPENSEARCH", min_java=11,
        modules=(painless, mustache, ingest, mapper_extras, analysis))


ENGINES: dict[str, Engine] = {
    "elasticsearch": _es("elasticsearch", os.environ.get("WATCHER_ES_VERSION", "8.14.1"), 17),
    "opensearch": _opensearch(OPENSEARCH_VERSION),
    "elasticsearch9": _es("elasticsearch9", "9.2.0", 21),
}


def selected_engine(environ: dict[str, str] | None = None) -> Engine:
    """The engine named by ``WATCHER_TEST_ENGINE`` (default ``elasticsearch``).

    Raises:
        ClusterUnavailable: the name is not one of :data:`ENGINES` (the message lists them).
    """
    env = os.environ if environ is None else environ
    name = env.get("WATCHER_TEST_ENGINE", "").strip().lower() or "elasticsearch"
    try:
        return ENGINES[name]
    except KeyError:
        raise ClusterUnavailable(f"WATCHER_TEST_ENGINE: expected one of {', '.join(ENGINES)}, found {name!r}") from None
