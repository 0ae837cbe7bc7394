"""Definitions: rule, watch and connector files → one validated model, errors with file:line:column."""
