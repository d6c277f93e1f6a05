"""The command line: `coldchain run | check-config | config show | doctor | demo | sample | report | qr | epcis |
user | journal compact | hub`.

Exit codes: 0 all good; 1 `doctor` found something a running daemon needs broken (each ✗ line says
what); 2 the config (or a command's arguments) is wrong, with `file:line: key: message` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import zoneinfo
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from daemon import __version__
from daemon.alarms.rules import zone_limits
from daemon.app.malloc import fix_mmap_threshold
from daemon.app.plugins import load_config
from daemon.config.catalog import default_catalog_path
from daemon.config.schema import AppConfig
from daemon.messages import render
from daemon.ports.errors import ConfigError
from daemon.storage.alerts import AlertRow

EXIT_CONFIG = 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _load(path: str) -> AppConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        n = len(exc.problems)
        print(f"{n} problem{'s' if n > 1 else ''} in {path}; nothing was started.", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    print(f"{args.file}: OK — site {cfg.site.id}, {len(cfg.zones)} zones, {len(cfg.sensors)} sensors, "
          f"{len(cfg.sinks)} sinks, {len(cfg.notifiers)} notifiers")
    for z in cfg.zones:
        com = cfg.commodity(z.id)
        lim = zone_limits(z, com)
        flag = " (catalog row marked UNVERIFIED/UNCERTAIN: check the limits)" if com and com.unverified else ""
        print(f"  zone {z.id} ({z.name}): {com.key if com else 'no commodity'}; temperature "
              f"low {lim.temp_low} high {lim.temp_high} freeze {lim.freeze} °C after {lim.temp_delay / 60:g} min; "
              f"humidity low {lim.rh_low} high {lim.rh_high} %RH{flag}")
    return 0


async def _serve(cfg: AppConfig, speed: float, duration: float | None, demo: bool, start: float | None = None) -> int:
    from daemon.app.runtime import Daemon
    from daemon.ports.clock import Clock

    d = Daemon(cfg, clock=Clock(speed=speed, start=start))
    lang = cfg.site.language

    def on_change(action: str, row: AlertRow, texts: list[str]) -> None:
        if action not in ("fire", "clear"):
            return
        # the site's time, as on the pages and in the reports (not the machine's zone)
        when = datetime.fromtimestamp(d.clock.now(), zoneinfo.ZoneInfo(d.cfg.site.timezone)).strftime("%H:%M")
        word = render("cli.alarm" if action == "fire" else "cli.resolved", lang)
        print(f"[{when}] {word} #{row.id} {row.zone} {render(f'kind.{row.kind}', lang)} "
              f"{'' if row.value is None else f'{row.value:.1f}'}", flush=True)

    if demo:
        from daemon.app.demo import TOKENS, demo_users, seed_history

        await asyncio.to_thread(seed_history, cfg, d.journal, d.clock.now())
        await asyncio.to_thread(demo_users, d.journal, d.clock.now())
        d.alerts.listeners.append(on_change)
        print(render("cli.demo_tokens", lang, **TOKENS), flush=True)
    await d.start()
    if d.api_port is not None:
        print(f"{render('cli.open_page', lang)}: http://{cfg.api.host}:{d.api_port}/", flush=True)
    try:
        await d.wait(duration)
    finally:
        await d.stop()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    return asyncio.run(_serve(cfg, 1.0, None, demo=False))


def demo_config_path() -> Path:
    return default_catalog_path().parent / "demo.yaml"


def cmd_demo(args: argparse.Namespace) -> int:
    if args.centers > 1:
        return _region_demo(args)
    cfg = _load(args.config or str(demo_config_path()))
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="coldchain-demo-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg.storage.journal = data_dir / "journal.db"
    cfg.api.port = args.port
    if args.lang:
        cfg.site.language = args.lang
    print(f"coldchain demo {__version__}: simulated center '{cfg.site.name}', clock x{args.speed:g}, "
          f"journal {cfg.storage.journal}", flush=True)
    # centers of one region share a simulated time: now = epoch + (wall - epoch) * speed
    start = None if args.epoch is None else args.epoch + (time.time() - args.epoch) * args.speed
    return asyncio.run(_serve(cfg, args.speed, args.duration, demo=True, start=start))


def cmd_doctor(args: argparse.Namespace) -> int:
    from daemon.app.doctor import run_doctor

    cfg = _load(args.config)
    lang = args.lang or cfg.site.language
    print(render("doctor.title", lang, site=cfg.site.name), flush=True)
    rep = asyncio.run(run_doctor(cfg, args.config, lang=lang, seconds=args.seconds,
                                 test_number=args.send_test_sms, via=args.via, scan=args.scan))
    print(rep.render())
    print(render("doctor.summary_ok", lang) if not rep.problems else render("doctor.summary_bad", lang, n=rep.problems))
    return 1 if rep.problems else 0


def cmd_config_show(args: argparse.Namespace) -> int:
    import yaml

    from daemon.ports.secrets import masked

    cfg = _load(args.config)
    print(f"# effective config of {args.config}: defaults filled in, durations in seconds, secrets shown as ***")
    print(yaml.safe_dump(masked(cfg), allow_unicode=True, sort_keys=False, width=120), end="")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import importlib

    from daemon.app.plugins import registry

    table = registry().all()
    if args.type not in table:
        print(f"unknown driver type {args.type!r}; known: {', '.join(sorted(table))}", file=sys.stderr)
        return EXIT_CONFIG
    mod = importlib.import_module(table[args.type].__module__)
    sample = getattr(mod, "SAMPLE_YAML", None)
    print(sample if sample else f"# {args.type}: no sample shipped")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from daemon.reports.command import main_report

    if args.verify:
        from daemon.reports.pdf_verify import verify

        code, message = verify(_load(args.config), Path(args.verify))
        print(message, file=sys.stderr if code else sys.stdout)
        return code
    if not args.zone:
        print("coldchain report: --zone is required (or --verify FILE)", file=sys.stderr)
        return 2
    return main_report(_load(args.config), args)


def cmd_qr(args: argparse.Namespace) -> int:
    from daemon.lots.qr import qr_png, trace_url

    Path(args.out).write_bytes(qr_png(trace_url(args.base_url, args.code), box_size=args.size))
    print(args.out)
    return 0


def _region_demo(args: argparse.Namespace) -> int:
    """`coldchain demo --centers N` is the hub's (hub/region_demo.py): it runs N of these demos as processes."""
    from importlib.metadata import entry_points

    found = list(entry_points(group="coldchain.commands", name="region-demo"))
    if not found:
        print("coldchain demo --centers needs the hub: pip install 'coldchain-monitor[hub]'", file=sys.stderr)
        return EXIT_CONFIG
    argv = ["--centers", str(args.centers), "--base-config", str(demo_config_path()), "--speed", f"{args.speed:g}"]
    argv += ["--port", str(args.port if args.port != 8080 else 8090)] + (["--lang", args.lang] if args.lang else [])
    argv += (["--data-dir", args.data_dir] if args.data_dir else []) + (
        ["--duration", str(args.duration)] if args.duration else []) + (["--vehicle"] if args.vehicle else [])
    return int(found[0].load()(argv))


