"""The line protocol: exactly what influxdb-client's Point writes, with the series prefix cached."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.ports.errors import SinkError
from daemon.ports.model import Quality, Quantity, Reading
from drivers.sinks.influxdb.points import encode, to_point

names = st.text(min_size=1, max_size=12)  # spaces, commas, '=', quotes, backslashes, 冷库 ...
readings = st.builds(
    Reading,
    site=names, zone=st.sampled_from(["room1", "room 2,东", "z=3"]), sensor=names,
    quantity=st.sampled_from(list(Quantity)),
    value=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(-50, 50).map(float)),
    ts=st.integers(0, 4_000_000_000_000).map(lambda ms: ms / 1000),
    quality=st.sampled_from(list(Quality)), note=st.text(max_size=20),
)
COMMODITIES = {"room1": "kiwifruit", "z=3": "meat frozen"}


@settings(max_examples=150, deadline=None)
@given(st.lists(readings, min_size=1, max_size=8))
def test_encode_is_what_point_writes(rs: list[Reading]) -> None:
    expected = [to_point(r, COMMODITIES.get(r.zone)).to_line_protocol() for r in rs]
    if not all(expected):
        with pytest.raises(SinkError):
            encode("t", rs, COMMODITIES)
        return
    assert encode("t", rs, COMMODITIES).decode() == "\n".join(expected)


def test_whole_floats_stay_floats_and_ms_is_exact() -> None:
    r = Reading("c1", "room1", "s1", Quantity.TEMPERATURE, 4.0, 1_763_800_000.123)
    assert encode("t", [r], COMMODITIES) == (
        b"readings,commodity=kiwifruit,sensor=s1,site=c1,zone=room1 temperature=4 1763800000123"
    )  # "4" without "i" is a float in line protocol: no field type conflict with 4.5


def test_fault_goes_to_sensor_faults_with_its_note() -> None:
    r = Reading("c1", "room1", "s1", Quantity.TEMPERATURE, 85.0, 1_763_800_000.0, Quality.FAULT, 'says "85"')
    assert encode("t", [r], {}) == (
        b'sensor_faults,quantity=temperature,sensor=s1,site=c1,zone=room1 note="says \\"85\\"",value=85 1763800000000'
    )


@settings(max_examples=60, deadline=None)
@given(st.lists(readings, min_size=1, max_size=8))
def test_encode_rows_matches_encode_byte_for_byte(tmp_path_factory: pytest.TempPathFactory, rs: list[Reading]) -> None:
    """The forwarder's fast path (journal rows, no Reading per row) writes exactly what encode() writes."""
    from daemon.storage.journal import Journal
    from drivers.sinks.influxdb.points import encode_rows

    j = Journal(tmp_path_factory.mktemp("rows") / "j.db")
    stored = j.readings.append(rs)
    rows = j.readings.read_rows_after(0, 100)
    commodities = {"room1": "kiwifruit", "z=3": "plum 李"}
    try:
        want = encode("t", [j.readings.row_reading(r) for r in rows], commodities)
    except SinkError:
        with pytest.raises(SinkError):
            encode_rows("t", rows, j.readings, commodities)
    else:
        assert encode_rows("t", rows, j.readings, commodities) == want
    assert len(rows) == len(stored)
    j.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(readings, min_size=1, max_size=8), st.integers(1, 9))
def test_prepared_batches_match_encode_byte_for_byte(tmp_path_factory: pytest.TempPathFactory, rs: list[Reading],
                                                     limit: int) -> None:
    """The drain's path (three columns per row, values' text remembered per batch; full rows when a batch
    holds a fault) writes exactly what encode() writes for the same readings, batch by batch."""
    from daemon.storage.journal import Journal
    from drivers.sinks.influxdb.points import prepare_lines

    j = Journal(tmp_path_factory.mktemp("lines") / "j.db")
    j.readings.append(rs)
    commodities = {"room1": "kiwifruit", "z=3": "plum 李"}
    after = 0
    while (batch := prepare_lines("t", j.readings, after, limit, commodities)) is not None:
        readings_ = j.readings.read_after(after, limit)
        assert (batch.after, batch.last, batch.count) == (after, readings_[-1].id, len(readings_))
        try:
            want = encode("t", readings_, commodities)
        except SinkError:
            assert isinstance(batch.payload, SinkError) and not batch.payload.retryable
        else:
            assert batch.payload == want
        after = batch.last
    assert after == j.readings.max_id()
    j.close()


def test_value_text_is_remembered_per_value_but_zero_keeps_its_sign() -> None:
    """0.0 and -0.0 are one dict key but Point writes "0" and "-0"; repeated values reuse their text."""
    from drivers.sinks.influxdb.points import encode_values

    class OneSeries:
        def series_key(self, sid: int) -> tuple[str, str, str, str]:
            return ("c1", "room1", "s1", "temperature")

    values = [(1, 1, 0.0), (2, 1, -0.0), (3, 1, 4.5), (4, 1, 4.5), (5, 1, 1e16), (6, 1, 3.0)]
    body = encode_values(values, OneSeries(), {})  # type: ignore[arg-type]
    points = [Reading("c1", "room1", "s1", Quantity.TEMPERATURE, v, ms / 1000) for ms, _, v in values]
    assert body == "\n".join(to_point(r, None).to_line_protocol() for r in points).encode()
    assert body is not None and b"temperature=-0 2" in body and b"temperature=4.5 4" in body
    assert encode_values([(1, 1, 4.5), (2, 1, None)], OneSeries(), {}) is None  # type: ignore[arg-type]
    assert encode_values([(1, 1, float("inf"))], OneSeries(), {}) is None  # type: ignore[arg-type]


def test_a_value_that_cannot_be_written_is_kept_as_the_batch_refusal(tmp_path: Path) -> None:
    """Made ahead of the send, a batch holding an infinite GOOD value carries the refusal (with the
    reading's journal id) for the send to raise, where the forwarder isolates that reading."""
    from daemon.storage.journal import Journal
    from drivers.sinks.influxdb.points import prepare_lines

    j = Journal(tmp_path / "j.db")
    j.readings.append([Reading("c1", "room1", "s1", Quantity.TEMPERATURE, v, 1_763_800_000.0 + i)
              for i, v in enumerate([4.5, float("inf"), 5.0])])
    batch = prepare_lines("t", j.readings, 0, 10, {})
    assert batch is not None and (batch.after, batch.last, batch.count) == (0, 3, 3)
    assert isinstance(batch.payload, SinkError) and "reading id 2 " in str(batch.payload)
    assert not batch.payload.retryable
    assert prepare_lines("t", j.readings, 3, 10, {}) is None
    j.close()
