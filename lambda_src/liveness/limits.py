"""A session's size and time limits, shared by the settings and the session state machine."""

from __future__ import annotations

from dataclasses import dataclass

# Every analysed frame is kept in the session's item (its frame log), and DynamoDB refuses items over 400 KB.
# A frame record is under 1 KB, so this cap keeps the item near 100 KB at most (a test measures it).
MAX_FRAMES_CAP = 100


@dataclass(frozen=True)
class SessionLimits:
    """Defaults sized for a person: 2-4 s per step at the 3-4 frames a second a client sends (docs/sessions.md: pace)."""

    step_count: int = 3  # drawn steps, after the neutral start
    step_time_limit_seconds: int = 10
    session_ttl_seconds: int = 120
    max_frames: int = 60  # per session, accepted and rejected alike; bounds the analyzer spend and the frame log
    # Per step: a step time limit of frames at 3 a second (the web client spreads them over it), so a hard step
    # cannot eat the whole session, and a person who takes the full time is not cut short.
    step_max_frames: int = 30
    retention_seconds: int = 86_400  # how long after expiry the DynamoDB TTL removes the item
    # Light challenges (FOLLOW_LIGHT) per session that may fail to pass, or expire, before the session fails.
    light_max_attempts: int = 2


@dataclass(frozen=True)
class AttemptLimits:
    """Per-user limits on sessions, an anti-fraud control (docs/security.md: "Attempt limits"): an attacker who
    iterates on a fake pays for each try. Sized so a person who fails twice and retries is never held up."""

    # Sessions one user may have open at once: a person needs one, a retry after a closed tab a second.
    max_open_sessions: int = 3
    # Sessions one user may fail (FAILED, or EXPIRED unfinished) within FAILURE_WINDOW_SECONDS before later creates
    # answer 429 TOO_MANY_ATTEMPTS until the oldest counted failure leaves the window.
    max_failed_sessions: int = 5
    failure_window_seconds: int = 86_400  # the rolling window failures count in (a day: one lock per day at most)
    # Sessions one user may create within any 60 seconds: a person takes about 30 s per session.
    max_sessions_per_minute: int = 10
