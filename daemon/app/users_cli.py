"""`coldchain user add | passwd | list | remove | unlock`: the installer manages who signs in to the pages.

Writes go straight to the journal (SQLite WAL: safe while the daemon runs); a password change or a removal
ends that user's sessions at once, since the daemon looks each session up per request. Each change is
audited with the console user (`$SUDO_USER` or the login name) as the installer who made it."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
import zoneinfo
from datetime import datetime

from daemon.api.passwords import USERNAME, hash_password, password_problem
from daemon.config.schema import AppConfig
from daemon.storage.journal import Journal
from daemon.storage.users import By

ROLES = ("staff", "manager", "installer")


def _by() -> By:
    name = os.environ.get("SUDO_USER") or getpass.getuser()
    return By(f"console:{name}", "installer")


def _read_password(args: argparse.Namespace) -> str | None:
    """From stdin (first line) with --password-stdin, else typed twice; None (with a message) if refused."""
    if args.password_stdin:
        pw = sys.stdin.readline().rstrip("\r\n")
    else:
        pw = getpass.getpass("password: ")
        if getpass.getpass("again: ") != pw:
            print("the two passwords differ; nothing changed", file=sys.stderr)
            return None
    problem = password_problem(pw)
    if problem:
        print(f"{problem}; nothing changed", file=sys.stderr)
        return None
    return pw


def _add(j: Journal, args: argparse.Namespace) -> int:
    if not USERNAME.match(args.name):
        print(f"user name {args.name!r}: 1-64 characters, no spaces, ':' or slashes", file=sys.stderr)
        return 2
    if j.users.get(args.name):
        print(f"user {args.name} exists (coldchain user passwd {args.name} to change the password)", file=sys.stderr)
        return 2
    pw = _read_password(args)
    if pw is None:
        return 2
    if not j.users.add(args.name, args.role, hash_password(pw), time.time(), _by()):
        print(f"user {args.name} exists", file=sys.stderr)
        return 2
    print(f"user {args.name} added ({args.role})")
    return 0


def _passwd(j: Journal, args: argparse.Namespace) -> int:
    if j.users.get(args.name) is None:
        print(f"no user {args.name}", file=sys.stderr)
        return 2
    pw = _read_password(args)
    if pw is None:
        return 2
    ended = j.users.set_password(args.name, hash_password(pw), time.time(), _by())
    print(f"password of {args.name} changed; {ended} session(s) signed out")
    return 0


def _list(j: Journal, cfg: AppConfig) -> int:
    tz = zoneinfo.ZoneInfo(cfg.site.timezone)
    now = time.time()
    print(f"{'user':<20} {'role':<10} {'changed':<17} {'sessions':>8}  state")
    for u in j.users.all():
        state = (f"locked until {datetime.fromtimestamp(u.locked_until, tz):%Y-%m-%d %H:%M}"
                 if u.locked_until and u.locked_until > now else "ok")
        print(f"{u.username:<20} {u.role:<10} {datetime.fromtimestamp(u.changed, tz):%Y-%m-%d %H:%M} "
              f"{j.users.sessions_of(u.username):>8}  {state}")
    return 0


def cmd_user(cfg: AppConfig, args: argparse.Namespace) -> int:
    j = Journal(cfg.storage.journal)
    try:
        if args.user_cmd == "add":
            return _add(j, args)
        if args.user_cmd == "passwd":
            return _passwd(j, args)
        if args.user_cmd == "list":
            return _list(j, cfg)
        done = (j.users.remove if args.user_cmd == "remove" else j.users.unlock)(args.name, time.time(), _by())
        print(f"user {args.name} {'removed' if args.user_cmd == 'remove' else 'unlocked'}" if done
              else f"no user {args.name}", file=sys.stdout if done else sys.stderr)
        return 0 if done else 2
    finally:
        j.close()


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The `user` command and its subcommands (each takes --config to find the journal)."""
    u = sub.add_parser("user", help="people who sign in to the pages: add, passwd, list, remove, unlock")
    us = u.add_subparsers(dest="user_cmd", required=True)
    for name, text in (("add", "add a user (password typed twice, or --password-stdin)"),
                       ("passwd", "set a user's password; signs the user out everywhere"),
                       ("list", "the users, their roles, sessions and locks"),
                       ("remove", "remove a user and end the user's sessions"),
                       ("unlock", "lift the lock-out after wrong passwords")):
        p = us.add_parser(name, help=text)
        p.add_argument("--config", "-c", required=True)
        if name != "list":
            p.add_argument("name")
        if name == "add":
            p.add_argument("--role", required=True, choices=ROLES)
        if name in ("add", "passwd"):
            p.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    return u
