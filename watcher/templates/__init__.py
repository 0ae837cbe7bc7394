"""Template engines used to render watch and rule actions (Watcher-compatible Mustache, sandboxed Jinja2)."""
