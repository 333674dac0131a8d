"""The end-to-end suites run against the real local server: its fixtures come from the local-mode tests."""

from __future__ import annotations

import pytest

from tests.conftest import mark_folder
from tests.local.conftest import data_dir, start_server  # noqa: F401  (fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is in the ``realtime`` tier."""
    mark_folder(items, __file__, pytest.mark.realtime)
