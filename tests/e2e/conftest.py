"""The end-to-end suites run against the real local server: its fixtures come from the local-mode tests. The
suites that play the developers' webcam clip share its fixture, its skip and the server's planned step orders."""

from __future__ import annotations

import collections
import threading

import numpy as np
import pytest
from liveness.challenges import StepCode
from liveness.sessions import service as session_service

from testkit import headturn
from tests.conftest import mark_folder
from tests.local.conftest import data_dir, start_server  # noqa: F401  (fixtures)

NEEDS_CLIP = pytest.mark.skipif(
    not headturn.available(),
    reason=f"needs the developers' webcam clip {headturn.CLIP} (../shared is absent in a fresh clone)",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is in the ``realtime`` tier."""
    mark_folder(items, __file__, pytest.mark.realtime)


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    return headturn.read_frames()


@pytest.fixture
def ordered_draws(monkeypatch: pytest.MonkeyPatch) -> collections.deque:
    """Replaces the server's random draw of the steps (only that) so that each planned order runs once."""
    queue: collections.deque = collections.deque()
    lock = threading.Lock()

    def draw(count: int, *, exclude_expressions: bool = False) -> tuple[StepCode, ...]:
        with lock:
            return tuple(queue.popleft())[:count]

    monkeypatch.setattr(session_service, "draw_steps", draw)
    return queue
