"""``python -m watcher.cli …``: the ``watcher`` command (the Makefile uses it before the console script exists)."""

from watcher.cli import main

main(prog_name="watcher")
