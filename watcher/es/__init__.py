"""Everything that talks to Elasticsearch: client factory, server facts, state and history indices."""
