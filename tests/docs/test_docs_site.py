"""The docs site builds strictly, its generated tables cover the code, and the README stays short and linked."""

from __future__ import annotations

import dataclasses
import html as html_lib
import inspect
import re
from pathlib import Path

import pytest
from liveness.challenges import ReasonCode
from liveness.settings import ATTEMPT_ENV, LIGHT_ENV, SESSION_ENV, THRESHOLD_ENV, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
README_MAX_BYTES = 10 * 1024

NO_MKDOCS = "mkdocs is not installed in this interpreter: pip install -r requirements-docs.txt"


def _config(site_dir: Path):
    config = pytest.importorskip("mkdocs.config", reason=NO_MKDOCS)
    return config.load_config(str(REPO_ROOT / "mkdocs.yml"), site_dir=str(site_dir), strict=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    config = _config(site_dir)
    build = pytest.importorskip("mkdocs.commands.build", reason=NO_MKDOCS)
    build.build(config)  # strict: any warning (a broken link, a page not in nav) aborts the build
    return site_dir


def _text(site: Path, page: str) -> str:
    return (site / page / "index.html").read_text(encoding="utf-8")


def test_every_reason_code_is_in_the_generated_table(site: Path) -> None:
    html = _text(site, "sessions")
    missing = [code.value for code in ReasonCode if f"<code>{code.value}</code>" not in html]
    assert not missing


def test_every_environment_variable_is_in_the_generated_tables(site: Path) -> None:
    read_directly = re.findall(r'env\.get\("([A-Z_]+)"', inspect.getsource(Settings.from_env))
    assert read_directly
    html = _text(site, "sessions")
    missing = [
        name
        for name in [*read_directly, *SESSION_ENV, *THRESHOLD_ENV, *LIGHT_ENV, *ATTEMPT_ENV]
        if f"<code>{name}</code>" not in html
    ]
    assert not missing


def test_every_checkov_skip_is_in_the_generated_table(site: Path) -> None:
    from cdk_app.checkov_skips import CHECKOV_SKIPS

    html = _text(site, "security")
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    listed = {
        (check, resource, " ".join(html_lib.unescape(reason).split()))
        for row in rows
        for check, resource, reason in re.findall(
            r"<td><code>(CKV_[A-Z_0-9]+)</code></td>\s*<td><code>([^<]+)</code></td>\s*<td>(.*?)</td>", row, flags=re.S
        )
    }
    # Every skip with its reason, word for word (the reasons carry no markup).
    assert {
        (skip.check, html_lib.unescape(skip.resource), " ".join(skip.reason.split())) for skip in CHECKOV_SKIPS
    } <= listed


def test_every_route_is_in_the_generated_contract_table(site: Path) -> None:
    from liveness.openapi import openapi_document

    html = _text(site, "api")
    missing = [path for path in openapi_document()["paths"] if f"<code>{path}</code>" not in html]
    assert not missing


def test_a_variable_without_a_meaning_fails_the_build(tmp_path: Path) -> None:
    (hooks,) = _config(tmp_path)["hooks"].values()

    @dataclasses.dataclass(frozen=True)
    class Uncommented:
        knob: float = 1.0

    with pytest.raises(ValueError, match="KNOB"):
        hooks.env_rows({"KNOB": "knob"}, Uncommented)


def test_the_readme_is_short() -> None:
    assert len(README.read_bytes()) <= README_MAX_BYTES


def test_the_readme_links_only_to_pages_of_the_site() -> None:
    nav_pages = set(re.findall(r":\s*(\S+\.md)\s*$", (REPO_ROOT / "mkdocs.yml").read_text(), flags=re.M))
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text(encoding="utf-8"))
    local = [link for link in links if "://" not in link]
    assert local
    for link in local:
        assert (REPO_ROOT / link).is_file(), link
        if link.endswith(".md"):
            assert link.startswith("docs/") and link.removeprefix("docs/") in nav_pages, link
