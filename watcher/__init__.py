"""watcher: an open-source alert rule engine for Elasticsearch.

Runs rules written in YAML and Elastic Watcher watch definitions unchanged: a schedule triggers an
input (a search of the cluster), a condition decides, transforms reshape the payload, and actions
deliver through connectors (webhook, OpsGenie, Slack, index, logging).
"""

from watcher.version import __version__

__all__ = ["__version__"]
