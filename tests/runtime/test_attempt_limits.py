"""The per-user attempt policy (docs/security.md: "Attempt limits"): open sessions, creations a minute, and a lock
after too many failed checks, on DynamoDB (moto) and on files, through the API; a race of parallel creates; and
the record's rules with an injected clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from liveness.errors import ErrorCode, LivenessError, unavailable
from liveness.limits import AttemptLimits, SessionLimits
from liveness.sessions.attempts import counted_failures, empty, owner_digest, refusal, with_created, with_outcome
from liveness.sessions.service import create_session
from liveness.sessions.store import SessionConflict
from liveness.settings import Settings, attempt_limits_from_env
from moto import mock_aws
from moto.dynamodb.models.table import Table

from testkit.aws import OWNER
from tests.runtime.session_helpers import (  # noqa: F401  (fixtures)
    START,
    Rig,
    aws_rig,
    fake_aws_env,
    file_rig,
    start_session,
    wrong_face_for,
)

LIMITS = AttemptLimits()  # the deployment defaults: 3 open, 5 failures a day, 10 creations a minute
# One frame per step: a frame that misses the neutral start fails the session (ATTEMPT_LIMIT) at once.
ONE_FRAME_A_STEP = Settings(light_challenge="off", session_limits=SessionLimits(step_max_frames=1))
TTL = SessionLimits().session_ttl_seconds


@pytest.fixture(params=["aws", "file"])
def backend(request: pytest.FixtureRequest, fake_aws_env: None) -> Iterator[str]:
    if request.param == "aws":
        with mock_aws():
            yield "aws"
    else:
        yield "file"


def make_rig(kind: str, tmp_path: Path, settings: Settings = ONE_FRAME_A_STEP) -> Rig:
    return aws_rig(settings) if kind == "aws" else file_rig(tmp_path, settings)


def fail_a_session(rig: Rig, client: Any = None) -> str:
    """A session that FAILS through the frame route: its only neutral-start frame misses the step."""
    client = client or rig.client
    created = client.create()
    assert created.status == 201, created.body
    session_id = created.body["sessionId"]
    rig.analyzer.script(wrong_face_for("LOOK_STRAIGHT"))
    client.frame(session_id, seed=7)
    assert rig.store.get(session_id).status.value == "FAILED"
    return session_id


def stored_failures(rig: Rig, owner: str = OWNER) -> dict[str, float]:
    record = rig.store.get_attempts(owner_digest(owner))
    return counted_failures(record, rig.clock().timestamp(), rig.deps.settings.attempt_limits)


def retry_after(reply: Any) -> int:
    return int(reply.headers["Retry-After"][0])


# ---------------------------------------------------------------------------------------------------------
# Through the API, on both stores


def test_the_open_sessions_of_one_user_are_capped(backend: str, tmp_path: Path) -> None:
    rig = make_rig(backend, tmp_path)
    opened = [start_session(rig)["sessionId"] for _ in range(LIMITS.max_open_sessions)]

    refused = rig.client.create()
    assert refused.status == 429 and refused.body["code"] == "TOO_MANY_SESSIONS", refused.body
    assert 0 < retry_after(refused) <= TTL  # the oldest open session's deadline
    assert rig.as_user("someone-else").create().status == 201  # the limits are per user

    rig.analyzer.script(wrong_face_for("LOOK_STRAIGHT"))
    rig.client.frame(opened[0], seed=3)  # one closes (FAILED): its slot is free again
    assert rig.client.create().status == 201


def test_session_creation_per_minute_is_capped(backend: str, tmp_path: Path) -> None:
    settings = Settings(light_challenge="off", attempt_limits=AttemptLimits(max_open_sessions=50))
    rig = make_rig(backend, tmp_path, settings)
    for _ in range(LIMITS.max_sessions_per_minute):
        start_session(rig)
        rig.clock.advance(1)

    refused = rig.client.create()
    assert refused.status == 429 and refused.body["code"] == "TOO_MANY_SESSIONS", refused.body
    assert retry_after(refused) == 60 - LIMITS.max_sessions_per_minute  # when the first creation leaves the minute
    rig.clock.advance(retry_after(refused))
    assert rig.client.create().status == 201


def test_failed_checks_lock_the_user_until_the_window_rolls_on(backend: str, tmp_path: Path) -> None:
    rig = make_rig(backend, tmp_path)
    failed = []
    for _ in range(LIMITS.max_failed_sessions):
        failed.append(fail_a_session(rig))
        rig.clock.advance(600)  # ten minutes apart

    locked = rig.client.create()
    assert locked.status == 429 and locked.body["code"] == "TOO_MANY_ATTEMPTS", locked.body
    assert "Too many failed checks" in locked.body["message"] and locked.body["requestId"]
    # The lock lifts when the first failure leaves the 24-hour window.
    elapsed = 600 * LIMITS.max_failed_sessions
    assert retry_after(locked) == LIMITS.failure_window_seconds - elapsed
    assert rig.as_user("someone-else").create().status == 201

    # One audit record of the lock, written when the fifth failure met it: who, which sessions, until when.
    keys = rig.keys("audit/attempts/")
    assert len(keys) == 1 and owner_digest(OWNER) in keys[0], keys
    record = json.loads(rig.stored(keys[0]))
    assert record["event"] == "USER_LOCKED" and record["owner"] == OWNER
    assert sorted(record["failedSessions"]) == sorted(failed)
    lifts = START + timedelta(seconds=LIMITS.failure_window_seconds)
    assert record["lockedUntil"] == lifts.isoformat()
    assert rig.client.create().status == 429 and len(rig.keys("audit/attempts/")) == 1  # refused again: same lock

    rig.clock.advance(retry_after(locked) - 1)
    assert rig.client.create().body["code"] == "TOO_MANY_ATTEMPTS"
    rig.clock.advance(1)
    assert rig.client.create().status == 201


def test_a_session_left_to_expire_counts_as_failed_read_or_not(backend: str, tmp_path: Path) -> None:
    """Abandoning a session that is going badly is no way around the lock: an open session counts as failed
    from its deadline, whether or not anyone reads it afterwards."""
    rig = make_rig(backend, tmp_path)
    read_later = start_session(rig)["sessionId"]
    for _ in range(2):
        start_session(rig)
    rig.clock.advance(TTL + 1)
    assert len(stored_failures(rig)) == 3
    reply = rig.client.get(read_later)
    assert reply.body["status"] == "EXPIRED"
    for _ in range(3):  # the reads commit EXPIRED once, and reread it: still one failure each
        rig.client.get(read_later)
    assert len(stored_failures(rig)) == 3

    for _ in range(2):
        start_session(rig)
    rig.clock.advance(TTL + 1)
    locked = rig.client.create()
    assert locked.status == 429 and locked.body["code"] == "TOO_MANY_ATTEMPTS", locked.body
    assert len(rig.keys("audit/attempts/")) == 1  # met without a close: recorded by the refused create


def test_a_failure_is_counted_once_whoever_reads_it(backend: str, tmp_path: Path) -> None:
    rig = make_rig(backend, tmp_path)
    session_id = fail_a_session(rig)
    for _ in range(3):
        assert rig.client.get(session_id).body["status"] == "FAILED"
    rig.analyzer.script(wrong_face_for("LOOK_STRAIGHT"))
    assert rig.client.frame(session_id, seed=8).status == 409
    assert list(stored_failures(rig)) == [session_id]


def test_a_close_whose_count_fails_still_answers_and_counts_as_failed_from_its_deadline(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting a close is best effort, like the audit record: the committed answer stands, and the policy fails
    closed (the session stays open in the record, so it counts as failed once its deadline passes)."""
    rig = make_rig(backend, tmp_path)
    session_id = start_session(rig)["sessionId"]
    saves = rig.store.save_attempts

    def store_down(*args: Any, **kwargs: Any) -> None:
        raise unavailable(ErrorCode.STORAGE_UNAVAILABLE, "The session store")

    monkeypatch.setattr(rig.store, "save_attempts", store_down)
    rig.analyzer.script(wrong_face_for("LOOK_STRAIGHT"))  # its only frame misses the step: FAILED
    reply = rig.client.frame(session_id, seed=4)
    assert reply.status == 200 and reply.body["status"] == "FAILED", reply.body
    monkeypatch.setattr(rig.store, "save_attempts", saves)
    assert stored_failures(rig) == {}  # not counted yet: still open in the record
    rig.clock.advance(TTL)
    assert list(stored_failures(rig)) == [session_id]


