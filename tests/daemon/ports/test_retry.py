"""The one backoff: doubling up to a ceiling, reset after a success, equal jitter, and the stored-count form."""

from __future__ import annotations

import random

from daemon.ports.retry import Backoff


def test_doubles_up_to_the_ceiling_and_starts_over_after_reset() -> None:
    b = Backoff(1.0, 60.0)
    assert [b.next() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    b.reset()
    assert b.upcoming == 1.0 and b.next() == 1.0 and b.upcoming == 2.0


def test_upcoming_is_what_next_gives_without_jitter() -> None:
    b = Backoff(0.5, 30.0)
    for _ in range(10):
        expected = b.upcoming
        assert b.next() == expected


def test_other_factor_and_a_first_delay_above_the_ceiling() -> None:
    b = Backoff(1.0, 10.0, factor=3)
    assert [b.next() for _ in range(4)] == [1, 3, 9, 10]
    b = Backoff(2.0, 1.0)  # a modem config may say so: the first wait is kept, then the ceiling
    assert [b.next() for _ in range(3)] == [2.0, 1.0, 1.0]


def test_equal_jitter_keeps_at_least_half_and_draws_once_a_delay() -> None:
    b = Backoff(1.0, 8.0, jitter=True, rng=random.Random(1))
    rng = random.Random(1)
    for base in (1, 2, 4, 8, 8):
        got = b.next()
        assert got == base * (0.5 + 0.5 * rng.random())
        assert base / 2 <= got <= base


def test_nth_is_the_stateless_form() -> None:
    b = Backoff(60.0, 900.0)
    assert [b.nth(n) for n in (0, 1, 2, 3, 4, 5, 6)] == [60, 60, 120, 240, 480, 900, 900]
    assert b.upcoming == 60.0  # nth does not move the state
