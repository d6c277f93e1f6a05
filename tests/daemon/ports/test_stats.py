"""Stats.once: logged once per key, and the set of keys stays bounded over a long run of bad input."""

from __future__ import annotations

from daemon.ports.stats import ONCE_MAX, OnceSet, Stats


def test_once_is_true_the_first_time_only() -> None:
    s = Stats()
    assert s.once(("fault", "s1", "temperature", "85"))
    assert not s.once(("fault", "s1", "temperature", "85"))
    assert s.once(("fault", "s2", "temperature", "85"))


def test_the_once_keys_stay_bounded() -> None:
    """A sensor whose reasons vary without end (a value in the note) must not grow memory for ever."""
    s = Stats()
    for i in range(3 * ONCE_MAX):
        assert s.once(("rejected", f"s{i % 50}", f"value {i}"))
    assert len(s._seen) == ONCE_MAX
    assert not s.once(("rejected", f"s{(3 * ONCE_MAX - 1) % 50}", f"value {3 * ONCE_MAX - 1}"))  # newest kept


def test_keep_forgets_what_the_predicate_rejects() -> None:
    o = OnceSet(cap=10)
    o.first(("bad", "t"))
    o.first(("conn", "lost", "x"))
    o.keep(lambda k: k[0] == "bad")
    assert not o.first(("bad", "t")) and o.first(("conn", "lost", "x"))
