"""WindowWatch on traffic described by hand: what is a broker stall, what is only a quiet center or a busy one."""

from __future__ import annotations

from drivers.sensors.mqtt.window import BURST_S, QUIET_S, WindowWatch


def stall(w: WindowWatch, t: float, window: int, burst: int | None = None) -> tuple[float, bool]:
    """`window` messages arrive, the broker stops (silence until the timed commit), the acks go out and the
    broker's queue (`burst` messages, default the window) arrives at once; the time after and whether it changed."""
    changed = False
    for i in range(window):
        changed |= w.arrived(t + i * 0.01, 1, i + 1)
    t += 5.0  # the commit window passes with the broker stopped
    w.acked(t, window)
    changed |= w.arrived(t + 0.01, burst or window, burst or window)
    return t + 0.02, changed


def test_two_stalls_at_the_same_count_are_the_window() -> None:
    w = WindowWatch()
    t, changed = stall(w, 0.0, 8)
    assert not changed and w.learned is None  # one may be chance
    t, changed = stall(w, t, 8)
    assert changed and w.learned == 8


def test_stalls_at_different_counts_are_not_a_window() -> None:
    w = WindowWatch()
    t, _ = stall(w, 0.0, 8)
    t, _ = stall(w, t, 11)
    assert w.learned is None
    _, changed = stall(w, t, 11)
    assert changed and w.learned == 11  # the same count twice in a row


def test_a_quiet_center_is_not_a_stall() -> None:
    """Silence before the acks, but nothing comes after them: low traffic, not a stopped broker."""
    w = WindowWatch()
    t = 0.0
    for _ in range(3):
        for i in range(8):
            w.arrived(t + i, 1, i + 1)  # one a second
        t += 8 + QUIET_S
        w.acked(t, 8)
        assert not w.arrived(t + BURST_S + 1.0, 1, 1)  # the next one long after
        t += BURST_S + 2.0
    assert w.learned is None


def test_a_busy_broker_without_silence_is_not_a_stall() -> None:
    w = WindowWatch()
    t = 0.0
    for _ in range(3):
        for i in range(20):
            w.arrived(t, 1, i + 1)
            t += QUIET_S / 4  # never quiet for QUIET_S
        w.acked(t, 20)
        w.arrived(t + 0.01, 10, 10)
    assert w.learned is None


def test_a_broker_that_sends_past_the_window_learned_is_forgotten() -> None:
    w = WindowWatch()
    t, _ = stall(w, 0.0, 8)
    t, _ = stall(w, t, 8)
    assert w.learned == 8
    assert w.arrived(t, 1, 9)  # nine unacknowledged: 8 was not its window
    assert w.learned is None


def test_only_a_smaller_window_replaces_the_one_learned() -> None:
    w = WindowWatch()
    t, _ = stall(w, 0.0, 8)
    t, _ = stall(w, t, 8)
    t, _ = stall(w, t, 6)
    t, changed = stall(w, t, 6)
    assert changed and w.learned == 6
    t, _ = stall(w, t, 6)
    _, changed = stall(w, t, 6)
    assert not changed and w.learned == 6  # the same again changes nothing


def test_the_rest_of_one_commits_acks_is_one_look() -> None:
    """A commit's acks go out in several calls within BURST_S: they are one look, not a new one each."""
    w = WindowWatch()
    for n in range(2):
        t = n * 10.0
        for i in range(8):
            w.arrived(t + i * 0.01, 1, i + 1)
        w.acked(t + 5.0, 8)
        w.acked(t + 5.0 + BURST_S / 4, 4)
        w.arrived(t + 5.0 + BURST_S / 2, 8, 8)
    assert w.learned == 8


def test_a_gateway_that_publishes_right_after_each_commit_is_not_taken_for_a_window() -> None:
    """A gateway sends its 8 sensors at once every 60.2 s against a 60 s window: each timed commit's acks go out
    just before its next burst, which looks like a stall. After the first, the driver commits on `stalled` 1.1 s
    after the next burst instead; the one after comes a minute later, so no second stall is seen."""
    w = WindowWatch()
    t = 0.0
    for _ in range(6):
        w.arrived(t, 8, 8)
        if w.stalled(t + 1.1, 8):  # the driver's check after the messages stopped at the suspected count
            w.acked(t + 1.15, 8)
        else:
            w.acked(t + 60.0, 8)  # the timed commit, 0.2 s before the next burst
        t += 60.2
    assert w.learned is None


def test_a_strict_broker_is_learned_at_its_second_stall_without_waiting_out_the_window() -> None:
    w = WindowWatch()
    t, _ = stall(w, 0.0, 8)  # the first stall waits out the window; the broker refills the 8 at once
    assert w.suspect() == 8 and not w.stalled(t, 8)
    assert w.stalled(t + 1.1, 8)  # stopped at 8 again: the driver commits now
    w.acked(t + 1.15, 8)
    assert w.arrived(t + 1.16, 8, 8)  # the broker's queue follows the acks
    assert w.learned == 8 and w.suspect() is None
