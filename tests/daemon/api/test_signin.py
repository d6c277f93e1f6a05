"""Sign-in against the running daemon: users made by `coldchain user`, sessions over real HTTP (daemon/api/server.py),
CSRF on writes, lock-out, expiry on the daemon's clock, sign-out everywhere, reads optionally closed."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from daemon.app.cli import main
from daemon.app.runtime import Daemon
from daemon.ports.clock import ManualClock
from daemon.storage.journal import Journal
from tests.conftest import MINIMAL

T0 = 1_700_000_000.0
API = ("api:\n  enabled: true\n  host: 127.0.0.1\n  port: 0\n"
       "  tokens: [{name: machine, role: staff, token: {value: machine-secret}}]\n"
       "  sign_in: {max_failures: 3, failure_window: 10m, lockout: 15m, session_idle: 1h, session_max: 1d"
       "{extra}}\n")
LOT = {"code": "L-1", "commodity": "mandarin", "zone": "z1"}


def write_config(tmp_path: Path, extra: str = "") -> Path:
    text = MINIMAL.replace("api: {enabled: false}\n", API.replace("{extra}", extra)).replace(
        "journal: journal.db", f"journal: {tmp_path / 'journal.db'}")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def user_cmd(monkeypatch: pytest.MonkeyPatch, config: Path, *args: str, password: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["user", *args, "--config", str(config)])


@pytest_asyncio.fixture
async def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Daemon, ManualClock, Path]]:
    from daemon.app.plugins import load_config

    config = write_config(tmp_path, getattr(box, "extra", ""))
    assert user_cmd(monkeypatch, config, "add", "李经理", "--role", "manager", "--password-stdin",
                    password="correct horse") == 0
    assert user_cmd(monkeypatch, config, "add", "zhang", "--role", "staff", "--password-stdin",
                    password="staff-pass-1") == 0
    clock = ManualClock(T0)
    d = Daemon(load_config(str(config)), clock=clock)
    await d.start()
    try:
        yield d, clock, config
    finally:
        await d.stop()


def client(d: Daemon) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.api_port}", timeout=20)


async def sign_in(http: httpx.AsyncClient, user: str, password: str) -> httpx.Response:
    return await http.post("/api/v1/session", json={"username": user, "password": password})


@pytest.mark.asyncio
async def test_session_cookie_csrf_and_audit(box: tuple[Daemon, ManualClock, Path]) -> None:
    d, _clock, _ = box
    async with client(d) as http:
        wrong, unknown = await sign_in(http, "李经理", "wrong horse"), await sign_in(http, "nobody", "wrong horse")
        assert wrong.status_code == unknown.status_code == 401 and wrong.json() == unknown.json()
        assert "set-cookie" not in wrong.headers
        assert (await http.get("/api/v1/session")).status_code == 401

        ok = await sign_in(http, "李经理", "correct horse")
        assert ok.status_code == 200
        body = ok.json()
        assert body["user"] == "李经理" and body["role"] == "manager" and len(body["csrf"]) >= 32
        cookies = {c.split("=", 1)[0]: c.lower() for c in ok.headers.get_list("set-cookie")}
        assert "httponly" in cookies["cc_session"] and "samesite=strict" in cookies["cc_session"]
        assert "path=/" in cookies["cc_session"]
        assert "httponly" not in cookies["cc_csrf"] and "samesite=strict" in cookies["cc_csrf"]
        assert http.cookies["cc_csrf"] == body["csrf"]
        assert (await http.get("/api/v1/session")).json() == body

        # the session cookie alone does not make a write: another site's form could send it
        bare = await http.post("/api/v1/lots", json=LOT)
        assert bare.status_code == 403 and "X-CSRF-Token" in bare.text
        forged = await http.post("/api/v1/lots", json=LOT, headers={"X-CSRF-Token": "x" * 32})
        assert forged.status_code == 403
        made = await http.post("/api/v1/lots", json=LOT, headers={"X-CSRF-Token": body["csrf"]})
        assert made.status_code == 201
        # roles as for tokens: the audit log is for managers, and it names the person
        audit = (await http.get("/api/v1/audit", params={"target": "L-1"})).json()["entries"]
        assert [(e["who"], e["role"]) for e in audit] == [("李经理", "manager")]

        # machines keep their bearer token, with no CSRF header
        async with client(d) as machine:
            out = await machine.post("/api/v1/lots/L-1/checkout", headers={"Authorization": "Bearer machine-secret"})
            assert out.status_code == 200

        assert (await http.delete("/api/v1/session")).status_code == 403  # sign-out is a write too
        assert (await http.delete("/api/v1/session", headers={"X-CSRF-Token": body["csrf"]})).status_code == 204
        assert (await http.get("/api/v1/session")).status_code == 401
        async with client(d) as stolen:
            stolen.cookies.set("cc_session", ok.cookies["cc_session"])
            again = await stolen.post("/api/v1/lots", json={**LOT, "code": "L-2"}, headers={"X-CSRF-Token": body["csrf"]})
            assert again.status_code == 401  # the old cookie is dead on the server, not only deleted in the browser
    actions = [(e["who"], e["action"]) for e in d.journal.audit.entries("user:李经理")]
    assert actions[:2] == [("李经理", "session.end"), ("李经理", "session.start")]
    assert actions[-1][1] == "user.add" and actions[-1][0].startswith("console:")
    stored = d.journal.read("SELECT token_hash, csrf FROM sessions")
    assert stored == []


@pytest.mark.asyncio
async def test_lockout_answers_alike_for_unknown_names(box: tuple[Daemon, ManualClock, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    d, clock, config = box
    async with client(d) as http:
        for name in ("zhang", "ghost"):
            codes = [(await sign_in(http, name, f"guess-{i}")).status_code for i in range(3)]
            assert codes == [401, 401, 401]
            locked = await sign_in(http, name, "staff-pass-1")  # even the right password, while locked
            assert locked.status_code == 429 and int(locked.headers["retry-after"]) == 900
        assert d.journal.users.get("zhang").locked_until == T0 + 900  # type: ignore[union-attr]
        clock.advance(600)
        assert int((await sign_in(http, "zhang", "staff-pass-1")).headers["retry-after"]) == 300
        clock.advance(301)
        assert (await sign_in(http, "zhang", "staff-pass-1")).status_code == 200
        assert d.journal.users.get("zhang").failed == 0  # type: ignore[union-attr]

        # failures further apart than the window do not add up
        for _ in range(2):
            assert (await sign_in(http, "李经理", "nope-nope")).status_code == 401
        clock.advance(601)
        assert (await sign_in(http, "李经理", "nope-nope")).status_code == 401
        assert (await sign_in(http, "李经理", "correct horse")).status_code == 200

        # the installer lifts a lock at once
        for _ in range(3):
            await sign_in(http, "zhang", "nope-nope")
        assert (await sign_in(http, "zhang", "staff-pass-1")).status_code == 429
        assert user_cmd(monkeypatch, config, "unlock", "zhang") == 0
        assert (await sign_in(http, "zhang", "staff-pass-1")).status_code == 200
    assert "user.locked" in [e["action"] for e in d.journal.audit.entries("user:zhang")]


@pytest.mark.asyncio
async def test_expiry_and_sign_out_everywhere(box: tuple[Daemon, ManualClock, Path],
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    d, clock, config = box
    async with client(d) as phone, client(d) as desk, client(d) as idle:
        for c in (phone, desk, idle):
            assert (await sign_in(c, "李经理", "correct horse")).status_code == 200
        clock.advance(3000)
        assert (await phone.get("/api/v1/session")).status_code == 200  # in use: stays
        assert (await desk.get("/api/v1/session")).status_code == 200
        clock.advance(1000)  # idle passed its hour since sign-in
        assert (await idle.get("/api/v1/session")).status_code == 401
        assert (await phone.get("/api/v1/session")).status_code == 200

        capsys.readouterr()
        assert user_cmd(monkeypatch, config, "passwd", "李经理", "--password-stdin", password="new pass 2026") == 0
        assert "2 session(s) signed out" in capsys.readouterr().out
        assert (await phone.get("/api/v1/session")).status_code == 401
        assert (await desk.get("/api/v1/session")).status_code == 401
        assert (await sign_in(phone, "李经理", "correct horse")).status_code == 401
        assert (await sign_in(phone, "李经理", "new pass 2026")).status_code == 200
        for _ in range(24):  # used within every hour: the absolute limit (1 day) still ends it
            clock.advance(3500)
            assert (await phone.get("/api/v1/session")).status_code == 200
        clock.advance(2400)
        assert (await phone.get("/api/v1/session")).status_code == 401
        assert user_cmd(monkeypatch, config, "remove", "zhang") == 0
        assert (await sign_in(phone, "zhang", "staff-pass-1")).status_code == 401
    ended = [e["detail"].get("why") for e in d.journal.audit.entries("user:李经理") if e["action"] == "session.end"]
    assert ended == ["expired", "idle"]


def test_user_command_refuses_and_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert user_cmd(monkeypatch, config, "add", "wang", "--role", "staff", "--password-stdin", password="short") == 2
    assert "at least 8" in capsys.readouterr().err
    assert user_cmd(monkeypatch, config, "add", "a b", "--role", "staff", "--password-stdin", password="long enough") == 2
    assert user_cmd(monkeypatch, config, "add", "wang", "--role", "staff", "--password-stdin", password="long enough") == 0
    assert user_cmd(monkeypatch, config, "add", "wang", "--role", "staff", "--password-stdin", password="long enough") == 2
    typed = iter(["typed once", "typed twice"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(typed))
    assert main(["user", "passwd", "wang", "--config", str(config)]) == 2
    assert "differ" in capsys.readouterr().err
    assert user_cmd(monkeypatch, config, "unlock", "nobody") == 2
    assert user_cmd(monkeypatch, config, "list") == 0
    out = capsys.readouterr().out
    assert "wang" in out and "staff" in out
    j = Journal(tmp_path / "journal.db")
    try:
        (h,) = j.read("SELECT hash FROM users WHERE username = 'wang'")[0]
        assert h.startswith("$argon2id$") and "long enough" not in h
    finally:
        j.close()


@pytest.mark.asyncio
async def test_reads_closed_when_configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.app.plugins import load_config

    config = write_config(tmp_path, ", reads_need_sign_in: true")
    assert user_cmd(monkeypatch, config, "add", "zhang", "--role", "staff", "--password-stdin",
                    password="staff-pass-1") == 0
    d = Daemon(load_config(str(config)), clock=ManualClock(T0))
    await d.start()
    try:
        async with client(d) as http:
            assert (await http.get("/api/v1/zones")).status_code == 401
            page = await http.get("/lots", headers={"Accept": "text/html"})
            assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Flots"
            login = await http.get("/login", params={"lang": "en"})
            assert login.status_code == 200 and "Sign in" in login.text and 'lang="en"' in login.text
            assert "登录" in (await http.get("/login", params={"lang": "zh-CN"})).text
            assert (await http.get("/static/login.js")).status_code == 200
            assert (await http.get("/trace/NO-SUCH-LOT")).status_code == 404  # public: its "not found" page, no 401
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/api/v1/zones", headers={"Authorization": "Bearer machine-secret"})).status_code == 200
            assert (await sign_in(http, "zhang", "staff-pass-1")).status_code == 200
            zones: dict[str, Any] = (await http.get("/api/v1/zones")).json()
            assert zones["zones"][0]["id"] == "z1"
            assert (await http.get("/", headers={"Accept": "text/html"})).status_code == 200
    finally:
        await d.stop()
