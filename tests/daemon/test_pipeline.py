"""Pipeline batching: with `flush_interval: 0` readings that arrive during a commit share the next one."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from daemon.clock import Clock
from daemon.journal import Journal
from daemon.model import Reading, Sample
from daemon.pipeline import Pipeline
from daemon.stats import Stats
from tests.conftest import MINIMAL, make_config

pytestmark = pytest.mark.asyncio


class SlowJournal(Journal):
    """Holds the first append until released, and records every batch size."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, readings):  # type: ignore[no-untyped-def]
        self.batches.append(len(readings))
        if len(self.batches) == 1:
            self.entered.set()
            self.release.wait(10)
        return super().append(readings)


def _sample(v: float) -> Sample:
    return Sample("s1", "temperature", v, "C")


async def test_group_commit_batches_what_arrives_during_a_commit(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, MINIMAL.replace("storage: {journal: journal.db}",
                                                "storage: {journal: journal.db, flush_interval: 0}"))
    assert cfg.storage.flush_interval == 0
    j = SlowJournal(tmp_path / "j.db")
    p = Pipeline(cfg, j, Clock(), Stats())
    seen: list[list[Reading]] = []
    p.subscribers.append(seen.append)
    runner = asyncio.create_task(p.run())
    first = asyncio.create_task(p.emit([_sample(5.0)]))
    await asyncio.to_thread(j.entered.wait, 10)  # the first commit started at once, no timer
    later = [asyncio.create_task(p.emit([_sample(5.0 + k / 10)])) for k in range(1, 4)]
    await asyncio.sleep(0)
    j.release.set()
    await asyncio.wait_for(asyncio.gather(first, *later), 10)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert j.batches == [1, 3]
    assert [len(b) for b in seen] == [1, 3]
    assert j.count() == 4
