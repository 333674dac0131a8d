"""The refusal tarpit's policy (local/tarpit.py), on a fake clock: the allowance, the hold and its growth, the
window, the bounds on held answers and on remembered peers."""

from __future__ import annotations

import threading

import pytest

from local.tarpit import RefusalTarpit, TarpitRules, is_held_status, peer_key, penalty_seconds

RULES = TarpitRules(penalty=0.5, allowance=5, window=10.0, longest_hold_factor=4.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refuse(tarpit: RefusalTarpit, peer: str, times: int) -> list[float]:
    """``times`` refusals, each released before the next (a client that waits for its answers)."""
    holds = []
    for _ in range(times):
        seconds = tarpit.take(peer)
        if seconds:
            tarpit.release(peer)
        holds.append(seconds)
    return holds


def test_refusals_within_the_allowance_are_answered_at_once_then_held_growing_to_a_cap() -> None:
    tarpit = RefusalTarpit(RULES, clock=FakeClock())
    assert refuse(tarpit, "10.0.0.1", 10) == [0, 0, 0, 0, 0, 0.5, 1.0, 2.0, 2.0, 2.0]


def test_the_count_is_per_peer_address() -> None:
    tarpit = RefusalTarpit(RULES, clock=FakeClock())
    refuse(tarpit, "10.0.0.1", 8)
    assert refuse(tarpit, "10.0.0.2", 6) == [0, 0, 0, 0, 0, 0.5]


def test_refusals_older_than_the_window_no_longer_count() -> None:
    clock = FakeClock()
    tarpit = RefusalTarpit(RULES, clock=clock)
    refuse(tarpit, "10.0.0.1", 3)
    clock.now += 6.0
    assert refuse(tarpit, "10.0.0.1", 3) == [0, 0, 0.5]  # 6 within 10 s
    clock.now += 4.5  # the first three are now 10.5 s old
    assert refuse(tarpit, "10.0.0.1", 3) == [0, 0, 0.5]  # the last three, and these: 4, 5, then 6 within 10 s
    clock.now += 10.0
    assert refuse(tarpit, "10.0.0.1", 5) == [0, 0, 0, 0, 0]


def test_held_answers_are_capped_per_peer_and_in_all() -> None:
    rules = TarpitRules(penalty=0.5, allowance=0, max_held_per_peer=2, max_held=3)
    tarpit = RefusalTarpit(rules, clock=FakeClock())
    assert [tarpit.take("a") > 0 for _ in range(3)] == [True, True, False]  # the third answered at once
    assert tarpit.held("a") == 2
    assert [tarpit.take("b") > 0 for _ in range(2)] == [True, False]  # 3 held in all
    tarpit.release("a")
    assert tarpit.take("b") > 0 and tarpit.held() == 3
    for peer in ("a", "b", "b"):
        tarpit.release(peer)
    assert tarpit.held() == 0 and tarpit.held("a") == 0
    tarpit.release("a")  # one release too many changes nothing
    assert tarpit.held() == 0


def test_the_least_recently_seen_peer_is_forgotten_past_the_bound() -> None:
    tarpit = RefusalTarpit(TarpitRules(penalty=0.5, allowance=1, max_peers=3), clock=FakeClock())
    refuse(tarpit, "a", 2)
    for peer in ("b", "c", "d"):
        refuse(tarpit, peer, 1)
    assert tarpit.peers() == 3
    assert refuse(tarpit, "a", 2) == [0, 0.5]  # "a" was forgotten: its allowance starts again
    assert refuse(tarpit, "d", 1) == [0.5]  # "d" was remembered


def test_a_zero_penalty_holds_nothing_and_keeps_no_state() -> None:
    tarpit = RefusalTarpit(TarpitRules(penalty=0), clock=FakeClock())
    assert refuse(tarpit, "a", 20) == [0] * 20
    assert tarpit.peers() == 0


def test_hold_sleeps_the_penalty_and_gives_its_place_back_even_when_interrupted() -> None:
    slept: list[float] = []
    tarpit = RefusalTarpit(TarpitRules(penalty=0.5, allowance=1), clock=FakeClock(), sleep=slept.append)
    assert [tarpit.hold("a") for _ in range(3)] == [0, 0.5, 1.0]
    assert slept == [0.5, 1.0] and tarpit.held() == 0

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    tarpit = RefusalTarpit(TarpitRules(penalty=0.5, allowance=0), clock=FakeClock(), sleep=interrupted)
    with pytest.raises(KeyboardInterrupt):
        tarpit.hold("a")
    assert tarpit.held() == 0


def test_parallel_refusals_leave_the_counts_consistent() -> None:
    rules = TarpitRules(penalty=0.5, allowance=0, max_held_per_peer=1000, max_held=1000)
    tarpit = RefusalTarpit(rules, sleep=lambda _seconds: None)
    threads = [
        threading.Thread(target=lambda peer=f"10.0.0.{index % 3}": [tarpit.hold(peer) for _ in range(300)])
        for index in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert tarpit.held() == 0 and tarpit.peers() == 3


def test_held_statuses_are_the_client_errors_but_a_timeout() -> None:
    assert [is_held_status(code) for code in (400, 404, 413, 415, 422, 429)] == [True] * 6
    assert [is_held_status(code) for code in (200, 201, 204, 304, 408, 500, 503)] == [False] * 7


def test_the_penalty_setting_is_milliseconds_with_zero_for_off() -> None:
    assert penalty_seconds(None) == penalty_seconds("") == 0.5
    assert penalty_seconds("0") == 0 and penalty_seconds("1200") == 1.2
    for wrong in ("-1", "10001", "half"):
        with pytest.raises(ValueError):
            penalty_seconds(wrong)


def test_held_answers_take_at_most_a_quarter_of_the_connection_cap() -> None:
    from local.connections import ConnectionLimits

    assert TarpitRules().max_held <= ConnectionLimits().max_connections // 4


def test_who_is_one_peer() -> None:
    assert peer_key("127.0.0.1") == peer_key("127.3.2.1") == peer_key("::1") == peer_key("::ffff:127.0.0.9")
    assert peer_key("203.0.113.7") == "203.0.113.7" != peer_key("203.0.113.8")
    assert peer_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert peer_key("2001:db8:1:2:aaaa::1") == peer_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert peer_key("2001:db8:1:3::1") != peer_key("2001:db8:1:2::1")
    assert peer_key("not-an-address") == "not-an-address"
