"""`coldchain report`: one compliance report from the journal (the daemon may keep running), or `--verify`.

PDF and HTML are the signed document (`pdf_doc.py`); JSON carries its signed data and hash.
"""

from __future__ import annotations

import json
import sys
import time
import zoneinfo
from datetime import datetime
from pathlib import Path
from typing import Any

from daemon.config.schema import AppConfig
from daemon.reports.compliance import PeriodKind, ReportError, compliance, period_bounds, to_csv
from daemon.reports.pdf import PdfError, html_to_pdf
from daemon.reports.pdf_doc import json_copy, signed_html
from daemon.storage.journal import Journal


def main_report(cfg: AppConfig, args: Any) -> int:
    """`coldchain report`: read the journal (the daemon may keep running) and write one report."""
    lang = args.lang or cfg.site.language
    tz = zoneinfo.ZoneInfo(cfg.site.timezone)
    now = float(int(time.time()))  # whole seconds: the signed copy names it, and --verify builds it again
    kind: PeriodKind = args.period or ("custom" if args.start else "day")  # argparse's choices are the kinds
    try:
        start, end = period_bounds(kind, tz, now, day=args.date, start=args.start, end=args.end)
        if not cfg.storage.journal.is_file():
            raise ReportError(f"no journal at {cfg.storage.journal}: has the daemon run with this config?")
        journal = Journal(cfg.storage.journal)
        try:
            rep = compliance(journal, cfg, args.zone, start, end, now, kind)
        finally:
            journal.close()
        if args.format == "pdf":
            out = Path(args.out or f"report-{args.zone}-{datetime.fromtimestamp(start, tz):%Y%m%d}.pdf")
            html_to_pdf(signed_html(rep, cfg, lang), out)
            print(out)
            return 0
        text = {"csv": lambda: to_csv(rep, lang), "html": lambda: signed_html(rep, cfg, lang),
                "json": lambda: json.dumps(json_copy(rep, cfg), ensure_ascii=False, indent=1)}[args.format]()
    except ReportError as exc:  # the arguments are wrong: exit 2, like a bad config
        print(f"coldchain report: {exc}", file=sys.stderr)
        return 2
    except PdfError as exc:
        print(f"coldchain report: {exc}", file=sys.stderr)
        return 1
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        print(args.out)
    else:
        sys.stdout.write(text.lstrip("\ufeff") if args.format == "csv" else text)
    return 0
