"""Receipts commit with their readings, in one transaction, and each source keeps only its newest."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.ports.errors import StorageError
from daemon.ports.model import Flag, Quality, Quantity, Reading
from daemon.ports.sources import Receipt
from daemon.storage.journal import Journal
from daemon.storage.receipts import KEEP


def rd(v: float) -> Reading:
    return Reading("site", "z1", "s1", Quantity.TEMPERATURE, v, 1_700_000_000 + v, Quality.GOOD, "", None,
                   Flag.NONE)


def test_each_source_keeps_its_newest_receipts_in_order(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    for i in range(KEEP + 10):
        j.commit([rd(float(i))], [Receipt("mqtt:a", b"a%d" % i), Receipt("mqtt:b", b"b%d" % i)])
    assert j.receipts.recent("mqtt:a") == [b"a%d" % i for i in range(10, KEEP + 10)]
    assert len(j.receipts.recent("mqtt:b")) == KEEP
    assert j.readings.count() == KEEP + 10
    j.close()
    assert Journal(tmp_path / "j.db").receipts.recent("mqtt:a")[-1] == b"a%d" % (KEEP + 9)


def test_a_failed_commit_keeps_neither_readings_nor_receipt(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")

    def refuse() -> None:
        raise StorageError("held back")

    j.readings.gate = refuse
    with pytest.raises(StorageError):
        j.commit([rd(1.0)], [Receipt("mqtt:a", b"x")])
    j.readings.gate = None
    broken = Receipt("mqtt:a", None)  # type: ignore[arg-type]  # NOT NULL fails inside the transaction
    with pytest.raises(StorageError):
        j.commit([rd(2.0)], [broken])
    assert j.readings.count() == 0 and j.receipts.recent("mqtt:a") == []


def test_the_batches_of_one_commit_are_one_receipt_so_a_window_of_them_is_kept_whole(tmp_path: Path) -> None:
    """At a sensor rate every MQTT message is a batch with a receipt of its own, and a 5 s window commits hundreds:
    all of them must survive the ring of KEEP, or a kill before the PUBACKs stores the broker's copies twice."""
    from drivers.sensors.mqtt.redelivery import ReceiptBook

    class Msg:
        def __init__(self, mid: int) -> None:
            self.mid, self.topic, self.payload, self.qos, self.dup = mid, f"t/{mid}", b"%d" % mid, 1, True

    j = Journal(tmp_path / "j.db")
    writer = ReceiptBook()
    msgs = [Msg(mid) for mid in range(1, 4 * KEEP)]
    j.commit([rd(float(i)) for i in range(len(msgs))],
             [Receipt("mqtt:a", writer.body([m])) for m in msgs] + [Receipt("mqtt:b", b"b")])  # type: ignore[list-item]
    assert j.receipts.recent("mqtt:b") == [b"b"]
    (body,) = j.receipts.recent("mqtt:a")
    book = ReceiptBook(j.receipts.recent("mqtt:a"))  # what the driver reads back after a kill
    assert len(body) == 6 * len(msgs) and all(book.stored(m) for m in msgs)  # type: ignore[arg-type]
