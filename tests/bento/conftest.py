"""Serving tests: the bearer token their server runs with (the Bento fixtures live in tests/conftest.py)."""

API_TOKEN = "test-token-for-har-clip"
