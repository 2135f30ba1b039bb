"""Shared fixtures. Fixture modules live in tests/fixtures and are loaded as plugins."""

pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.servers", "tests.fixtures.browser"]
