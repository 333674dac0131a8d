"""The infrastructure tier: every test here carries the ``infra`` marker."""

from __future__ import annotations

import pytest

from tests.conftest import mark_folder


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, __file__, pytest.mark.infra)
