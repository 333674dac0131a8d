"""``python -m local``: settings precedence, and a real start, request and Ctrl-C stop in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from local.__main__ import parse_args, refusal_tarpit
from tests.local.support import call

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_flags_win_over_the_environment_which_wins_over_defaults() -> None:
    defaults = parse_args([], {})
    assert (defaults.host, defaults.port, defaults.data_dir) == ("127.0.0.1", 8000, REPO_ROOT / ".local-data")
    from_env = parse_args([], {"HOST": "0.0.0.0", "PORT": "9000", "DATA_DIR": "/tmp/x"})
    assert (from_env.host, from_env.port, from_env.data_dir) == ("0.0.0.0", 9000, Path("/tmp/x"))
    flags = parse_args(["--port", "9100", "--data-dir", "/tmp/y"], {"PORT": "9000", "DATA_DIR": "/tmp/x"})
    assert (flags.port, flags.data_dir) == (9100, Path("/tmp/y"))


def test_python_m_local_starts_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "ALLOWED_ORIGINS": "http://app.example.test", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    env.pop("ANALYZER", None)
    env["WORKERS"] = "2"  # the function runs in two worker processes, which Ctrl-C stops too
    command = [sys.executable, "-m", "local", "--port", "0", "--data-dir", str(tmp_path / "data")]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        banner = [process.stdout.readline() for _ in range(10)]  # type: ignore[union-attr]
        assert banner[0].startswith("Liveness API (local mode) on http://127.0.0.1:"), banner
        assert banner[8].startswith("open http://127.0.0.1:"), banner  # the web client, at /
        assert "each held 500 ms" in banner[7], banner  # the refusal tarpit, on by default
        assert "local-mesh" in banner[1] and "workers:    2 processes" in banner[2], banner
        assert str(tmp_path / "data") in banner[3], banner
        url = banner[0].rsplit(" ", 1)[-1].strip()
        assert call(url, "POST", "/sessions", {}).status == 201
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0 and "Stopped." in out
    assert "POST /sessions 201" in err and "Traceback" not in err
    assert list((tmp_path / "data" / "sessions").glob("*.json"))


def test_refusals_are_held_by_default_and_a_zero_penalty_turns_it_off() -> None:
    assert parse_args([], {"LOCAL_REFUSAL_PENALTY_MS": "750"}).refusal_penalty_ms == "750"
    assert parse_args(["--refusal-penalty-ms", "0"], {"LOCAL_REFUSAL_PENALTY_MS": "750"}).refusal_penalty_ms == "0"
    default = refusal_tarpit(parse_args([], {}).refusal_penalty_ms)
    assert default is not None and default.rules.penalty == 0.5
    assert refusal_tarpit("0") is None
    with pytest.raises(ValueError):
        refusal_tarpit("-5")
