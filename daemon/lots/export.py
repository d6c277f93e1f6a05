"""`coldchain epcis`: an EPCISDocument of one lot (`--code`) or of a period (`--from`/`--to`) from the journal,
while the daemon may keep running (it reads; SQLite's WAL lets it)."""

from __future__ import annotations

import json
import sys
import time
import zoneinfo
from pathlib import Path
from typing import Any

from daemon.config.schema import AppConfig
from daemon.lots.epcis import Epcis
from daemon.lots.store import LotError, Lots
from daemon.reports.compliance import ReportError, period_bounds
from daemon.storage.journal import Journal


def main_epcis(cfg: AppConfig, args: Any) -> int:
    """Exit 0 with the document on stdout (or in --out), 2 for wrong arguments or an unknown code."""
    now = time.time()
    tz = zoneinfo.ZoneInfo(cfg.site.timezone)
    if bool(args.code) == bool(args.start or args.end):
        print("coldchain epcis: give --code CODE, or --from and --to", file=sys.stderr)
        return 2
    if not cfg.storage.journal.is_file():
        print(f"coldchain epcis: no journal at {cfg.storage.journal}: has the daemon run with this config?",
              file=sys.stderr)
        return 2
    journal = Journal(cfg.storage.journal)
    try:
        ep = Epcis(Lots(journal, cfg))
        if args.code:
            ep.lots.get(args.code)
            doc = ep.lot_document(args.code, now)
        else:
            start, end = period_bounds("custom", tz, now, start=args.start, end=args.end)
            doc = ep.period_document(start, end, now)
    except (LotError, ReportError) as exc:
        print(f"coldchain epcis: {exc}", file=sys.stderr)
        return 2
    finally:
        journal.close()
    text = json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0
