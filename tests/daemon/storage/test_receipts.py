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