def test_deployment_limits_come_from_the_environment() -> None:
    env = {"MAX_OPEN_SESSIONS": "2", "MAX_FAILED_SESSIONS": "7", "FAILURE_WINDOW_SECONDS": "3600"}
    assert Settings.from_env(env).attempt_limits == AttemptLimits(
        max_open_sessions=2, max_failed_sessions=7, failure_window_seconds=3600
    )
    assert Settings.from_env({}).attempt_limits == LIMITS
    with pytest.raises(ValueError, match="MAX_SESSIONS_PER_MINUTE must be at least 1"):
        attempt_limits_from_env({"MAX_SESSIONS_PER_MINUTE": "0"})


def test_an_attempt_record_is_written_only_over_the_version_it_was_read_at(backend: str, tmp_path: Path) -> None:
    store = make_rig(backend, tmp_path).store
    first = replace(empty(OWNER), version=1)
    store.save_attempts(first, expected_version=0, keep_until=2_000_000_000)
    with pytest.raises(SessionConflict):
        store.save_attempts(first, expected_version=0, keep_until=2_000_000_000)  # a second first write
    second = replace(first, creations=(1.0,), version=2)
    store.save_attempts(second, expected_version=1, keep_until=2_000_000_000)
    with pytest.raises(SessionConflict):
        store.save_attempts(replace(first, version=2), expected_version=1, keep_until=2_000_000_000)  # stale
    assert store.get_attempts(owner_digest(OWNER)) == second


