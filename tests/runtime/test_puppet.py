"""The animated-photo attacker (testkit.puppet): one photo turned by its mesh reads as the requested pose."""

from __future__ import annotations

import numpy as np
from liveness.faces import Frame

from testkit.puppet import puppet_frame


def test_the_puppet_turns_the_photo_as_asked(astronaut: np.ndarray, analyzer) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)

    def pose(yaw: float, pitch: float):  # noqa: ANN202
        frame = puppet_frame(astronaut, yaw, pitch, rng)
        return analyzer.detect_faces(Frame(bgr=frame, encoded=b"", content_type="image/jpeg"))[0].pose

    straight = pose(0, 0)
    assert pose(30, 0).yaw - straight.yaw > 18 and pose(-30, 0).yaw - straight.yaw < -18
    assert pose(0, 15).pitch - straight.pitch > 8 and pose(0, -15).pitch - straight.pitch < -8
