"""Everything that talks to Elasticsearch: client factory, server facts, our indices (indices.py), the
state, history and outbox stores, group commit and search batching."""
