"""The web client coaches each step in its own words: a head step that fell short, an expression not yet clear."""

from __future__ import annotations

from liveness.challenges import EXPRESSIONS, HEAD_MOVEMENTS, StepCode

from tests.local.test_web_catalogues import LANGUAGES, catalogue


def test_pose_coaching_names_every_head_step() -> None:
    for language in LANGUAGES:
        assert {code.value for code in (StepCode.LOOK_STRAIGHT, *HEAD_MOVEMENTS)} <= catalogue(language)["pose"].keys()


def test_expression_coaching_names_every_expression() -> None:
    for language in LANGUAGES:
        assert {code.value for code in EXPRESSIONS} <= catalogue(language)["expression"].keys()
