"""The e2e CLI fixture, shared."""

from tests.e2e.conftest import cli  # noqa: F401  (a fixture, found by name)
