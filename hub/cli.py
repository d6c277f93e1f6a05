"""`coldchain hub ...` (also `coldchain-hub`): create the tables, run a worker, serve the pages.

Settings come from flags or the environment (COLDCHAIN_HUB_DSN, COLDCHAIN_HUB_BROKER ...), so a systemd unit or
a container passes secrets by file (`--read-token-file`) or environment, never on a command line others can read.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path


def _secret(path: str | None) -> str | None:
    return Path(path).read_text(encoding="utf-8").strip() if path else None


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="coldchain hub", description="the regional hub: boxes' uplinks -> PostgreSQL")
    p.add_argument("--dsn", default=env("COLDCHAIN_HUB_DSN", ""), help="PostgreSQL conninfo (libpq syntax or URL)")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("init-db", help="create the hub's tables (idempotent)")
    w = sub.add_parser("worker", help="consume the boxes' uplinks from the broker (MQTT 5 shared subscription)")
    w.add_argument("--broker", default=env("COLDCHAIN_HUB_BROKER", "127.0.0.1:1883"), help="host:port")
    w.add_argument("--group", default=env("COLDCHAIN_HUB_GROUP", "hub"), help="shared subscription group")
    w.add_argument("--client-id", default=env("COLDCHAIN_HUB_CLIENT_ID", "hub-1"),
                   help="stable per worker: its session (unacknowledged messages) is found again by it")
    w.add_argument("--root", default="coldchain", help="first topic level (the boxes' topic_prefix coldchain/{site})")
    w.add_argument("--username", default=env("COLDCHAIN_HUB_USERNAME"))
    w.add_argument("--password-file", default=env("COLDCHAIN_HUB_PASSWORD_FILE"))
    w.add_argument("--no-readings", action="store_true", help="do not subscribe to readings (no uplink lag from them)")
    w.add_argument("--report-every", type=int, default=1000, help="log the counts every N messages")
    w.add_argument("--batch-size", type=int, default=int(env("COLDCHAIN_HUB_BATCH_SIZE", "500")),
                   help="messages per PostgreSQL transaction at most (one commit, then their PUBACKs)")
    w.add_argument("--batch-ms", type=int, default=int(env("COLDCHAIN_HUB_BATCH_MS", "50")),
                   help="how long a batch waits for more messages at most, in ms")
    w.add_argument("--log-level", default="info", choices=("debug", "info", "warning"),
                   help="debug also logs each batch before its commit")
    s = sub.add_parser("serve", help="the region's pages, JSON and EPCIS 2.0 query/capture (FastAPI)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8090)
    s.add_argument("--read-token-file", default=env("COLDCHAIN_HUB_READ_TOKEN_FILE"),
                   help="token for the staff pages and EPCIS query (unset: open, for a closed network only)")
    s.add_argument("--capture-token-file", default=env("COLDCHAIN_HUB_CAPTURE_TOKEN_FILE"),
                   help="token for POST /epcis/capture (unset: capture is off)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    args = _parser().parse_args(argv)
    try:
        import psycopg
    except ImportError:
        print("the hub needs its extra: pip install 'coldchain-monitor[hub]'", file=sys.stderr)
        return 2
    if not args.dsn:
        print("no database: give --dsn or COLDCHAIN_HUB_DSN", file=sys.stderr)
        return 2
    from hub import store

    try:
        with psycopg.connect(args.dsn) as conn:
            store.create(conn)
    except psycopg.OperationalError as exc:
        print(f"PostgreSQL ({args.dsn}): {exc}", file=sys.stderr)
        return 1
    if args.cmd == "worker":
        return _worker(args)
    if args.cmd == "serve":
        import uvicorn

        from hub.web import make_app

        app = make_app(args.dsn, _secret(args.read_token_file), _secret(args.capture_token_file))
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _worker(args: argparse.Namespace) -> int:
    import psycopg

    from hub.worker import Settings, Worker

    host, _, port = args.broker.rpartition(":")
    settings = Settings(host=host or args.broker, port=int(port or 1883), dsn=args.dsn, group=args.group,
                        client_id=args.client_id, root=args.root, username=args.username,
                        password=_secret(args.password_file), readings=not args.no_readings,
                        report_every=args.report_every, batch_size=args.batch_size, batch_ms=args.batch_ms)
    if not 1 <= settings.batch_size <= 65535 or settings.batch_ms < 0:
        print("--batch-size must be 1-65535 and --batch-ms >= 0", file=sys.stderr)
        return 2
    logging.getLogger("coldchain.hub").setLevel(args.log_level.upper())
    worker = Worker(settings)
    signal.signal(signal.SIGTERM, lambda _sig, _frame: worker.stop())  # finish the batch in hand, then leave
    try:
        worker.run()
    except (psycopg.OperationalError, OSError) as exc:
        logging.getLogger("coldchain.hub").error("hub worker %s stops: %s", settings.client_id, exc)
        return 1
    return 0
