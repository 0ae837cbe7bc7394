"""Fetch an engine's distribution from Maven Central, unpack it and add its modules; find a Java for it.

Everything lands under :func:`cache_dir` (ignored by git): ``download/<engine>/`` holds what Maven
copied, ``<engine>-<version>/`` the home the node runs from. One Maven run fetches the distribution
and every module jar (a generated ``pom.xml`` lists them for ``dependency:copy``; ``copy``, not
``copy-dependencies``, because a module jar's own dependencies include the whole server).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

from watcher.localcluster.cluster import ClusterUnavailable
from watcher.localcluster.engines import Engine, Jar


def cache_dir() -> Path:
    """Where distributions and node folders live: ``$WATCHER_ES_CACHE``, else ``<repo>/.cache/elasticsearch``.

    When running as root and the repository path is not traversable by other users (the node runs
    as ``nobody``), falls back to ``/var/tmp/watcher-elasticsearch``.
    """
    configured = os.environ.get("WATCHER_ES_CACHE")
    if configured:
        return Path(configured).resolve()
    repo = Path(__file__).resolve().parents[2]
    base = repo / ".cache" / "elasticsearch" if (repo / "pyproject.toml").exists() else (
        Path.home() / ".cache" / "watcher" / "elasticsearch")
    if os.geteuid() == 0 and not _traversable_by_others(base):
        return Path("/var/tmp/watcher-elasticsearch")
    return base


def _traversable_by_others(path: Path) -> bool:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_distribution(engine: Engine) -> Path:
    """Return the runnable home of ``engine``, fetching and assembling it on first use.

    Safe when several processes start nodes at once (a file lock guards the assembly; the home
    appears by one rename, complete or not at all).

    Raises:
        ClusterUnavailable: Maven is missing or could not resolve an artifact (the message has its output).
    """
    root = cache_dir()
    home = root / engine.folder
    if (home / "bin" / engine.launcher).exists():
        return home
    with _locked(root / ".download.lock"):
        if (home / "bin" / engine.launcher).exists():
            return home
        download = root / "download" / engine.name
        _fetch(engine, download)
        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=root))
        _unzip_with_modes(download / engine.distribution.file_name, staging)
        unpacked = staging / f"{engine.distribution.artifact}-{engine.version}"
        for module in engine.modules:
            folder = unpacked / "modules" / module.name
            folder.mkdir()
            for jar in module.jars:
                shutil.copy2(download / module.name / jar.file_name, folder / jar.file_name)
            (folder / "plugin-descriptor.properties").write_text(module.descriptor(engine.version))
            policy = module.policy()
            if policy:
                (folder / "plugin-security.policy").write_text(policy)
            for path in folder.iterdir():
                path.chmod(0o644)
        unpacked.rename(home)
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _fetch(engine: Engine, download: Path) -> None:
    wanted = [(engine.distribution, download)] + [
        (jar, download / module.name) for module in engine.modules for jar in module.jars]
    if all((folder / jar.file_name).exists() for jar, folder in wanted):
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise ClusterUnavailable(f"Maven (mvn) is needed to fetch {engine.product} {engine.version} from Maven Central")
    download.mkdir(parents=True, exist_ok=True)
    pom = download / "pom.xml"
    pom.write_text(_fetch_pom(wanted))
    result = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "validate"], capture_output=True, text=True)
    missing = [f"{jar.group}:{jar.artifact}:{jar.version}" for jar, folder in wanted
               if not (folder / jar.file_name).exists()]
    if result.returncode != 0 or missing:
        raise ClusterUnavailable(f"Maven could not resolve {', '.join(missing) or engine.product}:\n"
                                 + result.stdout[-3000:] + result.stderr[-2000:])


def _fetch_pom(wanted: list[tuple[Jar, Path]]) -> str:
    items = "".join(
        f"<artifactItem><groupId>{escape(jar.group)}</groupId><artifactId>{escape(jar.artifact)}</artifactId>"
        f"<version>{escape(jar.version)}</version><type>{escape(jar.packaging)}</type>"
        f"<outputDirectory>{escape(str(folder))}</outputDirectory></artifactItem>\n"
        for jar, folder in wanted)
    return f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <!-- Written by watcher.localcluster: fetches a distribution and its modules (mvn validate). -->
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.watcher</groupId><artifactId>fetch</artifactId><version>1</version><packaging>pom</packaging>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.6.1</version>
    <executions><execution><id>fetch</id><phase>validate</phase><goals><goal>copy</goal></goals>
      <configuration><artifactItems>
{items}      </artifactItems></configuration>
    </execution></executions>
  </plugin></plugins></build>
</project>
"""


def _unzip_with_modes(archive: Path, target: Path) -> None:
    # zipfile drops Unix modes; the launch scripts and the JDK-less layout need their exec bits.
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            extracted = Path(zipped.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if extracted.is_dir():
                extracted.chmod(0o755)
            else:
                extracted.chmod((mode | 0o644) & 0o755 if mode else 0o644)


_JAVA_VERSION = re.compile(r'^JAVA_VERSION="(\d+)', re.MULTILINE)
JVM_FOLDERS = (Path("/usr/lib/jvm"), Path("/usr/lib64/jvm"), Path("/opt/java"))


def java_feature_version(home: Path) -> int | None:
    """The feature release (17, 21, 25…) of the JDK at ``home``, from its ``release`` file; None if unknown."""
    with contextlib.suppress(OSError):
        found = _JAVA_VERSION.search((home / "release").read_text())
        if found:
            return int(found.group(1))
    return None


def java_home(minimum: int) -> Path:
    """A JDK home whose feature release is at least ``minimum``.

    Looks at ``WATCHER_JAVA_HOME``, ``JAVA_HOME``, the ``java`` on ``PATH``, then the JDKs installed
    under :data:`JVM_FOLDERS`, newest last so that the first that fits is the oldest that fits.

    Raises:
        ClusterUnavailable: no JDK of that release is found (the message says which were seen).
    """
    candidates: list[Path] = []
    for variable in ("WATCHER_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(variable):
            candidates.append(Path(os.environ[variable]))
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parents[1])
    for folder in JVM_FOLDERS:
        if folder.is_dir():
            installed = [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
            candidates.extend(sorted(installed, key=lambda p: java_feature_version(p) or 0))
    seen = []
    for home in dict.fromkeys(path.resolve() for path in candidates):
        version = java_feature_version(home)
        seen.append(f"{home} ({version or 'unknown'})")
        if version is not None and version >= minimum:
            return home
    raise ClusterUnavailable(f"no Java {minimum} or newer found (seen: {', '.join(seen) or 'none'}); "
                             f"install one or set WATCHER_JAVA_HOME")
