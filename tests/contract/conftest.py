"""The contract tier: Schemathesis runs the served OpenAPI document against a real local server. Every test
here carries the ``slow`` marker (``make test`` runs it; ``make test-fast`` leaves it out)."""

from __future__ import annotations

import pytest

from tests.conftest import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, pytest.mark.slow)