def cmd_hub(argv: Sequence[str]) -> int:
    """`coldchain hub ...`: the regional hub is a program of its own (hub/, docs/hub.md), found by its entry point
    (`coldchain.commands`), so the box daemon never imports it nor needs its PostgreSQL client."""
    from importlib.metadata import entry_points

    found = list(entry_points(group="coldchain.commands", name="hub"))
    if not found:
        print("coldchain hub is not installed here: pip install 'coldchain-monitor[hub]'", file=sys.stderr)
        return EXIT_CONFIG
    return int(found[0].load()(list(argv)))


def cmd_epcis(args: argparse.Namespace) -> int:
    from daemon.lots.export import main_epcis

    return main_epcis(_load(args.config), args)


def _epcis_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ep = sub.add_parser("epcis", help="EPCIS 2.0 document (JSON-LD) of a lot's events, or of a period's")
    ep.add_argument("--config", "-c", required=True)
    ep.add_argument("--code", help="the lot's traceability code (its events and those of the lots it came from)")
    ep.add_argument("--from", dest="start", help="start date or date-time (site time zone)")
    ep.add_argument("--to", dest="end", help="end date (inclusive) or date-time (exclusive)")
    ep.add_argument("--out", "-o", help="output file (default: stdout)")
    ep.set_defaults(fn=cmd_epcis)