# ---------------------------------------------------------------------------------------------------------
# A race of parallel creates: the conditional writes let no cap be passed


@pytest.fixture
def atomic_moto_put_item(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks a PutItem's condition and then writes, without a lock: two threads can both "succeed".
    DynamoDB does both atomically, so moto's put_item is serialised: the race under test is ours, not moto's."""
    atomic = threading.Lock()
    unlocked = Table.put_item

    def put_item_atomically(self: Table, *args: Any, **kwargs: Any) -> Any:
        with atomic:
            return unlocked(self, *args, **kwargs)

    monkeypatch.setattr(Table, "put_item", put_item_atomically)


@pytest.mark.parametrize(
    ("limits", "admitted"),
    [
        (AttemptLimits(), LIMITS.max_open_sessions),
        (AttemptLimits(max_open_sessions=100), LIMITS.max_sessions_per_minute),
    ],
    ids=["open-sessions", "per-minute"],
)
def test_parallel_creates_never_pass_a_cap(
    backend: str, tmp_path: Path, atomic_moto_put_item: None, limits: AttemptLimits, admitted: int
) -> None:
    rig = make_rig(backend, tmp_path, Settings(light_challenge="off", attempt_limits=limits))
    start = threading.Barrier(24)

    def create(_: int) -> str:
        start.wait(timeout=30)
        try:
            return create_session({}, rig.deps, OWNER, "race").session_id
        except LivenessError as error:
            return error.code.value

    with ThreadPoolExecutor(max_workers=24) as pool:
        outcomes = list(pool.map(create, range(24)))

    created = [outcome for outcome in outcomes if outcome not in ("TOO_MANY_SESSIONS", "CONFLICT")]
    assert len(created) == admitted, outcomes
    assert outcomes.count("TOO_MANY_SESSIONS") == 24 - admitted
    record = rig.store.get_attempts(owner_digest(OWNER))
    assert sorted(record.open) == sorted(created) and all(rig.store.get(sid) for sid in created)


# ---------------------------------------------------------------------------------------------------------
# The record's rules, with the clock injected


def test_the_lock_lifts_as_failures_leave_the_rolling_window() -> None:
    limits = AttemptLimits(max_failed_sessions=2, failure_window_seconds=100)
    now = 1_000_000.0
    record = empty(OWNER)
    for index, at in enumerate((now, now + 30, now + 60)):
        record = with_created(record, f"s{index}", START, at, limits)
        record = with_outcome(record, f"s{index}", True, at, at, limits)
    assert refusal(record, now + 60, limits).retry_after == 70  # 3 failures: two must leave (now+30 +100)
    assert refusal(record, now + 129, limits).code.value == "TOO_MANY_ATTEMPTS"
    assert refusal(record, now + 130, limits) is None


def test_an_outcome_applied_again_changes_nothing() -> None:
    now = START.timestamp()
    record = with_created(empty(OWNER), "s1", START + timedelta(seconds=TTL), now, LIMITS)
    failed = with_outcome(record, "s1", True, now + 5, now + 5, LIMITS)
    assert failed.failures == {"s1": now + 5} and not failed.open
    assert with_outcome(failed, "s1", True, now + 9, now + 9, LIMITS) is failed


def test_a_session_that_passes_after_its_deadline_was_counted_is_no_failure() -> None:
    now = START.timestamp()
    deadline = START + timedelta(seconds=TTL)
    record = with_created(empty(OWNER), "s1", deadline, now, LIMITS)
    late = now + TTL + 5
    assert list(counted_failures(record, late, LIMITS)) == ["s1"]  # open at its deadline: failed from then
    passed = with_outcome(record, "s1", False, deadline.timestamp(), late, LIMITS)
    assert counted_failures(passed, late, LIMITS) == {} and not passed.open
