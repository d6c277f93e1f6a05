"""The hub's real peers: one PostgreSQL 15 (tests/hub/postgres.py) per session, emptied per test, and Mosquitto."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hub.postgres import Postgres
from tests.peers import Mosquitto


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hub_db(postgres: Postgres) -> str:
    """The session's hub database with its tables; `dsn` empties it for each test."""
    import psycopg

    from hub import store

    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE hub")
    with psycopg.connect(postgres.dsn("hub")) as conn:
        store.create(conn)
    return postgres.dsn("hub")


@pytest.fixture
def dsn(hub_db: str) -> str:
    """The hub database, emptied (a CREATE DATABASE per test costs more than a second; TRUNCATE a few ms)."""
    import psycopg

    with psycopg.connect(hub_db) as conn:
        conn.execute("TRUNCATE centers, rooms, event_lots, events, lot_places, alarm_changes, alarms, rejected RESTART IDENTITY")
    return hub_db


@pytest.fixture
def pg(dsn: str) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        yield conn


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One Mosquitto 2 (MQTT 5, shared subscriptions) for the session; each test uses its own topic root."""
    server = Mosquitto(tmp_path_factory.mktemp("hub-mosquitto"))
    server.start()
    yield server
    server.stop()
