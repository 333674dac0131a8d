"""The fuzz suite's Hypothesis profiles and its case counter.

``ci`` (the default, in ``make test``): a few dozen cases per property, derandomized and without an example
database, so every run tries the same cases. ``fuzz`` (``make fuzz``, ``HYPOTHESIS_PROFILE=fuzz``):
``FUZZ_EXAMPLES`` cases per property (default 2000). Deadlines are off: nothing here is judged by wall-clock
time; the work a case costs is measured by counting (decoder calls, scans x pixels) and by memory.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.conftest import mark_folder

_COMMON: dict[str, Any] = {
    "derandomize": True,
    "database": None,
    "deadline": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}
settings.register_profile("ci", max_examples=60, **_COMMON)
settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "2000")), **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CASES: Counter[str] = Counter()  # property -> cases run
STATUSES: Counter[str] = Counter()  # "status code" -> handler answers (a case may make several calls)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CASES:
        detail = ", ".join(f"{name} {count}" for name, count in sorted(CASES.items()))
        terminalreporter.write_line(
            f"fuzz: {sum(CASES.values())} cases ran (profile {settings.get_current_profile_name()}): {detail}"
        )
        answers = ", ".join(f"{status} x{count}" for status, count in STATUSES.most_common())
        terminalreporter.write_line(f"fuzz: handler answers: {answers}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is in the ``fuzz`` tier."""
    mark_folder(items, __file__, pytest.mark.fuzz)
