"""A lot's chain when the boxes' clocks disagree: a receiving stamped before the shipping it answers (the receiving
box's clock behind) still comes after it, so each stay keeps its own end and temperature report. No database: the
chain is read from event rows as `hub.queries.chain` passes them."""

from __future__ import annotations

from typing import Any

from hub.queries import causal, legs
from tests.hub.boxes import report


def ev(site: str, step: str, t: int, zone: str | None = None, *, source: str | None = None,
       destination: str | None = None, fig: tuple[float, float, float] | None = None) -> dict[str, Any]:
    body = {"sensorElementList": report(*fig)} if fig else {}
    return {"event_id": f"{site}-{step}-{t}", "site": site, "biz_step": step, "zone": zone, "lot": "L1",
            "source": source, "destination": destination, "time": t, "body": body}


def stays(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(x["site"], x["since"], x["until"], x["temperature"]) for x in legs(events) if x["kind"] == "stay"]


def test_a_receiving_stamped_before_its_shipping_comes_after_it() -> None:
    # B's clock is 2 s behind A's: B received at "99", A shipped at 100; then B moves the lot at 101 (B's clock)
    events = [ev("a", "commissioning", 0, "z1"), ev("b", "receiving", 99, "r1", source="a"),
              ev("a", "shipping", 100, destination="b", fig=(4.0, 5.0, 6.0)), ev("b", "storing", 101, "r2")]
    assert [e["event_id"] for e in causal(events)] == [
        "a-commissioning-0", "a-shipping-100", "b-receiving-99", "b-storing-101"]
    assert stays(events) == [("a", 0, 100, {"min": 4.0, "max": 6.0, "mean": 5.0}), ("b", 99, 101, None),
                             ("b", 101, None, None)]


def test_later_events_of_the_receiving_site_wait_with_it() -> None:
    # B's clock is an hour behind: its receiving and its move both sort before A's shipping
    events = [ev("a", "commissioning", 0, "z1"), ev("b", "receiving", 10, "r1", source="a"),
              ev("b", "storing", 20, "r2"), ev("a", "shipping", 3600, destination="b", fig=(4.0, 5.0, 6.0))]
    assert [e["event_id"] for e in causal(events)] == [
        "a-commissioning-0", "a-shipping-3600", "b-receiving-10", "b-storing-20"]


def test_clocks_that_agree_keep_time_order_and_a_round_trip_pairs_each_hop() -> None:
    events = [ev("a", "commissioning", 0, "z1"), ev("a", "shipping", 100, destination="b", fig=(4.0, 5.0, 6.0)),
              ev("b", "receiving", 200, "r1", source="a"), ev("b", "shipping", 300, destination="a"),
              ev("a", "receiving", 400, "z1", source="b"), ev("a", "shipping", 500, destination="b"),
              ev("b", "receiving", 600, "r1", source="a")]
    assert causal(events) == events


def test_a_receiving_whose_shipping_never_came_stays_in_time_order() -> None:
    # A is offline and has not sent its shipping yet: B's receiving is shown, not lost
    events = [ev("a", "commissioning", 0, "z1"), ev("b", "receiving", 99, "r1", source="a"),
              ev("b", "storing", 150, "r2")]
    assert [e["event_id"] for e in causal(events)] == [e["event_id"] for e in events]