def cmd_user(args: argparse.Namespace) -> int:
    from daemon.app.users_cli import cmd_user as run

    return run(_load(args.config), args)


def cmd_journal_compact(args: argparse.Namespace) -> int:
    """Rewrite the journal into the page size new journals get (daemon/storage/compact.py); 1 when refused."""
    from daemon.storage.compact import CompactRefused, compact

    cfg = _load(args.config)
    lang = args.lang or cfg.site.language
    path = Path(cfg.storage.journal)
    try:
        done = compact(path)
    except CompactRefused as exc:
        print(render(exc.key, lang, **exc.params), file=sys.stderr)
        print(render("compact.hint", lang), file=sys.stderr)
        return 1
    if done.removed_leftover:
        print(render("compact.leftover", lang, path=path))
    mb = {"before": round(done.before_bytes / 1e6, 1), "after": round(done.after_bytes / 1e6, 1)}
    if done.before_page == done.after_page:
        print(render("compact.already", lang, path=path, page_size=done.after_page, size=mb["before"]))
    else:
        print(render("compact.done", lang, path=path, before_page=done.before_page, after_page=done.after_page, **mb))
    return 0


def _journal_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`coldchain journal compact`: what an installer runs on the journal with the daemon stopped."""
    j = sub.add_parser("journal", help="work on the journal file with the daemon stopped")
    jc = j.add_subparsers(dest="journal_cmd", required=True).add_parser(
        "compact", help="rewrite the journal into the page size new journals get (fewer bytes written per reading)")
    jc.add_argument("--config", "-c", default="/etc/coldchain/config.yaml",
                    help="the daemon's config: its storage.journal is the file compacted (default: %(default)s)")
    jc.add_argument("--lang", choices=["zh-CN", "en"], default=None)
    jc.set_defaults(fn=cmd_journal_compact)


def _later_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The commands of the record across sites and of sign-in: hub (listed; it parses its own options), epcis, user;
    and the journal's upkeep."""
    sub.add_parser("hub", help="the regional hub: boxes' uplinks into PostgreSQL (coldchain hub --help)")
    _epcis_parser(sub)
    from daemon.app.users_cli import add_parser as user_parser

    user_parser(sub).set_defaults(fn=cmd_user)
    _journal_parser(sub)


