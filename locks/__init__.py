"""Locked installs: one lock file per supported extra set, made by uv and checked against pyproject.toml."""
