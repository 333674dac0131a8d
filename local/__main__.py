"""``python -m local`` (``make run``): serve the real handler at http://127.0.0.1:8000, offline.

Flags win over the environment (HOST, PORT, DATA_DIR, WORKERS, LOCAL_REFUSAL_PENALTY_MS), which wins over the
defaults. Everything else the function reads (ANALYZER, STORAGE, ALLOWED_ORIGINS, STEP_COUNT, thresholds...)
comes from the environment, with local defaults: ANALYZER=local, STORAGE=file.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from . import REPO_ROOT
from .tarpit import DEFAULT_PENALTY_MS, PENALTY_ENV, RefusalTarpit, TarpitRules, penalty_seconds

_RULES = TarpitRules()

if TYPE_CHECKING:
    from liveness.settings import Settings

    from .server import LocalServer


def parse_args(argv: Sequence[str] | None, env: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local", description="Serve the liveness API locally (no AWS, no network)."
    )
    parser.add_argument(
        "--host", default=env.get("HOST", "127.0.0.1"), help="interface to listen on (env HOST; default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=int(env.get("PORT", "8000")), help="port (env PORT; default 8000)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env.get("DATA_DIR", str(REPO_ROOT / ".local-data"))),
        help="where sessions and the evidence archive are kept (env DATA_DIR; default .local-data/ in the repo)",
    )
    parser.add_argument(
        "--workers",
        default=env.get("WORKERS"),
        help="worker processes, each its own Lambda environment with its own models (env WORKERS; default: one per "
        "CPU core; 1 runs the function in the server's process)",
    )
    parser.add_argument(
        "--refusal-penalty-ms",
        default=env.get(PENALTY_ENV),
        help=f"how long a refusal (4xx) is held once one peer has had {_RULES.allowance} in {_RULES.window:.0f} s, "
        f"doubling up to {_RULES.longest_hold_factor:.0f} times that; 0 turns it off (env {PENALTY_ENV}; default "
        f"{DEFAULT_PENALTY_MS})",
    )
    parser.add_argument(
        "--web-dir", type=Path, default=REPO_ROOT / "web", help="static web client served at / if it exists"
    )
    return parser.parse_args(argv)


def quiet_function_logs() -> None:
    """The function's JSON logs and EMF metrics are for CloudWatch; locally the one-line request log is
    enough. Set POWERTOOLS_LOG_LEVEL=INFO to see them. Must run before the handler is imported."""
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, os.environ)
    quiet_function_logs()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from .server import LocalServer, local_settings  # after the logging set-up: importing it builds the loggers

    data_dir = args.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = local_settings(data_dir=data_dir, port=args.port)
    from .workers import worker_count

    try:
        workers = worker_count(args.workers)
    except ValueError as error:
        print(f"--workers/WORKERS: {error}", file=sys.stderr)
        return 2
    try:
        tarpit = refusal_tarpit(args.refusal_penalty_ms)
    except ValueError as error:
        print(f"--refusal-penalty-ms/{PENALTY_ENV}: {error}", file=sys.stderr)
        return 2
    try:
        server = LocalServer(
            settings, host=args.host, port=args.port, web_dir=args.web_dir, workers=workers, tarpit=tarpit
        )
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}. Try --port.", file=sys.stderr)
        return 1
    server.warm_up()
    print_banner(server, settings, args.web_dir)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    server.serve_forever()  # returns on Ctrl-C, with the socket closed
    print("\nStopped.")
    return 0


def refusal_tarpit(raw: str | None) -> RefusalTarpit | None:
    """The tarpit for refusals (local/tarpit.py), or None when the penalty is 0."""
    penalty = penalty_seconds(raw)
    return RefusalTarpit(TarpitRules(penalty=penalty)) if penalty else None


def _interrupt(_signum: int, _frame: object) -> None:
    # Ctrl-C, `kill` and container stops all end the server the same way, even when started in the
    # background (where a shell hands the process SIGINT ignored).
    raise KeyboardInterrupt


def print_banner(server: LocalServer, settings: Settings, web_dir: Path) -> None:
    web = f"{web_dir} at /" if web_dir.is_dir() else "none (no web/ directory yet)"
    print(f"Liveness API (local mode) on {server.url}")
    print(f"  analyzer:   {server.deps.analyzer.name} (ANALYZER={settings.analyzer})")
    workers = server.workers.count if server.workers else 1
    print(f"  workers:    {workers} process{'es' if workers > 1 else ''} (WORKERS), each its own Lambda environment")
    print(f"  storage:    {settings.storage}, data dir {settings.data_dir} (archive/, sessions/)")
    print(f"  origins:    {', '.join(settings.allowed_origins)}")
    print(f"  web client: {web}")
    print("  caller:     local-dev-user (send the X-Local-User header to act as someone else)")
    print(f"  refusals:   {_tarpit_line(server.tarpit)} ({PENALTY_ENV})")
    if web_dir.is_dir():
        print(f"open {server.url}  (the web client: no sign-in, you are local-dev-user)")
    print("Press Ctrl-C to stop.", flush=True)


def _tarpit_line(tarpit: RefusalTarpit | None) -> str:
    if tarpit is None:
        return "answered at once"
    rules = tarpit.rules
    return (
        f"past {rules.allowance} in {rules.window:.0f} s to one peer, each held {rules.penalty * 1000:.0f} ms "
        f"(up to {rules.longest_hold * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    sys.exit(main())
