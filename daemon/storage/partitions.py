"""Raw readings in partitions of about a day (journal v14), so that retention drops whole tables.

Why: in WAL mode SQLite writes every page a DELETE touches into the WAL, the pages it frees too, and the
checkpoint writes them again. Deleting one day of a 50-sensor center (144,000 readings, 2 quantities at 1/min)
from one big table wrote 6,026 pages of 1 KiB (readings_log 4,068, the series index 1,956): ~99 B per reading, a
quarter of all the SD card was written (docs/benchmarks.md, scenario 8). DROP TABLE frees a table's pages without
writing them: only the free-list trunk pages (one per ~250 pages freed) and the schema are written.

Partition k holds the journal ids [first_id_k, first_id_k+1): `readings_log_k` (the rows, in id order) and
`readings_by_series_k` (their (series, ts_ms, id) index, filled by the roll). The roll opens the next partition
once the current one spans `SPAN_MS` of reading time, right after it rolled every id: so every id above the
rollup cursor is in the newest partition (the views' tail), and a closed partition never changes again except
by retention, which drops it once all of it is past `raw_retention` and confirmed (`daemon/storage/retention.py`).

Readers keep their SQL: the views `readings_log` (all rows by id), `readings_by_series` (all index rows) and
`readings` (by series and time) are regenerated over the partitions whenever one is opened or dropped, and
`readings_top` gives the highest id with one seek per partition (MAX over a UNION ALL view would scan it).
Partition 0 is the table a journal had before v14, renamed: an upgraded box's old rows age out of it by range
deletes as before, until it is dropped whole.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

Tx = sqlite3.Connection  # as in db.py, which imports the schema, which imports this module

SPAN_MS = 20 * 3_600_000
"""Reading time a partition spans before the roll opens the next: a daily roll opens one a day; a big center that
rolls every few hours on its tail (`rollups.ROLL_TAIL`) gets partitions of ~20 h."""
MAX_PARTITIONS = 200
"""No new partition beyond this many (the `readings` view has one UNION ALL arm per partition and SQLite allows
500): with `raw_retention` over ~170 days the newest partition grows past a day instead."""
_CURSOR = "(SELECT value FROM rollup_state WHERE name = 'raw')"
_COLS = "id, ts_ms, series, value, quality, note, flags"


def log_table(k: int) -> str:
    return f"readings_log_{k}"


def index_table(k: int) -> str:
    return f"readings_by_series_{k}"


@dataclass(frozen=True, slots=True)
class Part:
    """One partition: its number, its first journal id, and the reading times of its rolled rows."""

    k: int
    first_id: int
    min_ts: int | None
    max_ts: int | None


def parts(tx: Tx) -> list[Part]:
    """Every partition, oldest first."""
    return [Part(*row) for row in tx.execute("SELECT k, first_id, min_ts, max_ts FROM raw_partitions ORDER BY k")]


def current(tx: Tx) -> int:
    """The partition new readings go to (the newest)."""
    return int(tx.execute("SELECT MAX(k) FROM raw_partitions").fetchone()[0])


def last_ids(ps: list[Part]) -> dict[int, int | None]:
    """Partition -> its last possible journal id (None for the newest: it is still written)."""
    return {p.k: (nxt.first_id - 1 if nxt else None) for p, nxt in zip(ps, [*ps[1:], None], strict=True)}


def create(tx: Tx, k: int, first_id: int) -> None:
    """The tables of partition `k`, whose ids start at `first_id` (the views are the caller's: `rebuild_views`)."""
    tx.execute(f"""CREATE TABLE {log_table(k)} (
        id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, series INTEGER NOT NULL REFERENCES series(id),
        value REAL, quality INTEGER NOT NULL DEFAULT 0, note TEXT, flags INTEGER)""")
    tx.execute(f"""CREATE TABLE {index_table(k)} (
        series INTEGER NOT NULL, ts_ms INTEGER NOT NULL, id INTEGER NOT NULL,
        PRIMARY KEY (series, ts_ms, id)) WITHOUT ROWID""")
    tx.execute(f"CREATE INDEX readings_replayed_{k} ON {log_table(k)} (series, ts_ms) WHERE flags & 1")
    tx.execute("INSERT INTO raw_partitions (k, first_id) VALUES (?, ?)", (k, first_id))


def drop(tx: Tx, k: int) -> None:
    """Partition `k` gone whole: its pages go to the free list unwritten (see the module docstring)."""
    tx.execute(f"DROP TABLE {index_table(k)}")
    tx.execute(f"DROP TABLE {log_table(k)}")
    tx.execute("DELETE FROM raw_partitions WHERE k = ?", (k,))


def note_rolled(tx: Tx, k: int, lo: int, hi: int) -> None:
    """Widen partition `k`'s reading times by its rows with ids in (lo, hi], which a roll just indexed."""
    tx.execute(f"""UPDATE raw_partitions
        SET min_ts = MIN(COALESCE(min_ts, r.a), r.a), max_ts = MAX(COALESCE(max_ts, r.b), r.b)
        FROM (SELECT MIN(ts_ms) AS a, MAX(ts_ms) AS b FROM {log_table(k)} WHERE id > ? AND id <= ?) AS r
        WHERE k = ? AND r.a IS NOT NULL""", (lo, hi, k))


def open_next_if_due(tx: Tx, top: int) -> bool:
    """After a roll that reached `top` (the highest id): open the next partition if the newest spans `SPAN_MS`."""
    ps = parts(tx)
    newest = ps[-1]
    if len(ps) >= MAX_PARTITIONS or newest.min_ts is None or newest.max_ts is None:
        return False
    if newest.max_ts - newest.min_ts < SPAN_MS:
        return False
    create(tx, newest.k + 1, top + 1)
    rebuild_views(tx, [p.k for p in ps] + [newest.k + 1])
    return True


def views_sql(ks: list[int]) -> list[str]:
    """The views and triggers over partitions `ks` (oldest first), as statements."""
    cur = ks[-1]
    logs = " UNION ALL ".join(f"SELECT {_COLS} FROM {log_table(k)}" for k in ks)
    index = " UNION ALL ".join(f"SELECT series, ts_ms, id FROM {index_table(k)}" for k in ks)
    top = " UNION ALL ".join(f"SELECT MAX(id) AS m FROM {log_table(k)}" for k in ks)
    arms = [f"SELECT l.id, i.ts_ms, i.series, l.value, l.quality, l.note, l.flags FROM {index_table(k)} i "
            f"JOIN {log_table(k)} l ON l.id = i.id" for k in ks]
    arms.append(f"SELECT {_COLS} FROM {log_table(cur)} WHERE id > {_CURSOR}")  # the unrolled tail: newest only
    deletes = "".join(f"DELETE FROM {index_table(k)} WHERE series = OLD.series AND ts_ms = OLD.ts_ms AND id = OLD.id; "
                      f"DELETE FROM {log_table(k)} WHERE id = OLD.id; " for k in ks)
    return [
        f"CREATE VIEW readings_log ({_COLS}) AS {logs}",
        f"CREATE VIEW readings_by_series (series, ts_ms, id) AS {index}",
        f"CREATE VIEW readings_top (id) AS SELECT COALESCE(MAX(m), 0) FROM ({top})",
        f"CREATE VIEW readings ({_COLS}) AS {' UNION ALL '.join(arms)}",
        f"""CREATE TRIGGER readings_insert INSTEAD OF INSERT ON readings BEGIN
            INSERT INTO {log_table(cur)} ({_COLS})
            VALUES (COALESCE(NEW.id, (SELECT id FROM readings_top) + 1), NEW.ts_ms, NEW.series, NEW.value,
                    COALESCE(NEW.quality, 0), NEW.note, NEW.flags);
        END""",
        f"CREATE TRIGGER readings_delete INSTEAD OF DELETE ON readings BEGIN {deletes}END",
    ]


def rebuild_views(tx: Tx, ks: list[int]) -> None:
    """Drop and make again the views and triggers over partitions `ks` (after one was opened or dropped)."""
    for trigger in ("readings_insert", "readings_delete"):
        tx.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    for view in ("readings", "readings_top", "readings_by_series", "readings_log"):
        tx.execute(f"DROP VIEW IF EXISTS {view}")
    for stmt in views_sql(ks):
        tx.execute(stmt)


# Journal v14: the v9 tables become partition 0, renamed (no row is copied: a year-old journal migrates in a
# moment). Its reading times come from one seek per series in its index; its unrolled tail is added by the next
# roll (`note_rolled`).
MIGRATION = "\n".join([
    "DROP TRIGGER readings_insert;", "DROP TRIGGER readings_delete;", "DROP VIEW readings;",
    "ALTER TABLE readings_log RENAME TO readings_log_0;",
    "ALTER TABLE readings_by_series RENAME TO readings_by_series_0;",
    """CREATE TABLE raw_partitions (
        k INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, min_ts INTEGER, max_ts INTEGER
    );""",
    """INSERT INTO raw_partitions (k, first_id, min_ts, max_ts) SELECT 0, 1,
        (SELECT MIN((SELECT MIN(ts_ms) FROM readings_by_series_0 i WHERE i.series = s.id)) FROM series s),
        (SELECT MAX((SELECT MAX(ts_ms) FROM readings_by_series_0 i WHERE i.series = s.id)) FROM series s);""",
    *(stmt + ";" for stmt in views_sql([0])),
])
