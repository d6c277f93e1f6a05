"""Shipping, receiving, splitting and merging lots: one chain of custody with each stay's figures, and a
reefer logger's file attached to a lot in transit (validated row by row, refused whole when bad)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.lots.chain import attach_transit, custody
from daemon.lots.store import LotConflict, LotError, Lots, Who
from daemon.lots.transfers import merge, split
from daemon.ports.model import Quantity, Reading
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL, make_config

T0 = 1_763_568_000.0  # 2025-11-20 00:00 Asia/Shanghai
TWO = MINIMAL.replace("commodity: mandarin}\n",
                      "commodity: mandarin}\n  - {id: z2, name: 2号库, name_en: Room 2, commodity: mandarin}\n"
                      ).replace("sensors:\n", "sensors:\n  - {id: s2, zone: z2, type: simulated, setpoint: 6.5}\n")
LI = Who("li", "staff")


@pytest.fixture
def lots(tmp_path: Path) -> Lots:
    cfg = make_config(tmp_path, TWO)
    j = Journal(tmp_path / "l.db")
    # z1 too warm for mandarin (9.5 °C) 02:00-03:00, 6 °C otherwise; z2 at 6.5 °C; a reading a minute for 12 h
    j.readings.append([Reading("t1", "z1", "s1", Quantity.TEMPERATURE, 9.5 if 120 <= i < 180 else 6.0, T0 + i * 60)
                       for i in range(720)])
    j.readings.append([Reading("t1", "z2", "s2", Quantity.TEMPERATURE, 6.5, T0 + i * 60) for i in range(720)])
    return Lots(j, cfg)


def kinds(lots: Lots) -> list[tuple[str, str, str | None]]:
    return [(e.kind, e.lot, e.peer) for e in lots.journal.lot_events.after(0, 100)]


def test_ship_then_receive_elsewhere_records_both_ends(lots: Lots, tmp_path: Path) -> None:
    lots.check_in("CQ-1", "mandarin", "z1", T0 + 3600, LI, quantity=500, unit="kg")
    lots.move("CQ-1", "z2", T0 + 4 * 3600, LI)
    with pytest.raises(LotError, match="this site"):
        lots.check_out("CQ-1", T0 + 6 * 3600, LI, destination="t1")
    out = lots.check_out("CQ-1", T0 + 6 * 3600, LI, destination="wanzhou-02")
    assert out["destination"] == "wanzhou-02" and out["checked_out"] == T0 + 6 * 3600
    assert kinds(lots) == [("commission", "CQ-1", None), ("move", "CQ-1", None), ("ship", "CQ-1", "wanzhou-02")]
    ship = lots.journal.lot_events.after(2, 1)[0]
    assert (ship.ended_zone, ship.ended_start) == ("z2", T0 + 4 * 3600)
    chain = custody(lots, "CQ-1", T0 + 7 * 3600)
    assert [(leg["zone"], leg["start"], leg["end"]) for leg in chain["legs"]] == [
        ("z1", T0 + 3600, T0 + 4 * 3600), ("z2", T0 + 4 * 3600, T0 + 6 * 3600)]
    first = chain["legs"][0]
    assert first["site"] == "t1" and first["temperature"]["max"] == 9.5 and first["temperature"]["min"] == 6.0
    assert first["temperature"]["minutes_out"] == 60 and len(first["excursions"]) == 1
    assert first["temperature"]["mkt"] is not None and first["temperature"]["mean"] is not None
    # the receiving box (its own journal) takes it under the same code, from the shipping site
    other = Lots(Journal(tmp_path / "b.db"), lots.cfg)
    got = other.check_in("CQ-1", "mandarin", "z1", T0 + 9 * 3600, LI, source="wanzhou-02")
    assert got["source"] == "wanzhou-02"
    assert [(e.kind, e.peer) for e in other.journal.lot_events.after(0, 10)] == [("receive", "wanzhou-02")]


def test_split_and_merge_keep_the_chain(lots: Lots) -> None:
    lots.check_in("P-100", "mandarin", "z1", T0 + 3600, LI, quantity=900, unit="kg", origin="草堂镇")
    kids = split(lots, "P-100", [("P-101", 400.0), ("P-102", 500.0)], T0 + 4 * 3600, LI)
    assert [(k["code"], k["zone"], k["quantity"], k["parents"]) for k in kids] == [
        ("P-101", "z1", 400.0, ["P-100"]), ("P-102", "z1", 500.0, ["P-100"])]
    assert lots.get("P-100")["checked_out"] == T0 + 4 * 3600
    with pytest.raises(LotConflict, match="checked out"):
        split(lots, "P-100", [("P-103", None)], T0 + 5 * 3600, LI)
    lots.move("P-102", "z2", T0 + 5 * 3600, LI)
    with pytest.raises(LotError, match="two or more"):
        merge(lots, ["P-101"], "P-200", T0 + 6 * 3600, LI)
    m = merge(lots, ["P-101", "P-102"], "P-200", T0 + 6 * 3600, LI, zone="z2")
    assert m["quantity"] == 900 and m["parents"] == ["P-101", "P-102"] and m["origin"] == "草堂镇"
    assert kinds(lots)[1:3] == [("split", "P-100", None), ("move", "P-102", None)]
    ev = lots.journal.lot_events.after(3, 1)[0]
    assert (ev.kind, ev.lot, ev.inputs, ev.outputs) == ("merge", "P-200", ("P-101", "P-102"), ("P-200",))
    legs = custody(lots, "P-200", T0 + 8 * 3600)["legs"]
    assert [(leg["lot"], leg["zone"], leg["start"]) for leg in legs] == [
        ("P-100", "z1", T0 + 3600), ("P-101", "z1", T0 + 4 * 3600), ("P-102", "z1", T0 + 4 * 3600),
        ("P-102", "z2", T0 + 5 * 3600), ("P-200", "z2", T0 + 6 * 3600)]
    assert legs[0]["temperature"]["minutes_out"] == 60  # the parent's warm hour stays in the child's chain
    assert lots.lineage_codes("P-200") == ["P-100", "P-101", "P-102", "P-200"]


CSV = """# reefer 渝A-12345, logger TT-4711
time,temperature_c
2025-11-20T06:10:00+08:00,5.0
2025-11-20T06:20:00+08:00,5.5
1763591400,9.0
2025-11-20T06:40:00,6.0
"""


def test_a_logger_csv_attaches_to_a_shipped_lot(lots: Lots) -> None:
    lots.check_in("T-1", "mandarin", "z1", T0 + 3600, LI)
    with pytest.raises(LotConflict, match="no transfer"):
        attach_transit(lots, "T-1", CSV, "trip.csv", T0 + 8 * 3600, LI)
    lots.check_out("T-1", T0 + 6 * 3600, LI, destination="wz")
    got = attach_transit(lots, "T-1", CSV, "trip.csv", T0 + 8 * 3600, LI, logger="TT-4711")
    assert got["readings"] == 4 and got["start"] == T0 + 6 * 3600 + 600 and got["end"] == T0 + 6 * 3600 + 2400
    leg = custody(lots, "T-1", T0 + 9 * 3600)["legs"][-1]
    assert leg["kind"] == "transit" and leg["from"] == "t1" and leg["to"] == "wz" and leg["logger"] == "TT-4711"
    t = leg["temperature"]
    assert (t["min"], t["max"], t["count"]) == (5.0, 9.0, 4)
    assert t["minutes_out"] == 10  # 9.0 °C held 10 min (mandarin's maximum is 8 °C)
    assert lots.journal.audit.entries("T-1")[0]["action"] == "lot.transit"  # newest first


def test_a_bad_logger_file_is_refused_whole_with_each_line_named(lots: Lots) -> None:
    lots.check_in("T-2", "mandarin", "z1", T0 + 3600, LI)
    lots.check_out("T-2", T0 + 2 * 3600, LI, destination="wz")
    bad = ("time,temperature_c\n2025-11-20T06:10:00+08:00,5.0\n2025-11-20T06:05:00+08:00,5.1\nyesterday,4\n"
           "2025-11-20T07:00:00+08:00,hot\n2025-11-20T07:10:00+08:00,99\n1,2,3\n")
    with pytest.raises(LotError) as err:
        attach_transit(lots, "T-2", bad, "truck.csv", T0 + 8 * 3600, LI)
    msg = str(err.value)
    assert "5 problem(s) in truck.csv, nothing imported" in msg
    for line, what in ((3, "does not increase"), (4, "neither ISO 8601"), (5, "not a number"), (6, "outside -60..60"),
                       (7, "3 fields")):
        assert f"truck.csv:{line}: " in msg and what in msg
    assert lots.journal.lot_events.transit("T-2") == []
    js = '{"logger": "L9", "readings": [{"time": 1763590800, "temperature_c": 4}, {"time": 1763590860}]}'
    with pytest.raises(LotError, match=r"box.json:readings\[1\]: temperature_c is missing"):
        attach_transit(lots, "T-2", js, "box.json", T0 + 8 * 3600, LI)
    with pytest.raises(LotError, match=r"box\.json:1: not JSON"):
        attach_transit(lots, "T-2", "{", "box.json", T0 + 8 * 3600, LI)
    good = '{"logger": "L9", "readings": [{"time": 1763590800, "temperature_c": 4}, {"time": 1763591400, "temperature_c": 4.5}]}'
    assert attach_transit(lots, "T-2", good, "box.json", T0 + 8 * 3600, LI)["logger"] == "L9"


def test_logger_files_from_a_fuzzer_give_messages_not_crashes() -> None:
    import zoneinfo

    from daemon.lots.logger_file import LoggerFileError, parse_csv, parse_json

    tz = zoneinfo.ZoneInfo("Asia/Shanghai")
    for text, what in (("time,temperature_c\n1e400,4\n", "f.csv:2: time '1e400' is not a finite number"),
                       ("time,temperature_c\n1763591400,4\x00\n", "f.csv:2: temperature_c"),
                       ("temp\n1,2\n", "f.csv:1: the header must name"), ("", "f.csv:1: no readings")):
        with pytest.raises(LoggerFileError) as err:
            parse_csv(text, "f.csv", tz)
        assert what in str(err.value)
    huge = "1" + "0" * 400
    with pytest.raises(LoggerFileError, match=r"j.json:readings\[0\]: time .* is out of range"):
        parse_json(f'{{"readings": [{{"time": {huge}, "temperature_c": {huge}}}]}}', "j.json", tz)
    with pytest.raises(LoggerFileError, match=r"j.json:1: expected"):
        parse_json("[1, 2]", "j.json", tz)
