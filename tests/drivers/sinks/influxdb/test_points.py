"""The line protocol: exactly what influxdb-client's Point writes, with the series prefix cached."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.errors import SinkError
from daemon.model import Quality, Quantity, Reading
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
    from daemon.journal import Journal
    from drivers.sinks.influxdb.points import encode_rows

    j = Journal(tmp_path_factory.mktemp("rows") / "j.db")
    stored = j.append(rs)
    rows = j.read_rows_after(0, 100)
    commodities = {"room1": "kiwifruit", "z=3": "plum 李"}
    try:
        want = encode("t", [j.row_reading(r) for r in rows], commodities)
    except SinkError:
        with pytest.raises(SinkError):
            encode_rows("t", rows, j, commodities)
    else:
        assert encode_rows("t", rows, j, commodities) == want
    assert len(rows) == len(stored)
    j.close()
