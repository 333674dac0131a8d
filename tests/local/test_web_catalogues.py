"""The page's message catalogues (web/i18n/*.json): every code a person can meet has words in every language."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from liveness.challenges import ReasonCode, StepCode
from liveness.errors import ErrorCode
from liveness.sessions.model import FailureReason

CATALOGUES = Path(__file__).resolve().parents[2] / "web" / "i18n"
LANGUAGES = ("en", "es")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalogue(language: str) -> dict[str, Any]:
    return json.loads((CATALOGUES / f"{language}.json").read_text(encoding="utf-8"))


def flat(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": "text"}}`` -> ``{"a.b": "text"}``: the keys the page looks texts up by."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def required_keys() -> set[str]:
    """Every code the server can hand the page, under the section the page reads it from."""
    return (
        {f"steps.{code.value}" for code in StepCode}
        | {f"failedStep.{code.value}" for code in StepCode}
        | {f"coaching.{code.value}" for code in ReasonCode}
        | {f"failures.{reason.value}" for reason in FailureReason}
        | {f"errors.{code.value}" for code in ErrorCode}
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_code_has_words_in_the_catalogue(language: str) -> None:
    texts = flat(catalogue(language))
    missing = sorted(required_keys() - texts.keys())
    assert missing == [], f"web/i18n/{language}.json has no text for {missing}"
    empty = sorted(key for key, text in texts.items() if not str(text).strip())
    assert empty == []


def test_the_languages_have_the_same_keys_and_placeholders() -> None:
    english, spanish = (flat(catalogue(language)) for language in LANGUAGES)
    assert sorted(english.keys() ^ spanish.keys()) == []
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(spanish[key])), key


def test_the_translation_is_not_english_left_over() -> None:
    english, spanish = (flat(catalogue(language)) for language in LANGUAGES)
    same = sorted(key for key, text in english.items() if len(text) > 12 and spanish[key] == text)
    assert same == []


def test_the_eyes_closed_step_says_a_tone_tells_when_to_open_them() -> None:
    assert "tone" in catalogue("en")["steps"]["CLOSE_EYES"]
    assert "tono" in catalogue("es")["steps"]["CLOSE_EYES"]