def _demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`coldchain demo`: one simulated center, or with `--centers N` a region of them and a hub."""
    d = sub.add_parser("demo", help="run a simulated center with no external service")
    d.add_argument("--port", type=int, default=8080, help="web page port on 127.0.0.1 (0 = any free port)")
    d.add_argument("--data-dir", help="journal folder (default: a new temp folder)")
    d.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    d.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    d.add_argument("--lang", choices=["zh-CN", "en"], default=None)
    d.add_argument("--centers", type=int, default=1,
                   help="N > 1: a region of N centers and a hub (needs Mosquitto and PostgreSQL, docs/hub.md)")
    d.add_argument("--vehicle", action="store_true",
                   help="with --centers: the lot rides a reefer truck box from the first center to the second")
    d.add_argument("--config", help=argparse.SUPPRESS)  # one center of `--centers` (hub/region_demo.py)
    d.add_argument("--epoch", type=float, help=argparse.SUPPRESS)  # the region's shared start of simulated time
    d.set_defaults(fn=cmd_demo)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    fix_mmap_threshold()  # first: the demo hashes its users' passwords before the daemon starts
    if argv[:1] == ["hub"]:  # before argparse: the hub parses its own options
        return cmd_hub(argv[1:])
    p = argparse.ArgumentParser(prog="coldchain", description="Cold-chain monitoring daemon for produce cold rooms.")
    p.add_argument("--version", action="version", version=f"coldchain {__version__}")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the daemon")
    r.add_argument("--config", "-c", required=True)
    r.set_defaults(fn=cmd_run)
    c = sub.add_parser("check-config", help="validate a config file without starting anything")
    c.add_argument("file")
    c.set_defaults(fn=cmd_check_config)
    cf = sub.add_parser("config", help="show the effective config").add_subparsers(dest="config_cmd", required=True)
    cs = cf.add_parser("show", help="print the config with defaults filled in and secrets masked (YAML)")
    cs.add_argument("--config", "-c", required=True)
    cs.set_defaults(fn=cmd_config_show)
    _demo_parser(sub)
    doc = sub.add_parser("doctor", help="check config, journal, clock, ports, every sensor and channel",
                         epilog="exit 0: all good (! lines are warnings); 1: something a running daemon needs is "
                                "broken (the ✗ lines); 2: the config is invalid")
    doc.add_argument("--config", "-c", required=True)
    doc.add_argument("--seconds", type=float, default=10.0, help="how long to listen/poll each sensor")
    doc.add_argument("--send-test-sms", metavar="NUMBER", help="send a test message to this number")
    doc.add_argument("--via", metavar="NOTIFIER", help="which notifier sends the test message (default: the first)")
    doc.add_argument("--lang", choices=["zh-CN", "en"], default=None)
    doc.add_argument("--scan", action="store_true", help="list the Modbus addresses 1-247 answering on each bus")
    doc.set_defaults(fn=cmd_doctor)
    s = sub.add_parser("sample", help="print a driver's sample config")
    s.add_argument("type")
    s.set_defaults(fn=cmd_sample)
    rep = sub.add_parser("report", help="compliance report of a zone: pdf, csv, json or html")
    rep.add_argument("--config", "-c", required=True)
    rep.add_argument("--zone", "-z", help="the zone (room) id; required unless --verify")
    rep.add_argument("--period", choices=["day", "week", "month", "custom"], help="default: custom with --from")
    rep.add_argument("--date", help="a day in the period (default today), for day/week/month")
    rep.add_argument("--from", dest="start", help="start date or date-time (site time zone)")
    rep.add_argument("--to", dest="end", help="end date (inclusive) or date-time (exclusive)")
    rep.add_argument("--format", "-f", choices=["pdf", "csv", "json", "html"], default="pdf")
    rep.add_argument("--out", "-o", help="output file (default: report-ZONE-DATE.pdf; others to stdout)")
    rep.add_argument("--lang", choices=["zh-CN", "en"], default=None)
    rep.add_argument("--verify", metavar="FILE", help="check a PDF or JSON copy of a report against the journal")
    rep.set_defaults(fn=cmd_report)
    qr = sub.add_parser("qr", help="QR code (PNG) of a lot's public trace page, for box labels")
    qr.add_argument("code")
    qr.add_argument("--base-url", required=True, help="the address buyers reach, e.g. https://trace.example.cn")
    qr.add_argument("--out", "-o", required=True)
    qr.add_argument("--size", type=int, default=8, help="pixels per module")
    qr.set_defaults(fn=cmd_qr)
    _later_parsers(sub)
    args = p.parse_args(argv)
    _setup_logging(args.log_level if args.cmd != "demo" or args.log_level != "info" else "warning")
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
