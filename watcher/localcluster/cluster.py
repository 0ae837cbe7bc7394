"""The connection facts of one Elasticsearch cluster, and a readiness wait."""

from __future__ import annotations

import base64
import dataclasses
import json
import ssl
import time
import urllib.error
import urllib.request

from watcher import errors


class ClusterUnavailable(errors.ClusterError, RuntimeError):
    """Elasticsearch could not be provided or did not become ready."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where a cluster listens and how to authenticate.

    Attributes:
        url: base URL such as ``http://127.0.0.1:9250`` (no trailing slash).
        kind: ``url`` (given by ES_URL), ``docker`` or ``jvm`` (started by us).
        api_key, username, password, ca_certs: optional auth and TLS settings; secrets are
            excluded from ``repr``.
    """

    url: str
    kind: str
    api_key: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    ca_certs: str | None = None

    def env(self) -> dict[str, str]:
        """The ``ES_*`` environment variables a child process needs to reach this cluster."""
        values = {
            "ES_URL": self.url,
            "ES_API_KEY": self.api_key or "",
            "ES_USERNAME": self.username or "",
            "ES_PASSWORD": self.password or "",
            "ES_CA_CERTS": self.ca_certs or "",
        }
        return {k: v for k, v in values.items() if v}

    def _request(self, path: str, timeout: float) -> dict:
        request = urllib.request.Request(self.url.rstrip("/") + path)
        if self.api_key:
            request.add_header("Authorization", f"ApiKey {self.api_key}")
        elif self.username:
            token = base64.b64encode(f"{self.username}:{self.password or ''}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        context = ssl.create_default_context(cafile=self.ca_certs) if self.ca_certs else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return json.loads(response.read())

    def wait_until_ready(self, timeout: float = 120.0, alive=None) -> dict:
        """Poll ``/_cluster/health?wait_for_status=yellow`` until it answers (seconds).

        Args:
            timeout: overall limit in seconds.
            alive: optional callable; when it returns False the wait stops early (the process died).

        Returns:
            The cluster health document.

        Raises:
            ClusterUnavailable: not ready in time, or ``alive()`` turned False.
        """
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise ClusterUnavailable(f"the cluster at {self.url} exited while starting")
            try:
                health = self._request("/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=5)
                if health.get("status") in ("yellow", "green"):
                    return health
            except (OSError, urllib.error.URLError, ValueError) as error:
                last_error = error
            time.sleep(0.5)
        raise ClusterUnavailable(f"the cluster at {self.url} not ready after {timeout:.0f}s: {last_error}")
