"""A throwaway PostgreSQL cluster for the hub's tests and its benchmark: the one `coldchain demo --centers` uses
(`hub/local_peers.py`)."""

from __future__ import annotations

from hub.local_peers import PG_BIN, Postgres

__all__ = ["PG_BIN", "Postgres"]
