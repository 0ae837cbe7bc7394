"""Execution of one watch at one time → a watch record (Watcher's observable behaviour)."""
