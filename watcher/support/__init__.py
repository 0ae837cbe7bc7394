"""Pure helpers shared by every layer: time values, date math, object paths and Watcher's lenient comparison."""
