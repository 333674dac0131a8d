"""Fixtures shared by the runtime tests: the embedded analyzer, a real face photo, and the structured logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from liveness import handler
from liveness.analyzers.mesh import MeshAnalyzer


@pytest.fixture(scope="session")
def analyzer(mesh_analyzer: MeshAnalyzer) -> MeshAnalyzer:
    """The embedded analyzer (tests/conftest.py's, shared by the whole run) under the runtime tests' name."""
    return mesh_analyzer


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A public-domain photograph of a face that scikit-image (a dev dependency) ships, as BGR."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (a dev dependency) ships the test photo")
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture
def structured_logs() -> Iterator[io.StringIO]:
    """Everything the Powertools logger writes (the session modules share it), through its own JSON formatter."""
    stream = io.StringIO()
    extra = logging.StreamHandler(stream)
    extra.setFormatter(handler.logger.registered_formatter)
    handler.logger.addHandler(extra)
    yield stream
    handler.logger.removeHandler(extra)
