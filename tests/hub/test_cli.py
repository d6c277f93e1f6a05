"""`coldchain hub ...` reaches the hub through its entry point, and `init-db` makes the tables on a real server."""

from __future__ import annotations

import psycopg
import pytest

from daemon.app.cli import main
from tests.hub.postgres import Postgres

pytestmark = pytest.mark.peer


def test_coldchain_hub_init_db(postgres: Postgres, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hub", "--dsn", "", "init-db"]) == 2
    assert "COLDCHAIN_HUB_DSN" in capsys.readouterr().err
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS cli")
        admin.execute("CREATE DATABASE cli")
    assert main(["hub", "--dsn", postgres.dsn("cli"), "init-db"]) == 0
    assert main(["hub", "--dsn", postgres.dsn("cli"), "init-db"]) == 0  # again: nothing to do, no error
    with psycopg.connect(postgres.dsn("cli")) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"centers", "rooms", "events", "event_lots", "lot_places", "alarm_changes", "alarms", "rejected"}
    assert main(["hub", "--dsn", f"host=127.0.0.1 port={postgres.port} user=nobody-here dbname=x", "init-db"]) == 1
    assert "PostgreSQL" in capsys.readouterr().err


def test_workers_started_together_create_the_tables_once(postgres: Postgres) -> None:
    """Found by the benchmark: two workers' CREATE TABLE IF NOT EXISTS at the same moment collided."""
    from concurrent.futures import ThreadPoolExecutor

    from hub import store

    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS together")
        admin.execute("CREATE DATABASE together")

    def create(_: int) -> None:
        with psycopg.connect(postgres.dsn("together")) as conn:
            store.create(conn)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(create, range(6)))  # re-raises any worker's error
